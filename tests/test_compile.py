"""Every learner's gradient step compiled equals the eager one (a few steps from the same seed).

The compiled steps run under ``torch.compile``: with the ``aot_eager`` backend for every learner
(Dynamo's trace and AOT autograd's forward/backward graphs, what breaks on a data-dependent branch, a
host read or a mutation it cannot follow) and with the default ``inductor`` backend (generated C++
kernels) for the default pixel learner; ``fallback_random`` makes the generated code draw the same
random numbers as eager PyTorch. The CUDA-graph step is checked the same way where CUDA is present.
"""

from __future__ import annotations

import pytest
import torch
import torch._inductor.config as inductor_config
from tensordict import TensorDict
from torch._dynamo.utils import counters

from jepa_agents.agents.config import DiscreteSACConfig, SACConfig
from jepa_agents.agents.discrete_sac import DiscreteSACAgent
from jepa_agents.agents.imagination import ImaginationAgent
from jepa_agents.agents.imagination_config import ImaginationConfig
from jepa_agents.agents.ppo import PPOAgent
from jepa_agents.agents.ppo_config import PPOConfig
from jepa_agents.agents.sac import SACAgent
from jepa_agents.infra.compile import resolve_compile
from jepa_agents.world_models import JEPAWorldModel, WorldModelConfig
from jepa_agents.zero_shot.agents import make_zero_shot_agent
from jepa_agents.zero_shot.config import ZeroShotAgentConfig

CPU = torch.device("cpu")
B, S, A = 8, 5, 2  # batch, state size, actions


@pytest.fixture
def backend(monkeypatch, request):
    """``compile_step`` with the given ``torch.compile`` backend; fresh Dynamo caches."""
    name = request.param
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real(fn, backend=name, **kw))
    torch._dynamo.reset()
    counters.clear()
    with inductor_config.patch(fallback_random=True):
        yield name
    assert counters["stats"]["unique_graphs"] > 0, "nothing was compiled: the 'compiled' step ran eagerly"
    torch._dynamo.reset()


def _wm(pixels: bool = False, **kw) -> WorldModelConfig:
    base = dict(latent_dim=16, horizon=2, predictor_hidden=[16], num_slices=8, augment_pad=2)
    if pixels:
        base |= dict(encoder="small_cnn", encoder_channels=[8, 8, 8, 8])
    else:
        base |= dict(encoder="mlp")
    return WorldModelConfig(**(base | kw))


def _slices(length: int, obs_shape, discrete: bool, seed: int) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    obs = (
        torch.randint(0, 256, (B, length, *obs_shape), generator=g, dtype=torch.uint8)
        if len(obs_shape) == 3
        else torch.randn(B, length, *obs_shape, generator=g)
    )
    action = (
        torch.randint(0, A, (B, length), generator=g)
        if discrete
        else torch.rand(B, length, A, generator=g) * 2 - 1
    )
    terminated = torch.rand(B, length, 1, generator=g) < 0.1
    key = "pixels" if len(obs_shape) == 3 else "state"
    data = {
        key: obs,
        "action": action,
        "reward": torch.randn(B, length, 1, generator=g),
        "terminated": terminated,
    }
    return TensorDict(data, batch_size=[B, length])


def _sac(mode: str, discrete: bool = False, pixels: bool = False, actor_every: int = 2):
    torch.manual_seed(0)
    obs_shape = (3, 64, 64) if pixels else (S,)
    small = dict(batch_size=B, actor_hidden=[16], critic_hidden=[16], feature_dim=8, n_step=2)
    kwargs = dict(num_envs=1, action_repeat=1, max_consecutive_nan=3, compile_mode=mode)
    key = "pixels" if pixels else "state"
    if discrete:
        model = JEPAWorldModel(_wm(pixels), obs_shape, A, True)
        return DiscreteSACAgent(DiscreteSACConfig(**small), model, key, A, CPU, life_loss=False, **kwargs)
    model = JEPAWorldModel(_wm(pixels), obs_shape, A, False)
    return SACAgent(SACConfig(**small, actor_update_every=actor_every), model, key, A, CPU, **kwargs)


