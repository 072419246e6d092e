"""SAC+JEPA learners: smoke tests, bad inputs, NaN guard, checkpoint round trip and a learning test."""

from __future__ import annotations

import copy
import io
import math
import time

import pytest
import torch
from omegaconf import OmegaConf
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from jepa_agents.agents import DiscreteSACAgent, SACAgent, make_agent
from jepa_agents.data.nstep import nstep_returns
from jepa_agents.data.replay import Replay
from jepa_agents.train.config import validate

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


class ReachEnv(EnvBase):
    """N copies of a 1-d reaching task: ``x' = clip(x + 0.25·a, -1, 1)``, reward ``1 - |x'|``, 16 steps.

    Continuous actions ``[N, 1]`` in ``[-1, 1]`` or discrete ``{left, stay, right}``. Observations:
    ``state`` ``[N, 2]`` = ``(x, t / 16)`` and ``pixels`` uint8 ``[N, 3, 16, 16]`` (a bar at ``x``).
    Copies whose episode terminates when ``terminate_at_edge`` and ``|x'| = 1`` emit ``life_loss``.
    """

    LENGTH = 16

    def __init__(self, num_envs: int = 2, discrete: bool = False, terminate_at_edge: bool = False):
        super().__init__(batch_size=torch.Size([num_envs]), device=CPU)
        n = num_envs
        self.discrete = discrete
        self.terminate_at_edge = terminate_at_edge
        self.action_repeat = 1
        self.observation_spec = Composite(
            state=Unbounded(shape=(n, 2)),
            pixels=Unbounded(shape=(n, 3, 16, 16), dtype=torch.uint8),
            life_loss=Categorical(2, shape=(n, 1), dtype=torch.bool),
            shape=(n,),
        )
        if discrete:
            self.action_spec = Categorical(3, shape=(n,), dtype=torch.long)
        else:
            self.action_spec = Bounded(-1.0, 1.0, shape=(n, 1))
        self.reward_spec = Unbounded(shape=(n, 1))
        self.x = torch.zeros(n)
        self.t = torch.zeros(n, dtype=torch.long)

    def _obs(self, life_loss: torch.Tensor) -> TensorDict:
        n = self.batch_size[0]
        col = ((self.x + 1) / 2 * 15).round().long()  # [N]
        pixels = torch.zeros(n, 3, 16, 16, dtype=torch.uint8)
        pixels[torch.arange(n), :, :, col] = 255
        state = torch.stack((self.x, self.t.float() / self.LENGTH), -1)
        return TensorDict({"state": state, "pixels": pixels, "life_loss": life_loss}, batch_size=[n])

    def _reset(self, td: TensorDictBase | None) -> TensorDict:
        n = self.batch_size[0]
        mask = (
            torch.ones(n, dtype=torch.bool)
            if td is None or "_reset" not in td.keys()
            else td["_reset"].view(n)
        )
        self.x[mask] = torch.rand(int(mask.sum())) * 2 - 1
        self.t[mask] = 0
        out = self._obs(torch.zeros(n, 1, dtype=torch.bool))
        flags = torch.zeros(n, 1, dtype=torch.bool)
        out.update({"done": flags, "terminated": flags.clone(), "truncated": flags.clone()})
        return out

    def _step(self, td: TensorDictBase) -> TensorDict:
        a = td["action"]
        move = (a.float() - 1) if self.discrete else a.view(-1)
        self.x = (self.x + 0.25 * move.view(-1)).clamp(-1, 1)
        self.t += 1
        reward = (1 - self.x.abs()).unsqueeze(-1)
        truncated = (self.t >= self.LENGTH).unsqueeze(-1)
        terminated = (self.x.abs() >= 1).unsqueeze(-1) & self.terminate_at_edge
        out = self._obs(terminated.clone())
        out.update(
            {
                "reward": reward,
                "done": terminated | truncated,
                "terminated": terminated,
                "truncated": truncated,
            }
        )
        return out

    def _set_seed(self, seed: int | None) -> None:
        torch.manual_seed(seed or 0)


def make_cfg(agent: str, from_pixels: bool, **agent_overrides) -> OmegaConf:
    small = dict(batch_size=8, actor_hidden=[32], critic_hidden=[32], n_step=2, feature_dim=16)
    small.update(agent_overrides)
    return validate(
        OmegaConf.create(
            {
                "env": {"name": "test/reach", "from_pixels": from_pixels},
                "agent": {"name": agent, **small},
                "world_model": {
                    "latent_dim": 16,
                    "horizon": 3,
                    "predictor_hidden": [32],
                    "num_slices": 16,
                    "augment_pad": 2,
                    "encoder": "drq" if from_pixels else "mlp",
                },
                "train": {"max_consecutive_nan": 3},
            }
        )
    )


def collect(env: EnvBase, replay: Replay, steps: int, agent=None) -> float:
    """Run ``steps`` vectorized steps (random actions without an agent); mean reward per step."""
    td = env.reset()
    total = 0.0
    for _ in range(steps):
        td["action"] = env.action_spec.rand() if agent is None else agent.act(td, eval_mode=False)
        td = env.step(td)
        replay.add(td)
        total += td["next", "reward"].mean().item()
        td = env.step_mdp(td)
        if td["done"].any():
            td = env.reset(td.set("_reset", td["done"].clone()))
    return total / steps


