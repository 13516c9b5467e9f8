"""``bench.duckdb``: views over the Parquet tables, so SQL sees the latest rows.

Views are bound to file globs, not to copies of the data, so new Parquet files
show up in every query without touching the DuckDB file. Only a new *table*
needs a new view. Runs therefore never need ``bench.duckdb``; refreshing the
views is best-effort, and a user's open session (which holds DuckDB's file
lock) only delays a new view, it never fails a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from bench_assets.storage.warehouse import Warehouse


@dataclass(frozen=True)
class CatalogRefresh:
    views: list[str]
    skipped_reason: str | None = None


def _view_sql(warehouse: Warehouse, table: str) -> str:
    glob = warehouse.table_glob(table).replace("'", "''")
    return (
        f'CREATE OR REPLACE VIEW "{table}" AS '
        f"SELECT * FROM read_parquet('{glob}', union_by_name = true)"
    )


def refresh_views(db_path: Path, warehouse: Warehouse) -> CatalogRefresh:
    """Create a view per warehouse table; skip (don't fail) if the file is locked."""
    tables = warehouse.tables()
    try:
        con = duckdb.connect(str(db_path))
    except duckdb.IOException:
        # A user's read-write session holds DuckDB's file lock. Existing views read the Parquet
        # globs, so new rows show anyway; only a brand-new table waits for the next refresh.
        return CatalogRefresh(views=[], skipped_reason=(
            f"{db_path.name} is open read-write in another session; new views wait for the next refresh "
            "(existing views already show the new rows)"))
    try:
        existing = {
            name: sql
            for name, sql in con.execute(
                "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
        for table in tables:
            # DuckDB stores a normalised text; the glob in it tells us the view is current.
            if warehouse.table_glob(table) not in existing.get(table, ""):
                con.execute(_view_sql(warehouse, table))
    finally:
        con.close()
    return CatalogRefresh(views=tables)


def connect_read_only(db_path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only session for the CLI (many can be open at once)."""
    return duckdb.connect(str(db_path), read_only=True)
