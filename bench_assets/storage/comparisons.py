"""Paired comparisons of two models (or two versions of one) on matched items.

For each metric, category and overall: items are matched on (category,
prompt, image index) for per-image metrics and (category, prompt) for set
metrics; unmatched items are counted per side, never silently dropped. The
difference is the metric's leaderboard figure (its ``combine``, so GenEval's
task-mean and OneIG's text score too) of A minus B on the matched items,
with the paired prompt bootstrap interval and the sign-flip p-value of
``bench_assets.stats.paired``. ``composite`` compares the weighted z-score
composite the same way, over every metric at once.

``bench compare`` / ``bench gate`` and the version rows compare one pair with
that full procedure. The ``comparisons`` table (``compare_latest``) compares
every pair of latest models at once: every model resampled on the same
bootstrap counts, its figures from the leaderboard's ``ResampleCache`` (a
pair's interval is a difference of two columns, ``stats.all_pairs``), the sign-flip
test only for the pairs a decision reads (neighbours in rank, the reference
model), Holm over those, and rows of unchanged pairs carried over by the
content digests of their two sides.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property
from itertools import combinations
from typing import Callable, Mapping, Sequence

import numpy as np
import polars as pl

from bench_assets.core.config import load_config
from bench_assets.core.decision import DecisionConfig, decision_config
from bench_assets.core.paths import DataPaths
from bench_assets.metrics.registry import METRICS, metrics_named
from bench_assets.stats.composite import CompositePart, column_name, composite_combine, z_constants
from bench_assets.stats.all_pairs import pair_intervals, pairs_to_test
from bench_assets.stats.paired import TEST_NAME, PairedResult, paired_test, sign_flip_ps
from bench_assets.stats.resampling import N_BOOT, Combine, figure
from bench_assets.storage.item_values_cache import (
    KEYS, ItemValuesCache, MetricItems, ModelItems, item_values_cache, keyed_scores, no_item_cache,
)
from bench_assets.storage.leaderboard import (
    OVERALL, MetricColumn, compute_leaderboard, leaderboard_from_sums, prompt_sums, read_scores,
)
from bench_assets.storage.metric_columns import metric_columns
from bench_assets.storage.partition_digests import PartitionDigests, digest, partition_digests
from bench_assets.storage.prompt_sums_cache import PromptSumsCache, no_sums_cache, prompt_sums_cache
from bench_assets.storage.ranking import aligned_slices, composite_samples, prefixed
from bench_assets.storage.resample_cache import COMPARISONS, ResampleCache, leaderboard_cache, no_cache
from bench_assets.storage.versions import ModelVersion, VersionRef, VersionStore, open_versions
from bench_assets.storage.warehouse import Warehouse

COMPARISONS_TABLE = "comparisons"
COMPOSITE = "composite"
PROMPT = ["category", "prompt_id"]
SCHEMA = {
    "kind": pl.Utf8, "model_a": pl.Utf8, "model_b": pl.Utf8, "metric": pl.Utf8, "category": pl.Utf8,
    "higher_is_better": pl.Boolean, "value_a": pl.Float64, "value_b": pl.Float64, "diff": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "p_value": pl.Float64, "p_adjusted": pl.Float64,
    "adjusted_over": pl.Utf8, "better": pl.Utf8, "a_wins": pl.Int64, "ties": pl.Int64, "b_wins": pl.Int64,
    "n_items": pl.Int64, "n_prompts": pl.Int64, "unmatched_a": pl.Int64, "unmatched_b": pl.Int64,
    "test": pl.Utf8, "digest_a": pl.Utf8, "digest_b": pl.Utf8,
}
NOTHING_MATCHED = PairedResult(*(float("nan"),) * 6, n_prompts=0)
Norms = Mapping[tuple[str, str], tuple[float, float]]  # (category, metric) -> (centre, scale)


@dataclass(frozen=True)
class Side:
    """One model (or version) of a comparison: its label and its score rows per metric."""

    label: str
    scores: Mapping[str, pl.DataFrame]


@dataclass(frozen=True)
class _Matched:
    sums_a: pl.DataFrame  # per prompt, aligned with sums_b row for row
    sums_b: pl.DataFrame
    items: pl.DataFrame  # category, value_a, value_b per matched item
    unmatched_a: pl.DataFrame  # category, n
    unmatched_b: pl.DataFrame


def _match(a: pl.DataFrame, b: pl.DataFrame, metric: MetricColumn) -> _Matched | None:
    if a.is_empty() or b.is_empty():
        return None
    a, b = keyed_scores(a), keyed_scores(b)
    shared = a.select(KEYS).join(b.select(KEYS), on=KEYS, how="semi").unique()
    in_a, in_b = a.join(shared, on=KEYS, how="semi"), b.join(shared, on=KEYS, how="semi")
    items = in_a.select(*KEYS, pl.col("value").alias("value_a")).join(
        in_b.select(*KEYS, pl.col("value").alias("value_b")), on=KEYS)
    unmatched = [f.join(shared, on=KEYS, how="anti").group_by("category").len("n") for f in (a, b)]
    sums = [prompt_sums(f.with_columns(pl.lit("").alias("model")), metric).sort(PROMPT) for f in (in_a, in_b)]
    return _Matched(sums[0], sums[1], items, *unmatched)


def _arrays(sums: pl.DataFrame, columns: Sequence[str], prefix: str = "") -> dict[str, np.ndarray]:
    return {prefix + c: sums[f"sum_{c}"].to_numpy().astype(float) for c in columns}


def _in_slice(frame: pl.DataFrame, category: str) -> pl.DataFrame:
    return frame if category == OVERALL else frame.filter(pl.col("category") == category)


def _count(frame: pl.DataFrame, category: str) -> int:
    return int(_in_slice(frame, category)["n"].sum()) if frame.height else 0


def _wins(items: pl.DataFrame, higher: bool) -> tuple[int, int, int]:
    """Matched items where A beats, ties, loses to B (direction-aware)."""
    oriented = (items["value_a"] - items["value_b"]) * (1 if higher else -1)
    return int((oriented > 0).sum()), int((oriented == 0).sum()), int((oriented < 0).sum())


def _row(kind: str, labels: tuple[str, str], metric: str, category: str, higher: bool, result: PairedResult,
         wins: tuple | None, n_items: int | None, unmatched: tuple = (None, None), digests: tuple = (None, None)) -> dict:
    """One comparison row; ``wins`` and ``n_items`` None for the composite (it has no items)."""
    wins = wins or (None, None, None)
    return {
        "kind": kind, "model_a": labels[0], "model_b": labels[1], "metric": metric, "category": category,
        "higher_is_better": higher, "value_a": result.value_a, "value_b": result.value_b, "diff": result.diff,
        "ci_low": result.ci_low, "ci_high": result.ci_high, "p_value": result.p_value,
        "a_wins": wins[0], "ties": wins[1], "b_wins": wins[2], "n_items": n_items, "n_prompts": result.n_prompts,
        "unmatched_a": unmatched[0], "unmatched_b": unmatched[1], "test": TEST_NAME,
        "digest_a": digests[0], "digest_b": digests[1],
    }


def _matched_row(kind, a: Side, b: Side, metric: MetricColumn, category: str, result, matched: _Matched,
                 digests: tuple = (None, None)) -> dict:
    items = _in_slice(matched.items, category)
    return _row(kind, (a.label, b.label), metric.name, category, metric.higher_is_better, result,
                _wins(items, metric.higher_is_better), items.height,
                (_count(matched.unmatched_a, category), _count(matched.unmatched_b, category)), digests)


def _slices(frame: pl.DataFrame, categories: Sequence[str] | None) -> list[str]:
    present = sorted(frame["category"].unique())
    wanted = [OVERALL, *present] if categories is None else list(categories)
    return [c for c in wanted if c == OVERALL or c in present]


Tested = Callable[[str], bool]  # category -> whether the pair gets its sign-flip test there


def _always(category: str) -> bool:
    return True


def _metric_pair_rows(kind: str, a: Side, b: Side, metric: MetricColumn, categories: Sequence[str] | None,
                      tested: Tested = _always, digests: tuple = (None, None)) -> tuple[list[dict], _Matched | None]:
    """One metric's rows of one pair, matched item by item (and the match, which the composite reuses)."""
    matched = _match(a.scores.get(metric.name, pl.DataFrame()), b.scores.get(metric.name, pl.DataFrame()), metric)
    if matched is None:
        return [], None
    if matched.items.is_empty():  # both scored, nothing in common: say so rather than drop it
        return [_matched_row(kind, a, b, metric, OVERALL, NOTHING_MATCHED, matched, digests)], None
    rows, columns = [], list(metric.summary())
    for category in _slices(matched.sums_a, categories):
        sa, sb = _in_slice(matched.sums_a, category), _in_slice(matched.sums_b, category)
        result = paired_test(_arrays(sa, columns), _arrays(sb, columns), metric.combine, test=tested(category))
        rows.append(_matched_row(kind, a, b, metric, category, result, matched, digests))
    return rows, matched


