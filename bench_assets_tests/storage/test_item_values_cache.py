"""Issue 21: the comparisons refresh reads only changed models' score rows (their items and values of the others
read back by content digest), and the table is the same to the last bit as a build without any cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bench_assets.benchmarks.scale_data import add_model, build_data_dir, model_name, open_scale_data
from bench_assets.core.config import load_config
from bench_assets.core.decision import decision_config
from bench_assets.core.paths import DataPaths
from bench_assets.metrics.registry import METRICS
from bench_assets.storage.comparisons import COMPARISONS_TABLE, Refresh, refresh_comparisons
from bench_assets.storage.item_values_cache import FOLDER, ItemValuesCache, item_values_cache
from bench_assets.storage.metric_columns import metric_columns
from bench_assets.storage.partition_digests import partition_digests
from bench_assets.storage.prompt_sums_cache import prompt_sums_cache
from bench_assets.storage.resample_cache import COMPARISONS, leaderboard_cache
from bench_assets.storage.versions import open_versions
from bench_assets.storage.warehouse import Warehouse
from bench_assets_tests.storage.test_incremental import NEW, SPEC

TABLES = {METRICS[name].table for name in SPEC.metric_names}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A 3-model data directory, its comparisons built with every cache (so the caches are filled)."""
    paths = DataPaths(tmp_path_factory.mktemp("items") / "data")
    build_data_dir(paths, SPEC)
    _refresh(paths)
    return paths.root


@pytest.fixture
def paths(built, tmp_path) -> DataPaths:
    shutil.copytree(built, tmp_path / "data")
    return DataPaths(tmp_path / "data")


def _refresh(paths: DataPaths) -> tuple[Refresh, ItemValuesCache, list[tuple[str, str | None]]]:
    """The asset's refresh with every cache; the score columns read, as (table, model: None for every model), of
    the tables written (the registry's other metrics have none)."""
    config = load_config(paths)
    store = open_versions(paths, config)
    digests = partition_digests(paths, store.warehouse)
    cache, items = leaderboard_cache(paths, COMPARISONS), item_values_cache(paths, store.warehouse)
    previous = store.warehouse.read_table(COMPARISONS_TABLE)
    read: list[tuple[str, str | None]] = []
    original = Warehouse.read_columns
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Warehouse, "read_columns", lambda self, table, columns, model=None:
                      (table in TABLES and read.append((table, model))) or original(self, table, columns, model))
        refreshed = refresh_comparisons(store, metric_columns(), decision_config(config, METRICS),
                                        previous if previous.height else None, digests, cache,
                                        prompt_sums_cache(paths, store.warehouse, digests), items)
    digests.save()
    cache.save()
    store.warehouse.write_table(COMPARISONS_TABLE, refreshed.table)
    return refreshed, items, read


def _without_caches(paths: DataPaths) -> pl.DataFrame:
    config = load_config(paths)
    return refresh_comparisons(open_versions(paths, config), metric_columns(), decision_config(config, METRICS)).table


def _rewrite(paths: DataPaths, model: str, change) -> str:
    """One partition of the first metric's table of ``model``, changed by ``change``; its table."""
    wh = open_versions(paths, load_config(paths)).warehouse
    table, category = METRICS[SPEC.metric_names[0]].table, SPEC.category_names[0]
    wh.write_partition(table, model, category, change(wh.read_partition(table, model, category)))
    return table


def test_refresh_after_adding_a_model_reads_only_its_rows_and_equals_a_build_without_caches(paths):
    add_model(open_scale_data(paths, SPEC), SPEC.models, own_images=True)
    refreshed, items, read = _refresh(paths)
    assert sorted(read) == sorted((table, NEW) for table in TABLES)
    assert items.models_read == SPEC.metrics
    assert_frame_equal(refreshed.table, _without_caches(paths), check_exact=True)
    with np.load(paths.cache / FOLDER / f"{SPEC.metric_names[0]}.npz") as saved:
        assert len(saved["digests"]) == SPEC.models + 1


def test_the_item_cache_alone_sums_every_model_afresh(paths):
    """Without the per-prompt sums cache, the sums are not made from the changed models' rows only."""
    add_model(open_scale_data(paths, SPEC), SPEC.models, own_images=True)
    config = load_config(paths)
    store = open_versions(paths, config)
    alone = refresh_comparisons(store, metric_columns(), decision_config(config, METRICS),
                                item_cache=item_values_cache(paths, store.warehouse))
    assert_frame_equal(alone.table, _without_caches(paths), check_exact=True)


def test_a_changed_score_is_a_new_digest_and_never_a_stale_value(paths):
    table = _rewrite(paths, model_name(0), lambda rows: rows.with_columns(pl.col("value") * 0.5))
    refreshed, _, read = _refresh(paths)
    assert read == [(table, model_name(0))]
    rebuilt = _without_caches(paths)
    assert_frame_equal(refreshed.table, rebuilt, check_exact=True)
    assert refreshed.table.filter(pl.col("model_a") == model_name(0)).height > 0


def test_a_damaged_cache_file_is_ignored_and_rebuilt(paths):
    damaged = paths.cache / FOLDER / f"{SPEC.metric_names[0]}.npz"
    damaged.write_bytes(b"not a zip file")
    refreshed, _, read = _refresh(paths)
    assert read == [(METRICS[SPEC.metric_names[0]].table, None)], "that metric's rows read again, all at once"
    assert_frame_equal(refreshed.table, _without_caches(paths), check_exact=True)
    with np.load(damaged) as rebuilt:
        assert len(rebuilt["digests"]) == SPEC.models
    _, _, read = _refresh(paths)
    assert read == []


def test_a_model_missing_an_image_is_compared_item_by_item_reading_its_rows_back(paths):
    """Its pairs take the slow path: after a model is added, the unchanged model's rows are read back (one model's,
    never every model's: the composite's slow pairs read theirs too)."""
    table = _rewrite(paths, model_name(1), lambda rows: rows.slice(1))
    _refresh(paths)
    add_model(open_scale_data(paths, SPEC), SPEC.models, own_images=True)
    refreshed, _, read = _refresh(paths)
    assert (table, model_name(1)) in read and not [model for _, model in read if model is None]
    assert_frame_equal(refreshed.table, _without_caches(paths), check_exact=True)
    pair = refreshed.table.filter((pl.col("model_a") == model_name(1)) & (pl.col("model_b") == NEW)
                                  & (pl.col("metric") == SPEC.metric_names[0]) & (pl.col("category") == "all"))
    assert pair["unmatched_b"].to_list() == [1]
