"""An image-folder card end to end: the sensor registers it, `images` ingests
its 2x2 grids and `clip_score` scores them, with no pipeline ever loaded."""

from __future__ import annotations

import os
import time

import numpy as np
import yaml

import dagster as dg

from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from dagster_helpers import materialization_metadata, materialize, query, refresh_leaderboard

TILE = 32


def _grid(path, colours) -> None:
    from PIL import Image

    pixels = np.zeros((2 * TILE, 2 * TILE, 3), dtype=np.uint8)
    for index, colour in enumerate(colours):
        row, col = divmod(index, 2)
        pixels[row * TILE : (row + 1) * TILE, col * TILE : (col + 1) * TILE] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _no_generation(*_args, **_kwargs):
    raise AssertionError("an image-folder model must not load or run a pipeline")


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def("model_drop_sensor")
    with dg.build_sensor_context(instance_ref=instance.get_ref(), resources=defs.resources,
                                 repository_def=defs.get_repository_def()) as ctx:
        result = sensor.evaluate_tick(ctx)
    for request in result.dynamic_partitions_requests or []:  # what the daemon does
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_image_folder_card_is_registered_ingested_and_scored(data_dir, instance, monkeypatch):
    monkeypatch.setattr("bench_assets.generation.pipelines.load_pipeline", _no_generation)
    monkeypatch.setattr("bench_assets.generation.generate.generate_image_set", _no_generation)
    shots = data_dir / "models" / "api-shots"
    _grid(shots / "obj-1.png", [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)])
    _grid(shots / "obj-2.png", [(90, 90, 90), (0, 0, 0), (150, 60, 20), (20, 60, 150)])  # tile 1 failed
    (data_dir / "models" / "api-model.yaml").write_text(yaml.safe_dump({"images": "api-shots", "grid": [2, 2]}))
    past = time.time() - 3600  # copied in a while ago: the sensor need not wait for it to settle
    for path in (data_dir / "models").rglob("*"):
        os.utime(path, (past, past))
    defs = build_definitions(DataPaths(data_dir))

    tick = _tick(defs, instance)
    assert "api-model" in instance.get_dynamic_partitions("model")
    assert "api-shots" not in instance.get_dynamic_partitions("model")
    assert any(r.tags["bench/model"] == "api-model" for r in tick.run_requests)

    result = materialize(defs, instance, "api-model", "object",
                         asset_selection=[dg.AssetKey("images"), dg.AssetKey("clip_score")])
    assert result.success
    meta = materialization_metadata(result, "images")
    assert (meta["expected"], meta["generated"], meta["failed"]) == (8, 7, 1)
    assert meta["device"] == "none"
    assert refresh_leaderboard(defs, instance).success  # also builds the DuckDB views queried below

    assert query(data_dir, "select count(*), min(width), max(width) from images where model = 'api-model'") == [
        (7, TILE, TILE)]
    assert query(data_dir, "select prompt_id, image_index from generation_failures where model = 'api-model'") == [
        ("obj-2", 1)]
    sql = "select count(*), min(value), max(value) from scores_clip where model = 'api-model'"
    n, low, high = query(data_dir, sql)[0]
    assert n == 7 and 0.0 <= low <= high <= 100.0
    joined = query(data_dir, "select count(*) from scores_clip s join images i on s.image_path = i.path "
                             "where s.model = 'api-model'")
    assert joined == [(7,)]
    sql = "select clip_score_n from leaderboard where model = 'api-model' and category = 'object'"
    assert query(data_dir, sql) == [(7,)]
