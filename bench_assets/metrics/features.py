"""Image feature extractors for the distribution metrics: one row per extractor in ``FEATURE_EXTRACTORS``.

Each extractor turns a batch of PIL images into a float32 ``(n, d)`` matrix:

- ``inception_clean`` / ``inception_legacy``: the FID Inception's 2,048-d pool
  features (``metrics/inception.py``) after clean-fid's resize or the
  torch-fidelity/pytorch-fid resize; weights from ``weights`` (a file, else
  pytorch-fid's file in torch's hub cache), or the tiny stand-in of
  ``metrics/tiny/inception.py`` when ``tiny`` names its file;
- ``clip``: unit-norm open_clip image embeddings, loaded by ``ClipScore``'s own
  loading code with the ``metrics: clip_score:`` options (CMMD's features);
- ``dinov2``: DINOv2 CLS features (``last_hidden_state[:, 0]``, not
  normalised, as dgm-eval's FD-DINOv2), loaded by ``DinoFeatures``' loading code
  with the ``metrics: dino:`` options.

``extractor_id`` names the weights and the options that change numbers (like
``Metric.scorer_id``): the feature cache is keyed by it, so new weights never
reuse old features. ``loaded_extractor`` keeps one loaded instance per
(extractor, weights, device) in the worker process: a run's models and
reference sets share one load.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from bench_assets.metrics.base import Metric, TinyScorer, _file_stamp  # the scorer id's rule for a weights file
from bench_assets.metrics.clip_score import ClipScore
from bench_assets.metrics.dino import DinoFeatures
from bench_assets.metrics.inception import load_fid_inception, preprocess
from bench_assets.metrics.tiny.inception import build_tiny_inception, load_tiny_inception


def batched_features(images: Sequence[Any], batch_size: int, forward: Callable[[Sequence[Any]], Any]) -> np.ndarray:
    """``forward`` (a batch of PIL images -> a torch tensor of rows) over ``images``, as one float32 matrix."""
    import torch  # heavy; only scoring workers extract features

    parts = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            parts.append(forward(images[start : start + batch_size]).float().cpu().numpy())
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros((0, 0), np.float32)


class FeatureExtractor(ABC):
    """Load once, then ``features(images)``; ``extractor_id`` is part of every cache key and row."""

    name: ClassVar[str]
    default_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        unknown = set(options or {}) - set(self.default_options)
        if unknown:
            raise ValueError(f"feature extractor {self.name}: unknown option(s) {sorted(unknown)}; "
                             f"known: {sorted(self.default_options)}")
        self.options: dict[str, Any] = {**self.default_options, **(options or {})}
        self.device = "cpu"

    @property
    @abstractmethod
    def extractor_id(self) -> str:
        """The weights and options behind the numbers (batch size left out)."""

    @abstractmethod
    def load(self, device: str) -> None:
        """Load the network onto ``device``."""

    @abstractmethod
    def features(self, images: Sequence[Any]) -> np.ndarray:
        """A float32 (len(images), d) matrix, ``batch_size`` images per forward pass."""


class InceptionExtractor(FeatureExtractor):
    """FID Inception pool features with one of ``metrics/inception.py``'s resize modes."""

    default_options: ClassVar[dict[str, Any]] = {"weights": None, "tiny": None, "batch_size": 32}
    mode: ClassVar[str]

    @property
    def extractor_id(self) -> str:
        tiny, weights = self.options["tiny"], self.options["weights"]
        source = f"tiny={tiny}{_file_stamp(tiny)}" if tiny else f"weights={weights}{_file_stamp(weights)}"
        return f"{self.name}:{source}"

    def load(self, device: str) -> None:
        tiny = self.options["tiny"]
        net = load_tiny_inception(tiny) if tiny else load_fid_inception(self.options["weights"])
        self._net, self.device = net.to(device), device

    def features(self, images: Sequence[Any]) -> np.ndarray:
        return batched_features(images, self.options["batch_size"],
                                lambda chunk: self._net(preprocess(chunk, self.mode).to(self.device)))


class InceptionClean(InceptionExtractor):
    name: ClassVar[str] = "inception_clean"
    mode: ClassVar[str] = "clean"


class InceptionLegacy(InceptionExtractor):
    name: ClassVar[str] = "inception_legacy"
    mode: ClassVar[str] = "legacy"


