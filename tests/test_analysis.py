"""Tests of jepa_agents.analysis: statistics with known answers, run loading, alignment, figures, CLI."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from omegaconf import OmegaConf

from jepa_agents.analysis import stats
from jepa_agents.analysis.curves import align, compute_curves, plot_curves, plot_run_curve
from jepa_agents.analysis.errors import AnalysisError, AnalysisWarning
from jepa_agents.analysis.plot_cli import main
from jepa_agents.analysis.runs import check_group_keys, group_label, load_run, load_runs
from jepa_agents.analysis.scores import final_scores
from jepa_agents.analysis.tables import atari_table, dmc_table, final_score_table, zero_shot_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(
    root: Path,
    name: str,
    env: str = "dmc/cheetah_run",
    agent: str = "jepa",
    seed: int = 0,
    scalars: dict[str, list[tuple[float, float]]] | None = None,
    tail: str = "",
) -> Path:
    """A run directory with config.yaml and scalars.csv; ``tail`` is appended raw (e.g. a half line)."""
    run = root / name
    run.mkdir(parents=True)
    cfg = {
        "env": {"name": env},
        "agent": {"name": agent},
        "seed": seed,
        "world_model": {"regularizer": "sigreg"},
    }
    OmegaConf.save(OmegaConf.create(cfg), run / "config.yaml")
    lines = ["step,tag,value,wall_time"]
    for tag, points in (scalars or {}).items():
        lines += [f"{s},{tag},{v},{100.0 + s}" for s, v in points]
    (run / "scalars.csv").write_text("\n".join(lines) + "\n" + tail)
    return run


def linear(end: int, slope: float = 1.0, every: int = 10) -> list[tuple[float, float]]:
    return [(s, slope * s) for s in range(0, end + 1, every)]


# ----------------------------------------------------------------------------------------- statistics
def test_iqm_known_values():
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # drop 1,2 and 7,8 -> mean(3,4,5,6)
    assert stats.iqm(np.array([1, 2, 3, 4, 1000.0])) == pytest.approx(3.0)  # drop 1 each end
    assert stats.iqm({"a": np.array([1, 2, 3, 4]), "b": np.array([5, 6, 7, 8])}) == pytest.approx(4.5)
    assert stats.iqm(np.array([2.0, 4.0])) == pytest.approx(3.0)  # fewer than 4 runs: plain mean


def test_mean_median_over_tasks():
    scores = {"a": np.array([1.0, 3.0]), "b": np.array([10.0]), "c": np.array([4.0, 4.0, 4.0])}
    assert stats.mean(scores) == pytest.approx((2 + 10 + 4) / 3)  # tasks weigh equally
    assert stats.median(scores) == pytest.approx(4.0)


def test_optimality_gap():
    assert stats.optimality_gap(np.array([0.5, 1.5, 0.8])) == pytest.approx(1 - (0.5 + 1.0 + 0.8) / 3)
    assert stats.optimality_gap(np.array([2.0, 3.0])) == 0.0
    assert stats.optimality_gap(np.array([50.0]), gamma=100.0) == pytest.approx(50.0)


def test_bootstrap_ci_coverage_on_normal():
    rng = np.random.default_rng(123)
    trials, hits = 300, 0
    for _ in range(trials):
        est = stats.bootstrap_ci(rng.normal(1.0, 2.0, size=30), stats.batch_mean, reps=1000, rng=rng)
        hits += est.low <= 1.0 <= est.high
    assert 0.90 <= hits / trials <= 0.98  # nominal 95%; percentile intervals under-cover slightly


def test_bootstrap_is_stratified_by_task():
    # Within-task runs are identical: a stratified bootstrap can only resample each task to itself.
    est = stats.bootstrap_ci({"a": np.ones(4), "b": np.full(4, 5.0)}, stats.batch_mean, reps=500)
    assert (est.value, est.low, est.high) == (3.0, 3.0, 3.0)


def test_performance_profile_known_fractions():
    scores = {"a": np.array([0.0, 1.0, 2.0, 3.0]), "b": np.array([10.0, 10.0])}
    frac, low, high = stats.performance_profile(scores, np.array([-1.0, 1.5, 5.0, 20.0]), reps=200)
    np.testing.assert_allclose(frac, [1.0, (0.5 + 1.0) / 2, 0.5, 0.0])
    assert np.all(low <= frac + 1e-12) and np.all(frac <= high + 1e-12)


# ----------------------------------------------------------------------------------------- loading
def test_load_group_and_dotted_keys(tmp_path):
    make_run(tmp_path, "a0", agent="jepa", scalars={"eval/return": linear(50)})
    make_run(tmp_path, "b0", agent="dreamer", env="dmc/walker_walk", scalars={"eval/return": linear(50)})
    runs = load_runs([str(tmp_path / "*")])
    assert [r.name for r in runs] == ["a0", "b0"]
    assert runs[1].get("world_model.regularizer") == "sigreg" and runs[1].env() == "dmc/walker_walk"
    assert group_label(runs[0], ["agent.name", "seed"]) == "jepa / 0"
    assert load_runs([tmp_path])[0].name == "a0"  # a folder of runs stands for its runs
    assert len(load_runs([str(tmp_path / "**")])) == 2  # recursive glob, non-run matches ignored
    with pytest.raises(AnalysisError, match="no run has config key 'agent.nam'.*agent, env"):
        check_group_keys(runs, ["agent.nam"])


def test_still_running_run_with_half_written_line(tmp_path):
    path = make_run(tmp_path, "r", scalars={"eval/return": linear(30)}, tail="40,eval/ret")
    run = load_run(path)
    np.testing.assert_array_equal(run.scalars["eval/return"].steps, [0, 10, 20, 30])
    (path / "scalars.csv").write_text((path / "scalars.csv").read_text() + "urn,1.0,x\n50,eval/return,5,1\n")
    with pytest.warns(AnalysisWarning, match="dropped 1 malformed"):
        run = load_run(path)
    assert run.scalars["eval/return"].steps[-1] == 50
    (path / "scalars.csv").write_text((path / "scalars.csv").read_text() + "50,eval/return,7,2\n")
    with pytest.warns(AnalysisWarning, match="malformed"):
        assert load_run(path).scalars["eval/return"].values[-1] == 7  # a resumed run's re-logged step wins


def test_tensorboard_fallback(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    run = make_run(tmp_path, "tb")
    (run / "scalars.csv").unlink()
    with SummaryWriter(str(run)) as writer:
        for step in (0, 100, 200):
            writer.add_scalar("eval/return", step / 10, step)
    loaded = load_run(run).scalars["eval/return"]
    np.testing.assert_allclose(loaded.steps, [0, 100, 200])
    np.testing.assert_allclose(loaded.values, [0, 10, 20])


def test_not_a_run_directory_is_skipped_then_fails_when_empty(tmp_path):
    good = make_run(tmp_path, "good", scalars={"eval/return": linear(20)})
    (tmp_path / "empty").mkdir()
    with pytest.warns(AnalysisWarning, match="empty is not a run directory"):
        assert len(load_runs([good, tmp_path / "empty"])) == 1
    with pytest.warns(AnalysisWarning), pytest.raises(AnalysisError, match="no run directories found"):
        load_runs([tmp_path / "empty", tmp_path / "missing"])


# ----------------------------------------------------------------------------------------- curves
def test_align_runs_of_different_lengths():
    short = (np.array([0.0, 10, 20]), np.array([0.0, 1, 2]))
    long_ = (np.array([5.0, 15, 25, 35]), np.array([0.0, 10, 20, 30]))
    grid, values = align([short, long_])
    np.testing.assert_allclose(grid, [5, 10, 15, 20])  # only where both runs exist
    np.testing.assert_allclose(values, [[0.5, 1, 1.5, 2], [0, 5, 10, 15]])


def test_curves_groups_lengths_single_seed_and_nan(tmp_path):
    for seed, end in enumerate([100, 60, 100]):
        make_run(tmp_path, f"j{seed}", agent="jepa", seed=seed, scalars={"eval/return": linear(end)})
    nan_points = linear(100, slope=2.0) + [(110, float("nan"))]
    make_run(tmp_path, "d0", agent="dreamer", scalars={"eval/return": nan_points})
    runs = load_runs([tmp_path])
    with pytest.warns(AnalysisWarning) as record:
        curves = {c.group: c for c in compute_curves(runs, group_by=["agent.name"], agg="mean", reps=200)}
    messages = " ".join(str(w.message) for w in record)
    assert "dropped 1 NaN" in messages and "stops at 60" in messages
    assert curves["jepa"].num_runs == 3 and curves["jepa"].x[-1] == 60
    np.testing.assert_allclose(curves["jepa"].center, curves["jepa"].x)  # all seeds are y = x
    assert curves["dreamer"].low is None and curves["dreamer"].x[-1] == 100


def test_figures_are_valid_images(tmp_path):
    for env in ("dmc/a", "dmc/b"):
        for seed in range(3):
            slope = 1.0 + seed
            make_run(
                tmp_path / "runs",
                f"{env[-1]}{seed}",
                env=env,
                seed=seed,
                scalars={"eval/return": linear(100, slope)},
            )
    curves = compute_curves(load_runs([tmp_path / "runs"]), reps=100)
    png, svg, pdf = plot_curves(curves, [tmp_path / "c.png", tmp_path / "c.svg", tmp_path / "c.pdf"])
    assert png.read_bytes()[:8] == PNG_MAGIC and matplotlib.image.imread(png).ndim == 3
    assert ET.parse(svg).getroot().tag.endswith("svg")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(AnalysisError, match="must end in"):
        plot_curves(curves, [tmp_path / "c.jpeg"])


def test_plot_run_curve(tmp_path):
    train = [(s, float(np.sin(s))) for s in range(0, 200, 5)]
    run = make_run(
        tmp_path, "r", scalars={"eval/return": linear(200, every=50), "train/episode_return": train}
    )
    out = plot_run_curve(run, run / "curve.png")
    assert out.read_bytes()[:8] == PNG_MAGIC
    empty = make_run(tmp_path, "e", scalars={"loss/critic": linear(10)})
    assert matplotlib.image.imread(plot_run_curve(empty, empty / "curve.png")).size > 0


# ----------------------------------------------------------------------------------------- tables
def test_tables(tmp_path):
    for seed, final in enumerate([10.0, 20.0, 30.0]):
        points = [(0, 0.0), (50, 100.0), (100, final)]
        make_run(tmp_path, f"p{seed}", env="atari/pong", seed=seed, scalars={"eval/return": points})
        zero_shot = {"zero_shot/walker/run": [(100, 100.0 * seed)], "zero_shot/walker/stand": [(100, 50.0)]}
        make_run(
            tmp_path,
            f"c{seed}",
            env="dmc/cheetah_run",
            seed=seed,
            scalars={"eval/return": [(100, 500.0 + seed)], **zero_shot},
        )
    runs = load_runs([tmp_path])
    scores = final_scores(runs, "eval/return", ["agent.name"])
    table = final_score_table(scores, "eval/return", reps=200)
    pong = next(r for r in table.rows if r[0] == "atari/pong")
    assert pong[2] == 3 and pong[4].value == pytest.approx(20.0)
    last2 = final_score_table(final_scores(runs, "eval/return", ["agent.name"], last_k=2), "eval/return")
    assert next(r for r in last2.rows if r[0] == "atari/pong")[4].value == pytest.approx(60.0)
    atari = atari_table(scores, normalizer=lambda game, s: s / {"pong": 20.0}[game], reps=200)
    assert atari.rows[0][3].value == pytest.approx(1.0)  # median HNS of 0.5, 1, 1.5
    assert atari.rows[0][6].value == pytest.approx(1 - (0.5 + 1 + 1) / 3)
    assert dmc_table(scores, reps=200).rows[0][3].value == pytest.approx(501.0)
    zs = zero_shot_table(runs, ["agent.name"], reps=200)
    assert zs.rows[0][1] == "walker" and zs.rows[0][4].value == pytest.approx((100.0 + 50.0) / 2)
    assert "| atari/pong | jepa | 3 | 100 | 20 [" in table.to_markdown()
    header = table.to_csv(tmp_path / "t.csv").read_text().splitlines()[0]
    assert (
        header == "env,group,seeds,env frames min,env frames max,mean,mean ci_low,mean ci_high,std,IQM,"
        "IQM ci_low,IQM ci_high"
    )


# ----------------------------------------------------------------------------------------- CLI
def test_cli_end_to_end(tmp_path, capsys):
    for agent in ("jepa", "dreamer"):
        for seed in range(2):
            make_run(
                tmp_path / "runs",
                f"{agent}{seed}",
                agent=agent,
                seed=seed,
                scalars={"eval/return": linear(100, 1 + seed), "loss/critic": linear(100)},
            )
    out = tmp_path / "out" / "curves.png"
    argv = [
        str(tmp_path / "runs" / "*"),
        str(tmp_path),
        "--out",
        str(out),
        str(out.with_suffix(".svg")),
        "--table",
        "--table-out",
        str(tmp_path / "out" / "results.md"),
        "--profile",
        "--reps",
        "100",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "### Final eval/return" in captured.out and "### DMC returns" in captured.out
    for name in (
        "curves.png",
        "curves.svg",
        "curves_profile.png",
        "results.md",
        "results.csv",
        "results_dmc.csv",
    ):
        assert (tmp_path / "out" / name).is_file(), name
    assert matplotlib.image.imread(tmp_path / "out" / "curves_profile.png").size > 0


def test_cli_bad_inputs(tmp_path, capsys):
    make_run(tmp_path, "r", scalars={"loss/critic": linear(10), "train/episode_return": linear(10)})
    assert main([str(tmp_path / "r"), "--out", str(tmp_path / "c.png")]) == 1
    assert "no run logged metric 'eval/return'; metrics logged: loss/critic, train/episode_return" in (
        capsys.readouterr().err
    )
    (tmp_path / "notrun").mkdir()
    assert main([str(tmp_path / "notrun"), "--out", str(tmp_path / "c.png")]) == 1
    err = capsys.readouterr().err
    assert "notrun is not a run directory (no config.yaml)" in err and "error: no run directories" in err
    assert main([str(tmp_path / "r"), "--metric", "loss/critic", "--group-by", "agent.nme"]) == 1
    assert "no run has config key 'agent.nme'" in capsys.readouterr().err
    argv = [str(tmp_path / "r"), "--metric", "loss/critic", "--out", str(tmp_path / "single.png")]
    assert main(argv) == 0 and (tmp_path / "single.png").is_file()
    assert main(["--agg", "max", str(tmp_path)]) == 2


def test_atari_table_default_normalizer(tmp_path):
    atari_scores = pytest.importorskip("envs.atari_scores")
    for seed, final in enumerate([5.0, 7.0]):
        make_run(tmp_path, f"p{seed}", env="atari/pong", seed=seed, scalars={"eval/return": [(100, final)]})
    table = atari_table(final_scores(load_runs([tmp_path]), "eval/return", ["agent.name"]), reps=100)
    expected = np.mean([atari_scores.human_normalized("pong", s) for s in (5.0, 7.0)])
    assert table.rows[0][5].value == pytest.approx(expected)


def test_reference_curves_are_the_published_numbers():
    """The shipped data of DrQ-v2 / DreamerV3 on cartpole_swingup at 100k frames (the DMC-100k anchors
    of the DreamerV3 score files: 626 and 615), matched by task for torch/ and dmc/ runs alike."""
    from jepa_agents.analysis.references import methods, parse_methods, reference_curve

    assert {"drqv2", "dreamerv3", "curl"} <= set(methods())
    for method, want in (("drqv2", 626), ("dreamerv3", 615)):
        for env in ("torch/cartpole_swingup", "dmc/cartpole_swingup"):
            ref = reference_curve(method, env)
            assert ref is not None and ref.seeds >= 2
            assert abs(float(ref.mean[ref.frames == 100_000][0]) - want) < 1
    assert reference_curve("drqv2", "atari/pong") is None
    with pytest.raises(AnalysisError, match="choose from"):
        parse_methods("drqv3")


def test_cli_reference_lines_and_per_seed_rows(tmp_path, capsys):
    import csv

    for seed in range(3):
        make_run(
            tmp_path / "runs",
            f"s{seed}",
            env="torch/cartpole_swingup",
            seed=seed,
            scalars={
                "eval/return": linear(100_000, 0.005 * (seed + 1), 20_000),
                "train/updates": linear(100_000),
            },
        )
    out = tmp_path / "curves.svg"
    seeds = tmp_path / "dmc100k.csv"
    argv = [str(tmp_path / "runs"), "--out", str(out), "--reference", "drqv2,dreamerv3"]
    assert main([*argv, "--seeds-out", str(seeds)]) == 0
    svg = out.read_text()
    assert "drqv2 (published" in svg and "dreamerv3 (published" in svg and "danijar/dreamerv3" in svg
    rows = list(csv.DictReader(seeds.open()))
    assert [r["seed"] for r in rows] == ["0", "1", "2"] and set(rows[0]) == {
        "env", "method", "seed", "frames", "return", "wall_s", "updates"
    }  # fmt: skip
    assert [float(r["return"]) for r in rows] == [500.0, 1000.0, 1500.0]
    assert (rows[0]["frames"], rows[0]["updates"], rows[0]["wall_s"]) == ("100000", "100000", "100000.0")
    # --seeds-merge: the rows of the runs given are replaced, the file's other rows (runs whose directories
    # are elsewhere or gone) kept; without it the file holds the runs given only
    with seeds.open("a") as f:
        f.write("dmc/cartpole_swingup,sac / jepa,0,100000,375.0,2558.4,12000\n")
    shutil.rmtree(tmp_path / "runs" / "s0")
    shutil.rmtree(tmp_path / "runs" / "s1")
    make_run(tmp_path / "runs", "s1", env="torch/cartpole_swingup", seed=1,
             scalars={"eval/return": linear(100_000, 0.001, 20_000)})  # fmt: skip
    assert main([*argv, "--seeds-out", str(seeds), "--seeds-merge"]) == 0
    rows = [(r["env"], r["seed"], float(r["return"])) for r in csv.DictReader(seeds.open())]
    assert rows == [
        ("dmc/cartpole_swingup", "0", 375.0),
        ("torch/cartpole_swingup", "0", 500.0),  # its run is gone: kept
        ("torch/cartpole_swingup", "1", 100.0),  # replaced
        ("torch/cartpole_swingup", "2", 1500.0),
    ]
    assert main([*argv, "--seeds-out", str(seeds)]) == 0
    assert [r["seed"] for r in csv.DictReader(seeds.open())] == ["1", "2"]
    assert main([*argv, "--seeds-merge"]) == 1
    assert main([str(tmp_path / "runs"), "--out", str(out), "--reference", "dqn"]) == 1
    assert "choose from" in capsys.readouterr().err
