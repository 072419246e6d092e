"""Data-parallel training (``torch.distributed``, gloo on CPU): one update on 2 ranks with B/2 each equals
one process with B; ``torchrun`` launches of ``train-zero-shot`` and ``train`` run, checkpoint and
resume; bad launches fail with one clear line and never hang."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tensordict import TensorDict

import envs
from jepa_agents.agents import make_agent, sac
from jepa_agents.config.load import compose as compose_root
from jepa_agents.data.replay import Replay
from jepa_agents.infra import distributed
from jepa_agents.infra.checkpoint import list_checkpoints, load_checkpoint
from jepa_agents.infra.rng import seed_everything
from jepa_agents.train.config import compose as compose_train
from jepa_agents.zero_shot.agents import make_zero_shot_agent
from jepa_agents.zero_shot.config import ZERO_SHOT
from jepa_agents.zero_shot.td_jepa import project_z

CPU = torch.device("cpu")
B = 16
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


# ------------------------------------------------------------------------------ deterministic updates
def _zero_shot_agent(preset: str):
    """A small TD-JEPA / FB agent whose update has no randomness left: no policy noise, and every task
    vector is the embedding of the sample's own next state (instead of a random mix)."""
    cfg = compose_root(
        ["dataset=unused", f"zs_agent={preset}", "agent.actor_std=0", "agent.batch_size=16",
         "agent.encoder_hidden=[32]", "agent.predictor_hidden=[32]", "agent.actor_hidden=[32]",
         "agent.z_dim=8", "agent.phi_dim=8", "agent.sigreg_slices=16"],
        ZERO_SHOT,
    )  # fmt: skip
    seed_everything(0)
    agent = make_zero_shot_agent(cfg.agent, (4,), 2, CPU)
    agent.mixed_z = lambda goals: project_z(goals)
    return agent


def _zero_shot_batch() -> TensorDict:
    g = torch.Generator().manual_seed(1)
    return TensorDict(
        {
            "observation": {"state": torch.randn(B, 4, generator=g)},
            "action": torch.rand(B, 2, generator=g) * 2 - 1,
            "next": {
                "observation": {"state": torch.randn(B, 4, generator=g)},
                "terminated": torch.rand(B, 1, generator=g) < 0.2,
            },
        },
        batch_size=[B],
    )


SAC_OVERRIDES = [
    "env=torch/cartpole_balance", "env.from_pixels=false", "env.num_envs=2", "agent.batch_size=16",
    "agent.actor_hidden=[32]", "agent.critic_hidden=[32]", "agent.feature_dim=16",
    "world_model.latent_dim=16", "world_model.predictor_hidden=[32]", "world_model.num_slices=16",
    "device=cpu", "seed=3",
]  # fmt: skip


def _noiseless_tanh_gaussian(mean, log_std):
    """The SAC policy sample with its noise set to zero (the same log-probability formula)."""
    return torch.tanh(mean), sac.tanh_gaussian_log_prob(mean, log_std, mean)


def _sac_agent():
    cfg = compose_train(SAC_OVERRIDES)
    env = envs.make(cfg.env.name, num_envs=2, seed=3, device=CPU, from_pixels=False)
    seed_everything(3)
    return make_agent(cfg, env, CPU), env


def _sac_batch(path: Path) -> TensorDict:
    """A replay batch ``[B, L]`` of random-action transitions, made once and read by every process."""
    if path.exists():
        return torch.load(path, weights_only=False)
    agent, env = _sac_agent()
    replay = Replay(400, 2, ["state"], CPU)
    td = env.reset()
    for _ in range(150):
        td["action"] = env.action_spec.rand()
        step, td = env.step_and_maybe_reset(td)
        replay.add(step)
    torch.manual_seed(5)
    batch = agent._sample(replay)
    torch.save(batch, path)
    return batch


class _SGD(torch.optim.SGD):
    """Plain SGD with the learners' ``step(ok)`` signature (every step of this test is finite)."""

    def step(self, ok=None):  # type: ignore[override]
        return super().step()


def _sgd(agent) -> None:
    """Plain SGD steps: parameters after the step then compare the gradients themselves (Adam's first step,
    ``lr·g/|g|``, turns a gradient that is zero up to rounding, as a bias before a batch norm has, into a
    full step of arbitrary sign)."""
    for name, opt in agent.optimizers.items():
        agent.optimizers[name] = _SGD([p for g in opt.param_groups for p in g["params"]], lr=0.1)


