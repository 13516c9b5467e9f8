"""Paired comparisons of two models (or two versions of one) on matched items.

For each metric, category and overall: items are matched on (category,
prompt, image index) for per-image metrics and (category, prompt) for set
metrics; unmatched items are counted per side, never silently dropped. The
difference is the metric's leaderboard figure (its ``combine``, so GenEval's
task-mean and OneIG's text score too) of A minus B on the matched items,
with the paired prompt bootstrap interval and the sign-flip p-value of
``bench_assets.stats.paired``. ``composite`` compares the weighted z-score
composite the same way, over every metric at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Mapping, Sequence

import numpy as np
import polars as pl

from bench_assets.core.config import load_config
from bench_assets.core.decision import DecisionConfig, decision_config
from bench_assets.core.paths import DataPaths
from bench_assets.metrics.registry import METRICS, metrics_named
from bench_assets.stats.composite import CompositePart, column_name, composite_combine, z_constants
from bench_assets.stats.paired import TEST_NAME, PairedResult, holm, paired_test
from bench_assets.storage.leaderboard import OVERALL, MetricColumn, compute_leaderboard, finite_scores, prompt_sums
from bench_assets.storage.metric_columns import metric_columns
from bench_assets.storage.versions import VersionRef, VersionStore, open_versions
from bench_assets.storage.warehouse import Warehouse

COMPARISONS_TABLE = "comparisons"
COMPOSITE = "composite"
KEYS = ["category", "prompt_id", "image_index"]
PROMPT = ["category", "prompt_id"]
SCHEMA = {
    "kind": pl.Utf8, "model_a": pl.Utf8, "model_b": pl.Utf8, "metric": pl.Utf8, "category": pl.Utf8,
    "higher_is_better": pl.Boolean, "value_a": pl.Float64, "value_b": pl.Float64, "diff": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "p_value": pl.Float64, "p_adjusted": pl.Float64,
    "adjusted_over": pl.Utf8, "better": pl.Utf8, "a_wins": pl.Int64, "ties": pl.Int64, "b_wins": pl.Int64,
    "n_items": pl.Int64, "n_prompts": pl.Int64, "unmatched_a": pl.Int64, "unmatched_b": pl.Int64,
    "test": pl.Utf8,
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


def _keyed(scores: pl.DataFrame) -> pl.DataFrame:
    frame = finite_scores(scores)
    if "image_index" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("image_index"))
    return frame.with_columns(pl.col("image_index").cast(pl.Int64).fill_null(-1))  # set metrics: per prompt


def _match(a: pl.DataFrame, b: pl.DataFrame, metric: MetricColumn) -> _Matched | None:
    if a.is_empty() or b.is_empty():
        return None
    a, b = _keyed(a), _keyed(b)
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


def _row(kind: str, a: Side, b: Side, metric: str, category: str, higher: bool, result, items, matched) -> dict:
    """``items`` (value_a, value_b per matched item) gives wins/ties; None for the composite (no items)."""
    if items is None:
        wins, n_items = (None, None, None), None
    else:
        oriented = (items["value_a"] - items["value_b"]) * (1 if higher else -1)
        wins, n_items = (int((oriented > 0).sum()), int((oriented == 0).sum()), int((oriented < 0).sum())), items.height
    return {
        "kind": kind, "model_a": a.label, "model_b": b.label, "metric": metric, "category": category,
        "higher_is_better": higher, "value_a": result.value_a, "value_b": result.value_b, "diff": result.diff,
        "ci_low": result.ci_low, "ci_high": result.ci_high, "p_value": result.p_value,
        "a_wins": wins[0], "ties": wins[1], "b_wins": wins[2], "n_items": n_items, "n_prompts": result.n_prompts,
        "unmatched_a": _count(matched[0], category) if matched else None,
        "unmatched_b": _count(matched[1], category) if matched else None,
        "test": TEST_NAME,
    }


def _slices(frame: pl.DataFrame, categories: Sequence[str] | None) -> list[str]:
    present = sorted(frame["category"].unique())
    wanted = [OVERALL, *present] if categories is None else list(categories)
    return [c for c in wanted if c == OVERALL or c in present]


def compare_pair(a: Side, b: Side, metrics: Sequence[MetricColumn], decision: DecisionConfig, norms: Norms,
                 kind: str = "models", categories: Sequence[str] | None = None) -> list[dict]:
    """Rows for every metric present on both sides, each category, overall and the composite."""
    rows, matches = [], {}
    for metric in metrics:
        matched = _match(a.scores.get(metric.name, pl.DataFrame()), b.scores.get(metric.name, pl.DataFrame()), metric)
        if matched is None:
            continue
        if matched.items.is_empty():  # both scored, nothing in common: say so rather than drop it
            rows.append(_row(kind, a, b, metric.name, OVERALL, metric.higher_is_better, NOTHING_MATCHED,
                             matched.items, (matched.unmatched_a, matched.unmatched_b)))
            continue
        matches[metric.name] = matched
        columns = list(metric.summary())
        for category in _slices(matched.sums_a, categories):
            sa, sb = _in_slice(matched.sums_a, category), _in_slice(matched.sums_b, category)
            result = paired_test(_arrays(sa, columns), _arrays(sb, columns), metric.combine)
            rows.append(_row(kind, a, b, metric.name, category, metric.higher_is_better, result,
                             _in_slice(matched.items, category), (matched.unmatched_a, matched.unmatched_b)))
    rows += _composite_rows(kind, a, b, metrics, matches, decision, norms, categories)
    return rows


def _composite_rows(kind, a, b, metrics, matches, decision, norms, categories) -> list[dict]:
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
        parts = [CompositePart(m.name, m.combine, tuple(m.summary()), decision.weights[m.name], m.higher_is_better,
                               *norms.get((category, m.name), (0.0, 1.0))) for m in weighted]
        side = {s: {c[2:]: part[c].to_numpy().astype(float) for c in part.columns if c.startswith(f"{s}:")}
                for s in "ab"}
        result = paired_test(side["a"], side["b"], composite_combine(parts))
        rows.append(_row(kind, a, b, COMPOSITE, category, True, result, None, None))
    return rows


def norms_from(long: pl.DataFrame) -> dict[tuple[str, str], tuple[float, float]]:
    """Composite normalisation per (category, metric): the benchmarked models' point figures."""
    if long.is_empty():
        return {}
    return {(category, metric): z_constants(group["mean"].to_list())
            for (category, metric), group in long.group_by("category", "metric")}