def compare_pair(a: Side, b: Side, metrics: Sequence[MetricColumn], decision: DecisionConfig, norms: Norms,
                 kind: str = "models", categories: Sequence[str] | None = None) -> list[dict]:
    """Rows for every metric present on both sides, each category, overall and the composite."""
    rows, matches = [], {}
    for metric in metrics:
        metric_rows, matched = _metric_pair_rows(kind, a, b, metric, categories)
        rows += metric_rows
        if matched is not None:
            matches[metric.name] = matched
    rows += _composite_rows(kind, a, b, metrics, matches, decision, norms, categories)
    return rows


def _composite_rows(kind, a, b, metrics, matches, decision, norms, categories, tested: Tested = _always,
                    digests: tuple = (None, None)) -> list[dict]:
    weighted = [m for m in metrics if m.name in matches and decision.weights.get(m.name, 0) > 0]
    if not weighted:
        return []
    frames = []
    for metric in weighted:
        matched, columns = matches[metric.name], list(metric.summary())
        frames.append(matched.sums_a.select(*PROMPT, *[pl.col(f"sum_{c}").alias(f"a:{column_name(metric.name, c)}")
                                                       for c in columns]).join(
            matched.sums_b.select(*PROMPT, *[pl.col(f"sum_{c}").alias(f"b:{column_name(metric.name, c)}")
                                             for c in columns]), on=PROMPT))
    joined = frames[0]
    for frame in frames[1:]:
        joined = joined.join(frame, on=PROMPT, how="full", coalesce=True)
    joined = joined.fill_null(0.0).sort(PROMPT)
    rows = []
    for category in _slices(joined, categories):
        part = _in_slice(joined, category)
        side = {s: {c[2:]: part[c].to_numpy().astype(float) for c in part.columns if c.startswith(f"{s}:")}
                for s in "ab"}
        result = paired_test(side["a"], side["b"], _composite_combine(weighted, decision, norms, category),
                             test=tested(category))
        rows.append(_row(kind, (a.label, b.label), COMPOSITE, category, True, result, None, None, digests=digests))
    return rows


