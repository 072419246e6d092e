"""Evaluation episodes (the policy's mode, samples or ε-greedy), and GIF export of a recorded episode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm


class EvalPolicy:
    """How an agent acts in evaluation: ``mode``, ``sample`` or ``epsilon`` (the mode, replaced by a
    uniformly random action of ``action_spec`` with probability ``epsilon`` per copy and step);
    ``auto`` is ``sample`` for discrete action specs and ``mode`` otherwise. ``act(obs, eval_mode)``
    ignores ``eval_mode``, like every policy handed to :func:`evaluate`."""

    def __init__(self, agent, action_spec, policy: str = "auto", epsilon: float = 0.0):
        if policy == "auto":
            policy = "sample" if action_spec.domain == "discrete" else "mode"
        if policy not in ("mode", "sample", "epsilon"):
            raise ValueError(f"evaluation policy {policy!r}; choose auto, mode, sample or epsilon")
        self.agent, self.action_spec, self.policy, self.epsilon = agent, action_spec, policy, epsilon

    def act(self, obs, eval_mode: bool = True) -> torch.Tensor:
        action = self.agent.act(obs, eval_mode=self.policy != "sample")
        if self.policy == "epsilon" and self.epsilon > 0:
            random = self.action_spec.rand().to(action.device)
            explore = torch.rand(action.shape[0], device=action.device) < self.epsilon  # [N]
            action = torch.where(explore.view(-1, *[1] * (action.ndim - 1)), random, action)
        return action


@torch.no_grad()
def evaluate(
    agent, env, episodes: int, seed: int, record: bool = False, progress: bool = False
) -> tuple[dict[str, float], list]:
    """Run ``episodes`` complete episodes on ``env``'s parallel copies (re-seeded with ``seed``, so every
    evaluation is reproducible whatever happened before) and return ``({'eval/return', ...}, frames)``.
    ``agent.act(obs, eval_mode=True)`` chooses the actions (wrap it in :class:`EvalPolicy`).

    ``frames`` holds uint8 ``[H, W, 3]`` arrays of the first episode of copy 0 when ``record``;
    ``progress`` shows a bar of the finished episodes and the steps played.
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
    bar = tqdm(total=episodes, desc="evaluating", unit="episode", leave=False, disable=not progress)
    steps = 0
    while len(returns) < episodes:
        td["action"] = agent.act(td, eval_mode=True)
        td, td_next = env.step_and_maybe_reset(td)
        running += td["next", "reward"].reshape(n)
        lengths += 1
        done = td["next", "done"].reshape(n)
        if recording:
            frames.append(_rgb(td["next", "pixels"][0]))
            recording = not bool(done[0])
        steps += 1
        if done.any():
            returns.extend(running[done].tolist())
            ep_lengths.extend(lengths[done].tolist())
            running[done] = 0.0
            lengths[done] = 0
            bar.update(min(int(done.sum()), episodes - bar.n))
        if steps % 100 == 0:
            bar.set_postfix(steps=steps * n)
        td = td_next
    bar.close()
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
