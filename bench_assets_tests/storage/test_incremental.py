"""Issue 21, acceptance 2 and 3: adding a model to a finished warehouse recomputes only what involves it
(counted: comparison rows, leaderboard bootstraps, report model files), and the result is the full rebuild's."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bench_assets.benchmarks.scale_data import ScaleSpec, add_model, build_data_dir, model_name, open_scale_data
from bench_assets.core.config import load_config
from bench_assets.core.decision import decision_config
from bench_assets.core.paths import DataPaths
from bench_assets.metrics.registry import METRICS
from bench_assets.report.build import build_data_dir_report, model_sources
from bench_assets.report.data import MetricInfo
from bench_assets.report.site import build_report
from bench_assets.storage.comparisons import COMPARISONS_TABLE, refresh_comparisons
from bench_assets.storage.metric_columns import metric_columns
from bench_assets.storage.partition_digests import CACHE_FILE as DIGESTS_FILE, PartitionDigests
from bench_assets.storage.prompt_sums_cache import PromptSumsCache, prompt_sums_cache
from bench_assets.storage.ranking import leaderboard_tables
from bench_assets.storage.resample_cache import COMPARISONS, ResampleCache, leaderboard_cache
from bench_assets.storage.store import images_store
from bench_assets.storage.versions import open_versions
from bench_assets.storage.warehouse import Warehouse, open_warehouse

SPEC = ScaleSpec(models=3, prompts=12, images_per_prompt=2, categories=2, metrics=3)
NEW = model_name(SPEC.models)


def _leaderboard(paths: DataPaths, cache: ResampleCache,
                 sums: PromptSumsCache | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    config = load_config(paths)
    store = open_versions(paths, config)
    return leaderboard_tables(store, metric_columns(), decision_config(config, METRICS),
                              store.warehouse.read_table(COMPARISONS_TABLE), None, cache, sums)


def _sums_cache(paths: DataPaths) -> PromptSumsCache:
    """The data directory's per-prompt sums, on its partition digests (as the assets open it)."""
    warehouse = open_warehouse(paths, load_config(paths))
    return prompt_sums_cache(paths, warehouse, PartitionDigests(warehouse, paths.cache / DIGESTS_FILE))


class _RecordingWarehouse:
    """A warehouse that records which partitions are read whole (what the partition digests read)."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse, self.read = warehouse, []

    def __getattr__(self, name):
        return getattr(self.warehouse, name)

    def read_partition(self, table: str, model: str, category: str):
        self.read.append((table, model, category))
        return self.warehouse.read_partition(table, model, category)


def _refresh_comparisons(paths: DataPaths, previous: pl.DataFrame | None = None,
                         cache: ResampleCache | None = None):
    """The asset's refresh (the previous table: the one written, unless given; the shared resample cache, unless
    given), the partitions digested and the cache."""
    config = load_config(paths)
    store = open_versions(paths, config)
    previous = store.warehouse.read_table(COMPARISONS_TABLE) if previous is None else previous
    recording = _RecordingWarehouse(store.warehouse)
    digests = PartitionDigests(recording, paths.cache / DIGESTS_FILE)
    fresh = cache is not None
    cache = cache or leaderboard_cache(paths, COMPARISONS)
    sums = None if fresh else prompt_sums_cache(paths, store.warehouse, digests)
    refreshed = refresh_comparisons(store, metric_columns(), decision_config(config, METRICS),
                                    previous if previous.height else None, digests, cache, sums)
    digests.save()
    cache.save()
    store.warehouse.write_table(COMPARISONS_TABLE, refreshed.table)
    return refreshed, recording.read, cache, sums


@pytest.fixture(scope="module")
def grown(tmp_path_factory) -> dict:
    """A finished 3-model data directory with every derived output built, then a 4th model added and refreshed."""
    paths = DataPaths(tmp_path_factory.mktemp("incremental") / "data")
    build_data_dir(paths, SPEC)
    first, *_ = _refresh_comparisons(paths)
    cache, sums = leaderboard_cache(paths), _sums_cache(paths)
    _leaderboard(paths, cache, sums)
    cache.save()
    build_data_dir_report(paths, SPEC.images_per_prompt)
    add_model(open_scale_data(paths, SPEC), SPEC.models, own_images=True)
    after, digested, compared, compared_sums = _refresh_comparisons(paths)
    cache, sums = leaderboard_cache(paths), _sums_cache(paths)
    tables = _leaderboard(paths, cache, sums)
    cache.save()
    read: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        original = Warehouse._read
        patch.setattr(Warehouse, "_read", lambda self, key: read.append(key) or original(self, key))
        report = build_data_dir_report(paths, SPEC.images_per_prompt)
    return {"paths": paths, "first": first, "after": after, "digested": digested, "compared": compared,
            "compared_sums": compared_sums, "cache": cache, "sums": sums, "tables": tables, "report": report,
            "report_read": read}


def test_comparisons_recompute_only_rows_of_the_new_model_and_the_composite(grown):
    table = grown["after"].table.filter(pl.col("kind") == "models")
    involved = (pl.col("model_a") == NEW) | (pl.col("model_b") == NEW) | (pl.col("metric") == "composite")
    assert grown["after"].tally.recomputed == table.filter(involved).height
    assert grown["after"].tally.carried == table.filter(~involved).height > 0


def test_comparisons_refresh_digests_only_the_new_models_partitions_and_equals_a_full_rebuild(grown):
    """Unchanged models are recognised from the listing: the only partitions read whole are the new model's."""
    assert sorted(grown["digested"]) == sorted((METRICS[name].table, NEW, category)
                                               for name in SPEC.metric_names for category in SPEC.category_names)
    rebuilt, *_ = _refresh_comparisons(grown["paths"], previous=pl.DataFrame(), cache=ResampleCache(None))
    assert (rebuilt.tally.carried, rebuilt.tally.recomputed) == (0, rebuilt.table.filter(
        pl.col("kind") == "models").height)
    assert_frame_equal(grown["after"].table, rebuilt.table, check_exact=True)


