"""Many percentile intervals at once: the same numbers as one call each, whatever the mix of lengths,
cluster counts and non-finite samples."""

from __future__ import annotations

import numpy as np

from bench_assets.stats.resampling import percentile_interval, percentile_intervals


def test_batched_intervals_equal_one_call_each():
    rng = np.random.default_rng(5)
    samples = [rng.normal(size=1000) for _ in range(40)] + [rng.normal(size=250) for _ in range(5)]
    samples += [np.array([np.nan, 1.0, 2.0, 3.0]), np.array([np.inf, -1.0]), np.array([np.nan]), np.array([])]
    clusters = [int(c) for c in rng.choice([3, 12, 400], size=len(samples))]
    one_by_one = np.array([percentile_interval(s, n) for s, n in zip(samples, clusters)])
    assert np.array_equal(percentile_intervals(samples, clusters), one_by_one, equal_nan=True)
    assert np.isnan(one_by_one[-1]).all() and np.isfinite(one_by_one[:-2]).all()
