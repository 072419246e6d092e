"""Offline representation benchmark for the JEPA world model on pixel cartpole (64x64, 3 stacked frames).

1. Collect a fixed dataset with broad state coverage: episodes of the torch-native cart-pole started
   from uniformly random states (cart position, pole angle over the full circle, velocities) and driven
   by random actions, so the probe sees every pole angle, not a mostly hanging pole; held-out episodes
   for testing.
2. Train one world model per method and seed on it (same data, encoder and update count):
   ``sigreg`` (online targets, SIGReg, no EMA, no stop-gradient: the default), ``ema_cosine`` (EMA
   target + cosine, SPR-style), ``vicreg`` (online targets, VICReg), ``none`` (online targets, no
   regularizer) and ``random`` (untrained, frozen encoder).
3. Fit a ridge probe from the frozen embedding (eval-mode statistics) to the true state
   ``[x, cos θ, sin θ, ẋ, θ̇]`` on train episodes; report R² on held-out episodes (all, position,
   velocity), effective rank and SIGReg statistic of the held-out embeddings, and seconds per update.

Writes one row per method and seed to ``--csv`` (``method,seed,updates,probe_r2,effective_rank,
sigreg_stat,s_per_update``) and everything to ``--out`` (JSON). The README's run::

    python scripts/bench_world_model.py --seeds 0 1 2 --updates 1500 --jobs 2 \\
        --csv docs/results/world_model_probe.csv --out docs/results/world_model_probe.json
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from dataclasses import replace

import numpy as np
import torch

from jepa_agents.infra.argtypes import positive_int
from jepa_agents.world_models import JEPAWorldModel, WorldModelConfig
from jepa_agents.world_models.diagnostics import effective_rank, sigreg_statistic

METHODS = ("sigreg", "ema_cosine", "vicreg", "none", "random")


# ------------------------------------------------------------------------------------------ data
def collect(episodes: int, length: int, seed: int, action_repeat: int) -> dict[str, torch.Tensor]:
    """Random-action episodes of the cart-pole physics from uniformly random start states:
    frames uint8 ``[E, T+1, 3, 64, 64]``, states ``[E, T+1, 5]`` (dm_control's observation), actions
    ``[E, T, 1]``. Start: ``x ~ U(-1.5, 1.5)``, ``θ ~ U(-π, π)``, ``ẋ ~ N(0, 1)``, ``θ̇ ~ N(0, 2²)``."""
    from envs.torch_control import cartpole

    gen = torch.Generator().manual_seed(seed)
    cpu = torch.device("cpu")
    physics = cartpole.uniform_physics(gen, episodes, cpu)  # [E, 5]: the env's start="uniform"
    scene = cartpole.Scene("cartpole_swingup", 64, cpu)
    frames, states, actions = [scene(physics)], [cartpole.state(physics, "cartpole_swingup")], []
    for _ in range(length):
        action = torch.rand(episodes, 1, generator=gen) * 2 - 1
        for _ in range(action_repeat):
            physics = cartpole.advance(physics, action)
        actions.append(action)
        frames.append(scene(physics))
        states.append(cartpole.state(physics, "cartpole_swingup"))
    return {
        "frames": torch.stack(frames, 1),  # [E, T+1, 3, 64, 64]
        "states": torch.stack(states, 1).float(),  # [E, T+1, 5]
        "actions": torch.stack(actions, 1).float(),  # [E, T, 1]
    }


def stack_frames(frames: torch.Tensor, stack: int) -> torch.Tensor:
    """``[E, T, 3, H, W] -> [E, T, 3·stack, H, W]``: frames ``t-stack+1 .. t`` (first frame repeated)."""
    first = frames[:, :1].expand(-1, stack - 1, -1, -1, -1)
    padded = torch.cat((first, frames), 1)
    return torch.cat([padded[:, i : i + frames.shape[1]] for i in range(stack)], 2)


# ------------------------------------------------------------------------------------- training
def method_config(method: str, base: WorldModelConfig, reg_weight: float) -> WorldModelConfig:
    """``base`` is the shipped default (SIGReg); the other methods differ only where named."""
    variants = {
        "sigreg": dict(target="online", regularizer="sigreg", pred_loss="mse", reg_weight=reg_weight),
        "ema_cosine": dict(target="ema", regularizer="none", pred_loss="cosine"),
        "vicreg": dict(target="online", regularizer="vicreg", pred_loss="mse", reg_weight=1.0),
        "none": dict(target="online", regularizer="none", pred_loss="mse"),
        "random": dict(regularizer="none"),
    }
    return replace(base, **variants[method])


def train(model: JEPAWorldModel, obs: torch.Tensor, actions: torch.Tensor, args) -> tuple[float, dict]:
    """Adam on ``model.loss`` over random windows of K+1 steps; returns (seconds per update, last metrics)."""
    gen = torch.Generator().manual_seed(args.train_seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    episodes, steps = actions.shape[:2]
    k = args.horizon
    times, metrics = [], {}
    for update in range(args.updates):
        ep = torch.randint(0, episodes, (args.batch,), generator=gen)
        start = torch.randint(0, steps - k + 1, (args.batch,), generator=gen)
        idx = start[:, None] + torch.arange(k + 1)
        t0 = time.perf_counter()
        batch_obs = obs[ep[:, None], idx]  # [B, K+1, C, H, W]
        batch_act = actions[ep[:, None], idx[:, :k]]  # [B, K, 1]
        loss, metrics = model.loss(batch_obs, batch_act, diagnostics=update == args.updates - 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if model.cfg.target == "ema":
            model.update_target()
        times.append(time.perf_counter() - t0)
    skip = min(5, len(times) - 1)
    return float(np.mean(times[skip:])), {k: float(v) for k, v in metrics.items()}


# ---------------------------------------------------------------------------------------- probe
@torch.no_grad()
def embed(model: JEPAWorldModel, obs: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    model.eval()
    flat = obs.reshape(-1, *obs.shape[2:])
    out = torch.cat([model.encode(flat[i : i + chunk]) for i in range(0, len(flat), chunk)])
    model.train()
    return out


def ridge_r2(x_tr, y_tr, x_te, y_te, alphas=(1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)) -> np.ndarray:
    """Ridge probe on standardized features; alpha picked on the last 20% of the train rows.

    Returns the test R² per target dim ``[S]``.
    """
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    y_mu = y_tr.mean(0)

    def fit(x, y, alpha):
        x1 = torch.cat((x, torch.ones(len(x), 1, dtype=x.dtype)), 1)
        reg = alpha * len(x) * torch.eye(x1.shape[1], dtype=x.dtype)
        reg[-1, -1] = 0
        return torch.linalg.solve(x1.T @ x1 + reg, x1.T @ (y - y_mu))

    def predict(w, x):
        return torch.cat((x, torch.ones(len(x), 1, dtype=x.dtype)), 1) @ w + y_mu

    def r2(y, yhat):
        return 1 - ((y - yhat) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)

    cut = int(0.8 * len(x_tr))
    best = max(
        alphas, key=lambda a: r2(y_tr[cut:], predict(fit(x_tr[:cut], y_tr[:cut], a), x_tr[cut:])).mean()
    )
    return r2(y_te, predict(fit(x_tr, y_tr, best), x_te)).numpy()


# ----------------------------------------------------------------------------------- init scale
def init_scale_table(base: WorldModelConfig, seed: int = 0) -> list[dict]:
    """Per-dim std of the embedding at init on real ``torch/cartpole_swingup`` frames (64 episodes x 13
    stacks from the env's reset distribution under random actions, and the 64 reset stacks alone), for
    PyTorch's default init vs the orthogonal init, raw vs batch-normalized output."""
    import envs

    env = envs.make("torch/cartpole_swingup", num_envs=64, seed=seed, device="cpu", action_repeat=8)
    gen = torch.Generator().manual_seed(seed)
    td = env.reset()
    frames = [td["pixels"]]
    for _ in range(12):
        td["action"] = torch.rand(64, 1, generator=gen) * 2 - 1
        td = env.step(td)["next"]
        frames.append(td["pixels"])
    seq = stack_frames(torch.stack(frames, 1), 3)  # [64, 13, 9, 64, 64]
    batches = {"all frames": seq.reshape(-1, *seq.shape[2:]), "reset frames": seq[:, 0]}
    rows = []
    for init in ("pytorch default", "orthogonal"):
        torch.manual_seed(seed)
        model = JEPAWorldModel(base, tuple(seq.shape[2:]), action_dim=1, discrete=False)
        if init == "pytorch default":
            for m in model._encoder.modules():
                if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                    m.reset_parameters()
        with torch.no_grad():
            for name, x in batches.items():
                raw = model._encoder(x)
                rows.append({"init": init, "output": "raw", "frames": name, "std": float(raw.std(0).mean())})
                normed = torch.nn.functional.batch_norm(raw, None, None, training=True, eps=1e-5)
                rows.append(
                    {"init": init, "output": "batchnorm", "frames": name, "std": float(normed.std(0).mean())}
                )
    return rows


# ------------------------------------------------------------------------------------------ main
CSV_COLUMNS = ("method", "seed", "updates", "probe_r2", "effective_rank", "sigreg_stat", "s_per_update")


def run_one(method: str, seed: int, base: WorldModelConfig, data: dict, n_test: int, args) -> dict:
    """Train (unless ``random``) and probe one method with one seed; the result row."""
    obs, states, actions = data["obs"], data["states"], data["actions"]
    torch.manual_seed(seed)
    cfg = method_config(method, base, args.reg_weight)
    model = JEPAWorldModel(cfg, tuple(obs.shape[2:]), action_dim=1, discrete=False)
    t_start = time.perf_counter()
    run_args = argparse.Namespace(**{**vars(args), "train_seed": seed})
    per_update, metrics = (
        (float("nan"), {}) if method == "random" else train(model, obs[n_test:], actions[n_test:], run_args)
    )
    z_tr, z_te = embed(model, obs[n_test:]).double(), embed(model, obs[:n_test]).double()
    r2 = ridge_r2(z_tr, states[n_test:].reshape(-1, 5), z_te, states[:n_test].reshape(-1, 5))
    return {
        "method": method,
        "seed": seed,
        "updates": 0 if method == "random" else args.updates,
        "probe_r2": float(r2.mean()),
        "probe_r2_position": float(r2[:3].mean()),
        "probe_r2_velocity": float(r2[3:].mean()),
        "effective_rank": float(effective_rank(z_te.float())),
        "sigreg_stat": float(sigreg_statistic(z_te.float())),
        "s_per_update": per_update,
        "pred_loss": metrics.get("wm/pred_loss", float("nan")),
        "total_seconds": time.perf_counter() - t_start,
    }


_DATA: dict = {}


def _dataset(args) -> dict:
    """The benchmark's dataset (deterministic in ``--data-seed``), built once per process."""
    if not _DATA:
        raw = collect(args.episodes, args.episode_length, args.data_seed, args.action_repeat)
        _DATA.update(
            obs=stack_frames(raw["frames"], args.frame_stack),  # [E, T+1, 3·stack, 64, 64]
            states=raw["states"].double(),
            actions=raw["actions"],
        )
    return _DATA


def _job(method: str, seed: int, base: WorldModelConfig, n_test: int, args) -> dict:
    """One (method, seed) row in a worker process (``--jobs``)."""
    torch.set_num_threads(args.threads)
    return run_one(method, seed, base, _dataset(args), n_test, args)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--episodes", type=positive_int, default=200, help="episodes from random start states"
    )
    parser.add_argument("--episode-length", type=positive_int, default=30, help="agent steps per episode")
    parser.add_argument("--action-repeat", type=positive_int, default=4)
    parser.add_argument("--frame-stack", type=positive_int, default=3)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--updates", type=positive_int, default=3000)
    parser.add_argument("--batch", type=positive_int, default=64, help="sequences per update")
    parser.add_argument("--reg-weight", type=float, default=None, help="SIGReg λ (default: the preset's)")
    parser.add_argument("--lr", type=float, default=3e-4, help="Adam lr (the SAC learner's lr_encoder)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads per job")
    parser.add_argument(
        "--jobs", type=positive_int, default=1, help="(method, seed) rows trained in parallel processes"
    )
    parser.add_argument("--data-seed", type=int, default=12345)
    parser.add_argument("--csv", default=None, help="write the per-seed rows here")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override fields of the default world model for every method (e.g. projector_hidden=[512])",
    )
    parser.add_argument("--init-scale", action="store_true", help="only print the embedding scale at init")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from omegaconf import OmegaConf

    preset = OmegaConf.load("configs/world_model/jepa_sigreg.yaml")
    preset = OmegaConf.to_container(OmegaConf.merge(preset, OmegaConf.from_dotlist(args.set)))
    base = WorldModelConfig(**preset)  # the shipped default world model (with --set overrides)
    if args.init_scale:
        rows = init_scale_table(base)
        for row in rows:
            print(f"{row['init']:>16} | {row['output']:>9} | {row['frames']:>12} | std {row['std']:.5f}")
        return {"init_scale": rows}
    args.horizon = base.horizon
    if args.reg_weight is None:
        args.reg_weight = base.reg_weight

    t0 = time.perf_counter()
    data = _dataset(args)
    collect_seconds = time.perf_counter() - t0
    n_test = max(1, int(round(args.test_fraction * args.episodes)))
    print(
        f"collected {args.episodes} episodes x {args.episode_length + 1} frames from random start states "
        f"in {collect_seconds:.0f}s; {n_test} held-out episodes; default world model {preset}",
        flush=True,
    )
    rows = []
    jobs = [(method, seed) for seed in args.seeds for method in args.methods]
    order = {job: i for i, job in enumerate(jobs)}

    def record(row: dict) -> None:
        rows.append(row)
        rows.sort(key=lambda r: order[(r["method"], r["seed"])])
        print(json.dumps(row), flush=True)
        if args.csv:  # rewritten after every row, so a cut run keeps what it finished
            with open(args.csv, "w", newline="") as f:
                writer = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)

    if args.jobs > 1:  # one process per (method, seed), each with --threads threads
        import concurrent.futures
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            futures = [pool.submit(_job, method, seed, base, n_test, args) for method, seed in jobs]
            for future in concurrent.futures.as_completed(futures):
                record(future.result())
    else:
        for method, seed in jobs:
            record(run_one(method, seed, base, data, n_test, args))
    summary = {}
    for method in args.methods:
        vals = np.array([r["probe_r2"] for r in rows if r["method"] == method])
        ranks = np.array([r["effective_rank"] for r in rows if r["method"] == method])
        summary[method] = {
            "probe_r2_mean": float(vals.mean()),
            "probe_r2_min": float(vals.min()),
            "probe_r2_max": float(vals.max()),
            "effective_rank_mean": float(ranks.mean()),
        }
        print(
            f"{method:>10}: probe R² {vals.mean():.3f} [{vals.min():.3f}, {vals.max():.3f}], "
            f"effective rank {ranks.mean():.1f} (D = {base.latent_dim})"
        )
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": _cpu_model(),
        "threads": args.threads,
        "args": vars(args),
        "world_model": preset,
        "encoder_channels": [
            m.out_channels
            for m in JEPAWorldModel(base, (9, 64, 64), 1, False).modules()
            if isinstance(m, torch.nn.Conv2d)
        ],
        "collect_seconds": collect_seconds,
        "rows": rows,
        "summary": summary,
        "total_seconds": time.perf_counter() - t0,
    }
    print(json.dumps({"total_seconds": result["total_seconds"]}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
