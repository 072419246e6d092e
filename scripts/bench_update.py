"""Throughput of an off-policy learner (the default pixel learner unless overrides say otherwise): gradient
updates/s and env steps/s of the training loop, eager against compiled (and CUDA-graph-captured) steps, and
the current fast path against the pre-change path, side by side in one process on the same replay.

Compile modes (``--modes``, each with every variant; :mod:`jepa_agents.infra.compile`): ``none`` (eager),
``compile`` (``torch.compile``), ``cudagraph`` (CUDA only: the compiled step captured as one graph). The
first updates of a compiled mode compile it (untimed warm-up; the compile time is printed). Ratios are to
the first mode of the reference variant.

Variants (the default config of ``jepa-agents train``: SAC + JEPA/SIGReg from 64x64 pixels of
``torch/cartpole_swingup``, batch and sizes as configured, unless said otherwise):

* ``legacy``: the pre-change default learner: the previous path (float32, random shift by
  replicate-padding a float copy of the uint8 batch, 1/255 scaling as a separate pass, NCHW layout,
  slices of ``max(K, n) + 1`` rows all encoded with gradients, i.e. truncated n-step returns) and the
  previous default encoder width (``small_cnn`` 32-64-128-256);
* ``fp32_wide``, ``bf16_wide``: the current path (uint8 clamped-gather shift, scaling folded into the
  first convolution, ``channels_last``, slices of ``K + n`` rows with bootstrap-only rows encoded
  without gradients, so every transition gets its full n-step return) on the previous encoder width:
  the ratio to ``legacy`` is the path's alone;
* ``fp32``, ``bf16``: the current default learner (``small_cnn`` 16-32-64-128) in each precision; the
  default ``world_model.precision=auto`` is the one of the two that the device computes natively (bf16 on
  CPUs with AVX512-BF16 or AMX and on CUDA with bf16, else fp32); the script prints which, with the CPU
  capability, since the ratio between them depends on it (an AVX2 CPU emulates bf16 at 1/6 of fp32).

Each repeat times ``--updates`` updates of every variant in turn (after a warm-up), then ``--loop-steps``
iterations of the training loop's collect -> update cycle; the median over repeats and the ratios are
printed. Examples (one thread, as the README quotes them)::

    jepa-agents bench update -- --threads 1 --repeats 3 --variants legacy fp32_wide bf16_wide fp32 bf16
    jepa-agents bench update -- --threads 1 --variants fp32 --modes none compile
    jepa-agents bench update -- --variants fp32 --modes none compile agent=discrete_sac env=atari/pong
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
import types

import torch
import torch.nn.functional as F

from jepa_agents.agents import make_agent
from jepa_agents.infra.argtypes import nonnegative_int, positive_int
from jepa_agents.infra.compile import COMPILE_MODES
from jepa_agents.infra.device import resolve_device, synchronize
from jepa_agents.infra.precision import describe, resolve_precision
from jepa_agents.train.config import compose
from jepa_agents.train.off_policy import make_replay
from jepa_agents.train.online import make_env


def _legacy_shift(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The pre-change random shift: replicate-pad a float copy, cast back, two gathers."""
    if not module.training or module.pad == 0:
        return x
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    imgs = x.reshape(-1, c, h, w)
    b, p = imgs.shape[0], module.pad
    padded = F.pad(imgs.float(), (p, p, p, p), mode="replicate").to(x.dtype)
    shift = torch.randint(0, 2 * p + 1, (b, 2), device=x.device)
    rows = shift[:, :1] + torch.arange(h, device=x.device)
    cols = shift[:, 1:] + torch.arange(w, device=x.device)
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * p))
    out = out.gather(3, cols[:, None, None, :].expand(b, c, h, w))
    return out.reshape(*lead, c, h, w)


WIDE = "world_model.encoder_channels=[32,64,128,256]"  # the pre-change default width


def make_variant(base, wide, name: str, mode: str = "none"):
    """A deep copy of agent ``base`` (``wide``: the same on the previous encoder width) switched to
    variant ``name`` (see the module docstring) with its step run in compile ``mode``."""
    agent = copy.deepcopy(wide if name in ("legacy", "fp32_wide", "bf16_wide") else base)
    agent.use_compile(mode)  # also rebinds the step functions to the copy
    model = agent.nets.model
    encoder = model._encoder
    if name == "legacy":
        encoder.precision = "fp32"
        encoder.to(memory_format=torch.contiguous_format)
        encoder.forward = types.MethodType(_legacy_encode, encoder)
        model._augment.forward = types.MethodType(_legacy_shift, model._augment)
        agent.seq_len = max(agent.horizon, agent.cfg.n_step) + 1
    else:
        encoder.precision = name.removesuffix("_wide")
    return agent


def _legacy_encode(encoder, obs: torch.Tensor) -> torch.Tensor:
    """The pre-change encoder forward: float32 cast, /255 and -0.5 as separate passes, NCHW."""
    lead = obs.shape[:-3]
    x = obs.reshape(-1, *obs.shape[-3:]).float() / 255.0 - 0.5
    h = F.conv2d(x, encoder._stem.weight, encoder._stem.bias, encoder._stem.stride)
    return encoder._head(encoder._convs(h)).reshape(*lead, encoder.out_dim)


