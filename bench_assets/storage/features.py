"""The feature cache: image features per (extractor_id, image sha256), so no image is featurised twice.

Stored in the warehouse as one Parquet file per extractor and group of images
(``feature_cache/<extractor>/reference/<set>.parquet``,
``feature_cache/<extractor>/model/<model>/<category>.parquet``), never one
file per image; columns ``sha256``, ``extractor_id``, ``features``
(list<float32>). A look-up reads the group's file and extracts only the
images whose sha256 (under the current ``extractor_id``) is not there, in
batches; the file is then rewritten with exactly the requested images, so a
changed image's old row is dropped and its new one added: the cache holds
what the current images need and nothing else. ``FeatureCache.counts`` says
how many rows were extracted and how many reused (the tests read it).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import polars as pl

from bench_assets.metrics.features import FeatureExtractor
from bench_assets.storage.warehouse import PARQUET, Warehouse, parquet_bytes

FEATURE_TABLE = "feature_cache"
ImageSource = tuple[str, Callable[[], Any]]  # (sha256, load -> PIL image)


def reference_group(reference: str) -> str:
    return f"reference/{reference}"


def model_group(model: str, category: str) -> str:
    return f"model/{model}/{category}"


@dataclass
class FeatureCounts:
    extracted: int = 0
    reused: int = 0


class FeatureCache:
    """Features of groups of images, read from and written to the warehouse; counts what it extracted."""

    def __init__(self, warehouse: Warehouse, batch_size: int = 32) -> None:
        self.warehouse = warehouse
        self.batch_size = batch_size
        self.counts = FeatureCounts()

    @staticmethod
    def key(extractor: str, group: str) -> str:
        return f"{FEATURE_TABLE}/{extractor}/{group}{PARQUET}"

    def _cached(self, key: str, extractor_id: str) -> dict[str, np.ndarray]:
        path = self.warehouse.store.local_path(key)
        try:
            frame = pl.read_parquet(path if path is not None else io.BytesIO(self.warehouse.store.get_bytes(key)))
        except Exception:  # missing, or damaged: it is only a cache, so extract again and overwrite it
            return {}
        frame = frame.filter(pl.col("extractor_id") == extractor_id)
        return {sha: np.asarray(row, np.float32) for sha, row in zip(frame["sha256"], frame["features"])}

    def _extract(self, extractor: FeatureExtractor, missing: Sequence[ImageSource]) -> dict[str, np.ndarray]:
        """Features of the missing images, ``batch_size`` decoded images in memory at a time."""
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            matrix = extractor.features([load() for _, load in chunk])
            found.update({sha: row for (sha, _), row in zip(chunk, matrix)})
        return found

    def features(self, extractor: FeatureExtractor, group: str, images: Sequence[ImageSource]) -> np.ndarray:
        """A float32 (len(images), d) matrix in ``images``' order, extracting only what the cache lacks."""
        key = self.key(extractor.name, group)
        cached = self._cached(key, extractor.extractor_id)
        wanted = list(dict(images).items())  # unique by sha256, first loader wins
        missing = [(sha, load) for sha, load in wanted if sha not in cached]
        fresh = self._extract(extractor, missing)
        self.counts.extracted += len(fresh)
        self.counts.reused += len(wanted) - len(missing)
        rows = {**cached, **fresh}
        if fresh or set(cached) != {sha for sha, _ in wanted}:
            self._write(key, extractor.extractor_id, {sha: rows[sha] for sha, _ in wanted})
        if not images:
            return np.zeros((0, 0), np.float32)
        return np.stack([rows[sha] for sha, _ in images]).astype(np.float32, copy=False)

    def _write(self, key: str, extractor_id: str, rows: dict[str, np.ndarray]) -> None:
        frame = pl.DataFrame({
            "sha256": list(rows),
            "extractor_id": [extractor_id] * len(rows),
            "features": pl.Series([row.tolist() for row in rows.values()], dtype=pl.List(pl.Float32)),
        })
        self.warehouse.store.put_bytes(key, parquet_bytes(frame))
