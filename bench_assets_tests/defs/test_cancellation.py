"""Terminating a run stops generation between batches; what was written stays valid and counts."""

from __future__ import annotations

import os
import signal
import threading
import time

import dagster as dg
import polars as pl

from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from bench_assets.generation.image_set import read_png_meta
from bench_assets_tests.conftest import TEST_SETTINGS
from dagster_helpers import materialization_metadata, register
from bench_assets.defs.partitions import partition_key

import yaml


def _interrupt_after_first_png(folder, stop: threading.Event) -> None:
    while not stop.is_set():
        if folder.is_dir() and any(folder.glob("*.png")):
            os.kill(os.getpid(), signal.SIGINT)  # what `dagster` sends a run worker it terminates
            return
        time.sleep(0.01)


def test_sigint_mid_partition_keeps_whole_batches_and_resumes(data_dir, instance):
    settings = {**TEST_SETTINGS, "images_per_prompt": 6, "batch_size": 1, "steps": 4}
    (data_dir / "models" / "tiny-a.settings.yaml").write_text(yaml.safe_dump(settings))
    defs = build_definitions(DataPaths(data_dir))
    register(instance, "tiny-a")
    job = defs.resolve_job_def("benchmark")
    key = partition_key("tiny-a", "object")
    folder = data_dir / "images" / "tiny-a" / "object"

    stop = threading.Event()
    watcher = threading.Thread(target=_interrupt_after_first_png, args=(folder, stop), daemon=True)
    watcher.start()
    try:
        result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False,
                                        asset_selection=[dg.AssetKey("images")])
    except KeyboardInterrupt:
        result = None
    finally:
        stop.set()
    assert result is None or not result.success, "the run did not complete"
    written = sorted(folder.glob("*.png"))
    assert 1 <= len(written) < 12, "stopped part-way"
    assert not list(folder.glob(".*.tmp")), "no half-written file"
    for path in written:
        assert read_png_meta(path)["set_fingerprint"], f"{path.name} is a complete image"
    manifest = pl.read_parquet(DataPaths(data_dir).warehouse / "images" / "tiny-a" / "object.parquet")
    assert manifest.height == len(written), "the manifest recorded what was written before stopping"

    resumed = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False,
                                     asset_selection=[dg.AssetKey("images")])
    assert resumed.success
    meta = materialization_metadata(resumed, "images")
    assert meta["already_present"] == len(written) and meta["generated"] == 12 - len(written)
