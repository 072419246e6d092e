"""DrQ-style random shift augmentation (Kostrikov et al. 2021; Yarats et al. 2022)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RandomShift(nn.Module):
    """Shift every image by an independent integer offset in ``[-pad, pad]²`` (replicate padding).

    ``x`` ``[*, C, H, W]`` (any dtype, uint8 included) -> same shape and dtype. Replicate padding followed
    by a crop at offset ``(dy, dx)`` reads pixel ``(clamp(i + dy, 0, H-1), clamp(j + dx, 0, W-1))`` of the
    original image, so the shift is one batched ``gather`` over the flattened ``H·W`` pixels with clamped
    indices, in the input's own dtype: values are copied exactly (no interpolation, no float copy of a
    uint8 batch). Identity in eval mode or with ``pad = 0``. Uses the global torch RNG on ``x``'s device.
    """

    def __init__(self, pad: int = 4):
        super().__init__()
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.pad == 0:
            return x
        if x.ndim < 3:
            raise ValueError(f"RandomShift expects images [*, C, H, W], got shape {tuple(x.shape)}")
        lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
        imgs = x.reshape(-1, c, h, w)
        b, p = imgs.shape[0], self.pad
        shift = torch.randint(0, 2 * p + 1, (b, 2), device=x.device) - p  # [B, 2] offsets in [-p, p]
        rows = (shift[:, :1] + torch.arange(h, device=x.device)).clamp_(0, h - 1)  # [B, H]
        cols = (shift[:, 1:] + torch.arange(w, device=x.device)).clamp_(0, w - 1)  # [B, W]
        index = (rows[:, :, None] * w + cols[:, None, :]).reshape(b, 1, h * w)  # [B, 1, H·W]
        out = imgs.reshape(b, c, h * w).gather(2, index.expand(b, c, h * w))  # [B, C, H·W]
        return out.reshape(*lead, c, h, w)
