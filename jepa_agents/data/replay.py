"""Sequence replay for N parallel environments: every observation stored once, slices never cross episodes.

Storage layout (a torchrl ``ReplayBuffer`` over a flat ``LazyTensorStorage``, or ``LazyMemmapStorage``):
one *row* per agent step and copy, holding the observation ``o_t`` the step started from, the action
``a_t`` and what the step returned (``reward`` ``r_t``, ``terminated``, ``truncated``, ``done``, extras
such as ``life_loss``), plus the bookkeeping ``episode`` (a run-unique id), ``step`` (``t`` within the
episode) and ``is_last``. The next observation ``o_{t+1}`` is *not* stored in row ``t``: it is the
observation of row ``t + 1`` of the same episode. Only when an episode ends is one extra row written,
holding the final observation with ``is_last = True`` (zero action and reward), so truncated episodes
can still bootstrap from their final state.

Frame stacks (``frame_stack = S > 1``: pixels ``[S·c, H, W]``, oldest frame first, each step sliding the
window by one frame) are stored as their newest frame ``[c, H, W]`` only, so pixels cost one uint8 frame
per agent step. Each row keeps a pointer to the row holding the previous frame of its copy; an episode
starts with ``S - 1`` *prefix* rows holding the older frames of its first stack (whatever the env put
there: repeated first frames, no-op frames), and sampling rebuilds every stack by following ``S - 1``
pointers. Only the oldest rows of the buffer, whose predecessors were overwritten, get their oldest
available frame repeated instead. ``add`` checks that the env's stacks do slide.

Rows of the N copies are interleaved in the storage; a ``SliceSampler`` in ``fragmented`` mode rebuilds
episodes from ``(episode, step)`` and returns ``[B, L]`` slices of consecutive rows of one episode
(``strict_length``: every slice has exactly ``L`` rows, so it never crosses an episode end; a final row can
only be the last row of a slice). Sampling draws an episode uniformly among those with ``>= L`` stored
rows, then a start uniformly inside it (torchrl's rule; short episodes are drawn as often as long ones).
All randomness comes from torch's global RNG, so restoring the RNG and :meth:`Replay.load_state_dict`
reproduces the samples of an uninterrupted run.

A transition may be flagged for dropping with the bool key :data:`DROP_KEY` ``[N, 1]`` in the step output
(environments with next-step auto-reset emit one step per episode whose observation is the final frame
and whose next observation is the reset frame). Its row is not written and that copy starts a new episode.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor
from torchrl.data import LazyMemmapStorage, LazyTensorStorage, ReplayBuffer, SliceSampler

OBS_KEYS: tuple[str, ...] = ("pixels", "state", "physics")
"""Observation keys stored (those the environment has)."""
EXTRA_KEYS: tuple[str, ...] = ("life_loss",)
"""Per-step flags stored from ``next`` when the environment emits them."""
DROP_KEY: tuple[str, str] = ("next", "drop")
"""Bool ``[N, 1]`` key of ``env.step`` output marking transitions that must not be stored."""


class Replay:
    """Sequence replay of ``num_envs`` parallel copies; see the module docstring for the layout.

    Args:
        capacity: rows kept (one per agent step and copy, plus one per finished episode).
        num_envs: copies ``N`` whose ``env.step`` outputs :meth:`add` receives.
        obs_keys: observation keys to store (``pixels`` uint8 ``[C, H, W]``, ``state`` ...).
        device: where sampled batches are returned (the training device).
        storage_device: where rows live (``device`` or CPU); ignored with ``memmap_dir``.
        memmap_dir: store rows in memory-mapped files under this directory (``LazyMemmapStorage``).
        frame_stack: frames ``S`` stacked along the channels of ``pixels``; stored once each when ``> 1``.
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_keys: Sequence[str],
        device: torch.device,
        storage_device: torch.device | None = None,
        memmap_dir: str | Path | None = None,
        frame_stack: int = 1,
    ):
        if capacity < 2:
            raise ValueError(f"replay capacity must be >= 2, got {capacity}")
        if not obs_keys:
            raise ValueError("the replay needs at least one observation key")
        self.capacity = int(capacity)
        self.num_envs = int(num_envs)
        self.obs_keys = tuple(obs_keys)
        self.device = torch.device(device)
        if frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
        self.frame_stack = frame_stack if "pixels" in self.obs_keys else 1
        if memmap_dir is not None:
            storage = LazyMemmapStorage(self.capacity, scratch_dir=str(memmap_dir), existsok=True)
        else:
            storage = LazyTensorStorage(self.capacity, device=storage_device or self.device)
        self._sampler = SliceSampler(
            slice_len=2,
            traj_key="episode",
            step_key="step",
            fragmented=True,
            strict_length=True,
            truncated_key=None,
            init_key=None,
        )
        self._rb = ReplayBuffer(storage=storage, sampler=self._sampler, batch_size=None)
        # Per-copy bookkeeping: the episode id and step index of the next row each copy writes.
        self._episode = torch.arange(self.num_envs, dtype=torch.long)  # [N]
        self._step = torch.zeros(self.num_envs, dtype=torch.long)  # [N]
        self._next_episode = self.num_envs
        # Kind of every storage slot (0 empty, 1 transition, 2 final observation, 3 prefix frame).
        self._kind = torch.zeros(self.capacity, dtype=torch.int8)  # [capacity]
        self._transitions = 0
        # Frame stacks: rows are numbered in write order (row g lives in slot g % capacity); prev[slot] is
        # the number of the row holding the previous frame of the same copy, last_row[k] copy k's newest.
        self._written = 0
        self._prev = torch.full((self.capacity,), -1, dtype=torch.long, device=self.storage_device)
        self._last_row = torch.full((self.num_envs,), -1, dtype=torch.long)  # [N]

    # ------------------------------------------------------------------------------------- writing
    def add(self, td: TensorDictBase) -> None:
        """Store one agent step of the N copies: the output of ``env.step(td)``, batch ``[N]``.

        Row ``t`` gets ``td[obs_keys]``, ``action`` and ``next``'s ``reward``, flags and extras; copies
        whose step is ``done`` also get a final row with ``next``'s observation. Flagged copies
        (:data:`DROP_KEY`) are skipped and start a new episode.
        """
        if td.batch_size != torch.Size([self.num_envs]):
            raise ValueError(f"replay.add expects a batch [{self.num_envs}], got {list(td.batch_size)}")
        nxt = td.get("next")
        device = td.get("action").device
        keep = torch.ones(self.num_envs, dtype=torch.bool, device=device)  # [N]
        drop = td.get(DROP_KEY, None)
        if drop is not None:
            keep = ~drop.reshape(self.num_envs)
        done = nxt.get("done").reshape(self.num_envs) & keep  # [N]

        blank = dict(
            action=torch.zeros_like(td.get("action")),
            reward=torch.zeros_like(nxt.get("reward")),
            flags={k: torch.zeros_like(nxt.get(k)) for k in ("terminated", "truncated")},
            extras={k: torch.zeros_like(nxt.get(k)) for k in EXTRA_KEYS if k in nxt.keys()},
        )
        rows = self._rows(
            obs=td,
            action=td.get("action"),
            reward=nxt.get("reward"),
            flags={k: nxt.get(k) for k in ("terminated", "truncated")},
            extras={k: nxt.get(k) for k in EXTRA_KEYS if k in nxt.keys()},
            is_last=False,
        )[keep]
        finals = self._rows(obs=nxt, is_last=True, **blank)[done]
        # bookkeeping [N]: kept rows advance one step, a final row one more, then a new episode starts
        finals.set("step", finals.get("step") + 1)
        keep_cpu, done_cpu = keep.cpu(), done.cpu()
        blocks = [rows, finals]
        if self.frame_stack > 1:
            self._check_sliding(td.get("pixels")[keep], nxt.get("pixels")[keep])
            starts = keep_cpu & (self._step == 0)  # [N] copies whose kept row starts an episode
            prefix = self._prefix_rows(td, starts.to(keep.device), blank)
            blocks = [prefix, rows, finals]
            prev = self._frame_pointers(starts, keep_cpu, done_cpu)
        data = torch.cat(blocks).to(self.storage_device)
        if data.shape[0]:
            stacked = self.frame_stack > 1
            self._write(data, prefix.shape[0] if stacked else 0, prev if stacked else None)
        self._advance_episodes(keep_cpu, done_cpu)

    def _write(self, data: TensorDict, prefix_rows: int, prev: Tensor | None) -> None:
        """Extend the storage with ``data`` (its first ``prefix_rows`` rows are frame-stack prefixes) and
        update the row kinds, the transition count and, with frame stacks, the frame pointers ``prev``."""
        index = self._rb.extend(data).cpu()
        kind = 1 + data.get("is_last").reshape(-1).cpu().to(torch.int8)  # [n]
        if prev is not None:
            expected = torch.arange(self._written, self._written + len(index)) % self.capacity
            if not torch.equal(index, expected):
                raise RuntimeError("replay rows were not written round-robin; frame pointers would be wrong")
            kind[:prefix_rows] = 3
            self._prev[index.to(self._prev.device)] = prev.to(self._prev.device)
        self._written += len(index)
        self._transitions += int((kind == 1).sum()) - int((self._kind[index] == 1).sum())
        self._kind[index] = kind

    def _advance_episodes(self, keep: Tensor, done: Tensor) -> None:
        """Bookkeeping ``[N]`` (CPU): kept copies advance one step; done or dropped ones start a new
        episode with a fresh id."""
        self._step += keep.long()
        restart = done | ~keep
        count = int(restart.sum())
        if count:
            self._episode[restart] = torch.arange(self._next_episode, self._next_episode + count)
            self._step[restart] = 0
            self._next_episode += count

    def _frame_pointers(self, starts: Tensor, keep: Tensor, done: Tensor) -> Tensor:
        """Row numbers of the previous frames of the rows written now (``-1``: none), in write order.

        Write order: ``S - 1`` prefix rows per starting copy (oldest first), one row per kept copy, one
        final row per finished copy. Updates ``last_row``. All tensors ``[N]`` bool on the CPU.
        """
        s, base = self.frame_stack, self._written
        new, kept, ended = (
            starts.nonzero().squeeze(-1),
            keep.nonzero().squeeze(-1),
            done.nonzero().squeeze(-1),
        )
        prefix_ids = base + torch.arange(len(new) * (s - 1)).view(len(new), s - 1)  # [n_new, S-1]
        prefix_prev = torch.cat((torch.full((len(new), 1), -1), prefix_ids[:, :-1]), 1)
        self._last_row[new] = prefix_ids[:, -1]
        row_ids = base + prefix_ids.numel() + torch.arange(len(kept))  # [n_kept]
        row_prev = self._last_row[kept]
        self._last_row[kept] = row_ids
        final_prev = self._last_row[ended]
        self._last_row[ended] = base + prefix_ids.numel() + len(kept) + torch.arange(len(ended))
        return torch.cat((prefix_prev.reshape(-1), row_prev, final_prev))

    def _prefix_rows(self, td: TensorDictBase, starts: Tensor, blank: dict) -> TensorDict:
        """``S - 1`` rows per starting copy holding the older frames of its first stack, oldest first.

        Each row is its own one-row trajectory (a unique negative ``episode`` id), so slices never
        contain it; other observation keys repeat the first observation.
        """
        s, c = self.frame_stack, td.get("pixels").shape[1] // self.frame_stack
        base = self._rows(obs=td, is_last=False, **blank)[starts]  # [n_new]
        frames = td.get("pixels")[starts]  # [n_new, S·c, H, W]
        prefix = base.unsqueeze(1).expand(len(base), s - 1).clone()  # [n_new, S-1]
        prefix.set("pixels", frames[:, : (s - 1) * c].unflatten(1, (s - 1, c)))  # [n_new, S-1, c, H, W]
        prefix = prefix.flatten(0, 1)
        ids = self._written + torch.arange(prefix.shape[0], device=frames.device)
        prefix.set("episode", -1 - ids)
        return prefix

    def _check_sliding(self, pixels: Tensor, next_pixels: Tensor) -> None:
        """The env's stacks must slide by one frame per step: ``next[:-c] == obs[c:]`` (channels)."""
        c = pixels.shape[1] // self.frame_stack
        if not torch.equal(pixels[:, c:], next_pixels[:, :-c]):
            raise ValueError(
                f"pixels of {pixels.shape[1]} channels are not a sliding stack of {self.frame_stack} frames "
                "(the next observation's older frames differ from this one's newer frames); set "
                "env.frame_stack to the env's actual stack size, or 1 to store whole observations"
            )

    def _rows(
        self,
        obs: TensorDictBase,
        action: Tensor,
        reward: Tensor,
        flags: dict[str, Tensor],
        extras: dict[str, Tensor],
        is_last: bool,
    ) -> TensorDict:
        """Rows ``[N]`` on the action's device: observations, action, reward, flags, extras, bookkeeping."""
        n, device = self.num_envs, action.device
        fields: dict[str, Tensor] = {key: obs.get(key) for key in self.obs_keys}
        if self.frame_stack > 1:
            pixels = fields["pixels"]
            fields["pixels"] = pixels[:, pixels.shape[1] - pixels.shape[1] // self.frame_stack :]  # newest
        fields["action"] = action
        fields["reward"] = reward.reshape(n, 1).float()
        terminated, truncated = flags["terminated"].reshape(n, 1), flags["truncated"].reshape(n, 1)
        fields.update(terminated=terminated, truncated=truncated, done=terminated | truncated)
        fields.update({key: value.reshape(n, 1) for key, value in extras.items()})
        fields["is_last"] = torch.full((n, 1), is_last, dtype=torch.bool)
        fields["episode"] = self._episode.clone()
        fields["step"] = self._step.clone()
        return TensorDict({k: v.detach().to(device) for k, v in fields.items()}, batch_size=[n])

    # ------------------------------------------------------------------------------------ sampling
    def sample(self, batch_size: int, seq_len: int) -> TensorDict:
        """``batch_size`` slices of ``seq_len`` consecutive rows of one episode, on the training device.

        Returns a TensorDict ``[B, L]`` (``L = seq_len``) with the stored rows (observations as stored:
        pixels uint8 ``[B, L, C, H, W]``; ``action`` ``[B, L, A]`` or ``[B, L]``; ``reward``, flags
        ``[B, L, 1]``; ``is_last``, ``episode``, ``step``). Rows ``0 .. L-2`` are transitions
        (``o_k, a_k, r_k -> o_{k+1}``); row ``L - 1`` only contributes its observation. Returns and
        targets are the learners' (e.g. :meth:`jepa_agents.agents.sac.SACAgent.td_target`).
        """
        if seq_len < 2:
            raise ValueError(f"seq_len must be >= 2 (one transition), got {seq_len}")
        self._sampler.slice_len = seq_len
        data, info = self._rb.sample(batch_size * seq_len, return_info=True)
        if self.frame_stack > 1:
            data.set("pixels", self._stacks(info["index"][0]))
        data = data.reshape(batch_size, seq_len)
        if self.device.type == "cuda" and data.device.type == "cpu":  # page-locked, asynchronous copy
            data = data.pin_memory().to(self.device, non_blocking=True)
        else:
            data = data.to(self.device)
        return data

    def _stacks(self, slots: Tensor) -> Tensor:
        """Frame stacks ``[n, S·c, H, W]`` (oldest first) of the rows in storage ``slots`` ``[n]``."""
        frames = self._rb.storage._storage.get("pixels")  # [capacity, c, H, W]
        oldest_live = max(0, self._written - self.capacity)
        cur = slots.to(self._prev.device)
        stack = [frames[cur]]
        for _ in range(self.frame_stack - 1):
            prev = self._prev[cur]
            cur = torch.where(prev >= oldest_live, prev % self.capacity, cur)  # overwritten: repeat oldest
            stack.insert(0, frames[cur])
        return torch.cat(stack, 1)

    # ------------------------------------------------------------------------------- bookkeeping
    @property
    def storage_device(self) -> torch.device:
        """Where the rows live (the training device, or the CPU; memory-mapped files count as CPU)."""
        return torch.device(self._rb.storage.device)

    def __len__(self) -> int:
        """Transitions stored: rows that are not final-observation rows."""
        return self._transitions

    def nbytes(self) -> int:
        """Bytes held by the storage (allocated for the whole capacity at the first :meth:`add`)."""
        if not len(self._rb):
            return 0
        return sum(t.numel() * t.element_size() for t in self._rb.storage._storage.values(True, True))

    def state_dict(self) -> dict[str, Any]:
        """Everything to continue bit-exactly: stored rows, write cursor and per-copy episode bookkeeping.

        Only the rows written so far are included (a checkpoint of a young run stays small, whatever the
        capacity: the rows are copied, since saving a view would save its whole storage).
        """
        buffer = self._rb.state_dict()
        rows = buffer["_storage"]["_len"]
        buffer["_storage"]["_storage"] = _map_leaves(
            buffer["_storage"]["_storage"], lambda t: t[:rows].clone(), rows
        )
        return {
            "capacity": self.capacity,
            "buffer": buffer,
            "episode": self._episode.clone(),
            "step": self._step.clone(),
            "next_episode": self._next_episode,
            "kind": self._kind.clone(),
            "transitions": self._transitions,
            "written": self._written,
            "prev": self._prev.clone(),
            "last_row": self._last_row.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["episode"].shape != self._episode.shape:
            copies = state["episode"].shape[0]
            raise ValueError(f"replay state is for {copies} parallel copies, this replay has {self.num_envs}")
        if state["capacity"] != self.capacity:
            raise ValueError(f"replay state has capacity {state['capacity']}, this replay {self.capacity}")
        buffer = dict(state["buffer"])
        storage = dict(buffer["_storage"])

        def pad(t: Tensor) -> Tensor:  # back to the full capacity the storage expects
            full = torch.zeros((self.capacity, *t.shape[1:]), dtype=t.dtype, device=t.device)
            full[: t.shape[0]] = t
            return full

        storage["_storage"] = _map_leaves(storage["_storage"], pad, self.capacity)
        buffer["_storage"] = storage
        self._rb.load_state_dict(buffer)
        self._episode.copy_(state["episode"])
        self._step.copy_(state["step"])
        self._next_episode = int(state["next_episode"])
        self._kind.copy_(state["kind"])
        self._transitions = int(state["transitions"])
        self._written = int(state["written"])
        self._prev.copy_(state["prev"])
        self._last_row.copy_(state["last_row"])


def _map_leaves(tree: Any, fn, rows: int) -> Any:
    """Apply ``fn`` (which changes the leading dim to ``rows``) to every tensor of a storage's state."""
    if isinstance(tree, Tensor):
        return fn(tree)
    if isinstance(tree, TensorDictBase):
        return tree.apply(fn, batch_size=[rows])
    out = copy.copy(tree)  # keeps the mapping's attributes (tensordict stores its batch size there)
    for key, value in tree.items():
        out[key] = _map_leaves(value, fn, rows)
    return out
