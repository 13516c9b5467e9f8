"""The interface of a distribution metric: a model's images against a reference set, on image features.

A per-image metric (``metrics/base.py``) asks "does this image match its
prompt"; a distribution metric asks "does this set of images look like the
reference set, and cover it". It sees two float32 feature matrices (rows are
images: generated and reference, from the extractor it names) and returns
rows of ``distribution_scores`` (``storage/distribution.py``): the value, its
spread (``std``, ``ci_low``/``ci_high``: a basic bootstrap over generated
images, and over reference images unless ``resample_reference: false``, with
``bootstrap`` repeats), both sample sizes, and whether they reach ``min_n``,
the size below which the number is not comparable with one at another n (its
``note`` says why).

Settings (``data/config.yaml``, section ``distribution:``; all optional):
``fid_mode`` (clean | legacy), ``k`` (precision/recall's neighbourhood),
``bootstrap`` (repeats; 0: no interval), ``resample_reference``, ``seed``,
``metrics`` (which rows of ``DISTRIBUTION_METRICS``), ``inception`` (the FID
Inception's ``weights`` file, or a ``tiny`` stand-in for the demo),
``batch_size`` (images per feature-extraction forward pass).

Memory: features are extracted in batches; the metric keeps the feature rows
(n × d float32: 10,000 Inception rows are 80 MB) because KID, CMMD and
precision/recall need rows and the bootstrap resamples them; Fréchet
distances accumulate mean and covariance from them in batches (``FeatureMoments``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from bench_assets.core.errors import BenchError
from bench_assets.stats.distribution import (
    PRDC_K, BootstrapInterval, bootstrap_distance, bootstrap_figures, frechet_distance_of_features,
)

FID_MODES = ("clean", "legacy")
INCEPTION = "inception"  # a metric's extractor: the FID Inception with fid_mode's resize (inception_clean / _legacy)


class DistributionSettingsError(BenchError, ValueError):
    """A ``distribution:`` config section that cannot be used; the message names the key."""


@dataclass(frozen=True)
class DistributionSettings:
    """The ``distribution:`` section, checked."""

    fid_mode: str = "clean"
    k: int = PRDC_K
    bootstrap: int = 20
    resample_reference: bool = True
    seed: int = 0
    metrics: tuple[str, ...] | None = None  # None: every row of DISTRIBUTION_METRICS
    inception: dict[str, Any] = field(default_factory=dict, compare=False)
    batch_size: int = 32

    @classmethod
    def from_section(cls, section: Mapping[str, Any] | None) -> "DistributionSettings":
        data = dict(section or {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise DistributionSettingsError(f"section 'distribution': unknown key(s) {sorted(unknown)}; "
                                            f"known: {sorted(cls.__dataclass_fields__)}")
        if data.get("fid_mode", "clean") not in FID_MODES:
            raise DistributionSettingsError(f"section 'distribution': fid_mode must be one of {FID_MODES}")
        for key in ("k", "bootstrap", "batch_size"):
            if key in data and (not isinstance(data[key], int) or data[key] < (1 if key != "bootstrap" else 0)):
                raise DistributionSettingsError(f"section 'distribution': {key} must be a whole number, got {data[key]!r}")
        if data.get("metrics") is not None:
            data["metrics"] = tuple(data["metrics"])
        return cls(**data)


class DistributionMetric(ABC):
    """One distribution metric: class attributes plus ``compute``."""

    name: ClassVar[str]
    version: ClassVar[str]
    extractor: ClassVar[str]  # a row of metrics.features.FEATURE_EXTRACTORS
    lower_is_better: ClassVar[bool] = True
    min_n: ClassVar[int]  # below this many images on either side, compare only at equal n
    note: ClassVar[str]
    min_rows: ClassVar[int] = 2  # fewer rows than this on either side: no value
    description: ClassVar[str] = ""

    def extractor_for(self, settings: DistributionSettings) -> str:
        """The feature extractor this metric reads under ``settings`` (the Inception: fid_mode's resize)."""
        return f"{INCEPTION}_{settings.fid_mode}" if self.extractor == INCEPTION else self.extractor

    def row(self, name: str, value: float | None, generated: int, reference: int, *,
            interval: BootstrapInterval | None = None, std: float | None = None, **extra: Any) -> dict[str, Any]:
        """One output row with the metric's bookkeeping (n, min_n, comparable, note, direction, version)."""
        return {
            "metric": name, "value": value, "std": std,
            "ci_low": interval.low if interval else None, "ci_high": interval.high if interval else None,
            "n_generated": generated, "n_reference": reference, "min_n": self.min_n,
            "comparable": bool(generated >= self.min_n and reference >= self.min_n),
            "note": self.note, "lower_is_better": self.lower_is_better, "metric_version": self.version, **extra,
        }

    def too_few(self, generated: np.ndarray, reference: np.ndarray, settings: DistributionSettings) -> bool:
        return min(len(generated), len(reference)) < self.min_rows

    @abstractmethod
    def compute(self, generated: np.ndarray, reference: np.ndarray, settings: DistributionSettings,
                seed: int) -> list[dict[str, Any]]:
        """Rows (``row``) for the two float32 feature matrices."""


def interval_of(distance: Callable[[np.ndarray, np.ndarray], float], generated: np.ndarray, reference: np.ndarray,
                settings: DistributionSettings, seed: int, bounds: tuple[float | None, float | None] = (0.0, None),
                estimate: float | None = None) -> BootstrapInterval | None:
    """The basic bootstrap interval of ``distance``, within ``bounds`` (None when ``bootstrap`` is 0);
    ``estimate``: ``distance(generated, reference)`` when the caller computed it already."""
    if not settings.bootstrap:
        return None
    return bootstrap_distance(distance, generated, reference, n_boot=settings.bootstrap,
                              resample_reference=settings.resample_reference, seed=seed, bounds=bounds,
                              estimate=estimate)


def intervals_of(figures: Callable[[np.ndarray, np.ndarray], Mapping[str, float]], generated: np.ndarray,
                 reference: np.ndarray, settings: DistributionSettings, seed: int,
                 bounds: Mapping[str, tuple[float | None, float | None]],
                 estimates: Mapping[str, float] | None = None) -> dict[str, BootstrapInterval]:
    """:func:`interval_of` for several figures computed together (prdc's four), from one set of resamples."""
    if not settings.bootstrap:
        return {}
    return bootstrap_figures(figures, generated, reference, n_boot=settings.bootstrap,
                             resample_reference=settings.resample_reference, seed=seed, bounds=bounds,
                             estimates=estimates)


class DistanceMetric(DistributionMetric):
    """A metric that is one number ``distance(generated, reference)`` (FID, CMMD, FD-DINOv2)."""

    @abstractmethod
    def distance(self, generated: np.ndarray, reference: np.ndarray) -> float:
        """The metric on two feature matrices."""

    def extra(self, settings: DistributionSettings) -> dict[str, Any]:
        """Columns the rows record beside the value (FID: its mode)."""
        return {}

    def compute(self, generated: np.ndarray, reference: np.ndarray, settings: DistributionSettings,
                seed: int) -> list[dict[str, Any]]:
        n_gen, n_ref = len(generated), len(reference)
        if self.too_few(generated, reference, settings):
            return [self.row(self.name, None, n_gen, n_ref, **self.extra(settings))]
        value = self.distance(generated, reference)
        interval = interval_of(self.distance, generated, reference, settings, seed, estimate=value)
        return [self.row(self.name, value, n_gen, n_ref, interval=interval, **self.extra(settings))]


class FrechetDistance(DistanceMetric):
    """The Fréchet distance between Gaussians fitted to the two feature sets (FID, FD-DINOv2)."""

    def distance(self, generated: np.ndarray, reference: np.ndarray) -> float:
        return frechet_distance_of_features(generated, reference)
