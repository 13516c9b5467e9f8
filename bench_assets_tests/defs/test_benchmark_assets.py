"""The benchmark end to end, in process, against a real Dagster instance."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import dagster as dg
import duckdb
import pytest

from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from bench_assets.models.registry import scan_models
from bench_assets.storage import status, status_cache
from bench_assets.storage.status import StatusInputs, suite_statuses
from dagster_helpers import materialization_metadata, materialize, query, refresh_leaderboard, register

# Tests sharing the session's `report_run` fixture run on one xdist worker, so it is built once.
pytestmark = pytest.mark.xdist_group("report_run")

MODELS = ("tiny-a", "tiny-b")
SOME = [dg.AssetKey("images"), dg.AssetKey("clip_score"), dg.AssetKey("lpips_diversity")]  # enough to check rows
CATEGORIES = ("object", "colour")


@pytest.fixture
def defs(data_dir):
    return build_definitions(DataPaths(data_dir))


def test_every_asset_for_two_models_and_two_categories(report_run):
    """The session's real run (report_fixtures.report_run): one run per model, every asset, then the
    leaderboard; each run's success is asserted where it is made."""
    data_dir = report_run.data

    # 2 models × 2 categories × 2 prompts × 2 images
    assert query(data_dir, "select count(*), count(distinct path) from images") == [(16, 16)]
    assert query(data_dir, "select count(*) from images group by model, category") == [(4,)] * 4
    n, low, high = query(data_dir, "select count(*), min(value), max(value) from scores_clip")[0]
    assert n == 16 and 0.0 <= low <= high <= 100.0
    n, low, high = query(data_dir, "select count(*), min(value), max(value) from scores_lpips")[0]
    assert n == 8 and 0.0 < low <= high <= 1.5, "distinct seeds give distinct images"
    assert query(data_dir, "select count(*) from scores_lpips where image_index is not null") == [(0,)]

    rows = query(
        data_dir,
        "select model, category, clip_score_mean, clip_score_ci_low, clip_score_ci_high, clip_score_n, "
        "lpips_diversity_n, rank from leaderboard order by category, model",
    )
    assert {(r[0], r[1]) for r in rows} == {(m, c) for m in MODELS for c in (*CATEGORIES, "all")}
    for model, category, mean, lo, hi, n_clip, n_lpips, rank in rows:
        assert lo <= mean <= hi
        assert n_clip == (8 if category == "all" else 4)
        assert n_lpips == (4 if category == "all" else 2)
        assert rank in (1, 2)
    # every score row joins back to its image and prompt
    assert query(data_dir, "select count(*) from scores_clip s join images i on s.image_path = i.path") == [(16,)]
    worst = query(
        data_dir,
        "select p.prompt, s.value from scores_clip s join prompts p using (prompt_id) "
        "where s.model = 'tiny-a' order by s.value limit 1",
    )
    assert worst and worst[0][0] in {"a red bicycle", "a glass teapot on a table", "a blue car", "a yellow umbrella"}


def test_deleting_two_images_regenerates_exactly_those(defs, instance, data_dir):
    register(instance, "tiny-a")
    assert materialize(defs, instance, "tiny-a", "object", asset_selection=SOME).success
    folder = data_dir / "images" / "tiny-a" / "object"
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")}
    assert len(before) == 4
    deleted = sorted(before)[:2]
    for name in deleted:
        (folder / name).unlink()

    result = materialize(defs, instance, "tiny-a", "object", asset_selection=SOME)
    assert result.success
    after = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")}
    assert set(after) == set(before)
    assert [n for n in after if after[n] != before[n]] == deleted
    meta = materialization_metadata(result, "images")
    assert (meta["generated"], meta["already_present"]) == (2, 2)
    assert materialization_metadata(result, "clip_score")["computed"] == 2


