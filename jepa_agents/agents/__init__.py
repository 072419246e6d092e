"""Learners on top of a JEPA world model: ``make_agent(cfg, env, device)``.

* ``sac`` (:class:`SACAgent`): continuous actions in ``[-1, 1]^A`` (DMC, torch control);
* ``discrete_sac`` (:class:`DiscreteSACAgent`): discrete actions (Atari);
* ``ppo`` (:class:`jepa_agents.agents.ppo.PPOAgent`): on-policy, either action space (``make_ppo``).

An agent implements ``act(obs, eval_mode) -> actions``, ``update(replay, step) -> metrics`` and
``state_dict() / load_state_dict()`` (networks and optimizers); see ``docs/CONTRACTS.md``.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from jepa_agents.agents.config import AGENT_CONFIGS, DiscreteSACConfig, SACConfig
from jepa_agents.agents.discrete_sac import DiscreteSACAgent
from jepa_agents.agents.ppo import PPOAgent, make_ppo
from jepa_agents.agents.sac import ObsEncoder, SACAgent
from jepa_agents.world_models import make_world_model

__all__ = ["AGENT_CONFIGS", "DiscreteSACAgent", "DiscreteSACConfig", "SACAgent", "SACConfig", "make_agent"]

_DISCRETE = {"sac": False, "discrete_sac": True}


def _to_object(node):
    return OmegaConf.to_object(node) if isinstance(node, DictConfig) else node


def make_agent(cfg: DictConfig, env, device: torch.device) -> SACAgent | PPOAgent:
    """The learner ``cfg.agent.name`` for ``env`` (a torchrl ``EnvBase`` with batch ``[N]``) on ``device``.

    ``cfg`` is the full validated config (``agent``, ``world_model``, ``env``, ``train``). The agent
    observes ``pixels`` when ``cfg.env.from_pixels`` else ``state``. Raises ``ValueError`` when the
    learner does not fit the env's action space, naming the learner to use instead.
    """
    if cfg.agent.name == "ppo":
        return make_ppo(cfg, env, device)
    agent_cfg, wm_cfg = _to_object(cfg.agent), _to_object(cfg.world_model)
    name = agent_cfg.name
    if name not in _DISCRETE:
        raise ValueError(f"Unknown agent.name {name!r}; valid: {', '.join(sorted(AGENT_CONFIGS))}")
    spec = env.action_spec
    discrete = not spec.dtype.is_floating_point
    if discrete != _DISCRETE[name]:
        kind, other = ("discrete", "discrete_sac") if discrete else ("continuous", "sac")
        raise ValueError(
            f"agent={name} does not fit {cfg.env.name}: its action space is {kind} "
            f"({type(spec).__name__}, shape {list(spec.shape[1:])}, {spec.dtype}). Use agent={other}."
        )
    if discrete:
        action_dim = int(spec.space.n)
    else:
        action_dim = int(spec.shape[-1])
        low, high = spec.space.low, spec.space.high
        if not (torch.all(low == -1) and torch.all(high == 1)):
            raise ValueError(
                f"{cfg.env.name}: agent={name} needs actions bounded in [-1, 1], got [{low}, {high}]"
            )

    obs_key = "pixels" if cfg.env.from_pixels else "state"
    if obs_key not in env.observation_spec.keys():
        raise ValueError(
            f"{cfg.env.name} has no {obs_key!r} observation (env.from_pixels={cfg.env.from_pixels}); "
            f"it has {sorted(env.observation_spec.keys())}"
        )
    obs_shape = env.observation_spec[obs_key].shape[1:]
    model = make_world_model(wm_cfg, obs_shape, action_dim, discrete)
    if model is None:  # world_model.name=none: the encoder alone, trained by the critic loss
        model = ObsEncoder(wm_cfg, obs_shape)
    common = dict(
        num_envs=int(env.batch_size[0]),
        action_repeat=int(env.action_repeat),
        max_consecutive_nan=int(cfg.train.max_consecutive_nan),
    )
    if discrete:
        life_loss = "life_loss" in env.observation_spec.keys()
        return DiscreteSACAgent(agent_cfg, model, obs_key, action_dim, device, life_loss=life_loss, **common)
    return SACAgent(agent_cfg, model, obs_key, action_dim, device, **common)
