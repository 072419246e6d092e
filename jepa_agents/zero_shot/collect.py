"""Reward-free data collection (``jepa-agents collect``): uniform random actions or RND exploration.

RND (Burda et al. 2019): a frozen random MLP ``f̄(s)`` and a predictor ``f(s)`` trained to match it on
visited states; the intrinsic reward ``r_int(s') = |f(s') - f̄(s')|² / σ`` (``σ`` a running std of it) is high
where the predictor has seen little data. A TD3 learner (twin critics, target policy smoothing) maximizes
the discounted intrinsic return from its own replay. The explorer reads the ``state`` observation (also
when ``pixels`` are rendered and stored). Episodes go to disk as they finish (:class:`DatasetWriter`);
the explorer is checkpointed atomically into ``<dataset>/explorer/`` so ``append=true`` resumes both.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from torch import Tensor, nn
from tqdm import tqdm

from jepa_agents.data.offline import DatasetMeta, DatasetWriter, spec_of
from jepa_agents.infra.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from jepa_agents.infra.device import configure_threads, resolve_device
from jepa_agents.infra.polyak import polyak_update
from jepa_agents.infra.rng import rng_state, seed_everything, set_rng_state
from jepa_agents.nn import MLP
from jepa_agents.train.online import make_env
from jepa_agents.zero_shot.coverage import format_report, write_coverage

OBS_KEYS = ("state", "pixels")


class RandomExplorer:
    """Uniform random actions in ``[-1, 1]^A``."""

    def __init__(self, action_dim: int, device: torch.device):
        self.action_dim, self.device = action_dim, device

    def act(self, state: Tensor) -> Tensor:
        return torch.rand(state.shape[0], self.action_dim, device=self.device) * 2 - 1  # [N, A]

    def observe(
        self, state: Tensor, action: Tensor, next_state: Tensor, terminated: Tensor
    ) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None


class RNDExplorer:
    """RND intrinsic reward + TD3 on it (module docstring). ``observe`` stores transitions and updates."""

    def __init__(self, cfg, state_dim: int, action_dim: int, device: torch.device):
        self.cfg, self.device, self.action_dim = cfg, device, action_dim
        h = list(cfg.hidden)
        self.actor = MLP(state_dim, h, action_dim, layer_norm=True).to(device)
        self.critics = nn.ModuleList(MLP(state_dim + action_dim, h, 1, layer_norm=True) for _ in range(2)).to(
            device
        )
        self.rnd_target = MLP(state_dim, h, cfg.rnd_dim).to(device).requires_grad_(False)
        self.rnd = MLP(state_dim, h, cfg.rnd_dim).to(device)
        self.actor_t = MLP(state_dim, h, action_dim, layer_norm=True).to(device).requires_grad_(False)
        self.critics_t = nn.ModuleList(
            MLP(state_dim + action_dim, h, 1, layer_norm=True) for _ in range(2)
        ).to(device)
        self.actor_t.load_state_dict(self.actor.state_dict())
        self.critics_t.load_state_dict(self.critics.state_dict())
        self.critics_t.requires_grad_(False)
        self.opt_actor = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr)
        self.opt_critic = torch.optim.Adam(self.critics.parameters(), lr=cfg.lr)
        self.opt_rnd = torch.optim.Adam(self.rnd.parameters(), lr=cfg.lr)
        cap = cfg.replay_capacity
        self.replay = TensorDict(
            {
                "state": torch.zeros(cap, state_dim),
                "action": torch.zeros(cap, action_dim),
                "next_state": torch.zeros(cap, state_dim),
                "terminated": torch.zeros(cap, 1, dtype=torch.bool),
            },
            batch_size=[cap],
            device=device,
        )
        self.size, self.cursor, self.seen = 0, 0, 0
        self.rew_var = torch.ones((), device=device)

    def act(self, state: Tensor) -> Tensor:
        if self.seen < self.cfg.warmup_transitions:
            return torch.rand(state.shape[0], self.action_dim, device=self.device) * 2 - 1
        with torch.no_grad():
            mean = torch.tanh(self.actor(state))
        return (mean + self.cfg.action_noise * torch.randn_like(mean)).clamp(-1, 1)  # [N, A]

    def _intrinsic(self, next_state: Tensor) -> Tensor:
        """``r_int = |f(s') - f̄(s')|²`` ``[B, 1]`` (unnormalized) and its gradient path to ``f``."""
        return (self.rnd(next_state) - self.rnd_target(next_state)).square().mean(-1, keepdim=True)

    def observe(
        self, state: Tensor, action: Tensor, next_state: Tensor, terminated: Tensor
    ) -> dict[str, float]:
        n, cap = state.shape[0], self.cfg.replay_capacity
        idx = (self.cursor + torch.arange(n, device=self.device)) % cap
        self.replay[idx] = TensorDict(
            {
                "state": state,
                "action": action,
                "next_state": next_state,
                "terminated": terminated.reshape(n, 1),
            },
            batch_size=[n],
        )
        self.cursor, self.size, self.seen = (self.cursor + n) % cap, min(self.size + n, cap), self.seen + n
        metrics: dict[str, float] = {}
        if self.seen >= self.cfg.warmup_transitions:
            for _ in range(self.cfg.updates_per_step):
                metrics = self._update()
        return metrics

    def _update(self) -> dict[str, float]:
        cfg = self.cfg
        b = self.replay[torch.randint(self.size, (cfg.batch_size,), device=self.device)]
        err = self._intrinsic(b["next_state"])  # [B, 1]
        rnd_loss = err.mean()
        self.opt_rnd.zero_grad(set_to_none=True)
        rnd_loss.backward()
        self.opt_rnd.step()
        with torch.no_grad():
            self.rew_var.lerp_(err.var(), 0.01)
            reward = err / self.rew_var.sqrt().clamp(min=1e-8)  # [B, 1]
            a_next = torch.tanh(self.actor_t(b["next_state"]))
            a_next = (a_next + (0.2 * torch.randn_like(a_next)).clamp(-0.5, 0.5)).clamp(-1, 1)
            sa_next = torch.cat([b["next_state"], a_next], -1)
            q_next = torch.min(self.critics_t[0](sa_next), self.critics_t[1](sa_next))
            target = reward + cfg.discount * (~b["terminated"]).float() * q_next  # [B, 1]
        sa = torch.cat([b["state"], b["action"]], -1)
        critic_loss = sum(F.mse_loss(q(sa), target) for q in self.critics)
        self.opt_critic.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.opt_critic.step()
        actor_loss = -self.critics[0](torch.cat([b["state"], torch.tanh(self.actor(b["state"]))], -1)).mean()
        self.opt_actor.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.opt_actor.step()
        polyak_update(self.actor_t, self.actor, cfg.tau)
        polyak_update(self.critics_t, self.critics, cfg.tau)
        return {
            "rnd_loss": rnd_loss.item(),
            "critic_loss": critic_loss.item(),
            "intrinsic": reward.mean().item(),
        }

    _MODULES = (
        "actor",
        "critics",
        "rnd_target",
        "rnd",
        "actor_t",
        "critics_t",
        "opt_actor",
        "opt_critic",
        "opt_rnd",
    )

    def state_dict(self) -> dict:
        state = {k: getattr(self, k).state_dict() for k in self._MODULES}
        return state | {
            "replay": self.replay[: self.size].cpu(),
            "counters": (self.size, self.cursor, self.seen),
            "rew_var": self.rew_var.cpu(),
        }

    def load_state_dict(self, state: dict) -> None:
        for k in self._MODULES:
            getattr(self, k).load_state_dict(state[k])
        self.size, self.cursor, self.seen = state["counters"]
        self.replay[: self.size] = state["replay"].to(self.device)
        self.rew_var = state["rew_var"].to(self.device)


def _episode_row(step: TensorDict, obs_keys: list[str]) -> TensorDict:
    """The stored fields of one env step ``[N]`` (module layout of :mod:`jepa_agents.data.offline`)."""
    nxt = step["next"]
    return TensorDict(
        {
            "observation": {k: step[k] for k in obs_keys},
            "physics": step["physics"],
            "action": step["action"],
            "next": {
                "observation": {k: nxt[k] for k in obs_keys},
                "physics": nxt["physics"],
                "terminated": nxt["terminated"],
                "truncated": nxt["truncated"],
            },
        },
        batch_size=step.batch_size,
    )


def default_dataset_dir(cfg: DictConfig) -> Path:
    return Path("datasets") / cfg.env.name.replace("/", "-") / f"{cfg.explorer.name}_seed{cfg.seed}"


def _hash(cfg: DictConfig) -> str:
    data = OmegaConf.to_container(cfg, resolve=True)
    keep = {k: data[k] for k in ("env", "explorer", "num_envs", "seed")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


class _EpisodeSplitter:
    """Collect per-step rows ``[N]`` and cut them into per-copy episodes when copies finish."""

    def __init__(self, num_envs: int):
        self.rows: list[TensorDict] = []
        self.t0 = 0  # absolute time of rows[0]
        self.starts = [0] * num_envs  # absolute start time of each copy's running episode

    def add(self, row: TensorDict, done: Tensor) -> list[TensorDict]:
        """Append one step; return the finished episodes ``[T_i]`` (in copy order)."""
        self.rows.append(row)
        now = self.t0 + len(self.rows) - 1
        finished = [i for i in range(len(self.starts)) if bool(done[i])]
        return self._cut(finished, now)

    def flush(self) -> list[TensorDict]:
        """The running (incomplete) episodes, their last step marked ``truncated``."""
        if not self.rows:
            return []
        now = self.t0 + len(self.rows) - 1
        episodes = self._cut([i for i, s in enumerate(self.starts) if s <= now], now)
        for ep in episodes:
            ep["next", "truncated"][-1] = True
        return episodes

    def _cut(self, copies: list[int], now: int) -> list[TensorDict]:
        if not copies:
            return []
        first = min(self.starts[i] for i in copies)
        window = torch.stack(self.rows[first - self.t0 :])  # [T, N]
        episodes = [window[self.starts[i] - first :, i].clone() for i in copies]
        for i in copies:
            self.starts[i] = now + 1
        drop = min(self.starts) - self.t0
        self.rows, self.t0 = self.rows[drop:], self.t0 + drop
        return episodes


def _dataset_meta(cfg: DictConfig, first: TensorDict, obs_keys: list[str], action_dim: int) -> DatasetMeta:
    """The dataset's description from the env's first observation ``first`` ``[1]``."""
    spec = spec_of(TensorDict({"observation": {k: first[k] for k in obs_keys}}, batch_size=[1]))
    return DatasetMeta(
        env=cfg.env.name,
        obs_spec=spec,
        action_dim=action_dim,
        physics_dim=first["physics"].shape[-1],
        info={
            "explorer": OmegaConf.to_container(cfg.explorer),
            "env": OmegaConf.to_container(cfg.env),
            "seed": cfg.seed,
            "num_envs": cfg.num_envs,
        },
    )


def _save_explorer(ckpt_dir: Path, transitions: int, explorer, cfg: DictConfig) -> None:
    state = {"explorer": explorer.state_dict(), "rng": rng_state()}
    save_checkpoint(ckpt_dir, transitions, state, _hash(cfg), keep=1)


def collect(cfg: DictConfig) -> Path:
    """Run ``jepa-agents collect`` for a validated ``collect`` config; return the dataset directory."""
    device = resolve_device(cfg.device)
    configure_threads(cfg.num_threads, False)
    root = Path(cfg.dataset) if cfg.dataset else default_dataset_dir(cfg)
    seed_everything(cfg.seed)
    start = {"start": cfg.start} if cfg.start != "reset" else {}  # only torch envs know the option
    probe = make_env(cfg.env, 1, cfg.seed, device, **start)
    first = probe.reset()
    action_dim = probe.action_spec.shape[-1]
    probe.close()
    obs_keys = [k for k in OBS_KEYS if k in first.keys()]
    if "physics" not in first.keys() or "state" not in first.keys():
        raise ValueError(
            f"{cfg.env.name} has no 'physics'/'state' keys; zero-shot datasets need both (relabeling)."
        )
    writer = DatasetWriter(root, _dataset_meta(cfg, first, obs_keys, action_dim), append=cfg.append)
    state_dim = first["state"].shape[-1]
    if cfg.explorer.name == "rnd":
        explorer: RNDExplorer | RandomExplorer = RNDExplorer(cfg.explorer, state_dim, action_dim, device)
    else:
        explorer = RandomExplorer(action_dim, device)
    ckpt_dir = root / "explorer"
    ckpt_path = latest_checkpoint(ckpt_dir)
    if cfg.append and ckpt_path is not None:
        ckpt = load_checkpoint(ckpt_path, _hash(cfg))
        explorer.load_state_dict(ckpt["explorer"])
        set_rng_state(ckpt["rng"])
    # Fresh env seeds per (re)start, so an appended run does not replay the same episodes.
    env = make_env(cfg.env, cfg.num_envs, cfg.seed + 7919 * writer.meta.episodes, device, **start)
    try:
        _run(cfg, env, explorer, writer, obs_keys, ckpt_dir)
    finally:
        env.close()
    # only the next physics states are read (memory-mapped), never the pixels of the whole dataset
    episodes = sorted((root / "episodes").glob("ep_*[0-9]"))
    physics = torch.cat([TensorDict.load_memmap(ep)["next", "physics"].clone() for ep in episodes])  # [M, P]
    print(format_report(write_coverage(root, cfg.env.name, physics)))
    return root


def _run(cfg: DictConfig, env, explorer, writer: DatasetWriter, obs_keys: list[str], ckpt_dir: Path) -> None:
    """Step ``env`` with ``explorer`` until the dataset holds ``cfg.num_transitions`` transitions, writing
    finished episodes as they end and checkpointing the explorer every ``cfg.checkpoint_every``."""
    splitter = _EpisodeSplitter(cfg.num_envs)
    td = env.reset()
    bar = tqdm(
        total=cfg.num_transitions,
        initial=min(writer.meta.transitions, cfg.num_transitions),
        unit="tr",
        disable=not cfg.progress_bar,
        desc=f"collect {cfg.env.name}",
    )
    pending, last_ckpt = 0, writer.meta.transitions
    while writer.meta.transitions + pending < cfg.num_transitions:
        td["action"] = explorer.act(td["state"])
        step, td = env.step_and_maybe_reset(td)
        explorer.observe(step["state"], step["action"], step["next", "state"], step["next", "terminated"])
        done = step["next", "done"].reshape(-1).cpu()
        episodes = splitter.add(_episode_row(step, obs_keys).cpu(), done)
        pending += cfg.num_envs
        for ep in episodes:
            writer.add_episode(ep)
            pending -= ep.batch_size[0]
        bar.update(cfg.num_envs)
        if writer.meta.transitions - last_ckpt >= cfg.checkpoint_every:
            _save_explorer(ckpt_dir, writer.meta.transitions, explorer, cfg)
            last_ckpt = writer.meta.transitions
    for ep in splitter.flush():
        writer.add_episode(ep)
    _save_explorer(ckpt_dir, writer.meta.transitions, explorer, cfg)
    bar.close()
