"""From the vote database to the warehouse: votes, ratings and metric agreement as tables.

Called by the ``arena_ratings`` asset. Reads votes read-only (the server keeps
voting meanwhile) and the score tables through the warehouse; writes three
whole tables, each replaced atomically like every other warehouse table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import polars as pl

from bench_assets.arena.agreement import MetricScores, agreement_table
from bench_assets.arena.ratings import LEFT_SCORE, RatingFit, ratings_table, with_human_column
from bench_assets.arena.store import arena_db_path, read_votes
from bench_assets.storage.warehouse import Warehouse

VOTES_TABLE = "arena_votes"
RATINGS_TABLE = "arena_ratings"
AGREEMENT_TABLE = "metric_agreement"


@dataclass(frozen=True)
class MetricInfo:
    """The little the arena needs to know about a metric (from the metric registry)."""

    name: str
    table: str
    unit: str
    higher_is_better: bool


@dataclass(frozen=True)
class ArenaResults:
    votes: pl.DataFrame
    ratings: pl.DataFrame
    agreement: pl.DataFrame


def votes_for_sql(votes: pl.DataFrame) -> pl.DataFrame:
    """The stored votes plus the winning model (null for a tie or both bad), for easy SQL."""
    score = pl.col("choice").replace_strict(LEFT_SCORE, return_dtype=pl.Float64)
    winner = (pl.when(score == 1.0).then(pl.col("model_left"))
              .when(score == 0.0).then(pl.col("model_right")).otherwise(None).alias("winner"))
    return votes.with_columns(winner)


def _metric_scores(warehouse: Warehouse, metric: MetricInfo) -> MetricScores:
    frame = warehouse.read_table(metric.table)
    needed = ("model", "value", "image_sha256") if metric.unit == "image" else ("model", "value")
    if frame.is_empty() or any(c not in frame.columns for c in needed):
        frame = pl.DataFrame(schema={c: pl.Float64 if c == "value" else pl.Utf8 for c in needed})
    return MetricScores(metric.name, metric.unit, metric.higher_is_better,
                        frame.select(*needed).with_columns(pl.col("value").cast(pl.Float64)))


def compute_results(data_root: Path, warehouse: Warehouse, metrics: Sequence[MetricInfo]) -> ArenaResults:
    votes = read_votes(arena_db_path(data_root))
    fit = RatingFit.from_votes(votes) if not votes.is_empty() else None
    agreement = agreement_table(votes, [_metric_scores(warehouse, m) for m in metrics], fit)
    return ArenaResults(votes_for_sql(votes), ratings_table(votes), agreement)


def write_results(warehouse: Warehouse, results: ArenaResults) -> None:
    warehouse.write_table(VOTES_TABLE, results.votes)
    warehouse.write_table(RATINGS_TABLE, results.ratings)
    warehouse.write_table(AGREEMENT_TABLE, results.agreement)


def human_column(leaderboard: pl.DataFrame, warehouse: Warehouse) -> pl.DataFrame:
    """The leaderboard with ``human_rating``/``_ci_low``/``_ci_high``/``_votes`` (nulls before any vote)."""
    return with_human_column(leaderboard, warehouse.read_table(RATINGS_TABLE))
