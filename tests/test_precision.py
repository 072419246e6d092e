"""``precision=auto``: bf16 only where the hardware computes it natively, resolved once per run and saved;
and a device that does not exist is one line before anything is written."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from tiny_run import tiny

from jepa_agents.cli import main
from jepa_agents.infra import precision
from jepa_agents.nn import make_encoder

CPU = torch.device("cpu")
TINY = tiny("train.checkpoint_every=200", "eval.at_start=false")


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Set whether the CPU 'has' native bf16: ``cpu_bf16(True)``."""

    def set_native(native: bool) -> None:
        monkeypatch.setattr(precision, "cpu_bf16_native", lambda: native)

    return set_native


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_follows_the_cpu(cpu_bf16, native, expected):
    cpu_bf16(native)
    assert precision.resolve_precision("auto", CPU) == expected
    assert precision.resolve_precision("fp32", CPU) == "fp32"  # explicit settings stay as they are
    assert precision.resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(ValueError, match="choose one of"):
        precision.resolve_precision("fp16", CPU)


@pytest.mark.parametrize("native", [True, False])
def test_auto_follows_the_cuda_device(monkeypatch, native):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native)
    assert precision.resolve_precision("auto", torch.device("cuda")) == ("bf16" if native else "fp32")


@pytest.mark.parametrize(
    "capability, bf16_isa, isa_cap, native",
    [
        ("AVX512", True, None, True),  # AVX512-BF16 hardware
        ("AVX512", False, None, False),  # AVX-512 without bf16
        ("AVX2", True, None, False),  # ATEN_CPU_CAPABILITY=avx2 emulates the slower kind
        ("AVX512", True, "AVX2", False),  # so does ONEDNN_MAX_CPU_ISA=AVX2
        ("AVX512", True, "AVX512_CORE_BF16", True),
    ],
)
def test_cpu_check_honours_the_isa_caps(monkeypatch, capability, bf16_isa, isa_cap, native):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16_isa)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    if isa_cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa_cap)
    precision.cpu_bf16_native.cache_clear()
    try:
        assert precision.cpu_bf16_native() is native
    finally:
        precision.cpu_bf16_native.cache_clear()


@pytest.mark.parametrize("native, same_as", [(True, "bf16"), (False, "fp32")])
def test_auto_encoder_computes_what_it_resolves_to(cpu_bf16, native, same_as):
    cpu_bf16(native)
    torch.manual_seed(0)
    auto = make_encoder("small_cnn", (3, 64, 64), 16, precision="auto")
    obs = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    auto.precision = "auto"
    out_auto = auto(obs)
    auto.precision = same_as
    assert torch.equal(out_auto, auto(obs))
    auto.precision = "fp32" if same_as == "bf16" else "bf16"
    assert not torch.equal(out_auto, auto(obs))  # the two settings do differ


def test_default_is_auto_and_a_run_saves_the_resolved_value(cpu_bf16, tmp_path, capsys):
    assert main(["train", "--cfg"]) == 0
    assert "precision: auto" in capsys.readouterr().out
    for native, expected in ((False, "fp32"), (True, "bf16")):
        cpu_bf16(native)
        run = tmp_path / expected
        assert main(["train", *TINY, f"run_dir={run}"]) == 0
        assert f"precision: {expected} (auto on cpu" in capsys.readouterr().out
        assert OmegaConf.load(run / "config.yaml").world_model.precision == expected
    # a resumed run keeps its saved value whatever this machine would choose now
    cpu_bf16(False)
    (run / "checkpoints" / "ckpt_000000000400.pt").unlink()  # as if killed after step 200
    assert main(["train", f"resume={run}"]) == 0
    assert "precision: bf16 (as configured)" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:3"])
def test_missing_device_is_one_line_before_anything_is_written(tmp_path, capsys, device):
    run = tmp_path / "run"
    assert main(["train", *TINY, f"device={device}", f"run_dir={run}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: device='{device}' but CUDA is not available here; use device=cpu")
    assert len(err.strip().splitlines()) == 1 and not run.exists()
