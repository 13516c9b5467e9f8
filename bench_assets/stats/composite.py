"""A composite score from several metrics, with weights a team chooses.

Each metric's figure is z-scored against the benchmarked models' point
figures in the same slice (centre = their mean, scale = their standard
deviation; a metric where every model scores the same contributes 0), turned
so that higher is better, and the composite is the weighted mean of those
z-scores over the metrics a model has. Centre and scale are fixed from the
point figures, so within a bootstrap the composite is a fixed function of
the resampled figures and its interval reflects only the prompts' noise.

The composite is itself a ``combine`` over the union of the metrics'
summary columns (named ``<metric>/<column>``), so the same paired bootstrap,
sign-flip test and rank intervals apply to it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from bench_assets.stats.resampling import Combine

SEPARATOR = "/"


@dataclass(frozen=True)
class CompositePart:
    metric: str
    combine: Combine
    columns: tuple[str, ...]
    weight: float
    higher_is_better: bool
    centre: float
    scale: float


def z_constants(point_figures: Sequence[float]) -> tuple[float, float]:
    """Centre and scale from the models' point figures (scale 1 when they do not spread)."""
    finite = np.asarray([f for f in point_figures if np.isfinite(f)], dtype=float)
    if finite.size == 0:
        return 0.0, 1.0
    scale = float(finite.std())
    return float(finite.mean()), scale if scale > 1e-12 else float("inf")


def column_name(metric: str, column: str) -> str:
    return f"{metric}{SEPARATOR}{column}"


def composite_combine(parts: Sequence[CompositePart]) -> Combine:
    """The weighted mean of direction-aware z-scores, as a combine over prefixed totals."""

    def combine(totals: dict[str, Any]) -> Any:
        weighted = 0.0
        weights = 0.0
        for part in parts:
            own = {c: np.asarray(totals[column_name(part.metric, c)], dtype=float) for c in part.columns}
            with np.errstate(divide="ignore", invalid="ignore"):
                value = np.asarray(part.combine(own), dtype=float)
            z = (value - part.centre) / part.scale
            z = z if part.higher_is_better else -z
            present = np.isfinite(z)
            weighted = weighted + np.where(present, part.weight * z, 0.0)
            weights = weights + np.where(present, part.weight, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(weights > 0, weighted / np.where(weights > 0, weights, 1.0), np.nan)

    return combine