def test_rematerializing_neither_duplicates_nor_loses_rows(defs, instance, data_dir):
    register(instance, *MODELS)
    assert materialize(defs, instance, "tiny-a", "object", asset_selection=SOME).success
    assert materialize(defs, instance, "tiny-b", "colour", asset_selection=SOME).success
    again = materialize(defs, instance, "tiny-a", "object", asset_selection=SOME)
    assert again.success
    assert materialization_metadata(again, "clip_score")["status"] == "cached"
    assert materialization_metadata(again, "lpips_diversity")["status"] == "cached"
    assert materialization_metadata(again, "images")["status"] == "cached"
    assert refresh_leaderboard(defs, instance).success
    for table, per_partition in (("images", 4), ("scores_clip", 4), ("scores_lpips", 2)):
        counts = query(data_dir, f"select model, category, count(*) from {table} group by all order by all")
        assert counts == [("tiny-a", "object", per_partition), ("tiny-b", "colour", per_partition)], table
        dupes = query(data_dir, f"select count(*) - count(distinct (model, category, prompt_id, image_index)) from {table}")
        assert dupes == [(0,)], table


def test_changed_settings_make_a_new_set_not_a_mix(defs, instance, data_dir):
    register(instance, "tiny-a")
    assert materialize(defs, instance, "tiny-a", "object", asset_selection=SOME).success
    old = query_set(data_dir)
    sidecar = data_dir / "models" / "tiny-a.settings.yaml"
    sidecar.write_text(sidecar.read_text().replace("steps: 2", "steps: 3"))
    result = materialize(defs, instance, "tiny-a", "object", asset_selection=SOME)
    assert result.success
    assert materialization_metadata(result, "images")["generated"] == 4
    assert materialization_metadata(result, "clip_score")["computed"] == 4
    new = query_set(data_dir)
    assert len(new) == 1 and new != old


def query_set(data_dir):
    import polars as pl

    frame = pl.read_parquet(data_dir / "warehouse" / "images" / "tiny-a" / "object.parquet")
    return set(frame["set_fingerprint"])


def test_open_duckdb_session_does_not_fail_a_run(defs, instance, data_dir):
    register(instance, *MODELS)
    assert materialize(defs, instance, "tiny-a", "object", asset_selection=SOME).success
    assert refresh_leaderboard(defs, instance).success  # creates bench.duckdb and its views
    db = DataPaths(data_dir).duckdb
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, time
            con = duckdb.connect({str(db)!r})  # read-write: holds the file lock
            con.execute("select count(*) from images").fetchall()
            print("holding", flush=True)
            time.sleep(120)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(duckdb.IOException):
            duckdb.connect(str(db), read_only=True)  # the lock really is held
        assert materialize(defs, instance, "tiny-b", "colour", asset_selection=SOME).success
        assert refresh_leaderboard(defs, instance).success
    finally:
        holder.kill()
        holder.wait()
    assert query(data_dir, "select count(*) from images") == [(8,)]


def test_the_metric_steps_keep_the_partitions_status_verdict(defs, instance, data_dir, monkeypatch):
    """After a run, `bench status` reads the verdict its last metric step kept instead of judging the
    partition again, and that verdict is the one a fresh judgment gives."""
    monkeypatch.setattr(status_cache, "RACY_NS", 0)  # its images were written a moment before they were scored
    paths = DataPaths(data_dir)
    register(instance, "tiny-a")
    assert materialize(defs, instance, "tiny-a", "object", asset_selection=SOME).success
    assert (paths.cache / status_cache.VERDICTS_FOLDER / "tiny-a" / "object.json").is_file()

    inputs = StatusInputs.from_data_dir(paths)
    entry = next(e for e in scan_models(paths.models) if e.key == "tiny-a")
    judged: list[tuple[str, str]] = []
    judge = status.partition_status
    monkeypatch.setattr(status, "partition_status", lambda wh, model, category, *a, **k: judged.append(
        (model, category)) or judge(wh, model, category, *a, **k))
    kept = {s.category: s for _, rows in suite_statuses(inputs, [entry]) for s in rows}
    assert ("tiny-a", "object") not in judged and ("tiny-a", "colour") in judged
    assert kept["object"].images == 4 and kept["object"].metrics["clip_score"] == "done"

    shutil.rmtree(paths.cache / status_cache.VERDICTS_FOLDER)
    fresh = {s.category: s for _, rows in suite_statuses(inputs, [entry]) for s in rows}
    assert fresh == kept and ("tiny-a", "object") in judged
