"""Software-defined assets: images → one score table per metric → leaderboard.

Each asset is a small function over resources: find the partition's inputs,
hand the work to the compute backend, write the rows to the warehouse, and
report what happened in the materialization metadata.
"""


import datetime as dt
import json
from dataclasses import dataclass
from typing import Callable, Sequence

import warnings

import dagster as dg
import polars as pl

from bench_assets.models.kinds import model_kind
from bench_assets.models.registry import ModelEntry, find_model, fingerprint
from bench_assets.prompts.prompt import PromptSuite
from bench_assets.core.settings import GenerationSettings, SettingsError
from bench_assets.compute.devices import DeviceError
from bench_assets.generation.generate import GenerationOutOfMemory, GenerationReport, GenerationRequest
from bench_assets.generation.pipelines import ModelLoadError
from bench_assets.generation.image_folder import ingest_image_folder
from bench_assets.generation.image_set import check_manifest_files, describe_problems, manifest_rows, plan_images
from bench_assets.metrics.base import ImageItem, Metric
from bench_assets.report.build import build_data_dir_report
from bench_assets.report.thumbnails import THUMBS_FOLDER, thumbnails_of
from bench_assets.arena.results import human_column
from bench_assets.storage.catalog import refresh_views
from bench_assets.storage.comparisons import COMPARISONS_TABLE
from bench_assets.storage.leaderboard import to_markdown
from bench_assets.storage.metric_columns import metric_columns
from bench_assets.storage.ranking import leaderboard_in_data_dir
from bench_assets.storage.status import (
    FAILURE_SCHEMA, FAILURES_TABLE, IMAGES_TABLE, StatusInputs, keep_partition_verdicts,
)
from bench_assets.storage.locks import PartitionBusy, partition_lock
from bench_assets.storage.warehouse import Warehouse
from bench_assets.defs.automation import results_automation_condition
from bench_assets.defs.partitions import run_partitions
from bench_assets.defs.resources import BenchResource, ComputeResource, GenerationResource, ScorersResource
from bench_assets.defs.decisions import decision_for

# Single-run backfill policies are "beta" in Dagster 1.13; they are what lets one run cover a model's categories.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")

IMAGES_CHECK = "no_failed_generations"
RANGE_CHECK = "values_in_range"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _model_entry(bench: BenchResource, model: str) -> ModelEntry:
    try:
        return find_model(bench.paths.models, model)
    except KeyError as exc:
        raise PartitionFailed(str(exc.args[0])) from None


class PartitionFailed(Exception):
    """This partition cannot be made; the run goes on with its other partitions.

    ``recorded``: its failure rows are already in the warehouse (per image), so
    no whole-partition row should replace them.
    """

    def __init__(self, message: str, recorded: bool = False) -> None:
        super().__init__(message)
        self.recorded = recorded


def _failure_rows(model: str, category: str, report: GenerationReport) -> list[dict]:
    return [
        {"model": model, "category": category, "stage": "generate", "prompt_id": f.prompt_id,
         "image_index": f.image_index, "seed": f.seed, "error": f.error, "failed_at": _now()}
        for f in report.failures
    ]


def _lock(bench: BenchResource, model: str, category: str, context: dg.AssetExecutionContext,
          should_stop: Callable[[], bool]):
    """Hold the partition while writing it: a second run of it waits (see ``storage.locks``)."""
    return partition_lock(bench.paths.cache / "partition_locks", model, category,
                          log=context.log.info, should_stop=should_stop)


def _end_of_run(context: dg.AssetExecutionContext, failed: dict[str, str], done: int) -> None:
    """Fail the step if any partition failed, naming each with its cause (the others are kept)."""
    if not failed:
        return
    lines = [f"{key}: {message}" for key, message in failed.items()]
    kept = f"; the run's other {done} partition(s) were written" if done else ""
    raise dg.Failure(description="\n".join(lines) + kept, allow_retries=False)


@dataclass
class _ModelPlan:
    """What one model's partitions of a run share: resolved once per run, not per category."""

    entry: ModelEntry
    settings: GenerationSettings
    model_fingerprint: str