def _imagination(mode: str):
    torch.manual_seed(0)
    wm = _wm(reward_weight=1.0, continue_weight=1.0)
    cfg = ImaginationConfig(batch_size=B, actor_hidden=[16], critic_hidden=[16], imagine_horizon=3)
    model = JEPAWorldModel(wm, (S,), A, False)
    return ImaginationAgent(
        cfg,
        model,
        "state",
        A,
        False,
        CPU,
        num_envs=1,
        action_repeat=1,
        max_consecutive_nan=3,
        compile_mode=mode,
    )


def _compare(eager: dict, compiled: dict, rtol: float = 1e-4, atol: float = 1e-5, skip=()) -> None:
    assert eager.keys() == compiled.keys()
    for key in eager:
        if key in skip:
            continue
        msg = lambda m, k=key: f"{k}: {m}"  # noqa: E731
        torch.testing.assert_close(compiled[key], eager[key], rtol=rtol, atol=atol, msg=msg)


# The encoder's last bias feeds the batch-normalized embedding, which removes its mean: its gradient is zero
# in exact arithmetic, so Adam turns either implementation's rounding noise (1e-9) into ±lr steps. Generated
# kernels round differently from eager ones; the same kernels (aot_eager) agree on it too. The running mean
# of the embedding before normalization carries that bias; nothing after the normalization sees either.
ROUNDING_ONLY = ("model._encoder._head.bias", "model._norm.running_mean")


def _run_sac_like(build, length_of, obs_shape, discrete: bool, steps: int = 3, skip=()) -> None:
    eager, compiled = build("none"), build("compile")
    assert torch.equal(
        torch.cat([p.flatten() for p in eager.nets.parameters()]),
        torch.cat([p.flatten() for p in compiled.nets.parameters()]),
    )
    for i in range(steps):
        batch = _slices(length_of(eager), obs_shape, discrete, seed=i)
        torch.manual_seed(100 + i)
        m_eager = eager.learn(batch.clone(), diagnostics=True)
        torch.manual_seed(100 + i)
        m_compiled = compiled.learn(batch.clone(), diagnostics=True)
        _compare(m_eager, m_compiled)
    _compare(eager.nets.state_dict(), compiled.nets.state_dict(), skip=skip)
    if not skip:
        for name, opt in eager.optimizers.items():
            for i, state in opt.state_dict()["state"].items():
                _compare(state, compiled.optimizers[name].state_dict()["state"][i])


@pytest.mark.parametrize("backend", ["aot_eager"], indirect=True)
@pytest.mark.parametrize("discrete", [False, True])
def test_compiled_sac_step_equals_eager(backend, discrete):
    """SAC + JEPA (continuous, with the actor every second step: two step functions) and discrete SAC."""
    _run_sac_like(lambda mode: _sac(mode, discrete), lambda a: a.seq_len, (S,), discrete)


@pytest.mark.parametrize("backend", ["inductor"], indirect=True)
def test_inductor_compiled_pixel_sac_step_equals_eager(backend):
    """The default learner's shape of update (conv encoder on uint8 frames, random shift, SIGReg) through
    generated kernels."""

    def build(mode):
        return _sac(mode, pixels=True, actor_every=1)  # the actor every step: one step function to compile

    _run_sac_like(build, lambda a: a.seq_len, (3, 64, 64), False, steps=2, skip=ROUNDING_ONLY)


@pytest.mark.parametrize("backend", ["aot_eager"], indirect=True)
def test_compiled_imagination_step_equals_eager(backend):
    _run_sac_like(_imagination, lambda a: a.seq_len, (S,), False)


