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
from typing import Sequence

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


def sign_flip_ps(pairs: Sequence[tuple[Sums, Sums]], combine: Combine, observed: Sequence[float],
                 n_perm: int = N_PERM, seed: int = 1) -> np.ndarray:
    """``sign_flip_p`` of several pairs on the same prompts, one matrix product for all of them.

    Each pair's swapped totals are its totals plus (A) or minus (B) the swap
    indicators times B − A, column by column: stacking every pair's columns
    reads the (permutations × prompts) indicators once, not once per pair.
    """
    if not pairs:
        return np.empty(0)
    names = list(pairs[0][0])
    flips = sign_flips(len(pairs[0][0][names[0]]), n_perm, seed)
    differences = [b[name] - a[name] for a, b in pairs for name in names]
    # A column the two sides share prompt for prompt (an item count, most often) swaps nothing: its delta is
    # 0 and is not multiplied out (about half of the composite's 42 columns).
    moving = [i for i, d in enumerate(differences) if d.any()]
    deltas = np.zeros((n_perm, len(differences)))
    if moving:
        deltas[:, moving] = flips @ np.column_stack([differences[i] for i in moving])
    deltas = deltas.reshape(n_perm, len(pairs), len(names))  # [permutation, pair, column]

    def swapped(side: int, sign: float) -> np.ndarray:
        """Every pair's figure of one side under every permutation: its totals ± the swapped deltas."""
        totals = {n: np.array([pair[side][n].sum() for pair in pairs]) for n in names}
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(combine({n: (totals[n] + sign * deltas[..., i]).ravel() for i, n in enumerate(names)}),
                              dtype=float)

    seen = np.asarray(observed, dtype=float)
    with np.errstate(invalid="ignore"):
        null = (swapped(0, 1.0) - swapped(1, -1.0)).reshape(n_perm, len(pairs))
        # A tolerance so that exact ties (e.g. identical models) count as "as extreme".
        extreme = (np.abs(null) >= np.abs(seen) - 1e-12 * np.maximum(1.0, np.abs(seen))) & np.isfinite(null)
    return np.where(np.isfinite(seen), (1 + extreme.sum(axis=0)) / (1 + n_perm), np.nan)


def sign_flip_p(a: Sums, b: Sums, combine: Combine, observed: float, n_perm: int = N_PERM,
                seed: int = 1) -> float:
    """Two-sided p-value of the observed difference under prompt-wise exchangeability."""
    return float(sign_flip_ps([(a, b)], combine, [observed], n_perm, seed)[0])


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
