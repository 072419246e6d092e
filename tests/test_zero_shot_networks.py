"""The two layouts of the zero-shot predictors and policy (flat MLP, the reference's two streams), and the
actor's objective over the predictor ensemble."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from jepa_agents.config.errors import ConfigError
from jepa_agents.config.load import compose, validate
from jepa_agents.zero_shot.agents import build_model
from jepa_agents.zero_shot.config import ZERO_SHOT
from jepa_agents.zero_shot.losses import actor_loss
from jepa_agents.zero_shot.results import method_label
from jepa_agents.zero_shot.td_jepa import Actor, Predictor
from jepa_agents.zero_shot.two_stream import TwoStream


def test_two_stream_predictor_embeds_action_and_task_apart():
    torch.manual_seed(0)
    pred = Predictor(6, 2, 5, [8, 8], 3, num=2, network="two_stream")
    member = pred.members[0]
    assert isinstance(member, TwoStream)
    assert member.first[0].in_features == 6 + 2 and member.second[0].in_features == 6 + 5  # [x, a], [x, z]
    assert member.head.in_dim == 8  # two halves of the embedding width
    x, a, z = torch.randn(4, 6), torch.randn(4, 2), torch.randn(4, 5)
    out = pred(x, a, z)
    assert out.shape == (2, 4, 3)
    # both reach the output
    a.requires_grad_(True)
    z.requires_grad_(True)
    pred(x, a, z).sum().backward()
    assert a.grad.abs().sum() > 0 and z.grad.abs().sum() > 0


def test_two_stream_actor_sees_the_state_alone_in_its_first_stream():
    actor = Actor(6, 5, 2, [8, 8], std=0.2, clip=0.3, network="two_stream")
    assert actor.net.first[0].in_features == 6 and actor.net.second[0].in_features == 6 + 5
    mean = actor(torch.randn(4, 6), torch.randn(4, 5))
    assert mean.shape == (4, 2) and mean.abs().max() <= 1


def test_network_is_checked_and_odd_widths_refused():
    with pytest.raises(ConfigError, match="agent.network='deep'; choose one of"):
        compose(["dataset=unused", "agent.network=deep"], ZERO_SHOT)
    with pytest.raises(ValueError, match="even embedding width"):
        TwoStream(3, 3, [7], 2)
    for preset in ("td_jepa_ortho", "fb"):  # both models build in both layouts and agree on shapes
        for network in ("flat", "two_stream"):
            cfg = compose(["dataset=unused", f"zs_agent={preset}", f"agent.network={network}"], ZERO_SHOT)
            model = build_model(cfg.agent, [4], 2)
            z = model.sample_z(3)
            assert model.successor(torch.randn(3, 4), torch.zeros(3, 2), z).shape == (3, cfg.agent.z_dim)


def test_a_run_saved_before_the_setting_keeps_the_flat_layout(tmp_path):
    """Run directories made before ``agent.network`` existed hold flat networks: their saved config (no such
    key) must still build flat models, or their checkpoints would not load."""
    cfg = compose(["dataset=unused", "zs_agent=td_jepa_ortho"], ZERO_SHOT)
    saved = OmegaConf.to_container(cfg)
    del saved["agent"]["network"]
    assert validate(OmegaConf.create(saved), ZERO_SHOT).agent.network == "flat"


def test_a_pessimistic_actor_maximizes_the_ensemble_minimum():
    """``actor_pessimism`` 0.5 with two members is the minimum of their values (metamotivo's FB); 0 the
    mean; with three members the penalty is the mean pairwise gap. The label names a pessimistic actor."""
    torch.manual_seed(0)
    pred, z = torch.randn(2, 5, 3), torch.randn(5, 3)
    qs = (pred * z).sum(-1)  # [2, 5]
    assert torch.allclose(actor_loss(pred, z)[0], -qs.mean())
    assert torch.allclose(actor_loss(pred, z, 0.5)[0], -qs.min(0).values.mean())
    three = torch.randn(3, 5, 3)
    q3 = (three * z).sum(-1)
    gap = sum((q3[i] - q3[j]).abs() for i in range(3) for j in range(3) if i != j) / 6
    assert torch.allclose(actor_loss(three, z, 1.0)[0], -(q3.mean(0) - gap).mean())
    fb = compose(["dataset=unused", "zs_agent=fb", "agent.actor_pessimism=0.5"], ZERO_SHOT).agent
    assert method_label(fb) == "fb_pessimism0.5"
    with pytest.raises(ConfigError, match="actor_pessimism"):
        compose(["dataset=unused", "zs_agent=fb", "agent.actor_pessimism=-1"], ZERO_SHOT)
