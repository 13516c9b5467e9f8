"""Rank intervals, tiers and the composite overall score of the leaderboard.

Every model of a slice (a category, or ``all``) is resampled on the same
prompts (the union of the prompts any model has; a model without a prompt
contributes nothing for it), each resample ranks the models, and a model's
rank interval is the 95% range of its ranks. Tiers come from the paired
tests of the ``comparisons`` table (Holm-adjusted over the pairs tested): a
model stays in the tier of the model just above it unless that test
separates them.
The overall score is the composite of ``bench_assets.stats.composite``
(weights from ``data/config.yaml``), with its bootstrap interval, rank,
rank interval and tier the same way.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import polars as pl

from bench_assets.core.decision import DecisionConfig
from bench_assets.core.paths import DataPaths
from bench_assets.stats.composite import CompositePart, column_name, composite_combine, z_constants
from bench_assets.stats.ranks import rank_intervals, rank_order, ranks, tiers
from bench_assets.stats.resampling import N_BOOT, figure, percentile_interval
from bench_assets.storage.leaderboard import (
    OVERALL, MetricColumn, gpu_costs, leaderboard_from_sums, widen,
)
from bench_assets.storage.partition_digests import partition_digests
from bench_assets.storage.partition_seconds import partition_seconds
from bench_assets.storage.prompt_sums_cache import PromptSumsCache, no_sums_cache, prompt_sums_cache
from bench_assets.storage.resample_cache import ResampleCache, leaderboard_cache, no_cache
from bench_assets.storage.versions import VersionStore
from bench_assets.storage.warehouse import Warehouse

COMPOSITE = "composite"
PROMPT = ["category", "prompt_id"]
OVERALL_SCHEMA = {"model": pl.Utf8, "category": pl.Utf8, "composite": pl.Float64, "composite_ci_low": pl.Float64,
                  "composite_ci_high": pl.Float64, "rank": pl.Int64, "rank_low": pl.Int64, "rank_high": pl.Int64,
                  "tier": pl.Int64}


def prefixed(sums: pl.DataFrame, metric: MetricColumn) -> pl.DataFrame:
    """``prompt_sums``' columns renamed ``<metric>/<column>`` (the ``rows`` count left out)."""
    return sums.select("model", *PROMPT, *[pl.col(f"sum_{c}").alias(column_name(metric.name, c))
                                           for c in metric.summary()])


def metric_sums(warehouse: Warehouse, metrics: Sequence[MetricColumn],
                sums_cache: PromptSumsCache | None = None) -> dict[str, pl.DataFrame]:
    """Per metric: ``prompt_sums`` of every model's finite rows, each table read once (and dropped before the
    next); with ``sums_cache``, only the partitions whose content changed are read."""
    cache = sums_cache or no_sums_cache(warehouse)
    out = {}
    for metric in metrics:
        sums = cache.sums(metric)
        if not sums.is_empty():
            out[metric.name] = sums
    return out


Aligned = tuple[list[str], list[dict[str, np.ndarray]], int]  # models, each one's sums per column, prompts


