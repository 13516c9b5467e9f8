"""The composite: weights, direction, normalisation, and its interval by resampling."""

from __future__ import annotations

import numpy as np
import pytest

from bench_assets.stats.composite import CompositePart, column_name, composite_combine, z_constants
from bench_assets.stats.resampling import bootstrap_counts, figure
from simulation import mean_combine


def _part(metric, weight, higher, figures):
    centre, scale = z_constants(figures)
    return CompositePart(metric, mean_combine, ("value", "n"), weight, higher, centre, scale)


def _sums(**metric_values):
    out = {}
    for metric, values in metric_values.items():
        out[column_name(metric, "value")] = np.asarray(values, dtype=float)
        out[column_name(metric, "n")] = np.ones(len(values))
    return out


def test_weighted_mean_of_direction_aware_z_scores():
    quality = [0.9, 0.5, 0.1]  # higher is better
    error = [3.0, 1.0, 2.0]  # lower is better
    parts = [_part("quality", 3.0, True, quality), _part("error", 1.0, False, error)]
    combine = composite_combine(parts)
    z_q = (np.array(quality) - np.mean(quality)) / np.std(quality)
    z_e = -(np.array(error) - np.mean(error)) / np.std(error)
    for i in range(3):
        totals = {k: np.array([v]) for k, v in _sums(quality=[quality[i]], error=[error[i]]).items()}
        got = combine({k: v.sum(keepdims=True) for k, v in totals.items()})[0]
        assert got == pytest.approx((3 * z_q[i] + z_e[i]) / 4)


def test_a_metric_where_all_models_agree_contributes_zero_and_a_missing_one_is_skipped():
    parts = [_part("flat", 1.0, True, [0.5, 0.5]), _part("spread", 1.0, True, [0.0, 1.0])]
    combine = composite_combine(parts)
    both = combine({k: v for k, v in _sums(flat=[0.5], spread=[1.0]).items()})[0]
    assert both == pytest.approx(0.5)  # (0 + 1) / 2
    only_spread = {**_sums(spread=[1.0]), column_name("flat", "value"): np.array([0.0]),
                   column_name("flat", "n"): np.array([0.0])}
    assert combine(only_spread)[0] == pytest.approx(1.0)


def test_composite_interval_by_the_prompt_bootstrap_narrows_with_more_prompts():
    rng = np.random.default_rng(0)
    widths = []
    for prompts in (20, 320):
        a = rng.normal(0.6, 0.3, prompts)
        parts = [_part("m", 1.0, True, [0.4, 0.6])]
        sums = {column_name("m", "value"): a, column_name("m", "n"): np.ones(prompts)}
        samples = figure(sums, composite_combine(parts), bootstrap_counts(prompts))
        widths.append(np.quantile(samples, 0.975) - np.quantile(samples, 0.025))
    assert widths[1] < widths[0] / 3  # ~1/sqrt(16) = 1/4
