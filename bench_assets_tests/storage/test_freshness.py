"""`bench leaderboard` says when the leaderboard was computed and whether scores are newer."""

from __future__ import annotations

import os

import polars as pl

from bench_assets.storage.freshness import leaderboard_freshness
from bench_assets.storage.warehouse import Warehouse


def test_newer_score_partitions_are_named(tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    assert leaderboard_freshness(wh, ["scores_clip"]).describe() == "the leaderboard has not been computed yet"
    wh.write_partition("scores_clip", "m", "object", [{"value": 1.0}])
    wh.write_table("leaderboard", pl.DataFrame({"model": ["m"]}))
    board = wh.table_file("leaderboard")
    os.utime(board, (2_000_000_000, 2_000_000_000))
    fresh = leaderboard_freshness(wh, ["scores_clip"])
    assert fresh.newer == [] and "no newer scores" in fresh.describe()

    wh.write_partition("scores_clip", "m", "colour", [{"value": 2.0}])
    os.utime(wh.partition_file("scores_clip", "m", "colour"), (2_000_000_100, 2_000_000_100))
    stale = leaderboard_freshness(wh, ["scores_clip"])
    assert stale.newer == ["scores_clip/m/colour"]
    assert "1 score partition(s) are newer (first: scores_clip/m/colour)" in stale.describe()
