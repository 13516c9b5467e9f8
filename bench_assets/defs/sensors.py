"""The drop-folder sensor: a model copied into ``data/models/`` becomes a
partition and gets its runs, with no code edited.

The decision logic lives in :mod:`bench_assets.core.drop_folder`; this module
only turns decisions into Dagster requests. A broken model is still launched:
its own partition run fails with a message naming the file, and the sensor
keeps ticking for everyone else.
"""


import time
from typing import Any

import dagster as dg

from bench_assets.core.drop_folder import WatchState, decide
from bench_assets.core.models import scan_models
from bench_assets.storage.status import images_made_from
from bench_assets.defs.partitions import MODEL_DIM, model_partitions, partition_key
from bench_assets.defs.resources import BenchResource

SENSOR_INTERVAL_SECONDS = 20


def build_model_sensor(job: Any) -> dg.SensorDefinition:
    @dg.sensor(
        name="model_drop_sensor",
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Registers models dropped into data/models/ and launches their runs.",
    )
    def model_drop_sensor(context: dg.SensorEvaluationContext, bench: BenchResource) -> dg.SensorResult:
        paths = bench.paths
        entries = scan_models(paths.models)
        decision = decide(entries, WatchState.from_cursor(context.cursor), time.time(), paths.cache)
        categories = bench.suite().categories
        known = set(context.instance.get_dynamic_partitions(MODEL_DIM))
        new_keys = sorted({launch.entry.key for launch in decision.launches} - known)
        run_requests = [
            dg.RunRequest(
                run_key=f"{launch.entry.key}:{category}:{launch.fingerprint[:16]}",
                partition_key=partition_key(launch.entry.key, category),
                tags={"bench/model": launch.entry.key, "bench/reason": launch.reason},
            )
            for launch in decision.launches
            for category in categories
            # Already generated from these exact weights (e.g. by `bench run`): nothing to do.
            if images_made_from(bench.warehouse, launch.entry.key, category) != launch.fingerprint
        ]
        for launch in decision.launches:
            context.log.info(f"{launch.reason} model {launch.entry.key} ({launch.entry.path})")
        for entry in decision.waiting:
            context.log.info(f"waiting for {entry.path} to stop changing")
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[model_partitions.build_add_request(new_keys)] if new_keys else [],
            cursor=decision.state.to_cursor(),
            skip_reason=None if run_requests else "no new or changed models",
        )

    return model_drop_sensor
