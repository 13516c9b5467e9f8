"""The nightly refresh: request every partition that is missing, partial,
failed or stale. The leaderboard follows through its automation condition
once those runs have finished."""


from typing import Any

import dagster as dg

from bench_assets.models.registry import fingerprint, scan_models
from bench_assets.storage.status import partition_status
from bench_assets.defs.active_runs import active_partitions, model_run_request
from bench_assets.defs.partitions import MODEL_DIM
from bench_assets.defs.resources import BenchResource, GenerationResource, ScorersResource


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
        metrics = scorers.metrics()
        busy = active_partitions(context.instance, suite.categories)
        requests, images = [], bench.images
        tick_id = context.scheduled_execution_time.strftime("%Y%m%dT%H%M%S")
        for entry in scan_models(bench.paths.models):
            if entry.key not in registered:
                continue  # the sensor registers new models
            model_fp = None if entry.error else fingerprint(entry, bench.paths.cache)
            settings = generation.settings_for(entry, suite.generation)
            todo, states = [], set()
            for category in suite.categories:
                if (entry.key, category) in busy:
                    continue  # queued or running already: never requested twice
                status = partition_status(
                    bench.warehouse, entry.key, category, suite.in_category(category),
                    settings, metrics, model_fp, images=images,
                )
                if status.state == "done" or (entry.error and status.state == "failed"):
                    continue
                todo.append(category)
                states.add(status.state)
            if todo:
                requests.append(model_run_request(
                    entry.key, todo, suite.categories, run_key=f"{entry.key}:{tick_id}",
                    reason="nightly:" + ",".join(sorted(states)),
                ))
        if not requests:
            return dg.SkipReason("every registered partition is up to date or already queued")
        return requests

    return nightly_refresh
