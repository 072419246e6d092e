"""PPO: GAE and loss math by hand, rollout bookkeeping, the NaN guard, a trainer smoke run and a learning
test on ``torch/cartpole_balance`` from states (it must beat the random policy by a wide margin)."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded, Categorical, OneHot

import envs
from jepa_agents.agents.ppo import PPOAgent, _action_space
from jepa_agents.agents.ppo_config import PPOConfig
from jepa_agents.agents.ppo_losses import gae, policy_loss, value_loss
from jepa_agents.agents.ppo_networks import RunningMoments, sequence_starts
from jepa_agents.data.rollout import RolloutBuffer
from jepa_agents.train.config import compose
from jepa_agents.world_models import WorldModelConfig

SMALL = [
    "agent=ppo",
    "env.from_pixels=false",
    "env.frame_stack=1",
    "eval.video=false",
    "logging.progress_bar=false",
    "logging.tensorboard=false",
    "device=cpu",
    "num_threads=1",
    "world_model.latent_dim=32",
    "world_model.predictor_hidden=[64]",
    "world_model.num_slices=32",
    "agent.policy_hidden=[64,64]",
    "agent.value_hidden=[64,64]",
]


# --- GAE and losses ----------------------------------------------------------------------------------
def test_gae_matches_hand_computation_with_dones():
    g, lam = 0.9, 0.5
    # one copy, T = 3: step 1 terminates, step 2 is the first step of a new episode (rollout end)
    r = torch.tensor([[1.0], [2.0], [3.0]])
    v = torch.tensor([[0.5], [1.0], [1.5]])
    nv = torch.tensor([[1.0], [9.0], [2.0]])  # nv[1] would be the reset obs: must be ignored
    term = torch.tensor([[False], [True], [False]])
    adv, ret = gae(r, v, nv, term, term.clone(), g, lam)
    d2 = 3.0 + g * 2.0 - 1.5
    d1 = 2.0 - 1.0
    d0 = 1.0 + g * 1.0 - 0.5
    expected = torch.tensor([[d0 + g * lam * d1], [d1], [d2]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + v)


def test_gae_truncation_bootstraps_but_cuts_the_trace():
    g, lam = 0.99, 0.95
    r = torch.tensor([[1.0], [1.0]])
    v = torch.tensor([[2.0], [3.0]])
    nv = torch.tensor([[4.0], [5.0]])  # nv[0]: V(final obs of the truncated episode)
    done = torch.tensor([[True], [False]])
    adv, _ = gae(r, v, nv, torch.zeros_like(done), done, g, lam)
    torch.testing.assert_close(adv, torch.tensor([[1.0 + g * 4.0 - 2.0], [1.0 + g * 5.0 - 3.0]]))


def test_gae_is_discounted_return_with_lambda_one_and_zero_values():
    r = torch.rand(6, 3)
    zeros = torch.zeros(6, 3)
    adv, ret = gae(r, zeros, zeros, zeros.bool(), zeros.bool(), 0.8, 1.0)
    expected = torch.stack([sum(0.8**k * r[t + k] for k in range(6 - t)) for t in range(6)])
    torch.testing.assert_close(ret, expected)
    torch.testing.assert_close(adv, expected)


def test_clipped_surrogate_math_and_gradients():
    eps = 0.2
    ratio = torch.tensor([0.5, 1.1, 1.5, 0.5, 1.5])
    adv = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0])
    log_prob = ratio.log().requires_grad_()
    loss, metrics = policy_loss(log_prob, torch.zeros(5), adv, eps)
    # min(ρA, clip(ρ)A): 0.5, 1.1, 1.2 (clipped), -0.8 (clipped), -1.5
    assert math.isclose(loss.item(), -(0.5 + 1.1 + 1.2 - 0.8 - 1.5) / 5, rel_tol=1e-6)
    assert math.isclose(float(metrics["policy/clip_fraction"]), 0.8, rel_tol=1e-6)
    loss.backward()
    # d/dlogπ of -ρA/5 where the unclipped branch is active; zero where the clipped branch is the min
    expected = torch.tensor([-0.5, -1.1, 0.0, 0.0, 1.5]) / 5
    torch.testing.assert_close(log_prob.grad, expected)
    kl = float(((ratio - 1) - ratio.log()).mean())
    assert math.isclose(float(metrics["policy/approx_kl"]), kl, rel_tol=1e-6)


def test_value_loss_plain_and_clipped():
    v, old, ret = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0]), torch.tensor([3.0, 1.0])
    loss, _ = value_loss(v, old, ret, 0.0)
    assert math.isclose(float(loss), 0.5 * (1.0 + 1.0) / 2)
    loss, _ = value_loss(v, old, ret, 0.5)
    # copy 0: V_c = 1.5 -> max(1, 2.25); copy 1: V_c = 0 -> max(1, 1)
    assert math.isclose(float(loss), 0.5 * (2.25 + 1.0) / 2)


# --- bookkeeping -------------------------------------------------------------------------------------
def test_sequence_starts_never_cross_episode_ends():
    done = torch.zeros(6, 2, dtype=torch.bool)
    done[2, 0] = True  # copy 0: episode ends after step 2; step 3 starts a new one
    starts = {tuple(x) for x in sequence_starts(done, 2).tolist()}
    assert starts == {(0, 0), (3, 0), (0, 1), (1, 1), (2, 1), (3, 1)}


def test_rollout_next_value_uses_bootstrap_only_at_ends():
    buf = RolloutBuffer(steps=3, num_envs=2, obs_key="state")
    for t in range(3):
        step = TensorDict(
            {
                "state": torch.full((2, 1), float(t)),
                ("next", "reward"): torch.ones(2, 1),
                ("next", "terminated"): torch.zeros(2, 1, dtype=torch.bool),
                ("next", "done"): torch.tensor([[t == 0], [False]]),
            },
            batch_size=[2],
        )
        info = TensorDict({"value": torch.tensor([10.0 * t, 10.0 * t + 1])}, batch_size=[2])
        buf.add(t, step, info, torch.tensor([100.0 + t, 200.0 + t]))
    data = buf.rollout()
    assert data.batch_size == torch.Size([3, 2]) and len(buf) == 6
    torch.testing.assert_close(
        data["next_value"], torch.tensor([[100.0, 11.0], [20.0, 21.0], [102.0, 202.0]])
    )
    assert buf.state_dict() == {}


def test_running_moments_match_the_pooled_statistics():
    stats, xs = RunningMoments((3,)), [torch.randn(50, 3) * 2 + 1, torch.randn(20, 3), torch.randn(7, 3) + 5]
    for x in xs:
        stats.update(x)
    pooled = torch.cat(xs)
    torch.testing.assert_close(stats.mean, pooled.mean(0), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(stats.var, pooled.var(0, unbiased=False), atol=1e-4, rtol=1e-4)


def test_action_spaces():
    assert _action_space(Bounded(-1.0, 1.0, shape=(4, 2))) == (2, False)
    assert _action_space(Categorical(6, shape=(4,))) == (6, True)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        _action_space(Bounded(-2.0, 2.0, shape=(4, 2)))
    with pytest.raises(ValueError, match="integer indices"):
        _action_space(OneHot(6, shape=(4, 6)))


# --- the agent on synthetic data ---------------------------------------------------------------------
def _agent(discrete: bool, wm_weight: float = 1.0, nan_limit: int = 3) -> PPOAgent:
    cfg = PPOConfig(
        policy_hidden=[16], value_hidden=[16], wm_weight=wm_weight, wm_batch_size=8, minibatches=2
    )
    wm = WorldModelConfig(latent_dim=8, horizon=2, predictor_hidden=[16], num_slices=8)
    return PPOAgent(cfg, wm, "state", (3,), 4, discrete, 5, nan_limit, torch.device("cpu"))


def _rollout(agent: PPOAgent, steps: int = 6, n: int = 5) -> TensorDict:
    rows = [agent.explore(TensorDict({"state": torch.randn(n, 3)}, batch_size=[n])) for _ in range(steps)]
    data = torch.stack(rows, 0)  # [T, N]
    data["state"] = torch.randn(steps, n, 3)
    data["reward"] = torch.randn(steps, n)
    data["terminated"] = torch.zeros(steps, n, dtype=torch.bool)
    data["done"] = torch.zeros(steps, n, dtype=torch.bool)
    data["next_value"] = torch.randn(steps, n)
    return data


@pytest.mark.parametrize("discrete", [False, True])
def test_log_prob_and_entropy_match_torch_distributions(discrete):
    agent = _agent(discrete)
    out = torch.randn(7, 4)
    if discrete:
        sample = torch.randint(4, (7,))
        dist = torch.distributions.Categorical(logits=out)
    else:
        sample = torch.randn(7, 4)
        dist = torch.distributions.Independent(torch.distributions.Normal(out, agent.nets.log_std.exp()), 1)
    log_prob, entropy = agent._log_prob_entropy(out, sample)
    torch.testing.assert_close(log_prob, dist.log_prob(sample))
    torch.testing.assert_close(entropy, dist.entropy())


@pytest.mark.parametrize("discrete", [False, True])
def test_update_changes_parameters_and_state_dict_round_trips(discrete):
    torch.manual_seed(0)
    agent = _agent(discrete)
    before = [p.detach().clone() for p in agent.nets.parameters()]
    metrics = agent.update(_rollout(agent), step=0)
    assert {"policy/loss", "value/loss", "policy/entropy", "wm/pred_loss"} <= metrics.keys()
    assert all(math.isfinite(v) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.nets.parameters()))
    actions = agent.act(TensorDict({"state": torch.randn(5, 3)}, batch_size=[5]), eval_mode=False)
    assert actions.shape == ((5,) if discrete else (5, 4))
    if not discrete:
        assert actions.abs().max() <= 1.0
    other = _agent(discrete)
    other.load_state_dict(agent.state_dict())
    obs = TensorDict({"state": torch.randn(5, 3)}, batch_size=[5])
    torch.testing.assert_close(other.act(obs, eval_mode=True), agent.act(obs, eval_mode=True))
    state = agent.optimizers["ppo"].state_dict()["state"]
    assert other.optimizers["ppo"].state_dict()["state"].keys() == state.keys()


def test_non_finite_loss_skips_steps_then_raises():
    agent = _agent(False, wm_weight=0.0, nan_limit=3)
    data = _rollout(agent)
    data["reward"][0, 0] = float("nan")
    before = [p.detach().clone() for p in agent.nets.parameters()]
    with pytest.raises(FloatingPointError, match=r"8 consecutive .*non-finite policy, value.*=3\)"):
        agent.update(data, step=0)  # every step of the update skipped; read once, when the update ends
    assert all(torch.equal(a, b) for a, b in zip(before, agent.nets.parameters()))


# --- the trainer -------------------------------------------------------------------------------------
def _scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    with (run_dir / "scalars.csv").open() as f:
        for row in csv.DictReader(f):
            out.setdefault(row["tag"], []).append((int(row["step"]), float(row["value"])))
    return out


def test_trainer_smoke_run_logs_evaluates_and_checkpoints(tmp_path):
    from jepa_agents.train.run import train

    cfg = compose(
        [
            *SMALL,
            "env=torch/cartpole_balance",
            "env.num_envs=8",
            "env.num_eval_envs=2",
            "env.action_repeat=8",
            "agent.rollout_steps=16",
            "train.total_env_steps=3072",  # 3 rollouts of 16 x 8 x 8
            "train.checkpoint_every=1024",
            "eval.every=2048",
            "eval.episodes=2",
            "logging.every=1",
            f"run_dir={tmp_path}",
        ]
    )
    run_dir = train(cfg)
    tags = _scalars(run_dir)
    for tag in ("policy/loss", "value/loss", "wm/pred_loss", "perf/env_steps_per_s", "eval/return"):
        assert tag in tags, tag
    assert [s for s, _ in tags["policy/loss"]] == [1024, 2048, 3072]
    assert [s for s, _ in tags["eval/return"]] == [0, 2048, 3072]  # step 0: eval.at_start
    assert [s for s, _ in tags["eval/random_return"]] == [0]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "ckpt_000000002048.pt",
        "ckpt_000000003072.pt",
    ]
    assert (run_dir / "curve.png").is_file()


def _random_return(n: int, seed: int) -> float:
    env = envs.make(
        "torch/cartpole_balance", num_envs=n, seed=seed, device="cpu", from_pixels=False, action_repeat=8
    )
    td, total, done = env.reset(), torch.zeros(n), torch.zeros(n, dtype=torch.bool)
    while not done.all():
        td["action"] = env.action_spec.rand()
        td = env.step(td)
        total += td["next", "reward"].reshape(n) * (~done)
        done |= td["next", "done"].reshape(n)
        td = td["next"]
    return float(total.mean())


def test_ppo_learns_cartpole_balance_from_states(tmp_path):
    """256 copies, 16 rollouts (~520k frames): the deterministic policy must beat the uniform-random one
    by 300 (random ≈ 270 of 1000; an untrained policy's zero-mean action ≈ 350-400)."""
    from jepa_agents.train.run import train

    random_return = _random_return(16, seed=123)
    cfg = compose(
        [
            *SMALL,
            "env=torch/cartpole_balance",
            "env.num_envs=256",
            "env.num_eval_envs=8",
            "env.action_repeat=8",
            "agent.rollout_steps=16",
            "agent.lr=1e-3",
            "agent.wm_weight=0",
            "train.total_env_steps=524288",  # 16 rollouts of 16 x 256 x 8
            "train.checkpoint_every=0",
            "eval.every=0",
            "eval.episodes=8",
            "logging.every=100000",
            "seed=0",
            f"run_dir={tmp_path}",
        ]
    )
    final = _scalars(train(cfg))["eval/return"][-1][1]
    assert final > random_return + 300, (final, random_return)