def aligned_slices(frames: Sequence[pl.DataFrame], models: Sequence[str] | None = None) -> dict[str, Aligned]:
    """Per slice (``all``, then each category): each model's sums aligned on the slice's union of prompts
    (0 where a model lacks a prompt or a frame lacks the model), the models named (None: all) in name order.

    ``frames`` hold different columns of the same (model, category, prompt_id) keys (several metrics' sums:
    as if fully joined). Everything is placed at once: one (columns × models × prompts) array filled by two
    index columns per frame. The prompts are sorted by (category, prompt_id), so a category's prompts are
    one contiguous block of the overall ones and its arrays are views of them, not a second alignment.
    """
    if models is not None:
        frames = [f.filter(pl.col("model").is_in(list(models))) for f in frames]
    prompts = _distinct(frames, PROMPT).sort(PROMPT).with_row_index("_row")
    names = _distinct(frames, ["model"]).sort("model").with_row_index("_model")
    columns = [c for f in frames for c in f.columns if c not in ("model", *PROMPT)]
    aligned = np.zeros((len(columns), names.height, prompts.height))
    i = 0
    for frame in frames:
        located = frame.join(prompts, on=PROMPT).join(names, on="model")
        at_model, at_row = located["_model"].to_numpy(), located["_row"].to_numpy()
        for column in (c for c in frame.columns if c not in ("model", *PROMPT)):
            aligned[i, at_model, at_row] = located[column].cast(pl.Float64).fill_null(0.0).to_numpy()
            i += 1
    everyone = names["model"].to_list()
    out = {OVERALL: (everyone, [{c: aligned[k, m] for k, c in enumerate(columns)} for m in range(len(everyone))],
                     prompts.height)}
    present = _distinct(frames, ["category", "model"]).join(names, on="model")
    blocks = prompts.group_by("category", maintain_order=True).agg(pl.col("_row").first(), pl.len())
    for category, start, length in blocks.iter_rows():
        here = sorted(present.filter(pl.col("category") == category)["_model"].to_list())
        out[category] = ([everyone[m] for m in here],
                         [{c: aligned[k, m, start:start + length] for k, c in enumerate(columns)} for m in here],
                         length)
    return out


def _distinct(frames: Sequence[pl.DataFrame], columns: list[str]) -> pl.DataFrame:
    """The distinct values of ``columns`` over all frames (each frame's first: a tenth of the rows to hash)."""
    return pl.concat([f.select(columns).unique() for f in frames]).unique()


def unprefixed(sums: Mapping[str, np.ndarray], metric: str) -> dict[str, np.ndarray]:
    prefix = column_name(metric, "")
    return {c[len(prefix):]: v for c, v in sums.items() if c.startswith(prefix)}


class AdjustedPs:
    """The ``comparisons`` table's Holm-adjusted p-values of pairs of models, split once by (metric, category)
    so each slice's tiers look up their own rows (not the whole table once per metric and slice)."""

    def __init__(self, comparisons: pl.DataFrame | None):
        self._by: dict[tuple, pl.DataFrame] = {}
        if comparisons is not None and not comparisons.is_empty():
            rows = comparisons.filter((pl.col("kind") == "models") & pl.col("p_adjusted").is_finite())
            self._by = rows.select("metric", "category", "model_a", "model_b", "p_adjusted").partition_by(
                "metric", "category", as_dict=True)

    def matrix(self, models: list[str], metric: str, category: str) -> np.ndarray:
        """Adjusted p-values between the models (1 where no comparison was made)."""
        matrix = np.ones((len(models), len(models)))
        rows = self._by.get((metric, category))
        if rows is None:
            return matrix
        index = {m: i for i, m in enumerate(models)}
        at = rows.select(*[pl.col(c).replace_strict(index, default=None, return_dtype=pl.Int64)
                           for c in ("model_a", "model_b")], "p_adjusted").drop_nulls()
        a, b, p = (at[c].to_numpy() for c in at.columns)
        matrix[a, b] = matrix[b, a] = p
        return matrix


def _p_matrix(comparisons: pl.DataFrame | AdjustedPs | None, models: list[str], metric: str,
              category: str) -> np.ndarray:
    """Adjusted p-values between the models (1 where no comparison was made)."""
    adjusted = comparisons if isinstance(comparisons, AdjustedPs) else AdjustedPs(comparisons)
    return adjusted.matrix(models, metric, category)


def _tiers(points: np.ndarray, higher: bool, p: np.ndarray, alpha: float) -> np.ndarray:
    return tiers(rank_order(points, higher), p, alpha)


