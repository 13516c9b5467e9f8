"""The one Definitions object: what ``dagster dev -w workspace.yaml`` serves."""

from __future__ import annotations

import dagster as dg

from bench_assets.compute.backend import configured_compute
from bench_assets.core.config import generation_defaults, load_config
from bench_assets.core.paths import DataPaths
from bench_assets.defs.arena import build_arena_ratings_asset, build_arena_sensor
from bench_assets.defs.assets import build_images_asset, build_leaderboard_asset, build_metric_asset, build_report_asset
from bench_assets.defs.decisions import build_comparisons_asset
from bench_assets.defs.distribution import build_distribution_asset, build_distribution_job, build_reference_sensor
from bench_assets.defs.partitions import build_partitions
from bench_assets.defs.resources import BenchResource, ComputeResource, GenerationResource, ScorersResource
from bench_assets.defs.schedules import build_nightly_schedule
from bench_assets.defs.sensors import build_freshness_sensor, build_model_sensor
from bench_assets.metrics.registry import METRICS, metric_options


def build_definitions(paths: DataPaths | None = None) -> dg.Definitions:
    """Everything is built from the data directory, so tests can point at a temp folder."""
    paths = paths or DataPaths.from_env()
    config = load_config(paths)
    partitions = build_partitions(paths)
    images = build_images_asset(partitions)
    metric_assets = [build_metric_asset(cls, partitions, images) for cls in METRICS.values()]
    comparisons = build_comparisons_asset(metric_assets)
    arena_ratings = build_arena_ratings_asset(metric_assets)
    leaderboard = build_leaderboard_asset([*metric_assets, arena_ratings], comparisons)
    distribution = build_distribution_asset(images)
    report = build_report_asset(leaderboard, distribution)
    distribution_job = build_distribution_job(distribution)
    benchmark_job = dg.define_asset_job(
        "benchmark",
        selection=dg.AssetSelection.assets(images, *metric_assets),
        partitions_def=partitions,
        # Every step in the run's own process: one interpreter start-up per run, and
        # models loaded by one step's partitions stay loaded for the next (compute/worker_cache.py).
        executor_def=dg.in_process_executor,
        description="Generate and score a model's categories (one partition, or a range of them).",
    )
    leaderboard_job = dg.define_asset_job(
        "refresh_leaderboard", selection=dg.AssetSelection.assets(comparisons, leaderboard)
    )
    report_job = dg.define_asset_job("refresh_report", selection=dg.AssetSelection.assets(report))
    arena_job = dg.define_asset_job(
        "refresh_arena", selection=dg.AssetSelection.assets(arena_ratings, leaderboard),
        description="Arena votes → ratings and metric agreement, then the leaderboard's human column.",
    )
    return dg.Definitions(
        assets=[images, *metric_assets, comparisons, arena_ratings, leaderboard, report, distribution],
        jobs=[benchmark_job, leaderboard_job, report_job, arena_job, distribution_job],
        sensors=[build_model_sensor(benchmark_job), build_freshness_sensor(), build_arena_sensor(arena_job),
                 build_reference_sensor(distribution_job)],
        schedules=[build_nightly_schedule(benchmark_job)],
        resources={
            "bench": BenchResource(data_dir=str(paths.root), suite_path=str(paths.default_suite())),
            "generation": GenerationResource(**generation_defaults(config).as_dict()),
            "scorers": ScorersResource(options=metric_options(config)),
            "compute": ComputeResource(**configured_compute(config), data_dir=str(paths.root)),
        },
    )


defs = build_definitions()
