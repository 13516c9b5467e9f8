"""Rows of ``distribution_scores`` for the board, comparison and report tests: exactly the table's schema."""

from __future__ import annotations

import polars as pl

from bench_assets.storage.distribution_board import DISTRIBUTION_TABLE
from bench_assets.storage.warehouse import Warehouse

LOWER = {"fid", "kid", "cmmd", "fd_dinov2"}
MIN_N = {"fid": 10_000, "fd_dinov2": 10_000}
SCHEMA = {
    "model": pl.Utf8, "reference": pl.Utf8, "category": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64,
    "std": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "n_generated": pl.Int64,
    "n_reference": pl.Int64, "min_n": pl.Int64, "comparable": pl.Boolean, "lower_is_better": pl.Boolean,
    "extractor": pl.Utf8, "extractor_id": pl.Utf8, "fid_mode": pl.Utf8, "k": pl.Int64, "metric_version": pl.Utf8,
    "reference_fingerprint": pl.Utf8, "images_fingerprint": pl.Utf8, "scored_at": pl.Utf8,
}


def score_row(model: str, metric: str, value: float, half_width: float = 1.0, n: int = 64, n_reference: int = 64,
              reference: str = "ref", category: str = "all") -> dict:
    min_n = MIN_N.get(metric, 0)
    return {"model": model, "reference": reference, "category": category, "metric": metric, "value": value,
            "std": half_width / 2, "ci_low": value - half_width, "ci_high": value + half_width,
            "n_generated": n, "n_reference": n_reference, "min_n": min_n,
            "comparable": min(n, n_reference) >= min_n, "lower_is_better": metric in LOWER,
            "extractor": "tiny", "extractor_id": "tiny-0", "fid_mode": "clean", "k": 3, "metric_version": "1",
            "reference_fingerprint": f"fp-{reference}", "images_fingerprint": f"img-{model}",
            "scored_at": "2026-12-05T00:00:00+00:00"}


def write_rows(warehouse: Warehouse, rows: list[dict]) -> None:
    """One partition per model × reference, as the distribution asset writes them."""
    frame = pl.DataFrame(rows, schema=SCHEMA)
    for (model, reference), part in frame.group_by("model", "reference"):
        warehouse.write_partition(DISTRIBUTION_TABLE, model, reference, part)
