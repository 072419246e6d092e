"""``DMCBatch``: ``k`` dm_control environments stepped one after the other in this process.

Used directly (``num_workers=0``) or inside each worker process of :mod:`envs.dmc_tasks.pool`. It
returns numpy batches only, so it can sit behind a pipe:

* ``state``   float32 ``[k, S]``  -- the observation dict flattened in its key order;
* ``physics`` float32 ``[k, P]``  -- ``[qpos, qvel, act, ctrl]`` (see :func:`envs.dmc_tasks.physics_state`);
* ``pixels``  uint8 ``[k, 3, H, W]`` -- the newest frame (stacking is the caller's business);
* on step: ``reward`` float32 ``[k]`` = ``sum`` over the ``action_repeat`` physics-control steps,
  ``terminated``, ``truncated`` bool ``[k]`` (truncated after ``max_steps`` agent steps).
"""

from __future__ import annotations

import numpy as np

from envs.dmc_tasks import gl_error, load, physics_state


class DMCBatch:
    """``len(seeds)`` copies of task ``name``; copy ``i`` uses task RNG seed ``seeds[i]``."""

    def __init__(
        self,
        name: str,
        seeds: list[int],
        *,
        from_pixels: bool,
        image_size: int,
        camera: int,
        action_repeat: int,
        max_steps: int,
    ):
        self.envs = [load(name, int(s)) for s in seeds]
        self.from_pixels = from_pixels
        self.image_size = image_size
        self.camera = camera
        self.action_repeat = action_repeat
        self.max_steps = max_steps
        self.steps = np.zeros(len(seeds), np.int64)
        if from_pixels:
            self._render(self.envs[0])  # fail here, once, if there is no GL backend

    def info(self) -> dict:
        """Sizes and action bounds (the same for every copy)."""
        env = self.envs[0]
        spec = env.action_spec()
        return {
            "state_dim": int(sum(np.prod(s.shape, dtype=int) for s in env.observation_spec().values())),
            "physics_dim": int(physics_state(env.physics).size),
            "action_low": np.broadcast_to(spec.minimum, spec.shape).astype(np.float32),
            "action_high": np.broadcast_to(spec.maximum, spec.shape).astype(np.float32),
        }

    def _render(self, env) -> np.ndarray:
        try:
            frame = env.physics.render(self.image_size, self.image_size, camera_id=self.camera)
        except Exception as err:
            raise gl_error(err) from None
        return frame.transpose(2, 0, 1)

    @staticmethod
    def _state(observation) -> np.ndarray:
        return np.concatenate([np.asarray(v, np.float32).ravel() for v in observation.values()])

    def _observe(self, envs: list, observations: list) -> dict:
        out = {
            "state": np.stack([self._state(o) for o in observations]),
            "physics": np.stack([physics_state(e.physics) for e in envs]).astype(np.float32),
        }
        if self.from_pixels:
            out["pixels"] = np.stack([self._render(e) for e in envs])
        return out

    def reset(self, mask: np.ndarray) -> dict:
        """Reset the copies selected by ``mask [k]``; returns their observations (rows in copy order)."""
        idx = np.flatnonzero(mask)
        envs = [self.envs[i] for i in idx]
        observations = [e.reset().observation for e in envs]
        self.steps[idx] = 0
        return self._observe(envs, observations)

    def seed(self, seeds: np.ndarray) -> None:
        """New task RNG seeds ``[k]``, used from each copy's next reset on."""
        for env, seed in zip(self.envs, seeds):
            env.task._random = np.random.RandomState(int(seed))

    def step(self, actions: np.ndarray) -> dict:
        """Apply ``actions [k, A]`` for ``action_repeat`` control steps each; returns all ``k`` rows."""
        k = len(self.envs)
        reward = np.zeros(k, np.float32)
        terminated = np.zeros(k, bool)
        ended = np.zeros(k, bool)  # the task itself ended the episode (time limits are ours)
        observations = []
        for i, env in enumerate(self.envs):
            for _ in range(self.action_repeat):
                timestep = env.step(actions[i])
                reward[i] += timestep.reward or 0.0
                if timestep.last():
                    ended[i] = True
                    terminated[i] = timestep.discount == 0
                    break
            observations.append(timestep.observation)
        self.steps += 1
        out = self._observe(self.envs, observations)
        out.update(
            reward=reward,
            terminated=terminated,
            truncated=((self.steps >= self.max_steps) | ended) & ~terminated,
        )
        return out

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []
