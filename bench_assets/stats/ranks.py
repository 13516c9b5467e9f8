"""Rank intervals and tiers.

Rank interval: every bootstrap resample (the same prompts drawn for every
model) ranks the models; a model's interval is the 2.5th-97.5th percentile
of its ranks, the "rank 1-3" public LLM arenas report.

Tier: models in order of their figure; a model stays in the tier of the
model just above it unless the paired test of those two neighbours separates
them (adjusted p < alpha), in which case it starts the next tier. Models the
tests cannot tell apart therefore share a tier, and a tier boundary is a
significant gap between neighbours. Neighbours (not each model against its
tier's leader) because only they are tested at scale: ``all_pairs.pairs_to_test``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from bench_assets.stats.resampling import CONFIDENCE

ALPHA = 0.05


def oriented(figures: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Figures turned so that larger is better."""
    return figures if higher_is_better else -figures


def ranks(figures: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Competition ranks ("min": ties share the best rank) along the last axis; NaN ranks last."""
    better = oriented(np.asarray(figures, dtype=float), higher_is_better)
    worse = -np.where(np.isfinite(better), better, -np.inf)  # ascending = best first
    # A model's rank is 1 + how many are strictly better: its place in the sorted row, moved back to the
    # first of its ties. Sorting costs K log K per row, not the K² of comparing every pair (a thousand
    # resamples × a hundred models × 14 slices × 12 figures).
    order = np.argsort(worse, axis=-1, kind="stable")
    in_order = np.take_along_axis(worse, order, axis=-1)
    places = np.broadcast_to(np.arange(worse.shape[-1]), worse.shape)
    starts = np.ones(worse.shape, dtype=bool)
    starts[..., 1:] = in_order[..., 1:] != in_order[..., :-1]
    first_of_ties = np.maximum.accumulate(np.where(starts, places, 0), axis=-1)
    result = np.empty(worse.shape, dtype=int)
    np.put_along_axis(result, order, first_of_ties + 1, axis=-1)
    return result


def rank_intervals(samples: np.ndarray, higher_is_better: bool = True,
                   confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Per model (columns of ``samples``, one row per resample): lowest and highest plausible rank."""
    sample_ranks = ranks(samples, higher_is_better)
    tail = (1.0 - confidence) / 2.0
    low = np.quantile(sample_ranks, tail, axis=0, method="lower")
    high = np.quantile(sample_ranks, 1.0 - tail, axis=0, method="higher")
    return low.astype(int), high.astype(int)


def rank_order(figures: np.ndarray, higher_is_better: bool = True) -> list[int]:
    """Model indices best first (ties keep the models' own order): the order tiers and tested pairs follow."""
    return [int(i) for i in np.argsort(ranks(figures, higher_is_better), kind="stable")]


def tiers(order: Sequence[int], adjusted_p: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Tier (1 = best) per model; ``order`` lists model indices best first, ``adjusted_p`` is K×K.

    Only neighbours in ``order`` are read (an untested pair's p is 1: no gap).
    """
    result = np.zeros(len(order), dtype=int)
    tier, above = 0, None
    for index in order:
        if above is None or adjusted_p[above, index] < alpha:
            tier += 1
        result[index], above = tier, index
    return result