@pytest.mark.parametrize("backend", ["aot_eager"], indirect=True)
def test_compiled_ppo_update_equals_eager(backend):
    def build(mode):
        torch.manual_seed(0)
        cfg = PPOConfig(policy_hidden=[16], value_hidden=[16], wm_batch_size=8, minibatches=2, epochs=2)
        return PPOAgent(cfg, _wm(), "state", (S,), A, False, 5, 3, CPU, mode)

    eager, compiled = build("none"), build("compile")
    torch.manual_seed(1)
    rows = [eager.explore(TensorDict({"state": torch.randn(5, S)}, batch_size=[5])) for _ in range(6)]
    rollout = torch.stack(rows, 0)  # [T, N]
    rollout["state"] = torch.randn(6, 5, S)
    rollout["reward"] = torch.randn(6, 5)
    rollout["terminated"] = torch.zeros(6, 5, dtype=torch.bool)
    rollout["done"] = torch.zeros(6, 5, dtype=torch.bool)
    rollout["next_value"] = torch.randn(6, 5)
    for i in range(2):
        torch.manual_seed(10 + i)
        m_eager = eager.update(rollout.clone(), step=0)
        torch.manual_seed(10 + i)
        m_compiled = compiled.update(rollout.clone(), step=0)
        assert m_eager.keys() == m_compiled.keys()
        for key in m_eager:
            assert m_compiled[key] == pytest.approx(m_eager[key], rel=1e-4, abs=1e-5), key
    _compare(eager.nets.state_dict(), compiled.nets.state_dict())


@pytest.mark.parametrize("backend", ["aot_eager"], indirect=True)
@pytest.mark.parametrize("name", ["td_jepa_sigreg", "fb"])  # orthonormality: the same step, another term
def test_compiled_zero_shot_step_equals_eager(backend, name):
    regularizer = {"td_jepa_ortho": "orthonormality", "td_jepa_sigreg": "sigreg"}.get(name, "orthonormality")
    cfg = ZeroShotAgentConfig(
        name="fb" if name == "fb" else "td_jepa",
        regularizer=regularizer,
        obs_key="state",
        phi_dim=8,
        z_dim=8,
        encoder_hidden=[16],
        predictor_hidden=[16],
        actor_hidden=[16],
        sigreg_slices=8,
    )
    agents = {}
    for mode in ("none", "compile"):
        torch.manual_seed(0)
        agents[mode] = make_zero_shot_agent(cfg, [S], A, CPU, mode)
    for i in range(3):
        g = torch.Generator().manual_seed(i)
        batch = TensorDict(
            {
                "observation": {"state": torch.randn(B, S, generator=g)},
                "action": torch.rand(B, A, generator=g) * 2 - 1,
                "next": {
                    "observation": {"state": torch.randn(B, S, generator=g)},
                    "terminated": torch.zeros(B, 1, dtype=torch.bool),
                },
            },
            batch_size=[B],
        )
        metrics = {}
        for mode, agent in agents.items():
            torch.manual_seed(100 + i)
            metrics[mode] = agent.update(batch.clone())
        _compare(metrics["none"], metrics["compile"])
    _compare(agents["none"].model.state_dict(), agents["compile"].model.state_dict())
    _compare(agents["none"].target.state_dict(), agents["compile"].target.state_dict())


def test_resolve_compile_modes():
    assert resolve_compile("auto", CPU)[0] == "none"
    assert resolve_compile("auto", torch.device("cuda"))[0] == "cudagraph"
    assert resolve_compile("compile", CPU) == ("compile", "as configured")
    mode, why = resolve_compile("cudagraph", torch.device("cuda"), world_size=2)
    assert mode == "none" and "torchrun" in why
    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_compile("cudagraph", CPU)
    with pytest.raises(ValueError, match="choose one of"):
        resolve_compile("fast", CPU)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graph_sac_step_equals_eager():
    """On CUDA: the whole step captured as one graph equals the eager step."""
    device = torch.device("cuda")
    built = {}
    for mode in ("none", "cudagraph"):
        torch.manual_seed(0)
        model = JEPAWorldModel(_wm(True), (3, 64, 64), A, False)
        cfg = SACConfig(batch_size=B, actor_hidden=[16], critic_hidden=[16], feature_dim=8, n_step=2)
        built[mode] = SACAgent(
            cfg,
            model,
            "pixels",
            A,
            device,
            num_envs=1,
            action_repeat=1,
            max_consecutive_nan=3,
            compile_mode=mode,
        )
    for i in range(6):  # past the graph's warm-up calls
        batch = _slices(built["none"].seq_len, (3, 64, 64), False, seed=i).to(device)
        out = {}
        for mode, agent in built.items():
            torch.manual_seed(100 + i)
            out[mode] = agent.learn(batch.clone())
        _compare(out["none"], out["cudagraph"], rtol=1e-3, atol=1e-4)
