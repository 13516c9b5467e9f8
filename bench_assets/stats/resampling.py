"""Prompt-level resampling of per-prompt column sums.

A "sums" mapping holds, per summary column of a metric, one number per prompt
(the column summed over that prompt's rows), all aligned on the same prompts.
A figure is ``combine(totals)`` where ``totals`` are those columns summed over
prompts; resampling prompts is then a matrix product with a weight matrix
(bootstrap counts, or swap indicators), one row per resample.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

import numpy as np

Sums = Mapping[str, np.ndarray]
Combine = Callable[[dict[str, Any]], Any]

N_BOOT = 1000
N_PERM = 2000
CONFIDENCE = 0.95


@lru_cache(maxsize=64)
def bootstrap_counts(n_prompts: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(n_boot, n_prompts) how often each prompt is drawn in each resample (read-only, cached).

    One matrix serves every model of a comparison, so all models are
    resampled on the same prompts (what makes the bootstrap paired). Fixed
    seed: the same prompts give the same intervals every run.
    """
    picks = np.random.default_rng(seed).integers(0, n_prompts, size=(n_boot, n_prompts))
    flat = (np.arange(n_boot)[:, None] * n_prompts + picks).ravel()
    counts = np.bincount(flat, minlength=n_boot * n_prompts).reshape(n_boot, n_prompts).astype(float)
    counts.flags.writeable = False
    return counts


@lru_cache(maxsize=64)
def sign_flips(n_prompts: int, n_perm: int = N_PERM, seed: int = 1) -> np.ndarray:
    """(n_perm, n_prompts) of 0/1: which prompts swap sides in each permutation (read-only, cached)."""
    flips = np.random.default_rng(seed).integers(0, 2, size=(n_perm, n_prompts)).astype(float)
    flips.flags.writeable = False
    return flips


def figure(sums: Sums, combine: Combine, weights: np.ndarray | None = None) -> np.ndarray:
    """The metric's figure over all prompts (weights None: one value) or per weight row."""
    if weights is None:
        totals = {name: np.array([column.sum()]) for name, column in sums.items()}
    else:
        totals = {name: weights @ column for name, column in sums.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(combine(totals), dtype=float)


@lru_cache(maxsize=4096)
def expanded_tail(n_clusters: int, confidence: float = CONFIDENCE) -> float:
    """The percentile to cut at so that the interval keeps its coverage with few prompts.

    A plain percentile bootstrap is too narrow for small samples: it uses
    the normal quantile where a t quantile belongs and the plug-in variance
    (divisor n). Hesterberg's *expanded percentile* interval corrects both
    by cutting at Φ(−sqrt(n/(n−1))·t_{n−1, 1−α/2}) instead of α/2: 2.1% for
    50 prompts, 0.9% for 10 (Hesterberg 2015, "What teachers should know
    about the bootstrap", The American Statistician 69(4)).
    """
    from scipy.special import ndtr, stdtrit  # normal CDF, t quantile (scipy.stats takes seconds to import)

    tail = (1.0 - confidence) / 2.0
    if n_clusters < 2:
        return tail
    widened = np.sqrt(n_clusters / (n_clusters - 1)) * stdtrit(n_clusters - 1, 1.0 - tail)
    return float(ndtr(-widened))


def percentile_interval(samples: np.ndarray, n_clusters: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Expanded percentile interval of the finite samples (NaN, NaN if none)."""
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    tail = expanded_tail(n_clusters, confidence)
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return float(low), float(high)


def percentile_intervals(samples: Sequence[np.ndarray], n_clusters: Sequence[int],
                         confidence: float = CONFIDENCE) -> np.ndarray:
    """``percentile_interval`` of many sample vectors, (k, 2): vectors of one length and cluster count, all
    finite (the usual case), in one quantile call, the same numbers as one call each (a leaderboard has
    17,000 of them at a hundred models)."""
    out = np.empty((len(samples), 2))
    batches: dict[tuple[int, int], list[int]] = {}
    for i, (vector, n) in enumerate(zip(samples, n_clusters)):
        if vector.size and np.isfinite(vector).all():
            batches.setdefault((vector.size, n), []).append(i)
        else:
            out[i] = percentile_interval(vector, n, confidence)
    for (_, n), rows in batches.items():
        tail = expanded_tail(n, confidence)
        out[rows] = np.quantile(np.column_stack([samples[i] for i in rows]), [tail, 1.0 - tail], axis=0).T
    return out
