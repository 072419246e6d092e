"""Learners on top of a JEPA world model, and the table of them: ``LEARNERS[name]`` is a :class:`Learner`
(config schema, builder, trainer kind); ``make_agent(cfg, env, device)`` builds ``cfg.agent.name``.

* ``sac`` (:class:`SACAgent`): continuous actions in ``[-1, 1]^A`` (DMC, torch control);
* ``discrete_sac`` (:class:`DiscreteSACAgent`): discrete actions (Atari);
* ``ppo`` (:class:`jepa_agents.agents.ppo.PPOAgent`): on-policy, either action space (``make_ppo``);
* ``imagination`` (:class:`ImaginationAgent`): actor-critic on imagined latent rollouts of the world model,
  either action space.

An agent implements ``act(obs, eval_mode) -> actions``, ``update(data, step) -> metrics`` and
``state_dict() / load_state_dict()`` (networks and optimizers); see ``docs/CONTRACTS.md``, which also
walks through adding a learner (its module, a row of :data:`LEARNERS`, a preset in ``configs/agent/``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf

from jepa_agents.agents.config import DiscreteSACConfig, SACConfig
from jepa_agents.agents.discrete_sac import DiscreteSACAgent
from jepa_agents.agents.imagination import ImaginationAgent
from jepa_agents.agents.imagination_config import ImaginationConfig
from jepa_agents.agents.ppo import PPOAgent, make_ppo
from jepa_agents.agents.ppo_config import PPOConfig
from jepa_agents.agents.sac import SACAgent
from jepa_agents.agents.spaces import action_space, observation_key
from jepa_agents.infra.compile import resolve_compile
from jepa_agents.infra.distributed import world_size
from jepa_agents.world_models import EncoderStack, make_world_model
from jepa_agents.world_models.simulator import SimulatorModel

__all__ = [
    "LEARNERS", "DiscreteSACAgent", "DiscreteSACConfig", "Learner", "PPOAgent", "SACAgent", "SACConfig",
    "learner", "make_agent", "trainer_kind",
]  # fmt: skip


def _to_object(node):
    return OmegaConf.to_object(node) if isinstance(node, DictConfig) else node


def make_sac(cfg: DictConfig, env, device: torch.device) -> SACAgent:
    """SAC (``agent.name=sac``) or discrete SAC (``discrete_sac``) for ``env`` (module docstring).

    ``cfg`` is the full validated config (``agent``, ``world_model``, ``env``, ``train``). The agent
    observes ``pixels`` when ``cfg.env.from_pixels`` else ``state``. Raises ``ValueError`` when the
    learner does not fit the env's action space, naming the learner to use instead.
    """
    agent_cfg, wm_cfg = _to_object(cfg.agent), _to_object(cfg.world_model)
    name = agent_cfg.name
    spec = env.action_spec
    discrete = not spec.dtype.is_floating_point
    if discrete != (name == "discrete_sac"):
        kind, other = ("discrete", "discrete_sac") if discrete else ("continuous", "sac")
        raise ValueError(
            f"agent={name} does not fit {cfg.env.name}: its action space is {kind} "
            f"({type(spec).__name__}, shape {list(spec.shape[1:])}, {spec.dtype}). Use agent={other}."
        )
    _, action_dim = action_space(cfg, env, name)
    obs_key = observation_key(cfg, env)
    obs_shape = env.observation_spec[obs_key].shape[1:]
    model = make_world_model(wm_cfg, obs_shape, action_dim, discrete)
    if model is None:  # world_model.name=none: the same encoder stack alone, trained by the critic loss
        model = EncoderStack(wm_cfg, obs_shape)
    common = _schedule(cfg, env, device)
    if discrete:
        life_loss = "life_loss" in env.observation_spec.keys()
        return DiscreteSACAgent(agent_cfg, model, obs_key, action_dim, device, life_loss=life_loss, **common)
    return SACAgent(agent_cfg, model, obs_key, action_dim, device, **common)


def _schedule(cfg: DictConfig, env, device: torch.device) -> dict:
    """The off-policy learners' keyword arguments about the data stream, the NaN limit and how their
    gradient step runs (``compile``, resolved for ``device``)."""
    return dict(
        num_envs=int(env.batch_size[0]) * world_size(),  # transitions of all ranks per vectorized step
        action_repeat=int(env.action_repeat),
        max_consecutive_nan=int(cfg.train.max_consecutive_nan),
        compile_mode=resolve_compile(cfg.compile, device, world_size())[0],
    )


def make_imagination(cfg: DictConfig, env, device: torch.device) -> ImaginationAgent:
    """The imagination learner (``agent.name=imagination``), continuous or discrete actions; its world
    model must be a JEPA with reward and continuation heads (``world_model=imagination``), or the task's
    true simulator (``world_model=simulator``, a ``torch/`` task from states)."""
    agent_cfg, wm_cfg = _to_object(cfg.agent), _to_object(cfg.world_model)
    discrete, action_dim = action_space(cfg, env, agent_cfg.name)
    schedule = _schedule(cfg, env, device)
    if wm_cfg.name == "simulator":
        if not hasattr(env, "domain") or cfg.env.from_pixels:
            raise ValueError(
                "world_model=simulator steps a torch/ task's own physics: it needs a torch/ task with "
                f"env.from_pixels=false (got {cfg.env.name}, from_pixels={cfg.env.from_pixels})"
            )
        model = SimulatorModel(wm_cfg, env.domain, env.task, env.action_repeat)
        return ImaginationAgent(agent_cfg, model, "physics", action_dim, discrete, device, **schedule)
    obs_key = observation_key(cfg, env)
    if wm_cfg.name != "jepa" or wm_cfg.reward_weight <= 0 or wm_cfg.continue_weight <= 0:
        raise ValueError(
            "agent=imagination imagines with the world model's predictor, reward and continuation heads: "
            f"it needs world_model.name=jepa with reward_weight > 0 and continue_weight > 0 (got name="
            f"{wm_cfg.name}, reward_weight={wm_cfg.reward_weight}, continue_weight="
            f"{wm_cfg.continue_weight}); use world_model=imagination"
        )
    model = make_world_model(wm_cfg, env.observation_spec[obs_key].shape[1:], action_dim, discrete)
    return ImaginationAgent(agent_cfg, model, obs_key, action_dim, discrete, device, **schedule)


@dataclass(frozen=True)
class Learner:
    """One online learner: what ``jepa-agents train agent=<name>`` needs to know about it."""

    config: type
    """Dataclass schema of its ``agent`` config section (``name`` field equal to its key)."""
    build: Callable[[DictConfig, object, torch.device], object]
    """``(full config, env, device) -> agent``; raises ``ValueError`` when it does not fit the env."""
    trainer: str
    """Its schedule: ``off_policy`` (replay, :mod:`jepa_agents.train.off_policy`) or ``on_policy``
    (rollouts, :mod:`jepa_agents.train.on_policy`)."""


LEARNERS: dict[str, Learner] = {
    "sac": Learner(SACConfig, make_sac, "off_policy"),
    "discrete_sac": Learner(DiscreteSACConfig, make_sac, "off_policy"),
    "ppo": Learner(PPOConfig, make_ppo, "on_policy"),
    "imagination": Learner(ImaginationConfig, make_imagination, "off_policy"),
}
"""Learner name -> :class:`Learner`. A new online learner is one row here (plus its module and preset)."""


def learner(name: str) -> Learner:
    """``LEARNERS[name]``, or a ``ValueError`` that lists the learners."""
    if name not in LEARNERS:
        raise ValueError(f"Unknown agent.name {name!r}; valid: {', '.join(sorted(LEARNERS))}")
    return LEARNERS[name]


def trainer_kind(name: str) -> str:
    """The schedule of learner ``name``: ``off_policy`` or ``on_policy``."""
    return learner(name).trainer


def make_agent(cfg: DictConfig, env, device: torch.device):
    """The learner ``cfg.agent.name`` for ``env`` (a torchrl ``EnvBase`` with batch ``[N]``) on ``device``."""
    return learner(cfg.agent.name).build(cfg, env, device)
