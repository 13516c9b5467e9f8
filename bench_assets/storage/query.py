"""Reading ``data/bench.duckdb`` with SQL: the one read-only connection the CLI uses.

``bench sql``, ``bench leaderboard`` (``read_leaderboard``) and the README's
own examples (run by a test) all open the file here, with the duckdb library this project installs.
A separate ``duckdb`` CLI may be another version that cannot open the file
(pip's duckdb-cli 1.5 says "database file with version number 69" for a
file written by duckdb 2.0), so users need none.

Read-only, so a query never blocks a run nor the view refresh of another
reader; a writer holding the file (someone's read-write session) is reported
in one line instead of a traceback. Each connection is bound to the
warehouse where the configuration says it is now (``catalog.bind_views``):
an object store's filesystem is registered, and a data directory that moved
is read at its new place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from bench_assets.core.errors import BenchError
from bench_assets.core.config import BenchConfig
from bench_assets.core.paths import DataPaths
from bench_assets.core.redaction import redact_text, redact_url
from bench_assets.storage.catalog import bind_views
from bench_assets.storage.freshness import LEADERBOARD_TABLE, Freshness, leaderboard_freshness
from bench_assets.storage.leaderboard import EVERY_CATEGORY, MetricColumn, check_category
from bench_assets.storage.metric_columns import metric_columns
from bench_assets.storage.status import IMAGES_TABLE
from bench_assets.storage.warehouse import Warehouse, open_warehouse


class QueryError(BenchError, RuntimeError):
    """The database cannot be opened or a statement failed; the message says which and why."""


def connect_read_only(db_path: Path, warehouse: Warehouse | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to ``db_path`` (its views bound to ``warehouse``), or a QueryError saying
    what to do."""
    db_path = Path(db_path)
    if not db_path.exists():
        raise QueryError(f"{db_path} does not exist yet: run `bench run` (or `make demo`) first")
    try:
        con = duckdb.connect(str(db_path), read_only=True)
    except duckdb.IOException as exc:
        raise QueryError(f"{db_path} is locked by a writer (a read-write session?): {exc}") from None
    except duckdb.Error as exc:
        raise QueryError(f"{db_path}: cannot open it with duckdb {duckdb.__version__}: {exc}") from None
    if warehouse is not None:
        try:
            bind_views(con, warehouse)
        except duckdb.Error as exc:
            con.close()
            raise QueryError(f"{redact_url(warehouse.store.url)}: cannot bind the views: "
                             f"{redact_text(' '.join(str(exc).split()))}") from None
    return con


def open_sql(paths: DataPaths, config: BenchConfig | None = None) -> duckdb.DuckDBPyConnection:
    """``data/bench.duckdb`` read-only, its views over the configured warehouse (``bench sql``, leaderboard)."""
    return connect_read_only(paths.duckdb, open_warehouse(paths, config))


@dataclass(frozen=True)
class StatementResult:
    sql: str
    relation: Any  # a DuckDBPyRelation for statements that return rows, else None


def run_statements(con: duckdb.DuckDBPyConnection, text: str) -> list[StatementResult]:
    """Execute each statement of ``text`` in order; the first failure raises QueryError naming it."""
    try:
        statements = con.extract_statements(text)
    except duckdb.Error as exc:
        raise QueryError(f"{' '.join(str(exc).split())}") from None
    results = []
    for statement in statements:
        try:
            results.append(StatementResult(statement.query.strip(), con.sql(statement.query)))
        except duckdb.Error as exc:
            raise QueryError(f"{' '.join(str(exc).split())}") from None
    return results


def column_values(con: duckdb.DuckDBPyConnection, table: str, column: str) -> list[Any]:
    """Distinct values of one column of a view, sorted (e.g. the leaderboard's categories)."""
    try:
        return [row[0] for row in con.execute(f'SELECT DISTINCT "{column}" FROM "{table}" ORDER BY 1').fetchall()]
    except duckdb.CatalogException:
        return []


def leaderboard_rows(con: duckdb.DuckDBPyConnection, category: str) -> pl.DataFrame:
    """The leaderboard's rows of ``category`` (``EVERY_CATEGORY``: all of them), best rank first;
    ``UnknownCategory`` naming the known ones for a category it has no row for."""
    check_category(category, column_values(con, LEADERBOARD_TABLE, "category"))
    if category == EVERY_CATEGORY:
        relation = con.sql(f"SELECT * FROM {LEADERBOARD_TABLE} ORDER BY category, rank, model")
    else:
        relation = con.sql(f"SELECT * FROM {LEADERBOARD_TABLE} WHERE category = ? ORDER BY rank, model",
                           params=[category])
    return pl.from_arrow(relation.to_arrow_table())


@dataclass(frozen=True)
class LeaderboardView:
    """What ``bench leaderboard`` prints: the rows, the metrics' columns, and whether newer scores exist."""

    category: str | None  # None: every category (``EVERY_CATEGORY``)
    rows: pl.DataFrame
    columns: list[MetricColumn]
    freshness: Freshness


def read_leaderboard(con: duckdb.DuckDBPyConnection, paths: DataPaths, category: str) -> LeaderboardView:
    """The leaderboard of ``category`` through ``con`` (``open_sql``), and how fresh it is against the
    configured warehouse's score partitions."""
    rows = leaderboard_rows(con, category)
    columns = metric_columns()
    freshness = leaderboard_freshness(open_warehouse(paths), [IMAGES_TABLE, *(c.table for c in columns)])
    return LeaderboardView(None if category == EVERY_CATEGORY else category, rows, columns, freshness)
