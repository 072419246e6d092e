"""Compute precision by what the hardware computes natively: ``auto`` -> ``bf16`` or ``fp32``.

bf16 autocast pays only where the device has bf16 arithmetic: CUDA devices that support it, and CPUs
with AVX512-BF16 or AMX that ATen and oneDNN are allowed to use. Elsewhere it is emulated and slow
(measured on a 2-core AVX2 EPYC, the default pixel learner: fp32 4.20 updates/s, bf16 0.71). An
``ATEN_CPU_CAPABILITY=avx2`` / ``ONEDNN_MAX_CPU_ISA=AVX2`` cap counts as the capped CPU, so the slower kind
of machine can be emulated on the faster one.
"""

from __future__ import annotations

import functools
import os

import torch

PRECISIONS = ("auto", "fp32", "bf16")
"""Accepted settings; ``auto`` resolves to one of the other two by :func:`resolve_precision`."""


@functools.cache
def cpu_bf16_native() -> bool:
    """The CPU has bf16 instructions (AVX512-BF16 or AMX) and ATen/oneDNN may use them."""
    capability = torch.backends.cpu.get_cpu_capability()  # honours ATEN_CPU_CAPABILITY
    if not capability.startswith("AVX512"):
        return False
    isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if isa_cap != "ALL" and not any(isa in isa_cap for isa in ("BF16", "FP16", "AMX", "AVX10")):
        return False
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def bf16_native(device: torch.device) -> bool:
    """``device`` computes bf16 natively (not by emulation)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return cpu_bf16_native()
    return False


def resolve_precision(spec: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where ``device`` computes bf16 natively, else ``fp32``; others unchanged."""
    if spec not in PRECISIONS:
        raise ValueError(f"precision={spec!r}; choose one of {PRECISIONS}")
    if spec != "auto":
        return spec
    return "bf16" if bf16_native(device) else "fp32"


def describe(device: torch.device) -> str:
    """What the choice was based on, for the line a run prints when it starts."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, native bf16: {bf16_native(device)}"
    return f"CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_bf16_native()}"
