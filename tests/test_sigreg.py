"""SIGReg: formula, Gaussian calibration, collapse detection, optimization, DDP equivalence, bad input."""

from __future__ import annotations

import math
import os
from datetime import timedelta

import pytest
import torch
import torch._dynamo.testing
import torch.distributed as dist
import torch.multiprocessing as mp

from jepa_agents.regularizers import NoRegularizer, SIGReg, VICReg, make_regularizer
from jepa_agents.regularizers.sigreg import epps_pulley_weights, random_directions

# E[statistic] for N(0, 1) samples on the default grid: Σ_k w_k (1 - exp(-t_k²)), any N.
_T, _, _W = epps_pulley_weights(17, 3.0)
GAUSSIAN_MEAN = float(((1 - torch.exp(-(_T.double() ** 2))) * _W.double()).sum())


def reference_sigreg(z: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Independent float64 route: complex ECF on the full symmetric grid [-3, 3] (33 knots), trapezoid."""
    z, a = z.double(), directions.double()
    t = torch.linspace(-3.0, 3.0, 33, dtype=torch.float64)
    x = z @ a  # [..., N, M]
    ecf = torch.exp(1j * x.unsqueeze(-1) * t).mean(-3)  # [..., M, 33]
    target = torch.exp(-0.5 * t**2)
    integrand = (ecf - target).abs() ** 2 * torch.exp(-0.5 * t**2)
    stat = torch.trapezoid(integrand, t, dim=-1) * z.shape[-2]  # [..., M]
    return stat.mean()


def test_gaussian_mean_constant():
    assert GAUSSIAN_MEAN == pytest.approx(1.0525, abs=1e-3)
    # the exact integral over the real line, for comparison
    assert GAUSSIAN_MEAN == pytest.approx(math.sqrt(2 * math.pi) - math.sqrt(2 * math.pi / 3), abs=0.01)


@pytest.mark.parametrize("shape", [(64, 8), (3, 40, 5)])
def test_matches_float64_reference(shape):
    torch.manual_seed(0)
    z = torch.randn(*shape) * torch.linspace(0.3, 2.0, shape[-1]) + 0.3
    reg = SIGReg(num_slices=16, seed=7)
    value = reg(z)
    expected = reference_sigreg(z, reg.directions(shape[-1], 0))
    assert value.dtype == torch.float32 and value.ndim == 0
    assert value.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-5)
    # second call: new directions from the synchronized counter
    assert reg(z).item() == pytest.approx(reference_sigreg(z, reg.directions(shape[-1], 1)).item(), rel=1e-5)


def test_directions_are_unit_and_resampled_and_checkpointed():
    reg = SIGReg(num_slices=32, seed=3)
    a0, a1 = reg.directions(16, 0), reg.directions(16, 1)
    torch.testing.assert_close(a0.norm(dim=0), torch.ones(32))
    assert not torch.allclose(a0, a1)
    z = torch.randn(32, 16)
    reg(z)
    other = SIGReg(num_slices=32, seed=3)
    other.load_state_dict(reg.state_dict())
    assert other(z).item() == reg(z).item()  # both at call 1
    assert set(dict(reg.named_buffers())) == {"t", "phi", "weights", "calls"}
    assert int(reg.calls) == 2 and int(other.calls) == 2


def test_counter_based_directions_are_isotropic_gaussian_draws():
    """The hashed Box-Muller draws: entries of N(0, 1) before normalisation, so directions are uniform
    on the sphere (mean near 0, second moment I/D); a different call or seed gives different ones."""
    d, m = 8, 4096
    a = torch.cat([random_directions(d, m, seed) for seed in range(4)], 1)  # [D, 4M]
    torch.testing.assert_close(a.norm(dim=0), torch.ones(4 * m))
    assert a.mean(1).abs().max() < 0.02
    torch.testing.assert_close(a @ a.T / a.shape[1], torch.eye(d) / d, atol=4e-3, rtol=0)
    assert not torch.allclose(random_directions(d, 16, 5), random_directions(d, 16, 6))
    assert torch.equal(random_directions(d, 16, torch.tensor(5)), random_directions(d, 16, 5))


def test_compiled_sigreg_draws_new_directions_every_call_without_recompiling():
    """The call counter is a buffer incremented in place, so a compiled forward (here the eager-graph
    backend: tracing, not code generation) equals the eager one call after call with one graph."""
    torch._dynamo.reset()
    eager, compiled = SIGReg(num_slices=16, seed=2), SIGReg(num_slices=16, seed=2)
    counter = torch._dynamo.testing.CompileCounter()
    fn = torch.compile(compiled, backend=counter, fullgraph=True)
    z = torch.randn(64, 8)
    values = [(eager(z), fn(z)) for _ in range(4)]
    for want, got in values:
        torch.testing.assert_close(got, want)
    assert len({round(float(w), 6) for w, _ in values}) == 4  # new directions each call
    assert counter.frame_count == 1 and int(compiled.calls) == 4


@pytest.mark.parametrize("n", [64, 2048])
def test_gaussian_statistic_near_expected_and_flat_in_n(n):
    torch.manual_seed(1)
    reg = SIGReg(num_slices=128)
    values = torch.tensor([reg(torch.randn(n, 32)).item() for _ in range(30)])
    # per-call std is about 0.14, so the mean of 30 calls is within ~0.03 of the expectation
    assert abs(values.mean().item() - GAUSSIAN_MEAN) < 0.12
    assert values.max().item() < 2.5


def test_collapsed_and_low_rank_batches_are_large_and_grow_with_n():
    torch.manual_seed(2)
    reg = SIGReg(num_slices=64)
    collapsed = [reg(torch.randn(1, 16).expand(n, 16)).item() for n in (64, 256)]
    low_rank = [reg(torch.randn(n, 2) @ torch.randn(2, 16)).item() for n in (64, 256)]
    gaussian = reg(torch.randn(256, 16)).item()
    for small, large in (collapsed, low_rank):
        assert small > 5 * GAUSSIAN_MEAN
        assert large > 3 * small  # linear growth with N (4x here)
    assert low_rank[1] > 10 * gaussian


def test_gradients_flow_and_adam_makes_collapsed_batch_isotropic():
    torch.manual_seed(0)
    d = 4
    z = (torch.randn(1, d) + 1e-2 * torch.randn(1024, d)).requires_grad_()
    reg = SIGReg(num_slices=64)
    opt = torch.optim.Adam([z], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 400, eta_min=1e-3)
    first = None
    for _ in range(400):
        loss = reg(z)
        opt.zero_grad()
        loss.backward()
        first = first if first is not None else (loss.item(), z.grad.abs().sum().item())
        opt.step()
        sched.step()
    assert first[1] > 0
    final = z.detach()
    eig = torch.linalg.eigvalsh(torch.cov(final.T))
    assert first[0] > 100
    assert final.mean(0).abs().max() < 0.1
    assert (eig - 1).abs().max() < 0.25, eig


def test_bf16_autocast_is_computed_in_float32():
    torch.manual_seed(0)
    z = torch.randn(128, 16)
    reg = SIGReg(num_slices=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = reg(z.bfloat16())
    assert value.dtype == torch.float32
    expected = reference_sigreg(z.bfloat16().float(), reg.directions(16, 0))
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_bad_input():
    reg = SIGReg(num_slices=8)
    z = torch.randn(16, 4)
    # non-finite embeddings give a non-finite statistic (no host sync; the learners' NaN guard skips it)
    assert not torch.isfinite(reg(torch.where(torch.arange(4) == 2, float("nan"), z)))
    assert not torch.isfinite(reg(z.clone().index_fill_(0, torch.tensor([3]), float("inf"))))
    with pytest.raises(ValueError, match=r"\[N, D\] or \[T, N, D\]"):
        reg(torch.randn(16))
    with pytest.raises(ValueError, match=r"\[N, D\] or \[T, N, D\]"):
        reg(torch.randn(2, 2, 16, 4))
    with pytest.raises(ValueError, match="N >= 1"):
        reg(torch.randn(0, 4))


def test_degenerate_sizes_are_defined():
    torch.manual_seed(0)
    reg = SIGReg(num_slices=8)
    # D = 1: every direction is ±1, i.e. the univariate Epps–Pulley test of the column
    x = torch.randn(200, 1)
    assert reg.directions(1, 0).abs().eq(1).all()
    assert reg(x).item() == pytest.approx(reference_sigreg(x, torch.ones(1, 1)).item(), rel=1e-5)
    # N = 1: finite and differentiable
    one = torch.randn(1, 4, requires_grad=True)
    value = reg(one)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(one.grad).all()


def test_vicreg_and_factory():
    torch.manual_seed(0)
    vic = make_regularizer("vicreg")
    assert isinstance(vic, VICReg)
    collapsed = torch.randn(1, 8).expand(64, 8)
    assert vic(collapsed).item() > 0.9  # variance hinge fully active
    white = torch.randn(4096, 8)
    assert vic(white).item() < 0.05
    assert vic(torch.randn(3, 64, 8)).ndim == 0
    assert isinstance(make_regularizer("sigreg", num_slices=4), SIGReg)
    assert make_regularizer("none")(white).item() == 0.0
    assert isinstance(make_regularizer("none"), NoRegularizer)
    with pytest.raises(ValueError, match="unknown regularizer"):
        make_regularizer("barlow")


# ---------------------------------------------------------------------------------------------- DDP
_WORLD = 2


def _ddp_worker(rank: int, tmpdir: str, x: torch.Tensor, weight: torch.Tensor) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only: no hostname resolution
    dist.init_process_group(
        "gloo",
        init_method=f"file://{tmpdir}/store",
        rank=rank,
        world_size=_WORLD,
        timeout=timedelta(seconds=60),
    )
    try:
        local = x.chunk(_WORLD)[rank]
        lin = torch.nn.Linear(x.shape[1], weight.shape[0], bias=False)
        with torch.no_grad():
            lin.weight.copy_(weight)
        z = lin(local)
        z.retain_grad()
        value = SIGReg(num_slices=16, seed=5)(z)
        value.backward()
        dist.all_reduce(lin.weight.grad)  # what DDP does: average parameter gradients
        lin.weight.grad /= _WORLD
        torch.save(
            {"value": value.detach(), "z_grad": z.grad, "w_grad": lin.weight.grad}, f"{tmpdir}/{rank}.pt"
        )
        dist.barrier()  # neither rank tears its process group down while the other still talks to it
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_equals_single_process(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(48, 6)
    weight = torch.randn(5, 6) * 0.5
    mp.spawn(_ddp_worker, args=(str(tmp_path), x, weight), nprocs=_WORLD, join=True)
    lin = torch.nn.Linear(6, 5, bias=False)
    with torch.no_grad():
        lin.weight.copy_(weight)
    z = lin(x)
    z.retain_grad()
    value = SIGReg(num_slices=16, seed=5)(z)
    value.backward()
    for rank in range(_WORLD):
        out = torch.load(os.path.join(tmp_path, f"{rank}.pt"))
        assert out["value"].item() == pytest.approx(value.item(), rel=1e-5)
        # each rank's embeddings receive world_size x the single-process gradient of their slice,
        # which DDP's gradient averaging turns into exactly the single-process parameter gradient
        torch.testing.assert_close(out["z_grad"], _WORLD * z.grad.chunk(_WORLD)[rank], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(out["w_grad"], lin.weight.grad, rtol=1e-4, atol=1e-6)


def test_reference_values_gaussian_and_collapsed():
    """The logged references: a collapsed batch gives exactly ``collapsed_reference(N)`` (≈0.402·N) and
    Gaussian batches average ``gaussian_reference()`` (≈1.06) at any N."""
    reg = SIGReg(num_slices=64)
    for n in (16, 256):
        assert reg(torch.zeros(n, 8)).item() == pytest.approx(reg.collapsed_reference(n).item(), rel=1e-5)
        assert reg.collapsed_reference(n).item() == pytest.approx(0.402 * n, rel=0.01)
    torch.manual_seed(0)
    values = torch.stack([reg(torch.randn(128, 8)) for _ in range(200)])
    assert reg.gaussian_reference().item() == pytest.approx(1.06, abs=0.01)
    assert values.mean().item() == pytest.approx(reg.gaussian_reference().item(), rel=0.05)
