"""The files on disk are the truth: deleted, truncated or corrupt files are
seen by `bench status`, never scored, and repaired by the next `bench run`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from bench_assets.cli import main
from bench_assets.core.paths import DataPaths
from bench_assets_tests.conftest import make_data_dir


def _use(data: Path, dagster_home: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("BENCH_DATA_DIR", str(data))
    env.setenv("DAGSTER_HOME", str(dagster_home))
    env.delenv("BENCH_CONFIG", raising=False)
    env.delenv("BENCH_PROMPT_SUITE", raising=False)


@pytest.fixture(scope="module")
def one_model_run(tmp_path_factory, tiny_sources) -> Path:
    """tiny-a alone, settled; `bench run` done once for the module (each test damages its own copy)."""
    data = make_data_dir(tmp_path_factory.mktemp("one_model"), tiny_sources, models=("tiny-a",))
    past = 1_600_000_000
    for path in (data / "models").rglob("*"):
        os.utime(path, (past, past))
    with pytest.MonkeyPatch.context() as env:
        _use(data, data.parent / "dagster_home", env)
        assert main(["run"]) == 0
    return data


@pytest.fixture
def one_model(one_model_run, tmp_path, monkeypatch) -> Path:
    """A copy of the module's data dir (a moved data dir: every recorded key still resolves) and of its
    instance."""
    data = tmp_path / "data"
    shutil.copytree(one_model_run, data, symlinks=True)
    shutil.copytree(one_model_run.parent / "dagster_home", tmp_path / "dagster_home")
    _use(data, tmp_path / "dagster_home", monkeypatch)
    return data


def _status(capsys) -> tuple[dict, list[str]]:
    capsys.readouterr()
    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {tuple(l.split()[:2]): l for l in lines[2:] if not l.startswith("warning:")}
    return rows, [l for l in lines if l.startswith("warning:")]


def _clip_rows(data: DataPaths, category: str) -> pl.DataFrame:
    return pl.read_parquet(data.warehouse / "scores_clip" / "tiny-a" / f"{category}.parquet")


def test_deleted_and_truncated_images_are_stale_then_exactly_regenerated(one_model, capsys):
    data = DataPaths(one_model)
    folder = data.images / "tiny-a" / "object"
    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) == 4
    before = {p.name: p.read_bytes() for p in pngs}
    pngs[0].unlink()
    pngs[1].write_bytes(before[pngs[1].name][:200])  # cut short: its provenance chunk is still there

    rows, _ = _status(capsys)
    assert rows[("tiny-a", "object")].split()[2] == "stale"
    assert "1 changed, 1 missing on disk" in rows[("tiny-a", "object")]
    assert rows[("tiny-a", "colour")].split()[2] == "done"

    capsys.readouterr()
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "tiny-a [object]" in out and "colour" not in out.split("tiny-a [object]")[0].splitlines()[-1]
    after = {p.name: p.read_bytes() for p in folder.glob("*.png")}
    assert set(after) == set(before)
    for name in (pngs[2].name, pngs[3].name):
        assert after[name] == before[name], "untouched images keep their bytes"
    assert after[pngs[1].name] != before[pngs[1].name][:200], "the truncated file was regenerated"
    clip = _clip_rows(data, "object")
    assert clip.height == 4 and set(clip["image_path"]) == {f"tiny-a/object/{n}" for n in after}, "keys"
    rows, _ = _status(capsys)
    assert {r.split()[2] for r in rows.values()} == {"done"}


def test_a_truncated_image_is_never_scored(one_model, capsys):
    """Scoring alone (no images step first) skips a file that is not what was recorded."""
    import dagster as dg

    from bench_assets.definitions import build_definitions
    from bench_assets.defs.partitions import partition_key

    data = DataPaths(one_model)
    victim = sorted((data.images / "tiny-a" / "colour").glob("*.png"))[0]
    victim.write_bytes(victim.read_bytes()[:300])
    (data.warehouse / "scores_clip" / "tiny-a" / "colour.parquet").unlink()
    defs = build_definitions(data)
    result = defs.resolve_job_def("benchmark").execute_in_process(
        partition_key=partition_key("tiny-a", "colour"), instance=dg.DagsterInstance.get(),
        asset_selection=[dg.AssetKey("clip_score")])
    assert result.success
    clip = _clip_rows(data, "colour")
    assert clip.height == 3 and f"tiny-a/colour/{victim.name}" not in set(clip["image_path"])


def test_a_corrupt_parquet_file_is_reported_moved_aside_and_rebuilt(one_model, capsys):
    data = DataPaths(one_model)
    broken = data.warehouse / "scores_clip" / "tiny-a" / "object.parquet"
    broken.write_bytes(broken.read_bytes()[:100])
    rows, warnings = _status(capsys)
    assert len(warnings) == 1 and str(broken) in warnings[0] and "moved to object.parquet.corrupt" in warnings[0]
    assert "clip_score:missing" in rows[("tiny-a", "object")]
    assert (broken.parent / "object.parquet.corrupt").exists() and not broken.exists()

    capsys.readouterr()
    assert main(["run"]) == 0  # the schedule's evaluation does not crash; the partition is rebuilt
    assert _clip_rows(data, "object").height == 4
    rows, warnings = _status(capsys)
    assert warnings == [] and {r.split()[2] for r in rows.values()} == {"done"}
