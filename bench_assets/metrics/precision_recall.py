"""Precision and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020) on k-NN balls.

Four rows, each with ``k`` recorded (``distribution: k:``, default 5). Higher
is better for all four. On the FID Inception's features unless another row of
``FEATURE_EXTRACTORS`` is configured (``extractor`` below).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bench_assets.metrics.distribution_base import INCEPTION, DistributionMetric, DistributionSettings, intervals_of
from bench_assets.stats.distribution import prdc

PRDC_NAMES = ("precision", "recall", "density", "coverage")
PRDC_BOUNDS = {"precision": (0.0, 1.0), "recall": (0.0, 1.0), "density": (0.0, None), "coverage": (0.0, 1.0)}


class PrecisionRecall(DistributionMetric):
    name: ClassVar[str] = "precision_recall"
    version: ClassVar[str] = "1"
    extractor: ClassVar[str] = INCEPTION  # inception_clean or _legacy, as fid_mode says
    lower_is_better: ClassVar[bool] = False
    min_n: ClassVar[int] = 10_000
    note: ClassVar[str] = "k-NN estimates shift with n: compare only at equal n and equal k"
    description: ClassVar[str] = "precision, recall, density and coverage of k-NN balls in feature space"

    def too_few(self, generated: np.ndarray, reference: np.ndarray, settings: DistributionSettings) -> bool:
        return min(len(generated), len(reference)) <= settings.k

    def compute(self, generated: np.ndarray, reference: np.ndarray, settings: DistributionSettings,
                seed: int) -> list[dict[str, Any]]:
        n_gen, n_ref, k = len(generated), len(reference), settings.k
        if self.too_few(generated, reference, settings):
            return [self.row(name, None, n_gen, n_ref, k=k) for name in PRDC_NAMES]
        values = prdc(reference, generated, k)
        intervals = intervals_of(lambda g, r: prdc(r, g, k), generated, reference, settings, seed, bounds=PRDC_BOUNDS,
                                 estimates=values)
        return [self.row(name, values[name], n_gen, n_ref, k=k, interval=intervals.get(name)) for name in PRDC_NAMES]
