"""Each partition's GPU seconds, remembered by the partition's content digest.

``leaderboard.gpu_costs`` sums the ``gpu_seconds`` every manifest and score row
recorded, per (model, category). Reading that column from every partition of
twelve tables took 8.8 s of a leaderboard refresh at 100 models × 10,000
prompts, although only the new model's partitions had changed. This cache
keeps each partition's sum with its content digest (``partition_digests``:
from the listing, no file read), so a refresh reads only partitions with a new
digest; a rewritten partition is a new digest, so a stale sum is never used.

One small Parquet file in the data directory's ``.cache`` (a row per live
partition of every table asked for), replaced atomically when something
changed; a damaged or missing file only costs the reads it saved.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from bench_assets.core.paths import DataPaths
from bench_assets.storage.cache_files import replacing
from bench_assets.storage.partition_digests import PartitionDigests
from bench_assets.storage.warehouse import Warehouse

CACHE_FILE = "partition-gpu-seconds.parquet"
PARTITION = ["model", "category"]
SCHEMA = {"table": pl.Utf8, "model": pl.Utf8, "category": pl.Utf8, "digest": pl.Utf8, "gpu_seconds": pl.Float64}


def summed_seconds(rows: pl.DataFrame) -> pl.DataFrame:
    """(model, category, gpu_seconds) of some partitions' rows, a missing second counted as 0; null where the
    rows have no ``gpu_seconds`` column (``gpu_costs`` then leaves a table out that no partition records in)."""
    if not set(PARTITION) <= set(rows.columns):  # no partition at all
        return pl.DataFrame(schema={"model": pl.Utf8, "category": pl.Utf8, "gpu_seconds": pl.Float64})
    if "gpu_seconds" not in rows.columns:
        return rows.select(PARTITION).unique().with_columns(pl.lit(None, dtype=pl.Float64).alias("gpu_seconds"))
    return rows.group_by(PARTITION).agg(pl.col("gpu_seconds").cast(pl.Float64).fill_null(0.0).sum())


class PartitionSeconds:
    """``of_table(table)``: (model, category, gpu_seconds) of every partition, the known digests read back.

    ``partitions_read`` counts the partitions whose rows were read: after adding one model, its own.
    Without ``digests`` every partition is read (tests, one-off callers).
    """

    def __init__(self, warehouse: Warehouse, digests: PartitionDigests | None, path: Path | None = None):
        self.warehouse, self.digests, self.path = warehouse, digests, path
        self.partitions_read = 0
        self._stored = self._load()
        self._live: dict[str, pl.DataFrame] = {}

    def of_table(self, table: str) -> pl.DataFrame:
        if self.digests is None:
            rows = summed_seconds(self.warehouse.read_columns(table, [*PARTITION, "gpu_seconds"]))
            self.partitions_read += rows.height
            return rows
        live = pl.DataFrame([(m, c, d) for (m, c), d in self.digests.of_table(table).items()],
                            schema={"model": pl.Utf8, "category": pl.Utf8, "digest": pl.Utf8}, orient="row")
        known = (self._stored.filter(pl.col("table") == table).drop("table")
                 .join(live, on=[*PARTITION, "digest"], how="semi"))
        missing = live.join(known, on=PARTITION, how="anti")
        frames = [known]
        if missing.height:
            fresh = self._read(table, sorted(missing["model"].unique()), live["model"].n_unique())
            fresh = fresh.join(missing, on=PARTITION)  # those partitions only, with their digests
            self.partitions_read += fresh.height
            frames.append(fresh.select(known.columns))
        self._live[table] = pl.concat(frames)
        return self._live[table].drop("digest")

    def _read(self, table: str, models: list[str], n_models: int) -> pl.DataFrame:
        """Summed seconds of the models named: their partitions read (the whole table at once when most are)."""
        columns = [*PARTITION, "gpu_seconds"]
        if 2 * len(models) > n_models:  # half the models or more (a first build): one scan of the table
            return summed_seconds(self.warehouse.read_columns(table, columns))
        frames = [f for f in (self.warehouse.read_columns(table, columns, model) for model in models) if f.width]
        return summed_seconds(pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame())

    def _load(self) -> pl.DataFrame:
        empty = pl.DataFrame(schema=SCHEMA)
        if self.path is None or not self.path.is_file():
            return empty
        try:
            return pl.read_parquet(self.path).select(list(SCHEMA)).cast(SCHEMA)
        except Exception:  # noqa: BLE001 - a damaged cache only costs the reads it saved
            return empty

    def save(self) -> None:
        """Write the live partitions of the tables asked for (and the others' entries as they were)."""
        if self.path is None or not self._live:
            return
        asked = [frame.with_columns(pl.lit(table).alias("table")) for table, frame in self._live.items()]
        others = self._stored.filter(~pl.col("table").is_in(list(self._live)))
        everything = pl.concat([others, *[f.select(list(SCHEMA)) for f in asked]]).cast(SCHEMA)
        if everything.sort(list(SCHEMA)).equals(self._stored.sort(list(SCHEMA))):
            return
        with replacing(self.path) as tmp:
            everything.write_parquet(tmp)
        self._stored = everything


def partition_seconds(paths: DataPaths, warehouse: Warehouse, digests: PartitionDigests) -> PartitionSeconds:
    """The data directory's cache, in its ``.cache`` folder (local even when the warehouse is a bucket)."""
    return PartitionSeconds(warehouse, digests, paths.cache / CACHE_FILE)
