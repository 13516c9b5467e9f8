"""DuckDB's views over the store: the same answers from a folder and from S3 (a real moto server),
and views that follow the data directory when it moves."""

from __future__ import annotations

import re
import shutil

import duckdb
import polars as pl
import pytest

from bench_assets import cli
from bench_assets.core.paths import DataPaths
from bench_assets.storage.catalog import refresh_views
from bench_assets.storage.query import connect_read_only, open_sql
from bench_assets.storage.warehouse import Warehouse, open_warehouse
from bench_assets_tests.s3_server import BUCKET

QUERY = "select model, count(*) as n, round(sum(value), 6) as total, count(extra) as extras from scores_x " \
        "group by model order by model"


def _fill(wh: Warehouse) -> None:
    for m, model in enumerate(("m1", "m2")):
        for category in ("a", "b"):
            rows = [{"model": model, "category": category, "prompt_id": f"p{i}", "value": m + i / 7} for i in range(3)]
            if model == "m2":
                rows = [{**r, "extra": 1} for r in rows]  # a column only some partitions have
            wh.write_partition("scores_x", model, category, rows)
    wh.write_table("leaderboard", pl.DataFrame({"model": ["m1", "m2"], "rank": [2, 1]}))


def test_bench_sql_over_s3_answers_as_over_a_folder(tmp_path, s3_env, monkeypatch, capsys):
    local, remote = DataPaths(tmp_path / "local"), DataPaths(tmp_path / "remote")
    monkeypatch.delenv("BENCH_CONFIG", raising=False)
    monkeypatch.delenv("BENCH_STORAGE_ROOT", raising=False)
    _fill(open_warehouse(local))
    remote.root.mkdir()
    (remote.root / "config.yaml").write_text(f"storage: {{root: 's3://{BUCKET}/catalog-test'}}\n")
    in_bucket = open_warehouse(remote)
    assert in_bucket.store.url == f"s3://{BUCKET}/catalog-test/warehouse"
    _fill(in_bucket)
    assert not (remote.root / "warehouse").exists(), "the rows went to the bucket, not the data dir"
    answers = {}
    for paths in (local, remote):
        assert refresh_views(paths.duckdb, open_warehouse(paths)).views == ["leaderboard", "scores_x"]
        con = open_sql(paths)
        try:
            answers[paths.root.name] = con.execute(QUERY).fetchall()
            assert con.execute("select model from leaderboard order by rank").fetchall() == [("m2",), ("m1",)]
        finally:
            con.close()
    assert answers["remote"] == answers["local"] == [("m1", 6, round(6 / 7, 6), 0),
                                                     ("m2", 6, round(6 + 6 / 7, 6), 6)]
    saved = duckdb.connect(str(remote.duckdb), read_only=True)
    try:
        sql = saved.execute("select sql from duckdb_views() where view_name = 'scores_x'").fetchone()[0]
    finally:
        saved.close()
    assert f"s3://{BUCKET}/catalog-test/warehouse/scores_x/**/*.parquet" in sql

    monkeypatch.setenv("BENCH_DATA_DIR", str(remote.root))
    assert cli.main(["sql", "-c", "select count(*) as n from scores_x"]) == 0
    assert re.search(r"│\s+12\s+│", capsys.readouterr().out)


def test_views_follow_a_moved_data_dir_without_a_refresh(tmp_path):
    before = DataPaths(tmp_path / "before" / "data")
    wh = open_warehouse(before)
    _fill(wh)
    refresh_views(before.duckdb, wh)
    after = DataPaths(tmp_path / "after" / "data")
    after.root.parent.mkdir()
    shutil.move(before.root, after.root)

    stale = duckdb.connect(str(after.duckdb), read_only=True)
    try:
        assert stale.execute("select count(*) from duckdb_views() where view_name = 'scores_x'").fetchone() == (1,)
        with pytest.raises(duckdb.IOException, match="No files found"):  # the saved view names the old folder
            stale.execute("select count(*) from scores_x").fetchall()
    finally:
        stale.close()
    con = open_sql(after)  # the read-only connection the CLI uses: bound to where the data is now
    try:
        assert con.execute(QUERY).fetchall()[1][:2] == ("m2", 6)
    finally:
        con.close()
    refresh_views(after.duckdb, open_warehouse(after))  # the next refresh repoints the saved views
    con = connect_read_only(after.duckdb)
    try:
        assert con.execute("select count(*) from scores_x").fetchone() == (12,)
        assert con.execute("select count(*) from duckdb_views() where temporary and not internal").fetchone() == (0,)
    finally:
        con.close()
