"""Evaluation episodes with the deterministic policy, and GIF export of a recorded episode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


@torch.no_grad()
def evaluate(agent, env, episodes: int, seed: int, record: bool = False) -> tuple[dict[str, float], list]:
    """Run ``episodes`` complete episodes on ``env`` (re-seeded with ``seed``, so every evaluation is
    reproducible whatever happened before) and return ``({'eval/return', ...}, frames)``.

    ``frames`` holds uint8 ``[H, W, 3]`` arrays of the first episode of copy 0 when ``record``.
    """
    env.set_seed(seed)
    td = env.reset()
    n = env.batch_size[0]
    running = torch.zeros(n, device=env.device)
    lengths = torch.zeros(n, dtype=torch.long, device=env.device)
    returns: list[float] = []
    ep_lengths: list[int] = []
    frames: list[np.ndarray] = []
    recording = record and "pixels" in td.keys()
    if recording:
        frames.append(_rgb(td["pixels"][0]))
    while len(returns) < episodes:
        td["action"] = agent.act(td, eval_mode=True)
        td, td_next = env.step_and_maybe_reset(td)
        running += td["next", "reward"].reshape(n)
        lengths += 1
        done = td["next", "done"].reshape(n)
        if recording:
            frames.append(_rgb(td["next", "pixels"][0]))
            recording = not bool(done[0])
        if done.any():
            returns.extend(running[done].tolist())
            ep_lengths.extend(lengths[done].tolist())
            running[done] = 0.0
            lengths[done] = 0
        td = td_next
    returns, ep_lengths = returns[:episodes], ep_lengths[:episodes]
    metrics = {
        "eval/return": float(np.mean(returns)),
        "eval/return_std": float(np.std(returns)),
        "eval/episode_length": float(np.mean(ep_lengths)) * getattr(env, "action_repeat", 1),
    }
    return metrics, frames


class RandomPolicy:
    """Uniformly random actions from an env's action spec: ``act(obs, eval_mode) -> action``."""

    def __init__(self, action_spec):
        self.action_spec = action_spec

    def act(self, obs, eval_mode: bool) -> torch.Tensor:
        return self.action_spec.rand()


def _rgb(pixels: torch.Tensor) -> np.ndarray:
    """Newest frame of a stacked uint8 observation ``[C, H, W]`` as ``[H, W, 3]``."""
    c = pixels.shape[0]
    frame = pixels[-3:] if c % 3 == 0 else pixels[-1:].expand(3, -1, -1)
    return frame.permute(1, 2, 0).cpu().numpy()


def save_gif(frames: list[np.ndarray], path: Path, fps: int = 25) -> None:
    """Write frames ``[H, W, 3]`` uint8 as an animated GIF (upscaled x2 for visibility)."""
    from PIL import Image

    images = [Image.fromarray(f).resize((f.shape[1] * 2, f.shape[0] * 2), Image.NEAREST) for f in frames]
    tmp = path.with_name(path.name + ".tmp")
    images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
    )
    tmp.replace(path)
