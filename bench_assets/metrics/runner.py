"""Scoring a partition: cache look-up, streaming batches, bookkeeping columns.

A score row is keyed by what it was computed from: the image's sha256 (or,
for a prompt-level metric, the hash of the prompt's image hashes), the
metric's version and the scorer's identity. Rows whose key still matches are
kept as they are; only the rest are computed, so re-materializing an
unchanged partition computes nothing and loads no model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Callable, Iterator, Sequence

from bench_assets.core.progress import Progress
from bench_assets.metrics.base import ImageItem, Metric

Log = Callable[[str], None]


@dataclass
class ScoreOutcome:
    rows: list[dict[str, Any]]
    computed: int
    cached: int
    skipped_prompts: int
    gpu_seconds: float = 0.0  # device time of this call (load + batches); cached rows cost nothing

    @property
    def status(self) -> str:
        return "cached" if self.computed == 0 else "computed"


def _images_key(items: Sequence[ImageItem]) -> str:
    blob = "|".join(f"{i.index}:{i.sha256}" for i in sorted(items, key=lambda i: i.index))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _units(metric: Metric, items: Sequence[ImageItem]) -> list[tuple[tuple[str, int | None], str, list[ImageItem]]]:
    """(unit key, input hash, items) for each thing the metric scores."""
    ordered = sorted(items, key=lambda i: (i.prompt.id, i.index))
    if metric.unit == "image":
        return [((i.prompt.id, i.index), i.sha256, [i]) for i in ordered]
    units = []
    for prompt_id, group in groupby(ordered, key=lambda i: i.prompt.id):
        members = list(group)
        units.append(((prompt_id, None), _images_key(members), members))
    return units


def _cache_index(metric: Metric, existing: list[dict[str, Any]]) -> dict[tuple[str, int | None], list[dict]]:
    index: dict[tuple[str, int | None], list[dict]] = {}
    for row in existing:
        if row.get("metric_version") != metric.version or row.get("scorer") != metric.scorer_id:
            continue
        index.setdefault((row["prompt_id"], row.get("image_index")), []).append(row)
    return index


def _batched_units(units: list, batch_size: int) -> Iterator[list]:
    batch: list = []
    count = 0
    for unit in units:
        batch.append(unit)
        count += len(unit[2])
        if count >= batch_size:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


def split_cached(
    metric: Metric, items: Sequence[ImageItem], existing: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[ImageItem], int]:
    """(rows still valid, items that need scoring, prompts the metric skips).

    A remote backend calls this before shipping images anywhere, so a
    partition that is fully cached costs no container at all.
    """
    applicable = [i for i in items if metric.applies_to(i.prompt)]
    skipped = len({i.prompt.id for i in items}) - len({i.prompt.id for i in applicable})
    cache = _cache_index(metric, existing)
    rows: list[dict[str, Any]] = []
    todo: list[ImageItem] = []
    for key, input_hash, members in _units(metric, applicable):
        hits = [r for r in cache.get(key, []) if r.get("input_hash") == input_hash]
        if hits:
            rows += hits
        else:
            todo += members
    return rows, todo, skipped


def score_items(
    metric: Metric,
    items: Sequence[ImageItem],
    existing: list[dict[str, Any]],
    device: str,
    dtype: str = "fp32",
    batch_size: int = 32,
    log: Log = lambda _: None,
    on_load: Callable[[str], None] = lambda _: None,
) -> ScoreOutcome:
    """Score what is not cached; return the partition's complete set of rows.

    The metric is loaded only when something needs scoring, and only if this
    instance is not loaded already (a worker keeps it across partitions);
    ``on_load`` hears of each real load.
    """
    rows, uncached, skipped = split_cached(metric, items, existing)
    # A prompt's images are all cached or all not, so the uncached items regroup into whole units.
    todo = _units(metric, uncached)
    cached = len(rows)
    load_share = 0.0
    spent = 0.0
    total_images = sum(len(u[2]) for u in todo)
    if todo:
        started = time.perf_counter()
        if metric.ensure_loaded(device, dtype):
            on_load(metric.name)
            log(f"{metric.name}: loaded the scorer in {time.perf_counter() - started:.1f} s")
        spent = time.perf_counter() - started
        load_share = spent / len(todo)
        log(f"{metric.name}: scoring {total_images} images ({len(rows)} rows cached)")
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    computed = 0
    progress = Progress(f"{metric.name}: scored", total_images)
    for batch in _batched_units(todo, batch_size):
        hashes = {key: h for key, h, _ in batch}
        first = {key: members[0] for key, _, members in batch}
        started = time.perf_counter()
        batch_items = [item for _, _, members in batch for item in members]
        scored = list(metric.score(batch_items))
        elapsed = time.perf_counter() - started
        spent += elapsed
        for row in scored:
            key = (row["prompt_id"], row.get("image_index"))
            cost = elapsed / max(len(scored), 1) + load_share
            rows.append(_bookkeeping(metric, first[key], hashes[key], row, stamp, cost))
            computed += 1
        log(progress.advance(len(batch_items), elapsed))
    return ScoreOutcome(rows=rows, computed=computed, cached=cached, skipped_prompts=skipped, gpu_seconds=spent)


def _bookkeeping(
    metric: Metric, item: ImageItem, input_hash: str, row: dict, stamp: str, gpu_seconds: float
) -> dict:
    per_image = metric.unit == "image"
    return {
        "model": item.model,
        "category": item.category,
        "prompt_id": row["prompt_id"],
        "image_index": row.get("image_index") if per_image else None,
        "seed": item.seed if per_image else None,
        "image_path": str(item.key) if per_image else None,  # the key in the image store
        "image_sha256": item.sha256 if per_image else None,
        "input_hash": input_hash,
        "metric": metric.name,
        "metric_version": metric.version,
        "scorer": metric.scorer_id,
        "scored_at": stamp,
        "gpu_seconds": gpu_seconds,
        **{k: v for k, v in row.items() if k not in ("prompt_id", "image_index")},
    }
