"""DrQ-style random shift augmentation (Kostrikov et al. 2021; Yarats et al. 2022)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RandomShift(nn.Module):
    """Shift every image by an independent integer offset in ``[-pad, pad]²`` (replicate padding).

    ``x`` ``[*, C, H, W]`` (any dtype, uint8 included) -> same shape and dtype. Implemented as
    replicate-pad then two batched ``gather``s, so pixel values are copied exactly (no interpolation).
    Identity in eval mode or with ``pad = 0``. Uses the global torch RNG on ``x``'s device.
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
        # replicate padding is not implemented for integer dtypes: pad in float, values stay exact
        padded = F.pad(imgs.float(), (p, p, p, p), mode="replicate").to(x.dtype)  # [B, C, H+2p, W+2p]
        shift = torch.randint(0, 2 * p + 1, (b, 2), device=x.device)
        rows = shift[:, :1] + torch.arange(h, device=x.device)  # [B, H]
        cols = shift[:, 1:] + torch.arange(w, device=x.device)  # [B, W]
        out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * p))  # [B, C, H, W+2p]
        out = out.gather(3, cols[:, None, None, :].expand(b, c, h, w))  # [B, C, H, W]
        return out.reshape(*lead, c, h, w)