def _update(kind: str, batch_path: Path, part: slice) -> tuple[dict[str, torch.Tensor], float]:
    """Parameters after one update on ``batch[part]`` and its logged loss."""
    if kind == "sac":
        agent, _ = _sac_agent()
        _sgd(agent)
        batch = _sac_batch(batch_path)[part]
        with mock.patch.object(sac, "tanh_gaussian_sample", _noiseless_tanh_gaussian):
            metrics = agent.learn(batch)
        nets = agent.nets
    else:
        agent = _zero_shot_agent(kind)
        _sgd(agent)
        metrics = agent.update(_zero_shot_batch()[part])
        nets = torch.nn.ModuleDict({"model": agent.model, "target": agent.target})
    params = {k: v.detach().clone() for k, v in nets.state_dict().items() if torch.is_tensor(v)}
    return params, float(metrics["train/loss"])


def _rank_main(rank: int, kind: str, init_file: str, batch_path: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        half = B // 2
        params, loss = _update(kind, Path(batch_path), slice(rank * half, (rank + 1) * half))
        losses = [None, None]
        dist.all_gather_object(losses, loss)
        if rank == 0:
            torch.save({"params": params, "loss": sum(losses) / 2}, out)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("kind", ["td_jepa_sigreg", "td_jepa_ortho", "fb", "sac"])
def test_two_ranks_with_half_batches_equal_one_process_with_the_whole_batch(kind, tmp_path, one_thread):
    batch_path = tmp_path / "batch.pt"
    if kind == "sac":
        _sac_batch(batch_path)
    single_params, single_loss = _update(kind, batch_path, slice(0, B))
    out = tmp_path / "ranks.pt"
    mp.spawn(_rank_main, args=(kind, str(tmp_path / "init"), str(batch_path), str(out)), nprocs=2)
    ranks = torch.load(out, weights_only=False)
    assert ranks["loss"] == pytest.approx(single_loss, rel=1e-5, abs=1e-6)
    for name, value in single_params.items():
        torch.testing.assert_close(ranks["params"][name], value, rtol=1e-5, atol=1e-5, msg=name)
    # the update did move the networks (the comparison is not between two untouched copies)
    if kind == "sac":
        agent, _ = _sac_agent()
        before = agent.nets.state_dict()
    else:
        before = _zero_shot_agent(kind).model.state_dict()
        before = {f"model.{k}": v for k, v in before.items()}
    moved = sum(not torch.equal(before[k], single_params[k]) for k in single_params if k in before)
    assert moved > 0


# ------------------------------------------------------------------------------------ torchrun launches
def _torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*TORCHRUN, "-m", "jepa_agents.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def _maze_dataset(root: Path) -> Path:
    from jepa_agents.zero_shot.cli import collect_main

    ds = root / "ds"
    args = [f"dataset={ds}", "zs_explorer=random", "start=uniform", "num_transitions=2000", "num_envs=20",
            "progress_bar=false", "device=cpu", "num_threads=1"]  # fmt: skip
    assert collect_main(args) == 0
    return ds


def _cut_back(run: Path, copy: Path) -> Path:
    """``copy`` of ``run`` without its last checkpoint (main file and shards), as if killed before it."""
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run, copy)
    last = list_checkpoints(copy / "checkpoints")[-1]
    for p in (copy / "checkpoints").glob(f"{last.stem}*"):
        p.unlink()
    return copy


def _final_params(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])["agent"]["model"]


