import duckdb
import polars as pl

from bench_assets.storage.catalog import refresh_views
from bench_assets.storage.warehouse import Warehouse


def _rows(model, category, n, value=1.0):
    return [{"model": model, "category": category, "prompt_id": f"p{i}", "value": value} for i in range(n)]


def test_rewriting_a_partition_replaces_only_its_rows(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    wh.write_partition("scores_x", "m1", "a", _rows("m1", "a", 3))
    wh.write_partition("scores_x", "m2", "a", _rows("m2", "a", 2))
    wh.write_partition("scores_x", "m1", "a", _rows("m1", "a", 4, value=2.0))
    table = wh.read_table("scores_x")
    assert table.group_by("model").len().sort("model").rows() == [("m1", 4), ("m2", 2)]
    assert table.filter(pl.col("model") == "m1")["value"].unique().to_list() == [2.0]
    assert not list((tmp_path / "wh").rglob("*.tmp")), "temp files must not be left behind"


def test_empty_rows_without_schema_remove_the_partition(tmp_path):
    wh = Warehouse(tmp_path)
    wh.write_partition("t", "m", "c", _rows("m", "c", 1))
    wh.write_partition("t", "m", "c", [])
    assert wh.read_partition("t", "m", "c") is None


def test_views_see_new_files_and_new_columns_without_refresh(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    db = tmp_path / "bench.duckdb"
    wh.write_partition("scores_x", "m1", "a", _rows("m1", "a", 2))
    assert refresh_views(db, wh).views == ["scores_x"]
    wh.write_partition("scores_x", "m2", "b", [{**r, "extra": 1} for r in _rows("m2", "b", 3)])
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("select count(*), count(extra) from scores_x").fetchone() == (5, 3)
    con.close()


def test_refresh_skips_when_a_user_session_holds_the_file(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    db = tmp_path / "bench.duckdb"
    wh.write_partition("t", "m", "c", _rows("m", "c", 1))
    refresh_views(db, wh)
    import subprocess, sys, textwrap

    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(db)!r})
            print("open", flush=True)
            time.sleep(30)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        result = refresh_views(db, wh)
        reason = result.skipped_reason
        assert reason and "open read-write in another session" in reason
        assert "\n" not in reason and "Could not set lock" not in reason, "one clear line, not DuckDB's error"
    finally:
        holder.kill()
