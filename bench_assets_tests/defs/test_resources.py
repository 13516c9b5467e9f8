"""The Dagster resources: stores built once per tick or step, config fields declared once."""

from __future__ import annotations

import os
import time
from dataclasses import fields

import dagster as dg
import pytest

import bench_assets.core.config as config_module
from bench_assets.compute.backend import ComputeSettings
from bench_assets.core.paths import DataPaths
from bench_assets.core.settings import GenerationSettings
from bench_assets.definitions import build_definitions
from bench_assets.defs.resources import ComputeResource, GenerationResource
from bench_assets.generation.runtime import RuntimeOptions
from dagster_helpers import materialize, register


@pytest.fixture
def config_reads(monkeypatch) -> list[str]:
    """Every read of a config.yaml from now on (load_config's one read of the file), as its path."""
    reads: list[str] = []
    real = config_module.read_yaml_mapping

    def counting(path, *args, **kwargs):
        reads.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(config_module, "read_yaml_mapping", counting)
    return reads


def _settled(models_dir) -> None:
    """Every model was copied in an hour ago, so the sensor launches it now."""
    past = time.time() - 3600
    for path in [models_dir, *models_dir.rglob("*")]:
        os.utime(path, (past, past))


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def("model_drop_sensor")
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources,
                                 repository_def=defs.get_repository_def()) as context:
        result = sensor.evaluate_tick(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_a_sensor_tick_reads_config_once_and_the_next_tick_reads_it_again(data_dir, instance, config_reads):
    defs = build_definitions(DataPaths(data_dir))
    _settled(data_dir / "models")
    config_reads.clear()  # building the definitions reads it too, once, at load time
    first = _tick(defs, instance, None)
    assert len(first.run_requests) == 2, "2 models launched, each checked in 2 categories"
    assert config_reads == [str(data_dir / "config.yaml")]
    # The next tick checks both registered models' 2 categories on disk: one read again, so an edit
    # of config.yaml (a new storage root) shows at the next tick, never later.
    _tick(defs, instance, first.cursor)
    assert config_reads == [str(data_dir / "config.yaml")] * 2


def test_an_images_step_reads_config_once(data_dir, instance, config_reads):
    defs = build_definitions(DataPaths(data_dir))
    register(instance, "tiny-a")
    config_reads.clear()
    result = materialize(defs, instance, "tiny-a", "object", asset_selection=[dg.AssetKey("images")])
    assert result.success
    assert config_reads == [str(data_dir / "config.yaml")], "warehouse, images and versions share one read"


@pytest.mark.parametrize("resource, sources", [
    (GenerationResource, (GenerationSettings,)),
    (ComputeResource, (ComputeSettings, RuntimeOptions)),
])
def test_resource_fields_are_the_dataclasses_fields_with_their_defaults(resource, sources):
    expected = {f.name: f.default for source in sources for f in fields(source) if f.name != "runtime"}
    declared = {name: info.default for name, info in resource.model_fields.items() if name != "backend"}
    assert declared == expected


def test_resource_values_reach_the_dataclasses():
    generation = GenerationResource(steps=7, prediction_type="v_prediction", min_gpu_memory_gb=12.5)
    assert generation.defaults() == GenerationSettings(steps=7, prediction_type="v_prediction", min_gpu_memory_gb=12.5)
    compute = ComputeResource(device="cpu", attention="eager", keep_scorers_loaded=3, modal_secret="s3-creds")
    assert compute.settings() == ComputeSettings(device="cpu", runtime=RuntimeOptions(attention="eager"),
                                                 keep_scorers_loaded=3, modal_secret="s3-creds")
