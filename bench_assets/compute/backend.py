"""The compute backends as a table: ``BACKENDS``, one row per backend (the protocol: ``compute/protocol.py``).

A backend runs layer-2 work (``generation``, ``metrics``) somewhere:
``local`` in the step's own process (cuda, mps or cpu, one GPU lease per
step), ``modal`` in a Modal app on H100s (through a Dagster Pipes
subprocess). The Dagster layer builds one per step from ``BACKENDS`` and calls
only what ``ComputeBackend`` declares; nothing in ``defs/`` branches on which
backend it got.

A new backend (a Slurm queue, a Kubernetes GPU pool) is one module in this
package with a class that has these three methods, plus one row in
``BACKENDS``: how to build it from ``ComputeSettings`` (and the step's
context, for a Pipes-based one), how many GPU steps may run at once (the
size of Dagster's ``gpu`` pool) and what to check before any work starts
(credentials); optionally how ``bench doctor`` describes it. ``compute: {backend: <name>}`` in ``data/config.yaml`` or
``BENCH_COMPUTE=<name>`` then selects it; no asset changes.

Imports stay light (no torch, no Dagster, no Modal): each builder imports its
backend when called, so a Modal container never imports Pipes and loading
the Dagster definitions never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from bench_assets.compute.protocol import ComputeBackend
from bench_assets.core.config import BenchConfig, compute_config
from bench_assets.core.paths import DataPaths
from bench_assets.generation.runtime import RuntimeOptions

@dataclass(frozen=True)
class ComputeSettings:
    """The ``compute:`` section of ``data/config.yaml`` as a backend sees it (``backend`` aside)."""

    device: str = "auto"
    precision: str = "auto"
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    keep_scorers_loaded: int = 1  # scorers a worker process keeps loaded between partitions and runs
    data_dir: str = ""
    modal_local_invocation: bool = False  # the Modal entrypoint with .local() calls (tests, debugging)
    modal_secret: str = ""  # the Modal Secret (by name) with the object store's credentials


@dataclass(frozen=True)
class PoolSize:
    """How many GPU steps may run at once, and why (printed by ``bench instance-config``)."""

    slots: int
    reason: str


def _backend_name(section: Mapping[str, Any]) -> str:
    return str(section["backend"])


@dataclass(frozen=True)
class BackendKind:
    """One row of ``BACKENDS``."""

    build: Callable[[ComputeSettings, Any], ComputeBackend]  # (settings, the step's context)
    gpu_pool: Callable[[], PoolSize]
    preflight: Callable[[Mapping[str, Any]], None]  # given the compute section; raises core.config.BackendNotReady
    # Given the compute section, where work runs, in one line (``bench doctor``); raises a BenchError when it
    # cannot run here. The default names the backend.
    describe: Callable[[Mapping[str, Any]], str] = _backend_name


def _build_local(settings: ComputeSettings, _context: Any) -> ComputeBackend:
    from bench_assets.compute.local import LocalCompute

    lock_dir = DataPaths(Path(settings.data_dir)).cache / "gpu_leases" if settings.data_dir else None
    return LocalCompute(device=settings.device, precision=settings.precision, runtime=settings.runtime,
                        lock_dir=lock_dir, keep_scorers_loaded=settings.keep_scorers_loaded)


def _local_pool() -> PoolSize:
    from bench_assets.compute.devices import gpu_count

    gpus = gpu_count()
    # At least one slot: a CPU-only machine still runs one GPU-pool step at a time.
    return PoolSize(max(1, gpus), f"{gpus} local GPU(s) found")


def _nothing_to_check(_section: Mapping[str, Any]) -> None:
    return None


def _describe_local(section: Mapping[str, Any]) -> str:
    from bench_assets.compute.devices import describe_local_device

    return f"local: {describe_local_device(str(section.get('device', 'auto')))}"


def _build_modal(settings: ComputeSettings, context: Any) -> ComputeBackend:
    from bench_assets.compute.modal_pipes import ModalPipesCompute

    return ModalPipesCompute(context, settings.data_dir, settings.runtime, settings.modal_local_invocation,
                             settings.modal_secret)


def _modal_pool() -> PoolSize:
    from bench_assets.compute.modal_limits import MAX_CONTAINERS_ENV, max_containers

    # GPU steps wait on Modal, not on this machine: as many at once as containers allowed.
    return PoolSize(max_containers(), f"Modal backend, {MAX_CONTAINERS_ENV}")


def _modal_token(section: Mapping[str, Any]) -> None:
    from bench_assets.compute.modal_auth import require_modal_token

    if not section.get("modal_local_invocation"):
        require_modal_token()


def _describe_modal(_section: Mapping[str, Any]) -> str:
    from bench_assets.compute.modal_auth import require_modal_token
    from bench_assets.compute.modal_limits import modal_gpu

    source = require_modal_token()
    return f"modal: {modal_gpu()} containers, token from {source}"


BACKENDS: dict[str, BackendKind] = {
    "local": BackendKind(build=_build_local, gpu_pool=_local_pool, preflight=_nothing_to_check,
                         describe=_describe_local),
    "modal": BackendKind(build=_build_modal, gpu_pool=_modal_pool, preflight=_modal_token,
                         describe=_describe_modal),
}


def backend_kind(name: str) -> BackendKind:
    """``BACKENDS[name]``, or an error naming the backends there are."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"compute backend {name!r} is not one of {tuple(BACKENDS)}") from None


def configured_compute(config: BenchConfig) -> dict[str, Any]:
    """The ``compute:`` section, backend resolved (env > file > local) and checked against ``BACKENDS``.

    What the Dagster resource is built from and what the CLI's preflight and
    pool sizing read: one answer to "which backend".
    """
    return compute_config(config, BACKENDS)
