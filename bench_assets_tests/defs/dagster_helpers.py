"""Helpers for tests that drive the real Dagster machinery."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from bench_assets.core.paths import DataPaths
from bench_assets.defs.partitions import MODEL_DIM, partition_key


def requested_partitions(requests, categories=("object", "colour")) -> list[str]:
    """The "category|model" keys a list of run requests covers (a request may be a model's range)."""
    from bench_assets.defs.partitions import run_partition_keys

    keys = set()
    for request in requests or []:
        for model, category in run_partition_keys(dict(request.tags), request.partition_key, list(categories)):
            keys.add(f"{category}|{model}")
    return sorted(keys)


def register(instance: dg.DagsterInstance, *models: str) -> None:
    instance.add_dynamic_partitions(MODEL_DIM, list(models))


def materialize(defs: dg.Definitions, instance: dg.DagsterInstance, model: str, category: str, **kwargs):
    """Run the benchmark job (the job the sensor launches) for one partition."""
    return defs.resolve_job_def("benchmark").execute_in_process(
        partition_key=partition_key(model, category), instance=instance, raise_on_error=False, **kwargs
    )


def refresh_leaderboard(defs: dg.Definitions, instance: dg.DagsterInstance):
    return defs.resolve_job_def("refresh_leaderboard").execute_in_process(instance=instance)


def query(data: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(DataPaths(data).duckdb), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key == dg.AssetKey(asset):
            return {k: v.value for k, v in mat.metadata.items()}
    raise AssertionError(f"no materialization of {asset}")
