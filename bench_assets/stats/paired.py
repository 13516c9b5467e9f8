"""Paired comparison of two models on the same prompts.

- Difference: figure(A) − figure(B) on matched items.
- Interval: paired bootstrap (expanded percentile, see ``resampling``);
  each resample draws prompts with replacement and takes the *same* prompts
  for both models, so the prompt effect both share cancels.
- p-value: a sign-flip (paired permutation) test over prompts. Under "no
  difference" A's and B's results on a prompt are exchangeable, so each
  prompt's pair is swapped with probability 1/2 and the difference
  recomputed; p = (1 + #|swapped| ≥ |observed|) / (1 + resamples). Valid for
  any figure (a task-mean as well as a mean), no normality assumed.
- Holm's step-down correction for several comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench_assets.stats.resampling import (
    CONFIDENCE, N_BOOT, N_PERM, Combine, Sums, bootstrap_counts, figure, percentile_interval, sign_flips,
)

TEST_NAME = "sign-flip permutation test over prompts (two-sided)"


@dataclass(frozen=True)
class PairedResult:
    value_a: float
    value_b: float
    diff: float  # a − b, in the metric's units
    ci_low: float
    ci_high: float
    p_value: float
    n_prompts: int


def _swap_totals(a: Sums, b: Sums, flips: np.ndarray) -> tuple[dict, dict]:
    """Totals of A and B after swapping the prompts whose flip is 1 (one row per resample)."""
    names = list(a)
    deltas = flips @ np.column_stack([b[name] - a[name] for name in names])  # one product for every column
    swapped_a = {name: a[name].sum() + deltas[:, i] for i, name in enumerate(names)}
    swapped_b = {name: b[name].sum() - deltas[:, i] for i, name in enumerate(names)}
    return swapped_a, swapped_b


def sign_flip_p(a: Sums, b: Sums, combine: Combine, observed: float, n_perm: int = N_PERM,
                seed: int = 1) -> float:
    """Two-sided p-value of the observed difference under prompt-wise exchangeability."""
    if not np.isfinite(observed):
        return float("nan")
    flips = sign_flips(len(next(iter(a.values()))), n_perm, seed)
    swapped_a, swapped_b = _swap_totals(a, b, flips)
    with np.errstate(divide="ignore", invalid="ignore"):
        null = np.asarray(combine(swapped_a), dtype=float) - np.asarray(combine(swapped_b), dtype=float)
    # A tolerance so that exact ties (e.g. identical models) count as "as extreme".
    extreme = np.abs(null) >= abs(observed) - 1e-12 * max(1.0, abs(observed))
    return float((1 + np.count_nonzero(extreme & np.isfinite(null))) / (1 + n_perm))


def paired_test(a: Sums, b: Sums, combine: Combine, n_boot: int = N_BOOT, n_perm: int = N_PERM,
                seed: int = 0, confidence: float = CONFIDENCE, test: bool = True) -> PairedResult:
    """Difference, paired bootstrap interval and sign-flip p-value of A vs B.

    ``a`` and ``b`` must be aligned on the same prompts (matched items only).
    ``test`` False: no sign-flip test (p is NaN), for a pair no decision reads.
    """
    n_prompts = len(next(iter(a.values())))
    value_a, value_b = figure(a, combine)[0], figure(b, combine)[0]
    diff = float(value_a - value_b)
    counts = bootstrap_counts(n_prompts, n_boot, seed)
    low, high = percentile_interval(figure(a, combine, counts) - figure(b, combine, counts),
                                    n_prompts, confidence)
    p_value = sign_flip_p(a, b, combine, diff, n_perm, seed + 1) if test else float("nan")
    return PairedResult(float(value_a), float(value_b), diff, low, high, p_value, n_prompts)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[index]))
        adjusted[index] = running
    return adjusted
