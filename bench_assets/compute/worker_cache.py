"""Models stay loaded in a worker process across partitions and runs.

A benchmark run covers a model's categories in one process (one run per
model, steps in process), and ``bench run`` executes its runs in one
process too. Loading a scorer (a 7B VLM, PickScore's ViT-H, OWLv2) or a
pipeline is the fixed cost that dominated the UI path, so each one is loaded
once per worker and kept while it is the one in use.

Only ``max_scorers`` scorers stay loaded at a time (least recently used goes
first): on a 24 GB GPU two 7B VLMs and an SDXL pipeline do not fit together.
The pipeline cache holds one pipeline (see ``generation.generate._load``).

``load_counts`` counts real loads by name, for the tests and ``make bench``:
the target is one load per worker per model benchmarked.
"""

from __future__ import annotations

import gc
import json
from collections import Counter, OrderedDict
from typing import Any

from bench_assets.metrics.base import Metric
from bench_assets.metrics.registry import get_metric

load_counts: Counter[str] = Counter()


def count_load(name: str) -> int:
    """Record one real load of ``name``; returns how many this worker has done."""
    load_counts[name] += 1
    return load_counts[name]


class WorkerCache:
    """Loaded scorers and the loaded pipeline of this process."""

    def __init__(self, max_scorers: int = 1) -> None:
        if max_scorers < 1:
            raise ValueError(f"max_scorers must be at least 1, got {max_scorers}")
        self.max_scorers = max_scorers
        self.pipelines: dict = {}  # generate_image_set's pipe_cache: one pipeline at a time
        self._scorers: OrderedDict[str, Metric] = OrderedDict()

    def scorer(self, name: str, options: dict[str, Any]) -> Metric:
        """The metric instance for these options: the same (loaded) one while it is cached."""
        key = f"{name}:{json.dumps(options, sort_keys=True, default=str)}"
        metric = self._scorers.pop(key, None) or get_metric(name, options)
        self._scorers[key] = metric
        while len(self._scorers) > self.max_scorers:
            _, evicted = self._scorers.popitem(last=False)
            _release(evicted)
        return metric

    def clear(self) -> None:
        for metric in self._scorers.values():
            _release(metric)
        self._scorers.clear()
        self.pipelines.clear()
        _empty_device_caches()


def _release(metric: Metric) -> None:
    metric.unload()
    _empty_device_caches()


def _empty_device_caches() -> None:
    """Give freed GPU memory back before the next load.

    A full ``gc.collect()`` (weights held in reference cycles) is what lets
    CUDA's cache actually shrink; it takes about a second with torch,
    transformers and Dagster loaded, so it runs only when a GPU is in use. On
    the CPU, reference counting frees the weights and the regular collector
    takes the rest.
    """
    import sys

    torch = sys.modules.get("torch")  # never import torch just to free nothing
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        gc.collect()
        torch.cuda.empty_cache()


_WORKER: WorkerCache | None = None


def worker_cache(max_scorers: int = 1) -> WorkerCache:
    """This process's cache (created on first use; ``max_scorers`` from the compute config)."""
    global _WORKER
    if _WORKER is None:
        _WORKER = WorkerCache(max_scorers)
    _WORKER.max_scorers = max_scorers
    return _WORKER
