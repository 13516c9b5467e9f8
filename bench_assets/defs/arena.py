"""The arena in Dagster: the ``arena_ratings`` asset and the sensor that refreshes it.

Votes arrive through the arena server, not through Dagster, so a sensor
watches the vote database (read-only: the newest vote id) and requests a
refresh when there are new votes; the leaderboard follows, with its
``human`` columns.
"""

from typing import Any, Sequence

import dagster as dg

from bench_assets.arena.results import MetricInfo, compute_results, write_results
from bench_assets.arena.store import arena_db_path, newest_vote_id
from bench_assets.defs.resources import BenchResource
from bench_assets.metrics.registry import METRICS
from bench_assets.storage.catalog import refresh_views

ARENA_SENSOR_SECONDS = 60


def metric_infos() -> list[MetricInfo]:
    return [MetricInfo(m.name, m.table, m.unit, m.higher_is_better) for m in METRICS.values()]


def build_arena_ratings_asset(metric_assets: Sequence[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    @dg.asset(
        name="arena_ratings",
        deps=list(metric_assets),
        group_name="leaderboard",
        kinds={"sqlite", "parquet"},
        description="Arena votes → Bradley–Terry ratings with 95% bootstrap intervals (table arena_ratings), "
                    "the votes (arena_votes) and how often each metric agrees with them (metric_agreement).",
    )
    def arena_ratings(context: dg.AssetExecutionContext, bench: BenchResource) -> dg.MaterializeResult:
        results = compute_results(bench.paths.root, bench.warehouse, metric_infos())
        write_results(bench.warehouse, results)
        catalog = refresh_views(bench.paths.duckdb, bench.warehouse)
        if catalog.skipped_reason:
            context.log.warning(f"views not refreshed: {catalog.skipped_reason}")
        overall = results.ratings.filter(results.ratings["category"] == "all")
        return dg.MaterializeResult(metadata={
            "votes": results.votes.height,
            "models": overall.height,
            "ratings": dg.MetadataValue.md(_markdown(overall, ["rank", "model", "rating", "ci_low", "ci_high", "votes"])),
            "agreement": dg.MetadataValue.md(_markdown(results.agreement, ["metric", "level", "agreement", "ci_low",
                                                                           "ci_high", "n"])),
        })

    return arena_ratings


def _markdown(frame: Any, columns: list[str]) -> str:
    if frame.is_empty():
        return "_no votes yet_"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.select(columns).iter_rows():
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def build_arena_sensor(job: Any) -> dg.SensorDefinition:
    @dg.sensor(name="arena_votes_sensor", job=job, minimum_interval_seconds=ARENA_SENSOR_SECONDS,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Refreshes arena ratings and the leaderboard when new arena votes arrive.")
    def arena_votes_sensor(context: dg.SensorEvaluationContext, bench: BenchResource) -> dg.SensorResult:
        newest = newest_vote_id(arena_db_path(bench.paths.root))
        if newest <= int(context.cursor or 0):
            return dg.SensorResult(skip_reason=dg.SkipReason("no new votes"))
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"votes-{newest}")], cursor=str(newest))

    return arena_votes_sensor
