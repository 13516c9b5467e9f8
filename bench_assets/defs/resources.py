"""Resources: where data lives, generation settings, scorer options, compute backend."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import fields
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator

import dagster as dg

from bench_assets.compute.interrupts import stop_between_batches
from bench_assets.compute.local import LocalCompute
from bench_assets.defs.modal_compute import ModalPipesCompute
from bench_assets.generation.runtime import RuntimeOptions
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
    gpus: int = _DEFAULTS.gpus
    min_gpu_memory_gb: float = _DEFAULTS.min_gpu_memory_gb

    def defaults(self) -> GenerationSettings:
        return GenerationSettings(**{f.name: getattr(self, f.name) for f in fields(GenerationSettings)})

    def settings_for(self, entry: ModelEntry) -> GenerationSettings:
        return self.defaults().with_overrides(entry.settings_overrides(), source=str(entry.settings_sidecar))


class ScorersResource(dg.ConfigurableResource):
    """Per-metric options (which scorer weights), e.g. ``{"clip_score": {"model": "ViT-L-14"}}``."""

    options: dict[str, Any] = {}

    def for_metric(self, name: str) -> dict[str, Any]:
        return dict(self.options.get(name, {}))


BACKENDS = ("local", "modal")


class ComputeResource(dg.ConfigurableResource):
    """Where GPU work runs: ``local`` (this machine's cuda, mps or cpu) or ``modal`` (H100s).

    Chosen by ``data/config.yaml``'s ``compute: {backend: ...}`` or the
    ``BENCH_COMPUTE`` environment variable (which wins). Assets call
    ``runner(context).generate(...)`` / ``.score(...)`` and never branch on it.
    """

    backend: str = "local"
    device: str = "auto"
    precision: str = "auto"
    attention: str = "sdpa"
    compile: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = False
    cpu_offload: str = "none"
    channels_last: bool = False
    data_dir: str = ""
    # Run the Modal entrypoint with ``.local()`` calls in a subprocess (tests, debugging).
    modal_local_invocation: bool = False

    def runtime(self) -> RuntimeOptions:
        return RuntimeOptions(
            attention=self.attention, compile=self.compile, vae_tiling=self.vae_tiling,
            vae_slicing=self.vae_slicing, cpu_offload=self.cpu_offload, channels_last=self.channels_last,
        )

    @cached_property
    def _local(self) -> LocalCompute:
        lock_dir = DataPaths(Path(self.data_dir)).cache / "gpu_leases" if self.data_dir else None
        return LocalCompute(device=self.device, precision=self.precision, runtime=self.runtime(),
                            lock_dir=lock_dir)

    def runner(self, context: dg.AssetExecutionContext) -> "LocalCompute | ModalPipesCompute":
        if self.backend == "local":
            return self._local
        if self.backend == "modal":
            return ModalPipesCompute(context, self.data_dir, self.runtime(), self.modal_local_invocation)
        raise dg.Failure(f"compute backend {self.backend!r} is not one of {BACKENDS}", allow_retries=False)

    @contextmanager
    def cancellation(self) -> Iterator[Callable[[], bool]]:
        """``should_stop`` for the step; a run terminated from the UI stops between batches.

        On Modal the interrupt goes straight to the ``modal run`` subprocess,
        which cancels the remote calls; images already returned stay.
        """
        if self.backend != "local":
            yield lambda: False
            return
        with stop_between_batches() as should_stop:
            yield should_stop
