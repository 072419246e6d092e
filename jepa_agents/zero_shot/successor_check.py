"""Monte-Carlo check of the successor features: is the critic propagated, or still a fraction of its value?

For ``n`` task vectors ``z_i = √d ψ(g_i)/|ψ(g_i)|`` of dataset states ``g_i`` (``B(g_i)`` for FB) take the
reward ``r_i(s') = task_features(s')ᵀ z_i`` (it peaks at ``g_i``). The model's value of its own policy
``π_{z_i}`` at a start state is ``Q̂_i = successor(s_0, a_0, z_i)ᵀ w_i`` with ``w_i = reward_weights`` of
``r_i`` on ``N`` dataset transitions (exactly how a task is inferred); its Monte-Carlo value is

    Q_i = Σ_{t < H} γ^t r_i(s_{t+1}),    H = ⌈ln 0.01 / ln γ⌉   (the tail holds under 1 % of the weight)

along one episode of the mean policy from an environment reset (cut at termination or the time limit).
Reported: ``ratio = Σ Q̂_i Q_i / Σ Q_i²`` (least-squares slope through the origin: 1 is a calibrated critic,
0.1 one that has propagated a tenth of the return), ``corr`` (Pearson over the ``n`` episodes), and the
means of ``Q̂`` and ``Q``. RNG-neutral; the environment is seeded the same on every call.
"""

from __future__ import annotations

import math

import torch

from jepa_agents.data.offline import OfflineDataset
from jepa_agents.infra.rng import rng_state, set_rng_state
from jepa_agents.zero_shot.td_jepa import ZeroShotModel, project_z


def horizon(discount: float, tail: float = 0.01) -> int:
    """Steps after which ``γ^H <= tail``."""
    return max(1, math.ceil(math.log(tail) / math.log(discount))) if discount > 0 else 1


@torch.no_grad()
def successor_check(
    model: ZeroShotModel,
    env,
    dataset: OfflineDataset,
    obs_key: str,
    discount: float,
    seed: int,
    samples: int = 4096,
    max_steps: int = 0,
) -> dict[str, float]:
    """``ratio``, ``corr``, ``q_pred``, ``q_mc`` over one episode per copy of ``env`` (module docstring).
    ``max_steps`` > 0 caps ``H``."""
    saved = rng_state()
    was_training = model.training
    model.eval()
    try:
        torch.manual_seed(seed)
        device = next(model.parameters()).device
        n = env.batch_size[0]
        batch = dataset.sample(min(samples, len(dataset)))
        next_obs = batch["next", "observation", obs_key].to(device)  # [N, *obs]
        goals = next_obs[torch.randint(next_obs.shape[0], (n,), device=device)]
        z = project_z(model.task_features(goals))  # [n, d]
        w = model.reward_weights(next_obs, model.task_features(next_obs) @ z.T)  # [n, d]
        env.set_seed(seed)
        td = env.reset()
        obs = td[obs_key].to(device)
        td["action"] = model.act(obs, z).to(env.device)
        q_pred = (model.successor(obs, td["action"].to(device), z) * w).sum(-1)  # [n]
        q_mc = torch.zeros(n, device=device)
        running = torch.ones(n, dtype=torch.bool, device=device)
        steps = horizon(discount) if max_steps <= 0 else min(horizon(discount), max_steps)
        for t in range(steps):
            if t > 0:
                td["action"] = model.act(td[obs_key].to(device), z).to(env.device)
            step, td = env.step_and_maybe_reset(td)
            reward = (model.task_features(step["next", obs_key].to(device)) * z).sum(-1)  # [n]
            q_mc += discount**t * reward * running
            running &= ~step["next", "done"].reshape(-1).to(device)
            if not bool(running.any()):
                break
    finally:
        model.train(was_training)
        set_rng_state(saved)
    ratio = float((q_pred * q_mc).sum() / q_mc.square().sum().clamp_min(1e-12))
    corr = float(torch.corrcoef(torch.stack([q_pred, q_mc]))[0, 1]) if n > 1 else math.nan
    return {"ratio": ratio, "corr": corr, "q_pred": float(q_pred.mean()), "q_mc": float(q_mc.mean())}
