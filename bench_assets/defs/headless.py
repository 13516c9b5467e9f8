"""Running the benchmark without the daemon: for ``make demo``, CI and cloud boxes.

It ticks the very same sensor and nightly schedule that ``dagster dev`` runs,
against the same instance (``DAGSTER_HOME``), and executes the runs they
request with the same ``benchmark`` job, then the leaderboard. Runs, events
and partitions land in the instance, so the UI shows them afterwards.

The sensor's cursor is kept in the instance's key-value store, so a second
``bench run`` sees nothing new and the schedule finds nothing missing.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import Callable

import dagster as dg

from bench_assets.core.drop_folder import WatchState
from bench_assets.defs.partitions import MODEL_DIM

CURSOR_KEY = "bench_assets/headless/model_drop_sensor"
SETTLE_TICKS = 5
SETTLE_PAUSE_SECONDS = 2.0
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class HeadlessSummary:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    leaderboard_ok: bool = False


def _sensor_tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> tuple[list[dg.RunRequest], bool]:
    """One tick; returns its run requests and whether some model is still settling."""
    sensor = defs.resolve_sensor_def("model_drop_sensor")
    cursor = instance.run_storage.get_cursor_values({CURSOR_KEY}).get(CURSOR_KEY)
    # An instance *ref* (as the daemon passes) lets Dagster validate partition keys
    # against the partitions this very tick adds.
    with dg.build_sensor_context(
        instance_ref=instance.get_ref(),
        cursor=cursor,
        resources=defs.resources,
        repository_def=defs.get_repository_def(),
    ) as context:
        tick = sensor.evaluate_tick(context)
    for request in tick.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(MODEL_DIM, list(request.partition_keys))
    if tick.cursor is not None:
        instance.run_storage.set_cursor_values({CURSOR_KEY: tick.cursor})
    return list(tick.run_requests or []), bool(WatchState.from_cursor(tick.cursor).pending)


def _partition_requests(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """Sensor ticks until no model is still being written, then one schedule tick."""
    sensor_requests, settling = _sensor_tick(defs, instance)
    for _ in range(SETTLE_TICKS):
        if not settling:
            break
        time.sleep(SETTLE_PAUSE_SECONDS)
        more, settling = _sensor_tick(defs, instance)
        sensor_requests += more
    schedule = defs.resolve_schedule_def("nightly_refresh")
    with (
        dg.partition_loading_context(dynamic_partitions_store=instance),
        dg.build_schedule_context(
            instance=instance,
            resources=defs.resources,
            repository_def=defs.get_repository_def(),
            scheduled_execution_time=datetime.datetime.now(datetime.timezone.utc),
        ) as context,
    ):
        scheduled = schedule.evaluate_tick(context)
    requests: dict[str, dg.RunRequest] = {}
    for request in [*sensor_requests, *(scheduled.run_requests or [])]:
        requests.setdefault(str(request.partition_key), request)
    return list(requests.values())


def _error_message(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            user = event.step_failure_data.user_failure_data
            if user and user.description:
                return user.description
            return error.message.strip() if error else "step failed"
    return "run failed"


def run_headless(
    defs: dg.Definitions, instance: dg.DagsterInstance, log: Callable[[str], None] = print
) -> HeadlessSummary:
    summary = HeadlessSummary()
    job = defs.resolve_job_def("benchmark")
    requests = _partition_requests(defs, instance)
    log(f"{len(requests)} partition run(s) to execute")
    for request in requests:
        key = str(request.partition_key)
        result = job.execute_in_process(
            partition_key=request.partition_key,
            instance=instance,
            tags=request.tags,
            run_config=QUIET,
            raise_on_error=False,
        )
        if result.success:
            summary.succeeded.append(key)
            log(f"  ok      {key}")
        else:
            summary.failed[key] = _error_message(result)
            log(f"  FAILED  {key}: {summary.failed[key]}")
    result = defs.resolve_job_def("refresh_leaderboard").execute_in_process(
        instance=instance, run_config=QUIET, raise_on_error=False
    )
    summary.leaderboard_ok = result.success
    return summary
