"""The local backend: run generation and scoring in this process on cuda, mps or cpu.

``LocalCompute`` implements ``compute.backend.ComputeBackend``; the Modal
containers use it too, to run the same code on their own GPU.

Heavy imports (torch, diffusers, open_clip) happen inside the calls, so that
loading the Dagster definitions, evaluating a sensor or starting the UI does
not pay for them.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Sequence

from bench_assets.compute.interrupts import stop_between_batches
from bench_assets.compute.worker_cache import count_load, worker_cache
from bench_assets.compute.devices import (
    DeviceLease,
    acquire_devices,
    check_fits,
    cuda_memory_gb,
    estimate_generation_gb,
    gpu_count,
)
from bench_assets.models.checkpoints import read_safetensors_header
from bench_assets.models.registry import ModelEntry
from bench_assets.generation.generate import GenerationReport, GenerationRequest, generate_image_set
from bench_assets.generation.pipelines import resolve_device, resolve_dtype
from bench_assets.generation.runtime import RuntimeOptions
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.runner import ScoreOutcome, score_items

Log = Callable[[str], None]


def quiet_progress_bars() -> None:
    """Library progress bars are noise in Dagster's captured logs; we log per batch instead."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    # diffusers 0.42 renames torch_dtype to dtype; the old name still works on every version we support.
    warnings.filterwarnings("ignore", message=r".*`torch_dtype` is deprecated", category=FutureWarning)


_BITS = {"F16": 16, "BF16": 16, "F32": 32, "F64": 64, "F8_E4M3": 8, "F8_E5M2": 8}


def _header_bits(path: Path) -> int:
    """Bits per weight of the first tensor in a safetensors header (fp16 files are half size)."""
    header = read_safetensors_header(path)
    dtypes = [v["dtype"] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    return _BITS.get(dtypes[0], 32) if dtypes else 32


def weights_on_disk(entry: ModelEntry) -> tuple[int, int]:
    """(bytes, bits per weight) of the entry's safetensors, for the memory estimate."""
    files = [entry.path] if entry.path.is_file() else sorted(entry.path.rglob("*.safetensors"))
    files = [f for f in files if f.suffix == ".safetensors"]
    if not files:
        return 0, 16
    return sum(f.stat().st_size for f in files), _header_bits(files[0])


@dataclass
class LocalCompute:
    """``device``: "auto" (cuda > mps > cpu) or an explicit torch device string.

    With ``lock_dir`` set and ``device`` "auto" or "cuda", each GPU step
    leases its own GPU(s) (see ``compute/devices.py``), so parallel runs
    never share a device.
    """

    device: str = "auto"
    precision: str = "auto"
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    lock_dir: Path | None = None
    keep_scorers_loaded: int = 1  # scorers a worker keeps loaded between partitions and runs

    def stop_signals(self) -> ContextManager[Callable[[], bool]]:
        """A stop (a run terminated in the UI) waits for the current batch to end (``compute/interrupts.py``)."""
        return stop_between_batches()

    @contextmanager
    def _lease(
        self, need: int, log: Log, should_stop: Callable[[], bool]
    ) -> Iterator[DeviceLease | None]:
        """Hold this step's GPU(s) when running on "auto"/"cuda" with leasing on; else no lease."""
        n_gpus = gpu_count() if self.lock_dir is not None and resolve_device(self.device) == "cuda" else 0
        if n_gpus == 0:
            yield None
            return
        assert self.lock_dir is not None
        with acquire_devices(self.lock_dir, n_gpus, need, log=log, should_stop=should_stop) as lease:
            log(f"leased GPU(s) {list(lease.indices)} after waiting {lease.waited_seconds:.1f} s")
            yield lease

    def generate(
        self,
        request: GenerationRequest,
        log: Log = lambda _: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> GenerationReport:
        quiet_progress_bars()
        request = replace(request, runtime=self.runtime)
        cache = worker_cache(self.keep_scorers_loaded)
        with self._lease(request.settings.gpus, log, should_stop) as lease:
            if lease is not None:
                request = replace(request, device=lease.device, gpus=len(lease.indices))
                self._check_fits(request, lease)
            elif request.device == "auto":
                request = replace(request, device=self.device)
            report = generate_image_set(request, log=log, should_stop=should_stop, pipe_cache=cache.pipelines)
        if report.pipeline_loaded:
            count_load(f"pipeline:{request.entry.key}")
        return report

    def _check_fits(self, request: GenerationRequest, lease: DeviceLease) -> None:
        """Refuse before loading when the model cannot fit the leased GPUs."""
        settings = request.settings
        dtype = resolve_dtype(settings.precision, lease.device)
        size, bits = weights_on_disk(request.entry) if request.entry.path.exists() else (0, 16)
        # An HF repo card or a LoRA card is a small YAML file; their weights are not counted here.
        need = 0.0 if self.runtime.offloaded else estimate_generation_gb(
            size, bits, dtype, settings.batch_size, settings.width, settings.height)
        check_fits(str(request.entry.path), need, cuda_memory_gb(lease.indices), settings.min_gpu_memory_gb)

    def score(
        self,
        metric_name: str,
        options: dict[str, Any],
        items: Sequence[ImageItem],
        existing: list[dict[str, Any]],
        log: Log = lambda _: None,
    ) -> ScoreOutcome:
        quiet_progress_bars()
        metric = worker_cache(self.keep_scorers_loaded).scorer(metric_name, options)
        batch_size = int(metric.options.get("batch_size", 32))
        with self._lease(1, log, lambda: False) as lease:
            device = lease.device if lease is not None else resolve_device(self.device)
            dtype = resolve_dtype(self.precision, device) if self.precision != "auto" else "fp32"
            return score_items(metric, items, existing, device, dtype, batch_size=batch_size, log=log,
                               on_load=count_load)
