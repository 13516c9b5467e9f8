"""The scale benchmark (issue 21) at a tiny size: every step runs and is timed, and the synthetic
data directory it writes is one the real readers take as a finished benchmark."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench_assets.benchmarks import scale
from bench_assets.benchmarks.scale_data import ScaleSpec
from bench_assets.storage.warehouse import Warehouse

TINY = ["--sizes", "2x20", "--images-per-prompt", "2", "--categories", "2", "--metrics", "2", "--keep"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[dict, Path]:
    workdir = tmp_path_factory.mktemp("scale")
    result = scale.run(scale.parser().parse_args([*TINY, "--workdir", str(workdir)]), log=lambda line: None)
    return result, workdir / "2x20" / "data"


def _steps(result: dict) -> dict[str, dict]:
    return {row["name"]: row for row in result["sizes"][0]["steps"]}


def test_every_step_runs_and_is_timed(tiny_run):
    result, _ = tiny_run
    rows = _steps(result)
    expected = ["write the synthetic data directory", *[s.name for s in scale.steps()]]
    assert list(rows) == expected
    assert sum(name.startswith("sql: ") for name in rows) == 5  # README.md's query and docs/sql.md's four
    for name, row in rows.items():
        assert row["stopped"] == "", (name, row["figures"])
        assert row["seconds"] > 0, name
        assert name.startswith("write the") or row["peak_mib"] > 20, name  # a Python process's own memory
    table = scale.report_text(result)
    for name in expected:
        assert f"| {name}" in table


def test_the_synthetic_data_is_read_back_by_the_real_readers(tiny_run):
    result, data = tiny_run
    rows = _steps(result)
    # Both models registered by the first tick; with every image on disk as recorded, a tick asks for nothing.
    assert rows["sensor tick"]["figures"]["run_requests"] == 0
    # 2 models × 2 categories; only 2 of the 11 metrics have tables, so partitions are partial, not stale.
    assert rows["bench status"]["figures"]["states"] == {"partial": 4}
    assert rows["keep every partition's status verdict (the metric steps' share)"]["figures"]["states"] == {
        "partial": 4}
    assert rows["bench status, no verdict kept (cache deleted)"]["figures"]["states"] == {"partial": 4}
    assert rows["arena pair sampling"]["figures"]["pairs"] == 20 * 2  # one pair per prompt and image index
    assert rows["comparisons, full build"]["figures"]["rows"] > 0
    leaderboard = Warehouse(data / "warehouse").read_table("leaderboard")
    overall = leaderboard.filter(leaderboard["category"] == "all")
    assert sorted(overall["model"]) == ["model-000", "model-001", "model-002"]  # the added model too
    assert overall["clip_score_n"].to_list() == [40, 40, 40]  # 20 prompts × 2 images each
    # The added model's own 40 images get their thumbnails with them, as the images step makes them; the report
    # rebuild after it finds them made and writes that model's files only.
    assert rows["add one model's partitions"]["figures"]["thumbnails_made"] == 40
    rebuild = rows["report rebuild after adding one model"]["figures"]
    assert (rebuild["thumbnails_made"], rebuild["models_written"], rebuild["models_carried_over"]) == (0, 1, 2)
    assert all(rows[f"sql: docs/sql.md #{i}"]["seconds"] > 0 for i in range(1, 5))


def test_a_step_past_its_timeout_is_stopped(tiny_run):
    _, data = tiny_run
    step = next(s for s in scale.steps() if s.name == "sensor tick")  # seconds of imports before it even starts
    result = scale.run_step(step, data, scale.Limits(timeout=1, memory_mib=10**6))
    assert result.stopped == "timeout" and result.seconds is None
    assert result.cells(1, 10**6)[0] == "> 1 s"
    assert result.process_seconds < 10


def _size(models: int, prompts: int, seconds: float) -> dict:
    return {"models": models, "prompts": prompts, "steps": [{"name": "step", "seconds": seconds}]}


def test_growth_exponents_per_axis():
    rows = scale.growth([_size(10, 1000, 1.0), _size(30, 1000, 9.0), _size(30, 4000, 36.0)])
    assert [r["in"] for r in rows] == ["models", "prompts"]
    assert math.isclose(rows[0]["exponent"], 2.0)  # × 3 models, × 9 time: quadratic
    assert math.isclose(rows[1]["exponent"], 1.0)  # × 4 prompts, × 4 time: linear
    assert scale.parse_sizes("10x1000, 30X10000") == [(10, 1000), (30, 10000)]


def test_spec_refuses_sizes_the_tables_cannot_have():
    with pytest.raises(ValueError):
        ScaleSpec(models=2, prompts=20, categories=14)
    with pytest.raises(ValueError):
        ScaleSpec(models=2, prompts=20, metrics=12)


def test_without_keep_only_the_data_directories_made_are_removed(tmp_path, monkeypatch):
    """A --workdir also holds the user's log and --out file: the run removes its own size folders only."""
    def fake_measure(spec, workdir, limits, log):
        (scale.size_folder(workdir, spec) / "data").mkdir(parents=True)
        return {"models": spec.models, "prompts": spec.prompts, "steps": []}

    monkeypatch.setattr(scale, "measure_size", fake_measure)
    (tmp_path / "run.log").write_text("the user's log")
    scale.run(scale.parser().parse_args(["--sizes", "2x20,3x20", "--workdir", str(tmp_path)]), log=lambda _: None)
    assert [p.name for p in tmp_path.iterdir()] == ["run.log"]
