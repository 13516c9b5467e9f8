"""The distribution metrics in Dagster: the ``distribution_scores`` asset (model × reference) and the reference sensor.

Thin: scoring is ``storage.distribution_scoring.score_against_reference``, the
sensor's decisions are ``references.watch.decide_references``. The asset
depends on the model's images of every category; its partitions are
``model × reference`` (two dynamic dimensions). The sensor registers the
reference sets of ``data/references/`` by fingerprint and requests every
model × new or changed reference set, and a model with new or changed images ×
every reference set; a model with a benchmark run in flight waits for its end.
"""


import hashlib
import warnings
from typing import Any

import dagster as dg

from bench_assets.core.config import load_config
from bench_assets.defs.partitions import (
    CATEGORY_DIM,
    MODEL_DIM,
    REFERENCE_DIM,
    model_reference_key,
    model_reference_partitions,
    reference_partitions,
    split_model_reference,
)
from bench_assets.defs.active_runs import active_partitions
from bench_assets.defs.resources import BenchResource, ScorersResource
from bench_assets.defs.sensors import suite_categories
from bench_assets.references.watch import ReferenceWatch, decide_references
from bench_assets.storage.distribution import DISTRIBUTION_TABLE
from bench_assets.storage.distribution_scoring import open_reference_set, open_reference_sets, score_against_reference
from bench_assets.storage.status import IMAGES_TABLE

REFERENCE_SENSOR_INTERVAL_SECONDS = 30
DISTRIBUTION_JOB = "distribution"

# A model × reference partition reads the model's images of every category (MultiPartitionMapping is
# "beta" in Dagster 1.13: its warning would print on every `bench` command that loads the definitions).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    IMAGES_OF_EVERY_CATEGORY = dg.MultiPartitionMapping({
        MODEL_DIM: dg.DimensionPartitionMapping(MODEL_DIM, dg.IdentityPartitionMapping()),
        CATEGORY_DIM: dg.DimensionPartitionMapping(REFERENCE_DIM, dg.AllPartitionMapping()),
    })


def _device() -> str:
    import torch  # heavy; only the step that extracts features needs it

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_distribution_asset(images: dg.AssetsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=DISTRIBUTION_TABLE,
        partitions_def=model_reference_partitions,
        deps=[dg.AssetDep(images, partition_mapping=IMAGES_OF_EVERY_CATEGORY)],
        pool="gpu",
        group_name="metrics",
        kinds={"pytorch", "parquet"},
        description="FID, KID, CMMD, FD-DINOv2, precision/recall of a model's images against a reference set "
                    f"(warehouse table '{DISTRIBUTION_TABLE}').",
    )
    def distribution_scores(context: dg.AssetExecutionContext, bench: BenchResource,
                            scorers: ScorersResource) -> dg.MaterializeResult:
        model, name = split_model_reference(context.partition_key)  # type: ignore[arg-type]
        config = load_config(bench.paths)
        reference = open_reference_set(bench.paths, config, name)  # raises ReferenceSetError naming why
        run = score_against_reference(
            bench.warehouse, bench.images, model, bench.suite().categories, reference,
            metric_config=scorers.options, distribution_config=config.distribution, device=_device())
        for problem in reference.problems:
            context.log.warning(f"reference set {name}: left out {problem}")
        return dg.MaterializeResult(metadata={
            "rows": len(run.rows), "features_extracted": run.extracted, "features_reused": run.reused,
            "already_current": run.skipped, "reference_fingerprint": reference.fingerprint,
            "reference_images": len(reference.images), "left_out": len(reference.problems)})

    return distribution_scores


def build_distribution_job(asset: dg.AssetsDefinition) -> Any:
    return dg.define_asset_job(DISTRIBUTION_JOB, selection=dg.AssetSelection.assets(asset),
                               partitions_def=model_reference_partitions, executor_def=dg.in_process_executor,
                               description="Score a model's images against a reference set.")


def model_image_stamps(bench: BenchResource, models: list[str]) -> dict[str, str]:
    """Each model with images: a stamp of its manifest files (sizes, mtimes), from one listing, no file read."""
    infos = bench.warehouse.store.infos(IMAGES_TABLE)
    stamps: dict[str, list[str]] = {}
    for key, info in infos.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[1] in models:
            stamps.setdefault(parts[1], []).append(f"{key}:{info.size}:{info.mtime_ns}:{info.etag}")
    return {model: hashlib.sha256("|".join(sorted(keys)).encode()).hexdigest() for model, keys in stamps.items()}


def reference_tick(context: Any, bench: BenchResource) -> dg.SensorResult:
    """One tick: register reference sets, request the model × reference partitions that need scoring."""
    found, broken = open_reference_sets(bench.paths, load_config(bench.paths))
    for name, why in broken.items():
        context.log.warning(f"reference set {name}: {why}")
    # A model still generating is left out (its stamp forgotten), so it is requested once, when its run is over.
    busy = {model for model, _ in active_partitions(context.instance, suite_categories(bench))}
    models = [m for m in context.instance.get_dynamic_partitions(MODEL_DIM) if m not in busy]
    fingerprints = {name: ref.fingerprint for name, ref in found.items()}
    decision = decide_references(ReferenceWatch.from_cursor(context.cursor), fingerprints,
                                 model_image_stamps(bench, models))
    stamps = decision.state.models
    requests = [
        dg.RunRequest(partition_key=model_reference_key(model, ref),
                      run_key=f"{model}:{ref}:{fingerprints[ref][:16]}:{stamps[model][:16]}",
                      tags={"bench/reason": "new or changed reference set or images"})
        for model, ref in decision.requests
    ]
    partition_requests = []
    if decision.new_references:
        partition_requests.append(reference_partitions.build_add_request(decision.new_references))
    if decision.removed_references:
        partition_requests.append(reference_partitions.build_delete_request(decision.removed_references))
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=partition_requests,
                           cursor=decision.state.to_cursor(),
                           skip_reason=None if requests else "no new or changed reference sets or model images")


def build_reference_sensor(job: Any) -> dg.SensorDefinition:
    @dg.sensor(name="reference_sensor", job=job, minimum_interval_seconds=REFERENCE_SENSOR_INTERVAL_SECONDS,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Registers reference sets in data/references/ and scores every model against them.")
    def reference_sensor(context: dg.SensorEvaluationContext, bench: BenchResource) -> dg.SensorResult:
        return reference_tick(context, bench)

    return reference_sensor