def test_torchrun_train_zero_shot_runs_checkpoints_and_resumes_exactly(tmp_path):
    ds = _maze_dataset(tmp_path)
    run = tmp_path / "run"
    common = [f"dataset={ds}", "zs_agent=td_jepa_sigreg", "train.num_updates=30", "train.checkpoint_every=15",
              "train.log_every=5", "train.sf_check_every=0", "agent.batch_size=16", "eval.episodes=2",
              "eval.max_episode_steps=5", "eval.inference_samples=200", "eval.tasks=[reach_bottom_left]",
              "device=cpu", "num_threads=1", "deterministic=true", "logging.progress_bar=false"]  # fmt: skip
    done = _torchrun("train-zero-shot", *common, f"run_dir={run}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run directory:") == 1  # rank 0 speaks for the run
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["ckpt_000000000015.pt", "ckpt_000000000015.rank1.pt",
                     "ckpt_000000000030.pt", "ckpt_000000000030.rank1.pt"]  # fmt: skip
    ckpt = load_checkpoint(run / "checkpoints" / names[0])
    assert ckpt["world_size"] == 2
    # a copy cut back to its first checkpoint resumes to the same final parameters
    cut = _cut_back(run, tmp_path / "cut")
    resumed = _torchrun("train-zero-shot", f"resume={cut}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final, again = _final_params(run), _final_params(cut)
    assert all(torch.equal(final[k], again[k]) for k in final)
    # another number of ranks, and a launch that disables distribution: one clear line each
    from jepa_agents.zero_shot.cli import train_main

    cut = _cut_back(run, tmp_path / "cut")
    with pytest.raises(distributed.DistributedError, match="written by 2 rank.*this launch has 1"):
        train_main([f"resume={cut}"])
    refused = subprocess.run(
        [*TORCHRUN, "-m", "jepa_agents.cli", "train-zero-shot", f"resume={cut}", "distributed.enabled=false"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode != 0 and "distributed.enabled=false" in refused.stderr


def test_torchrun_train_online_runs_and_resumes(tmp_path):
    run = tmp_path / "run"
    overrides = ["env=torch/cartpole_balance", "env.from_pixels=false", "env.num_envs=2",
                 "train.total_env_steps=1600", "train.seed_env_steps=400", "train.checkpoint_every=800",
                 "eval.every=800", "eval.episodes=2", "eval.video=false", "logging.every=400",
                 "logging.progress_bar=false", "agent.batch_size=16", "agent.actor_hidden=[32]",
                 "agent.critic_hidden=[32]", "agent.feature_dim=16", "world_model.latent_dim=16",
                 "world_model.predictor_hidden=[32]", "world_model.num_slices=16", "device=cpu",
                 "num_threads=1", "deterministic=true", "seed=3"]  # fmt: skip
    done = _torchrun("train", *overrides, f"run_dir={run}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("finished 1600 env steps") == 1
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "ckpt_000000000800.rank1.pt" in names and "ckpt_000000001600.pt" in names
    shard = load_checkpoint(run / "checkpoints" / "ckpt_000000001600.rank1.pt")
    assert set(shard) >= {"replay", "rng", "env", "obs"}  # rank 1's own data
    cut = _cut_back(run, tmp_path / "cut")
    resumed = _torchrun("train", f"resume={cut}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_checkpoint(run / "checkpoints" / "ckpt_000000001600.pt")["agent"]["nets"]
    b = load_checkpoint(cut / "checkpoints" / "ckpt_000000001600.pt")["agent"]["nets"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a if torch.is_tensor(a[k]))


def test_a_rank_that_dies_stops_the_launch_without_a_hang(tmp_path):
    ds = _maze_dataset(tmp_path)
    script = tmp_path / "die.py"
    script.write_text(
        "import os, sys\n"
        "from jepa_agents.zero_shot import train_offline\n"
        "original = train_offline.OfflineTrainer._after_iteration\n"
        "def after(self, before, bar):\n"
        "    if self.ctx.rank == 1 and self.updates == 5:\n"
        "        os._exit(7)\n"
        "    original(self, before, bar)\n"
        "train_offline.OfflineTrainer._after_iteration = after\n"
        "from jepa_agents.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = [f"dataset={ds}", "train.num_updates=50", "agent.batch_size=16", f"run_dir={tmp_path / 'run'}",
            "eval.final=false", "device=cpu", "num_threads=1", "logging.progress_bar=false",
            "distributed.timeout_s=30"]  # fmt: skip
    start = time.perf_counter()
    out = subprocess.run([*TORCHRUN, str(script), "train-zero-shot", *args], capture_output=True, text=True,
                         timeout=180)  # fmt: skip
    assert out.returncode != 0
    assert time.perf_counter() - start < 120
    assert "exitcode  : 7" in out.stderr and "rank      : 1" in out.stderr, out.stderr[-2000:]
