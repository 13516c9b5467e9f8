"""``bench migrate``: absolute image paths of older rows become keys; idempotent; per partition, locked."""

from __future__ import annotations

import polars as pl
import pytest

from bench_assets import cli
from bench_assets.core.paths import DataPaths
from bench_assets.storage.locks import partition_lock, partition_lock_dir
from bench_assets.storage.status import IMAGES_TABLE
from bench_assets.storage.versions import VERSIONS_TABLE, VersionStore
from bench_assets.storage.warehouse import Warehouse

FP = "a" * 16


@pytest.fixture
def old_data_dir(tmp_path, monkeypatch) -> DataPaths:
    """A data dir as a run before the storage seam left it: absolute paths in every image column."""
    paths = DataPaths(tmp_path / "data")
    monkeypatch.setenv("BENCH_DATA_DIR", str(paths.root))
    monkeypatch.delenv("BENCH_CONFIG", raising=False)
    monkeypatch.delenv("BENCH_STORAGE_ROOT", raising=False)
    store = VersionStore(paths.root)
    images, archived = paths.root / "images", paths.root / "versions" / "images"
    manifest = [{"model": "m", "category": "cat", "prompt_id": f"p{i}", "image_index": 0,
                 "path": str(images / "m" / "cat" / f"p{i}_i0_s0.png")} for i in range(2)]
    manifest.append({**manifest[0], "prompt_id": "p9", "path": "/old/place/data/images/m/cat/p9_i0_s0.png"})
    store.warehouse.write_partition(IMAGES_TABLE, "m", "cat", manifest)
    scores = [{"model": "m", "category": "cat", "prompt_id": r["prompt_id"], "image_index": 0,
               "image_path": r["path"], "value": 1.0} for r in manifest]
    scores.append({"model": "m", "category": "cat", "prompt_id": "p0", "image_index": None, "image_path": None,
                   "value": 0.5})  # a set metric's row has no image
    store.warehouse.write_partition("scores_x", "m", "cat", scores)
    store.warehouse.write_partition("scores_x", "new", "cat", [{"model": "new", "image_path": "new/cat/p0_i0_s0.png"}])
    store.archive.write_partition("scores_x", f"m@{FP}", "cat", [
        {"model": "m", "image_path": str(archived / f"m@{FP}" / "cat" / "p0_i0_s0.png"), "value": 0.1}])
    store.warehouse.write_partition(VERSIONS_TABLE, "m", FP, [{"model": "m", "path": "/models/m.safetensors"}])
    store.warehouse.write_table("leaderboard", pl.DataFrame({"model": ["m"]}))
    return paths


def _mtimes(paths: DataPaths) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in paths.root.rglob("*.parquet")}


def test_absolute_paths_become_keys_once(old_data_dir, capsys):
    store = VersionStore(old_data_dir.root)
    assert cli.main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert "warehouse/images: 3 image location(s) in 1 partition(s) rewritten as keys" in out
    assert "warehouse/scores_x: 3 image location(s) in 1 partition(s)" in out  # not the already-keyed "new"
    assert "versions/scores_x: 1 image location(s) in 1 partition(s)" in out
    assert "5 partition file(s) checked; 7 value(s) rewritten" in out
    assert store.warehouse.read_partition(IMAGES_TABLE, "m", "cat")["path"].to_list() == [
        "m/cat/p0_i0_s0.png", "m/cat/p1_i0_s0.png", "m/cat/p9_i0_s0.png"]  # p9's data dir had moved: same key
    scores = store.warehouse.read_partition("scores_x", "m", "cat")
    assert scores["image_path"].to_list() == ["m/cat/p0_i0_s0.png", "m/cat/p1_i0_s0.png", "m/cat/p9_i0_s0.png", None]
    assert scores["value"].to_list() == [1.0, 1.0, 1.0, 0.5], "only the image column changes"
    assert store.archive.read_partition("scores_x", f"m@{FP}", "cat")["image_path"].to_list() == [
        f"m@{FP}/cat/p0_i0_s0.png"]  # relative to the archive's image root
    assert store.warehouse.read_partition(VERSIONS_TABLE, "m", FP)["path"].to_list() == ["/models/m.safetensors"]

    before = _mtimes(old_data_dir)
    assert cli.main(["migrate"]) == 0
    assert "5 partition file(s) checked; nothing to rewrite" in capsys.readouterr().out
    assert _mtimes(old_data_dir) == before, "a second migration writes nothing"


def test_a_partition_a_run_holds_is_left_for_later_and_named(old_data_dir, capsys):
    with partition_lock(partition_lock_dir(old_data_dir.cache), "m", "cat"):
        assert cli.main(["migrate"]) == 1
        out = capsys.readouterr().out
    assert out.count("busy (a run holds it; run `bench migrate` again after it)") == 3
    assert "busy (a run holds it; run `bench migrate` again after it): versions/scores_x/m@" in out
    held = Warehouse(old_data_dir.warehouse).read_partition(IMAGES_TABLE, "m", "cat")
    assert held["path"][0].startswith("/"), "a held partition is not touched"
    assert cli.main(["migrate"]) == 0
    assert "warehouse/images: 3 image location(s)" in capsys.readouterr().out
