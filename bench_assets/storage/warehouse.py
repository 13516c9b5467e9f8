"""Parquet tables, one file per (table, model, category) partition.

Layout: ``warehouse/<table>/<model>/<category>.parquet`` for partitioned
tables and ``warehouse/<table>/<table>.parquet`` for whole tables (the
leaderboard). Every write goes to a temp file in the same folder and is
renamed over the old one, so re-materializing a partition replaces exactly
its rows, and a reader (a DuckDB session globbing ``*.parquet``) sees the old
file or the new one, never half of either. Nothing here locks anything.

A file that does not read as Parquet (truncated, overwritten) is moved aside
as ``<name>.parquet.corrupt`` the first time anything reads it, and reported
in ``quarantined``: the partition then reads as missing, so ``bench status``
says so and the next run rebuilds it, and DuckDB's views (globs of
``*.parquet``) never trip over it.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl


log = logging.getLogger(__name__)


class Warehouse:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.quarantined: list[str] = []  # one line per unreadable file moved aside by this object

    def _read(self, path: Path) -> pl.DataFrame | None:
        """The file's rows, or None (and the file moved aside) if it is not readable Parquet."""
        try:
            return pl.read_parquet(path)
        except FileNotFoundError:
            return None
        except Exception as exc:  # polars raises ComputeError/OSError/... for a damaged file
            aside = path.with_name(path.name + ".corrupt")
            try:
                os.replace(path, aside)
            except FileNotFoundError:
                return None  # another reader moved it first
            reason = str(exc).splitlines()[0][:160]
            line = f"{path}: not readable as Parquet ({reason}); moved to {aside.name}, the partition will be rebuilt"
            self.quarantined.append(line)
            log.warning(line)
            return None

    def partition_file(self, table: str, model: str, category: str) -> Path:
        return self.root / table / model / f"{category}.parquet"

    def table_file(self, table: str) -> Path:
        return self.root / table / f"{table}.parquet"

    def table_glob(self, table: str) -> str:
        return str(self.root.resolve() / table / "**" / "*.parquet")

    def categories(self, table: str, model: str) -> list[str]:
        """The categories that have a partition file of ``model`` in ``table``."""
        folder = self.root / table / model
        return sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []

    def tables(self) -> list[str]:
        """Tables that have at least one Parquet file."""
        if not self.root.is_dir():
            return []
        return sorted(
            d.name for d in self.root.iterdir() if d.is_dir() and next(d.rglob("*.parquet"), None)
        )

    def write_partition(
        self,
        table: str,
        model: str,
        category: str,
        rows: Sequence[Mapping[str, Any]] | pl.DataFrame,
        schema: Mapping[str, pl.DataType] | None = None,
    ) -> int:
        """Replace the partition's rows. No rows and no schema removes the file."""
        frame = _frame(rows, schema)
        target = self.partition_file(table, model, category)
        if frame.is_empty() and schema is None:
            target.unlink(missing_ok=True)
            return 0
        _write_atomic(frame, target)
        return frame.height

    def write_table(self, table: str, frame: pl.DataFrame) -> int:
        _write_atomic(frame, self.table_file(table))
        return frame.height

    def read_partition(self, table: str, model: str, category: str) -> pl.DataFrame | None:
        path = self.partition_file(table, model, category)
        return self._read(path) if path.is_file() else None

    def read_table(self, table: str) -> pl.DataFrame:
        """All partitions of a table (columns unioned by name); empty if none."""
        files = sorted((self.root / table).rglob("*.parquet")) if (self.root / table).is_dir() else []
        frames = [self._read(f) for f in files]
        frames = [f for f in frames if f is not None and f.width]
        if not frames:
            return pl.DataFrame()
        return pl.concat(frames, how="diagonal_relaxed")


def _frame(rows: Sequence[Mapping[str, Any]] | pl.DataFrame, schema: Mapping[str, Any] | None) -> pl.DataFrame:
    if isinstance(rows, pl.DataFrame):
        return rows
    if not rows:
        return pl.DataFrame(schema=dict(schema or {}))
    return pl.DataFrame(list(rows), schema_overrides=dict(schema or {}), infer_schema_length=None)


def _write_atomic(frame: pl.DataFrame, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        frame.write_parquet(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
