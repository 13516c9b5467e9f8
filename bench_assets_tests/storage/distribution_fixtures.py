"""Rows of ``distribution_scores`` for the board, comparison and report tests, written with the table's own writer."""

from __future__ import annotations

import polars as pl

from bench_assets.metrics.distribution_registry import DISTRIBUTION_METRICS
from bench_assets.storage.distribution import DISTRIBUTION_SCHEMA, distribution_frame, write_distribution_scores
from bench_assets.storage.warehouse import Warehouse

SCHEMA = DISTRIBUTION_SCHEMA
# precision, recall, density and coverage are rows of the precision_recall metric
_CLASSES = {**DISTRIBUTION_METRICS, **{m: DISTRIBUTION_METRICS["precision_recall"]
                                       for m in ("precision", "recall", "density", "coverage")}}


def score_row(model: str, metric: str, value: float, half_width: float = 1.0, n: int = 64, n_reference: int = 64,
              reference: str = "ref", category: str = "all") -> dict:
    """A row as the metric's ``row`` makes it (its min_n, note and direction), with a symmetric interval."""
    cls = _CLASSES[metric]
    return {"model": model, "reference": reference, "category": category, "metric": metric, "value": value,
            "std": half_width / 2, "ci_low": value - half_width, "ci_high": value + half_width,
            "n_generated": n, "n_reference": n_reference, "min_n": cls.min_n,
            "comparable": min(n, n_reference) >= cls.min_n, "note": cls.note, "lower_is_better": cls.lower_is_better,
            "extractor": cls.extractor, "extractor_id": "tiny-0", "fid_mode": "clean" if metric == "fid" else None,
            "k": 3 if cls is DISTRIBUTION_METRICS["precision_recall"] else None, "metric_version": cls.version,
            "reference_fingerprint": f"fp-{reference}", "images_fingerprint": f"img-{model}",
            "scored_at": "2026-12-05T00:00:00+00:00"}


def frame(rows: list[dict]) -> pl.DataFrame:
    return distribution_frame(rows)


def write_rows(warehouse: Warehouse, rows: list[dict]) -> None:
    """One partition per model × reference, as the distribution asset writes them."""
    parts: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        parts.setdefault((row["model"], row["reference"]), []).append(row)
    for (model, reference), part in parts.items():
        write_distribution_scores(warehouse, model, reference, part)
