"""How well the world model of an imagination run (``agent=imagination``) predicts its own policy's returns.

From ``--starts`` real states reached by the run's deterministic policy (after ``--warmup`` agent steps from
a reset), the real ``H``-step return of that policy is compared with

* **open loop**: the world model's return of the *same real actions* from the encoded start,
  ``Σ_t r(ẑ_t, a_t)`` with ``ẑ_{t+1} = P(ẑ_t, a_t)`` (is the model right along the policy's path?), and
* **closed loop**: the actor acting on the imagined latents, ``a_t = π(ẑ_t)`` (what the actor trains on).

An accurate model with a poor policy points at the actor's optimization; imagined returns far above the
real ones point at model exploitation. ``V(z_0)`` is printed beside them (the critic's value of the
starts, a discounted sum over the whole future, so larger than the ``H``-step returns)::

    python scripts/imagination_fidelity.py /work/runs/imag_states_s0 --horizon 15 --starts 64
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from jepa_agents.agents import make_agent
from jepa_agents.infra.checkpoint import list_checkpoints, load_checkpoint
from jepa_agents.train.config import validate
from jepa_agents.train.online import make_env


@torch.no_grad()
def fidelity(run: Path, starts: int, warmup: int, horizon: int, seed: int) -> dict[str, float]:
    """Mean real, open-loop and closed-loop imagined ``horizon``-step returns (and their correlation)."""
    cfg = validate(OmegaConf.load(run / "config.yaml"))
    if cfg.agent.name != "imagination":
        raise ValueError(f"{run} is an agent={cfg.agent.name} run; this check reads imagination runs")
    checkpoints = list_checkpoints(run / "checkpoints")
    if not checkpoints:
        raise ValueError(f"{run} has no checkpoint yet; train it first")
    device = torch.device("cpu")
    env = make_env(cfg.env, starts, seed, device)
    agent = make_agent(cfg, env, device)
    try:
        agent.load_state_dict(load_checkpoint(checkpoints[-1])["agent"])
    except RuntimeError as err:  # a checkpoint of another layout of the networks
        first = str(err).strip().splitlines()[-1].strip()
        raise ValueError(f"{checkpoints[-1]} does not fit this version's networks ({first})") from None
    nets = agent.nets.eval()
    td = env.reset()
    for _ in range(warmup):
        td["action"] = agent.act(td, eval_mode=True)
        _, td = env.step_and_maybe_reset(td)
    z0 = nets.model.encode(td[agent.obs_key])  # [N, D]
    real, actions = torch.zeros(starts), []
    for _ in range(horizon):
        td["action"] = agent.act(td, eval_mode=True)
        actions.append(td["action"])
        step, td = env.step_and_maybe_reset(td)
        real += step["next", "reward"].reshape(-1)
    open_loop, closed_loop = torch.zeros(starts), torch.zeros(starts)
    zo, zc = z0, z0
    for a in actions:
        open_loop += nets.model.reward(zo, a)
        zo = nets.model.predict(zo, a)
        ac = agent.policy(zc, eval_mode=True)
        closed_loop += nets.model.reward(zc, ac)
        zc = nets.model.predict(zc, ac)
    return {
        "real": float(real.mean()),
        "open_loop": float(open_loop.mean()),
        "closed_loop": float(closed_loop.mean()),
        "corr_open_loop": float(torch.corrcoef(torch.stack([real, open_loop]))[0, 1]),
        "value_start": float(nets.critic(z0).mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="run directory of an agent=imagination run")
    parser.add_argument("--starts", type=int, default=64, help="real start states (env copies)")
    parser.add_argument("--warmup", type=int, default=40, help="policy steps before the starts")
    parser.add_argument("--horizon", type=int, default=15, help="H, the steps compared")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    if args.starts < 2 or args.horizon < 1 or args.warmup < 0:
        parser.error("need --starts >= 2 (a correlation over starts), --horizon >= 1 and --warmup >= 0")
    torch.set_num_threads(1)
    try:
        out = fidelity(args.run, args.starts, args.warmup, args.horizon, args.seed)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"{args.horizon}-step return from {args.starts} starts: real {out['real']:.2f}, imagined open loop "
        f"{out['open_loop']:.2f} (corr {out['corr_open_loop']:.2f}), closed loop {out['closed_loop']:.2f}; "
        f"V(z_0) {out['value_start']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
