"""Running the benchmark without the daemon: for ``make demo``, CI and cloud boxes.

It ticks the very same sensor and nightly schedule that ``dagster dev`` runs,
against the same instance (``DAGSTER_HOME``), and executes the runs they
request with the same ``benchmark`` job (one run per model, covering its
categories), then the leaderboard. Runs, events and partitions land in the
instance, so the UI shows them afterwards. All runs execute in this process,
so each model and scorer loads once per model (``compute/worker_cache.py``).

The sensor's cursor is kept in the instance's key-value store, so a second
``bench run`` sees nothing new and the schedule finds nothing missing.

A ``bench run`` killed with ``kill -9`` leaves its run STARTED and its ``gpu``
pool slot claimed. Its runs carry the process id, so the next ``bench run``
finds them, marks them failed and frees their slots before it starts
(the daemon path has Dagster's run monitoring for the same).
"""

from __future__ import annotations

import datetime
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

import dagster as dg
import psutil

from bench_assets.models.drop_folder import WatchState
from bench_assets.defs.active_runs import ACTIVE_STATUSES, active_partitions, finished_since, model_run_request
from bench_assets.defs.partitions import MODEL_DIM, run_partition_keys
from bench_assets.defs.run_watch import free_run_slots

CURSOR_KEY = "bench_assets/headless/model_drop_sensor"
SETTLE_TICKS = 5
SETTLE_PAUSE_SECONDS = 2.0
POOL = "gpu"
POOL_POLL_SECONDS = 1.0
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
PID_TAG, PID_START_TAG, HOST_TAG = "bench/pid", "bench/pid_start", "bench/host"

Log = Callable[[str], None]


@dataclass
class HeadlessSummary:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    reaped: list[str] = field(default_factory=list)
    leaderboard_ok: bool = False
    report_ok: bool = False


def tick_model_sensor(defs: dg.Definitions, instance: dg.DagsterInstance) -> tuple[list[dg.RunRequest], bool]:
    """One tick of ``model_drop_sensor``, its cursor kept in the instance; its run requests and whether
    some model is still settling."""
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


def _schedule_tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
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
        return list(schedule.evaluate_tick(context).run_requests or [])


def _categories(defs: dg.Definitions) -> list[str]:
    return list(defs.resources["bench"].suite().categories)


def _partition_requests(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """Sensor ticks until no model is still being written, then one schedule tick; one run per model."""
    sensor_requests, settling = tick_model_sensor(defs, instance)
    for _ in range(SETTLE_TICKS):
        if not settling:
            break
        time.sleep(SETTLE_PAUSE_SECONDS)
        more, settling = tick_model_sensor(defs, instance)
        sensor_requests += more
    categories = _categories(defs)
    wanted: dict[str, list[str]] = {}
    reasons: dict[str, str] = {}
    for request in [*sensor_requests, *_schedule_tick(defs, instance)]:
        for model, category in run_partition_keys(dict(request.tags), request.partition_key, categories):
            wanted.setdefault(model, [])
            if category not in wanted[model]:
                wanted[model].append(category)
            reasons.setdefault(model, request.tags.get("bench/reason", "requested"))
    return [
        model_run_request(model, sorted(cats, key=categories.index), categories, run_key=None, reason=reasons[model])
        for model, cats in wanted.items()
    ]


def _own_tags() -> dict[str, str]:
    """Who runs this run: the next ``bench run`` checks the process is still there."""
    me = psutil.Process()
    return {PID_TAG: str(me.pid), PID_START_TAG: f"{me.create_time():.3f}", HOST_TAG: socket.gethostname()}


def _process_alive(tags: dict[str, str]) -> bool:
    try:
        process = psutil.Process(int(tags[PID_TAG]))
        return f"{process.create_time():.3f}" == tags.get(PID_START_TAG) and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, ValueError, KeyError):
        return False