class ClipExtractor(FeatureExtractor):
    """Unit-norm open_clip image embeddings through ``ClipScore``'s loader (its options)."""

    name: ClassVar[str] = "clip"
    default_options: ClassVar[dict[str, Any]] = dict(ClipScore.default_options)

    def _scorer(self) -> Metric:
        return ClipScore(self.options)

    @property
    def extractor_id(self) -> str:
        return f"{self.name}:{self._scorer().scorer_id}"

    def load(self, device: str) -> None:
        self._clip, self.device = self._scorer(), device
        self._clip.load(device)

    def features(self, images: Sequence[Any]) -> np.ndarray:
        return batched_features(images, self.options["batch_size"],
                                lambda chunk: self._clip._encode_images([_Loaded(image) for image in chunk]))


class DinoExtractor(FeatureExtractor):
    """DINOv2 CLS features through ``DinoFeatures``' loader (model and processor; its options)."""

    name: ClassVar[str] = "dinov2"
    default_options: ClassVar[dict[str, Any]] = {"model": DinoFeatures.default_options["model"], "batch_size": 32}

    @property
    def extractor_id(self) -> str:
        return f"{self.name}:model={self.options['model']}"

    def load(self, device: str) -> None:
        self._dino, self.device = DinoFeatures(dict(self.options)), device
        self._dino.load(device)

    def _forward(self, chunk: Sequence[Any]) -> Any:
        model, processor = self._dino._model, self._dino._processor
        pixels = processor(images=list(chunk), return_tensors="pt")["pixel_values"]
        dtype = next(model.parameters()).dtype
        return model(pixel_values=pixels.to(self.device, dtype=dtype)).last_hidden_state[:, 0]

    def features(self, images: Sequence[Any]) -> np.ndarray:
        return batched_features(images, self.options["batch_size"], self._forward)


@dataclass(frozen=True)
class _Loaded:
    """A PIL image where ``ClipScore`` expects an ``ImageItem`` (it only calls ``load()``)."""

    image: Any

    def load(self) -> Any:
        return self.image


@dataclass(frozen=True)
class ExtractorRow:
    """One row of ``FEATURE_EXTRACTORS``: the class, whose config options it takes, its demo stand-in."""

    cls: type[FeatureExtractor]
    options_from: str  # "metrics.<name>" (reuse a metric's configured weights) or "distribution.<key>"
    tiny_scorer: TinyScorer


FEATURE_EXTRACTORS: dict[str, ExtractorRow] = {
    "inception_clean": ExtractorRow(InceptionClean, "distribution.inception",
                                    TinyScorer(build_tiny_inception, "tiny-inception")),
    "inception_legacy": ExtractorRow(InceptionLegacy, "distribution.inception",
                                     TinyScorer(build_tiny_inception, "tiny-inception")),
    "clip": ExtractorRow(ClipExtractor, "metrics.clip_score", ClipScore.tiny_scorer),
    "dinov2": ExtractorRow(DinoExtractor, "metrics.dino", DinoFeatures.tiny_scorer),
}


def extractor_options(name: str, metrics: Mapping[str, Mapping[str, Any]],
                      distribution: Mapping[str, Any]) -> dict[str, Any]:
    """The extractor's options out of the config's ``metrics:`` and ``distribution:`` sections (known keys only)."""
    row = FEATURE_EXTRACTORS[name]
    section, key = row.options_from.split(".", 1)
    source = (metrics if section == "metrics" else distribution).get(key) or {}
    return {k: v for k, v in source.items() if k in row.cls.default_options}


def get_extractor(name: str, options: Mapping[str, Any] | None = None) -> FeatureExtractor:
    if name not in FEATURE_EXTRACTORS:
        raise KeyError(f"unknown feature extractor {name!r}; known: {sorted(FEATURE_EXTRACTORS)}")
    return FEATURE_EXTRACTORS[name].cls(options)


_LOADED: dict[tuple[str, str, str], FeatureExtractor] = {}  # (name, extractor_id, device) -> loaded, per process


def loaded_extractor(name: str, options: Mapping[str, Any], device: str) -> FeatureExtractor:
    """The extractor loaded on ``device``, once per worker process and weights."""
    extractor = get_extractor(name, options)
    key = (name, extractor.extractor_id, device)
    if key not in _LOADED:
        extractor.load(device)
        _LOADED[key] = extractor
    return _LOADED[key]
