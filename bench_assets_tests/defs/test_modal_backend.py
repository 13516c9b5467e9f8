"""The Modal backend end to end through Dagster Pipes, with Modal's ``.local()`` calls.

``modal_local_invocation`` makes the step start ``python -m bench_assets.compute.modal_app``
instead of ``modal run``: the same Pipes session, the same entrypoint, the same
GPU function bodies, called with ``.local()`` instead of on an H100. The asset
materializes from what came back through the Pipes channel.
"""

from __future__ import annotations

import os
import subprocess
import sys

from io import BytesIO

import dagster as dg
import numpy as np
import polars as pl
import pytest
import yaml
from PIL import Image

from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from bench_assets.generation.image_set import read_png_meta
from dagster_helpers import materialization_metadata, register
from bench_assets.defs.partitions import partition_key

SUBSET = [dg.AssetKey("images"), dg.AssetKey("clip_score")]


def _use_compute(data_dir, **compute) -> None:
    config_file = data_dir / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["compute"] = compute
    config_file.write_text(yaml.safe_dump(config))


def _run(defs, instance, model="tiny-a", category="object"):
    return defs.resolve_job_def("benchmark").execute_in_process(
        partition_key=partition_key(model, category), instance=instance, raise_on_error=False,
        asset_selection=SUBSET,
    )


@pytest.fixture
def no_modal_token(tmp_path, monkeypatch):
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp_path / "no-such-modal.toml"))


def test_partition_through_pipes_matches_the_local_contract(data_dir, instance):
    """One Pipes run checked three ways: the warehouse contract, caching, and the pixels
    (same seeds, same pixels: which backend made a partition does not show in its files)."""
    _use_compute(data_dir, backend="modal", modal_local_invocation=True)
    defs = build_definitions(DataPaths(data_dir))
    register(instance, "tiny-a")

    result = _run(defs, instance)
    assert result.success
    images = materialization_metadata(result, "images")
    assert images["backend"] == "modal" and images["generated"] == 4 and images["failed"] == 0
    assert images["gpu_seconds"] > 0
    # The entrypoint's log lines travelled over the Pipes channel into the run's event log.
    messages = [e.message for e in instance.all_logs(result.run_id)]
    assert any("images to make in 1 call(s)" in m for m in messages)
    assert any("clip_score: 4 images to score remotely" in m for m in messages)

    wh = DataPaths(data_dir).warehouse
    manifest = pl.read_parquet(wh / "images" / "tiny-a" / "object.parquet")
    assert manifest.height == 4 and (manifest["gpu_seconds"] > 0).all()
    for key in manifest["path"]:  # keys in the image store, the local data dir's images/ by default
        assert key.startswith("tiny-a/object/")
        assert (data_dir / "images" / key).is_file()
    scores = pl.read_parquet(wh / "scores_clip" / "tiny-a" / "object.parquet")
    assert scores.height == 4
    assert sorted(scores["image_path"]) == sorted(manifest["path"]), "rows point at the local images"
    assert scores["value"].is_not_null().all() and (scores["gpu_seconds"] > 0).all()
    assert materialization_metadata(result, "clip_score")["computed"] == 4

    again = _run(defs, instance)
    assert again.success
    assert materialization_metadata(again, "images")["generated"] == 0
    assert materialization_metadata(again, "clip_score")["computed"] == 0
    assert pl.read_parquet(wh / "scores_clip" / "tiny-a" / "object.parquet").height == 4, "replaced, not appended"

    remote = {p.name: p.read_bytes() for p in (data_dir / "images" / "tiny-a" / "object").glob("*.png")}
    for p in (data_dir / "images").rglob("*.png"):
        p.unlink()
    _use_compute(data_dir, backend="local")
    assert _run(build_definitions(DataPaths(data_dir)), instance).success
    local_dir = data_dir / "images" / "tiny-a" / "object"
    assert sorted(remote) == sorted(p.name for p in local_dir.glob("*.png"))
    for name, data in remote.items():
        a = np.asarray(Image.open(BytesIO(data)), dtype=np.int16)
        b = np.asarray(Image.open(local_dir / name), dtype=np.int16)
        assert np.abs(a - b).max() <= 1, name
        assert read_png_meta(local_dir / name)["set_fingerprint"]


def test_modal_without_a_token_fails_the_step_before_any_work(data_dir, instance, no_modal_token):
    _use_compute(data_dir, backend="modal")
    defs = build_definitions(DataPaths(data_dir))
    register(instance, "tiny-a")
    result = _run(defs, instance)
    assert not result.success
    failure = [e for e in result.all_events if e.is_step_failure][0]
    assert "modal setup" in failure.step_failure_data.error.message
    assert not (data_dir / "images").exists()
    assert not (DataPaths(data_dir).warehouse / "images").exists()


def test_bench_demo_with_modal_and_no_token_stops_before_writing_anything(tmp_path, no_modal_token):
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    env = {**os.environ, "BENCH_COMPUTE": "modal", "BENCH_DATA_DIR": str(data),
           "DAGSTER_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "bench_assets.cli", "demo"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 3
    assert "no Modal token" in done.stderr and "modal setup" in done.stderr
    assert sorted(p.name for p in data.rglob("*")) == ["models"], "no models, images or tables"
    assert not (tmp_path / "home").exists()


def test_compute_backend_comes_from_the_environment(data_dir, monkeypatch):
    from bench_assets.core.config import ConfigError

    monkeypatch.setenv("BENCH_COMPUTE", "modal")
    defs = build_definitions(DataPaths(data_dir))
    assert defs.resources["compute"].backend == "modal"
    monkeypatch.setenv("BENCH_COMPUTE", "local")
    assert build_definitions(DataPaths(data_dir)).resources["compute"].backend == "local"
    monkeypatch.setenv("BENCH_COMPUTE", "aws")
    with pytest.raises(ConfigError, match="BENCH_COMPUTE.*'aws'"):
        build_definitions(DataPaths(data_dir))