def _composite_parts(weighted: Sequence[MetricColumn], decision: DecisionConfig, norms: Norms,
                     category: str) -> list[CompositePart]:
    return [CompositePart(m.name, m.combine, tuple(m.summary()), decision.weights[m.name], m.higher_is_better,
                          *norms.get((category, m.name), (0.0, 1.0))) for m in weighted]


def _composite_combine(weighted: Sequence[MetricColumn], decision: DecisionConfig, norms: Norms, category: str):
    return composite_combine(_composite_parts(weighted, decision, norms, category))


def norms_from(long: pl.DataFrame) -> dict[tuple[str, str], tuple[float, float]]:
    """Composite normalisation per (category, metric): the benchmarked models' point figures."""
    if long.is_empty():
        return {}
    return {(category, metric): z_constants(group["mean"].to_list())
            for (category, metric), group in long.group_by("category", "metric")}


def adjust(rows: list[dict] | pl.DataFrame, family: Sequence[str], alpha: float,
           over: str | None = None) -> pl.DataFrame:
    """Holm-adjusted p-values within each family (rows sharing the ``family`` columns).

    Rows without a p-value (pairs not tested) are not counted in their family;
    ``over`` names the family in ``adjusted_over`` (default: the other columns).
    ``rows``: dicts, or a frame of ``SCHEMA``'s columns (the adjusted ones may be absent).
    """
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows) if rows else None
    if frame is None or frame.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    # The composite is a summary of the metrics, not one more metric: its own family.
    frame = frame.with_columns((pl.col("metric") == COMPOSITE).alias("_composite"))
    frame = frame.with_columns(holm_adjusted(frame, [*family, "_composite"]))
    over = over or "Holm over " + " × ".join(c for c in ("model_a", "model_b", "metric", "category") if c not in family)
    frame = frame.with_columns(pl.lit(over).alias("adjusted_over"))
    oriented = pl.when(pl.col("higher_is_better")).then(pl.col("diff")).otherwise(-pl.col("diff"))
    better = (pl.when(pl.col("p_adjusted") >= alpha).then(pl.lit(None))
              .when(oriented > 0).then(pl.col("model_a")).when(oriented < 0).then(pl.col("model_b")))
    return frame.with_columns(better.alias("better")).select(list(SCHEMA)).cast(SCHEMA)


def holm_adjusted(frame: pl.DataFrame, family: Sequence[str]) -> pl.Series:
    """``stats.paired.holm`` of ``p_value`` within each family, every family in one sort.

    Holm's step-down: the i-th smallest of a family's m p-values becomes the running maximum of
    min(1, (m − i)·p); NaN and null p-values are not counted and stay NaN. The same arithmetic as
    ``holm``, so the same bits (ties take the same value whatever their order).
    """
    p = pl.col("p_value").cast(pl.Float64)
    counted = (frame.with_row_index("_i").filter(p.is_not_null() & p.is_finite())
               .sort([*family, "p_value"], maintain_order=True)
               .with_columns(pl.int_range(pl.len()).over(family).alias("_order"), pl.len().over(family).alias("_m")))
    step = pl.min_horizontal(pl.lit(1.0), (pl.col("_m") - pl.col("_order")).cast(pl.Float64) * p)
    running = counted.select(step.cum_max().over(family))
    adjusted = np.full(frame.height, np.nan)
    adjusted[counted["_i"].to_numpy()] = running.to_series().to_numpy()
    return pl.Series("p_adjusted", adjusted)


MODEL_FAMILY = ("kind", "metric", "category")  # pairs of models: corrected for the number of pairs tested
TESTED_PAIRS = "Holm over the tested pairs of this metric and category (neighbours in rank, the reference)"
PAIR_FAMILY = ("kind", "model_a", "model_b", "category")  # one pair (versions, the CLI): over the metrics


def compare_one(a: Side, b: Side, metrics, decision: DecisionConfig, norms: Norms, kind: str = "versions",
                categories: Sequence[str] | None = None) -> pl.DataFrame:
    """One pair (a version against another, or what ``bench compare`` asks), Holm over its metrics."""
    return adjust(compare_pair(a, b, metrics, decision, norms, kind, categories), PAIR_FAMILY, decision.alpha)


def regressions(frame: pl.DataFrame, decision: DecisionConfig) -> pl.DataFrame:
    """Overall rows where A (the candidate) is significantly worse than B by more than the margin."""
    if frame.is_empty():
        return frame
    margin = pl.col("metric").replace_strict(decision.margins, default=0.0, return_dtype=pl.Float64)
    worse_by = pl.when(pl.col("higher_is_better")).then(-pl.col("diff")).otherwise(pl.col("diff"))
    return frame.filter((pl.col("category") == OVERALL) & (pl.col("metric") != COMPOSITE)
                        & (pl.col("p_adjusted") < decision.alpha) & (worse_by > margin))


def describe(row: Mapping) -> str:
    """One line naming the metric, the difference and its interval."""
    return (f"{row['metric']}: {row['model_a']} − {row['model_b']} = {row['diff']:+.4g} "
            f"[95% CI {row['ci_low']:+.4g}, {row['ci_high']:+.4g}], p_holm={row['p_adjusted']:.3g}")


