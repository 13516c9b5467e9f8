"""Each partition file's content digest, recognised from the store's listing instead of read again.

A refresh after adding one model (the comparisons, the leaderboard, the
report) must know which of a hundred models' rows are unchanged without
reading them. Every partition write replaces the whole file
(``Warehouse.write_partition``: temp file + rename, or one PUT), so a
file's listing signature, (size, mtime_ns, etag), changes whenever its
bytes may have. The digest of its rows (``content_digest``: independent of
row order, the ``model`` column left out, so an archived version's rows
digest like the latest's) is computed the first time a signature is seen
and kept in ``<cache>/partition-digests.parquet``; afterwards only files
with a new signature are read. The same rows written again get a new
signature but the same digest, so nothing downstream is recomputed; a file
that no longer reads as Parquet is moved aside by the warehouse and left
out, as every reader leaves it out.

One listing per table: on a local disk a ``scandir`` walk, on an object
store one LIST (no request per object).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import polars as pl

from bench_assets.core.paths import DataPaths
from bench_assets.storage.cache_files import replacing
from bench_assets.storage.warehouse import Warehouse

CACHE_FILE = "partition-digests.parquet"
DIGEST_VERSION = "1"  # bump when ``content_digest`` changes, so no old digest is read as a new one
CACHE_SCHEMA = {"key": pl.Utf8, "signature": pl.Utf8, "digest": pl.Utf8}


def digest(*parts: str) -> str:
    """A short digest of some strings, in order (what the caches and the comparisons key their entries by)."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()


def content_digest(frame: pl.DataFrame) -> str:
    """A digest of rows whatever their order (the ``model`` column left out)."""
    columns = sorted(c for c in frame.columns if c != "model")
    hashes = np.sort(frame.select(columns).hash_rows(seed=0).to_numpy())
    return digest(",".join(f"{c}:{frame.schema[c]}" for c in columns), hashes.tobytes().hex())


def combined_digest(digests: Mapping[str, str]) -> str:
    """One digest of several named digests (a model's categories), whatever order they came in."""
    return digest(*(f"{name}={digests[name]}" for name in sorted(digests)))


def model_digests(partitions: Mapping[tuple[str, str], str]) -> dict[str, str]:
    """model -> one digest of its partitions' digests (``of_table``'s (model, category) -> digest)."""
    grouped: dict[str, dict[str, str]] = {}
    for (model, category), found in partitions.items():
        grouped.setdefault(model, {})[category] = found
    return {model: combined_digest(found) for model, found in grouped.items()}


class PartitionDigests:
    """``of_table``: every partition file's content digest, reading only files whose listing changed.

    ``read`` counts the files read by this object (what a refresh after adding
    one model should limit to that model's files). ``save`` writes the
    entries of the tables listed now, as listed (a deleted file's entry goes),
    and keeps the others' as they were, so the cache never grows past the
    warehouse and one reader's tables do not evict another's.
    """

    def __init__(self, warehouse: Warehouse, cache_file: Path | None = None) -> None:
        self.warehouse = warehouse
        self.cache_file = cache_file
        self._stored = _load(cache_file)
        self._used: dict[str, tuple[str, str]] = {}
        self._listed: set[str] = set()  # tables listed by this object
        self.read = 0

    def _listing(self, table: str) -> Iterator[tuple[str, str]]:
        """(key, signature) of the table's partition files (``<table>/<model>/<category>.parquet``)."""
        store = self.warehouse.store
        walk = getattr(store, "walk", None)
        found = (((k, s, m, "") for k, s, m in walk(table)) if walk is not None
                 else ((k, i.size, i.mtime_ns, i.etag) for k, i in store.infos(table).items()))
        for key, size, mtime_ns, etag in found:
            if Warehouse.partition_of(key) is not None:
                yield key, f"{DIGEST_VERSION}:{size}:{mtime_ns}:{etag}"

    def of_table(self, table: str) -> dict[tuple[str, str], str]:
        """(model, category) -> the content digest of that partition's rows."""
        out = {}
        self._listed.add(table)
        for key, signature in sorted(self._listing(table)):
            found = self._digest_of(key, signature)
            if found is not None:
                _, model, category = Warehouse.partition_of(key)
                out[(model, category)] = found
        return out

    def _digest_of(self, key: str, signature: str) -> str | None:
        known = self._used.get(key) or self._stored.get(key)
        if known is not None and known[0] == signature:
            self._used[key] = known
            return known[1]
        frame = self.warehouse.read_partition(*Warehouse.partition_of(key))
        self.read += 1
        if frame is None:  # gone since the listing, or not Parquet (moved aside): no rows, as for every reader
            return None
        self._used[key] = (signature, content_digest(frame))
        return self._used[key][1]

    def of_models(self, table: str) -> dict[str, str]:
        """model -> one digest of all its partitions of ``table`` (a category added or changed changes it)."""
        return model_digests(self.of_table(table))

    def save(self) -> None:
        """Write the entries used by this object (atomically: a concurrent reader sees the old file or this one)."""
        if self.cache_file is None:
            return
        entries = {k: v for k, v in self._stored.items() if k.split("/", 1)[0] not in self._listed}
        entries.update(self._used)
        keys = sorted(entries)
        frame = pl.DataFrame({"key": keys, "signature": [entries[k][0] for k in keys],
                              "digest": [entries[k][1] for k in keys]}, schema=CACHE_SCHEMA)
        with replacing(self.cache_file) as tmp:
            frame.write_parquet(tmp)


def _load(cache_file: Path | None) -> dict[str, tuple[str, str]]:
    if cache_file is None or not cache_file.is_file():
        return {}
    try:
        frame = pl.read_parquet(cache_file)
        return {k: (s, d) for k, s, d in frame.select(list(CACHE_SCHEMA)).iter_rows()}
    except Exception:  # noqa: BLE001 - a damaged cache only costs the reads it saved
        return {}


def partition_digests(paths: DataPaths, warehouse: Warehouse) -> PartitionDigests:
    """The data directory's digests, cached in its ``.cache`` folder."""
    return PartitionDigests(warehouse, paths.cache / CACHE_FILE)
