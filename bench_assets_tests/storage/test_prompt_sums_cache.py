"""Per-prompt sums by partition content digest: the same sums as summing the rows, only changed partitions
summed, and one entry per live partition kept."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bench_assets.storage.leaderboard import MetricColumn, prompt_sums, read_scores
from bench_assets.storage.partition_digests import PartitionDigests
from bench_assets.storage.prompt_sums_cache import PromptSumsCache
from bench_assets.storage.warehouse import Warehouse

METRIC = MetricColumn("clip", "scores_clip")
MODELS, CATEGORIES = ("a", "b", "c"), ("cats", "dogs")


def _rows(model: str, category: str, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=12)
    values[3] = np.nan  # a failed score: left out of the sums
    return pl.DataFrame({"model": model, "category": category, "prompt_id": [f"p{i // 2}" for i in range(12)],
                         "image_index": [i % 2 for i in range(12)], "value": values})


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    wh = Warehouse(tmp_path / "warehouse")
    for k, model in enumerate(MODELS):
        for j, category in enumerate(CATEGORIES):
            wh.write_partition(METRIC.table, model, category, _rows(model, category, 10 * k + j))
    return wh


def _open(warehouse: Warehouse, folder) -> PromptSumsCache:
    return PromptSumsCache(warehouse, PartitionDigests(warehouse, folder / "digests.parquet"), folder)


def _summed(warehouse: Warehouse) -> pl.DataFrame:
    return prompt_sums(read_scores(warehouse, METRIC), METRIC)


def test_sums_are_those_of_the_rows_and_are_read_back_without_summing(warehouse, tmp_path):
    first = _open(warehouse, tmp_path)
    assert_frame_equal(first.sums(METRIC), _summed(warehouse), check_exact=True)
    assert first.partitions_summed == len(MODELS) * len(CATEGORIES)
    first.digests.save()
    again = _open(warehouse, tmp_path)
    assert_frame_equal(again.sums(METRIC), _summed(warehouse), check_exact=True)
    assert again.partitions_summed == 0


def test_a_changed_partition_alone_is_summed_and_a_deleted_one_is_forgotten(warehouse, tmp_path):
    first = _open(warehouse, tmp_path)
    first.sums(METRIC)
    first.digests.save()
    warehouse.write_partition(METRIC.table, "b", "dogs", _rows("b", "dogs", 99))
    warehouse.delete_partition(METRIC.table, "c", "cats")
    again = _open(warehouse, tmp_path)
    assert_frame_equal(again.sums(METRIC), _summed(warehouse), check_exact=True)
    assert again.partitions_summed == 1
    kept = pl.read_parquet(tmp_path / f"{METRIC.name}.parquet")
    assert kept.select("model", "category").unique().height == len(MODELS) * len(CATEGORIES) - 1
    assert kept.filter((pl.col("model") == "c") & (pl.col("category") == "cats")).is_empty()


def test_scores_already_read_are_summed_instead_of_read_again(warehouse, tmp_path):
    class Unread(Warehouse):
        def read_columns(self, *args, **kwargs):
            raise AssertionError("the rows given should have been used")

    cache = PromptSumsCache(warehouse, PartitionDigests(warehouse), tmp_path)
    cache.warehouse = Unread.__new__(Unread)
    assert_frame_equal(cache.sums(METRIC, read_scores(warehouse, METRIC)), _summed(warehouse), check_exact=True)