def _plan_model(bench: BenchResource, generation: GenerationResource, suite: PromptSuite, model: str) -> _ModelPlan:
    entry = _model_entry(bench, model)
    if entry.error:
        raise PartitionFailed(entry.error)
    try:
        settings = generation.settings_for(entry, suite.generation)
    except (SettingsError, ValueError) as exc:
        raise PartitionFailed(str(exc)) from None
    return _ModelPlan(entry, settings, fingerprint(entry, bench.paths.cache))


def _generate_partition(
    context: dg.AssetExecutionContext, bench: BenchResource, compute: ComputeResource,
    plan: _ModelPlan, suite: PromptSuite, category: str, should_stop: Callable[[], bool],
) -> dict:
    """Fill one partition's image set and write its manifest; returns its metadata."""
    wh, model, images = bench.warehouse, plan.entry.key, bench.images
    prompts = tuple(suite.in_category(category))
    bench.versions.before_generation(model, category, plan.model_fingerprint, plan.entry.path)
    previous = wh.read_partition(IMAGES_TABLE, model, category)
    known = tuple(previous.to_dicts()) if previous is not None else ()
    request = GenerationRequest(
        entry=plan.entry, model_fingerprint=plan.model_fingerprint, category=category,
        prompts=prompts, settings=plan.settings, images=images, known=known,
    )
    try:
        if not model_kind(plan.entry.kind).loads_pipeline:  # an API model's images: ingest, load nothing
            report = ingest_image_folder(request, log=context.log.info, should_stop=should_stop)
        else:
            report = compute.runner(context).generate(request, log=context.log.info, should_stop=should_stop)
    except (ModelLoadError, DeviceError, GenerationOutOfMemory) as exc:
        raise PartitionFailed(str(exc)) from None
    # The manifest records every image written, also when a stop cut the set short.
    # Rows the writers returned and the previous manifest stand for unchanged objects: nothing is read back.
    jobs = plan_images(model, category, prompts, plan.settings)
    rows = manifest_rows(images, jobs, report.set_fingerprint, known=(*known, *report.written))
    wh.write_partition(IMAGES_TABLE, model, category, rows)
    failures = _failure_rows(model, category, report)
    wh.write_partition(FAILURES_TABLE, model, category, failures, schema=FAILURE_SCHEMA)
    # The report's thumbnails of the new images, made here with the images rather than by the next report
    # build: a new model's 40,000 would cost that build 800-3,200 s, and cost generating them a few percent.
    thumbnails = thumbnails_of(images, report.written, bench.paths.report / THUMBS_FOLDER)
    for problem in thumbnails.unreadable or []:
        context.log.warning(f"no thumbnail: {problem}")
    if not rows and not report.cancelled:
        first = report.failures[0].error if report.failures else "no image was produced"
        raise PartitionFailed(f"{plan.entry.path}: every generation failed: {first}", recorded=True)
    return {
        "partition": f"{model}/{category}", "images": len(rows), "expected": report.expected,
        "generated": report.generated, "already_present": report.present_before,
        "failed": len(failures), "first_error": failures[0]["error"] if failures else "",
        "set_fingerprint": report.set_fingerprint, "device": report.device, "dtype": report.dtype,
        "seconds_generating": report.seconds, "seconds_loading": report.load_seconds,
        "gpu_seconds": report.gpu_seconds, "gpu_seconds_partition": sum(r["gpu_seconds"] for r in rows),
        "pipeline_loaded": report.pipeline_loaded, "cancelled": report.cancelled,
        "thumbnails_made": thumbnails.created,
    }


def _sum(parts: list[dict], key: str) -> float:
    return float(sum(p[key] for p in parts))


