"""``bench migrate``: rows that recorded absolute image paths get image keys instead.

Before the storage seam, the manifest's ``path`` and score rows'
``image_path`` held absolute local paths (``/home/me/data/images/m/c/f.png``),
which break when the data directory moves or the images go to a bucket. Rows
now hold keys relative to the image store (``m/c/f.png``; archived versions:
``m@<fp>/c/f.png`` relative to the archive's image root). This rewrites the
old values in the warehouse and in the version archive, one partition at a
time, each replaced by one atomic write while holding that partition's lock
(a running partition is skipped and reported; run it again afterwards).
Idempotent: a partition already in keys is read and left alone.

Not run automatically: every reader resolves an old row with the same rule
(:func:`~bench_assets.core.naming.recorded_image_key`), so nothing waits on
it, and rewriting every partition of a warehouse (on an object store, every
object) is a step a user chooses, not a side effect of a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from bench_assets.core.config import BenchConfig, load_config
from bench_assets.core.naming import is_absolute_location, recorded_image_key
from bench_assets.core.paths import DataPaths
from bench_assets.storage.locks import PartitionBusy, partition_lock, partition_lock_dir
from bench_assets.storage.versions import image_columns, open_versions
from bench_assets.storage.warehouse import Warehouse


def keyed(frame: pl.DataFrame, table: str) -> tuple[pl.DataFrame, int]:
    """``frame`` with every absolute image location replaced by its key; and how many were."""
    changed = 0
    for column in image_columns(table):
        if column not in frame.columns or frame.schema[column] != pl.Utf8:
            continue
        values = frame[column].to_list()
        absolute = sum(1 for v in values if v is not None and is_absolute_location(v))
        if absolute:
            frame = frame.with_columns(pl.Series(column, [None if v is None else recorded_image_key(v) for v in values],
                                                 dtype=pl.Utf8))
            changed += absolute
    return frame, changed


@dataclass
class MigrationResult:
    """What one migration read and rewrote, per warehouse (``warehouse``, ``versions``) and table."""

    files: int = 0
    partitions: dict[str, int] = field(default_factory=dict)  # "<where>/<table>" -> partitions rewritten
    values: dict[str, int] = field(default_factory=dict)  # "<where>/<table>" -> values rewritten
    busy: list[str] = field(default_factory=list)  # partitions a run held; not migrated this time

    def lines(self) -> list[str]:
        lines = [f"{name}: {self.values[name]} image location(s) in {self.partitions[name]} partition(s) "
                 "rewritten as keys" for name in sorted(self.values)]
        lines.append(f"{self.files} partition file(s) checked; "
                     + ("nothing to rewrite" if not self.values else f"{sum(self.values.values())} value(s) rewritten"))
        lines += [f"busy (a run holds it; run `bench migrate` again after it): {p}" for p in self.busy]
        return lines


def migrate_warehouse(warehouse: Warehouse, where: str, lock_dir: Path, result: MigrationResult) -> None:
    """Rewrite ``warehouse``'s partitions that still hold absolute image locations."""
    for key in warehouse.parquet_keys():
        partition = Warehouse.partition_of(key)
        if partition is None:
            continue  # a whole table (leaderboard ...): no image locations
        table, model, category = partition
        result.files += 1
        try:
            # An archived partition (model@fp) is written under its model's lock (versions.before_generation).
            with partition_lock(lock_dir, model.split("@", 1)[0], category, wait=False):
                frame = warehouse.read_partition(table, model, category)
                if frame is None:
                    continue
                frame, changed = keyed(frame, table)
                if changed:
                    warehouse.write_partition(table, model, category, frame)
        except PartitionBusy:
            result.busy.append(f"{where}/{key}")
            continue
        if changed:
            name = f"{where}/{table}"
            result.partitions[name] = result.partitions.get(name, 0) + 1
            result.values[name] = result.values.get(name, 0) + changed


def migrate_data_dir(paths: DataPaths, config: BenchConfig | None = None) -> MigrationResult:
    """Migrate the configured warehouse and the version archive of one installation."""
    config = config if config is not None else load_config(paths)
    versions = open_versions(paths, config)
    result = MigrationResult()
    lock_dir = partition_lock_dir(paths.cache)
    migrate_warehouse(versions.warehouse, "warehouse", lock_dir, result)
    migrate_warehouse(versions.archive, "versions", lock_dir, result)
    return result
