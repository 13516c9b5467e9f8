"""The compute-backend protocol and its table: what the assets call, and adding a backend as one row."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from bench_assets.compute.backend import BACKENDS, BackendKind, ComputeSettings, PoolSize
from bench_assets.compute.protocol import ComputeBackend
from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from bench_assets.defs.partitions import partition_key
from bench_assets.generation.generate import GenerationFailure, GenerationReport
from bench_assets.generation.image_set import plan_images
from bench_assets_tests.defs.dagster_helpers import register

DEFS = Path(__file__).resolve().parents[2] / "bench_assets" / "defs"


def test_every_backend_in_the_table_is_a_compute_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_GPUS", "0")
    monkeypatch.delenv("BENCH_MODAL_MAX_CONTAINERS", raising=False)
    for name, kind in BACKENDS.items():
        backend = kind.build(ComputeSettings(data_dir=str(tmp_path)), None)
        assert isinstance(backend, ComputeBackend), name
        with backend.stop_signals() as should_stop:
            assert should_stop() is False, name
        assert kind.gpu_pool().slots >= 1, name
    assert BACKENDS["local"].gpu_pool() == PoolSize(1, "0 local GPU(s) found")
    assert BACKENDS["modal"].gpu_pool().slots == 8


def test_the_dagster_layer_reaches_backends_only_through_the_table():
    """No module in defs/ imports a backend's own module: assets call the protocol, nothing else."""
    own_modules = {"bench_assets.compute.local", "bench_assets.compute.modal_pipes", "bench_assets.compute.modal_app"}
    for path in DEFS.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not imported & own_modules, f"{path.name} imports {imported & own_modules}"


@dataclass
class NoGpuHere:
    """A backend with no GPU at all: every image it is asked for fails, saying why."""

    calls: list[str] = field(default_factory=list)

    def generate(self, request, log=lambda _: None, should_stop=lambda: False) -> GenerationReport:
        self.calls.append(f"generate {request.entry.key}/{request.category}")
        jobs = plan_images(request.entry.key, request.category, request.prompts, request.settings)
        failures = [GenerationFailure(j.prompt.id, j.index, j.seed, "no GPU in this queue") for j in jobs]
        return GenerationReport("set-fp", "none", "fp32", expected=len(jobs), present_before=0, failures=failures)

    def score(self, metric_name, options, items, existing, log=lambda _: None):
        raise AssertionError("nothing to score: every image failed")

    def stop_signals(self):
        from contextlib import nullcontext

        self.calls.append("stop_signals")
        return nullcontext(lambda: False)


def test_a_new_backend_is_one_row_in_the_table(data_dir, instance, monkeypatch):
    """Selected by config, built by the resource, called by the asset: no asset or resource edited."""
    backend = NoGpuHere()
    row = BackendKind(build=lambda settings, context: backend, gpu_pool=lambda: PoolSize(2, "queue"),
                      preflight=lambda section: None)
    monkeypatch.setitem(BACKENDS, "no-gpu", row)
    monkeypatch.delenv("BENCH_COMPUTE", raising=False)
    config = yaml.safe_load((data_dir / "config.yaml").read_text())
    (data_dir / "config.yaml").write_text(yaml.safe_dump({**config, "compute": {"backend": "no-gpu"}}))
    defs = build_definitions(DataPaths(data_dir))
    register(instance, "tiny-a")

    result = defs.resolve_job_def("benchmark").execute_in_process(
        partition_key=partition_key("tiny-a", "object"), instance=instance, raise_on_error=False,
        asset_selection=[dg.AssetKey("images")])
    assert not result.success
    assert backend.calls == ["stop_signals", "generate tiny-a/object"]
    failure = [e for e in result.all_events if e.is_step_failure][0]
    assert "every generation failed: no GPU in this queue" in failure.step_failure_data.error.message
    failures = pl.read_parquet(DataPaths(data_dir).warehouse / "generation_failures" / "tiny-a" / "object.parquet")
    assert failures.height == 4 and set(failures["error"]) == {"no GPU in this queue"}


def test_an_unknown_backend_name_fails_the_step_naming_the_known_ones(data_dir):
    from bench_assets.defs.resources import ComputeResource

    with pytest.raises(dg.Failure, match=r"compute backend 'slurm' is not one of \('local', 'modal'\)"):
        ComputeResource(backend="slurm", data_dir=str(data_dir)).runner(None)
