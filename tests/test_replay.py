"""Replay: episode-safe slices, n-step targets, one copy of each frame, checkpoint round trip, dropping."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from tensordict import TensorDict
from torchrl.data import Bounded, Composite, Unbounded

from jepa_agents.agents.discrete_sac import DiscreteSACAgent
from jepa_agents.data.nstep import nstep_returns
from jepa_agents.data.replay import DROP_KEY, Replay
from jepa_agents.train.off_policy import make_replay

C, H, W = 3, 4, 4


class FakeStream:
    """``env.step`` outputs of N copies with scripted episode lengths (torchrl auto-reset semantics).

    Observation code of copy ``i`` at step ``t`` of its ``e``-th episode: ``state = 1000·label + t`` with
    ``label = 10·i + e + 1`` (also written into every pixel as ``t``); reward ``r_t = label + t / 100``.
    """

    def __init__(self, lengths: list[list[int]], truncate_every: int = 2):
        self.lengths = lengths
        self.n = len(lengths)
        self.episode = [0] * self.n
        self.t = [0] * self.n
        self.truncate_every = truncate_every

    def label(self, i: int) -> int:
        return 10 * i + self.episode[i] + 1

    def obs(self, i: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.full((C, H, W), t % 256, dtype=torch.uint8), torch.tensor([1000.0 * self.label(i) + t])

    def step(self, drop: list[bool] | None = None) -> TensorDict:
        pix, state, npix, nstate, rew, term, trunc = [], [], [], [], [], [], []
        for i in range(self.n):
            t = self.t[i]
            length = self.lengths[i][self.episode[i] % len(self.lengths[i])]
            p, s = self.obs(i, t)
            q, u = self.obs(i, t + 1)
            pix.append(p), state.append(s), npix.append(q), nstate.append(u)
            rew.append(self.label(i) + t / 100)
            end = t + 1 == length
            truncated = end and self.episode[i] % self.truncate_every == 1
            term.append(end and not truncated), trunc.append(truncated)
        td = TensorDict(
            {
                "pixels": torch.stack(pix),
                "state": torch.stack(state),
                "action": torch.randn(self.n, 2),
                "next": {
                    "pixels": torch.stack(npix),
                    "state": torch.stack(nstate),
                    "reward": torch.tensor(rew).view(-1, 1),
                    "terminated": torch.tensor(term).view(-1, 1),
                    "truncated": torch.tensor(trunc).view(-1, 1),
                    "done": (torch.tensor(term) | torch.tensor(trunc)).view(-1, 1),
                },
            },
            batch_size=[self.n],
        )
        if drop is not None:
            td.set(DROP_KEY, torch.tensor(drop).view(-1, 1))
        for i in range(self.n):
            if term[i] or trunc[i] or (drop is not None and drop[i]):
                self.episode[i] += 1
                self.t[i] = 0
            else:
                self.t[i] += 1
        return td


class StackedStream(FakeStream):
    """As :class:`FakeStream` with pixels ``[S·c, H, W]``: S frames of c channels, oldest first; the frame of
    step ``τ`` holds ``τ + S`` (so the older frames of an episode's first stack, ``τ < 0``, are distinct
    "no-op" frames, as after Atari no-op starts)."""

    S, c = 4, 2

    def obs(self, i: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        _, state = super().obs(i, t)
        values = torch.arange(t - self.S + 1, t + 1) + self.S  # [S]
        frames = values.view(self.S, 1, 1, 1).expand(self.S, self.c, H, W)
        return frames.reshape(self.S * self.c, H, W).to(torch.uint8), state


def _filled(
    capacity: int, steps: int, lengths=None, seed: int = 0, stream_cls=FakeStream
) -> tuple[Replay, FakeStream]:
    torch.manual_seed(seed)
    stream = stream_cls(lengths or [[5, 7], [9], [4, 6, 8]])
    stack = getattr(stream, "S", 1)
    replay = Replay(capacity, stream.n, ["pixels", "state"], torch.device("cpu"), frame_stack=stack)
    for _ in range(steps):
        replay.add(stream.step())
    return replay, stream


def test_slices_are_consecutive_steps_of_one_episode():
    replay, _ = _filled(capacity=60, steps=50)  # wraps around: the oldest rows are overwritten
    batch = replay.sample(256, seq_len=4)
    code = batch["state"][..., 0]  # [B, L]
    label, t = code.div(1000, rounding_mode="floor"), code % 1000
    assert batch.batch_size == torch.Size([256, 4])
    assert (label == label[:, :1]).all(), "a slice crosses an episode boundary"
    assert (t.diff(dim=1) == 1).all(), "rows of a slice are not consecutive steps"
    assert (batch["pixels"].float() == t[..., None, None, None] % 256).all()
    assert batch["pixels"].dtype == torch.uint8
    # a final row (final observation of its episode) can only be the last row of a slice
    assert not batch["is_last"][:, :-1].any() and batch["is_last"][:, -1].any()
    # the transition into a final row carries the episode's end flags
    ends = batch["done"][:, -2, 0]
    assert torch.equal(ends, batch["is_last"][:, -1, 0])


def test_nstep_returns_match_hand_computation():
    gamma, n = 0.9, 3
    reward = torch.tensor([[1.0, 2.0, 3.0, 4.0, 0.0]]).view(1, 5, 1)
    terminal = torch.tensor([[False, False, False, True, False]]).view(1, 5, 1)
    ret, discount, index = nstep_returns(reward, terminal, gamma, n)
    hand_ret = [1 + 0.9 * 2 + 0.81 * 3, 2 + 0.9 * 3 + 0.81 * 4, 3 + 0.9 * 4, 4.0, 0.0]
    hand_disc = [0.9**3, 0.0, 0.0, 0.0, 0.0]  # windows reaching the terminal step do not bootstrap
    hand_index = [3, 4, 4, 4, 4]
    torch.testing.assert_close(ret.view(-1), torch.tensor(hand_ret))
    torch.testing.assert_close(discount.view(-1), torch.tensor(hand_disc))
    assert index.view(-1).tolist() == hand_index
    # without a terminal the windows are cut at the slice end and still bootstrap
    ret, discount, index = nstep_returns(reward, torch.zeros_like(terminal), gamma, n)
    torch.testing.assert_close(discount.view(-1), torch.tensor([0.9**3, 0.9**3, 0.9**2, 0.9, 0.0]))
    assert index.view(-1).tolist() == [3, 4, 4, 4, 4]


def test_sampled_nstep_targets_match_rewards_of_the_episode():
    gamma, n = 0.5, 2
    replay, _ = _filled(capacity=400, steps=40)
    batch = replay.sample(128, seq_len=4)
    ret, discount, index = nstep_returns(batch["reward"], batch["terminated"], gamma, n)  # as SAC's target
    code = batch["state"][..., 0]
    label, t = code.div(1000, rounding_mode="floor"), code % 1000
    for b in range(128):
        for k in range(3):
            m = min(n, 3 - k)
            rewards = [label[b, k] + (t[b, k] + j) / 100 for j in range(m)]
            want = sum(gamma**j * r for j, r in enumerate(rewards))
            torch.testing.assert_close(ret[b, k, 0], want.float())
            terminated = bool(batch["terminated"][b, k + m - 1])
            want_discount = 0.0 if terminated else gamma**m
            assert discount[b, k, 0].item() == pytest.approx(want_discount)
            assert index[b, k].item() == k + m


def test_replay_returns_raw_rows_and_the_discrete_target_clips_and_cuts_at_a_lost_life():
    reward = torch.tensor([5.0, -3.0, 0.5]).view(1, 3, 1)
    replay = Replay(10, 1, ["state"], torch.device("cpu"))
    for r, life in zip(reward.view(-1), (False, True, False)):
        td = TensorDict(
            {
                "state": torch.zeros(1, 1),
                "action": torch.zeros(1, 2),
                "next": {
                    "state": torch.zeros(1, 1),
                    "reward": r.view(1, 1),
                    "life_loss": torch.tensor([[life]]),
                    **{k: torch.zeros(1, 1, dtype=torch.bool) for k in ("terminated", "truncated", "done")},
                },
            },
            [1],
        )
        replay.add(td)
    batch = replay.sample(1, 3)
    assert batch["reward"].view(-1).tolist() == [5.0, -3.0, 0.5]  # stored as given: no clipping here
    agent = SimpleNamespace(_terminal_keys=("terminated", "life_loss"))
    terminal = DiscreteSACAgent._terminal(agent, batch)  # a lost life cuts the bootstrap
    ret, discount, _ = nstep_returns(batch["reward"].clamp(-1.0, 1.0), terminal, 1.0, 3)
    assert ret.view(-1).tolist() == [0.0, -1.0, 0.0]
    assert discount.view(-1).tolist() == [0.0, 0.0, 0.0]


def test_pixels_are_stored_once():
    capacity = 64
    replay, _ = _filled(capacity=capacity, steps=10)
    pixel_bytes = replay._rb.storage._storage["pixels"].numel()
    assert pixel_bytes == capacity * C * H * W  # one uint8 frame per row, no next-observation copy
    assert replay.nbytes() < 2 * pixel_bytes  # everything else is small next to the pixels
    # 10 steps of 3 copies, plus one final-observation row per finished episode: copy 0 ends at step 5,
    # copy 1 at 9, copy 2 at 4 and 10
    assert len(replay) == 30 and len(replay._rb) == 34


def test_frame_stacks_are_stored_one_frame_per_step_and_rebuilt():
    s, c = StackedStream.S, StackedStream.c
    replay, _ = _filled(capacity=500, steps=40, stream_cls=StackedStream)
    assert replay._rb.storage._storage["pixels"].shape == (500, c, H, W)  # newest frame only
    batch = replay.sample(256, seq_len=3)
    assert batch["pixels"].shape == (256, 3, s * c, H, W)
    t = batch["state"][..., 0] % 1000  # [B, L]
    want = (t[..., None] + torch.arange(1, s + 1)).repeat_interleave(c, -1)  # [B, L, S·c]: τ + S
    assert torch.equal(batch["pixels"][..., 0, 0].long(), want.long())
    # prefix rows (older frames of first stacks) are neither transitions nor slice rows
    assert len(replay) == 3 * 40
    # after wrapping, the newest frame is always right; only stacks of the oldest rows repeat a frame
    replay, _ = _filled(capacity=40, steps=40, stream_cls=StackedStream)
    batch = replay.sample(256, seq_len=3)
    t = batch["state"][..., 0] % 1000
    assert torch.equal(batch["pixels"][..., -1, 0, 0].long(), (t + s).long())


def test_frame_stack_must_slide():
    stream = StackedStream([[6], [6], [6]])
    replay = Replay(100, 3, ["pixels", "state"], torch.device("cpu"), frame_stack=2)  # wrong: 4 frames
    with pytest.raises(ValueError, match="sliding stack"):
        replay.add(stream.step())


@pytest.mark.parametrize("stream_cls", [FakeStream, StackedStream])
def test_state_dict_round_trip_is_bit_exact(stream_cls):
    replay, stream = _filled(capacity=40, steps=30, stream_cls=stream_cls)
    buffer = io.BytesIO()
    torch.save(replay.state_dict(), buffer)
    buffer.seek(0)
    restored = Replay(40, stream.n, ["pixels", "state"], torch.device("cpu"), frame_stack=replay.frame_stack)
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    assert len(restored) == len(replay)
    stored = replay._rb.storage[: len(replay._rb)]
    transitions = ~stored["is_last"].squeeze(-1) & (stored["episode"] >= 0)  # prefix rows have ids < 0
    assert len(replay) == int(transitions.sum())  # counted across overwrites
    more = [stream.step() for _ in range(7)]
    for r in (replay, restored):
        for td in more:
            r.add(td)
    rng = torch.get_rng_state()
    a = replay.sample(64, 3)
    torch.set_rng_state(rng)
    b = restored.sample(64, 3)
    assert (a == b).all()
    assert (replay._rb.storage._storage == restored._rb.storage._storage).all()


def test_flagged_transitions_are_dropped():
    stream = FakeStream([[6], [6]])
    replay = Replay(100, 2, ["pixels", "state"], torch.device("cpu"))
    replay.add(stream.step())
    flagged = stream.step(drop=[False, True])
    dropped_code = flagged["state"][1, 0].item()
    replay.add(flagged)
    for _ in range(8):
        replay.add(stream.step())
    stored = replay._rb.storage[: len(replay._rb)]
    assert dropped_code not in stored["state"][:, 0].tolist()
    assert len(replay) == 2 * 10 - 1
    batch = replay.sample(64, 2)
    code = batch["state"][..., 0]
    assert (code.div(1000, rounding_mode="floor").diff(dim=1) == 0).all()
    assert (code.diff(dim=1) == 1).all()


def test_bad_inputs():
    replay = Replay(10, 2, ["state"], torch.device("cpu"))
    with pytest.raises(ValueError, match="batch \\[2\\]"):
        replay.add(FakeStream([[3], [3], [3]]).step())
    with pytest.raises(ValueError, match="seq_len"):
        replay.sample(4, 1)
    other = Replay(10, 3, ["state"], torch.device("cpu"))
    with pytest.raises(ValueError, match="parallel copies"):
        other.load_state_dict(replay.state_dict())


def test_make_replay_from_config(tmp_path):
    n = 3
    env = SimpleNamespace(
        batch_size=torch.Size([n]),
        observation_spec=Composite(
            pixels=Unbounded(shape=(n, C, H, W), dtype=torch.uint8),
            state=Unbounded(shape=(n, 1)),
            episode_return=Unbounded(shape=(n, 1)),
            shape=(n,),
        ),
        action_spec=Bounded(-1.0, 1.0, shape=(n, 2)),
    )
    cfg = OmegaConf.create(
        {
            "env": {"frame_stack": 1},
            "train": {"replay_capacity": 50, "replay_device": "cpu"},
            "run_dir": str(tmp_path),
        }
    )
    replay = make_replay(cfg, env, None, torch.device("cpu"))
    assert replay.obs_keys == ("pixels", "state") and replay.capacity == 50  # not the episode statistics
    cfg.train.replay_device = "memmap"
    replay = make_replay(cfg, env, None, torch.device("cpu"))
    stream = FakeStream([[5], [6], [7]])
    for _ in range(12):
        replay.add(stream.step())
    assert (tmp_path / "replay" / "pixels.memmap").is_file()
    assert replay.sample(8, 3)["pixels"].shape == (8, 3, C, H, W)
    cfg.env.frame_stack = 2
    with pytest.raises(ValueError, match="not a stack of env.frame_stack=2"):
        make_replay(cfg, env, None, torch.device("cpu"))
    from jepa_agents.config.errors import ConfigError
    from jepa_agents.train.config import compose

    with pytest.raises(ConfigError, match="replay_device='gpu'"):  # refused when the config is composed
        compose(["train.replay_device=gpu"])


def test_state_dict_holds_only_written_rows():
    small, _ = _filled(capacity=50, steps=10)
    large, _ = _filled(capacity=50_000, steps=10)

    def nbytes(state):
        buf = io.BytesIO()
        torch.save(state, buf)
        return buf.tell()

    # Same rows written: the checkpoint grows with the bookkeeping vectors only, not the pixel storage.
    pixel_row = small._rb.storage[0]["pixels"].numel()
    assert nbytes(large.state_dict()) - nbytes(small.state_dict()) < 50_000 * (9 + 4) + 10_000
    assert nbytes(large.state_dict()) < 50_000 * pixel_row
