"""Resources: where data lives, generation settings, scorer options, compute backend.

Each resource holds configuration and hands it to the layer that owns the
rule: settings precedence (``models.registry.model_settings``), metric options
(``metrics.registry``), which backend and how to build it
(``compute.backend.BACKENDS``). The CLI calls the same functions.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterator

import dagster as dg

from bench_assets.compute.backend import ComputeSettings, backend_kind
from bench_assets.compute.protocol import ComputeBackend
from bench_assets.defs.run_watch import watch_run
from bench_assets.generation.runtime import RuntimeOptions
from bench_assets.models.registry import ModelEntry
from bench_assets.core.config import load_config
from bench_assets.core.paths import DataPaths
from bench_assets.core.objects import Store
from bench_assets.storage.store import images_store
from bench_assets.prompts.prompt import PromptSuite
from bench_assets.prompts.suites import load_suite
from bench_assets.core.settings import GenerationSettings
from bench_assets.models.registry import model_settings
from bench_assets.metrics.base import Metric
from bench_assets.metrics.registry import configured_metrics, options_for
from bench_assets.storage.versions import VersionStore, open_versions
from bench_assets.storage.warehouse import Warehouse, open_warehouse


class BenchResource(dg.ConfigurableResource):
    """The data directory (models, prompts, images, warehouse) and its prompt suite."""

    data_dir: str
    suite_path: str

    @property
    def paths(self) -> DataPaths:
        return DataPaths(Path(self.data_dir))

    @property
    def warehouse(self) -> Warehouse:
        """The warehouse (the data directory's ``warehouse/`` or ``<storage root>/warehouse``)."""
        return open_warehouse(self.paths)

    @property
    def versions(self) -> VersionStore:
        """Model versions and their archive, under the same store root."""
        return open_versions(self.paths)

    @property
    def images(self) -> Store:
        """The image store (the data directory's ``images/`` or ``<storage root>/images``)."""
        return images_store(self.paths, load_config(self.paths))

    def suite(self) -> PromptSuite:
        return load_suite(Path(self.suite_path))


_DEFAULTS = GenerationSettings()


class GenerationResource(dg.ConfigurableResource):
    """Default generation settings (SDXL-friendly); a model's sidecar file overrides them.

    The defaults are GenerationSettings' own, so the two never drift apart;
    ``definitions`` builds it from ``core.config.generation_defaults``.
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
    prediction_type: str | None = _DEFAULTS.prediction_type
    gpus: int = _DEFAULTS.gpus
    min_gpu_memory_gb: float = _DEFAULTS.min_gpu_memory_gb

    def defaults(self) -> GenerationSettings:
        return GenerationSettings(**{f.name: getattr(self, f.name) for f in fields(GenerationSettings)})

    def settings_for(self, entry: ModelEntry, suite_overrides: dict[str, Any] | None = None) -> GenerationSettings:
        """Defaults < the prompt suite's ``generation:`` (a suite spec) < the model's card/sidecar."""
        return model_settings(self.defaults(), suite_overrides, entry)


class ScorersResource(dg.ConfigurableResource):
    """Per-metric options (which scorer weights), e.g. ``{"clip_score": {"model": "ViT-L-14"}}``."""

    options: dict[str, Any] = {}

    def for_metric(self, name: str) -> dict[str, Any]:
        return options_for(self.options, name)

    def metrics(self) -> list[Metric]:
        """Every metric with these options (not loaded): what the schedule judges partitions by."""
        return configured_metrics(self.options)


_RUNTIME = RuntimeOptions()
_COMPUTE = ComputeSettings()


class ComputeResource(dg.ConfigurableResource):
    """Where GPU work runs: a name in ``compute.backend.BACKENDS`` (``local``, ``modal``).

    Chosen by ``data/config.yaml``'s ``compute: {backend: ...}`` or the
    ``BENCH_COMPUTE`` environment variable (which wins; see
    ``compute.backend.configured_compute``). Assets call
    ``runner(context).generate(...)`` / ``.score(...)``, the ``ComputeBackend``
    protocol, and never branch on which backend it is.
    """

    backend: str = "local"
    device: str = _COMPUTE.device
    precision: str = _COMPUTE.precision
    # RuntimeOptions' fields, so data/config.yaml's compute: section can set them.
    attention: str = _RUNTIME.attention
    compile: bool = _RUNTIME.compile
    vae_tiling: bool = _RUNTIME.vae_tiling
    vae_slicing: bool = _RUNTIME.vae_slicing
    cpu_offload: str = _RUNTIME.cpu_offload
    channels_last: bool = _RUNTIME.channels_last
    # Scorers a worker process keeps loaded between partitions and runs (each load is paid once per model).
    keep_scorers_loaded: int = _COMPUTE.keep_scorers_loaded
    data_dir: str = ""
    # Run the Modal entrypoint with ``.local()`` calls in a subprocess (tests, debugging).
    modal_local_invocation: bool = _COMPUTE.modal_local_invocation
    # The Modal Secret (by name) with the object store's credentials, for containers that use the bucket.
    modal_secret: str = _COMPUTE.modal_secret

    def runtime(self) -> RuntimeOptions:
        return RuntimeOptions(**{f.name: getattr(self, f.name) for f in fields(RuntimeOptions)})

    def settings(self) -> ComputeSettings:
        values = {f.name: getattr(self, f.name) for f in fields(ComputeSettings) if f.name != "runtime"}
        return ComputeSettings(runtime=self.runtime(), **values)

    def runner(self, context: dg.AssetExecutionContext | None) -> ComputeBackend:
        """This step's backend (a Pipes-based one talks to the step through ``context``)."""
        try:
            kind = backend_kind(self.backend)
        except ValueError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None
        return kind.build(self.settings(), context)

    @contextmanager
    def cancellation(self, context: dg.AssetExecutionContext | None = None) -> Iterator[Callable[[], bool]]:
        """``should_stop`` for the step; a run terminated from the UI stops between batches.

        The run's status is watched too (``run_watch``): a force-terminated
        run ends its process and frees its pool slot. How the stop signal
        itself reaches the work is the backend's (``stop_signals``).
        """
        with ExitStack() as stack:
            checks: list[Callable[[], bool]] = []
            if context is not None:
                checks.append(stack.enter_context(watch_run(context.instance, context.run_id)))
            checks.append(stack.enter_context(self.runner(context).stop_signals()))
            yield lambda: any(check() for check in checks)
