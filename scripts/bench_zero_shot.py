"""Updates per second of the zero-shot learners (TD-JEPA+orthonormality, TD-JEPA+SIGReg, FB) on one device.

Each preset is timed on the same random transitions of ``torch/point_mass_maze``'s shapes (the timing
does not depend on the values), once per compile mode (``--modes``: ``none`` eager, ``compile``,
``cudagraph`` on CUDA; :mod:`jepa_agents.infra.compile`), alternating within each repeat, as the trainer
calls it (``agent.update(batch)``: metrics stay on the device; the NaN guard's count is read once per
update). The first updates of a compiled mode compile it (untimed warm-up, its time printed); ratios are
to the first mode.

    python scripts/bench_zero_shot.py --device cuda --batch 1024 --modes none compile cudagraph
    python scripts/bench_zero_shot.py --device cpu --batch 256 --updates 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from tensordict import TensorDict

from jepa_agents.config.load import compose
from jepa_agents.infra.argtypes import nonnegative_int, positive_int
from jepa_agents.infra.compile import COMPILE_MODES
from jepa_agents.infra.device import resolve_device, synchronize
from jepa_agents.zero_shot.agents import make_zero_shot_agent
from jepa_agents.zero_shot.config import ZERO_SHOT

PRESETS = ["td_jepa_ortho", "td_jepa_sigreg", "fb"]
OBS_DIM, ACTION_DIM = 4, 2  # point_mass_maze from states: position and velocity; a 2-D force


def random_batch(batch: int, device: torch.device) -> TensorDict:
    """``batch`` transitions with random states and actions, laid out as the offline dataset's."""
    return TensorDict(
        {
            "observation": {"state": torch.randn(batch, OBS_DIM)},
            "action": torch.rand(batch, ACTION_DIM) * 2 - 1,
            "next": {
                "observation": {"state": torch.randn(batch, OBS_DIM)},
                "terminated": torch.zeros(batch, 1, dtype=torch.bool),
            },
        },
        batch_size=[batch],
    ).to(device)


def time_updates(agent, batch: TensorDict, updates: int, device: torch.device) -> float:
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(updates):
        agent.update(batch)
    synchronize(device)
    return updates / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=positive_int, default=1024)
    parser.add_argument(
        "--updates", type=positive_int, default=200, help="timed updates per preset, variant and repeat"
    )
    parser.add_argument("--warmup", type=nonnegative_int, default=20)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--modes", nargs="+", default=["none", "compile"], choices=COMPILE_MODES[1:])
    parser.add_argument("overrides", nargs="*", help="more agent.* overrides (as train-zero-shot takes them)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = resolve_device(args.device)
    batch = random_batch(args.batch, device)
    out = {"date": time.strftime("%Y-%m-%d"), "device": str(device), "batch": args.batch, "results": {}}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    for preset in args.presets:
        cfg = compose(
            ["dataset=unused", f"zs_agent={preset}", f"agent.batch_size={args.batch}", *args.overrides],
            ZERO_SHOT,
        )
        agents, row = {}, {}
        for mode in args.modes:
            torch.manual_seed(0)
            agents[mode] = make_zero_shot_agent(cfg.agent, [OBS_DIM], ACTION_DIM, device, mode)
            t0 = time.perf_counter()
            time_updates(agents[mode], batch, max(args.warmup, 3), device)  # a CUDA graph warms up 3 calls
            row[f"{mode}_warmup_s"] = time.perf_counter() - t0
        rates: dict[str, list[float]] = {mode: [] for mode in args.modes}
        for _ in range(args.repeats):
            for mode, agent in agents.items():
                rates[mode].append(time_updates(agent, batch, args.updates, device))
        ref = args.modes[0]
        for mode, r in rates.items():
            row[mode] = statistics.median(r)
            row[f"{mode}_ratio"] = row[mode] / statistics.median(rates[ref])
        out["results"][preset] = row
        print(
            f"{preset:>15}: "
            + ", ".join(f"{m} {row[m]:.1f} updates/s ({row[f'{m}_ratio']:.2f}x)" for m in args.modes),
            flush=True,
        )
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
