"""Rank intervals (by simulation against the true ranks) and tiers."""

from __future__ import annotations

import numpy as np

from bench_assets.stats.paired import holm, paired_test
from bench_assets.stats.ranks import rank_intervals, ranks, tiers
from bench_assets.stats.resampling import bootstrap_counts, figure
from simulation import PROMPTS, mean_combine, simulate

EFFECTS = (0.45, 0.3, 0.15, 0.0)  # true ranks 1, 2, 3, 4: neighbours 1.5 standard errors apart


def test_rank_intervals_contain_the_true_rank_at_least_90_percent():
    rng = np.random.default_rng(20261204)
    counts = bootstrap_counts(PROMPTS, seed=0)
    hits = np.zeros(len(EFFECTS))
    widths = []
    for _ in range(500):
        sums = simulate(rng, EFFECTS)
        samples = np.column_stack([figure(s, mean_combine, counts) for s in sums])
        low, high = rank_intervals(samples)
        truth = np.arange(1, len(EFFECTS) + 1)
        hits += (low <= truth) & (truth <= high)
        widths.append(high - low)
    coverage = hits / 500
    assert coverage.min() >= 0.90, coverage
    assert np.mean(widths) < 2.5, "intervals that always span every rank would cover trivially"


def test_ranks_are_competition_ranks_and_direction_aware():
    assert ranks(np.array([0.3, 0.9, 0.3, np.nan])).tolist() == [2, 1, 2, 4]
    assert ranks(np.array([0.3, 0.9, 0.1]), higher_is_better=False).tolist() == [2, 3, 1]
    assert ranks(np.array([[1.0, 2.0], [2.0, 1.0]])).tolist() == [[2, 1], [1, 2]]


def test_ranks_count_the_models_strictly_better_in_every_row():
    """The sort-based ranks against their definition, on rows full of ties, NaN and infinities."""
    rng = np.random.default_rng(3)
    figures = np.round(rng.normal(size=(400, 9)), 1)
    figures.flat[::7], figures.flat[::11], figures.flat[::13] = np.nan, np.inf, -np.inf
    for higher in (True, False):
        better = figures if higher else -figures
        better = np.where(np.isfinite(better), better, -np.inf)  # what cannot be ranked comes last
        by_definition = 1 + (better[:, None, :] > better[:, :, None]).sum(axis=-1)
        assert np.array_equal(ranks(figures, higher), by_definition)


def test_models_the_tests_cannot_separate_share_a_tier():
    rng = np.random.default_rng(11)
    # two clearly separated groups of two nearly equal models
    sums = simulate(rng, [2.0, 1.98, 0.0, 0.01])
    k = len(sums)
    p = np.ones((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            p[i, j] = p[j, i] = paired_test(sums[i], sums[j], mean_combine).p_value
    upper = np.triu_indices(k, 1)
    adjusted = np.ones((k, k))
    adjusted[upper] = holm(p[upper])
    adjusted.T[upper] = adjusted[upper]
    points = np.array([figure(s, mean_combine)[0] for s in sums])
    order = list(np.argsort(-points))
    assert tiers(order, adjusted).tolist() == [1, 1, 2, 2]


def test_tiers_break_only_at_a_significant_gap_between_neighbours():
    # only neighbours are tested at scale: a against c is not read, whatever it says
    chain = np.array([[1, 0.5, 0.01], [0.5, 1, 0.5], [0.01, 0.5, 1]])
    assert tiers([0, 1, 2], chain).tolist() == [1, 1, 1]
    gap = np.array([[1, 0.5, 1], [0.5, 1, 0.01], [1, 0.01, 1]])
    assert tiers([0, 1, 2], gap).tolist() == [1, 1, 2]
    assert tiers([2, 1, 0], gap).tolist() == [2, 2, 1], "order decides who is a neighbour"
