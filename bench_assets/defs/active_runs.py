"""Which partitions already have a run queued or in progress.

The sensor, the nightly schedule and ``bench run`` each decide what to
request from what is on disk; without this, the schedule firing while the
sensor's runs wait in the queue requests the same partitions again.
"""

from __future__ import annotations

from typing import Sequence

import dagster as dg

from bench_assets.defs.partitions import model_range_tags, partition_key, run_partition_keys

ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def active_partitions(
    instance: dg.DagsterInstance, categories: Sequence[str], job_name: str = "benchmark"
) -> set[tuple[str, str]]:
    """(model, category) pairs covered by a run of ``job_name`` that has not finished."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=ACTIVE_STATUSES))
    active: set[tuple[str, str]] = set()
    for run in runs:
        active.update(run_partition_keys(dict(run.tags), run.tags.get("dagster/partition"), categories))
    return active


def finished_since(
    instance: dg.DagsterInstance, categories: Sequence[str], since: float, job_name: str = "benchmark"
) -> set[tuple[str, str]]:
    """(model, category) pairs that a run started after ``since`` (a timestamp) has completed.

    A second ``bench run`` over the same models may have done a partition
    while this one was busy with another: it is not run again.
    """
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=[dg.DagsterRunStatus.SUCCESS]))
    done: set[tuple[str, str]] = set()
    for run in runs:
        record = instance.get_run_record_by_id(run.run_id)
        if record is None or record.create_timestamp.timestamp() < since:
            continue
        done.update(run_partition_keys(dict(run.tags), run.tags.get("dagster/partition"), categories))
    return done


def model_run_request(
    model: str, categories: Sequence[str], suite_categories: Sequence[str], run_key: str | None, reason: str
) -> dg.RunRequest:
    """One run for ``model``'s ``categories`` (a partition range), tagged for the run queue's per-model limit."""
    tags = {"bench/model": model, "bench/reason": reason}
    if len(categories) == 1:
        return dg.RunRequest(run_key=run_key, partition_key=partition_key(model, categories[0]), tags=tags)
    tags.update(model_range_tags(model, categories, suite_categories))
    return dg.RunRequest(run_key=run_key, tags=tags)