def to_markdown(frame: pl.DataFrame) -> str:
    """The comparison table for the terminal and the Dagster UI."""
    if frame.is_empty():
        return "_no matched items to compare_"
    header = ["metric", "category", "A", "B", "A − B [95% CI]", "p", "p (Holm)", "A wins/ties/B wins",
              "matched", "unmatched A/B", "better"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in frame.iter_rows(named=True):
        lines.append("| " + " | ".join([
            r["metric"], r["category"], f"{r['model_a']} {r['value_a']:.4g}", f"{r['model_b']} {r['value_b']:.4g}",
            f"{r['diff']:+.4g} [{r['ci_low']:+.4g}, {r['ci_high']:+.4g}]", f"{r['p_value']:.3g}",
            f"{r['p_adjusted']:.3g}", _or_dash(r, "a_wins", "ties", "b_wins"), _or_dash(r, "n_items"),
            _or_dash(r, "unmatched_a", "unmatched_b"), r["better"] or "–"]) + " |")
    return "\n".join(lines)


def _or_dash(row: Mapping, *columns: str) -> str:
    return "–" if row[columns[0]] is None else "/".join(str(row[c]) for c in columns)


# -- reading the sides from the warehouse ---------------------------------------------------------


def version_side(store: VersionStore, ref: VersionRef, metrics: Sequence[MetricColumn]) -> Side:
    return Side(ref.label, {m.name: store.rows(m.table, ref) for m in metrics})


def compare_references(store: VersionStore, a: str, b: str, metrics: Sequence[MetricColumn],
                       decision: DecisionConfig, categories: Sequence[str] | None = None) -> pl.DataFrame:
    """``bench compare`` / ``bench gate``: two references (``model``, ``model@N``, ``model@<fp>``)."""
    sides = [version_side(store, store.resolve(ref), metrics) for ref in (a, b)]
    norms = norms_from(compute_leaderboard(store.warehouse, metrics, intervals=False))
    return compare_one(*sides, metrics, decision, norms, kind="pair", categories=categories)


def compare_in_data_dir(paths: DataPaths, a: str, b: str, metric_names: Sequence[str] | None = None,
                        categories: Sequence[str] | None = None) -> tuple[pl.DataFrame, DecisionConfig]:
    """``compare_references`` over the data directory's versions, with the metrics named (None: all; an empty
    list: none, when only distribution metrics were named) and the decision settings of ``data/config.yaml``,
    which the gate's verdict also needs."""
    decision = decision_config(load_config(paths), METRICS)
    if metric_names is not None and not metric_names:
        return pl.DataFrame(schema=SCHEMA), decision
    store, columns = open_versions(paths), metric_columns(metrics_named(metric_names))
    return compare_references(store, a, b, columns, decision, categories), decision


def version_pairs(store: VersionStore) -> list[tuple[VersionRef, VersionRef]]:
    """(latest, previous) for every model with at least two versions (``store.table()``, sorted, read once:
    it is a file per version, so reading it once per model cost 9 s at a hundred models)."""
    pairs = []
    for (model,), rows in store.table().partition_by("model", as_dict=True, maintain_order=True).items():
        if rows.height >= 2:
            versions = [ModelVersion(**row) for row in rows.iter_rows(named=True)]  # oldest first
            pairs.append((VersionRef(model, versions[-1]), VersionRef(model, versions[-2])))
    return pairs


# -- every pair of the latest models at once -------------------------------------------------------


@dataclass
class Tally:
    """What a refresh of the ``models`` rows did: rows computed, rows carried over, sign-flip tests run."""

    recomputed: int = 0
    carried: int = 0
    tests: int = 0


@dataclass(frozen=True)
class Refresh:
    table: pl.DataFrame
    tally: Tally
    norms: Norms = field(default_factory=dict)  # the composite's normalisation the rows were computed with


ROW_SCHEMA = {c: t for c, t in SCHEMA.items() if c not in ("p_adjusted", "adjusted_over", "better")}
PAIR = ["model_a", "model_b"]
CARRY_KEY = [*PAIR, "digest_a", "digest_b"]


def _rows_frame(columns: Mapping[str, object], height: int) -> pl.DataFrame:
    """Comparison rows from columns (arrays, or one value for every row); those not given are null."""
    data = {c: (columns[c] if c in columns else None) for c in ROW_SCHEMA}
    data = {c: (v if isinstance(v, (list, np.ndarray, pl.Series)) else [v] * height) for c, v in data.items()}
    return pl.DataFrame(data, schema=ROW_SCHEMA)


def _dict_rows(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=ROW_SCHEMA) if rows else pl.DataFrame(schema=ROW_SCHEMA)


def _main_group(items: Mapping[str, ModelItems]) -> list[str]:
    """The largest set of models with the same items (ties: the one with the first model by name), each model's
    items recognised by their ``ModelItems.signature``."""
    by_keys: dict[tuple, list[str]] = {}
    for model in sorted(items):
        by_keys.setdefault(items[model].signature, []).append(model)
    return max(by_keys.values(), key=len, default=[])


Resample = Callable[[Sequence[str], Sequence[Mapping[str, np.ndarray]]], np.ndarray]  # (models, sums) -> (n_boot, K)


def metric_resample(metric: MetricColumn, cache: ResampleCache) -> Resample:
    """Each model's resampled figures of ``metric``, from ``cache`` (the leaderboard's: the same
    ``figure(sums, combine, bootstrap_counts(n_prompts, N_BOOT, 0))`` of the same aligned sums), so an
    unchanged model is read back and only a new one is resampled."""

    def resample(models: Sequence[str], arrays: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
        return np.column_stack([cache.figures(metric.name, m, a, metric.combine, N_BOOT)
                                for m, a in zip(models, arrays)])

    return resample


def composite_resample(weighted: Sequence[MetricColumn], decision: DecisionConfig, norms: Norms, category: str,
                       cache: ResampleCache) -> Resample:
    """Each model's resampled composite from its cached per-metric figures (``ranking.composite_samples``:
    given the normalisation, the composite is a fixed function of each weighted metric's figure)."""
    parts = _composite_parts(weighted, decision, norms, category)

    def resample(models: Sequence[str], arrays: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
        return np.column_stack([composite_samples(parts, weighted, m, a, cache) for m, a in zip(models, arrays)])

    return resample


@dataclass
class _Slice:
    """Some models' per-prompt sums of one slice, aligned on the same prompts, and their figures."""

    models: list[str]
    arrays: list[dict[str, np.ndarray]]
    n_prompts: int
    combine: Combine
    resample: Resample

    def __post_init__(self):
        self.index = {m: i for i, m in enumerate(self.models)}
        self.points = np.array([figure(a, self.combine)[0] for a in self.arrays])

    @cached_property
    def samples(self) -> np.ndarray:
        """(n_boot, K): every model's resampled figure, on the same bootstrap counts (so a pair's paired
        interval is the difference of two columns)."""
        return self.resample(self.models, self.arrays)


def _aligned(frames: Sequence[pl.DataFrame], combine_of: Callable[[str], tuple[Combine, Resample]], prefix: str = "",
             models: Sequence[str] | None = None) -> dict[str, _Slice]:
    """Every slice's ``_Slice`` (``ranking.aligned_slices`` of the models named, None: all), prefixes taken off
    the columns; ``combine_of(category)``: the slice's combine and resample."""
    out = {}
    for category, (names, arrays, n_prompts) in aligned_slices(frames, models).items():
        arrays = [{c[len(prefix):]: v for c, v in a.items()} for a in arrays]
        out[category] = _Slice(names, arrays, n_prompts, *combine_of(category))
    return out


class _MetricTable:
    """One metric's items of every latest model (``ItemValuesCache``: only changed models' rows read), with
    what comparing them all at once needs. Built for one metric at a time and dropped before the next; what
    the composite needs afterwards (``sums``, ``digests``, ``group``) is small and kept."""

    def __init__(self, metric: MetricColumn, read: MetricItems, digests: Mapping[str, str],
                 cache: ResampleCache, sums_cache: PromptSumsCache, warehouse: Warehouse):
        self.metric, self.resample = metric, metric_resample(metric, cache)
        self.items = {m: found for m, found in read.items.items() if found.signature[0] > 0}
        self.keyed, self._rows_of = read.keyed, _ModelRows(warehouse, [metric])
        self.models = sorted(self.items)
        # a partition written after the listing has no digest yet: a fresh token, so its pairs are recomputed
        self.digests = {m: digests.get(m) or digest("unlisted", uuid.uuid4().hex) for m in self.models}
        self.group = _main_group(self.items)
        # the leaderboard's per-prompt sums (the norms): the rows read are summed, the others' sums read back
        self.plain_sums = sums_cache.sums(metric, read.keyed, read.read)
        self.sums = prefixed(self.plain_sums, metric)

    @cached_property
    def _held(self) -> dict[str, pl.DataFrame]:
        if self.keyed.is_empty():  # every model's items read back from the cache
            return {}
        return {m: rows for (m,), rows in self.keyed.partition_by("model", as_dict=True).items()}

    def side(self, model: str) -> Side:
        """The model's rows, for the pairs whose items differ (matched item by item): from the rows read, else
        read back (rare: a failed image; a few models kept at a time)."""
        rows = self._held.get(model)
        return Side(model, {self.metric.name: self._rows_of(self.metric.name, model) if rows is None else rows})

    def slices(self, models: Sequence[str] | None) -> dict[str, _Slice]:
        return _aligned([self.sums], lambda _: (self.metric.combine, self.resample),
                        column_name(self.metric.name, ""), models)

    @cached_property
    def _items(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(group models × items) values, the same items in the same order for each (grouped by category),
        and where each category's items start (and its name)."""
        first = self.items[self.group[0]]
        values = np.vstack([self.items[m].values for m in self.group])
        return values, first.starts, list(first.categories)

    def wins(self, category: str, a: Sequence[int], b: Sequence[int]) -> tuple[np.ndarray, int]:
        """(pairs, 3) wins/ties/losses of the group's models a[i] against b[i] (indices into the group)."""
        values, starts, names = self._items
        if category not in (OVERALL, *names):
            values = values[:, :0]
        elif category != OVERALL:
            k = names.index(category)
            values = values[:, starts[k]: starts[k + 1] if k + 1 < len(starts) else values.shape[1]]
        sign, out = (1.0 if self.metric.higher_is_better else -1.0), np.zeros((len(a), 3), dtype=int)
        a, b = np.asarray(a, dtype=int), np.asarray(b, dtype=int)
        for start in range(0, len(a), 256):  # bounded memory: 256 pairs × items at a time
            d = (values[a[start:start + 256]] - values[b[start:start + 256]]) * sign
            out[start:start + 256] = np.column_stack([(d > 0).sum(1), (d == 0).sum(1), (d < 0).sum(1)])
        return out, values.shape[1]


def _tested(everyone: Mapping[str, _Slice], higher: bool, reference: str | None) -> dict[str, set]:
    return {c: pairs_to_test(s.models, s.points, higher, reference) for c, s in everyone.items()}


def _tested_frame(tested: Mapping[str, set]) -> pl.DataFrame:
    rows = [(c, a, b) for c, pairs in tested.items() for a, b in pairs]
    return pl.DataFrame(rows, schema={"category": pl.Utf8, "model_a": pl.Utf8, "model_b": pl.Utf8},
                        orient="row").with_columns(pl.lit(True).alias("_wanted"))


def _finite(column: str) -> pl.Expr:
    return (pl.col(column).is_not_null() & pl.col(column).is_finite()).fill_null(False)


def _carried(previous: pl.DataFrame | None, pairs: pl.DataFrame, tested: Mapping[str, set]) -> pl.DataFrame:
    """The previous rows of the pairs whose two sides are unchanged (same digests), p kept where the pair is
    still tested and NaN where not; a pair is left out (recomputed) where a test is now due and it has none."""
    if previous is None or previous.is_empty():
        return pl.DataFrame(schema=ROW_SCHEMA)
    old = (previous.join(pairs, on=CARRY_KEY, how="semi")
           .join(_tested_frame(tested), on=["category", *PAIR], how="left")
           .with_columns(pl.col("_wanted").fill_null(False)))
    due = old.filter(pl.col("_wanted") & ~_finite("p_value") & _finite("diff")).select(PAIR).unique()
    p_value = pl.when(pl.col("_wanted")).then(pl.col("p_value")).otherwise(float("nan")).alias("p_value")
    return old.join(due, on=PAIR, how="anti").with_columns(p_value).select(list(ROW_SCHEMA))


def _split(models: Sequence[str], digests: Mapping[str, str], group: set, previous, tested,
           tally: Tally) -> tuple[pl.DataFrame, list, list]:
    """(carried rows, pairs of the group to compute, other pairs to compute): only changed pairs are computed."""
    pairs = list(combinations(sorted(models), 2))
    keys = pl.DataFrame({"model_a": [a for a, _ in pairs], "model_b": [b for _, b in pairs],
                         "digest_a": [digests[a] for a, _ in pairs], "digest_b": [digests[b] for _, b in pairs]},
                        schema={c: pl.Utf8 for c in CARRY_KEY})
    carried = _carried(previous, keys, tested)
    done = set(carried.select(PAIR).unique().iter_rows())
    fast = [p for p in pairs if p not in done and p[0] in group and p[1] in group]
    slow = [p for p in pairs if p not in done and not (p[0] in group and p[1] in group)]
    tally.carried += carried.height
    return carried, fast, slow


def _tests(part: _Slice, pairs, a, b, diffs, tested: set) -> np.ndarray:
    """The sign-flip p of the tested pairs (NaN for the others), all of them in one product."""
    wanted = [k for k, pair in enumerate(pairs) if pair in tested]
    p_values = np.full(len(pairs), np.nan)
    p_values[wanted] = sign_flip_ps([(part.arrays[a[k]], part.arrays[b[k]]) for k in wanted], part.combine,
                                    [diffs[k] for k in wanted])
    return p_values


def _fast_rows(metric: str, higher: bool, group: Mapping[str, _Slice], pairs, tested, digests, tally: Tally,
               wins=None) -> pl.DataFrame:
    """Rows of pairs of models with the same items: intervals from the shared bootstrap, tests where wanted.
    Built as columns, one frame per slice."""
    frames = []
    for category, part in group.items():
        here = [p for p in pairs if p[0] in part.index and p[1] in part.index]
        if not here:
            continue
        a = np.array([part.index[p[0]] for p in here], dtype=int)
        b = np.array([part.index[p[1]] for p in here], dtype=int)
        low, high = pair_intervals(part.samples, a, b, part.n_prompts)
        diffs = part.points[a] - part.points[b]
        p_values = _tests(part, here, a, b, diffs, tested.get(category, set()))
        tally.tests += int(sum(p in tested.get(category, ()) for p in here))
        columns = {"kind": "models", "model_a": [p[0] for p in here], "model_b": [p[1] for p in here],
                   "metric": metric, "category": category, "higher_is_better": higher,
                   "value_a": part.points[a], "value_b": part.points[b], "diff": diffs,
                   "ci_low": np.asarray(low, dtype=float), "ci_high": np.asarray(high, dtype=float),
                   "p_value": p_values, "n_prompts": part.n_prompts, "test": TEST_NAME,
                   "digest_a": [digests[p[0]] for p in here], "digest_b": [digests[p[1]] for p in here]}
        if wins is not None:
            counts, n_items = wins(category, a, b)
            columns.update(a_wins=counts[:, 0], ties=counts[:, 1], b_wins=counts[:, 2], n_items=n_items,
                           unmatched_a=0, unmatched_b=0)
        frames.append(_rows_frame(columns, len(here)))
    rows = pl.concat(frames) if frames else pl.DataFrame(schema=ROW_SCHEMA)
    tally.recomputed += rows.height
    return rows


def _counted(rows: list[dict], tally: Tally) -> pl.DataFrame:
    tally.recomputed += len(rows)
    tally.tests += int(sum(r["p_value"] is not None and np.isfinite(r["p_value"]) for r in rows))
    return _dict_rows(rows)


def _metric_model_rows(table: _MetricTable, previous, reference: str | None, tally: Tally) -> pl.DataFrame:
    """One metric's rows of every pair of latest models (A before B by name)."""
    metric, everyone = table.metric, table.slices(None)
    tested = _tested(everyone, metric.higher_is_better, reference)
    carried, fast, slow = _split(table.models, table.digests, set(table.group), previous, tested, tally)
    frames = [carried]
    if fast:
        group = everyone if len(table.group) == len(table.models) else table.slices(table.group)
        frames.append(_fast_rows(metric.name, metric.higher_is_better, group, fast, tested, table.digests, tally,
                                 table.wins))
    for a, b in slow:  # items differ (a failed image): matched item by item, the pair's own bootstrap
        pair_rows, _ = _metric_pair_rows("models", table.side(a), table.side(b), metric, None,
                                         lambda c: (a, b) in tested.get(c, ()), (table.digests[a], table.digests[b]))
        frames.append(_counted(pair_rows, tally))
    return pl.concat(frames)


@dataclass(frozen=True)
class _Kept:
    """What the composite needs of a weighted metric once its table is dropped."""

    metric: MetricColumn
    sums: pl.DataFrame  # prefixed per-prompt sums of every model
    digests: dict[str, str]
    group: list[str]


def _composite_model_rows(kept: Mapping[str, _Kept], decision: DecisionConfig, norms: Norms, previous,
                          tally: Tally, warehouse: Warehouse, cache: ResampleCache) -> pl.DataFrame:
    """The composite's rows of every pair: like a metric's, its columns those of every weighted metric.

    Its digest holds the normalisation (every model's figures), so a new model recomputes every composite row.
    """
    weighted = [k.metric for k in kept.values()]
    if not weighted:
        return pl.DataFrame(schema=ROW_SCHEMA)
    models = sorted(set().union(*(k.digests for k in kept.values())))
    context = digest(repr(sorted(norms.items())), repr(sorted(decision.weights.items())))
    digests = {m: digest(context, *(kept[w.name].digests.get(m, "-") for w in weighted)) for m in models}
    group = sorted(set.intersection(*(set(k.group) for k in kept.values())))
    sums = [kept[w.name].sums for w in weighted]

    def combine_of(category: str) -> tuple[Combine, Resample]:
        return (_composite_combine(weighted, decision, norms, category),
                composite_resample(weighted, decision, norms, category, cache))

    everyone = _aligned(sums, combine_of)
    tested = _tested(everyone, True, decision.reference)
    carried, fast, slow = _split(models, digests, set(group), previous, tested, tally)
    frames = [carried]
    if fast:
        aligned = everyone if len(group) == len(models) else _aligned(sums, combine_of, models=group)
        frames.append(_fast_rows(COMPOSITE, True, aligned, fast, tested, digests, tally))
    rows_of = _ModelRows(warehouse, weighted)
    for a, b in slow:
        matches = _pair_matches(weighted, rows_of, a, b)
        pair_rows = _composite_rows("models", Side(a, {}), Side(b, {}), weighted, matches, decision, norms, None,
                                    lambda c: (a, b) in tested.get(c, ()), (digests[a], digests[b]))
        frames.append(_counted(pair_rows, tally))
    return pl.concat(frames)


class _ModelRows:
    """One model's finite rows of a metric, read back from the warehouse when a pair whose items differ needs
    them (rare: a failed image); the last few models kept, so a hundred models are never held at once."""

    def __init__(self, warehouse: Warehouse, metrics: Sequence[MetricColumn], keep: int = 8):
        self.warehouse, self.keep = warehouse, keep
        self.metrics = {m.name: m for m in metrics}
        self._rows: dict[tuple[str, str], pl.DataFrame] = {}

    def __call__(self, metric: str, model: str) -> pl.DataFrame:
        key = (metric, model)
        if key not in self._rows:
            if len(self._rows) >= self.keep * len(self.metrics):
                self._rows.pop(next(iter(self._rows)))
            self._rows[key] = read_scores(self.warehouse, self.metrics[metric], model)
        return self._rows[key]


def _pair_matches(metrics: Sequence[MetricColumn], rows_of: Callable[[str, str], pl.DataFrame], a: str,
                  b: str) -> dict[str, _Matched]:
    """The pair's matched items per metric, where both have some in common (what the composite reads)."""
    matches = {}
    for metric in metrics:
        matched = _match(rows_of(metric.name, a), rows_of(metric.name, b), metric)
        if matched is not None and not matched.items.is_empty():
            matches[metric.name] = matched
    return matches


def _previous_rows(previous: pl.DataFrame | None) -> dict[str, pl.DataFrame]:
    """The previous table's model rows by metric (what can be carried over)."""
    if previous is None or previous.is_empty() or "digest_a" not in previous.columns:
        return {}
    rows = previous.filter(pl.col("kind") == "models").select(list(ROW_SCHEMA)).cast(ROW_SCHEMA)
    return {metric: frame for (metric,), frame in rows.partition_by("metric", as_dict=True).items()}


def compare_latest(warehouse: Warehouse, metrics: Sequence[MetricColumn], decision: DecisionConfig,
                   norms: Norms | None = None, previous: pl.DataFrame | None = None,
                   digests: PartitionDigests | None = None, cache: ResampleCache | None = None,
                   sums_cache: PromptSumsCache | None = None, item_cache: ItemValuesCache | None = None) -> Refresh:
    """Every pair of latest models on every metric, category and the composite (kind ``models``).

    Every pair gets its difference and paired bootstrap interval; the sign-flip
    test and Holm's correction only the pairs tested (``stats.all_pairs.pairs_to_test``:
    neighbours in rank and the ``leaderboard.reference`` model), Holm over the
    pairs tested of each metric and category. Rows of pairs whose two sides are
    unchanged (their partitions' content digests, ``digest_a`` / ``digest_b``,
    from ``digests``: the listing, not the rows, for files seen before) are
    carried over from ``previous`` by a join.

    One metric at a time: its score columns read, its rows computed, its table
    dropped; the composite keeps the weighted metrics' per-prompt sums only.
    ``norms`` None: the composite's normalisation from those same sums (what
    ``norms_from(compute_leaderboard(...))`` gives, without reading the tables again).

    Each model's resampled figures come from ``cache`` (the leaderboard's ``ResampleCache``: same sums,
    same bootstrap counts), so after adding a model only that model is resampled; the composite's from
    the cached per-metric figures through the composite. ``sums_cache`` gives back the per-prompt sums of
    partitions whose content is unchanged, ``item_cache`` (``item_values_cache``) the items and values of
    models whose content is unchanged (what grouping the models and the wins and ties need), so their rows
    are not read; without it every model's rows are read.
    """
    tally, old, cache = Tally(), _previous_rows(previous), cache or no_cache()
    digests = digests or PartitionDigests(warehouse)
    sums_cache = sums_cache or no_sums_cache(warehouse)
    item_cache = item_cache or no_item_cache(warehouse)
    frames, kept, points = [], {}, []
    for metric in metrics:
        listed = digests.of_models(metric.table)
        read = item_cache.items(metric, listed)
        if not any(found.signature[0] for found in read.items.values()):
            continue
        table = _MetricTable(metric, read, listed, cache, sums_cache, warehouse)
        del read
        frames.append(_metric_model_rows(table, old.get(metric.name), decision.reference, tally))
        if norms is None:
            points.append(leaderboard_from_sums({metric.name: table.plain_sums}, [metric], None))
        if decision.weights.get(metric.name, 0) > 0:
            kept[metric.name] = _Kept(metric, table.sums, table.digests, table.group)
        del table
    if norms is None:
        norms = norms_from(pl.concat(points)) if points else {}
    frames.append(_composite_model_rows(kept, decision, norms, old.get(COMPOSITE), tally, warehouse, cache))
    return Refresh(adjust(pl.concat(frames), MODEL_FAMILY, decision.alpha, TESTED_PAIRS), tally, norms)


def refresh_comparisons(store: VersionStore, metrics: Sequence[MetricColumn], decision: DecisionConfig,
                        previous: pl.DataFrame | None = None, digests: PartitionDigests | None = None,
                        cache: ResampleCache | None = None, sums_cache: PromptSumsCache | None = None,
                        item_cache: ItemValuesCache | None = None) -> Refresh:
    """The ``comparisons`` table: every pair of latest models (``compare_latest``), and each model's latest
    vs previous version (the full procedure, Holm over the metrics of each).

    ``digests``: the data directory's ``partition_digests`` (what the asset passes), so unchanged models
    are recognised from the listing; None digests every partition read. ``cache``: the data directory's
    ``leaderboard_cache(paths, COMPARISONS)``, shared with the leaderboard (None: this build's only);
    ``sums_cache``: ``prompt_sums_cache`` on the same digests (None: every sum made afresh); ``item_cache``:
    ``item_values_cache`` (None: every model's rows read)."""
    models = compare_latest(store.warehouse, metrics, decision, None, previous, digests, cache, sums_cache,
                            item_cache)
    frames = [models.table]
    for latest, prev in version_pairs(store):
        frames.append(compare_one(version_side(store, latest, metrics), version_side(store, prev, metrics),
                                  metrics, decision, models.norms, kind="versions", categories=[OVERALL]))
    table = pl.concat(frames, how="vertical_relaxed").sort("kind", "metric", "category", "model_a", "model_b")
    return Refresh(table, models.tally)


def refresh_in_data_dir(paths: DataPaths, store: VersionStore, metrics: Sequence[MetricColumn],
                        decision: DecisionConfig, previous: pl.DataFrame | None) -> tuple[Refresh, dict[str, int]]:
    """``refresh_comparisons`` as the comparisons asset runs it (and the scale benchmark measures it): with the
    data directory's caches (partition digests, the bootstrap figures shared with the leaderboard, per-prompt
    sums, item values), saved afterwards; and what was read and computed (the asset's metadata)."""
    digests = partition_digests(paths, store.warehouse)
    cache = leaderboard_cache(paths, COMPARISONS)
    sums = prompt_sums_cache(paths, store.warehouse, digests)
    items = item_values_cache(paths, store.warehouse)
    refresh = refresh_comparisons(store, metrics, decision, previous, digests, cache, sums, items)
    digests.save()
    cache.save()
    return refresh, {"partitions_digested": digests.read, "partitions_summed": sums.partitions_summed,
                     "models_read": items.models_read, "bootstraps_computed": cache.computed,
                     "bootstraps_reused": cache.reused}


def build_comparisons(store: VersionStore, metrics: Sequence[MetricColumn], decision: DecisionConfig,
                      previous: pl.DataFrame | None = None, digests: PartitionDigests | None = None,
                      cache: ResampleCache | None = None) -> pl.DataFrame:
    """``refresh_comparisons``'s table."""
    return refresh_comparisons(store, metrics, decision, previous, digests, cache).table
