"""Results for people: item-level score tables joined to prompt text, and exports.

The report and ``bench export`` read the warehouse through these functions,
so "a score row with its prompt and image" means the same thing in the
report's drill-down, in an exported CSV and in SQL. A row's ``image_path``
is its image's key in the image store (rows written before keys are read as
keys too); an export can add where that is now (``image_location``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, Sequence

import polars as pl

from bench_assets.core.naming import KEY_PARTS
from bench_assets.core.objects import Store
from bench_assets.storage.warehouse import Warehouse

LEADERBOARD_TABLES = ("leaderboard", "leaderboard_long")
PROMPTS_TABLE = "prompts"

# Bookkeeping columns every score row carries (added by the metric runner);
# everything else a metric stores (task, reason, answers, ocr_text ...) is its own.
SCORE_KEY_COLUMNS = (
    "model", "category", "prompt_id", "image_index", "seed", "image_path", "image_sha256",
    "input_hash", "metric", "metric_version", "scorer", "scored_at", "gpu_seconds", "value",
)


# One writer per export format: adding a format is one line.
EXPORT_WRITERS: dict[str, Callable[[pl.DataFrame, Path], None]] = {
    "csv": lambda frame, path: frame.write_csv(path),
    "json": lambda frame, path: frame.write_json(path),  # an array of row objects
    "parquet": lambda frame, path: frame.write_parquet(path),
}


def prompts(warehouse: Warehouse) -> pl.DataFrame:
    """The prompt suite as the leaderboard asset last wrote it (empty if never)."""
    return warehouse.read_table(PROMPTS_TABLE)


def image_keys(values: pl.Series) -> pl.Series:
    """A column of recorded image locations as keys (old absolute paths included); nulls stay null.

    ``recorded_image_key``'s rules as column expressions (a key: slashes trimmed; an absolute path or
    URL: its last ``KEY_PARTS`` parts), so 4 million rows take a fraction of a second, not a call each.
    """
    text = values.cast(pl.Utf8).str.replace_all("\\", "/", literal=True)
    absolute = text.str.starts_with("/") | text.str.contains("://", literal=True) | text.str.contains(r"^[A-Za-z]:/")
    if not absolute.any():  # every row a key (the usual case): no split of millions of paths
        return text.str.strip_chars("/").alias(values.name)
    last_parts = text.str.strip_chars_end("/").str.split("/").list.tail(KEY_PARTS).list.join("/")
    keys = pl.select(pl.when(absolute).then(last_parts).otherwise(text.str.strip_chars("/"))).to_series()
    return keys.alias(values.name)


def item_scores(warehouse: Warehouse, table: str, prompt_table: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every row of a score table with its prompt's text; each row's image key is already on it."""
    return _with_prompts(warehouse.read_table(table), warehouse, prompt_table)


def read_model_rows(warehouse: Warehouse, table: str, model: str, categories: Sequence[str]) -> pl.DataFrame:
    """One model's rows of a partitioned table (its ``categories``' files, in path order); empty if none."""
    frames = warehouse.read_keys([warehouse.partition_key(table, model, c) for c in sorted(categories)])
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def read_model_column(warehouse: Warehouse, table: str, model: str, categories: Sequence[str],
                      column: str) -> pl.Series:
    """One column of one model's rows (only that column read from each file); a file that does not read as
    Parquet, or lacks the column, gives none (the readers of whole rows move a damaged file aside)."""
    values = []
    for category in sorted(categories):
        key = warehouse.partition_key(table, model, category)
        path = warehouse.store.local_path(key)
        try:
            frame = pl.read_parquet(path if path is not None else io.BytesIO(warehouse.store.get_bytes(key)),
                                    columns=[column])
        except Exception:  # noqa: BLE001 - missing, damaged or without the column: no values from it
            continue
        values.append(frame[column])
    return pl.concat(values) if values else pl.Series(column, [], dtype=pl.Utf8)


def model_scores(warehouse: Warehouse, table: str, model: str, categories: Sequence[str],
                 prompt_table: pl.DataFrame | None = None) -> pl.DataFrame:
    """``item_scores`` of one model only (its ``categories``' partitions): what a per-model page or export reads."""
    return _with_prompts(read_model_rows(warehouse, table, model, categories), warehouse, prompt_table)


def _with_prompts(scores: pl.DataFrame, warehouse: Warehouse, prompt_table: pl.DataFrame | None) -> pl.DataFrame:
    """Score rows with their prompt's text and image keys.

    Columns that are entirely null in some partitions (a set metric's
    ``image_index``) are cast to their non-null types so the join and any
    writer see one schema.
    """
    if scores.is_empty():
        return scores
    scores = scores.with_columns(
        [pl.col(c).cast(pl.Int64) for c in ("image_index", "seed") if c in scores.columns]
        + [pl.col(c).cast(pl.Utf8) for c in ("image_path", "image_sha256") if c in scores.columns]
    )
    if "image_path" in scores.columns:
        scores = scores.with_columns(image_keys(scores["image_path"]))
    prompt_table = prompts(warehouse) if prompt_table is None else prompt_table
    if prompt_table.is_empty():
        return scores.with_columns(pl.lit(None, dtype=pl.Utf8).alias("prompt"))
    text = prompt_table.select("prompt_id", "category", "prompt").unique(["prompt_id", "category"])
    return scores.join(text, on=["prompt_id", "category"], how="left")


def metric_extras(frame: pl.DataFrame) -> list[str]:
    """The columns a metric stores beyond the bookkeeping ones (its reasons and details)."""
    return [c for c in frame.columns if c not in SCORE_KEY_COLUMNS and c != "prompt"]


def export_results(warehouse: Warehouse, score_tables: Sequence[str], fmt: str, out: Path,
                   images: Store | None = None) -> list[Path]:
    """Write the leaderboards, the prompts and every item-level score table to ``out``.

    One file per table (``scores_clip.csv`` ...), each score row joined to its
    prompt's text and carrying its image key; with ``images``, also the
    image's current location (a path or URL) as ``image_location``. Returns
    the files written.
    """
    if fmt not in EXPORT_WRITERS:
        raise ValueError(f"unknown export format {fmt!r}; known: {sorted(EXPORT_WRITERS)}")
    out.mkdir(parents=True, exist_ok=True)
    prompt_table = prompts(warehouse)
    frames = {name: warehouse.read_table(name) for name in (*LEADERBOARD_TABLES, PROMPTS_TABLE)}
    frames |= {table: _located(item_scores(warehouse, table, prompt_table), images) for table in score_tables}
    written = []
    for name, frame in frames.items():
        if frame.is_empty():
            continue
        written.append(write_export(frame, fmt, out / f"{name}.{fmt}"))
    return written


def write_export(frame: pl.DataFrame, fmt: str, target: Path) -> Path:
    """One table in ``fmt`` at ``target``, written beside it and renamed (a reader never sees half a file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    EXPORT_WRITERS[fmt](_exportable(frame, fmt), tmp)
    tmp.replace(target)
    return target


def _located(scores: pl.DataFrame, images: Store | None) -> pl.DataFrame:
    if images is None or "image_path" not in scores.columns:
        return scores
    where = [None if k is None else images.location(k) for k in scores["image_path"].to_list()]
    return scores.with_columns(pl.Series("image_location", where, dtype=pl.Utf8))


def _exportable(frame: pl.DataFrame, fmt: str) -> pl.DataFrame:
    """CSV has no null type: all-null columns become empty text."""
    if fmt != "csv":
        return frame
    return frame.with_columns([pl.col(c).cast(pl.Utf8) for c, t in frame.schema.items() if t == pl.Null])
