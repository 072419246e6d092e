"""Encoders, MLP and the random-shift augmentation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from jepa_agents.nn import MLP, RandomShift, make_encoder


@pytest.mark.parametrize(
    "kind, obs_shape",
    [("small_cnn", (3, 64, 64)), ("nature", (9, 84, 84)), ("drq", (3, 84, 84)), ("impala", (3, 64, 64))],
)
def test_pixel_encoders_shapes_and_uint8(kind, obs_shape):
    torch.manual_seed(0)
    enc = make_encoder(kind, obs_shape, 24)
    obs = torch.randint(0, 256, (2, 3, *obs_shape), dtype=torch.uint8)
    z = enc(obs)
    assert z.shape == (2, 3, 24) and z.dtype == torch.float32
    torch.testing.assert_close(enc(obs.float() / 255.0), z, rtol=1e-4, atol=1e-4)  # float input: [0, 1]
    torch.testing.assert_close(enc(obs[1]), z[1], rtol=1e-4, atol=1e-4)  # leading dims: batch dims


def test_auto_and_state_encoder():
    assert make_encoder("auto", (3, 64, 64), 8)(torch.zeros(1, 3, 64, 64, dtype=torch.uint8)).shape == (1, 8)
    assert make_encoder("auto", (3, 84, 84), 8)(torch.zeros(1, 3, 84, 84, dtype=torch.uint8)).shape == (1, 8)
    enc = make_encoder("mlp", (5,), 8, hidden_dims=(16,))
    assert enc(torch.randn(4, 2, 5)).shape == (4, 2, 8)


def test_encoder_errors():
    with pytest.raises(ValueError, match="unknown encoder kind"):
        make_encoder("vit", (3, 64, 64), 8)
    with pytest.raises(ValueError, match="flat observations"):
        make_encoder("mlp", (3, 64, 64), 8)
    with pytest.raises(ValueError, match=r"images \[C, H, W\]"):
        make_encoder("nature", (5,), 8)
    with pytest.raises(ValueError, match="too small"):
        make_encoder("nature", (3, 16, 16), 8)


def test_mlp():
    mlp = MLP(4, [8, 8], 3, activation="silu", layer_norm=True)
    assert mlp(torch.randn(5, 2, 4)).shape == (5, 2, 3)
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in mlp.modules()) == 2
    with pytest.raises(ValueError, match="unknown activation"):
        MLP(4, [8], 3, activation="swish2")


def test_random_shift_is_a_shift_and_identity_in_eval():
    torch.manual_seed(0)
    pad = 3
    x = torch.randint(0, 256, (6, 2, 3, 16, 16), dtype=torch.uint8)
    aug = RandomShift(pad)
    out = aug(x)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = F.pad(x.reshape(-1, 3, 16, 16).float(), (pad,) * 4, mode="replicate")
    offsets = set()
    for i, img in enumerate(out.reshape(-1, 3, 16, 16).float()):
        found = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if torch.equal(padded[i, :, dy : dy + 16, dx : dx + 16], img)
        ]
        assert found, f"image {i} is not a shifted copy of its input"
        offsets.add(found[0])
    assert len(offsets) > 1  # independent shifts per image
    aug.eval()
    assert aug(x) is x
    assert RandomShift(0)(x) is x


def test_random_shift_float_and_bad_input():
    x = torch.rand(4, 3, 8, 8)
    assert RandomShift(2)(x).dtype == torch.float32
    with pytest.raises(ValueError, match=r"\[\*, C, H, W\]"):
        RandomShift(2)(torch.rand(8, 8))
    with pytest.raises(ValueError, match="pad"):
        RandomShift(-1)
