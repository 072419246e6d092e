"""DreamerV3's bounded-normal policy (``agent.actor_dist=bounded_normal``)."""

from __future__ import annotations

import math

import torch

from jepa_agents.agents.bounded_normal import BoundedNormalActor, normal_entropy, normal_log_prob


def test_log_prob_and_entropy_are_the_gaussians():
    mean, std, u = torch.randn(7, 3).tanh(), torch.rand(7, 3) + 0.1, torch.randn(7, 3) * 2
    normal = torch.distributions.Normal(mean, std)
    torch.testing.assert_close(normal_log_prob(mean, std, u), normal.log_prob(u).sum(-1))
    torch.testing.assert_close(normal_entropy(std), normal.entropy().sum(-1))


def test_an_untrained_policy_pushes_hard_and_stays_in_the_box():
    """The mean starts near 0 and the std near its top (0.9·sigmoid(2) + 0.1 = 0.89), so actions reach
    the bounds from the start; samples are clipped to [-1, 1], log π is the unclipped sample's."""
    torch.manual_seed(0)
    actor = BoundedNormalActor(8, 2, [64, 64], std_min=0.1, std_max=1.0)
    z = torch.randn(4096, 8)
    mean, std = actor(z)
    assert float(mean.abs().max()) < 0.05
    torch.testing.assert_close(std, torch.full_like(std, 0.9 / (1 + math.exp(-2)) + 0.1), atol=0.01, rtol=0)
    action, log_prob = actor.sample(z)
    assert float(action.abs().max()) == 1.0 and float((action.abs() == 1).float().mean()) > 0.2
    assert log_prob.shape == (4096, 1) and torch.isfinite(log_prob).all()
    # reparameterized where unclipped
    (grad,) = torch.autograd.grad(action.sum(), [actor._mlp.output_layer.bias])
    assert float(grad.abs().sum()) > 0
    torch.testing.assert_close(actor.mode(z), mean)
