"""The resampled figures' cache: the same numbers as resampling afresh, and shared by the leaderboard and the
comparisons without either evicting the figures the other still uses."""

from __future__ import annotations

import numpy as np

from bench_assets.stats.resampling import bootstrap_counts, figure
from bench_assets.storage.resample_cache import COMPARISONS, LEADERBOARD, ResampleCache


def _mean(totals):
    return totals["sum"] / totals["n"]


def _sums(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"sum": rng.normal(size=30), "n": np.full(30, 2.0)}


def _use(path, user: str, seeds: list[int]) -> ResampleCache:
    cache = ResampleCache(path, user)
    for seed in seeds:
        cache.figures("m", f"model-{seed}", _sums(seed), _mean, 50)
    cache.save()
    return cache


def test_figures_are_the_fresh_resampling_and_are_read_back_after_saving(tmp_path):
    path = tmp_path / "cache.npz"
    first = _use(path, LEADERBOARD, [1, 2])
    assert (first.computed, first.reused) == (2, 0)
    again = ResampleCache(path, LEADERBOARD)
    got = again.figures("m", "model-1", _sums(1), _mean, 50)
    assert (again.computed, again.reused) == (0, 1)
    np.testing.assert_array_equal(got, figure(_sums(1), _mean, bootstrap_counts(30, 50, 0)))


def test_a_user_saving_keeps_the_figures_the_other_user_still_uses(tmp_path):
    path = tmp_path / "cache.npz"
    _use(path, LEADERBOARD, [1, 2])
    shared = _use(path, COMPARISONS, [2, 3])
    assert shared.reused == 1, "the leaderboard's figure of model 2 is read back"
    _use(path, LEADERBOARD, [1])  # model 2 no longer the leaderboard's, still the comparisons'
    assert _use(path, COMPARISONS, [2, 3]).computed == 0
    _use(path, COMPARISONS, [3])  # model 2 now nobody's: dropped
    left = _use(path, LEADERBOARD, [1, 2])
    assert (left.computed, left.reused) == (1, 1)
