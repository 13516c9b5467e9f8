"""The distribution leaderboard: direction-aware ranks among comparable rows, the small-n marker, and nothing
extra printed where nothing was scored."""

from __future__ import annotations

import shutil

import duckdb
import polars as pl
import pytest

from bench_assets.cli import main
from bench_assets.storage import distribution_board as board
from bench_assets.storage.catalog import refresh_views
from bench_assets.storage.query import connect_read_only
from bench_assets.storage.warehouse import Warehouse
from bench_assets_tests.storage.distribution_fixtures import score_row, write_rows

ROWS = [
    score_row("a", "fid", 10.0), score_row("b", "fid", 20.0), score_row("c", "fid", 5.0, n=128),
    score_row("a", "precision", 0.9, 0.05), score_row("b", "precision", 0.5, 0.05),
    score_row("c", "precision", 0.7, 0.05, n=128),
]


def _ranks(frame: pl.DataFrame, metric: str) -> dict[str, tuple[int, int]]:
    rows = frame.filter(pl.col("metric") == metric).iter_rows(named=True)
    return {r["model"]: (r["rank"], r["ranked_among"]) for r in rows}


def test_ranks_follow_each_metrics_direction_among_rows_of_the_same_n(tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    write_rows(wh, ROWS)
    frame = board.distribution_board(wh)
    # lower FID ranks first, higher precision ranks first; c (n=128) is not ranked against a and b (n=64)
    assert _ranks(frame, "fid") == {"a": (1, 2), "b": (2, 2), "c": (1, 1)}
    assert _ranks(frame, "precision") == {"a": (1, 2), "b": (2, 2), "c": (1, 1)}


def test_a_row_below_min_n_carries_the_marker_and_says_why(tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    write_rows(wh, [score_row("a", "fid", 12.5, n=64, n_reference=5000),
                    score_row("a", "kid", 0.01, 0.002, n=5000, n_reference=5000)])
    frame = board.distribution_board(wh)
    notes = dict(zip(frame["metric"], frame["note"]))
    assert notes["fid"] == "† n=64 < 10,000: FID below 10k images is biased upward; compare only at equal n"
    assert notes["kid"] is None, "KID at 5,000 images is above its min_n: no marker"
    ((_, table),) = board.blocks(frame)
    assert "| a | 64/5000 | 12.5 [11.5, 13.5] #1/1† | 0.01 [0.008, 0.012] #1/1 |" in table
    assert board.notes(frame) == ["fid: " + notes["fid"]]


def test_the_duckdb_view_is_the_same_board_and_empty_means_nothing_printed(synthetic_results, tmp_path,
                                                                           monkeypatch, capsys):
    data = tmp_path / "data"
    shutil.copytree(synthetic_results, data, ignore=shutil.ignore_patterns("images"))
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    monkeypatch.delenv("BENCH_CONFIG", raising=False)
    wh = Warehouse(data / "warehouse")
    refresh_views(data / "bench.duckdb", wh)
    assert main(["leaderboard"]) == 0
    without = capsys.readouterr().out
    assert "distribution" not in without and "Traceback" not in without
    con = connect_read_only(data / "bench.duckdb", wh)
    assert board.board_rows(con, "all").is_empty() and board.blocks(board.board_rows(con, None), None) == []
    con.close()

    write_rows(wh, ROWS)
    refresh_views(data / "bench.duckdb", wh)
    con = duckdb.connect(str(data / "bench.duckdb"), read_only=True)
    try:
        view = board.board_rows(con, None)
    finally:
        con.close()
    python = board.distribution_board(wh)
    assert view.select(board.BOARD_COLUMNS).to_dicts() == python.select(board.BOARD_COLUMNS).to_dicts()
    assert main(["leaderboard"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(without), "the leaderboard itself is unchanged"
    extra = out[len(without):]
    assert "distribution metrics against reference set 'ref' (category all)" in extra
    lines = [line for line in extra.splitlines() if line.startswith("| a ")]
    assert lines and "10 [9, 11] #1/2" in lines[0] and "0.9 [0.85, 0.95] #1/2" in lines[0]


@pytest.mark.parametrize("category", ["all", None])
def test_an_empty_board_has_no_blocks_and_no_notes(category):
    empty = board.board_of(pl.DataFrame())
    assert board.blocks(empty, category) == [] and board.notes(empty) == []
