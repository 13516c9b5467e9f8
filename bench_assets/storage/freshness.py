"""Is the leaderboard older than the scores it summarises?

Runs write score partitions; the leaderboard is recomputed after them (by
``bench run``, or by the ``results_freshness`` automation sensor under the
daemon). Until then, anyone reading it should be told that it is behind.
The leaderboard file's own mtime is when it was computed (it is written
atomically), and each partition file's mtime is when its rows were written
(an object's Last-Modified on an object store).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Sequence

from bench_assets.storage.warehouse import Warehouse

LEADERBOARD_TABLE = "leaderboard"


@dataclass(frozen=True)
class Freshness:
    computed_at: dt.datetime | None  # None: never computed
    newer: list[str] = field(default_factory=list)  # "table/model/category" written after it

    def describe(self) -> str:
        if self.computed_at is None:
            return "the leaderboard has not been computed yet"
        when = self.computed_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        if not self.newer:
            return f"computed {when}; no newer scores"
        return (f"computed {when}; {len(self.newer)} score partition(s) are newer (first: {self.newer[0]}): "
                "it refreshes after the running benchmark finishes, or run `bench run`")


def _when(mtime_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(mtime_ns / 1e9, tz=dt.timezone.utc)


def leaderboard_freshness(warehouse: Warehouse, tables: Sequence[str]) -> Freshness:
    """Partition files written after the leaderboard file, from one listing per table (no read)."""
    board = warehouse.store.info(warehouse.table_key(LEADERBOARD_TABLE))
    if board is None:
        return Freshness(None)
    newer = []
    for table in tables:
        for key, info in warehouse.store.infos(table).items():
            partition = Warehouse.partition_of(key)
            if partition is not None and info.mtime_ns > board.mtime_ns:
                newer.append("/".join(partition))
    return Freshness(_when(board.mtime_ns), newer)
