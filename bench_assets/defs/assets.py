"""Software-defined assets: images → one score table per metric → leaderboard.

Each asset is a small function over resources: find the partition's inputs,
hand the work to the compute backend, write the rows to the warehouse, and
report what happened in the materialization metadata.
"""


import datetime as dt
import json
from pathlib import Path
from typing import Sequence

import dagster as dg
import polars as pl

from bench_assets.core.models import ModelEntry, ModelKind, find_model, fingerprint
from bench_assets.core.prompts import PromptSuite
from bench_assets.core.settings import SettingsError
from bench_assets.compute.devices import DeviceError
from bench_assets.generation.generate import GenerationOutOfMemory, GenerationReport, GenerationRequest
from bench_assets.generation.pipelines import ModelLoadError
from bench_assets.generation.image_folder import ingest_image_folder
from bench_assets.generation.image_set import manifest_rows, plan_images
from bench_assets.metrics.base import ImageItem, Metric
from bench_assets.metrics.registry import METRICS
from bench_assets.arena.results import human_column
from bench_assets.storage.catalog import refresh_views
from bench_assets.storage.leaderboard import MetricColumn, compute_leaderboard, gpu_costs, to_markdown, widen
from bench_assets.storage.status import FAILURE_SCHEMA, FAILURES_TABLE, IMAGES_TABLE
from bench_assets.storage.warehouse import Warehouse
from bench_assets.defs.partitions import split_key
from bench_assets.defs.resources import BenchResource, ComputeResource, GenerationResource, ScorersResource

IMAGES_CHECK = "no_failed_generations"
RANGE_CHECK = "values_in_range"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _fail_partition(wh: Warehouse, model: str, category: str, message: str) -> dg.Failure:
    """Record a whole-partition failure (so ``bench status`` shows it) and build the Failure."""
    row = {"model": model, "category": category, "stage": "load", "prompt_id": None,
           "image_index": None, "seed": None, "error": message, "failed_at": _now()}
    wh.write_partition(FAILURES_TABLE, model, category, [row], schema=FAILURE_SCHEMA)
    return dg.Failure(description=message, allow_retries=False)


def _model_entry(bench: BenchResource, model: str) -> ModelEntry:
    try:
        return find_model(bench.paths.models, model)
    except KeyError as exc:
        raise dg.Failure(description=str(exc.args[0]), allow_retries=False) from None


def _failure_rows(model: str, category: str, report: GenerationReport) -> list[dict]:
    return [
        {"model": model, "category": category, "stage": "generate", "prompt_id": f.prompt_id,
         "image_index": f.image_index, "seed": f.seed, "error": f.error, "failed_at": _now()}
        for f in report.failures
    ]


def build_images_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="images",
        partitions_def=partitions_def,
        pool="gpu",
        group_name="generation",
        kinds={"pytorch", "parquet"},
        check_specs=[dg.AssetCheckSpec(IMAGES_CHECK, asset="images", description="every image generated")],
        description="Generated PNGs for one model × prompt category, plus their manifest rows.",
    )
    def images(
        context: dg.AssetExecutionContext,
        bench: BenchResource,
        generation: GenerationResource,
        compute: ComputeResource,
    ) -> dg.MaterializeResult:
        model, category = split_key(context)
        wh = bench.warehouse
        entry = _model_entry(bench, model)
        if entry.error:
            raise _fail_partition(wh, model, category, entry.error)
        suite = bench.suite()
        try:
            settings = generation.settings_for(entry, suite.generation)
        except (SettingsError, ValueError) as exc:
            raise _fail_partition(wh, model, category, str(exc)) from None
        prompts = tuple(suite.in_category(category))
        request = GenerationRequest(
            entry=entry,
            model_fingerprint=fingerprint(entry, bench.paths.cache),
            category=category,
            prompts=prompts,
            settings=settings,
            images_dir=str(bench.paths.images),
        )
        # A run terminated from the UI stops between batches; the manifest below
        # still records every image written, then the stop takes effect.
        with compute.cancellation() as should_stop:
            try:
                if entry.kind == ModelKind.IMAGE_FOLDER:  # an API model's images: ingest, load nothing
                    report = ingest_image_folder(request, log=context.log.info, should_stop=should_stop)
                else:
                    report = compute.runner(context).generate(request, log=context.log.info, should_stop=should_stop)
            except (ModelLoadError, DeviceError, GenerationOutOfMemory) as exc:
                raise _fail_partition(wh, model, category, str(exc)) from None
            jobs = plan_images(bench.paths.images, model, category, prompts, settings)
            rows = manifest_rows(model, category, jobs, report.set_fingerprint)
            wh.write_partition(IMAGES_TABLE, model, category, rows)
            failures = _failure_rows(model, category, report)
            wh.write_partition(FAILURES_TABLE, model, category, failures, schema=FAILURE_SCHEMA)
        if not rows:
            first = report.failures[0].error if report.failures else "no image was produced"
            raise dg.Failure(description=f"{entry.path}: every generation failed: {first}")
        return dg.MaterializeResult(
            metadata={
                "images": len(rows),
                "expected": report.expected,
                "generated": report.generated,
                "already_present": report.present_before,
                "failed": len(report.failures),
                "set_fingerprint": report.set_fingerprint,
                "device": report.device,
                "dtype": report.dtype,
                "seconds_generating": round(report.seconds, 3),
                "seconds_loading": round(report.load_seconds, 3),
                "gpu_seconds": round(report.gpu_seconds, 3),
                "gpu_seconds_partition": round(sum(r["gpu_seconds"] for r in rows), 3),
                "backend": compute.backend,
                "status": "cached" if report.generated == 0 and not report.failures else "generated",
                "settings": dg.MetadataValue.json(settings.as_dict()),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=IMAGES_CHECK,
                    passed=not failures,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"failed": len(failures), "first_error": failures[0]["error"] if failures else ""},
                )
            ],
        )

    return images


