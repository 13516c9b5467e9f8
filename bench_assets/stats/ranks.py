"""Rank intervals and tiers.

Rank interval: every bootstrap resample (the same prompts drawn for every
model) ranks the models; a model's interval is the 2.5th-97.5th percentile
of its ranks, the "rank 1-3" public LLM arenas report.

Tier: models in order of their figure; a model joins the tier of the model
leading the current tier unless the paired test separates them (adjusted
p < alpha), in which case it starts the next tier. Models the tests cannot
tell apart therefore share a tier.
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
    better = np.where(np.isfinite(better), better, -np.inf)
    return 1 + (better[..., None, :] > better[..., :, None]).sum(axis=-1)


def rank_intervals(samples: np.ndarray, higher_is_better: bool = True,
                   confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Per model (columns of ``samples``, one row per resample): lowest and highest plausible rank."""
    sample_ranks = ranks(samples, higher_is_better)
    tail = (1.0 - confidence) / 2.0
    low = np.quantile(sample_ranks, tail, axis=0, method="lower")
    high = np.quantile(sample_ranks, 1.0 - tail, axis=0, method="higher")
    return low.astype(int), high.astype(int)


def tiers(order: Sequence[int], adjusted_p: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Tier (1 = best) per model; ``order`` lists model indices best first, ``adjusted_p`` is K×K."""
    result = np.zeros(len(order), dtype=int)
    tier, leader = 0, None
    for index in order:
        if leader is None or adjusted_p[leader, index] < alpha:
            tier, leader = tier + 1, index
        result[index] = tier
    return result
