"""The distribution leaderboard: FID, KID, CMMD, FD-DINOv2, precision, recall, density and coverage per
model against each reference set, ranked, with n and a marker where n is too small to compare.

One SQL query (``BOARD_SQL``) makes it from ``distribution_scores``: the
``distribution_leaderboard`` view of ``bench.duckdb`` is that query (so ``bench
sql`` and ``bench leaderboard`` read it live, no asset to refresh), and the
report runs the same query over the warehouse's rows in an in-memory DuckDB.

Ranks are by the row's own direction (``lower_is_better``: FID, KID, CMMD and
FD-DINOv2 lower, precision, recall, density and coverage higher) and only
among rows that can be compared: the same reference set content, feature
extractor, FID mode, category and number of generated images. FID and
FD-DINOv2 are biased upward at small n, so a model scored on 64 images and
one scored on 1,000 are not ranked against each other (nor precision/recall
at another ``k``). A row whose n is below the metric's ``min_n`` keeps its
rank but is marked ``†``, with a note naming n, ``min_n`` and the metric's own
reason (its ``note`` column).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import duckdb
import polars as pl

from bench_assets.storage.distribution import ALL_CATEGORIES, DISTRIBUTION_TABLE, read_distribution_scores
from bench_assets.storage.warehouse import Warehouse

BOARD_VIEW = "distribution_leaderboard"
# Display order; lower is better for the first four (the rows say so too, in ``lower_is_better``).
SHOWN_ORDER = ("fid", "kid", "cmmd", "fd_dinov2", "precision", "recall", "density", "coverage")
MARKER = "†"
# The rows one rank compares: a model is ranked only against rows it can validly be compared with.
COMPARED_ON = ("reference", "reference_fingerprint", "category", "metric", "extractor_id", "fid_mode", "k",
               "n_generated")
BOARD_COLUMNS = ("model", "reference", "category", "metric", "value", "std", "ci_low", "ci_high", "n_generated",
                 "n_reference", "min_n", "comparable", "lower_is_better", "rank", "ranked_among", "note",
                 "extractor", "fid_mode", "k", "reference_fingerprint", "metric_version", "scored_at")


def _board_sql(source: str) -> str:
    group = ", ".join(f"s.{c}" for c in COMPARED_ON)
    window = f"PARTITION BY {group}"
    order = "CASE WHEN s.lower_is_better THEN s.value ELSE -s.value END"
    note = (f"'{MARKER} n=' || least(s.n_generated, s.n_reference) || ' < ' || format('{{:,}}', s.min_n) || ': ' "
            "|| coalesce(s.note, 'compare only at equal n')")
    return (
        f"SELECT s.model, s.reference, s.category, s.metric, s.value, s.std, s.ci_low, s.ci_high, s.n_generated, "
        f"s.n_reference, s.min_n, s.comparable, s.lower_is_better, "
        f"CAST(rank() OVER ({window} ORDER BY {order}) AS BIGINT) AS rank, "
        f"CAST(count(*) OVER ({window}) AS BIGINT) AS ranked_among, "
        f"CASE WHEN s.comparable THEN NULL ELSE {note} END AS note, "
        f"s.extractor, s.fid_mode, s.k, s.reference_fingerprint, s.metric_version, s.scored_at "
        f'FROM "{source}" s '
        f"WHERE s.value IS NOT NULL AND isfinite(s.value)"
    )


BOARD_SQL = _board_sql(DISTRIBUTION_TABLE)
ORDER_SQL = " ORDER BY reference, category, metric, rank, model"


def view_statements(tables: Sequence[str], temporary: bool = False) -> list[str]:
    """The ``distribution_leaderboard`` view's statement, once ``distribution_scores`` has a file (for the catalog)."""
    if DISTRIBUTION_TABLE not in tables:
        return []
    return [f'CREATE OR REPLACE {"TEMP " if temporary else ""}VIEW "{BOARD_VIEW}" AS {BOARD_SQL}']


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={c: pl.Utf8 for c in BOARD_COLUMNS})