def _partition_table(parts: list[dict], columns: Sequence[str]) -> dg.MetadataValue:
    """One markdown row per partition of the run, so a range run still shows each one."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(str(p.get(c, "")) for c in columns) + " |\n" for p in parts)
    return dg.MetadataValue.md(head + body)


def _images_metadata(parts: list[dict], compute: ComputeResource, settings: GenerationSettings | None) -> dict:
    generated, failed = int(_sum(parts, "generated")), int(_sum(parts, "failed"))
    seconds = _sum(parts, "seconds_generating")
    return {
        "partitions": len(parts),
        "images": int(_sum(parts, "images")),
        "expected": int(_sum(parts, "expected")),
        "generated": generated,
        "already_present": int(_sum(parts, "already_present")),
        "failed": failed,
        "seconds_generating": round(seconds, 3),
        "seconds_per_image": round(seconds / generated, 4) if generated else 0.0,
        "seconds_loading": round(_sum(parts, "seconds_loading"), 3),
        "pipeline_loads": sum(1 for p in parts if p["pipeline_loaded"]),
        "gpu_seconds": round(_sum(parts, "gpu_seconds"), 3),
        "gpu_seconds_partition": round(_sum(parts, "gpu_seconds_partition"), 3),
        "set_fingerprint": ", ".join(sorted({p["set_fingerprint"] for p in parts})),
        "device": ", ".join(sorted({p["device"] for p in parts})),
        "dtype": ", ".join(sorted({p["dtype"] for p in parts})),
        "backend": compute.backend,
        "status": "cached" if generated == 0 and not failed else "generated",
        "settings": dg.MetadataValue.json(settings.as_dict() if settings else {}),
        "by_partition": _partition_table(parts, ("partition", "images", "generated", "already_present", "failed")),
    }


def build_images_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="images",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
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
        suite = bench.suite()
        plans: dict[str, _ModelPlan] = {}
        parts: list[dict] = []
        failed: dict[str, str] = {}
        with compute.cancellation(context) as should_stop:
            for model, category in run_partitions(context):
                if should_stop():
                    context.log.warning(f"stop requested: {model}/{category} and later partitions not started")
                    break
                try:
                    if model not in plans:
                        plans[model] = _plan_model(bench, generation, suite, model)
                    plan = plans[model]
                    with _lock(bench, model, category, context, should_stop):
                        parts.append(_generate_partition(context, bench, compute, plan, suite, category, should_stop))
                except (PartitionFailed, PartitionBusy) as exc:
                    failed[f"{model}/{category}"] = str(exc)
                    if not getattr(exc, "recorded", False):
                        _record_load_failure(bench.warehouse, model, category, str(exc))
                    context.log.error(f"{model}/{category}: {exc}")
        _end_of_run(context, failed, len(parts))
        first_errors = [p["first_error"] for p in parts if p["first_error"]]
        settings = next((p.settings for p in plans.values()), None)
        return dg.MaterializeResult(
            metadata=_images_metadata(parts, compute, settings),
            check_results=[
                dg.AssetCheckResult(
                    check_name=IMAGES_CHECK,
                    passed=not first_errors,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"failed": int(_sum(parts, "failed")), "first_error": first_errors[0] if first_errors else ""},
                )
            ],
        )

    return images


def _record_load_failure(wh: Warehouse, model: str, category: str, message: str) -> None:
    """A whole-partition failure row, so ``bench status`` shows the cause."""
    row = {"model": model, "category": category, "stage": "load", "prompt_id": None,
           "image_index": None, "seed": None, "error": message, "failed_at": _now()}
    wh.write_partition(FAILURES_TABLE, model, category, [row], schema=FAILURE_SCHEMA)


def _image_items(bench: BenchResource, model: str, category: str, prompts: dict,
                 log: Callable[[str], None]) -> list[ImageItem]:
    """The partition's images as recorded, less any that are no longer in the image store as recorded.

    A deleted, truncated or replaced file is never scored: it is reported, and
    the next ``images`` materialization regenerates it.
    """
    manifest = bench.warehouse.read_partition(IMAGES_TABLE, model, category)
    if manifest is None or manifest.is_empty():
        raise PartitionFailed(f"no images for {model}/{category}: materialize 'images' for this partition first")
    rows = [r for r in manifest.iter_rows(named=True) if r["prompt_id"] in prompts]
    images = bench.images
    checks = check_manifest_files(rows, images)
    if problems := describe_problems(checks):
        log(f"{model}/{category}: not scoring images that changed since generation: {problems}; "
            "the next 'images' run regenerates them")
    return [
        ImageItem(model, category, prompts[r["prompt_id"]], r["image_index"], r["seed"], check.key, r["sha256"],
                  images)
        for r, check in zip(rows, checks)
        if check.problem is None
    ]


def _score_partition(
    context: dg.AssetExecutionContext, bench: BenchResource, scorers: ScorersResource,
    compute: ComputeResource, metric_cls: type[Metric], model: str, category: str, prompts: dict,
) -> dict:
    """Score one partition's images (cached rows kept) and write its table; returns its metadata."""
    name, table, wh = metric_cls.name, metric_cls.table, bench.warehouse
    items = _image_items(bench, model, category, prompts, context.log.warning)
    previous = wh.read_partition(table, model, category)
    existing = previous.to_dicts() if previous is not None else []
    outcome = compute.runner(context).score(name, scorers.for_metric(name), items, existing, log=context.log.info)
    if outcome.computed or len(outcome.rows) != len(existing):
        wh.write_partition(table, model, category, outcome.rows)
    return {"partition": f"{model}/{category}", "rows": outcome.rows, "computed": outcome.computed,
            "cached": outcome.cached, "skipped_prompts": outcome.skipped_prompts,
            "gpu_seconds": outcome.gpu_seconds}


