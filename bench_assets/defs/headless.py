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
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

import dagster as dg
import psutil

from bench_assets.models.drop_folder import WatchState
from bench_assets.defs.active_runs import ACTIVE_STATUSES, active_partitions, finished_since, model_run_request
from bench_assets.defs.distribution import DISTRIBUTION_JOB
from bench_assets.defs.partitions import run_partition_keys, split_model_reference
from bench_assets.defs.run_watch import free_run_slots

CURSOR_KEY = "bench_assets/headless/model_drop_sensor"
REFERENCE_CURSOR_KEY = "bench_assets/headless/reference_sensor"
SETTLE_TICKS = 5
SETTLE_PAUSE_SECONDS = 2.0
POOL = "gpu"
POOL_POLL_SECONDS = 1.0
# Dagster's console logger during a `bench run`: silent (CRITICAL is never used for a step's error), so the
# terminal shows the platform's own lines; a failed run's errors and stack traces go to the log file through
# `log_run_errors` and stay in the event log (the UI). `--verbose` brings them back to the terminal.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
VERBOSE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
RUN_ERRORS = logging.getLogger("bench_assets.runs")  # the CLI routes it to data/.cache/bench.log
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
    storage_lost: str | None = None  # the result store stopped answering: why (nothing after it was run)


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, sensor_name: str, cursor_key: str) -> dg.SensorResult:
    """One tick of a sensor, its cursor kept in the instance and its partition requests applied."""
    sensor = defs.resolve_sensor_def(sensor_name)
    cursor = instance.run_storage.get_cursor_values({cursor_key}).get(cursor_key)
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
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    if tick.cursor is not None:
        instance.run_storage.set_cursor_values({cursor_key: tick.cursor})
    return tick


def tick_model_sensor(defs: dg.Definitions, instance: dg.DagsterInstance) -> tuple[list[dg.RunRequest], bool]:
    """One tick of ``model_drop_sensor``; its run requests and whether some model is still settling."""
    tick = _tick(defs, instance, "model_drop_sensor", CURSOR_KEY)
    return list(tick.run_requests or []), bool(WatchState.from_cursor(tick.cursor).pending)


def run_distribution(defs: dg.Definitions, instance: dg.DagsterInstance, summary: HeadlessSummary, log: Log,
                     verbose: bool) -> None:
    """One tick of ``reference_sensor``, then the model × reference runs it asks for (after the model runs)."""
    requests = _tick(defs, instance, "reference_sensor", REFERENCE_CURSOR_KEY).run_requests or []
    job = defs.resolve_job_def(DISTRIBUTION_JOB)
    for request in requests:
        model, reference = split_model_reference(request.partition_key)
        label = f"{model} x reference {reference}"
        result = _execute(job, instance, verbose, partition_key=request.partition_key, tags=dict(request.tags))
        _record(summary, label, result, log)


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


def log_run_errors(result: dg.ExecuteInProcessResult) -> None:
    """Every error event of a finished run, stack traces included, to ``RUN_ERRORS`` (the log file)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            RUN_ERRORS.error("run %s, step %s failed:\n%s", result.run_id, event.step_key,
                             event.step_failure_data.error.to_string())
        elif event.is_failure and event.event_specific_data is not None:
            error = getattr(event.event_specific_data, "error", None)
            RUN_ERRORS.error("run %s failed: %s%s", result.run_id, event.message or "",
                             f"\n{error.to_string()}" if error is not None else "")


def one_line(cause: str) -> str:
    """A run's cause in one line: a failed step lists one ``model/category: reason`` line per partition.

    The same reason for every partition (a model that does not load) is said
    once; different reasons give the first and how many more (all of them are
    in the log file and the UI).
    """
    lines = [line for line in cause.splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else cause
    reasons = {_reason(line) for line in lines}
    if len(reasons) == 1:
        return reasons.pop()
    return f"{lines[0]} (and {len(lines) - 1} more line(s): see the log file)"


def _reason(line: str) -> str:
    """``model/category: reason`` -> ``reason``; any other line as it is."""
    key, sep, reason = line.partition(": ")
    return reason if sep and "/" in key else line


def _label(model: str, categories: list[str]) -> str:
    return f"{model} [{', '.join(categories)}]"


def _execute(job: dg.JobDefinition, instance: dg.DagsterInstance, verbose: bool,
             **kwargs) -> dg.ExecuteInProcessResult:
    """One in-process run; a failed one's errors and stack traces go to the log file (``log_run_errors``)."""
    result = job.execute_in_process(instance=instance, run_config=VERBOSE if verbose else QUIET,
                                    raise_on_error=False, **kwargs)
    if not result.success:
        log_run_errors(result)
    return result


def _run_model(job: dg.JobDefinition, instance: dg.DagsterInstance, request: dg.RunRequest,
               categories: list[str], started: float, summary: HeadlessSummary, log: Log, verbose: bool) -> None:
    """One model's run over the categories still to do; its outcome recorded in ``summary``."""
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
        return
    request = model_run_request(model, todo, categories, run_key=None, reason=request.tags.get("bench/reason", ""))
    wait_for_pool(instance, log)
    result = _execute(job, instance, verbose, partition_key=request.partition_key, tags={**request.tags, **_own_tags()})
    _record(summary, _label(model, todo), result, log)


def _record(summary: HeadlessSummary, label: str, result: dg.ExecuteInProcessResult, log: Log) -> None:
    """A finished run's outcome, in the summary and as one line."""
    if result.success:
        summary.succeeded.append(label)
        log(f"  ok      {label}")
    else:
        summary.failed[label] = one_line(root_cause(result))
        log(f"  FAILED  {label}: {summary.failed[label]}")


def run_headless(
    defs: dg.Definitions, instance: dg.DagsterInstance, log: Log = print, verbose: bool = False,
    storage_problem: Callable[[], str | None] = lambda: None,
) -> HeadlessSummary:
    """Every model run the sensor and the schedule ask for, then the leaderboard and the report.

    ``verbose``: Dagster's own log lines (warnings, errors with their stack traces) on the terminal too.
    ``storage_problem``: asked after a failed run; when the result store has
    gone (a stopped object store), the remaining runs and the refreshes are
    not attempted: each would fail the same way.
    """
    summary = HeadlessSummary()
    started = time.time()
    summary.reaped = reap_dead_runs(instance, log)
    job = defs.resolve_job_def("benchmark")
    categories = _categories(defs)
    requests = _partition_requests(defs, instance)
    log(f"{len(requests)} model run(s) to execute")
    for request in requests:
        failed_before = len(summary.failed)
        _run_model(job, instance, request, categories, started, summary, log, verbose)
        if len(summary.failed) > failed_before and (problem := storage_problem()):
            summary.storage_lost = f"the result store stopped answering: {problem}"
            return summary
    run_distribution(defs, instance, summary, log, verbose)
    summary.leaderboard_ok = _refresh(defs, instance, "leaderboard", log, verbose)
    # The report reads the leaderboard: rebuilt after it, as the daemon's automation would.
    summary.report_ok = _refresh(defs, instance, "report", log, verbose)
    return summary


def _refresh(defs: dg.Definitions, instance: dg.DagsterInstance, what: str, log: Log, verbose: bool) -> bool:
    """Run ``refresh_<what>``; a failure is one line naming its cause."""
    result = _execute(defs.resolve_job_def(f"refresh_{what}"), instance, verbose)
    if not result.success:
        log(f"{what} refresh failed: {one_line(root_cause(result))}")
    return result.success
