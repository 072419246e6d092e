"""The true simulator as a world model: a torch-native task's own batched physics in place of a learned
latent model, so that a learner on imagined rollouts can be tested apart from model errors (issue #31:
if the actor-critic fails here, the actor-critic is at fault, not the model).

The latent is ``z = [physics, state(physics)]`` ``[*, P + S]`` (the simulator's full state, and the
observation features the task exposes, which an actor and a critic read more easily than raw angles);
``predict(z, a)`` applies ``action_repeat`` physics steps of the task (differentiable wherever the
physics is: the torch tasks are plain tensor code), ``reward(z, a)`` sums the task's rewards over those
steps, as the environment does, and the tasks never terminate (continuation probability 1). The model
has no parameters and its loss is zero. Built for ``world_model=simulator`` with ``agent=imagination``
on a ``torch/`` task observed through its ``physics`` key.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import Tensor, nn

from jepa_agents.world_models.config import WorldModelConfig

_ALWAYS = 30.0  # a continuation logit whose sigmoid is 1 in float32


class SimulatorModel(nn.Module):
    """A torch-native task as the world model (module docstring)."""

    def __init__(self, cfg: WorldModelConfig, domain: ModuleType, task: str, action_repeat: int):
        super().__init__()
        self.cfg, self.domain, self.task, self.action_repeat = cfg, domain, task, int(action_repeat)
        self.physics_dim = int(domain.PHYSICS_DIM)
        self.latent_dim = self.physics_dim + int(domain.STATE_DIM)
        self.action_dim, self.discrete = int(domain.ACTION_DIM), False
        self.obs_shape = (self.physics_dim,)
        self._last: tuple[Tensor, Tensor, tuple[Tensor, Tensor]] | None = None  # imagination asks twice

    def _latent(self, physics: Tensor) -> Tensor:
        lead = physics.shape[:-1]
        flat = physics.reshape(-1, self.physics_dim)
        return torch.cat((flat, self.domain.state(flat, self.task)), -1).reshape(*lead, self.latent_dim)

    def encode(self, obs: Tensor, augment: bool = False, running_stats: bool = False) -> Tensor:
        """Physics ``[*, P]`` -> ``z [*, P + S]``."""
        return self._latent(obs.float())

    def _transition(self, z: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """``(z', r)`` of ``action_repeat`` physics steps; the last pair is kept, since an imagined step
        asks for the reward and the next latent of the same ``(z, action)`` one after the other."""
        if self._last is not None and self._last[0] is z and self._last[1] is action:
            return self._last[2]
        physics, reward = z[..., : self.physics_dim], z.new_zeros(z.shape[:-1])
        for _ in range(self.action_repeat):
            physics = self.domain.advance(physics, action)
            reward = reward + self.domain.reward(physics, self.task)
        out = (self._latent(physics), reward)
        self._last = (z, action, out)
        return out

    def predict(self, z: Tensor, action: Tensor) -> Tensor:
        """``z [N, P+S]``, actions ``[N, A]`` -> the latent after ``action_repeat`` physics steps."""
        return self._transition(z, action)[0]

    def reward(self, z: Tensor, action: Tensor) -> Tensor:
        """The task's reward summed over the repeated physics steps ``[N]``."""
        return self._transition(z, action)[1]

    def continue_logits(self, z: Tensor) -> Tensor:
        return torch.full(z.shape[:-1], _ALWAYS, device=z.device)

    def loss(self, obs: Tensor, actions: Tensor, *, z: Tensor | None = None, **_) -> tuple[Tensor, dict]:
        """Nothing to learn: a zero loss and no metrics."""
        return obs.new_zeros((), dtype=torch.float32), {}