def _keep_verdict(context: dg.AssetExecutionContext, inputs: StatusInputs, entries: dict[str, ModelEntry],
                  bench: BenchResource, model: str, category: str) -> None:
    """Judge the partition just scored and keep its ``bench status`` verdict (``storage.status_cache``), so the
    first status after a run reads a verdict per partition rather than every image and score row again."""
    try:
        if model not in entries:
            entries[model] = _model_entry(bench, model)
        keep_partition_verdicts(inputs, entries[model], [category])
    except Exception as exc:  # noqa: BLE001 - a verdict not kept costs the next status its speed, never a score
        context.log.warning(f"{model}/{category}: its status verdict was not kept ({exc}); `bench status` judges it")


def _score_run(context: dg.AssetExecutionContext, bench: BenchResource, scorers: ScorersResource,
               compute: ComputeResource, generation: GenerationResource, metric_cls: type[Metric]) -> list[dict]:
    """Score every partition of the run; a failed one fails the step at the end, the others are kept."""
    suite = bench.suite()
    prompts = suite.by_id()
    status_inputs = StatusInputs(bench.warehouse, bench.images, suite, scorers.metrics(), generation.defaults(),
                                 bench.paths.cache)
    entries: dict[str, ModelEntry] = {}
    parts: list[dict] = []
    failed: dict[str, str] = {}
    for model, category in run_partitions(context):
        try:
            with _lock(bench, model, category, context, lambda: False):
                parts.append(_score_partition(context, bench, scorers, compute, metric_cls, model, category, prompts))
                _keep_verdict(context, status_inputs, entries, bench, model, category)
        except (PartitionFailed, PartitionBusy) as exc:
            failed[f"{model}/{category}"] = str(exc)
            context.log.error(f"{model}/{category}: {exc}")
    _end_of_run(context, failed, len(parts))
    return parts


def _metric_result(metric_cls: type[Metric], parts: list[dict], compute: ComputeResource) -> dg.MaterializeResult:
    """The run's metadata (totals, mean, one row per partition) and the values-in-range check."""
    low, high = metric_cls.value_range
    values = [r["value"] for p in parts for r in p["rows"] if r["value"] is not None]
    bad = [v for v in values if not (low <= v <= high)]
    computed = int(_sum(parts, "computed"))
    for part in parts:
        part["n_rows"] = len(part["rows"])
    return dg.MaterializeResult(
        metadata={
            "status": "cached" if computed == 0 else "computed",
            "partitions": len(parts),
            "rows": sum(len(p["rows"]) for p in parts),
            "computed": computed,
            "cached": int(_sum(parts, "cached")),
            "skipped_prompts": int(_sum(parts, "skipped_prompts")),
            "gpu_seconds": round(_sum(parts, "gpu_seconds"), 3),
            "backend": compute.backend,
            "mean": float(sum(values) / len(values)) if values else float("nan"),
            "table": metric_cls.table,
            "by_partition": _partition_table(parts, ("partition", "n_rows", "computed", "cached")),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=RANGE_CHECK,
                passed=not bad,
                metadata={"out_of_range": len(bad), "range": f"[{low}, {high}]"},
            )
        ],
    )