def reap_dead_runs(instance: dg.DagsterInstance, log: Log = print) -> list[str]:
    """Mark this machine's headless runs whose process is gone as failed; free every finished run's slots."""
    reaped = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE_STATUSES)):
        tags = dict(run.tags)
        if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname() or _process_alive(tags):
            continue
        instance.report_run_failed(run, f"the `bench run` process (pid {tags[PID_TAG]}) that ran it is gone")
        free_run_slots(instance, run.run_id)
        reaped.append(run.run_id)
        log(f"marked run {run.run_id[:8]} failed: its process {tags[PID_TAG]} is gone; freed its slots")
    storage = instance.event_log_storage
    if getattr(storage, "supports_global_concurrency_limits", False):
        for claim in storage.get_concurrency_info(POOL).claimed_slots:
            run = instance.get_run_by_id(claim.run_id)
            if run is None or run.is_finished:
                free_run_slots(instance, claim.run_id)
    return reaped


def wait_for_pool(instance: dg.DagsterInstance, log: Log = print, poll: float = POOL_POLL_SECONDS) -> None:
    """Wait (Ctrl-C works) while a live run elsewhere holds every ``gpu`` slot; say so once."""
    storage = instance.event_log_storage
    if not getattr(storage, "supports_global_concurrency_limits", False):
        return
    announced = False
    while True:
        info = storage.get_concurrency_info(POOL)
        limit = info.limit if info.limit is not None else info.slot_count
        if not limit or len(info.claimed_slots) < limit:
            return
        if not announced:
            holders = ", ".join(sorted({c.run_id[:8] for c in info.claimed_slots}))
            log(f"waiting for the {POOL!r} pool: all {limit} slot(s) held by run(s) {holders} (Ctrl-C to stop)")
            announced = True
        time.sleep(poll)
        reap_dead_runs(instance, log)


def root_cause(result: dg.ExecuteInProcessResult) -> str:
    """The innermost error of the first failed step, not Dagster's 'Error occurred while executing' wrapper."""
    for event in result.all_events:
        if not (event.is_step_failure and event.step_failure_data):
            continue
        user = event.step_failure_data.user_failure_data
        if user and user.description:
            return user.description
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:
            error = error.cause
        if error is None:
            return "step failed"
        return f"{error.cls_name}: {error.message.strip()}" if error.cls_name else error.message.strip()
    return "run failed"


def _label(model: str, categories: list[str]) -> str:
    return f"{model} [{', '.join(categories)}]"


def run_headless(
    defs: dg.Definitions, instance: dg.DagsterInstance, log: Log = print
) -> HeadlessSummary:
    summary = HeadlessSummary()
    started = time.time()
    summary.reaped = reap_dead_runs(instance, log)
    job = defs.resolve_job_def("benchmark")
    categories = _categories(defs)
    requests = _partition_requests(defs, instance)
    log(f"{len(requests)} model run(s) to execute")
    for request in requests:
        pairs = run_partition_keys(dict(request.tags), request.partition_key, categories)
        model = pairs[0][0]
        # Another process (a second `bench run`, the daemon) may be on these partitions, or done them meanwhile.
        busy = active_partitions(instance, categories)
        done = finished_since(instance, categories, started)
        todo = [c for m, c in pairs if (m, c) not in busy and (m, c) not in done]
        if not todo:
            why = "being run by another process" if any(p in busy for p in pairs) else "done by another run meanwhile"
            summary.skipped[model] = why
            log(f"  skip    {_label(model, [c for _, c in pairs])}: {why}")
            continue
        request = model_run_request(model, todo, categories, run_key=None, reason=request.tags.get("bench/reason", ""))
        wait_for_pool(instance, log)
        result = job.execute_in_process(
            partition_key=request.partition_key,
            instance=instance,
            tags={**request.tags, **_own_tags()},
            run_config=QUIET,
            raise_on_error=False,
        )
        label = _label(model, todo)
        if result.success:
            summary.succeeded.append(label)
            log(f"  ok      {label}")
        else:
            summary.failed[label] = root_cause(result)
            log(f"  FAILED  {label}: {summary.failed[label]}")
    result = defs.resolve_job_def("refresh_leaderboard").execute_in_process(
        instance=instance, run_config=QUIET, raise_on_error=False
    )
    summary.leaderboard_ok = result.success
    if not result.success:
        log(f"leaderboard refresh failed: {root_cause(result)}")
    # The report reads the leaderboard: rebuilt after it, as the daemon's automation would.
    result = defs.resolve_job_def("refresh_report").execute_in_process(
        instance=instance, run_config=QUIET, raise_on_error=False)
    summary.report_ok = result.success
    if not result.success:
        log(f"report refresh failed: {root_cause(result)}")
    return summary