def time_updates(agent, replay, updates: int) -> float:
    """Updates per second over ``updates`` single updates (``_update_once``, diagnostics off)."""
    synchronize(agent.device)
    t0 = time.perf_counter()
    for _ in range(updates):
        agent._update_once(replay, diagnostics=False)
    synchronize(agent.device)
    return updates / (time.perf_counter() - t0)


def time_loop(agent, env, replay, steps: int, step0: int) -> float:
    """Env steps per second of the training loop's cycle: act, step, store, update (utd as configured)."""
    td = env.reset()
    n, repeat = env.batch_size[0], getattr(env, "action_repeat", 1)
    step = step0
    synchronize(agent.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        td["action"] = agent.act(td, eval_mode=False)
        step_td, td = env.step_and_maybe_reset(td)
        replay.add(step_td)
        step += n * repeat
        agent.update(replay, step)
    synchronize(agent.device)
    return steps * n * repeat / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument(
        "--updates", type=positive_int, default=20, help="timed updates per variant and repeat"
    )
    parser.add_argument(
        "--loop-steps", type=positive_int, default=20, help="timed loop iterations per variant"
    )
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument(
        "--warmup", type=nonnegative_int, default=10, help="untimed updates per variant first"
    )
    parser.add_argument(
        "--seed-steps", type=nonnegative_int, default=300, help="random agent steps to fill the replay"
    )
    parser.add_argument(
        "--variants", nargs="+", default=["auto"], help="legacy fp32_wide bf16_wide fp32 bf16, or auto"
    )
    parser.add_argument(
        "--modes", nargs="+", default=["none", "compile"], choices=COMPILE_MODES[1:], help="compile modes"
    )
    parser.add_argument("overrides", nargs="*", help="config overrides of `jepa-agents train`")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = compose(list(args.overrides))
    device = resolve_device(cfg.device)  # `device=cuda` among the overrides times the GPU
    env = make_env(cfg.env, cfg.env.num_envs, cfg.seed, device)
    base = make_agent(cfg, env, device)
    wide = make_agent(compose([*args.overrides, WIDE]), env, device)
    replay = make_replay(cfg, env, None, device)
    auto = resolve_precision("auto", device)
    print(f"device {device} ({describe(device)}): world_model.precision=auto means {auto} here", flush=True)
    td = env.reset()
    for _ in range(args.seed_steps):
        td["action"] = env.action_spec.rand()
        step_td, td = env.step_and_maybe_reset(td)
        replay.add(step_td)
    variants = [auto if v == "auto" else v for v in args.variants]
    if "legacy" in variants and args.modes != ["none"]:
        parser.error("the legacy variant is eager only: pass --modes none with it")
    agents = {f"{v}/{m}": make_variant(base, wide, v, m) for v in variants for m in args.modes}
    step0 = args.seed_steps * env.batch_size[0] * getattr(env, "action_repeat", 1)
    results = {n: {"updates_per_s": [], "env_steps_per_s": []} for n in agents}
    compile_s = {}
    for name, agent in agents.items():  # warm-up: compiles, and oneDNN builds its kernels per batch shape
        t0 = time.perf_counter()
        time_updates(agent, replay, args.warmup)
        time_loop(agent, env, replay, 3, step0)
        compile_s[name] = time.perf_counter() - t0
        print(f"{name}: warm-up (compiling, if compiled) {compile_s[name]:.1f} s", flush=True)
    for r in range(args.repeats):
        for name, agent in agents.items():
            results[name]["updates_per_s"].append(time_updates(agent, replay, args.updates))
        for name, agent in agents.items():
            results[name]["env_steps_per_s"].append(time_loop(agent, env, replay, args.loop_steps, step0))
        print(
            f"repeat {r + 1}: "
            + ", ".join(
                f"{n} {v['updates_per_s'][-1]:.2f} upd/s {v['env_steps_per_s'][-1]:.1f} steps/s"
                for n, v in results.items()
            ),
            flush=True,
        )
    ref = "legacy/none" if "legacy/none" in results else next(iter(results))
    summary = {}
    for name, v in results.items():
        upd, steps = statistics.median(v["updates_per_s"]), statistics.median(v["env_steps_per_s"])
        summary[name] = {"updates_per_s": upd, "env_steps_per_s": steps, "warmup_s": compile_s[name]}
    for name, v in summary.items():
        v["updates_ratio"] = v["updates_per_s"] / summary[ref]["updates_per_s"]
        v["env_steps_ratio"] = v["env_steps_per_s"] / summary[ref]["env_steps_per_s"]
        print(
            f"{name:>14}: {v['updates_per_s']:.2f} updates/s ({v['updates_ratio']:.2f}x {ref}), "
            f"{v['env_steps_per_s']:.1f} env steps/s ({v['env_steps_ratio']:.2f}x {ref})"
        )
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "threads": args.threads,
        "device": str(device),
        "hardware": describe(device),
        "auto_precision": auto,
        "batch": cfg.agent.batch_size,
        "env": cfg.env.name,
        "agent": cfg.agent.name,
        "repeats": args.repeats,
        "summary": summary,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
