"""``make bench``: scoring throughput per metric, batched vs one unit at a time.

Builds the tiny scorers and a synthetic image set for the default prompt
suite, then for each registered metric times (a) the batched path the assets
use and (b) a loop that scores one image (or, for set metrics, one prompt) per
call, on the same loaded model. Numbers are for this machine and the tiny
models: they measure the overhead that batching removes, not the speed of the
real scorers (see docs/performance.md for GPU figures).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import groupby
from pathlib import Path
from typing import Sequence

import numpy as np

from bench_assets.core.paths import DataPaths
from bench_assets.prompts.suites import load_suite
from bench_assets.metrics.base import ImageItem, Metric


def synthetic_images(folder: Path, per_prompt: int, size: int, max_prompts: int) -> list[ImageItem]:
    """Smooth random blobs (not pure noise, so SSIM/LPIPS see structure), one PNG each."""
    from PIL import Image

    suite = load_suite(DataPaths.from_env().default_suite())
    rng = np.random.default_rng(0)
    items = []
    for prompt in suite.prompts[:max_prompts]:
        for k in range(per_prompt):
            low = rng.uniform(0, 255, size=(8, 8, 3)).astype("uint8")
            pixels = np.asarray(Image.fromarray(low).resize((size, size), Image.BICUBIC))
            path = folder / f"{prompt.id}_i{k}.png"
            Image.fromarray(pixels).save(path)
            items.append(ImageItem("synthetic", prompt.category, prompt, k, k, path, f"{prompt.id}-{k}"))
    return items


def _units(metric: Metric, items: Sequence[ImageItem]) -> list[list[ImageItem]]:
    if metric.unit == "image":
        return [[item] for item in items]
    ordered = sorted(items, key=lambda i: i.prompt.id)
    return [list(group) for _, group in groupby(ordered, key=lambda i: i.prompt.id)]


def _batches(units: list[list[ImageItem]], size: int) -> list[list[ImageItem]]:
    batches, current = [], []
    for unit in units:
        current += unit
        if len(current) >= size:
            batches.append(current)
            current = []
    return batches + ([current] if current else [])


def _rate(metric: Metric, calls: list[list[ImageItem]]) -> float:
    images = sum(len(call) for call in calls)
    started = time.perf_counter()
    for call in calls:
        metric.score(call)
    return images / (time.perf_counter() - started)


def measure(name: str, options: dict, items: list[ImageItem]) -> tuple[float, float, int]:
    from bench_assets.metrics.registry import get_metric

    metric = get_metric(name, options)
    items = [i for i in items if metric.applies_to(i.prompt)]
    metric.load("cpu")
    units = _units(metric, items)
    metric.score(units[0])  # warm-up
    batch_size = int(metric.options.get("batch_size", 32))
    batched = _rate(metric, _batches(units, batch_size))
    single = _rate(metric, units)
    return batched, single, len(items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-per-prompt", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args(argv)

    from bench_assets.compute.local import quiet_progress_bars
    from bench_assets.demo.setup import tiny_scorer_options
    from bench_assets.metrics.registry import METRICS

    quiet_progress_bars()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        options = tiny_scorer_options(root / "scorers")
        items = synthetic_images(root / "images", args.images_per_prompt, args.size, args.prompts)
        print(f"{len(items)} synthetic {args.size}x{args.size} images, tiny scorers, CPU\n")
        print("| metric | unit | images | batched img/s | one-at-a-time img/s | speed-up |")
        print("|---|---|---|---|---|---|")
        for name, cls in METRICS.items():
            batched, single, n = measure(name, options.get(name, {}), items)
            one = "one prompt" if cls.unit == "prompt" else "one image"
            print(f"| {name} | {cls.unit} ({one}/call) | {n} | {batched:.1f} | {single:.1f} | {batched / single:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
