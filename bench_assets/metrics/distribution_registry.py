"""Every distribution metric, by name: one row per metric (``metrics/distribution_base.py`` is the interface).

Adding one is a module with a ``DistributionMetric`` subclass (name, version,
extractor, direction, ``min_n`` and its note, ``compute``) and a row here;
the ``distribution_scores`` asset, table and demo pick it up from the row.
"""

from __future__ import annotations

from bench_assets.metrics.cmmd import Cmmd
from bench_assets.metrics.distribution_base import DistributionMetric, DistributionSettings, DistributionSettingsError
from bench_assets.metrics.fd_dinov2 import FdDinov2
from bench_assets.metrics.fid import FrechetInceptionDistance
from bench_assets.metrics.kid import Kid
from bench_assets.metrics.precision_recall import PrecisionRecall

DISTRIBUTION_METRICS: dict[str, type[DistributionMetric]] = {
    "fid": FrechetInceptionDistance,
    "kid": Kid,
    "cmmd": Cmmd,
    "fd_dinov2": FdDinov2,
    "precision_recall": PrecisionRecall,
}


def chosen_metrics(settings: DistributionSettings) -> list[DistributionMetric]:
    """The metrics ``settings.metrics`` names (None: all), failing on an unknown name."""
    unknown = sorted(set(settings.metrics or ()) - set(DISTRIBUTION_METRICS))
    if unknown:
        raise DistributionSettingsError(f"section 'distribution': unknown metric(s) {unknown}; "
                                        f"known: {sorted(DISTRIBUTION_METRICS)}")
    return [cls() for name, cls in DISTRIBUTION_METRICS.items() if settings.metrics is None or name in settings.metrics]
