"""Acceptance 5 of issue 15: move a finished benchmark's data directory, point BENCH_DATA_DIR at the new
place, and the leaderboard, the report and a re-materialization work there, with no path rewrite.

The benchmark is conftest's ``demo_warehouse`` (a real `bench run`), copied, then moved: the folder it
was first in no longer exists. The copy's saved DuckDB views and the rows written by older code may
still name the fixture's own folder, which does exist; so each check proves it read the *new* place.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from bench_assets import cli
from bench_assets.core.config import load_config
from bench_assets.core.naming import recorded_image_key
from bench_assets.core.paths import DataPaths
from bench_assets.storage.store import images_store
from bench_assets.definitions import build_definitions
from bench_assets.storage.query import open_sql
from bench_assets.storage.status import IMAGES_TABLE
from bench_assets.storage.warehouse import open_warehouse
from bench_assets_tests.defs.dagster_helpers import materialization_metadata, materialize, register
from bench_assets_tests.report.helpers import compare_page

MAGENTA = (255, 0, 255)
pytestmark = pytest.mark.xdist_group("demo_warehouse")  # the shared run is built once, on one worker


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def moved(demo_warehouse, tmp_path, monkeypatch) -> DataPaths:
    first = tmp_path / "first" / "data"
    shutil.copytree(demo_warehouse, first)
    paths = DataPaths(tmp_path / "elsewhere" / "bench-data")
    paths.root.parent.mkdir()
    shutil.move(first, paths.root)
    assert not first.exists()
    monkeypatch.setenv("BENCH_DATA_DIR", str(paths.root))
    for name in ("BENCH_CONFIG", "BENCH_STORAGE_ROOT", "BENCH_PROMPT_SUITE"):
        monkeypatch.delenv(name, raising=False)
    return paths


def test_leaderboard_report_and_rematerialization_work_where_the_data_dir_is_now(moved, capsys):
    warehouse_before = _digests(moved.warehouse)
    manifest = open_warehouse(moved).read_table(IMAGES_TABLE).sort("prompt_id", "image_index")
    keys = [recorded_image_key(p) for p in manifest["path"]]

    # bench leaderboard: the views it reads name the new folder
    assert cli.main(["leaderboard"]) == 0
    assert "| tiny-a |" in capsys.readouterr().out
    con = open_sql(moved)
    try:
        (sql,) = con.execute("select sql from duckdb_views() where view_name = 'leaderboard' "
                             "and not internal order by temporary desc limit 1").fetchone()
        assert str(moved.warehouse) in sql
        assert con.execute("select count(*) from images").fetchone() == (len(keys),)
    finally:
        con.close()

    # the report: thumbnails made from the images here, full-size links into the new images/
    original = moved.images / keys[0]
    kept = original.read_bytes()
    marked = io.BytesIO()
    Image.new("RGB", (64, 64), MAGENTA).save(marked, format="PNG")
    original.write_bytes(marked.getvalue())
    shutil.rmtree(moved.report / "thumbs")
    assert cli.main(["report"]) == 0
    assert f"{len(set(manifest['sha256']))} new thumbnail(s)" in capsys.readouterr().out
    original.write_bytes(kept)
    cells = compare_page(moved.report, "object")["cells"]["tiny-a"]
    by_key = dict(zip(keys, manifest.iter_rows(named=True)))
    for key, row in by_key.items():
        full = cells[row["prompt_id"]][str(row["image_index"])][2]
        assert full == f"../images/{key}" and (moved.report / full).resolve() == (moved.images / key).resolve()
    thumb = cells[by_key[keys[0]]["prompt_id"]][str(by_key[keys[0]]["image_index"])][1]
    with Image.open(moved.report / thumb) as image:
        assert image.convert("RGB").getpixel((8, 8)) == pytest.approx(MAGENTA, abs=12), "read from the new place"
    assert _digests(moved.warehouse) == warehouse_before, "reading needed no rewrite"

    # a re-materialization of one partition: nothing regenerated or rescored, rows resolve here
    with dg.instance_for_test() as instance:
        defs = build_definitions(moved)
        register(instance, "tiny-a")
        result = materialize(defs, instance, "tiny-a", "object",
                             asset_selection=[dg.AssetKey("images"), dg.AssetKey("clip_score")])
        assert result.success
        images = materialization_metadata(result, "images")
        assert (images["generated"], images["already_present"], images["failed"]) == (0, len(keys), 0)
        assert materialization_metadata(result, "clip_score")["computed"] == 0
    store = images_store(moved, load_config(moved))
    after = open_warehouse(moved).read_table(IMAGES_TABLE)
    assert sorted(recorded_image_key(p) for p in after["path"]) == sorted(keys)
    assert all(store.info(recorded_image_key(p)) is not None for p in after["path"])
