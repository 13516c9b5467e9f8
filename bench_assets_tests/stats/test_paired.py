"""Calibration of the paired test and interval by simulation against known truth."""

from __future__ import annotations

import numpy as np
import pytest

from bench_assets.stats.paired import holm, paired_test
from simulation import mean_combine, simulate

SIMULATIONS = 500


def _run(true_diff: float, seed: int):
    rng = np.random.default_rng(seed)
    results = []
    for i in range(SIMULATIONS):
        a, b = simulate(rng, [true_diff, 0.0])
        results.append(paired_test(a, b, mean_combine, seed=i))
    return results


@pytest.fixture(scope="module")
def null_runs():
    return _run(0.0, seed=20261202)


@pytest.fixture(scope="module")
def effect_runs():
    return _run(0.3, seed=20261203)


def test_false_positive_rate_at_most_6_percent(null_runs):
    rate = np.mean([r.p_value < 0.05 for r in null_runs])
    assert 0.02 <= rate <= 0.06, rate  # also not absurdly conservative


def test_power_at_least_80_percent_for_a_difference_of_0_3(effect_runs):
    power = np.mean([r.p_value < 0.05 and r.diff > 0 for r in effect_runs])
    assert power >= 0.80, power


@pytest.mark.parametrize("runs, truth", [("effect_runs", 0.3), ("null_runs", 0.0)])
def test_paired_interval_covers_the_true_difference_93_to_97_percent(runs, truth, request):
    results = request.getfixturevalue(runs)
    coverage = np.mean([r.ci_low <= truth <= r.ci_high for r in results])
    assert 0.93 <= coverage <= 0.97, coverage


def test_pairing_cancels_the_shared_prompt_effect():
    """With a large prompt effect an unpaired interval would be ~7x wider; the paired one is not."""
    rng = np.random.default_rng(5)
    a, b = simulate(rng, [0.3, 0.0], prompt_sd=5.0)
    result = paired_test(a, b, mean_combine)
    assert result.ci_high - result.ci_low < 0.5
    assert result.p_value < 0.05


def test_identical_models_have_p_one_and_a_zero_interval():
    rng = np.random.default_rng(1)
    (a,) = simulate(rng, [0.0])
    result = paired_test(a, dict(a), mean_combine)
    assert result.diff == 0.0 and result.p_value == 1.0
    assert result.ci_low == result.ci_high == 0.0


def test_a_non_mean_figure_is_compared_on_that_figure():
    """A ratio of sums (like GenEval's per-task accuracies) is tested on the ratio, not a mean of ratios."""
    rng = np.random.default_rng(3)
    n = rng.integers(1, 6, size=60).astype(float)
    passes_a = rng.binomial(n.astype(int), 0.7).astype(float)
    passes_b = rng.binomial(n.astype(int), 0.4).astype(float)
    result = paired_test({"value": passes_a, "n": n}, {"value": passes_b, "n": n}, mean_combine)
    assert result.diff == pytest.approx(passes_a.sum() / n.sum() - passes_b.sum() / n.sum())
    assert result.p_value < 0.01 and result.ci_low > 0


def test_holm_matches_the_step_down_definition():
    adjusted = holm([0.01, 0.04, 0.03, 0.005, np.nan])
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> max so far 0.06
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[4])
    assert holm([0.9, 0.8])[0] == 1.0
