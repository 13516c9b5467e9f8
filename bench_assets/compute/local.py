"""The local backend: run generation and scoring in this process on cuda, mps or cpu.

Heavy imports (torch, diffusers, open_clip) happen inside the calls, so that
loading the Dagster definitions, evaluating a sensor or starting the UI does
not pay for them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from bench_assets.generation.generate import GenerationReport, GenerationRequest
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.runner import ScoreOutcome

Log = Callable[[str], None]


def quiet_progress_bars() -> None:
    """Library progress bars are noise in Dagster's captured logs; we log per batch instead."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


@dataclass
class LocalCompute:
    """``device``: "auto" (cuda > mps > cpu) or an explicit torch device string."""

    device: str = "auto"
    precision: str = "auto"

    def generate(
        self,
        request: GenerationRequest,
        log: Log = lambda _: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> GenerationReport:
        from bench_assets.generation.generate import generate_image_set

        quiet_progress_bars()
        if request.device == "auto":
            request = replace(request, device=self.device)
        return generate_image_set(request, log=log, should_stop=should_stop)

    def score(
        self,
        metric_name: str,
        options: dict[str, Any],
        items: Sequence[ImageItem],
        existing: list[dict[str, Any]],
        log: Log = lambda _: None,
    ) -> ScoreOutcome:
        from bench_assets.generation.pipelines import resolve_device, resolve_dtype
        from bench_assets.metrics.registry import get_metric
        from bench_assets.metrics.runner import score_items

        quiet_progress_bars()
        metric = get_metric(metric_name, options)
        batch_size = int(metric.options.get("batch_size", 32))
        device = resolve_device(self.device)
        dtype = resolve_dtype(self.precision, device) if self.precision != "auto" else "fp32"
        return score_items(metric, items, existing, device, dtype, batch_size=batch_size, log=log)
