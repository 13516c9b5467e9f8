"""Every model of a slice at once: one bootstrap for all of them, and which pairs get a test.

With K models, comparing each pair with its own bootstrap costs K²/2
resamplings of the prompts. Drawing the bootstrap counts once and multiplying
them with a prompts × models matrix gives every model's resampled figure in
one product; a pair's paired bootstrap is then the difference of two columns
(the same prompts drawn for both sides, so it is exactly the paired bootstrap
of ``paired.paired_test`` when the two models have the same prompts).

The sign-flip test cannot be shared that way (each pair swaps its own two
sides), so it runs only on the pairs a decision reads: models adjacent in the
order of their figure (what the tiers read) and each model against the team's
named reference. Holm's correction is then over the pairs actually tested.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from bench_assets.stats.ranks import rank_order
from bench_assets.stats.resampling import CONFIDENCE, Combine, Sums, expanded_tail, percentile_interval

Pair = tuple[str, str]  # (model_a, model_b), a before b by name


def resampled_figures(arrays: Sequence[Sums], combine: Combine, counts: np.ndarray) -> np.ndarray:
    """(n_boot, K): every model's figure in every resample, one matrix product per summary column.

    ``arrays`` are the models' per-prompt sums, all aligned on the same prompts
    as the columns of ``counts``. The totals are flattened before ``combine``
    (combines are written for one row of resamples, e.g. GenEval's stacks its tasks).
    """
    n_boot, k = counts.shape[0], len(arrays)
    totals = {name: (counts @ np.column_stack([a[name] for a in arrays])).ravel() for name in arrays[0]}
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(combine(totals), dtype=float).reshape(n_boot, k)


def pair_intervals(samples: np.ndarray, a: Sequence[int], b: Sequence[int], n_prompts: int,
                   confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Expanded percentile intervals of column a − column b for each (a, b): ``percentile_interval`` per pair."""
    diffs = samples[:, list(a)] - samples[:, list(b)]
    if diffs.shape[1] == 0:
        return np.empty(0), np.empty(0)
    if np.isfinite(diffs).all():
        tail = expanded_tail(n_prompts, confidence)
        low, high = np.quantile(diffs, [tail, 1.0 - tail], axis=0)
        return low, high
    bounds = np.array([percentile_interval(diffs[:, i], n_prompts, confidence) for i in range(diffs.shape[1])])
    return bounds[:, 0], bounds[:, 1]


def pairs_to_test(models: Sequence[str], points: np.ndarray, higher_is_better: bool,
                 reference: str | None = None) -> set[Pair]:
    """The pairs a decision reads: neighbours in the order of the figure, and each model with ``reference``.

    ``models`` and ``points`` are aligned; the order is the leaderboard's
    (``ranks.rank_order``). A reference that is not among ``models`` adds nothing.
    """
    order = [models[i] for i in rank_order(np.asarray(points, dtype=float), higher_is_better)]
    pairs = {tuple(sorted(p)) for p in zip(order, order[1:])}
    if reference in models:
        pairs |= {tuple(sorted((reference, m))) for m in models if m != reference}
    return pairs
