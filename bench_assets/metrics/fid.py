"""FID: the Fréchet distance between Gaussians fitted to Inception-v3 pool features (Heusel et al. 2017).

``fid_mode`` picks the resize (``clean``: clean-fid's; ``legacy``: the
torch-fidelity / pytorch-fid one that torchmetrics matches) and is recorded in
every row, since the two give different numbers on the same images.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bench_assets.metrics.distribution_base import INCEPTION, FrechetDistance, DistributionSettings


class FrechetInceptionDistance(FrechetDistance):
    name: ClassVar[str] = "fid"
    version: ClassVar[str] = "1"
    extractor: ClassVar[str] = INCEPTION  # inception_clean or _legacy, as fid_mode says
    min_n: ClassVar[int] = 10_000
    note: ClassVar[str] = "FID below 10k images is biased upward; compare only at equal n"
    description: ClassVar[str] = "Fréchet distance of Inception-v3 pool features (clean or legacy resize)"

    def extra(self, settings: DistributionSettings) -> dict[str, Any]:
        return {"fid_mode": settings.fid_mode}
