"""``bench compare`` and ``bench gate`` on the distribution metrics: A − B against the same reference set.

A distribution metric is one figure per model (no items to pair), so the
paired procedure of ``storage.comparisons`` does not apply. What does: the
difference of the two models' values, with an interval built from the two
bootstrap intervals by the MOVER method (Zou & Donner 2008, "method of
variance estimates recovery")::

    low  = d − sqrt((a − a_low)² + (b_high − b)²)
    high = d + sqrt((a_high − a)² + (b − b_low)²)      d = a − b

It keeps each interval's asymmetry (FID's bootstrap intervals are skewed) and
assumes the two estimates independent. They are not quite: both resample the
same reference images, which correlates them positively, so the true interval
of the difference is narrower and this one errs wide (a conservative gate).

Only rows that may be compared are: the same reference set content, feature
extractor, FID mode, k and numbers of generated and reference images (FID's
small-n bias depends on n, so only differences at equal n mean anything);
the others are listed with the reason and never gate. The gate fails on a
significantly worse FID: the interval of candidate − baseline lies entirely
above 0 (below 0 for a higher-is-better metric), overall, against any
reference set. One metric, so no multiplicity correction is needed;
``leaderboard.margins`` does not apply (it names the registered per-image metrics).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import polars as pl

from bench_assets.core.paths import DataPaths
from bench_assets.storage.distribution import ALL_CATEGORIES, DISTRIBUTION_TABLE
from bench_assets.storage.distribution_board import SHOWN_ORDER, markdown
from bench_assets.storage.versions import VersionRef, VersionStore, open_versions

GATED = ("fid",)  # what `bench gate` fails on
KEYS = ["reference", "category", "metric"]
# What must be equal for a difference to mean something, and what to say when it is not.
MUST_MATCH = {
    "reference_fingerprint": "the reference set changed between the two scorings",
    "extractor_id": "different feature extractors",
    "fid_mode": "different FID modes",
    "k": "different neighbourhood sizes k",
    "n_generated": "different numbers of generated images: compare only at equal n",
    "n_reference": "different numbers of reference images: compare only at equal n",
}
SCHEMA = {
    "model_a": pl.Utf8, "model_b": pl.Utf8, "reference": pl.Utf8, "category": pl.Utf8, "metric": pl.Utf8,
    "lower_is_better": pl.Boolean, "value_a": pl.Float64, "value_b": pl.Float64, "diff": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "n_a": pl.Int64, "n_b": pl.Int64, "not_comparable": pl.Utf8,
    "worse": pl.Utf8,
}


def mover_interval(a: float, a_low: float, a_high: float, b: float, b_low: float, b_high: float) -> tuple[float, float]:
    """The interval of a − b from the intervals of a and b (independent estimates), by MOVER."""
    d = a - b
    return d - math.hypot(a - a_low, b_high - b), d + math.hypot(a_high - a, b - b_low)


def _why_not(row: Mapping) -> str | None:
    reasons = [f"{why} ({row[c]} vs {row[c + '_b']})" for c, why in MUST_MATCH.items() if row[c] != row[c + "_b"]]
    return "; ".join(reasons) or None


def _worse(row: Mapping, low: float, high: float, labels: tuple[str, str]) -> str | None:
    """Which model is significantly worse (the interval excludes 0), or None."""
    if low > 0:
        return labels[0] if row["lower_is_better"] else labels[1]
    if high < 0:
        return labels[1] if row["lower_is_better"] else labels[0]
    return None


def _pair_row(row: Mapping, labels: tuple[str, str]) -> dict:
    why = _why_not(row)
    low, high = mover_interval(row["value"], row["ci_low"], row["ci_high"],
                               row["value_b"], row["ci_low_b"], row["ci_high_b"])
    return {"model_a": labels[0], "model_b": labels[1], **{k: row[k] for k in KEYS},
            "lower_is_better": row["lower_is_better"], "value_a": row["value"], "value_b": row["value_b"],
            "diff": row["value"] - row["value_b"], "ci_low": low, "ci_high": high,
            "n_a": row["n_generated"], "n_b": row["n_generated_b"], "not_comparable": why,
            "worse": None if why else _worse(row, low, high, labels)}


def compare_distribution(a: pl.DataFrame, b: pl.DataFrame, labels: tuple[str, str],
                         categories: Sequence[str] | None = None,
                         metrics: Sequence[str] | None = None) -> pl.DataFrame:
    """A − B per reference set, category and metric that both sides have (``categories`` None: all)."""
    if a.is_empty() or b.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    columns = [*KEYS, "value", "ci_low", "ci_high", "lower_is_better", *MUST_MATCH]
    joined = a.select(columns).join(b.select(columns), on=KEYS, suffix="_b")
    if categories is not None:
        joined = joined.filter(pl.col("category").is_in(list(categories)))
    if metrics is not None:
        joined = joined.filter(pl.col("metric").is_in(list(metrics)))
    rank = {m: i for i, m in enumerate(SHOWN_ORDER)}
    rows = sorted((_pair_row(r, labels) for r in joined.iter_rows(named=True)),
                  key=lambda r: (r["reference"], r["category"] != ALL_CATEGORIES, r["category"],
                                 rank.get(r["metric"], len(rank)), r["metric"]))
    return pl.DataFrame(rows, schema=SCHEMA)


def regressions(frame: pl.DataFrame, gated: Sequence[str] = GATED) -> pl.DataFrame:
    """Overall rows where A (the candidate) is significantly worse on a gated metric."""
    return frame.filter((pl.col("category") == ALL_CATEGORIES) & pl.col("metric").is_in(list(gated))
                        & (pl.col("worse") == pl.col("model_a")))


def describe(row: Mapping) -> str:
    """One line: the metric, the reference set, the difference and its interval."""
    return (f"{row['metric']} vs reference {row['reference']!r}: {row['model_a']} − {row['model_b']} = "
            f"{row['diff']:+.4g} [95% CI {row['ci_low']:+.4g}, {row['ci_high']:+.4g}] (n={row['n_a']}/{row['n_b']})")


def _cells(row: Mapping) -> list[str]:
    verdict = f"not comparable: {row['not_comparable']}" if row["not_comparable"] else (row["worse"] or "–")
    return [row["metric"] + (" ↓" if row["lower_is_better"] else " ↑"), row["reference"], row["category"],
            f"{row['model_a']} {row['value_a']:.4g}", f"{row['model_b']} {row['value_b']:.4g}",
            f"{row['diff']:+.4g} [{row['ci_low']:+.4g}, {row['ci_high']:+.4g}]", f"{row['n_a']}/{row['n_b']}", verdict]


def to_markdown(frame: pl.DataFrame) -> str:
    """The comparison lines for the terminal; "" when the two share no distribution row."""
    if frame.is_empty():
        return ""
    return markdown(["metric", "reference", "category", "A", "B", "A − B [95% CI, MOVER]", "n A/B", "worse"],
                    [_cells(row) for row in frame.iter_rows(named=True)])


def side_rows(store: VersionStore, reference: str) -> tuple[str, pl.DataFrame]:
    """(label, distribution rows) of ``model``, ``model@N`` or ``model@<fp>``.

    The latest version's rows are the model's current partitions (one per
    reference set); an older version has rows only where they were archived.
    """
    ref = store.resolve(reference)
    versions = store.of(ref.model)
    current = ref.version is None or (versions and ref.version == versions[-1])
    return ref.label, store.rows(DISTRIBUTION_TABLE, VersionRef(ref.model) if current else ref)


def split_names(names: Sequence[str] | None) -> tuple[list[str] | None, list[str] | None]:
    """A ``--metric(s)`` list as (per-item metrics, distribution metrics): None every one of a kind, [] none."""
    if not names:
        return None, None
    return [n for n in names if n not in SHOWN_ORDER], [n for n in names if n in SHOWN_ORDER]


def compare_in_data_dir(paths: DataPaths, a: str, b: str, categories: Sequence[str] | None = None,
                        metrics: Sequence[str] | None = None) -> pl.DataFrame:
    """``compare_distribution`` of two references (``model``, ``model@N``) over the data directory's versions."""
    store = open_versions(paths)
    (label_a, rows_a), (label_b, rows_b) = side_rows(store, a), side_rows(store, b)
    return compare_distribution(rows_a, rows_b, (label_a, label_b), categories, metrics)
