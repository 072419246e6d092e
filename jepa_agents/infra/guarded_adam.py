"""Adam whose step takes a device-side mask: a skipped step moves no parameter and no moment.

The learners decide on the device whether an update may be applied (every loss and the gradient norm
finite, :func:`all_finite`), so that a gradient step never reads a value back to the host and can be
compiled or captured as a CUDA graph. :class:`GuardedAdam` is ``torch.optim.Adam`` (no weight decay, no
AMSGrad: the only variant the learners use) with ``step(ok)``; its state has Adam's layout (``step``,
``exp_avg``, ``exp_avg_sq`` per parameter), created at construction, so it loads Adam checkpoints and its
tensors never change identity (what a captured graph needs).

With ``o = ok`` as 0/1, ``g = where(ok, grad, 0)`` (a missing gradient counts as skipped for that tensor):

    t ← t + o,   m ← m + o·(1-β₁)·(g - m),   v ← v + o·(1-β₂)·(g² - v),
    θ ← θ - o·lr·(m / (1-β₁ᵗ)) / (√(v / (1-β₂ᵗ)) + ε)

which is Adam's update where ``o = 1`` and the identity where ``o = 0``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def all_finite(values: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """``(ok, finite)``: ``finite`` ``[len(values)]`` bool, one per value (every element finite), and
    ``ok = finite.all()`` (0-d bool); on the values' device, no host synchronisation."""
    finite = torch.stack([torch.isfinite(v.detach().float()).all() for v in values.values()])
    return finite.all(), finite


class GuardedAdam(torch.optim.Optimizer):
    """Adam with a masked step (module docstring). ``step(ok)``; ``ok`` a 0-d bool tensor or ``None``
    (always applied)."""

    def __init__(self, params: Iterable[Tensor], lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": 0.0,
                                  "amsgrad": False, "maximize": False, "foreach": None,
                                  "capturable": True, "differentiable": False, "fused": None})  # fmt: skip
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = {
                    "step": torch.zeros((), device=p.device),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }

    @torch.no_grad()
    def step(self, ok: Tensor | None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]  # as Adam: no gradient, no step
            if not params:
                continue
            beta1, beta2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            o = torch.ones((), device=params[0].device) if ok is None else ok.float()  # 0-d, 0 or 1
            grads = [torch.where(o > 0, p.grad, 0.0) for p in params]  # a NaN gradient times 0 is NaN
            state = [self.state[p] for p in params]
            steps = [s["step"] for s in state]
            m1, m2 = [s["exp_avg"] for s in state], [s["exp_avg_sq"] for s in state]
            torch._foreach_add_(steps, o)
            d1 = torch._foreach_sub(grads, m1)
            torch._foreach_mul_(d1, (1 - beta1) * o)
            torch._foreach_add_(m1, d1)
            d2 = torch._foreach_sub(torch._foreach_mul(grads, grads), m2)
            torch._foreach_mul_(d2, (1 - beta2) * o)
            torch._foreach_add_(m2, d2)
            t = [s.clamp(min=1.0) for s in steps]  # never applied: m = v = 0, any t gives a zero step
            bc1 = [1 - torch.pow(beta1, x) for x in t]
            bc2_sqrt = [torch.sqrt(1 - torch.pow(beta2, x)) for x in t]
            denom = torch._foreach_add_(torch._foreach_div(torch._foreach_sqrt(m2), bc2_sqrt), eps)
            update = torch._foreach_div(torch._foreach_div(m1, bc1), denom)
            torch._foreach_mul_(update, -lr * o)
            torch._foreach_add_(params, update)
