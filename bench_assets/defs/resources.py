"""Resources: where data lives, generation settings, scorer options, compute backend."""

from __future__ import annotations

from dataclasses import fields
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg

from bench_assets.compute.local import LocalCompute
from bench_assets.core.models import ModelEntry
from bench_assets.core.paths import DataPaths
from bench_assets.core.prompts import PromptSuite, load_suite
from bench_assets.core.settings import GenerationSettings
from bench_assets.storage.warehouse import Warehouse


class BenchResource(dg.ConfigurableResource):
    """The data directory (models, prompts, images, warehouse) and its prompt suite."""

    data_dir: str
    suite_path: str

    @property
    def paths(self) -> DataPaths:
        return DataPaths(Path(self.data_dir))

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.paths.warehouse)

    def suite(self) -> PromptSuite:
        return load_suite(Path(self.suite_path))


_DEFAULTS = GenerationSettings()


class GenerationResource(dg.ConfigurableResource):
    """Default generation settings (SDXL-friendly); a model's sidecar file overrides them.

    The defaults are GenerationSettings' own, so the two never drift apart.
    """

    sampler: str = _DEFAULTS.sampler
    steps: int = _DEFAULTS.steps
    guidance_scale: float = _DEFAULTS.guidance_scale
    width: int = _DEFAULTS.width
    height: int = _DEFAULTS.height
    images_per_prompt: int = _DEFAULTS.images_per_prompt
    base_seed: int = _DEFAULTS.base_seed
    batch_size: int = _DEFAULTS.batch_size
    precision: str = _DEFAULTS.precision

    def defaults(self) -> GenerationSettings:
        return GenerationSettings(**{f.name: getattr(self, f.name) for f in fields(GenerationSettings)})

    def settings_for(self, entry: ModelEntry) -> GenerationSettings:
        return self.defaults().with_overrides(entry.settings_overrides(), source=str(entry.settings_sidecar))


class ScorersResource(dg.ConfigurableResource):
    """Per-metric options (which scorer weights), e.g. ``{"clip_score": {"model": "ViT-L-14"}}``."""

    options: dict[str, Any] = {}

    def for_metric(self, name: str) -> dict[str, Any]:
        return dict(self.options.get(name, {}))


class ComputeResource(dg.ConfigurableResource):
    """Where GPU work runs. ``local``: this process, on cuda, mps or cpu."""

    backend: str = "local"
    device: str = "auto"
    precision: str = "auto"

    @cached_property
    def _local(self) -> LocalCompute:
        return LocalCompute(device=self.device, precision=self.precision)

    def runner(self) -> LocalCompute:
        if self.backend != "local":
            raise dg.Failure(f"compute backend {self.backend!r} is not available; use 'local'")
        return self._local
