"""The nightly schedule asks for exactly what is missing or stale."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from dagster_helpers import materialize, register, requested_partitions


def _evaluate(defs, instance) -> list[str]:
    schedule = defs.resolve_schedule_def("nightly_refresh")
    with dg.build_schedule_context(
        instance=instance,
        resources=defs.resources,
        repository_def=defs.get_repository_def(),
        scheduled_execution_time=dt.datetime(2026, 1, 1, 2, tzinfo=dt.timezone.utc),
    ) as context:
        result = schedule.evaluate_tick(context)
    return requested_partitions(result.run_requests)


def test_requests_missing_then_nothing_then_stale(data_dir, instance):
    defs = build_definitions(DataPaths(data_dir))
    register(instance, "tiny-a")  # tiny-b is not registered yet: the sensor's job, not the schedule's
    assert _evaluate(defs, instance) == ["colour|tiny-a", "object|tiny-a"]

    assert materialize(defs, instance, "tiny-a", "object").success
    assert _evaluate(defs, instance) == ["colour|tiny-a"]
    assert materialize(defs, instance, "tiny-a", "colour").success
    assert _evaluate(defs, instance) == []

    # A recorded image changed on disk: the schedule (the sensor's daily safety net) asks for its partition.
    victim = sorted((DataPaths(data_dir).images / "tiny-a" / "colour").glob("*.png"))[0]
    original = victim.read_bytes()
    victim.write_bytes(original[:300])
    assert _evaluate(defs, instance) == ["colour|tiny-a"]
    victim.write_bytes(original)
    assert _evaluate(defs, instance) == [], "the same bytes again (a new mtime): nothing to do"

    sidecar = data_dir / "models" / "tiny-a.settings.yaml"
    sidecar.write_text(sidecar.read_text().replace("steps: 2", "steps: 3"))
    assert _evaluate(defs, instance) == ["colour|tiny-a", "object|tiny-a"], "new settings make both stale"
