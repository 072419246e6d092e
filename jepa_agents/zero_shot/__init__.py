"""Zero-shot RL from reward-free data: TD-JEPA (with SIGReg or orthonormality) and the FB baseline.

Pipeline: ``jepa-agents collect`` (random / RND exploration -> :mod:`jepa_agents.data.offline` dataset),
``jepa-agents train-zero-shot`` (:mod:`.train_offline`), ``jepa-agents eval-zero-shot`` (:mod:`.evaluate`:
infer ``z`` per task from relabeled transitions, roll out ``π_z``). Models: :class:`TDJEPAModel`,
:class:`FBModel`; agents: :func:`make_zero_shot_agent`.
"""

from jepa_agents.zero_shot.agents import FBAgent, TDJEPAAgent, make_zero_shot_agent
from jepa_agents.zero_shot.fb import FBModel
from jepa_agents.zero_shot.td_jepa import DegenerateTaskError, TDJEPAModel

__all__ = ["DegenerateTaskError", "FBAgent", "FBModel", "TDJEPAAgent", "TDJEPAModel", "make_zero_shot_agent"]