@pytest.mark.parametrize(
    "agent_name, discrete, from_pixels",
    [("sac", False, True), ("sac", False, False), ("discrete_sac", True, True)],
)
def test_smoke_update_act_and_checkpoint(agent_name, discrete, from_pixels):
    torch.manual_seed(0)
    env = ReachEnv(num_envs=2, discrete=discrete, terminate_at_edge=discrete)
    cfg = make_cfg(agent_name, from_pixels)
    agent = make_agent(cfg, env, CPU)
    assert isinstance(agent, DiscreteSACAgent if discrete else SACAgent)
    replay = Replay(200, 2, ["pixels", "state"], CPU)
    collect(env, replay, 20)
    metrics = agent.update(replay, step=42)
    for tag in (
        "critic/loss",
        "actor/loss",
        "temperature/alpha",
        "wm/pred_loss",
        "wm/reg",
        "train/nan_skips",
    ):
        assert tag in metrics and metrics[tag].ndim == 0 and math.isfinite(float(metrics[tag]))
    assert metrics["train/updates"] == 2.0  # utd 1: one update per transition of the 2 copies
    actions = agent.act(env.reset(), eval_mode=True)
    if discrete:
        assert actions.shape == (2,) and actions.dtype == torch.long
    else:
        assert actions.shape == (2, 1) and actions.abs().max() <= 1
    # checkpoint round trip: networks, optimizers and counters
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    buffer.seek(0)
    other = make_agent(cfg, env, CPU)
    other.load_state_dict(torch.load(buffer, weights_only=False))
    rng = torch.get_rng_state()
    a = agent.update(replay, step=44)
    torch.set_rng_state(rng)
    b = other.update(replay, step=44)
    assert {k: float(v) for k, v in a.items()} == {k: float(v) for k, v in b.items()}
    for p, q in zip(agent.nets.parameters(), other.nets.parameters()):
        assert torch.equal(p, q)


def test_without_world_model_the_critic_trains_the_encoder():
    torch.manual_seed(0)
    env = ReachEnv(num_envs=2)
    cfg = make_cfg("sac", True)
    cfg.world_model.name = "none"
    agent = make_agent(cfg, env, CPU)
    replay = Replay(200, 2, ["pixels"], CPU)
    collect(env, replay, 10)
    encoder = agent.nets.model
    before = [p.clone() for p in encoder.parameters()]
    metrics = agent.update(replay, step=0)
    assert not any(tag.startswith("wm/") for tag in metrics)
    assert agent.seq_len == cfg.world_model.horizon + cfg.agent.n_step  # the same critic batch as with one
    assert all(not torch.equal(p, q) for p, q in zip(before, encoder.parameters()))


def test_update_to_data_ratio_and_update_every():
    torch.manual_seed(0)
    env = ReachEnv(num_envs=2)
    replay = Replay(200, 2, ["state"], CPU)
    collect(env, replay, 10)
    agent = make_agent(make_cfg("sac", False, utd=0.5, update_every=2), env, CPU)
    done = []
    for call in range(6):  # the loop calls once per vectorized step: 2 transitions, step += 2 frames
        metrics = agent.update(replay, step=2 * (call + 1))
        done.append(float(metrics.get("train/updates", 0.0)))
    # 0.5 update per transition = 1 per call, run in bursts every other call
    assert done == [0.0, 2.0, 0.0, 4.0, 0.0, 6.0]


def test_trains_on_torch_cartpole_swingup_pixels_through_the_loop(tmp_path):
    from jepa_agents.train.config import compose
    from jepa_agents.train.run import train

    overrides = [
        "env=torch/cartpole_swingup",
        "env.image_size=32",
        "env.num_envs=2",
        "world_model.encoder=drq",
        "world_model.latent_dim=16",
        "world_model.predictor_hidden=[32]",
        "world_model.num_slices=16",
        "agent.batch_size=8",
        "agent.actor_hidden=[32]",
        "agent.critic_hidden=[32]",
        "train.total_env_steps=640",
        "train.seed_env_steps=320",
        "train.checkpoint_every=640",
        "eval.every=0",
        "eval.episodes=1",
        "eval.video=false",
        "logging.every=64",
        "logging.progress_bar=false",
        f"run_dir={tmp_path / 'run'}",
    ]
    run_dir = train(compose(overrides))
    tags = {line.split(",")[1] for line in (run_dir / "scalars.csv").read_text().splitlines()[1:]}
    assert {"critic/loss", "actor/loss", "wm/pred_loss", "wm/reg", "train/nan_skips"} <= tags
    ckpt = torch.load(next((run_dir / "checkpoints").glob("ckpt_*.pt")), weights_only=False)
    pixels = ckpt["replay"]["buffer"]["_storage"]["_storage"]["pixels"]
    assert pixels.dtype == torch.uint8 and pixels.shape[1:] == (3, 32, 32)  # newest RGB frame of the 3


