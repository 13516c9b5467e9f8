"""The warehouse on a local folder and on an S3 bucket (a real moto server): the same behaviour."""

import duckdb
import polars as pl
import pytest

from bench_assets.storage.store import open_store
from bench_assets.storage.catalog import refresh_views
from bench_assets.storage.warehouse import Warehouse
from bench_assets_tests.s3_server import BUCKET


def _rows(model, category, n, value=1.0):
    return [{"model": model, "category": category, "prompt_id": f"p{i}", "value": value} for i in range(n)]


@pytest.fixture(params=["local", "s3"])
def wh(request, tmp_path) -> Warehouse:
    """An empty warehouse: a folder, or a prefix of the test bucket named after the test."""
    if request.param == "local":
        return Warehouse(tmp_path / "wh")
    request.getfixturevalue("s3_env")
    return Warehouse(open_store(f"s3://{BUCKET}/{request.node.name.replace('[', '-').rstrip(']')}/warehouse"))


def test_rewriting_a_partition_replaces_only_its_rows(wh):
    wh.write_partition("scores_x", "m1", "a", _rows("m1", "a", 3))
    wh.write_partition("scores_x", "m2", "a", _rows("m2", "a", 2))
    wh.write_partition("scores_x", "m1", "a", _rows("m1", "a", 4, value=2.0))
    table = wh.read_table("scores_x")
    assert table.group_by("model").len().sort("model").rows() == [("m1", 4), ("m2", 2)]
    assert table.filter(pl.col("model") == "m1")["value"].unique().to_list() == [2.0]
    assert wh.read_partition("scores_x", "m2", "a")["prompt_id"].to_list() == ["p0", "p1"]
    assert wh.store.keys() == ["scores_x/m1/a.parquet", "scores_x/m2/a.parquet"], "one object per partition, no temp"
    assert (wh.categories("scores_x", "m1"), wh.tables()) == (["a"], ["scores_x"])


def test_read_table_unions_columns_and_whole_tables_sit_beside_partitions(wh):
    wh.write_partition("scores_x", "m1", "a", _rows("m1", "a", 2))
    wh.write_partition("scores_x", "m2", "b", [{**r, "extra": 1} for r in _rows("m2", "b", 3)])
    wh.write_table("leaderboard", pl.DataFrame({"model": ["m1", "m2"], "rank": [2, 1]}))
    table = wh.read_table("scores_x")
    assert (table.height, table["extra"].null_count()) == (5, 2)
    assert wh.read_table("leaderboard").sort("rank")["model"].to_list() == ["m2", "m1"]
    assert wh.tables() == ["leaderboard", "scores_x"] and wh.read_table("nothing").is_empty()


def test_a_corrupt_partition_is_moved_aside_once_and_reads_as_missing(wh):
    wh.write_partition("scores_x", "m1", "a", _rows("m1", "a", 2))
    wh.write_partition("scores_x", "m1", "b", _rows("m1", "b", 1))
    wh.store.put_bytes(wh.partition_key("scores_x", "m1", "b"), b"PAR1 truncated")
    assert wh.read_table("scores_x")["category"].to_list() == ["a", "a"]
    assert len(wh.quarantined) == 1 and "not readable as Parquet" in wh.quarantined[0]
    assert "moved to b.parquet.corrupt" in wh.quarantined[0] and "\n" not in wh.quarantined[0]
    assert wh.store.keys("scores_x/m1") == ["scores_x/m1/a.parquet", "scores_x/m1/b.parquet.corrupt"]
    assert wh.read_partition("scores_x", "m1", "b") is None and len(wh.quarantined) == 1, "moved once"
    assert wh.categories("scores_x", "m1") == ["a"]


def test_read_columns_reads_the_columns_asked_of_every_file_or_of_one_model(wh):
    wh.write_partition("scores_x", "m1", "a", [{**r, "image_index": 0, "note": "x"} for r in _rows("m1", "a", 2)])
    wh.write_partition("scores_x", "m1", "b", [{**r, "extra": 1.5} for r in _rows("m1", "b", 1)])
    wh.write_partition("scores_x", "m1-2", "a", _rows("m1-2", "a", 3, value=2.0))
    wh.store.put_bytes(wh.partition_key("scores_x", "m2", "a"), b"PAR1 truncated")
    wanted = ["model", "category", "image_index", "value", "extra", "absent"]
    table = wh.read_columns("scores_x", wanted)
    assert table.columns == ["model", "category", "image_index", "value", "extra"], "in the order asked; none added"
    expected = wh.read_table("scores_x").select(table.columns)
    assert table.sort("model", "category", "value").equals(expected.sort("model", "category", "value"))
    assert (table.height, table["image_index"].null_count(), table["extra"].null_count()) == (6, 4, 5)
    assert len(wh.quarantined) == 1 and wh.store.keys("scores_x/m2") == ["scores_x/m2/a.parquet.corrupt"]
    one = wh.read_columns("scores_x", ["model", "value"], model="m1")
    assert one.sort("value").rows() == [("m1", 1.0)] * 3, "m1's partitions only, not m1-2's"
    assert wh.read_columns("nothing", ["value"]).is_empty()


def test_empty_rows_without_schema_remove_the_partition(wh):
    wh.write_partition("t", "m", "c", _rows("m", "c", 1))
    wh.write_partition("t", "m", "c", [])
    assert wh.read_partition("t", "m", "c") is None and wh.store.keys() == []


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


def test_objects_another_process_wrote_after_a_listing_are_seen(s3_env):
    """Runs and Modal containers write the bucket too: no answer may come from a stale listing cache."""
    import s3fs

    wh = Warehouse(open_store(f"s3://{BUCKET}/another-writer/warehouse"))
    wh.write_partition("scores_x", "m1", "a", _rows("m1", "a", 1))
    assert wh.categories("scores_x", "m1") == ["a"]  # a listing s3fs could cache
    other = s3fs.S3FileSystem(key=s3_env.env["AWS_ACCESS_KEY_ID"], secret=s3_env.env["AWS_SECRET_ACCESS_KEY"],
                              client_kwargs={"endpoint_url": s3_env.endpoint}, skip_instance_cache=True)
    other.pipe_file(f"{BUCKET}/another-writer/warehouse/scores_x/m1/b.parquet",
                    wh.store.get_bytes(wh.partition_key("scores_x", "m1", "a")))
    assert wh.store.info(wh.partition_key("scores_x", "m1", "b")) is not None
    assert wh.categories("scores_x", "m1") == ["a", "b"]


def test_a_partition_key_is_read_back_into_its_table_model_and_category():
    key = Warehouse.partition_key("scores_clip", "sdxl-turbo", "object")
    assert Warehouse.partition_of(key) == ("scores_clip", "sdxl-turbo", "object")
    assert Warehouse.partition_of(Warehouse.table_key("leaderboard")) is None  # a whole table's file
    assert Warehouse.partition_of(key + ".corrupt") is None  # a file moved aside
