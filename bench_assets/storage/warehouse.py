"""Parquet tables, one object per (table, model, category) partition, in a store.

Layout (keys of the warehouse store, ``<storage root>/warehouse``):
``<table>/<model>/<category>.parquet`` for partitioned tables and
``<table>/<table>.parquet`` for whole tables (the leaderboard). The store is
a local folder (the default, ``data/warehouse``) or an object-store prefix
(``s3://bucket/prefix/warehouse``), see ``storage/store.py``. Every write is
one :meth:`Store.put_bytes` of the finished file (temp file + rename on disk,
one PUT on an object store), so re-materializing a partition replaces
exactly its rows, and a reader (a DuckDB session globbing ``*.parquet``)
sees the old file or the new one, never half of either. Nothing here locks
anything.

A file that does not read as Parquet (truncated, overwritten) is moved aside
as ``<name>.parquet.corrupt`` the first time anything reads it, and reported
in ``quarantined``: the partition then reads as missing, so ``bench status``
says so and the next run rebuilds it, and DuckDB's views (globs of
``*.parquet``) never trip over it.

Local files are read by path (no copy of their bytes); objects are fetched
whole (a partition is small) and read from memory.
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from bench_assets.core.config import BenchConfig, load_config
from bench_assets.core.paths import DataPaths
from bench_assets.core.objects import Store
from bench_assets.storage.store import open_store, warehouse_store
log = logging.getLogger(__name__)

PARQUET = ".parquet"
CORRUPT = ".corrupt"
PARALLEL_GETS = 16  # concurrent object reads of one table on an object store (latency-bound)


class Warehouse:
    """The Parquet tables under one store; ``Warehouse(path)`` still opens a local folder."""

    def __init__(self, store: Store | Path | str) -> None:
        self.store: Store = store if isinstance(store, Store) else open_store(store)
        self.quarantined: list[str] = []  # one line per unreadable file moved aside by this object

    def __repr__(self) -> str:
        return f"Warehouse({self.store.url!r})"

    # -- where things are ------------------------------------------------------------------------

    @staticmethod
    def partition_key(table: str, model: str, category: str) -> str:
        return f"{table}/{model}/{category}{PARQUET}"

    @staticmethod
    def partition_of(key: str) -> tuple[str, str, str] | None:
        """(table, model, category) of a partition file's key (``partition_key``'s inverse); None for another
        key (a whole table's file, a file moved aside)."""
        parts = key.split("/")
        if len(parts) != 3 or not key.endswith(PARQUET):
            return None
        return parts[0], parts[1], parts[2][: -len(PARQUET)]

    @staticmethod
    def table_key(table: str) -> str:
        return f"{table}/{table}{PARQUET}"

    def partition_file(self, table: str, model: str, category: str) -> Path | None:
        """The partition's file on a local store (None on an object store)."""
        return self.store.local_path(self.partition_key(table, model, category))

    def table_file(self, table: str) -> Path | None:
        """The whole table's file on a local store (None on an object store)."""
        return self.store.local_path(self.table_key(table))

    def table_glob(self, table: str) -> str:
        """What DuckDB's ``read_parquet`` reads for the table: a path glob or a URL glob."""
        return f"{self.store.location(table)}/**/*{PARQUET}"

    def parquet_keys(self, prefix: str = "") -> list[str]:
        """The Parquet objects under ``prefix``, in path order (``m/…`` before ``m-2/…``, as on disk)."""
        return sorted((k for k in self.store.keys(prefix) if k.endswith(PARQUET)), key=lambda k: k.split("/"))

    def categories(self, table: str, model: str) -> list[str]:
        """The categories that have a partition file of ``model`` in ``table``."""
        prefix = f"{table}/{model}/"
        return sorted(k[len(prefix):-len(PARQUET)] for k in self.parquet_keys(f"{table}/{model}")
                      if k.startswith(prefix) and "/" not in k[len(prefix):])

    def tables(self) -> list[str]:
        """Tables that have at least one Parquet file."""
        return sorted({k.split("/", 1)[0] for k in self.parquet_keys() if "/" in k})

    # -- reading ---------------------------------------------------------------------------------

    def _read(self, key: str) -> pl.DataFrame | None:
        """The file's rows, or None (and the file moved aside) if it is not readable Parquet."""
        path = self.store.local_path(key)
        try:
            return pl.read_parquet(path if path is not None else io.BytesIO(self.store.get_bytes(key)))
        except FileNotFoundError:
            return None
        except Exception as exc:  # polars raises ComputeError/OSError/... for a damaged file
            return self._quarantine(key, exc)

    def _quarantine(self, key: str, exc: Exception) -> None:
        aside = key + CORRUPT
        try:
            self.store.move(key, aside)
        except FileNotFoundError:
            return None  # another reader moved it first
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        line = (f"{self.store.location(key)}: not readable as Parquet ({reason}); moved to "
                f"{aside.rsplit('/', 1)[-1]}, the partition will be rebuilt")
        self.quarantined.append(line)
        log.warning(line)
        return None

    def read_partition(self, table: str, model: str, category: str) -> pl.DataFrame | None:
        return self._read(self.partition_key(table, model, category))

    def read_keys(self, keys: Sequence[str]) -> list[pl.DataFrame]:
        """The readable, non-empty frames of ``keys``; an object store's are fetched concurrently."""
        if self.store.local_path("") is not None or len(keys) < 2:
            frames = [self._read(k) for k in keys]
        else:
            with ThreadPoolExecutor(max_workers=min(PARALLEL_GETS, len(keys))) as pool:
                frames = list(pool.map(self._read, keys))
        return [f for f in frames if f is not None and f.width]

    def read_table(self, table: str) -> pl.DataFrame:
        """All partitions of a table (columns unioned by name); empty if none."""
        frames = self.read_keys(self.parquet_keys(table))
        if not frames:
            return pl.DataFrame()
        return pl.concat(frames, how="diagonal_relaxed")

    def read_columns(self, table: str, columns: Sequence[str], model: str | None = None) -> pl.DataFrame:
        """``read_table(table)`` (or one ``model``'s partitions) with only ``columns`` read from each file.

        What a reader that needs a few columns of a big table pays: each local file's footer and those
        columns, the files scanned together (polars reads them in parallel); a column no file has is
        left out, as ``read_table`` leaves it out. An unreadable file is moved aside as every reader does.
        """
        keys = self.parquet_keys(table if model is None else f"{table}/{model}")
        keys = keys if model is None else [k for k in keys if k.startswith(f"{table}/{model}/")]
        if self.store.local_path("") is None:  # an object store: each object is fetched whole anyway
            frames = [f.select([c for c in columns if c in f.columns]) for f in self.read_keys(keys)]
            frames = [f for f in frames if f.width]
            return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
        scans = []
        for key in keys:
            scan = pl.scan_parquet(self.store.local_path(key))
            try:
                present = set(scan.collect_schema().names())
            except FileNotFoundError:
                continue
            except Exception as exc:  # noqa: BLE001 - polars raises ComputeError/OSError/... for a damaged file
                self._quarantine(key, exc)
                continue
            if present & set(columns):
                scans.append(scan.select([c for c in columns if c in present]))
        return pl.concat(scans, how="diagonal_relaxed").collect() if scans else pl.DataFrame()

    # -- writing ---------------------------------------------------------------------------------

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
        key = self.partition_key(table, model, category)
        if frame.is_empty() and schema is None:
            self.store.delete(key)
            return 0
        self.store.put_bytes(key, parquet_bytes(frame))
        return frame.height

    def write_table(self, table: str, frame: pl.DataFrame) -> int:
        self.store.put_bytes(self.table_key(table), parquet_bytes(frame))
        return frame.height

    def delete_partition(self, table: str, model: str, category: str) -> None:
        self.store.delete(self.partition_key(table, model, category))

    def delete_model(self, table: str, model: str) -> None:
        """Every partition file of ``model`` in ``table`` (pruning an archived version)."""
        for key in self.store.keys(f"{table}/{model}"):
            self.store.delete(key)


def open_warehouse(paths: DataPaths, config: BenchConfig | None = None) -> Warehouse:
    """The installation's warehouse: ``<storage root>/warehouse`` (by default ``data/warehouse``).

    The one constructor the CLI, the report, the arena and the Dagster
    resource use, so they all follow ``storage: {root:}`` / ``BENCH_STORAGE_ROOT``.
    """
    return Warehouse(warehouse_store(paths, config if config is not None else load_config(paths)))


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    """The frame as one finished Parquet file, ready for a single atomic put."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _frame(rows: Sequence[Mapping[str, Any]] | pl.DataFrame, schema: Mapping[str, Any] | None) -> pl.DataFrame:
    if isinstance(rows, pl.DataFrame):
        return rows
    if not rows:
        return pl.DataFrame(schema=dict(schema or {}))
    return pl.DataFrame(list(rows), schema_overrides=dict(schema or {}), infer_schema_length=None)
