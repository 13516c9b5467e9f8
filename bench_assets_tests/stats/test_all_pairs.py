"""Every model at once: the shared bootstrap equals the per-pair one, and the tested pairs keep their error rates.

The simulation is the calibration tests' data model (``simulation.py``) at the
new procedure's scale: ten models, every pair's interval from the shared
bootstrap, the sign-flip test only on neighbours in rank, Holm over those.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from bench_assets.stats.all_pairs import pair_intervals, pairs_to_test, resampled_figures
from bench_assets.stats.paired import holm, paired_test, sign_flip_p
from bench_assets.stats.resampling import bootstrap_counts, figure
from simulation import PROMPTS, mean_combine, simulate

MODELS = [f"m{i}" for i in range(10)]
SIMULATIONS = 300


def test_a_pair_from_the_shared_bootstrap_is_the_paired_test_of_that_pair():
    sums = simulate(np.random.default_rng(3), np.linspace(0.0, 0.5, 6))
    samples = resampled_figures(sums, mean_combine, bootstrap_counts(PROMPTS))
    pairs = list(combinations(range(6), 2))
    low, high = pair_intervals(samples, [a for a, _ in pairs], [b for _, b in pairs], PROMPTS)
    for k, (a, b) in enumerate(pairs):
        alone = paired_test(sums[a], sums[b], mean_combine)
        assert (low[k], high[k]) == pytest.approx((alone.ci_low, alone.ci_high), rel=1e-12, abs=1e-12)


def test_a_combine_that_stacks_its_columns_gets_one_row_of_resamples():
    """GenEval's combine stacks its tasks with vstack: totals are flattened before it, reshaped after."""
    sums = simulate(np.random.default_rng(4), [0.0, 0.2, 0.4])
    stacked = lambda totals: np.nanmean(np.vstack([totals["value"] / totals["n"]]), axis=0)  # noqa: E731
    counts = bootstrap_counts(PROMPTS)
    samples = resampled_figures(sums, stacked, counts)
    for i, s in enumerate(sums):
        np.testing.assert_allclose(samples[:, i], figure(s, mean_combine, counts), rtol=1e-12)


def test_neighbours_in_rank_and_the_reference_are_tested():
    points = np.array([0.1, 0.9, 0.5, 0.3])  # order: b, c, d, a
    models = ["a", "b", "c", "d"]
    assert pairs_to_test(models, points, True) == {("b", "c"), ("c", "d"), ("a", "d")}
    assert pairs_to_test(models, points, False) == {("b", "c"), ("c", "d"), ("a", "d")}, "same neighbours reversed"
    assert pairs_to_test(models, points, True, "a") == {("b", "c"), ("c", "d"), ("a", "d"), ("a", "b"), ("a", "c")}
    assert pairs_to_test(models, points, True, "nobody") == pairs_to_test(models, points, True)


def _simulate(effects, seed: int, reference: str | None = None):
    """Per simulated benchmark: the tested pairs' (diff, p, Holm p) and every pair's interval."""
    rng, out = np.random.default_rng(seed), []
    counts = bootstrap_counts(PROMPTS)
    pairs = list(combinations(range(len(effects)), 2))
    for _ in range(SIMULATIONS):
        sums = simulate(rng, effects)
        points = np.array([figure(s, mean_combine)[0] for s in sums])
        tested = sorted(pairs_to_test(MODELS, points, True, reference))
        index = {m: i for i, m in enumerate(MODELS)}
        p = np.array([sign_flip_p(sums[index[a]], sums[index[b]], mean_combine,
                                  points[index[a]] - points[index[b]]) for a, b in tested])
        samples = resampled_figures(sums, mean_combine, counts)
        low, high = pair_intervals(samples, [a for a, _ in pairs], [b for _, b in pairs], PROMPTS)
        truth = np.array([effects[a] - effects[b] for a, b in pairs])
        out.append((tested, p, holm(p), (low <= truth) & (truth <= high)))
    return out


@pytest.fixture(scope="module")
def null_runs():
    return _simulate([0.0] * len(MODELS), seed=20261205, reference="m0")


def test_ten_equal_models_are_separated_at_most_5_percent_of_the_time(null_runs):
    """Neighbours are the closest pairs (selected, so conservative); pairs with the reference are not selected."""
    def rate(keep):
        return np.mean(np.concatenate([p[[keep(pair) for pair in tested]] < 0.05 for tested, p, _, _ in null_runs]))

    with_reference = rate(lambda pair: "m0" in pair)
    assert 0.02 <= with_reference <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / (SIMULATIONS * 9)), with_reference
    assert rate(lambda pair: "m0" not in pair) <= 0.05
    family = np.mean([(adjusted < 0.05).any() for _, _, adjusted, _ in null_runs])
    assert family <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / SIMULATIONS), family


def test_every_pairs_interval_from_the_shared_bootstrap_covers_93_to_97_percent(null_runs):
    coverage = np.mean(np.concatenate([covered for *_, covered in null_runs]))
    assert 0.93 <= coverage <= 0.97, coverage


def test_neighbours_0_4_apart_are_separated_at_least_80_percent_of_the_time():
    effects = [0.4 * i for i in range(len(MODELS))]  # m9 best; each neighbour 0.4 above the next
    runs = _simulate(effects, seed=20261206)
    separated = [adjusted < 0.05 for _, _, adjusted, _ in runs]
    power = np.mean(np.concatenate(separated))
    assert power >= 0.80, power
    intervals = np.mean(np.concatenate([covered for *_, covered in runs]))
    assert 0.93 <= intervals <= 0.97, intervals