def metric_rank_columns(sums: Mapping[str, pl.DataFrame], metrics: Sequence[MetricColumn],
                        comparisons: pl.DataFrame | AdjustedPs | None, alpha: float,
                        cache: ResampleCache | None = None) -> pl.DataFrame:
    """(model, category, metric, rank_low, rank_high, tier) for every metric and slice (``sums`` prefixed)."""
    cache = cache or no_cache()
    rows = []
    for metric in metrics:
        if metric.name not in sums:
            continue
        for category, (models, arrays, n_prompts) in aligned_slices([sums[metric.name]]).items():
            own = [unprefixed(a, metric.name) for a in arrays]
            samples = np.column_stack([cache.figures(metric.name, m, s, metric.combine, N_BOOT)
                                       for m, s in zip(models, own)])
            points = np.array([figure(s, metric.combine)[0] for s in own])
            low, high = rank_intervals(samples, metric.higher_is_better)
            tier = _tiers(points, metric.higher_is_better, _p_matrix(comparisons, models, metric.name, category), alpha)
            rows += [{"model": m, "category": category, "metric": metric.name, "rank_low": int(low[i]),
                      "rank_high": int(high[i]), "tier": int(tier[i])} for i, m in enumerate(models)]
    return pl.DataFrame(rows, schema={"model": pl.Utf8, "category": pl.Utf8, "metric": pl.Utf8,
                                      "rank_low": pl.Int64, "rank_high": pl.Int64, "tier": pl.Int64})


def composite_parts(long: pl.DataFrame, metrics: Sequence[MetricColumn], decision: DecisionConfig,
                    category: str) -> list[CompositePart]:
    """The weighted metrics of a slice, normalised on the models' point figures there."""
    parts = []
    for metric in metrics:
        weight = decision.weights.get(metric.name, 0.0)
        points = long.filter((pl.col("category") == category) & (pl.col("metric") == metric.name))["mean"]
        if weight > 0 and points.len():
            parts.append(CompositePart(metric.name, metric.combine, tuple(metric.summary()), weight,
                                       metric.higher_is_better, *z_constants(points.to_list())))
    return parts


def _resampled(totals: dict[str, np.ndarray]) -> np.ndarray:
    return totals["figure"]


def composite_samples(parts: Sequence[CompositePart], metrics: Sequence[MetricColumn], model: str,
                      sums: Mapping[str, np.ndarray], cache: ResampleCache) -> np.ndarray:
    """A model's resampled composite: each weighted metric's resampled figure (from ``cache`` when its sums
    are unchanged) put through the composite as it is (its normalisation changes whenever a model is added).

    The same numbers as ``figure(sums, composite_combine(parts), counts)``: the composite z-scores each
    part's figure of the resampled totals, and those figures are what the cache holds.
    """
    combines = {m.name: m.combine for m in metrics}
    figures = {column_name(p.metric, "figure"): cache.figures(p.metric, model, unprefixed(sums, p.metric),
                                                              combines[p.metric], N_BOOT) for p in parts}
    as_figures = [CompositePart(p.metric, _resampled, ("figure",), p.weight, p.higher_is_better, p.centre, p.scale)
                  for p in parts]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(composite_combine(as_figures)(figures), dtype=float)


def overall_columns(sums: Mapping[str, pl.DataFrame], long: pl.DataFrame, metrics: Sequence[MetricColumn],
                    decision: DecisionConfig, comparisons: pl.DataFrame | AdjustedPs | None,
                    cache: ResampleCache | None = None) -> pl.DataFrame:
    """Per (model, slice): the composite, its interval, rank, rank interval and tier (``sums`` prefixed)."""
    rows, cache = [], cache or no_cache()
    names = [m.name for m in metrics if m.name in sums and decision.weights.get(m.name, 0) > 0]
    if not names or long.is_empty():
        return pl.DataFrame(schema=OVERALL_SCHEMA)
    for category, (models, arrays, n_prompts) in aligned_slices([sums[n] for n in names]).items():
        parts = composite_parts(long, metrics, decision, category)
        if not parts:
            continue
        combine = composite_combine(parts)
        samples = np.column_stack([composite_samples(parts, metrics, m, a, cache) for m, a in zip(models, arrays)])
        points = np.array([figure(a, combine)[0] for a in arrays])
        rank, (low, high) = ranks(points), rank_intervals(samples)
        tier = _tiers(points, True, _p_matrix(comparisons, models, COMPOSITE, category), decision.alpha)
        for i, model in enumerate(models):
            ci = percentile_interval(samples[:, i], n_prompts)
            rows.append({"model": model, "category": category, "composite": float(points[i]),
                         "composite_ci_low": ci[0], "composite_ci_high": ci[1], "rank": int(rank[i]),
                         "rank_low": int(low[i]), "rank_high": int(high[i]), "tier": int(tier[i])})
    return pl.DataFrame(rows, schema=OVERALL_SCHEMA)


