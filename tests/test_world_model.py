"""JEPA / seq-JEPA world models, the jepa_loss and collapse diagnostics."""

from __future__ import annotations

import pytest
import torch

from jepa_agents.losses import jepa_loss
from jepa_agents.world_models import JEPAWorldModel, SeqJEPAWorldModel, WorldModelConfig, make_world_model
from jepa_agents.world_models.diagnostics import collapse_metrics, effective_rank

B, K, D, A = 6, 3, 16, 2
STATE = (5,)


def small_cfg(**overrides) -> WorldModelConfig:
    base = dict(
        latent_dim=D, predictor_hidden=[32], head_hidden=[16], num_slices=16, seq_heads=2, seq_context=4
    )
    base.update(overrides)
    return WorldModelConfig(**base)


def test_config_validation():
    with pytest.raises(ValueError, match="target"):
        WorldModelConfig(target="momentum")
    with pytest.raises(ValueError, match="regularizer"):
        WorldModelConfig(regularizer="barlow")
    with pytest.raises(ValueError, match="seq_heads"):
        WorldModelConfig(name="seq_jepa", latent_dim=10, seq_heads=4)
    assert make_world_model(WorldModelConfig(name="none"), STATE, A, False) is None


def test_shapes_pixels_and_rollout_equals_repeated_predict():
    torch.manual_seed(0)
    model = JEPAWorldModel(small_cfg(), (3, 64, 64), A, discrete=False)
    obs = torch.randint(0, 256, (B, 3, 64, 64), dtype=torch.uint8)
    z0 = model.encode(obs)
    assert z0.shape == (B, D)
    actions = torch.rand(B, K, A) * 2 - 1
    roll = model.rollout(z0, actions)
    assert roll.shape == (B, K, D)
    z = z0
    for t in range(K):
        z = model.predict(z, actions[:, t])
        torch.testing.assert_close(roll[:, t], z)


def test_discrete_actions_indices_equal_one_hot():
    torch.manual_seed(0)
    model = JEPAWorldModel(small_cfg(predictor="mlp"), STATE, 4, discrete=True)
    z0 = model.encode(torch.randn(B, 5))
    idx = torch.randint(0, 4, (B, K))
    onehot = torch.nn.functional.one_hot(idx, 4).float()
    torch.testing.assert_close(model.rollout(z0, idx), model.rollout(z0, onehot))


def test_mismatched_action_shapes_raise():
    model = JEPAWorldModel(small_cfg(), STATE, A, discrete=False)
    z0 = torch.randn(B, D)
    with pytest.raises(ValueError, match=r"actions must have shape \(6, 3, 2\)"):
        model.rollout(z0, torch.randn(B, K, A + 1))
    with pytest.raises(ValueError, match=r"actions must have shape \(6, 3, 2\)"):
        model.rollout(z0, torch.randn(B + 1, K, A))
    with pytest.raises(ValueError, match="T >= 1"):
        model.rollout(z0, torch.randn(B))
    with pytest.raises(ValueError, match="z0 must have shape"):
        model.rollout(torch.randn(B, D + 1), torch.randn(B, K, A))
    discrete = JEPAWorldModel(small_cfg(), STATE, 3, discrete=True)
    with pytest.raises(ValueError, match="discrete action indices"):
        discrete.rollout(z0, torch.randint(0, 3, (B, K, 1)))


def _target_grad(target: str) -> torch.Tensor:
    torch.manual_seed(0)
    model = JEPAWorldModel(small_cfg(target=target, regularizer="none"), STATE, A, discrete=False)
    obs = torch.randn(B, K + 1, 5)
    z = model.encode(obs).detach().requires_grad_()
    loss, _ = jepa_loss(model, obs, torch.rand(B, K, A), z=z, diagnostics=False)
    loss.backward()
    return z.grad


def test_gradients_reach_targets_by_default_not_with_stopgrad_or_ema():
    # predictions depend on z[:, 0] only, so gradients on z[:, 1:] come through the targets
    assert _target_grad("online")[:, 1:].abs().sum() > 0
    for target in ("stopgrad", "ema"):
        grad = _target_grad(target)
        assert grad[:, 0].abs().sum() > 0
        assert grad[:, 1:].abs().sum() == 0


