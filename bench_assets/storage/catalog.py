"""``bench.duckdb``: views over the Parquet tables, so SQL sees the latest rows.

Views are bound to file globs, not to copies of the data, so new Parquet files
show up in every query without touching the DuckDB file. Only a new *table*
needs a new view. Runs therefore never need ``bench.duckdb``; refreshing the
views is best-effort, and a user's open session (which holds DuckDB's file
lock) only delays a new view, it never fails a run.

The globs are the warehouse store's locations: a path under the data
directory, or an ``s3://…`` URL that DuckDB reads through the store's own
fsspec filesystem, registered on each connection (``register_filesystem``;
registrations are not saved in the file, and DuckDB's httpfs extension is not
needed). A saved view names an absolute location, which goes stale when the
data directory or the bucket prefix moves; so every connection this package
opens first puts temporary views from the *current* configuration in front
of any stale saved one (:func:`bind_views`), and the next refresh rewrites
the saved ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from bench_assets.storage.distribution_board import view_statements
from bench_assets.storage.warehouse import Warehouse


@dataclass(frozen=True)
class CatalogRefresh:
    views: list[str]
    skipped_reason: str | None = None


def _view_sql(warehouse: Warehouse, table: str, temporary: bool = False) -> str:
    glob = warehouse.table_glob(table).replace("'", "''")
    return (
        f'CREATE OR REPLACE {"TEMP " if temporary else ""}VIEW "{table}" AS '
        f"SELECT * FROM read_parquet('{glob}', union_by_name = true)"
    )


def register_store(con: duckdb.DuckDBPyConnection, warehouse: Warehouse) -> None:
    """Let this connection read the warehouse's URLs (an object store) through its fsspec filesystem."""
    filesystem = warehouse.store.fsspec_filesystem()
    if filesystem is not None:
        con.register_filesystem(filesystem)


def _saved_views(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal AND NOT temporary").fetchall()
    return dict(rows)


def _stale(warehouse: Warehouse, tables: list[str], saved: dict[str, str]) -> list[str]:
    """Tables whose saved view is missing or reads another location (DuckDB keeps the SQL text)."""
    return [t for t in tables if warehouse.table_glob(t) not in saved.get(t, "")]


def refresh_views(db_path: Path, warehouse: Warehouse) -> CatalogRefresh:
    """Create or repoint a saved view per warehouse table; skip (don't fail) if the file is locked."""
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
        register_store(con, warehouse)
        for table in _stale(warehouse, tables, _saved_views(con)):
            con.execute(_view_sql(warehouse, table))
        for statement in view_statements(tables):  # views of views (distribution_leaderboard): always rewritten
            con.execute(statement)
    finally:
        con.close()
    return CatalogRefresh(views=tables)


def bind_views(con: duckdb.DuckDBPyConnection, warehouse: Warehouse) -> list[str]:
    """Make ``con`` (read-only is fine) see the warehouse where the configuration says it is now.

    Registers the store's filesystem, then shadows every missing or stale
    saved view with a temporary one (temporary views win by name); views
    that are already current are left alone. Returns the shadowed tables.
    """
    register_store(con, warehouse)
    tables = warehouse.tables()
    stale = _stale(warehouse, tables, _saved_views(con))
    for table in stale:
        con.execute(_view_sql(warehouse, table, temporary=True))
    for statement in view_statements(tables, temporary=True):  # a view of views: shadowed with today's query
        con.execute(statement)
    return stale
