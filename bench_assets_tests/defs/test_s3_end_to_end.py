"""Acceptance 2: the benchmark with its images and Parquet in a bucket (a real S3 server on 127.0.0.1).

The test fixtures' two tiny models run through the same ``benchmark`` job the
sensor launches, materialized in process with a real Dagster instance and
``BENCH_STORAGE_ROOT=s3://bench-test/<prefix>``. Every image and table is an
object in the bucket; the local data directory keeps only models, prompts,
config and ``bench.duckdb``, whose views DuckDB answers over ``s3://``.
"""

from __future__ import annotations

import hashlib
import uuid

import dagster as dg
import yaml

from bench_assets.cli import main
from bench_assets.core.paths import DataPaths
from bench_assets.storage.store import open_store
from bench_assets.definitions import build_definitions
from bench_assets.storage.warehouse import open_warehouse
from bench_assets_tests.conftest import TEST_SETTINGS
from bench_assets_tests.s3_server import BUCKET
from dagster_helpers import materialize, refresh_leaderboard, register

MODELS = ("tiny-a", "tiny-b")
CATEGORY = "object"  # one partition per model keeps it short; the other model's partition is the "other" one
SUBSET = [dg.AssetKey("images"), dg.AssetKey("clip_score")]


def _objects(bucket) -> dict[str, tuple[str, int]]:
    """Every object under the prefix: key -> (ETag, Last-Modified), from one listing."""
    return {key: (info.etag, info.mtime_ns) for key, info in bucket.infos().items()}


def _sql(capsys, text: str) -> str:
    capsys.readouterr()
    assert main(["sql", "-c", text]) == 0
    return capsys.readouterr().out


def test_the_benchmark_runs_with_images_and_parquet_in_a_bucket(data_dir, s3_env, instance, monkeypatch, capsys):
    root = f"s3://{BUCKET}/e2e-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("BENCH_STORAGE_ROOT", root)
    bucket = open_store(root)
    paths = DataPaths(data_dir)
    defs = build_definitions(paths)
    register(instance, *MODELS)
    for model in MODELS:
        assert materialize(defs, instance, model, CATEGORY, asset_selection=SUBSET).success
    assert refresh_leaderboard(defs, instance).success

    before = _objects(bucket)
    image_keys = sorted(k.removeprefix("images/") for k in before if k.startswith("images/"))
    assert image_keys == sorted(f"{m}/object/{p}_i{k}_s{k}.png" for m in MODELS for p in ("obj-1", "obj-2")
                                for k in range(2))
    for table in ("images", "scores_clip"):
        assert {f"warehouse/{table}/{m}/object.parquet" for m in MODELS} <= set(before)
    assert any(k.startswith("warehouse/leaderboard/") for k in before)
    assert not (data_dir / "images").exists() and not (data_dir / "warehouse").exists(), "nothing on local disk"

    manifest = open_warehouse(paths).read_table("images")
    assert sorted(manifest["path"]) == image_keys, "rows hold keys relative to the image store"
    images = bucket.child("images")
    for key, sha in manifest.select("path", "sha256").iter_rows():
        assert hashlib.sha256(images.get_bytes(key)).hexdigest() == sha

    # DuckDB answers over the s3:// views (the filesystem registered on bench sql's connection).
    assert "joined=8" in _sql(capsys, "select 'joined=' || count(*) as n from scores_clip s join images i "
                                       "on s.image_path = i.path")
    assert "models=2" in _sql(capsys, "select 'models=' || count(distinct model) as n from leaderboard")

    # Re-materializing one partition with other settings replaces exactly its objects.
    (data_dir / "models" / "tiny-a.settings.yaml").write_text(yaml.safe_dump({**TEST_SETTINGS, "steps": 3}))
    assert materialize(defs, instance, "tiny-a", CATEGORY, asset_selection=SUBSET).success
    after = _objects(bucket)
    assert set(after) == set(before), "the same keys: nothing added, nothing left behind"
    changed = {k for k in after if after[k] != before[k]}
    own_images = {k for k in before if k.startswith("images/tiny-a/object/")}
    assert own_images <= changed and len(own_images) == 4, "every image of the partition was rewritten"
    assert {"warehouse/images/tiny-a/object.parquet", "warehouse/scores_clip/tiny-a/object.parquet"} <= changed
    assert all(k in own_images or k.endswith("/tiny-a/object.parquet") for k in changed), sorted(changed)