def board_of(scores: pl.DataFrame) -> pl.DataFrame:
    """The board of ``distribution_scores`` rows (the view's query, run in an in-memory DuckDB)."""
    if scores.is_empty():
        return _empty()
    con = duckdb.connect()
    try:
        con.register(DISTRIBUTION_TABLE, scores.to_arrow())
        return pl.from_arrow(con.sql(BOARD_SQL + ORDER_SQL).to_arrow_table())
    finally:
        con.close()


def distribution_board(warehouse: Warehouse) -> pl.DataFrame:
    """Every reference set's board, every category (what the report shows)."""
    return board_of(read_distribution_scores(warehouse))


def board_rows(con: duckdb.DuckDBPyConnection, category: str | None) -> pl.DataFrame:
    """The view's rows of ``category`` (None: all) through ``con``; empty where nothing was scored yet."""
    where, params = ("", []) if category is None else (" WHERE category = ?", [category])
    try:
        relation = con.sql(f'SELECT * FROM "{BOARD_VIEW}"{where}{ORDER_SQL}', params=params)
    except duckdb.CatalogException:  # no distribution_scores file yet, so no view
        return _empty()
    return pl.from_arrow(relation.to_arrow_table())


def format_value(row: dict) -> str:
    """``12.3 [10.1, 14.6] #1/3†``: the figure, its interval, its rank among the rows it compares with."""
    interval = "" if row["ci_low"] is None else f" [{row['ci_low']:.4g}, {row['ci_high']:.4g}]"
    return (f"{row['value']:.4g}{interval} #{row['rank']}/{row['ranked_among']}"
            f"{MARKER if row['comparable'] is False else ''}")


def _direction(metrics: Sequence[str], rows: pl.DataFrame) -> str:
    lower = set(rows.filter(pl.col("lower_is_better"))["metric"])
    return ", ".join(f"{m} {'↓' if m in lower else '↑'}" for m in metrics)


def shown_metrics(names: Iterable[str]) -> list[str]:
    """The metrics among ``names`` in display order (``SHOWN_ORDER``, then any other by name)."""
    present = set(names)
    return [m for m in SHOWN_ORDER if m in present] + sorted(present - set(SHOWN_ORDER))


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (``core.tables.fit_markdown`` aligns and wraps it for a terminal)."""
    return "\n".join("| " + " | ".join(cells) + " |" for cells in (header, ["---"] * len(header), *rows))


def _table(rows: pl.DataFrame, with_category: bool) -> str:
    metrics = shown_metrics(rows["metric"])
    keys = ["model", "category"] if with_category else ["model"]
    first = pl.when(pl.col("metric") == metrics[0]).then(pl.col("rank"))
    order = rows.group_by(keys).agg(first.min().alias("_first")).sort("_first", *keys, nulls_last=True)
    lines = []
    for key in order.select(keys).iter_rows(named=True):
        mine = rows.filter(*[pl.col(k) == v for k, v in key.items()])
        cells = {r["metric"]: format_value(r) for r in mine.iter_rows(named=True)}
        n = mine.row(0, named=True)
        lines.append([*key.values(), f"{n['n_generated']}/{n['n_reference']}", *[cells.get(m, "–") for m in metrics]])
    return markdown([*keys, "n (gen/ref)", *metrics], lines)


def blocks(board: pl.DataFrame, category: str | None = ALL_CATEGORIES) -> list[tuple[str, str]]:
    """(legend, Markdown table) per reference set, a line per model; none when nothing was scored."""
    out = []
    for (reference,), rows in board.group_by("reference", maintain_order=True):
        where = f"category {category}" if category else "every category"
        legend = (f"distribution metrics against reference set {reference!r} ({where}): value [95% bootstrap CI] "
                  f"#rank/ranked among rows of the same n, features and reference; "
                  f"{_direction(shown_metrics(rows['metric']), rows)}; {MARKER}: n too small to compare, see below")
        out.append((legend, _table(rows, with_category=category is None)))
    return out


def notes(board: pl.DataFrame) -> list[str]:
    """The distinct notes of the rows marked ``†``, one line each, naming the metric."""
    if board.is_empty():
        return []
    marked = board.filter(pl.col("note").is_not_null()).select("metric", "note").unique().sort("metric", "note")
    return [f"{row['metric']}: {row['note']}" for row in marked.iter_rows(named=True)]

