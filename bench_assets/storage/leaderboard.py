"""The leaderboard: per model, per category and overall, each metric's mean,
a 95% bootstrap confidence interval, the number of items behind it, and a rank.

The bootstrap resamples *prompts*, not images: the images of one prompt are
correlated, so resampling them independently would give intervals that are
too narrow. Expanded percentile intervals (``stats.resampling``, as every other
interval here), 1000 resamples, fixed seed (reproducible).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import polars as pl

from bench_assets.core.errors import BenchError
from bench_assets.stats.resampling import bootstrap_counts, figure, percentile_interval, percentile_intervals
from bench_assets.storage.partition_seconds import PartitionSeconds
from bench_assets.storage.resample_cache import ResampleCache, no_cache
from bench_assets.storage.warehouse import Warehouse

OVERALL = "all"
# What every reader says of a warehouse where no model has a score (none run yet, or every one failed).
NO_SCORES_YET = ("no model has scores yet: run `bench run` (or `make demo`); "
                 "`bench status` names any model that failed")
EVERY_CATEGORY = "*"  # not a category: every row of the leaderboard, each category's and the overall ones
N_BOOT = 1000
CONFIDENCE = 0.95


class UnknownCategory(BenchError, ValueError):
    """A category the leaderboard has no row for; the message names the ones it has."""


def check_category(category: str, known: Sequence[str]) -> None:
    """Fail on a category that is not among ``known`` (the leaderboard's), naming them.

    ``EVERY_CATEGORY`` always passes, and so does ``OVERALL`` before anything
    was scored (``bench run`` prints the empty board then).
    """
    if category == EVERY_CATEGORY or category in known or (not known and category == OVERALL):
        return
    raise UnknownCategory(f"no category {category!r} in the leaderboard; known: "
                          f"{', '.join(known) or 'none yet (run `bench run`)'}, or {EVERY_CATEGORY!r} for every row")


def _mean_summary() -> dict[str, pl.Expr]:
    return {"value": pl.col("value"), "n": pl.lit(1.0)}


def _mean_combine(totals: dict[str, Any]) -> Any:
    return totals["value"] / totals["n"]


@dataclass(frozen=True)
class MetricColumn:
    """What the leaderboard needs to know about a metric.

    ``summary`` gives per-row expressions summed per prompt and ``combine``
    turns those sums into the aggregate (default: mean of ``value``), so that
    metrics defined on model-level means (OneIG's text score, GenEval's
    overall) get the right figure and a bootstrap interval for it.
    """

    name: str
    table: str
    higher_is_better: bool = True
    summary: Callable[[], dict[str, pl.Expr]] = field(default=_mean_summary, compare=False)
    combine: Callable[[dict[str, Any]], Any] = field(default=_mean_combine, compare=False)


def bootstrap_ci(
    columns: dict[str, np.ndarray],
    combine: Callable[[dict[str, Any]], Any] = _mean_combine,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> tuple[float, float]:
    """95% CI of ``combine`` over per-prompt column sums, resampling prompts.

    The same procedure as the paired, composite and arena intervals
    (``stats.resampling``): the expanded percentile interval, so that a
    category of ten prompts keeps its coverage (a plain 2.5% cut covers ~89%
    there, see bench_assets_tests/storage/test_leaderboard.py).
    """
    clusters = len(next(iter(columns.values())))
    estimates = figure(columns, combine, bootstrap_counts(clusters, n_boot, seed))
    return percentile_interval(estimates, clusters)


def prompt_sums(scores: pl.DataFrame, metric: MetricColumn) -> pl.DataFrame:
    """Per (model, category, prompt): each summary column summed (``sum_<name>``) and the row count.

    The unit every bootstrap and paired test resamples. Sorted, so a fixed-seed
    bootstrap resamples the same clusters every time.
    """
    summary = metric.summary()
    return (
        scores.with_columns(*[expr.cast(pl.Float64).alias(f"sum_{name}") for name, expr in summary.items()])
        .group_by("model", "category", "prompt_id")
        .agg(*[pl.col(f"sum_{name}").sum() for name in summary], pl.len().alias("rows"))
        .sort("model", "category", "prompt_id")
    )


def finite_scores(scores: pl.DataFrame) -> pl.DataFrame:
    """Rows with a value: a null or NaN value is a failed score, not a zero."""
    return scores.filter(pl.col("value").is_not_null() & pl.col("value").is_finite())


SCORE_KEYS = ("model", "category", "prompt_id", "image_index")


def score_columns(metric: MetricColumn) -> list[str]:
    """The columns of a score table that ``prompt_sums`` and a paired comparison read: the keys, ``value`` and
    whatever the metric's summary expressions name (GenEval's ``task``, OneIG's columns)."""
    named = {name for expr in metric.summary().values() for name in expr.meta.root_names()}
    return [*SCORE_KEYS, "value", *sorted(named - {*SCORE_KEYS, "value"})]


def read_scores(warehouse: Warehouse, metric: MetricColumn, model: str | None = None) -> pl.DataFrame:
    """The metric's finite score rows (one ``model``'s, or every one's), only ``score_columns`` read: a
    hundred models' tables are read a metric at a time, a tenth of their bytes, never all at once."""
    scores = warehouse.read_columns(metric.table, score_columns(metric), model)
    return finite_scores(scores) if "value" in scores.columns else pl.DataFrame()


def _summarise(per_prompt: pl.DataFrame, metric: MetricColumn, cache: ResampleCache | None) -> list[dict]:
    """Per (model, slice) of ``prompt_sums``: the point figure and, with a ``cache``, its interval
    (without one: NaN, for callers that read the points only)."""
    rows = []
    overall = per_prompt.with_columns(pl.lit(OVERALL).alias("category")).sort("model", "prompt_id")
    for frame in (per_prompt, overall):
        groups = list(_model_slices(frame, metric))
        n_prompts = [len(next(iter(columns.values()))) for _, _, columns, _ in groups]
        intervals = np.full((len(groups), 2), np.nan) if cache is None else percentile_intervals(
            [cache.figures(metric.name, model, columns, metric.combine, N_BOOT) for model, _, columns, _ in groups],
            n_prompts)
        for (model, category, columns, n), prompts, (low, high) in zip(groups, n_prompts, intervals):
            point = metric.combine({name: np.array([c.sum()]) for name, c in columns.items()})[0]
            rows.append({"model": model, "category": category, "metric": metric.name, "mean": float(point),
                         "ci_low": float(low), "ci_high": float(high), "n": n, "n_prompts": prompts})
    return rows


def _model_slices(frame: pl.DataFrame, metric: MetricColumn) -> Iterator[tuple[str, str, dict[str, np.ndarray], int]]:
    """(model, category, its sums per summary column, its row count) for each (model, category) of ``frame``,
    its rows in ``frame``'s order: the columns turned into arrays once and cut into views, not a frame per
    group (a hundred models' groups cost seconds that way)."""
    frame = frame.sort("model", "category", maintain_order=True)  # each group's rows together, in their order
    groups = (frame.select("model", "category").with_row_index("_at")
              .group_by("model", "category", maintain_order=True).agg(pl.col("_at").first(), pl.len()))
    sums = {name: frame[f"sum_{name}"].to_numpy() for name in metric.summary()}
    counts = frame["rows"].to_numpy()
    for model, category, at, length in groups.iter_rows():
        yield model, category, {name: c[at:at + length] for name, c in sums.items()}, int(counts[at:at + length].sum())


def compute_leaderboard(warehouse: Warehouse, metrics: Sequence[MetricColumn],
                        cache: ResampleCache | None = None, intervals: bool = True) -> pl.DataFrame:
    """Long format: one row per (model, category, metric), ranked within (category, metric).

    ``cache`` gives back the intervals of models whose rows did not change;
    ``intervals=False`` leaves ``ci_low``/``ci_high`` NaN (the comparisons'
    normalisation reads only the means).
    """
    per_prompt = {}
    for metric in metrics:
        scores = read_scores(warehouse, metric)
        if not scores.is_empty():
            per_prompt[metric.name] = prompt_sums(scores, metric)
    return leaderboard_from_sums(per_prompt, metrics, (cache or no_cache()) if intervals else None)


def leaderboard_from_sums(per_prompt: Mapping[str, pl.DataFrame], metrics: Sequence[MetricColumn],
                          cache: ResampleCache | None) -> pl.DataFrame:
    """``compute_leaderboard`` from each metric's ``prompt_sums`` (by metric name), the tables read once."""
    rows: list[dict] = []
    for metric in metrics:
        if metric.name in per_prompt:
            rows += _summarise(per_prompt[metric.name], metric, cache)
    if not rows:
        return pl.DataFrame(
            schema={"model": pl.Utf8, "category": pl.Utf8, "metric": pl.Utf8, "mean": pl.Float64,
                    "ci_low": pl.Float64, "ci_high": pl.Float64, "n": pl.Int64,
                    "n_prompts": pl.Int64, "rank": pl.Int64}
        )
    long = pl.DataFrame(rows)
    descending = {m.name: m.higher_is_better for m in metrics}
    long = long.with_columns(
        pl.when(pl.col("metric").replace_strict(descending, default=True))
        .then(-pl.col("mean"))
        .otherwise(pl.col("mean"))
        .rank(method="min")
        .over("category", "metric")
        .cast(pl.Int64)
        .alias("rank")
    )
    return long.sort("category", "metric", "rank", "model")


def _table_seconds(seconds: PartitionSeconds, table: str) -> pl.DataFrame | None:
    """(model, category, gpu_seconds) of a table's partitions; None when none records any."""
    frame = seconds.of_table(table)
    if frame.is_empty() or frame["gpu_seconds"].is_null().all():
        return None
    return frame.with_columns(pl.col("gpu_seconds").fill_null(0.0))


COST_DECIMALS = 6  # GPU seconds are kept to the microsecond


def gpu_costs(warehouse: Warehouse, images_table: str, score_tables: Sequence[str],
              seconds: PartitionSeconds | None = None) -> pl.DataFrame:
    """GPU seconds per (model, category) and overall: generating the images + scoring them.

    Every manifest and score row carries the device time it took to make
    (its share of batch and load time), so the sum is what the model cost to
    benchmark, whichever backend did the work. Cached rows keep the cost of
    the run that made them. ``seconds``: the data directory's ``partition_seconds`` (unchanged
    partitions' sums read back); None reads every partition.
    """
    seconds = seconds or PartitionSeconds(warehouse, None)
    schema = {"model": pl.Utf8, "category": pl.Utf8, "generation_gpu_seconds": pl.Float64,
              "scoring_gpu_seconds": pl.Float64, "gpu_seconds": pl.Float64}
    generation = _table_seconds(seconds, images_table)
    scoring = [f for f in (_table_seconds(seconds, t) for t in score_tables) if f is not None]
    parts = []
    if generation is not None:
        parts.append(generation.rename({"gpu_seconds": "generation_gpu_seconds"}))
    if scoring:
        parts.append(pl.concat(scoring).group_by("model", "category").agg(
            pl.col("gpu_seconds").sum().alias("scoring_gpu_seconds")))
    if not parts:
        return pl.DataFrame(schema=schema)
    costs = parts[0] if len(parts) == 1 else parts[0].join(parts[1], on=["model", "category"], how="full",
                                                            coalesce=True)
    for column in ("generation_gpu_seconds", "scoring_gpu_seconds"):
        if column not in costs.columns:
            costs = costs.with_columns(pl.lit(0.0).alias(column))
    costs = costs.with_columns(pl.col("generation_gpu_seconds", "scoring_gpu_seconds").fill_null(0.0))
    overall = costs.group_by("model").agg(pl.col("generation_gpu_seconds", "scoring_gpu_seconds").sum())
    costs = pl.concat([costs, overall.with_columns(pl.lit(OVERALL).alias("category"))], how="diagonal")
    costs = costs.with_columns(
        (pl.col("generation_gpu_seconds") + pl.col("scoring_gpu_seconds")).alias("gpu_seconds"))
    # Kept to the microsecond: polars sums a group's floats in an order that varies from run to run (threads),
    # so unrounded the same rows gave costs differing in their last bits, and every model's report page
    # looked changed after adding one model (47 of 100 rewritten at 100 x 10,000).
    costs = costs.with_columns(pl.col(c).round(COST_DECIMALS) for c in schema if c.endswith("gpu_seconds"))
    return costs.select(list(schema)).cast(schema)


PER_METRIC = ("mean", "ci_low", "ci_high", "n", "rank", "rank_low", "rank_high", "tier")
OVERALL_COLUMNS = ("rank", "rank_low", "rank_high", "tier", "composite", "composite_ci_low", "composite_ci_high")


def widen(
    long: pl.DataFrame, metrics: Sequence[MetricColumn], costs: pl.DataFrame | None = None,
    overall: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per (model, category) with a column group per metric and the overall columns.

    ``overall`` (from ``storage.ranking``) gives the composite score, its
    interval, the overall rank, rank interval and tier; ``costs`` (from
    ``gpu_costs``) adds what each row cost in GPU seconds.
    """
    if long.is_empty():  # no model scored yet: the same key columns, so every reader's query still binds
        return pl.DataFrame(schema={"model": pl.Utf8, "category": pl.Utf8,
                                    **{c: pl.Int64 if c in ("rank", "rank_low", "rank_high", "tier") else pl.Float64
                                       for c in OVERALL_COLUMNS}})
    wide = long.select("model", "category").unique()
    for metric in metrics:
        part = long.filter(pl.col("metric") == metric.name)
        if part.is_empty():
            continue
        wide = wide.join(
            part.select("model", "category",
                        *[pl.col(c).alias(f"{metric.name}_{c}") for c in PER_METRIC if c in part.columns]),
            on=["model", "category"],
            how="left",
        )
    if overall is not None and not overall.is_empty():
        wide = wide.join(overall, on=["model", "category"], how="left")
    wide = wide.with_columns(*[pl.lit(None, dtype=pl.Int64).alias(c) for c in ("rank", "rank_low", "rank_high", "tier")
                               if c not in wide.columns])
    if costs is not None and not costs.is_empty():
        wide = wide.join(costs, on=["model", "category"], how="left")
    order = [pl.col("category") != OVERALL, "category", "rank", "model"]
    first = ["model", "category", *[c for c in OVERALL_COLUMNS if c in wide.columns]]
    return wide.sort(order, nulls_last=True).select(*first, *[c for c in wide.columns if c not in first])


def _rank_range(low, high) -> str:
    return "" if low is None else f" #{low}" if low == high else f" #{low}-{high}"


def to_markdown(wide: pl.DataFrame, metrics: Sequence[MetricColumn], category: str = OVERALL) -> str:
    """A table for the Dagster UI and the terminal.

    rank #rank interval, tier, the composite [95% CI], then per metric
    mean [95% CI] (n) #rank interval.
    """
    if wide.is_empty():
        return "_no scores yet_"
    present = [m for m in metrics if f"{m.name}_mean" in wide.columns]
    rows = wide.filter(pl.col("category") == category) if category else wide
    with_cost = "gpu_seconds" in wide.columns
    with_composite = "composite" in wide.columns
    with_version = "version" in wide.columns
    header = ["rank", "tier", "model", *(["version"] if with_version else []),
              *([] if category else ["category"]), *(["composite"] if with_composite else []),
              *[m.name for m in present], *(["gpu_seconds"] if with_cost else [])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows.iter_rows(named=True):
        cells = [f"{row['rank']}{_rank_range(row.get('rank_low'), row.get('rank_high'))}",
                 str(row.get("tier") or "–"), row["model"],
                 *([str(row["version"] or "–")] if with_version else []),
                 *([] if category else [row["category"]])]
        if with_composite:
            value = row["composite"]
            cells.append("–" if value is None else
                         f"{value:+.2f} [{row['composite_ci_low']:+.2f}, {row['composite_ci_high']:+.2f}]")
        for m in present:
            mean = row[f"{m.name}_mean"]
            if mean is None:
                cells.append("–")
                continue
            cells.append(
                f"{mean:.3f} [{row[f'{m.name}_ci_low']:.3f}, {row[f'{m.name}_ci_high']:.3f}] "
                f"(n={row[f'{m.name}_n']})"
                f"{_rank_range(row.get(f'{m.name}_rank_low'), row.get(f'{m.name}_rank_high'))}"
            )
        if with_cost:
            cost = row["gpu_seconds"]
            cells.append("–" if cost is None else f"{cost:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# Modal's published H100 price, $0.001097 per second, as listed on modal.com/pricing
# (checked through third-party copies dated 2026-05-07 and 2026-06-27). Override it
# with BENCH_GPU_PRICE_PER_HOUR or `bench cost --price-per-hour`.
H100_PRICE_PER_HOUR = 3.9492
H100_PRICE_DATE = "2026-06-27"


def cost_per_thousand(warehouse: Warehouse, images_table: str, score_tables: Sequence[str],
                      price_per_hour: float) -> pl.DataFrame:
    """Per model: images, GPU seconds per image, and dollars per 1,000 images benchmarked.

    Measured cost, not a quote: the GPU seconds every manifest and score row
    recorded, times ``price_per_hour``. Container start-up and idle time that
    Modal also bills are not in it.
    """
    costs = gpu_costs(warehouse, images_table, score_tables).filter(pl.col("category") == OVERALL)
    images = warehouse.read_columns(images_table, ["model"])
    if costs.is_empty() or images.is_empty():
        return pl.DataFrame(schema={"model": pl.Utf8, "images": pl.Int64})
    counts = images.group_by("model").agg(pl.len().alias("images"))
    per_image = pl.col("gpu_seconds") / pl.col("images")
    return (
        counts.join(costs, on="model")
        .with_columns(
            (pl.col("generation_gpu_seconds") / pl.col("images")).alias("generation_s_per_image"),
            per_image.alias("gpu_s_per_image"),
            (per_image * 1000 * price_per_hour / 3600).alias("usd_per_1000_images"),
        )
        .select("model", "images", "generation_s_per_image", "gpu_s_per_image", "usd_per_1000_images")
        .sort("model")
    )


def has_scores(warehouse: Warehouse) -> bool:
    """Whether any model has a leaderboard row: the empty state every reader checks first."""
    return not warehouse.read_table("leaderboard").is_empty()