def adjust(rows: list[dict], family: Sequence[str], alpha: float) -> pl.DataFrame:
    """Holm-adjusted p-values within each family (rows sharing the ``family`` columns)."""
    if not rows:
        return pl.DataFrame(schema=SCHEMA)
    # The composite is a summary of the metrics, not one more metric: its own family.
    frame = pl.DataFrame(rows).with_row_index("_i").with_columns((pl.col("metric") == COMPOSITE).alias("_composite"))
    adjusted = np.full(frame.height, np.nan)
    for _, group in frame.group_by(*family, "_composite"):
        adjusted[group["_i"].to_numpy()] = holm(group["p_value"].to_numpy())
    over = " × ".join(c for c in ("model_a", "model_b", "metric", "category") if c not in family)
    frame = frame.with_columns(pl.Series("p_adjusted", adjusted), pl.lit(f"Holm over {over}").alias("adjusted_over"))
    oriented = pl.when(pl.col("higher_is_better")).then(pl.col("diff")).otherwise(-pl.col("diff"))
    better = (pl.when(pl.col("p_adjusted") >= alpha).then(pl.lit(None))
              .when(oriented > 0).then(pl.col("model_a")).when(oriented < 0).then(pl.col("model_b")))
    return frame.with_columns(better.alias("better")).select(list(SCHEMA)).cast(SCHEMA)


MODEL_FAMILY = ("kind", "metric", "category")  # pairs of models: corrected for the number of pairs
PAIR_FAMILY = ("kind", "model_a", "model_b", "category")  # one pair (versions, the CLI): over the metrics


def compare_models(sides: Sequence[Side], metrics, decision: DecisionConfig, norms: Norms) -> pl.DataFrame:
    """Every pair of models (A before B by name), Holm over the pairs of each metric and category."""
    rows = []
    for a, b in combinations(sorted(sides, key=lambda s: s.label), 2):
        rows += compare_pair(a, b, metrics, decision, norms)
    return adjust(rows, MODEL_FAMILY, decision.alpha)


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


def latest_sides(warehouse: Warehouse, metrics: Sequence[MetricColumn]) -> list[Side]:
    """Every model's current rows (its latest version), each metric table read once."""
    per_model: dict[str, dict[str, pl.DataFrame]] = {}
    for metric in metrics:
        table = warehouse.read_table(metric.table)
        if table.is_empty():
            continue
        for (model,), rows in table.partition_by("model", as_dict=True).items():
            per_model.setdefault(model, {})[metric.name] = rows
    return [Side(model, scores) for model, scores in sorted(per_model.items())]


def version_side(store: VersionStore, ref: VersionRef, metrics: Sequence[MetricColumn]) -> Side:
    return Side(ref.label, {m.name: store.rows(m.table, ref) for m in metrics})


def compare_references(store: VersionStore, a: str, b: str, metrics: Sequence[MetricColumn],
                       decision: DecisionConfig, categories: Sequence[str] | None = None) -> pl.DataFrame:
    """``bench compare`` / ``bench gate``: two references (``model``, ``model@N``, ``model@<fp>``)."""
    sides = [version_side(store, store.resolve(ref), metrics) for ref in (a, b)]
    norms = norms_from(compute_leaderboard(store.warehouse, metrics))
    return compare_one(*sides, metrics, decision, norms, kind="pair", categories=categories)


def compare_in_data_dir(paths: DataPaths, a: str, b: str, metric_names: Sequence[str] | None = None,
                        categories: Sequence[str] | None = None) -> tuple[pl.DataFrame, DecisionConfig]:
    """``compare_references`` over the data directory's versions, with the metrics named (None: all) and the
    decision settings of ``data/config.yaml``, which the gate's verdict also needs."""
    store, columns = open_versions(paths), metric_columns(metrics_named(metric_names))
    decision = decision_config(load_config(paths), METRICS)
    return compare_references(store, a, b, columns, decision, categories), decision


def version_pairs(store: VersionStore) -> list[tuple[VersionRef, VersionRef]]:
    """(latest, previous) for every model with at least two versions."""
    pairs = []
    for model in store.table()["model"].unique().sort():
        versions = store.of(model)
        if len(versions) >= 2:
            pairs.append((VersionRef(model, versions[-1]), VersionRef(model, versions[-2])))
    return pairs


def build_comparisons(store: VersionStore, metrics: Sequence[MetricColumn], decision: DecisionConfig) -> pl.DataFrame:
    """The ``comparisons`` table: every pair of latest models, and each model's latest vs previous version."""
    norms = norms_from(compute_leaderboard(store.warehouse, metrics))
    frames = [compare_models(latest_sides(store.warehouse, metrics), metrics, decision, norms)]
    for latest, previous in version_pairs(store):
        frames.append(compare_one(version_side(store, latest, metrics), version_side(store, previous, metrics),
                                  metrics, decision, norms, kind="versions", categories=[OVERALL]))
    return pl.concat(frames, how="vertical_relaxed").sort("kind", "metric", "category", "model_a", "model_b")
