"""FD-DINOv2: the Fréchet distance on DINOv2 features (Stein et al. 2023), which agrees with people better than FID."""

from __future__ import annotations

from typing import ClassVar

from bench_assets.metrics.distribution_base import FrechetDistance


class FdDinov2(FrechetDistance):
    name: ClassVar[str] = "fd_dinov2"
    version: ClassVar[str] = "1"
    extractor: ClassVar[str] = "dinov2"
    min_n: ClassVar[int] = 10_000
    note: ClassVar[str] = "Fréchet distances below 10k images are biased upward; compare only at equal n"
    description: ClassVar[str] = "Fréchet distance of DINOv2 CLS features"
