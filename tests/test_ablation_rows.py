"""The rows of the world-model ablation differ in their named switch only: the same encoder stack
(initialisation, embedding normalization, widths, augmentation), the same critic batch, the same actor and
critic networks; ``world_model=none`` is the SIGReg row without its loss."""

from __future__ import annotations

import pytest
import torch

from jepa_agents.agents import make_agent
from jepa_agents.train.config import compose
from jepa_agents.train.online import make_env

ROWS = {
    "sigreg": ([], {}),
    "none": (["world_model=none"], {"name": "none"}),
    "vicreg": (["world_model=jepa_vicreg"], {"regularizer": "vicreg"}),
    "no_regularizer": (["world_model.regularizer=none"], {"regularizer": "none"}),
    "spr_ema": (["world_model=spr_ema"], {"regularizer": "none", "target": "ema", "pred_loss": "cosine"}),
}
"""Row -> (overrides, the world-model settings that differ from the SIGReg row: nothing else may)."""

COMMON = ["device=cpu", "world_model.precision=fp32"]


def _build(overrides: list[str]):
    cfg = compose([*COMMON, *overrides])
    env = make_env(cfg.env, 1, 0, torch.device("cpu"))
    torch.manual_seed(0)
    return cfg, make_agent(cfg, env, torch.device("cpu"))


def _encoder_stack(model) -> dict[str, torch.Tensor]:
    """Parameters and buffers of the encoder stack (what the agent's ``z`` comes from)."""
    state = model.state_dict()
    return {k: v for k, v in state.items() if k.startswith(("_encoder.", "_norm.", "_augment."))}


@pytest.mark.parametrize("row", [r for r in ROWS if r != "sigreg"])
def test_rows_differ_only_in_their_switch(row, one_thread):
    base_cfg, base = _build(ROWS["sigreg"][0])
    cfg, agent = _build(ROWS[row][0])
    wm, wm_base = dict(cfg.world_model), dict(base_cfg.world_model)
    assert {k: v for k, v in wm.items() if wm_base[k] != v} == ROWS[row][1]
    assert cfg.agent == base_cfg.agent and cfg.env == base_cfg.env and cfg.train == base_cfg.train
    # the same encoder stack, initialised identically, with the embedding normalization and random shift
    stack, stack_base = _encoder_stack(agent.nets.model), _encoder_stack(base.nets.model)
    assert stack.keys() == stack_base.keys() and any(k.startswith("_norm.") for k in stack)
    assert all(torch.equal(stack[k], stack_base[k]) for k in stack)
    assert agent.nets.model._augment.pad == base.nets.model._augment.pad == 4
    # the same critic batch: T = K transitions per slice of K + n steps
    assert (agent.horizon, agent.seq_len) == (base.horizon, base.seq_len) == (3, 6)
    # the same actor and critic networks (shapes; their init follows the world model's RNG draws)
    for name in ("actor", "critic", "critic_target"):
        shapes = {k: v.shape for k, v in getattr(agent.nets, name).state_dict().items()}
        assert shapes == {k: v.shape for k, v in getattr(base.nets, name).state_dict().items()}
    # and the switch does act: only the world-model rows train with the JEPA loss
    assert agent._use_world_model == (row != "none") and base._use_world_model


def test_no_world_model_embedding_is_normalized(one_thread):
    """On real frames the no-world-model row's ``z`` has per-dimension std ≈ 1, as the others' (before:
    0.16 against 1.01 without the normalization)."""
    cfg, agent = _build(ROWS["none"][0])
    env = make_env(cfg.env, 64, 0, torch.device("cpu"))
    td = env.reset()
    for _ in range(5):
        td["action"] = env.action_spec.rand()
        _, td = env.step_and_maybe_reset(td)
    with torch.no_grad():
        z = agent.nets.model.encode(td["pixels"])  # [64, D], batch statistics (training mode)
    assert float(z.std(0).mean()) == pytest.approx(1.0, abs=0.05)