def decorate(sums: Mapping[str, pl.DataFrame], long: pl.DataFrame, metrics: Sequence[MetricColumn],
             decision: DecisionConfig, comparisons: pl.DataFrame | None = None,
             cache: ResampleCache | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The leaderboard's long table with rank intervals and tiers, and the overall (composite) table.

    ``sums``: ``metric_sums``; ``cache`` gives back the resampled figures of models whose sums did not change.
    """
    if long.is_empty():
        return long, pl.DataFrame(schema=OVERALL_SCHEMA)
    by_name = {m.name: m for m in metrics}
    sums = {name: prefixed(frame, by_name[name]) for name, frame in sums.items()}
    comparisons = AdjustedPs(comparisons)
    long = long.join(metric_rank_columns(sums, metrics, comparisons, decision.alpha, cache),
                     on=["model", "category", "metric"], how="left")
    return long, overall_columns(sums, long, metrics, decision, comparisons, cache)


def leaderboard_tables(store: VersionStore, metrics: Sequence[MetricColumn], decision: DecisionConfig,
                       comparisons: pl.DataFrame | None, costs: pl.DataFrame | None,
                       cache: ResampleCache | None = None,
                       sums_cache: PromptSumsCache | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(wide, long): the leaderboard of each model's latest version, ranked by the composite.

    ``version`` says which version of each model the row shows. Each score table is read once;
    ``cache`` (``ResampleCache`` on the data directory's cache file) makes a refresh after adding
    one model resample that model only: the others' figures are read back by content; ``sums_cache``
    (``prompt_sums_cache``) reads back their per-prompt sums, so their score files are not read.
    """
    cache = cache or no_cache()
    sums = metric_sums(store.warehouse, metrics, sums_cache)
    long = leaderboard_from_sums(sums, metrics, cache)
    long, overall = decorate(sums, long, metrics, decision, comparisons, cache)
    wide = widen(long, metrics, costs, overall)
    if not wide.is_empty():
        wide = wide.join(store.latest().select("model", "version"), on="model", how="left")
    return wide, long


def leaderboard_in_data_dir(paths: DataPaths, store: VersionStore, metrics: Sequence[MetricColumn],
                            decision: DecisionConfig, comparisons: pl.DataFrame | None, images_table: str
                            ) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """``leaderboard_tables`` (with the GPU costs of ``images_table`` and the score tables) as the leaderboard
    asset runs it (and the scale benchmark measures it): with the data directory's caches (bootstrap figures,
    partition digests, per-prompt sums, GPU seconds), saved afterwards; (wide, long, what was read and
    computed)."""
    warehouse = store.warehouse
    cache = leaderboard_cache(paths)
    digests = partition_digests(paths, warehouse)
    sums = prompt_sums_cache(paths, warehouse, digests)
    seconds = partition_seconds(paths, warehouse, digests)
    costs = gpu_costs(warehouse, images_table, [m.table for m in metrics], seconds)
    wide, long = leaderboard_tables(store, metrics, decision, comparisons, costs, cache, sums)
    cache.save()
    digests.save()
    seconds.save()
    return wide, long, {"partitions_summed": sums.partitions_summed, "partitions_seconds_read": seconds.partitions_read,
                        "bootstraps_computed": cache.computed, "bootstraps_reused": cache.reused}