def test_encoder_gets_gradients_and_default_loss_uses_sigreg():
    torch.manual_seed(0)
    model = JEPAWorldModel(small_cfg(), (3, 64, 64), A, discrete=False)
    obs = torch.randint(0, 256, (B, K + 1, 3, 64, 64), dtype=torch.uint8)
    loss, metrics = jepa_loss(model, obs, torch.rand(B, K, A))
    loss.backward()
    grads = [p.grad for p in model._encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    expected = {
        "wm/loss",
        "wm/pred_loss",
        "wm/reg",
        "wm/sigreg",
        "wm/effective_rank",
        "wm/std_mean",
        "wm/std_min",
    }
    assert expected | {f"wm/pred_error_k{k}" for k in range(1, K + 1)} == set(metrics)
    assert all(v.ndim == 0 and not v.requires_grad for v in metrics.values())
    torch.testing.assert_close(metrics["wm/loss"], metrics["wm/pred_loss"] + 0.1 * metrics["wm/reg"])


def test_ema_update_math():
    torch.manual_seed(0)
    model = JEPAWorldModel(small_cfg(target="ema", ema_tau=0.25), STATE, A, discrete=False)
    obs = torch.randn(B, 5)
    torch.testing.assert_close(model.encode_target(obs), model.encode(obs))
    before = [p.clone() for p in model._target_encoder.parameters()]
    with torch.no_grad():
        for p in model._encoder.parameters():
            p.add_(torch.randn_like(p))
    model.update_target()
    for old, new, online in zip(before, model._target_encoder.parameters(), model._encoder.parameters()):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * online)
        assert not new.requires_grad
    model.update_target(tau=1.0)
    torch.testing.assert_close(model.encode_target(obs), model.encode(obs))
    with pytest.raises(RuntimeError, match="target='ema'"):
        JEPAWorldModel(small_cfg(), STATE, A, discrete=False).update_target()


def test_loss_options_and_heads():
    torch.manual_seed(0)
    cfg = small_cfg(
        pred_loss="cosine",
        regularizer="vicreg",
        regularize_predictions=True,
        reward_weight=1.0,
        value_weight=0.5,
        inverse_weight=0.5,
    )
    model = JEPAWorldModel(cfg, STATE, A, discrete=False)
    obs, actions = torch.randn(B, K + 1, 5), torch.rand(B, K, A) * 2 - 1
    loss, metrics = jepa_loss(
        model, obs, actions, rewards=torch.randn(B, K, 1), value_targets=torch.randn(B, K + 1)
    )
    loss.backward()
    assert {"wm/reward_loss", "wm/value_loss", "wm/inverse_loss"} <= set(metrics)
    assert model.reward(torch.randn(B, D), actions[:, 0]).shape == (B,)
    assert model.value(torch.randn(B, K, D)).shape == (B, K)
    assert model.inverse_action(torch.randn(B, D), torch.randn(B, D)).shape == (B, A)
    with pytest.raises(ValueError, match="needs rewards"):
        jepa_loss(model, obs, actions, value_targets=torch.randn(B, K + 1))
    with pytest.raises(RuntimeError, match="reward_weight"):
        JEPAWorldModel(small_cfg(), STATE, A, discrete=False).reward(torch.randn(B, D), actions[:, 0])


def test_loss_input_checks():
    model = JEPAWorldModel(small_cfg(), STATE, A, discrete=False)
    with pytest.raises(ValueError, match="obs must be"):
        jepa_loss(model, torch.randn(B, K + 1, 6), torch.rand(B, K, A))
    with pytest.raises(ValueError, match="obs must be"):
        jepa_loss(model, torch.randn(B, 1, 5), torch.rand(B, 0, A))
    with pytest.raises(ValueError, match="z must have shape"):
        jepa_loss(model, torch.randn(B, K + 1, 5), torch.rand(B, K, A), z=torch.randn(B, K, D))
    with pytest.raises(ValueError, match="actions must have shape"):
        jepa_loss(model, torch.randn(B, K + 1, 5), torch.rand(B, K + 1, A))


