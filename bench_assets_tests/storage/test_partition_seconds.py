"""GPU seconds per partition by content digest: the same costs as reading every row, only changed partitions
read, and a table no partition records seconds in still left out."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bench_assets.storage.leaderboard import gpu_costs
from bench_assets.storage.partition_digests import PartitionDigests
from bench_assets.storage.partition_seconds import PartitionSeconds
from bench_assets.storage.warehouse import Warehouse

IMAGES, SCORES = "images", "scores_clip"
MODELS, CATEGORIES = ("a", "b", "c"), ("cats", "dogs")


def _rows(model: str, category: str, seconds: float) -> pl.DataFrame:
    return pl.DataFrame({"model": model, "category": category, "prompt_id": ["p0", "p1", "p2"],
                         "gpu_seconds": [seconds, None, 2 * seconds]})  # a row without seconds counts 0


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    wh = Warehouse(tmp_path / "warehouse")
    for k, model in enumerate(MODELS):
        for j, category in enumerate(CATEGORIES):
            wh.write_partition(IMAGES, model, category, _rows(model, category, 1.0 + k + j / 8))
            wh.write_partition(SCORES, model, category, _rows(model, category, 0.25 * (k + 1)))
    return wh


def _open(warehouse: Warehouse, folder) -> PartitionSeconds:
    return PartitionSeconds(warehouse, PartitionDigests(warehouse, folder / "digests.parquet"),
                            folder / "seconds.parquet")


def _costs(warehouse: Warehouse, seconds: PartitionSeconds | None = None) -> pl.DataFrame:
    return gpu_costs(warehouse, IMAGES, [SCORES], seconds).sort("model", "category")


def _saved(seconds: PartitionSeconds) -> None:
    seconds.save()
    seconds.digests.save()


def test_costs_are_those_of_the_rows_and_unchanged_partitions_are_not_read_again(warehouse, tmp_path):
    first = _open(warehouse, tmp_path)
    assert_frame_equal(_costs(warehouse, first), _costs(warehouse), check_exact=True)
    assert first.partitions_read == 2 * len(MODELS) * len(CATEGORIES)
    _saved(first)
    again = _open(warehouse, tmp_path)
    assert_frame_equal(_costs(warehouse, again), _costs(warehouse), check_exact=True)
    assert again.partitions_read == 0


def test_a_new_model_and_a_rewritten_partition_alone_are_read(warehouse, tmp_path):
    _saved(_costs_and_cache(warehouse, tmp_path))
    warehouse.write_partition(SCORES, "d", "cats", _rows("d", "cats", 7.0))
    warehouse.write_partition(IMAGES, "a", "dogs", _rows("a", "dogs", 40.0))  # a re-run: new seconds
    warehouse.delete_partition(IMAGES, "c", "cats")
    again = _open(warehouse, tmp_path)
    costs = _costs(warehouse, again)
    assert_frame_equal(costs, _costs(warehouse), check_exact=True)
    assert again.partitions_read == 2
    assert costs.filter((pl.col("model") == "a") & (pl.col("category") == "dogs"))["generation_gpu_seconds"][0] == 120
    _saved(again)
    kept = pl.read_parquet(tmp_path / "seconds.parquet")
    assert kept.filter((pl.col("table") == IMAGES) & (pl.col("model") == "c") & (pl.col("category") == "cats")
                       ).is_empty()


def _costs_and_cache(warehouse: Warehouse, folder) -> PartitionSeconds:
    seconds = _open(warehouse, folder)
    _costs(warehouse, seconds)
    return seconds


def test_a_table_without_seconds_is_left_out_and_a_damaged_cache_is_only_lost_time(warehouse, tmp_path):
    plain = Warehouse(tmp_path / "plain")
    plain.write_partition(IMAGES, "a", "cats", _rows("a", "cats", 3.0))
    plain.write_partition(SCORES, "a", "cats", _rows("a", "cats", 1.0).drop("gpu_seconds"))
    costs = _costs(plain, _open(plain, tmp_path / "plain-cache"))
    assert costs.filter(pl.col("category") == "cats")["scoring_gpu_seconds"].to_list() == [0.0]
    assert costs.filter(pl.col("category") == "cats")["generation_gpu_seconds"].to_list() == [9.0]
    _saved(_costs_and_cache(warehouse, tmp_path))
    (tmp_path / "seconds.parquet").write_bytes(b"not parquet")
    again = _open(warehouse, tmp_path)
    assert_frame_equal(_costs(warehouse, again), _costs(warehouse), check_exact=True)
    assert again.partitions_read == 2 * len(MODELS) * len(CATEGORIES)
