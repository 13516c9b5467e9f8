"""A new model kind is one ``MODEL_KINDS`` row, and nothing else.

Inside the test, a made-up one-file format (``.tinyckpt``: a JSON seed from
which the loader builds one of the demo's tiny random-weight pipelines) is
added as one row. A file of it dropped into ``data/models/`` is registered by
the real sensor, fingerprinted by its bytes, and loaded by the ``images``
step through the row's loader, which writes its images. Without the row the
same file is not a model at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from bench_assets.models.entry import ModelEntry
from bench_assets.models.kinds import MODEL_KINDS, FileFormat, KindRow, fingerprint_file
from bench_assets.models.registry import find_model, fingerprint, scan_models
from dagster_helpers import materialization_metadata, materialize

KIND = "tiny_ckpt"
MODEL = "tiny-new"
SETTINGS = {"width": 64, "height": 64, "steps": 2, "images_per_prompt": 2, "batch_size": 8, "sampler": "euler"}
LOADED: list[Path] = []  # what the row's loader was asked to load


def _is_tinyckpt(path: Path) -> bool:
    return path.suffix.lower() == ".tinyckpt"


def _tinyckpt_problem(path: Path) -> str | None:
    try:
        json.loads(path.read_text())["seed"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"{path}: not a tinyckpt file ({type(exc).__name__}: {exc})"
    return None


def _load_tinyckpt(entry: ModelEntry, torch_dtype: Any) -> Any:
    from bench_assets.demo.tiny_models import build_tiny_sd_pipeline

    LOADED.append(entry.path)
    return build_tiny_sd_pipeline(seed=json.loads(entry.path.read_text())["seed"]).to(torch_dtype)


TINY_CKPT = KindRow(
    file=FileFormat(matches=_is_tinyckpt, problem=_tinyckpt_problem),
    fingerprint=fingerprint_file,
    load=_load_tinyckpt,
)


def _drop(models: Path, seed: int, age: float) -> Path:
    path = models / f"{MODEL}.tinyckpt"
    path.write_text(json.dumps({"seed": seed}))
    (models / f"{MODEL}.settings.yaml").write_text(yaml.safe_dump(SETTINGS))
    past = time.time() - age  # copied in a while ago: the sensor need not wait for it to settle
    for target in models.rglob("*"):
        os.utime(target, (past, past))
    return path


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def("model_drop_sensor")
    with dg.build_sensor_context(instance_ref=instance.get_ref(), cursor=cursor, resources=defs.resources,
                                 repository_def=defs.get_repository_def()) as ctx:
        result = sensor.evaluate_tick(ctx)
    for request in result.dynamic_partitions_requests or []:  # what the daemon does
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def _requests_for(result: dg.SensorResult) -> list[dg.RunRequest]:
    return [r for r in result.run_requests if r.tags["bench/model"] == MODEL]


def test_a_model_kind_added_as_one_row_is_registered_fingerprinted_and_generated(data_dir, instance):
    models = data_dir / "models"
    checkpoint = _drop(models, seed=7, age=3600)
    LOADED.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(MODEL_KINDS, KIND, TINY_CKPT)
        defs = build_definitions(DataPaths(data_dir))

        first = _tick(defs, instance, None)
        assert MODEL in instance.get_dynamic_partitions("model")
        assert [r.tags["bench/reason"] for r in _requests_for(first)] == ["new"]

        entry = find_model(models, MODEL)
        assert (entry.kind, entry.error) == (KIND, None)
        before = fingerprint(entry)
        assert before == hashlib.sha256(checkpoint.read_bytes()).hexdigest()

        result = materialize(defs, instance, MODEL, "object", asset_selection=[dg.AssetKey("images")])
        assert result.success
        assert LOADED == [checkpoint], "the images step loads the model through the row's loader"
        meta = materialization_metadata(result, "images")
        assert (meta["expected"], meta["generated"], meta["failed"]) == (4, 4, 0)  # 2 prompts x 2 images
        assert len(list((data_dir / "images" / MODEL / "object").glob("*.png"))) == 4

        _drop(models, seed=8, age=600)  # new bytes: another model, as far as the benchmark knows
        changed = _tick(defs, instance, first.cursor)
        assert [r.tags["bench/reason"] for r in _requests_for(changed)] == ["changed"]
        assert fingerprint(find_model(models, MODEL)) != before

    assert KIND not in MODEL_KINDS
    assert MODEL not in {e.key for e in scan_models(models)}, "without its row, the file is not a model"
