"""The nightly refresh: request every partition that is missing, partial,
failed or stale. The leaderboard follows through its automation condition
once those runs have finished."""


from typing import Any

import dagster as dg

from bench_assets.models.registry import ModelEntry, scan_models
from bench_assets.storage.status import PartitionStatus, StatusInputs, suite_statuses
from bench_assets.defs.active_runs import active_partitions, model_run_request
from bench_assets.defs.partitions import MODEL_DIM
from bench_assets.defs.resources import BenchResource, GenerationResource, ScorersResource


def _needs_a_run(status: PartitionStatus, entry: ModelEntry) -> bool:
    """Not done, and not an invalid entry's failed partition: a run would fail with the same error; the
    sensor launches it again once the file (and so its fingerprint) changes."""
    return not (status.state == "done" or (entry.error and status.state == "failed"))


def build_nightly_schedule(job: Any) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="nightly_refresh",
        job=job,
        cron_schedule="0 2 * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Each night: materialize whatever is missing or stale, then the leaderboard.",
    )
    def nightly_refresh(
        context: dg.ScheduleEvaluationContext,
        bench: BenchResource,
        generation: GenerationResource,
        scorers: ScorersResource,
    ):
        registered = set(context.instance.get_dynamic_partitions(MODEL_DIM))
        suite = bench.suite()
        inputs = StatusInputs(bench.warehouse, bench.images, suite, scorers.metrics(), generation.defaults(),
                              bench.paths.cache)
        busy = active_partitions(context.instance, suite.categories)  # queued or running: never requested twice
        # Registered models only: the sensor registers new ones.
        entries = [entry for entry in scan_models(bench.paths.models) if entry.key in registered]
        tick_id = context.scheduled_execution_time.strftime("%Y%m%dT%H%M%S")
        requests = []
        # verify: every recorded image compared with the disk, even a partition whose verdict is kept (the
        # daily safety net for an image rewritten in place, which `bench status` alone does not see)
        for entry, statuses in suite_statuses(inputs, entries, skip=busy, verify=True):
            todo = [status for status in statuses if _needs_a_run(status, entry)]
            if todo:
                requests.append(model_run_request(
                    entry.key, [status.category for status in todo], suite.categories,
                    run_key=f"{entry.key}:{tick_id}", reason="nightly:" + ",".join(sorted({s.state for s in todo})),
                ))
        if not requests:
            return dg.SkipReason("every registered partition is up to date or already queued")
        return requests

    return nightly_refresh
