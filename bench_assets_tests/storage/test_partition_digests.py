"""Partition digests: read once per version of a file, recognised from the listing afterwards."""

from __future__ import annotations

import os

import polars as pl
import pytest

from bench_assets.storage.partition_digests import PartitionDigests, content_digest
from bench_assets.storage.warehouse import Warehouse

TABLE = "scores_clip"


def rows(model: str, values: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"model": model, "prompt_id": [f"p{i}" for i in range(len(values))], "value": values})


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    wh = Warehouse(tmp_path / "warehouse")
    for model in ("a", "b"):
        for category in ("cats", "dogs"):
            wh.write_partition(TABLE, model, category, rows(model, [0.1, 0.2, 0.3]))
    wh.write_table("leaderboard", pl.DataFrame({"model": ["a"]}))  # a whole-table file is not a partition
    return wh


def bump_mtime(wh: Warehouse, model: str, category: str) -> None:
    path = wh.partition_file(TABLE, model, category)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_content_digest_ignores_row_order_and_the_model_column():
    frame = rows("a", [0.1, 0.2, 0.3])
    assert content_digest(frame) == content_digest(frame.reverse())
    assert content_digest(frame) == content_digest(frame.with_columns(pl.lit("other").alias("model")))
    assert content_digest(frame) != content_digest(rows("a", [0.1, 0.2, 0.4]))


def test_a_second_reader_reads_no_file_when_nothing_changed(warehouse, tmp_path):
    cache = tmp_path / "cache" / "digests.parquet"
    first = PartitionDigests(warehouse, cache)
    digests = first.of_table(TABLE)
    first.save()
    assert sorted(digests) == [("a", "cats"), ("a", "dogs"), ("b", "cats"), ("b", "dogs")]
    assert first.read == 4

    second = PartitionDigests(warehouse, cache)
    assert second.of_table(TABLE) == digests
    assert second.read == 0


def test_only_a_changed_file_is_read_and_its_digest_follows_its_rows(warehouse, tmp_path):
    cache = tmp_path / "digests.parquet"
    before = PartitionDigests(warehouse, cache)
    old = before.of_table(TABLE)
    before.save()

    warehouse.write_partition(TABLE, "b", "dogs", rows("b", [0.9, 0.2, 0.3]))
    after = PartitionDigests(warehouse, cache)
    new = after.of_table(TABLE)
    assert after.read == 1
    assert {k for k in new if new[k] != old[k]} == {("b", "dogs")}


def test_the_same_rows_written_again_keep_their_digest(warehouse, tmp_path):
    cache = tmp_path / "digests.parquet"
    first = PartitionDigests(warehouse, cache)
    old = first.of_models(TABLE)
    first.save()
    bump_mtime(warehouse, "a", "cats")  # a rewrite with the same rows: new signature, same content
    again = PartitionDigests(warehouse, cache)
    assert again.of_models(TABLE) == old
    assert again.read == 1


def test_a_model_digest_changes_with_a_new_category(warehouse):
    before = PartitionDigests(warehouse).of_models(TABLE)
    warehouse.write_partition(TABLE, "a", "birds", rows("a", [0.5]))
    after = PartitionDigests(warehouse).of_models(TABLE)
    assert after["a"] != before["a"] and after["b"] == before["b"]


def test_a_damaged_file_is_left_out_and_moved_aside(warehouse, tmp_path):
    digests = PartitionDigests(warehouse, tmp_path / "digests.parquet")
    digests.of_table(TABLE)
    digests.save()
    warehouse.partition_file(TABLE, "a", "dogs").write_bytes(b"not parquet at all")
    found = PartitionDigests(warehouse, tmp_path / "digests.parquet")
    assert ("a", "dogs") not in found.of_table(TABLE)
    assert len(found.warehouse.quarantined) == 1 and "a/dogs.parquet" in found.warehouse.quarantined[0]


def test_save_drops_deleted_files_and_keeps_other_tables(warehouse, tmp_path):
    cache = tmp_path / "digests.parquet"
    warehouse.write_partition("images", "a", "cats", rows("a", [1.0]))
    both = PartitionDigests(warehouse, cache)
    both.of_table(TABLE)
    both.of_table("images")
    both.save()

    warehouse.delete_partition(TABLE, "a", "cats")
    scores_only = PartitionDigests(warehouse, cache)
    scores_only.of_table(TABLE)
    scores_only.save()
    kept = pl.read_parquet(cache)["key"].to_list()
    assert f"{TABLE}/a/cats.parquet" not in kept
    assert "images/a/cats.parquet" in kept  # another reader's table is not evicted
    reread = PartitionDigests(warehouse, cache)
    reread.of_table("images")
    assert reread.read == 0
