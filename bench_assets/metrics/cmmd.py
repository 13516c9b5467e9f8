"""CMMD: MMD with a Gaussian kernel on CLIP image embeddings (Jayasumana et al. 2024), scaled by 1000 as the paper."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from bench_assets.metrics.distribution_base import DistanceMetric
from bench_assets.stats.distribution import mmd_rbf


class Cmmd(DistanceMetric):
    name: ClassVar[str] = "cmmd"
    version: ClassVar[str] = "1"
    extractor: ClassVar[str] = "clip"
    min_n: ClassVar[int] = 1_000
    note: ClassVar[str] = ("CMMD (the paper's V-statistic) is biased upward at small n; "
                           "compare only at equal n below 1k images")
    description: ClassVar[str] = "MMD (Gaussian kernel, sigma 10, x1000) of CLIP image embeddings"

    def distance(self, generated: np.ndarray, reference: np.ndarray) -> float:
        return mmd_rbf(generated, reference)
