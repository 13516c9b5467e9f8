"""``storage.status``: the one walk over models and categories that `bench status` and the nightly schedule share."""

from __future__ import annotations

import pytest

from bench_assets.core.paths import DataPaths
from bench_assets.models.registry import scan_models
from bench_assets.storage.leaderboard import EVERY_CATEGORY, OVERALL, UnknownCategory, check_category
from bench_assets.storage.status import StatusInputs, suite_statuses


def test_every_model_in_every_category_but_the_skipped_ones(data_dir):
    paths = DataPaths(data_dir)
    inputs = StatusInputs.from_data_dir(paths)
    entries = scan_models(paths.models)
    categories = list(inputs.suite.categories)
    assert len(entries) == 2 and len(categories) >= 2
    busy = {(entries[0].key, categories[0])}

    walked = list(suite_statuses(inputs, entries, skip=busy))
    assert [entry.key for entry, _ in walked] == [entry.key for entry in entries]
    assert [s.category for s in walked[0][1]] == categories[1:], "a busy partition is not judged"
    assert [s.category for s in walked[1][1]] == categories, "the other model's same category is"
    expected = {c: len(inputs.suite.in_category(c)) for c in categories}
    for entry, statuses in walked:
        for status in statuses:  # nothing generated yet; each model's own images_per_prompt (its sidecar)
            assert (status.model, status.state) == (entry.key, "missing")
            assert status.expected_images % expected[status.category] == 0 and status.expected_images > 0


def test_a_category_the_leaderboard_lacks_is_named_with_the_known_ones():
    check_category("object", ["all", "object"])
    check_category(EVERY_CATEGORY, ["all"])
    check_category(OVERALL, [])  # before anything was scored: an empty board, no error
    with pytest.raises(UnknownCategory, match=r"no category 'objects' in the leaderboard; known: all, object, "
                                              r"or '\*' for every row"):
        check_category("objects", ["all", "object"])
    with pytest.raises(UnknownCategory, match=r"known: none yet \(run `bench run`\)"):
        check_category("colour", [])