def build_metric_asset(
    metric_cls: type[Metric], partitions_def: dg.PartitionsDefinition, upstream: dg.AssetsDefinition
) -> dg.AssetsDefinition:
    name, table = metric_cls.name, metric_cls.table

    @dg.asset(
        name=name,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
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
        generation: GenerationResource,
    ) -> dg.MaterializeResult:
        return _metric_result(metric_cls, _score_run(context, bench, scorers, compute, generation, metric_cls),
                              compute)

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


def build_leaderboard_asset(
    metric_assets: Sequence[dg.AssetsDefinition], comparisons: dg.AssetsDefinition
) -> dg.AssetsDefinition:
    columns = metric_columns()

    @dg.asset(
        name="leaderboard",
        deps=[*metric_assets, comparisons],
        group_name="leaderboard",
        kinds={"duckdb", "parquet"},
        automation_condition=results_automation_condition(),
        description="Per model (latest version), per category and overall: mean, 95% bootstrap CI, n, rank, "
                    "rank interval and tier of every metric, and the composite overall score.",
    )
    def leaderboard(context: dg.AssetExecutionContext, bench: BenchResource) -> dg.MaterializeResult:
        wh = bench.warehouse
        computed_at = _now()
        # unchanged models' bootstrap figures, per-prompt sums and GPU seconds read back from the caches
        wide, long, figures = leaderboard_in_data_dir(bench.paths, bench.versions, columns, decision_for(bench),
                                                      wh.read_table(COMPARISONS_TABLE), IMAGES_TABLE)
        wide = wide.with_columns(pl.lit(computed_at).alias("computed_at"))  # so SQL readers see its age
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
                "bootstraps_computed": figures["bootstraps_computed"],
                "bootstraps_reused": figures["bootstraps_reused"],
                "duckdb": str(bench.paths.duckdb),
                "computed_at": computed_at,
                "views": ", ".join(catalog.views) or catalog.skipped_reason or "",
                "report": dg.MetadataValue.url((bench.paths.report / "index.html").resolve().as_uri()),
            }
        )

    return leaderboard


def _leaders_markdown(leaders: dict[str, str]) -> str:
    lines = ["| metric | leader |", "|---|---|", *[f"| {metric} | {model} |" for metric, model in leaders.items()]]
    return "\n".join(lines)


def build_report_asset(leaderboard: dg.AssetsDefinition, distribution: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The report follows the leaderboard and the distribution scores (its reference-set pages)."""

    @dg.asset(
        name="report",
        deps=[leaderboard, distribution],
        group_name="leaderboard",
        kinds={"html"},
        automation_condition=results_automation_condition(),
        description="The static report in data/report/: leaderboard, compare, drill-down, model pages, plots, export.",
    )
    def report(context: dg.AssetExecutionContext, bench: BenchResource, generation: GenerationResource
               ) -> dg.MaterializeResult:
        summary = build_data_dir_report(bench.paths, images_per_prompt=generation.images_per_prompt)
        for problem in summary.thumbnails.unreadable or []:
            context.log.warning(f"no thumbnail: {problem}")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(summary.index)),
                "url": dg.MetadataValue.url(summary.url),
                "models": summary.models,
                "images": summary.images,
                "leaders": dg.MetadataValue.md(_leaders_markdown(summary.leaders)),
                "thumbnails_created": summary.thumbnails.created,
                "thumbnails_cached": summary.thumbnails.cached,
                "thumbnails_removed": summary.thumbnails.removed,
                "files": summary.files,
                "models_written": summary.pages_written,  # the others' files were unchanged, so kept
                "models_carried_over": summary.carried_over,
                "seconds": round(summary.seconds, 3),
            }
        )

    return report
