"""Atomic checkpoints: damage is reported clearly and never destroys the previous checkpoint."""

import pytest
import torch

from jepa_agents.infra import checkpoint as ck


def _state(x):
    return {"agent": {"w": torch.full((3,), float(x))}}


def test_roundtrip_and_keep_last(tmp_path):
    for step in (10, 20, 30):
        ck.save_checkpoint(tmp_path, step, _state(step), "h", keep=2)
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["ckpt_000000000020.pt", "ckpt_000000000030.pt"]
    payload = ck.load_checkpoint(ck.latest_checkpoint(tmp_path), "h")
    assert payload["step"] == 30 and torch.equal(payload["agent"]["w"], torch.full((3,), 30.0))


def test_config_hash_mismatch(tmp_path):
    path = ck.save_checkpoint(tmp_path, 1, _state(1), "aaa", keep=1)
    with pytest.raises(ck.CheckpointError, match="another config"):
        ck.load_checkpoint(path, "bbb")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_is_a_clear_error_and_untouched(tmp_path, damage):
    path = ck.save_checkpoint(tmp_path, 5, _state(5), "h", keep=1)
    data = path.read_bytes()
    damaged = {"truncate": data[: len(data) // 2], "garbage": b"not a checkpoint" * 10, "empty": b""}[damage]
    path.write_bytes(damaged)
    with pytest.raises(ck.CheckpointError, match=str(path.name)):
        ck.load_checkpoint(path, "h")
    assert path.read_bytes() == damaged


def test_crash_while_writing_keeps_previous_checkpoint(tmp_path, monkeypatch):
    ck.save_checkpoint(tmp_path, 1, _state(1), "h", keep=3)

    def crashing_save(obj, f):
        f.write(b"partial bytes")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(ck.torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(tmp_path, 2, _state(2), "h", keep=3)
    monkeypatch.undo()
    latest = ck.latest_checkpoint(tmp_path)
    assert latest.name == "ckpt_000000000001.pt"
    assert ck.load_checkpoint(latest, "h")["step"] == 1
