"""Every metric the platform knows, by name.

Adding a metric is one module in ``bench_assets/metrics/`` plus one line in
``METRICS``. Metric modules import torch and their scorer libraries only
inside ``load``/``score``, so importing this registry is cheap.
"""

from __future__ import annotations

from typing import Any

from bench_assets.metrics.aesthetic import AestheticScore
from bench_assets.metrics.base import Metric
from bench_assets.metrics.clip_score import ClipScore
from bench_assets.metrics.dino import DinoFeatures
from bench_assets.metrics.dsg import DsgScore
from bench_assets.metrics.geneval import GenEval
from bench_assets.metrics.lpips_diversity import LpipsDiversity
from bench_assets.metrics.msssim_diversity import MsssimDiversity
from bench_assets.metrics.preference import PreferenceScore
from bench_assets.metrics.text_rendering import TextRendering
from bench_assets.metrics.tifa import TifaScore
from bench_assets.metrics.vqascore import VqaScore

METRICS: dict[str, type[Metric]] = {
    "clip_score": ClipScore,
    "lpips_diversity": LpipsDiversity,
    "msssim_diversity": MsssimDiversity,
    "vqascore": VqaScore,
    "tifa": TifaScore,
    "geneval": GenEval,
    "text_rendering": TextRendering,
    "aesthetic": AestheticScore,
    "preference": PreferenceScore,
    "dino": DinoFeatures,
    "dsg": DsgScore,
}


def get_metric(name: str, options: dict[str, Any] | None = None) -> Metric:
    """A new, not yet loaded, metric instance with ``options`` over its defaults."""
    try:
        cls = METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known metrics: {sorted(METRICS)}") from None
    return cls(options)