def test_comparisons_resample_only_the_new_model_and_the_leaderboard_reads_its_figures_back(grown):
    """The two assets share the resample cache: the comparisons (which run first) resample the new model once
    per metric and slice, and the leaderboard finds every figure it needs already made."""
    compared, cache = grown["compared"], grown["cache"]
    slices = SPEC.categories + 1  # each category and "all"
    assert compared.computed_models == {NEW}
    assert compared.computed == SPEC.metrics * slices, "one resampled figure per metric and slice of the new model"
    assert (cache.computed, cache.computed_models) == (0, set())
    assert cache.reused > 0


def test_leaderboard_sums_only_the_new_models_partitions_and_equals_a_full_rebuild(grown):
    """Unchanged partitions' per-prompt sums are read back by their content digests, not summed again: the
    comparisons (first) sum the new model's partitions only, and the leaderboard reads all of them back."""
    assert grown["compared_sums"].partitions_summed == SPEC.metrics * SPEC.categories
    assert grown["sums"].partitions_summed == 0
    fresh = _leaderboard(grown["paths"], ResampleCache(None))
    for carried, rebuilt in zip(grown["tables"], fresh):
        assert_frame_equal(carried, rebuilt, check_exact=True)


def test_report_writes_only_the_new_models_files_and_equals_a_full_build(grown, tmp_path):
    paths, report = grown["paths"], grown["report"]
    assert (report.pages_written, report.carried_over) == (1, SPEC.models)
    assert report.thumbnails.created == SPEC.prompts * SPEC.images_per_prompt, "the new model's own images only"
    partitions_read = {key.split("/")[1] for key in grown["report_read"] if key.count("/") == 2}
    assert partitions_read == {NEW}, "the other models' rows are not read, not even to digest them"
    shutil.move(paths.report, tmp_path / "incremental")  # the full build goes where it was: same relative links
    config = load_config(paths)
    full = build_report(open_warehouse(paths, config), paths.report, images_store(paths, config),
                        [MetricInfo.of(cls) for cls in METRICS.values()], models=model_sources(paths.models),
                        default_images_per_prompt=SPEC.images_per_prompt, incremental=False)
    assert full.pages_written == SPEC.models + 1
    _same_tree(tmp_path / "incremental", paths.report, skip={"manifest.json"})


def test_changed_scores_of_one_model_rewrite_that_models_files_only(grown):
    paths = grown["paths"]
    wh = open_warehouse(paths, load_config(paths))
    table = METRICS[SPEC.metric_names[0]].table
    category = SPEC.category_names[0]
    part = wh.read_partition(table, model_name(0), category)
    wh.write_partition(table, model_name(0), category, part.with_columns(pl.col("value") * 0.5))
    report = build_data_dir_report(paths, SPEC.images_per_prompt)
    assert (report.pages_written, report.carried_over, report.thumbnails.created) == (1, SPEC.models, 0)


def _same_tree(a: Path, b: Path, skip: set[str]) -> None:
    compared = filecmp.dircmp(a, b, ignore=[*skip, *filecmp.DEFAULT_IGNORES])
    pending = [compared]
    while pending:
        here = pending.pop()
        assert not here.left_only and not here.right_only, (here.left, here.left_only, here.right_only)
        _, mismatch, errors = filecmp.cmpfiles(here.left, here.right, here.common_files, shallow=False)
        assert not mismatch and not errors, (here.left, mismatch, errors)
        pending += here.subdirs.values()
