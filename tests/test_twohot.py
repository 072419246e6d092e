"""DreamerV3's two-hot symlog critic: the encoding, the inverse transform, the loss with its slow-critic
term, and the reason it exists (a target of 500 is learned as fast as one of 0.5)."""

from __future__ import annotations

import pytest
import torch

from jepa_agents.agents.imagination_losses import twohot_critic_loss
from jepa_agents.agents.twohot import TwoHotCritic, symexp, symlog, twohot

pytestmark = pytest.mark.usefixtures("one_thread")


def test_symlog_symexp_and_twohot_encoding():
    x = torch.tensor([-1000.0, -3.0, -0.5, 0.0, 0.25, 7.0, 1e4])
    torch.testing.assert_close(symexp(symlog(x)), x, rtol=1e-5, atol=1e-5)
    assert float(symlog(torch.tensor(torch.e - 1))) == pytest.approx(1.0)
    bins = torch.linspace(-20, 20, 255)
    y = torch.tensor([-3.3, 0.0, 0.01, 5.123, 19.99])
    code = twohot(y, bins)  # [5, 255]
    torch.testing.assert_close(code.sum(-1), torch.ones(5))
    assert int((code > 0).sum(-1).max()) <= 2  # at most two bins, and adjacent ones
    torch.testing.assert_close((code * bins).sum(-1), y, rtol=0, atol=1e-5)  # expectation = the target
    outside = twohot(torch.tensor([-50.0, 50.0]), bins)
    assert float(outside[0, 0]) == 1.0 and float(outside[1, -1]) == 1.0  # clamped to the end bins


def test_critic_starts_at_zero_and_its_loss_has_the_slow_term():
    torch.manual_seed(0)
    critic = TwoHotCritic(4, [16], num_bins=31)
    z = torch.randn(3, 5, 4)  # [H, N, D]
    torch.testing.assert_close(critic(z), torch.zeros(3, 5, 1))  # zero-initialized output layer
    logits = critic.logits(z)
    returns, slow, w = torch.full((3, 5), 2.0), torch.full((3, 5), -1.0), torch.ones(3, 5)
    without, _ = twohot_critic_loss(critic, logits, returns, slow, w, 0.0)
    with_slow, m = twohot_critic_loss(critic, logits, returns, slow, w, 1.0)
    slow_term = critic.loss(logits, slow).mean()
    assert float(with_slow.detach()) == pytest.approx(float(without.detach()) + float(slow_term.detach()))
    assert float(m["value/mean"]) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="shapes differ"):
        twohot_critic_loss(critic, logits, returns[:2], slow, w, 1.0)


@pytest.mark.parametrize("target", [0.5, 500.0])
def test_large_and_small_returns_are_learned_at_the_same_speed(target):
    # The same network, optimizer and number of steps reach either target to within 0.05 in symlog space
    # (5 %); a squared error on the raw value gets 0.5 but not 500 in the same steps, which is why the
    # imagination critic is two-hot.
    torch.manual_seed(0)
    z = torch.randn(64, 8)
    critic = TwoHotCritic(8, [64])
    opt = torch.optim.Adam(critic.parameters(), lr=3e-3)
    for _ in range(150):
        loss = critic.loss(critic.logits(z), torch.full((64,), target)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float((symlog(critic(z).detach().mean()) - symlog(torch.tensor(target))).abs()) < 0.05
    mse = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    opt = torch.optim.Adam(mse.parameters(), lr=3e-3)
    for _ in range(150):
        loss = (mse(z) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    reached = float((symlog(mse(z).detach().mean()) - symlog(torch.tensor(target))).abs()) < 0.05
    assert reached == (target < 1)
