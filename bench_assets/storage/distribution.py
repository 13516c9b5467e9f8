"""The ``distribution_scores`` table: FID, KID, CMMD, FD-DINOv2, precision/recall of a model against a reference set.

One warehouse partition file per model × reference set
(``distribution_scores/<model>/<reference>.parquet``), so re-scoring a model
against one reference set replaces exactly those rows. Each file holds one
row per (category, metric): ``category`` is ``all`` (every prompt category's
images together) or one prompt category. Every row carries what makes its
number comparable with another one: the sample sizes (``n_generated``,
``n_reference``), the metric's comparability threshold ``min_n`` with
``comparable`` (both n at least ``min_n``) and its ``note``, the feature
extractor and its weights' fingerprint, FID's resize mode, precision/recall's
``k``, and the fingerprints of the reference set and of the image set scored.
DuckDB sees the table through the ordinary view (``storage/catalog.py`` globs
``distribution_scores/**/*.parquet``): ``bench sql -c "from distribution_scores"``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping, Sequence

import polars as pl

from bench_assets.storage.warehouse import Warehouse

DISTRIBUTION_TABLE = "distribution_scores"
ALL_CATEGORIES = "all"  # the category of the rows over every prompt category's images together

# The table's columns, in order. Nullable: std/ci_* (a metric without an interval), fid_mode (not FID), k (not
# precision/recall), note (nothing to say).
DISTRIBUTION_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.Utf8,
    "reference": pl.Utf8,  # the reference set's name (data/references/<name>)
    "category": pl.Utf8,  # "all" or a prompt category
    "metric": pl.Utf8,  # fid, kid, cmmd, fd_dinov2, precision, recall, density, coverage
    "value": pl.Float64,
    "std": pl.Float64,  # KID: std over subsets; others: the bootstrap's standard deviation
    "ci_low": pl.Float64,  # 95% percentile bootstrap interval over generated (and reference) images
    "ci_high": pl.Float64,
    "n_generated": pl.Int64,
    "n_reference": pl.Int64,
    "min_n": pl.Int64,  # below this many images (either side) the number is not comparable across n
    "comparable": pl.Boolean,  # n_generated >= min_n and n_reference >= min_n
    "note": pl.Utf8,  # the metric's comparability note, e.g. "FID below 10k images is biased upward; ..."
    "lower_is_better": pl.Boolean,
    "extractor": pl.Utf8,  # inception_clean, inception_legacy, clip, dinov2
    "extractor_id": pl.Utf8,  # the extractor's weights fingerprint (like a metric's scorer id)
    "fid_mode": pl.Utf8,  # clean | legacy for FID rows
    "k": pl.Int64,  # the neighbourhood size of precision/recall/density/coverage
    "metric_version": pl.Utf8,
    "reference_fingerprint": pl.Utf8,  # over the reference images' sha256
    "images_fingerprint": pl.Utf8,  # over the generated images' sha256
    "scored_at": pl.Utf8,  # ISO-8601 UTC, as the score tables' scored_at
}


def now_stamp() -> str:
    """The ``scored_at`` of rows written now (same format as the score tables')."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def distribution_frame(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Rows as a frame of exactly the table's columns (missing keys null, unknown keys refused)."""
    unknown = sorted({key for row in rows for key in row} - set(DISTRIBUTION_SCHEMA))
    if unknown:
        raise ValueError(f"{DISTRIBUTION_TABLE}: unknown columns {unknown}")
    columns = {name: [row.get(name) for row in rows] for name in DISTRIBUTION_SCHEMA}
    return pl.DataFrame(columns, schema=DISTRIBUTION_SCHEMA)


def write_distribution_scores(
    warehouse: Warehouse, model: str, reference: str, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Replace the model × reference partition's rows (one atomic put); returns the row count."""
    bad = sorted({(row.get("model"), row.get("reference")) for row in rows} - {(model, reference)})
    if bad:
        raise ValueError(f"{DISTRIBUTION_TABLE}/{model}/{reference}: rows of another partition {bad}")
    return warehouse.write_partition(DISTRIBUTION_TABLE, model, reference, distribution_frame(rows),
                                     schema=DISTRIBUTION_SCHEMA)


def read_distribution_scores(warehouse: Warehouse, model: str | None = None,
                             reference: str | None = None) -> pl.DataFrame:
    """The table's rows (optionally one model's, one reference set's); the table's columns even when empty."""
    if model is not None and reference is not None:
        frame = warehouse.read_partition(DISTRIBUTION_TABLE, model, reference)
        frames = [] if frame is None else [frame]
    else:
        prefix = DISTRIBUTION_TABLE if model is None else f"{DISTRIBUTION_TABLE}/{model}/"
        frames = warehouse.read_keys(warehouse.parquet_keys(prefix))
    frame = pl.concat(frames, how="diagonal_relaxed") if frames else distribution_frame([])
    if reference is not None:
        frame = frame.filter(pl.col("reference") == reference)
    return frame.sort(["model", "reference", "category", "metric"])


def distribution_partitions(warehouse: Warehouse) -> list[tuple[str, str]]:
    """The (model, reference) partitions that have a file, sorted."""
    prefix = f"{DISTRIBUTION_TABLE}/"
    pairs = (key[len(prefix):].rsplit(".", 1)[0].split("/") for key in warehouse.parquet_keys(DISTRIBUTION_TABLE))
    return sorted((pair[0], pair[1]) for pair in pairs if len(pair) == 2)


def delete_distribution_scores(warehouse: Warehouse, model: str, reference: str) -> None:
    """Drop a partition's rows (its reference set was removed)."""
    warehouse.delete_partition(DISTRIBUTION_TABLE, model, reference)
