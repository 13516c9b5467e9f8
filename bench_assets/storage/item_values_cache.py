"""Each model's items of a metric and their values, remembered by the model's content digest.

The comparisons table (``comparisons.compare_latest``) needs of every
model's score rows of a metric: which items it has (the models with the same
items are compared all at once) and its values item by item in one order
(every pair's wins and ties). After adding one model to a hundred, the
others' rows are what they were, and their partitions' combined digest
(``PartitionDigests.of_models``: from the listing, no file read) says so.
This cache keeps, per model digest, what the comparisons need of its rows:
the item signature (count and two sums of the keys' hashes), the values
sorted by item (``KEYS``) and where each category starts. Only models with a
new digest are read; a changed row is a new digest, so a stale value is
never used.

One ``.npz`` file per metric in the data directory's ``.cache/item-values``
(flat arrays and offsets, read in one go), rewritten when something changed
with the entries of the models listed now (a deleted model's entry goes with
the next save). A damaged file only costs the reads it saved; a change of
``ITEMS_VERSION`` or of polars (the keys' hashes) makes the whole file stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import polars as pl

from bench_assets.core.paths import DataPaths
from bench_assets.storage.cache_files import replacing
from bench_assets.storage.leaderboard import MetricColumn, finite_scores, read_scores
from bench_assets.storage.partition_digests import digest
from bench_assets.storage.warehouse import Warehouse

ITEMS_VERSION = "1"  # bump when ``model_items`` or ``keyed_scores`` change, so no old entry is read as a new one
FOLDER = "item-values"
KEYS = ["category", "prompt_id", "image_index"]


def keyed_scores(scores: pl.DataFrame) -> pl.DataFrame:
    """The finite rows, ``image_index`` -1 for set metrics (one item per prompt): rows matched on ``KEYS``."""
    frame = finite_scores(scores)
    if "image_index" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("image_index"))
    return frame.with_columns(pl.col("image_index").cast(pl.Int64).fill_null(-1))


@dataclass(frozen=True)
class ModelItems:
    """One model's finite items of a metric. ``signature`` (count, two sums of the keys' 64-bit hashes) is
    equal for models with the same items; ``values`` sorted by ``KEYS``, each category from its start."""

    signature: tuple[int, int, int]
    values: np.ndarray
    categories: tuple[str, ...]
    starts: np.ndarray


def model_items(keyed: pl.DataFrame) -> dict[str, ModelItems]:
    """Each model's items of ``keyed_scores`` rows: signatures in one pass (order-free, no overflow below 2^31
    items) instead of digesting every model's rows, values in one sort."""
    if keyed.is_empty():
        return {}
    h = pl.struct(pl.col("category").cast(pl.Utf8), pl.col("prompt_id").cast(pl.Utf8), "image_index").hash(seed=0)
    signatures = (keyed.group_by("model")
                  .agg(pl.len().alias("n"), (h // 2**32).cast(pl.Int64).sum().alias("high"),
                       (h % 2**32).cast(pl.Int64).sum().alias("low"))
                  .sort("model"))
    rows = keyed.select("model", *KEYS, "value").sort("model", *KEYS)
    values = rows["value"].to_numpy().astype(float)
    category = rows["category"]
    new_category = np.r_[True, (category[1:] != category[:-1]).to_numpy()]
    offsets = np.r_[0, np.cumsum(signatures["n"].to_numpy())]
    out = {}
    for k, (model, *signature) in enumerate(signatures.iter_rows()):
        start, end = offsets[k], offsets[k + 1]
        starts = np.flatnonzero(np.r_[True, new_category[start + 1:end]])  # the first row starts a category
        out[model] = ModelItems(tuple(signature), values[start:end], tuple(category.gather(start + starts)),
                                starts)
    return out


NO_ITEMS = ModelItems((0, 0, 0), np.zeros(0), (), np.zeros(0, dtype=np.int64))  # no finite row


@dataclass(frozen=True)
class MetricItems:
    """A metric's items of every model (``NO_ITEMS`` for a model without a finite row) and the keyed rows that
    were read for them: ``read`` the models whose rows those are (None: every model's)."""

    items: dict[str, ModelItems]
    keyed: pl.DataFrame
    read: set[str] | None


class ItemValuesCache:
    """``items(metric, digests)``: every model's ``ModelItems``, models with a known digest read back from the
    cache and only the others' rows read (all models' at once when most are wanted: a full build).

    ``models_read`` counts the models whose rows this object read: after adding one model, that model only.
    """

    def __init__(self, warehouse: Warehouse, folder: Path | None):
        self.warehouse, self.folder = warehouse, folder
        self.models_read = 0

    def items(self, metric: MetricColumn, digests: Mapping[str, str]) -> MetricItems:
        """``digests``: model -> combined digest of its partitions, as listed now."""
        stored = self._stored(metric)
        known = {m: stored[d] for m, d in digests.items() if d in stored}
        changed = sorted(m for m in digests if m not in known)
        if not changed and known:
            return MetricItems(known, pl.DataFrame(), set())
        everything = not known or 2 * len(changed) > len(digests)
        scores = (read_scores(self.warehouse, metric) if everything else
                  pl.concat([read_scores(self.warehouse, metric, m) for m in changed], how="diagonal_relaxed"))
        keyed = keyed_scores(scores) if not scores.is_empty() else pl.DataFrame()
        fresh = model_items(keyed)
        self.models_read += len(digests) if everything else len(changed)
        items = {**known, **{m: NO_ITEMS for m in changed}, **fresh}
        if set(stored) != set(digests.values()):  # new models' entries, or deleted models' to drop
            self._write(metric, {digests[m]: items[m] for m in digests})
        return MetricItems(items, keyed, None if everything else set(changed))

    def _file(self, metric: MetricColumn) -> Path | None:
        return None if self.folder is None else self.folder / f"{metric.name}.npz"

    def _stored(self, metric: MetricColumn) -> dict[str, ModelItems]:
        """digest -> items, as last written (nothing when there is no file, or it is damaged or stale)."""
        path = self._file(metric)
        if path is None or not path.is_file():
            return {}
        try:
            with np.load(path, allow_pickle=False) as saved:
                if str(saved["version"]) != _version(metric):
                    return {}
                return _entries({name: saved[name] for name in saved.files})
        except Exception:  # noqa: BLE001 - a damaged cache only costs the reads it saved
            return {}

    def _write(self, metric: MetricColumn, entries: Mapping[str, ModelItems]) -> None:
        """The listed models' entries, written atomically as soon as made (one metric's held at a time)."""
        path = self._file(metric)
        if path is None:
            return
        with replacing(path, ".tmp.npz") as tmp:
            np.savez(tmp, version=np.array(_version(metric)), **_arrays(entries))


def _version(metric: MetricColumn) -> str:
    return digest(ITEMS_VERSION, pl.__version__, metric.name)


def _offsets(lengths: list[int]) -> np.ndarray:
    return np.r_[0, np.cumsum(lengths, dtype=np.int64)].astype(np.int64)


def _arrays(entries: Mapping[str, ModelItems]) -> dict[str, np.ndarray]:
    """Flat arrays of the entries (in digest order) and where each entry's part starts."""
    found = [entries[d] for d in sorted(entries)]
    return {
        "digests": np.array(sorted(entries), dtype=str),
        "signatures": np.array([e.signature for e in found], dtype=np.int64).reshape(-1, 3),
        "values": np.concatenate([e.values for e in found]) if found else np.zeros(0),
        "value_offsets": _offsets([e.values.size for e in found]),
        "categories": np.array([c for e in found for c in e.categories], dtype=str),
        "starts": np.concatenate([e.starts for e in found]).astype(np.int64) if found else np.zeros(0, np.int64),
        "category_offsets": _offsets([len(e.categories) for e in found]),
    }


def _entries(saved: Mapping[str, np.ndarray]) -> dict[str, ModelItems]:
    values, categories = saved["value_offsets"], saved["category_offsets"]
    return {str(d): ModelItems(tuple(int(x) for x in saved["signatures"][k]),
                               saved["values"][values[k]: values[k + 1]],
                               tuple(str(c) for c in saved["categories"][categories[k]: categories[k + 1]]),
                               saved["starts"][categories[k]: categories[k + 1]])
            for k, d in enumerate(saved["digests"])}


def no_item_cache(warehouse: Warehouse) -> ItemValuesCache:
    """Every model's rows read (no file): tests, ``bench compare`` and one-off callers."""
    return ItemValuesCache(warehouse, None)


def item_values_cache(paths: DataPaths, warehouse: Warehouse) -> ItemValuesCache:
    """The data directory's cache, in its ``.cache`` folder (local even when the warehouse is a bucket)."""
    return ItemValuesCache(warehouse, paths.cache / FOLDER)
