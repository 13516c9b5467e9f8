"""Is the leaderboard older than the scores it summarises?

Runs write score partitions; the leaderboard is recomputed after them (by
``bench run``, or by the ``results_freshness`` automation sensor under the
daemon). Until then, anyone reading it should be told that it is behind.
The leaderboard file's own mtime is when it was computed (it is written
atomically), and each partition file's mtime is when its rows were written.
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


def _mtime(path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc)


def leaderboard_freshness(warehouse: Warehouse, tables: Sequence[str]) -> Freshness:
    board = warehouse.table_file(LEADERBOARD_TABLE)
    if not board.is_file():
        return Freshness(None)
    computed = board.stat().st_mtime
    newer = []
    for table in tables:
        folder = warehouse.root / table
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob("*/*.parquet")):
            if file.stat().st_mtime > computed:
                newer.append(f"{table}/{file.parent.name}/{file.stem}")
    return Freshness(_mtime(board), newer)