def _image_items(bench: BenchResource, model: str, category: str) -> list[ImageItem]:
    manifest = bench.warehouse.read_partition(IMAGES_TABLE, model, category)
    if manifest is None or manifest.is_empty():
        raise dg.Failure(
            description=f"no images for {model}/{category}: materialize 'images' for this partition first"
        )
    prompts = bench.suite().by_id()
    return [
        ImageItem(model, category, prompts[r["prompt_id"]], r["image_index"], r["seed"],
                  Path(r["path"]), r["sha256"])
        for r in manifest.iter_rows(named=True)
        if r["prompt_id"] in prompts
    ]


def build_metric_asset(
    metric_cls: type[Metric], partitions_def: dg.PartitionsDefinition, upstream: dg.AssetsDefinition
) -> dg.AssetsDefinition:
    name, table = metric_cls.name, metric_cls.table

    @dg.asset(
        name=name,
        partitions_def=partitions_def,
        deps=[upstream],
        pool="gpu",
        group_name="metrics",
        kinds={"pytorch", "parquet"},
        check_specs=[dg.AssetCheckSpec(RANGE_CHECK, asset=name, description="values within the metric's range")],
        description=f"{metric_cls.description or name}: rows in warehouse table '{table}'.",
        code_version=metric_cls.version,
    )
    def _metric(
        context: dg.AssetExecutionContext,
        bench: BenchResource,
        scorers: ScorersResource,
        compute: ComputeResource,
    ) -> dg.MaterializeResult:
        model, category = split_key(context)
        wh = bench.warehouse
        items = _image_items(bench, model, category)
        previous = wh.read_partition(table, model, category)
        existing = previous.to_dicts() if previous is not None else []
        outcome = compute.runner(context).score(name, scorers.for_metric(name), items, existing, log=context.log.info)
        if outcome.computed or len(outcome.rows) != len(existing):
            wh.write_partition(table, model, category, outcome.rows)
        low, high = metric_cls.value_range
        values = [r["value"] for r in outcome.rows if r["value"] is not None]
        bad = [v for v in values if not (low <= v <= high)]
        return dg.MaterializeResult(
            metadata={
                "status": outcome.status,
                "rows": len(outcome.rows),
                "computed": outcome.computed,
                "cached": outcome.cached,
                "skipped_prompts": outcome.skipped_prompts,
                "gpu_seconds": round(outcome.gpu_seconds, 3),
                "backend": compute.backend,
                "mean": float(sum(values) / len(values)) if values else float("nan"),
                "table": table,
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=RANGE_CHECK,
                    passed=not bad,
                    metadata={"out_of_range": len(bad), "range": f"[{low}, {high}]"},
                )
            ],
        )

    return _metric


def prompts_frame(suite: PromptSuite) -> pl.DataFrame:
    """The prompt suite as a table, so SQL can join scores to prompt text and metadata."""
    return pl.DataFrame(
        [
            {"prompt_id": p.id, "category": p.category, "prompt": p.prompt,
             "negative_prompt": p.negative_prompt, "difficulty": p.difficulty,
             "metadata": json.dumps(p.metadata, sort_keys=True), "suite": suite.name}
            for p in suite.prompts
        ],
        schema={"prompt_id": pl.Utf8, "category": pl.Utf8, "prompt": pl.Utf8, "negative_prompt": pl.Utf8,
                "difficulty": pl.Utf8, "metadata": pl.Utf8, "suite": pl.Utf8},
    )


def metric_columns(metrics: Sequence[type[Metric]]) -> list[MetricColumn]:
    return [MetricColumn(m.name, m.table, m.higher_is_better, m.summary_columns, m.combine) for m in metrics]


def build_leaderboard_asset(metric_assets: Sequence[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    columns = metric_columns(list(METRICS.values()))

    @dg.asset(
        name="leaderboard",
        deps=list(metric_assets),
        group_name="leaderboard",
        kinds={"duckdb", "parquet"},
        automation_condition=(
            dg.AutomationCondition.any_deps_updated().since_last_handled()
            & ~dg.AutomationCondition.any_deps_in_progress()
            & ~dg.AutomationCondition.in_progress()
        ),
        description="Per model, per category and overall: mean, 95% bootstrap CI, n and rank of every metric.",
    )
    def leaderboard(context: dg.AssetExecutionContext, bench: BenchResource) -> dg.MaterializeResult:
        wh = bench.warehouse
        long = compute_leaderboard(wh, columns)
        wide = widen(long, columns, gpu_costs(wh, IMAGES_TABLE, [c.table for c in columns]))
        wide = human_column(wide, wh)  # the arena's rating, interval and votes (nulls before any vote)
        wh.write_table("leaderboard", wide)
        wh.write_table("leaderboard_long", long)
        wh.write_table("prompts", prompts_frame(bench.suite()))
        catalog = refresh_views(bench.paths.duckdb, wh)
        if catalog.skipped_reason:
            context.log.warning(f"views not refreshed: {catalog.skipped_reason}")
        return dg.MaterializeResult(
            metadata={
                "leaderboard": dg.MetadataValue.md(to_markdown(wide, columns)),
                "models": wide["model"].n_unique() if not wide.is_empty() else 0,
                "rows": wide.height,
                "duckdb": str(bench.paths.duckdb),
                "views": ", ".join(catalog.views) or catalog.skipped_reason or "",
            }
        )

    return leaderboard
