"""The reference sensor and the distribution_scores asset, against a real Dagster instance."""

from __future__ import annotations

import hashlib
import io

import dagster as dg
import numpy as np
import yaml
from PIL import Image

from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from bench_assets.defs.partitions import MODEL_DIM, REFERENCE_DIM, split_model_reference
from bench_assets.metrics.features import FEATURE_EXTRACTORS
from bench_assets.storage.distribution import read_distribution_scores
from bench_assets.storage.status import IMAGES_TABLE
from bench_assets.storage.store import LocalStore
from bench_assets.storage.warehouse import Warehouse
from dagster_helpers import materialization_metadata


def _png(rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _generated(data, model: str, seed: int) -> None:
    """A model's images and manifest, as the images asset leaves them."""
    rng, warehouse, images = np.random.default_rng(seed), Warehouse(data / "warehouse"), LocalStore(data / "images")
    for category in ("object", "colour"):
        rows = []
        for index in range(6):
            png, key = _png(rng), f"{model}/{category}/p{index}_i0_s{index}.png"
            images.put_bytes(key, png)
            rows.append({"model": model, "category": category, "path": key, "sha256": hashlib.sha256(png).hexdigest()})
        warehouse.write_partition(IMAGES_TABLE, model, category, rows)


def _tick(defs, instance, cursor):
    with dg.build_sensor_context(instance_ref=instance.get_ref(), cursor=cursor, resources=defs.resources,
                                 repository_def=defs.get_repository_def()) as context:
        result = defs.resolve_sensor_def("reference_sensor").evaluate_tick(context)
    for request in result.dynamic_partitions_requests or []:  # what the daemon does
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result, sorted(split_model_reference(r.partition_key) for r in result.run_requests or [])


def test_dropped_reference_set_is_registered_scored_and_rescored_when_it_changes(data_dir, instance):
    config = yaml.safe_load((data_dir / "config.yaml").read_text())
    config["distribution"] = {"bootstrap": 3, "metrics": ["fid", "cmmd"],
                              "inception": FEATURE_EXTRACTORS["inception_clean"].tiny_scorer.options(
                                  data_dir / "metric_models")}
    (data_dir / "config.yaml").write_text(yaml.safe_dump(config))
    rng = np.random.default_rng(5)
    (data_dir / "references" / "shapes").mkdir(parents=True)
    for index in range(6):
        (data_dir / "references" / "shapes" / f"s{index}.png").write_bytes(_png(rng))
    _generated(data_dir, "tiny-a", 1)
    instance.add_dynamic_partitions(MODEL_DIM, ["tiny-a", "tiny-b"])  # tiny-b has no images yet
    defs = build_definitions(DataPaths(data_dir))

    result, pairs = _tick(defs, instance, None)
    assert pairs == [("tiny-a", "shapes")]
    assert instance.get_dynamic_partitions(REFERENCE_DIM) == ["shapes"]
    assert _tick(defs, instance, result.cursor)[1] == []  # nothing changed: nothing requested

    run = defs.resolve_job_def("distribution").execute_in_process(
        partition_key=result.run_requests[0].partition_key, instance=instance)
    assert run.success
    metadata = materialization_metadata(run, "distribution_scores")
    assert metadata["features_extracted"] == 2 * (6 + 12) and metadata["rows"] == 2 * 3  # fid, cmmd × all + 2
    rows = read_distribution_scores(Warehouse(data_dir / "warehouse"), "tiny-a", "shapes")
    assert set(rows["metric"]) == {"fid", "cmmd"} and set(rows["n_reference"]) == {6}

    Image.new("RGB", (16, 16), (0, 0, 255)).save(data_dir / "references" / "shapes" / "s2.png")
    _generated(data_dir, "tiny-b", 2)
    changed, pairs = _tick(defs, instance, result.cursor)
    assert pairs == [("tiny-a", "shapes"), ("tiny-b", "shapes")]  # the changed set × every model with images
    assert _tick(defs, instance, changed.cursor)[1] == []
