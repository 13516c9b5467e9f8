"""KID: the unbiased MMD² with the cubic polynomial kernel on Inception features (Bińkowski et al. 2018).

Computed as clean-fid and torch-fidelity do: the mean and standard deviation
over ``KID_SUBSETS`` random subsets of at most ``KID_SUBSET_SIZE`` rows each
(``std`` column); the bootstrap interval resamples images around that mean.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bench_assets.metrics.distribution_base import INCEPTION, DistributionMetric, DistributionSettings, interval_of
from bench_assets.stats.distribution import KID_SUBSET_SIZE, KID_SUBSETS, kid

BOOTSTRAP_SUBSETS = 10  # subsets per bootstrap repeat: the interval is about the images, not the subsets


class Kid(DistributionMetric):
    name: ClassVar[str] = "kid"
    version: ClassVar[str] = "1"
    extractor: ClassVar[str] = INCEPTION  # inception_clean or _legacy, as fid_mode says
    min_n: ClassVar[int] = KID_SUBSET_SIZE
    note: ClassVar[str] = ("KID is unbiased at any n, but below 1k images its subsets are smaller than "
                           "clean-fid's and torch-fidelity's, so its std is larger")
    description: ClassVar[str] = "Kernel Inception Distance: unbiased polynomial-kernel MMD², mean and std over subsets"

    def compute(self, generated: np.ndarray, reference: np.ndarray, settings: DistributionSettings,
                seed: int) -> list[dict[str, Any]]:
        n_gen, n_ref = len(generated), len(reference)
        if self.too_few(generated, reference, settings):
            return [self.row(self.name, None, n_gen, n_ref)]
        mean, std = kid(generated, reference, KID_SUBSETS, KID_SUBSET_SIZE, seed)
        interval = interval_of(lambda g, r: kid(g, r, BOOTSTRAP_SUBSETS, KID_SUBSET_SIZE, seed)[0],
                               generated, reference, settings, seed)
        return [self.row(self.name, mean, n_gen, n_ref, interval=interval, std=std)]
