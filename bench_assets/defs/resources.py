"""Resources: where data lives, generation settings, scorer options, compute backend.

Each resource holds configuration and hands it to the layer that owns the
rule: settings precedence (``models.registry.model_settings``), metric options
(``metrics.registry``), which backend and how to build it
(``compute.backend.BACKENDS``). The CLI calls the same functions.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Callable, Iterator, get_type_hints

import dagster as dg
from pydantic import PrivateAttr

from bench_assets.compute.backend import ComputeSettings, backend_kind
from bench_assets.compute.protocol import ComputeBackend
from bench_assets.defs.run_watch import watch_run
from bench_assets.generation.runtime import RuntimeOptions
from bench_assets.models.registry import ModelEntry
from bench_assets.core.paths import DataPaths
from bench_assets.core.objects import Store
from bench_assets.prompts.prompt import PromptSuite
from bench_assets.prompts.suites import load_suite
from bench_assets.core.settings import GenerationSettings
from bench_assets.models.registry import model_settings
from bench_assets.metrics.base import Metric
from bench_assets.metrics.registry import configured_metrics, options_for
from bench_assets.storage.versions import VersionStore, open_versions
from bench_assets.storage.warehouse import Warehouse


class BenchResource(dg.ConfigurableResource):
    """The data directory (models, prompts, images, warehouse) and its prompt suite.

    The stores under the configured root are built on first use and kept for
    this resource instance: Dagster makes a fresh instance for each sensor
    tick, schedule tick and step, so ``config.yaml`` is read once per tick or
    step (not once per model × category), and an edit shows at the next one.
    """

    data_dir: str
    suite_path: str
    _versions: VersionStore | None = PrivateAttr(default=None)

    @property
    def paths(self) -> DataPaths:
        return DataPaths(Path(self.data_dir))

    @property
    def versions(self) -> VersionStore:
        """Model versions and their archive, under the configured store root; holds the two below."""
        if self._versions is None:
            self._versions = open_versions(self.paths)
        return self._versions

    @property
    def warehouse(self) -> Warehouse:
        """The warehouse (the data directory's ``warehouse/`` or ``<storage root>/warehouse``)."""
        return self.versions.warehouse

    @property
    def images(self) -> Store:
        """The image store (the data directory's ``images/`` or ``<storage root>/images``)."""
        return self.versions.images

    def suite(self) -> PromptSuite:
        return load_suite(Path(self.suite_path))


def _mirror(name: str, *sources: type, skip: frozenset[str] = frozenset()) -> type[dg.ConfigurableResource]:
    """A resource base whose config fields are the dataclasses' own fields and defaults.

    So each field is declared once (in its dataclass) and the resource's
    defaults can never drift from the dataclass's.
    """
    annotations: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for source in sources:
        hints = get_type_hints(source)
        for spec in fields(source):
            if spec.name not in skip:
                default = spec.default if spec.default is not MISSING else spec.default_factory()  # type: ignore[misc]
                annotations[spec.name], defaults[spec.name] = hints[spec.name], default
    return type(name, (dg.ConfigurableResource,), {"__module__": __name__, "__annotations__": annotations, **defaults})


def _values(resource: dg.ConfigurableResource, source: type, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The resource's values of ``source``'s fields (what ``_mirror`` gave it), to build a ``source``."""
    return {spec.name: getattr(resource, spec.name) for spec in fields(source) if spec.name not in skip}


class GenerationResource(_mirror("GenerationFields", GenerationSettings)):
    """Default generation settings (SDXL-friendly); a model's sidecar file overrides them.

    Its fields are GenerationSettings' own (``_mirror``), so the two never
    drift apart; ``definitions`` builds it from ``core.config.generation_defaults``.
    """

    def defaults(self) -> GenerationSettings:
        return GenerationSettings(**_values(self, GenerationSettings))

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


# ComputeSettings' fields with RuntimeOptions' in place of its ``runtime``, so config.yaml's
# compute: section sets them all flat (device, attention, keep_scorers_loaded, modal_secret ...).
_NESTED = frozenset({"runtime"})


class ComputeResource(_mirror("ComputeFields", ComputeSettings, RuntimeOptions, skip=_NESTED)):
    """Where GPU work runs: a name in ``compute.backend.BACKENDS`` (``local``, ``modal``).

    Chosen by ``data/config.yaml``'s ``compute: {backend: ...}`` or the
    ``BENCH_COMPUTE`` environment variable (which wins; see
    ``compute.backend.configured_compute``). Assets call
    ``runner(context).generate(...)`` / ``.score(...)``, the ``ComputeBackend``
    protocol, and never branch on which backend it is. Its other fields are
    ComputeSettings' and RuntimeOptions' own (``_mirror``).
    """

    backend: str = "local"

    def runtime(self) -> RuntimeOptions:
        return RuntimeOptions(**_values(self, RuntimeOptions))

    def settings(self) -> ComputeSettings:
        return ComputeSettings(runtime=self.runtime(), **_values(self, ComputeSettings, skip=_NESTED))

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