def test_seq_jepa_shapes_and_causality():
    torch.manual_seed(0)
    model = SeqJEPAWorldModel(small_cfg(name="seq_jepa"), STATE, 3, discrete=True)
    length = 4
    z = torch.randn(B, length, D)
    prev = torch.randint(0, 3, (B, length))
    ctx = model.context(z, prev)
    assert ctx.shape == (B, length, D)
    assert model.predict(ctx[:, -1], prev[:, 0]).shape == (B, D)
    j = 2
    z2, prev2 = z.clone(), prev.clone()
    z2[:, j:] += 1.0
    prev2[:, j:] = (prev2[:, j:] + 1) % 3
    ctx2 = model.context(z2, prev2)
    torch.testing.assert_close(ctx2[:, :j], ctx[:, :j])  # the past does not see the future
    assert not torch.allclose(ctx2[:, j:], ctx[:, j:])
    with pytest.raises(ValueError, match="seq_context"):
        model.context(torch.randn(B, 5, D), torch.randint(0, 3, (B, 5)))
    obs, actions = torch.randn(B, K + 1, 5), torch.randint(0, 3, (B, K))
    loss, metrics = jepa_loss(model, obs, actions)
    loss.backward()
    assert metrics["wm/pred_error_k3"].ndim == 0


def test_seq_jepa_prediction_k_uses_views_up_to_k():
    torch.manual_seed(0)
    model = SeqJEPAWorldModel(small_cfg(name="seq_jepa"), STATE, A, discrete=False)
    z, actions = torch.randn(B, K + 1, D), torch.rand(B, K, A)
    pred = model.predict_sequence(z, actions)
    assert pred.shape == (B, K, D)
    z2 = z.clone()
    z2[:, 1] += 1.0
    pred2 = model.predict_sequence(z2, actions)
    torch.testing.assert_close(pred2[:, 0], pred[:, 0])
    assert not torch.allclose(pred2[:, 1], pred[:, 1])


def test_diagnostics():
    torch.manual_seed(0)
    white = torch.randn(512, 32)
    assert effective_rank(white) > 25
    line = torch.randn(512, 1) @ torch.randn(1, 32)
    assert effective_rank(line) == pytest.approx(1.0, abs=0.05)
    assert effective_rank(torch.ones(8, 4)) == 0
    m = collapse_metrics(white)
    assert m["wm/sigreg"] < 2.0 and m["wm/std_mean"] == pytest.approx(1.0, abs=0.05)
    assert collapse_metrics(line)["wm/sigreg"] > 20


def test_standardized_loss_removes_the_scale_collapse_direction():
    """With ``standardize`` the regularizer sees batch-standardized embeddings: shrinking z (the direction
    in which the prediction error vanishes and SIGReg's gradients die) changes nothing; without it a
    shrunken batch sits on SIGReg's flat collapsed plateau."""
    torch.manual_seed(0)
    obs = torch.randint(0, 256, (32, K + 1, 3, 64, 64), dtype=torch.uint8)
    actions = torch.rand(32, K, A)
    z = torch.randn(32, K + 1, D)
    reg = {}
    for standardize in (True, False):
        model = JEPAWorldModel(small_cfg(standardize=standardize), (3, 64, 64), A, discrete=False)
        for scale in (1.0, 1e-3):
            model._regularizer.set_extra_state({"calls": 0})  # the same directions for both scales
            torch.manual_seed(1)
            _, metrics = jepa_loss(model, obs, actions, z=z * scale + 5.0, diagnostics=False)
            reg[standardize, scale] = metrics["wm/reg"].item()
    assert abs(reg[True, 1.0] - reg[True, 1e-3]) < 1e-2 * reg[True, 1.0]
    assert reg[False, 1e-3] > 5 * reg[True, 1e-3]