def test_learner_must_fit_the_action_space():
    with pytest.raises(ValueError, match="Use agent=discrete_sac"):
        make_agent(make_cfg("sac", False), ReachEnv(discrete=True), CPU)
    with pytest.raises(ValueError, match="Use agent=sac"):
        make_agent(make_cfg("discrete_sac", False), ReachEnv(discrete=False), CPU)


def test_non_finite_updates_are_skipped_then_stop():
    torch.manual_seed(0)
    env = ReachEnv(num_envs=2)
    agent = make_agent(make_cfg("sac", False), env, CPU)
    replay = Replay(100, 2, ["state"], CPU)
    td = env.reset()
    for _ in range(8):  # NaN rewards poison every TD target
        td["action"] = env.action_spec.rand()
        td = env.step(td)
        td["next", "reward"] = torch.full_like(td["next", "reward"], float("nan"))
        replay.add(td)
        td = env.step_mdp(td)
    before = copy.deepcopy(agent.state_dict())
    metrics = agent.update(replay, step=2)  # first call: 2 transitions -> 2 updates, both skipped
    assert metrics["train/nan_skips"] == 2.0 and metrics["train/updates"] == 2.0
    after = agent.state_dict()
    params = dict(agent.nets.named_parameters(remove_duplicate=False))  # incl. target critics and log α
    for key in params:
        assert torch.equal(before["nets"][key], after["nets"][key]), key
    for name, opt in before["optimizers"].items():  # no Adam step count or moment moved
        for i, state in opt["state"].items():
            for k, v in state.items():
                assert torch.equal(v, after["optimizers"][name]["state"][i][k]), (name, i, k)
    with pytest.raises(
        FloatingPointError,
        match="4 consecutive updates had non-finite critic, grad_norm.*max_consecutive_nan=3",
    ):
        agent.update(replay, step=4)


@pytest.mark.slow
@pytest.mark.parametrize("from_pixels", [False, True])
def test_sac_jepa_learns_reaching(from_pixels):
    """Mean reward per step of the learned (deterministic) policy vs the uniformly random policy.

    Measured with 400 agent steps of 4 copies (200 updates of 64 slices, K = 3), ~4 s (states) and
    ~6 s (16x16 pixels) on one CPU thread; seeds 0-3: random 0.38-0.57, learned 0.83-0.93 (states),
    0.84-0.92 (pixels). An actor loss with the wrong sign, no updates, or zeroed rewards all fail.
    """
    torch.manual_seed(0)
    start = time.time()
    env = ReachEnv(num_envs=4)
    cfg = make_cfg(
        "sac",
        from_pixels,
        batch_size=64,
        actor_hidden=[64, 64],
        critic_hidden=[64, 64],
        lr_actor=1e-3,
        lr_critic=1e-3,
        lr_encoder=1e-3,
        n_step=3,
        utd=0.5,
    )
    agent = make_agent(cfg, env, CPU)
    replay = Replay(10_000, 4, [agent.obs_key], CPU)
    random_return = collect(env, replay, 50)
    for step in range(400):
        collect(env, replay, 1, agent)
        agent.update(replay, step=step)

    class Greedy:
        def act(self, td, eval_mode):
            return agent.act(td, eval_mode=True)

    learned_return = collect(env, Replay(1000, 4, [agent.obs_key], CPU), 32, Greedy())
    print(f"random {random_return:.3f} learned {learned_return:.3f} in {time.time() - start:.1f}s")
    assert learned_return > random_return + 0.2 and learned_return > 0.75


@pytest.mark.parametrize("n_step", [1, 3])
def test_every_transition_in_the_loss_gets_its_full_n_step_return(n_step):
    """Slices hold ``T + n`` rows, so each of the ``T = K`` transitions of the critic loss bootstraps
    ``n`` steps ahead with ``γ^n`` (fewer only where the episode terminates inside the window)."""
    torch.manual_seed(0)
    env = ReachEnv(num_envs=2, terminate_at_edge=True)
    cfg = make_cfg("sac", False, n_step=n_step, batch_size=64)
    agent = make_agent(cfg, env, CPU)
    t, gamma = agent.horizon, cfg.agent.gamma
    assert t == cfg.world_model.horizon and agent.seq_len == t + n_step
    replay = Replay(2000, 2, ["state"], CPU)
    collect(env, replay, 400)
    batch = agent._sample(replay)
    _, discount, index = nstep_returns(batch["reward"], agent._terminal(batch), gamma, n_step)  # as td_target
    index, discount = index[:, :t], discount[:, :t, 0]  # [B, T]
    terminated = batch["terminated"][:, :, 0]  # [B, L]
    full = torch.arange(t) + n_step
    for b in range(batch.shape[0]):
        for k in range(t):
            window = terminated[b, k : k + n_step]
            if window.any():  # the episode ends inside the window: cut at the terminal step, no bootstrap
                m = int(window.nonzero()[0]) + 1
                assert index[b, k] == k + m and discount[b, k] == 0
            else:
                assert index[b, k] == full[k]
                assert discount[b, k] == pytest.approx(gamma**n_step)
    assert (index == full).float().mean() > 0.5  # most windows are full
