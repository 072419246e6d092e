"""Offline representation benchmark for the JEPA world model on pixel cartpole swing-up.

1. Collect a fixed dataset of 64x64 pixel transitions with a random policy (held-out test episodes).
2. Train one world model per method on it (same data, seed, encoder and update count):
   ``sigreg`` (online targets, SIGReg, no EMA), ``ema_cosine`` (EMA target + cosine, SPR-style),
   ``vicreg`` (online targets, VICReg), ``none`` (online targets, no regularizer) and ``random``
   (untrained, frozen encoder).
3. Fit a ridge probe from the frozen embedding of a frame stack to the true state
   ``[x, cos θ, sin θ, ẋ, θ̇]`` on train episodes; report R² on held-out episodes, effective rank,
   SIGReg statistic, wall time per update, and SIGReg's share of an update at N=256, D=256, M=256.

Data come from ``envs.make("torch/cartpole_swingup")`` when available, else from dm_control rendered
with ``MUJOCO_GL=egl``. Example (about 10 minutes on 2 CPU cores)::

    python scripts/bench_world_model.py --frames 3000 --updates 300 --out /tmp/bench_world_model.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace

import numpy as np
import torch

from jepa_agents.losses import jepa_loss
from jepa_agents.regularizers import SIGReg
from jepa_agents.world_models import JEPAWorldModel, WorldModelConfig
from jepa_agents.world_models.diagnostics import effective_rank, sigreg_statistic

METHODS = ("sigreg", "ema_cosine", "vicreg", "none", "random")


# ------------------------------------------------------------------------------------------ data
def _collect_torch_env(episodes: int, length: int, seed: int, action_repeat: int) -> dict[str, np.ndarray]:
    import envs

    env = envs.make(
        "torch/cartpole_swingup", num_envs=episodes, seed=seed, device="cpu", action_repeat=action_repeat
    )
    td = env.reset()
    frames, states, actions = [td["pixels"]], [td["state"]], []
    for _ in range(length):
        td["action"] = torch.rand(episodes, 1) * 2 - 1
        actions.append(td["action"])
        td = env.step(td)["next"]
        frames.append(td["pixels"])
        states.append(td["state"])
    return {
        "frames": torch.stack(frames, 1).numpy(),  # [E, T+1, 3, 64, 64]
        "states": torch.stack(states, 1).float().numpy(),  # [E, T+1, 5]
        "actions": torch.stack(actions, 1).float().numpy(),  # [E, T, 1]
    }


def _collect_dm_control(episodes: int, length: int, seed: int, action_repeat: int) -> dict[str, np.ndarray]:
    os.environ.setdefault("MUJOCO_GL", "egl")
    from dm_control import suite

    rng = np.random.default_rng(seed)
    frames = np.zeros((episodes, length + 1, 3, 64, 64), np.uint8)
    states = np.zeros((episodes, length + 1, 5), np.float32)
    actions = rng.uniform(-1, 1, (episodes, length, 1)).astype(np.float32)
    for e in range(episodes):
        env = suite.load("cartpole", "swingup", task_kwargs={"random": seed + e})
        ts = env.reset()
        for t in range(length + 1):
            frames[e, t] = env.physics.render(64, 64, camera_id=0).transpose(2, 0, 1)
            states[e, t] = np.concatenate([ts.observation["position"], ts.observation["velocity"]])
            if t < length:
                for _ in range(action_repeat):
                    ts = env.step(actions[e, t])
    return {"frames": frames, "states": states, "actions": actions}


def collect(source: str, episodes: int, length: int, seed: int, action_repeat: int) -> tuple[dict, str]:
    """Random-policy episodes: frames uint8 ``[E, T+1, 3, 64, 64]``, states ``[E, T+1, 5]``, actions."""
    if source in ("auto", "torch"):
        try:
            return _collect_torch_env(episodes, length, seed, action_repeat), "torch/cartpole_swingup"
        except Exception as err:  # the torch-native env is optional here
            if source == "torch":
                raise
            print(f"torch/cartpole_swingup unavailable ({type(err).__name__}: {err}); using dm_control")
    return _collect_dm_control(episodes, length, seed, action_repeat), "dm_control cartpole-swingup"


def stack_frames(frames: torch.Tensor, stack: int) -> torch.Tensor:
    """``[E, T, 3, H, W] -> [E, T, 3·stack, H, W]``: frames ``t-stack+1 .. t`` (first frame repeated)."""
    first = frames[:, :1].expand(-1, stack - 1, -1, -1, -1)
    padded = torch.cat((first, frames), 1)
    return torch.cat([padded[:, i : i + frames.shape[1]] for i in range(stack)], 2)


# ------------------------------------------------------------------------------------- training
def method_config(method: str, base: WorldModelConfig, reg_weight: float) -> WorldModelConfig:
    variants = {
        "sigreg": dict(target="online", regularizer="sigreg", pred_loss="mse", reg_weight=reg_weight),
        "ema_cosine": dict(target="ema", regularizer="none", pred_loss="cosine"),
        "vicreg": dict(target="online", regularizer="vicreg", pred_loss="mse", reg_weight=1.0),
        "none": dict(target="online", regularizer="none", pred_loss="mse"),
        "random": dict(regularizer="none"),
    }
    return replace(base, **variants[method])


def train(model: JEPAWorldModel, obs: torch.Tensor, actions: torch.Tensor, args) -> tuple[float, dict]:
    """Adam on ``jepa_loss`` over random windows of K+1 steps; returns (seconds per update, last metrics)."""
    gen = torch.Generator().manual_seed(args.seed)
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
        loss, metrics = jepa_loss(model, batch_obs, batch_act, diagnostics=update == args.updates - 1)
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


# ------------------------------------------------------------------------------------ SIGReg cost
def sigreg_share(base: WorldModelConfig, obs: torch.Tensor, actions: torch.Tensor, args) -> dict[str, float]:
    """SIGReg forward+backward vs a full SIGReg world-model update at B=64, K=3 (N=256 rows), D=256, M=256."""
    cfg = replace(method_config("sigreg", base, args.reg_weight), latent_dim=256, num_slices=256)
    model = JEPAWorldModel(cfg, tuple(obs.shape[2:]), action_dim=1, discrete=False)
    timing = argparse.Namespace(**{**vars(args), "updates": 7, "batch": 64, "horizon": 3})
    update_seconds, _ = train(model, obs, actions, timing)  # mean of the last 2 updates
    reg = SIGReg(num_slices=256)
    z = torch.randn(4, 64, 256, requires_grad=True)  # [K+1, B, D] as in jepa_loss
    for _ in range(3):
        reg(z).backward()
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        reg(z).backward()
    seconds = (time.perf_counter() - t0) / reps
    return {
        "update_seconds": update_seconds,
        "sigreg_seconds": seconds,
        "share_of_update": seconds / update_seconds,
    }


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=("auto", "torch", "dm_control"), default="auto")
    parser.add_argument("--frames", type=int, default=3000, help="rendered frames in total")
    parser.add_argument("--episode-length", type=int, default=100)
    parser.add_argument("--action-repeat", type=int, default=4)
    parser.add_argument("--frame-stack", type=int, default=3)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--horizon", type=int, default=3)
    parser.add_argument("--latent-dim", type=int, default=256)
    parser.add_argument("--num-slices", type=int, default=256)
    parser.add_argument("--reg-weight", type=float, default=0.1, help="SIGReg λ")
    parser.add_argument("--channels", type=int, nargs=4, default=(16, 32, 64, 128))
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    episodes = max(2, args.frames // (args.episode_length + 1))
    data, source = collect(args.source, episodes, args.episode_length, args.seed, args.action_repeat)
    collect_seconds = time.perf_counter() - t0
    obs = stack_frames(torch.as_tensor(data["frames"]), args.frame_stack)  # [E, T+1, 3·stack, 64, 64]
    states = torch.as_tensor(data["states"]).double()
    actions = torch.as_tensor(data["actions"])
    n_test = max(1, int(round(args.test_fraction * episodes)))
    train_obs, test_obs = obs[n_test:], obs[:n_test]
    train_act = actions[n_test:]
    print(
        f"collected {episodes} episodes x {args.episode_length + 1} frames from {source} "
        f"in {collect_seconds:.0f}s; {n_test} held-out episodes"
    )

    base = WorldModelConfig(
        latent_dim=args.latent_dim,
        encoder="small_cnn",
        encoder_channels=list(args.channels),
        horizon=args.horizon,
        predictor_hidden=[512],
        num_slices=args.num_slices,
    )
    rows = []
    for method in args.methods:
        torch.manual_seed(args.seed)
        cfg = method_config(method, base, args.reg_weight)
        model = JEPAWorldModel(cfg, tuple(obs.shape[2:]), action_dim=1, discrete=False)
        t_start = time.perf_counter()
        per_update, metrics = (
            (float("nan"), {}) if method == "random" else train(model, train_obs, train_act, args)
        )
        z_tr, z_te = embed(model, train_obs).double(), embed(model, test_obs).double()
        r2 = ridge_r2(z_tr, states[n_test:].reshape(-1, 5), z_te, states[:n_test].reshape(-1, 5))
        row = {
            "method": method,
            "probe_r2": float(r2.mean()),
            "probe_r2_position": float(r2[:3].mean()),
            "probe_r2_velocity": float(r2[3:].mean()),
            "effective_rank": float(effective_rank(z_te.float())),
            "sigreg_stat": float(sigreg_statistic(z_te.float())),
            "seconds_per_update": per_update,
            "pred_loss": metrics.get("wm/pred_loss", float("nan")),
            "total_seconds": time.perf_counter() - t_start,
        }
        rows.append(row)
        print(json.dumps(row))

    share = sigreg_share(base, train_obs, train_act, args)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": _cpu_model(),
        "threads": args.threads,
        "source": source,
        "args": vars(args),
        "collect_seconds": collect_seconds,
        "rows": rows,
        "sigreg_cost": share,
        "total_seconds": time.perf_counter() - t0,
    }
    print(json.dumps({"sigreg_cost": share, "total_seconds": result["total_seconds"]}))
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
