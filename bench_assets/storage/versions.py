"""Model versions: a model whose bytes change is a new version, not a replacement.

The latest version keeps exactly today's layout (``images/<model>/<category>/``
and one warehouse file per (table, model, category)), so every reader of the
warehouse sees the latest version and nothing else. When a partition is about
to be generated for a new model fingerprint, the partition's previous
version is *archived*: its PNGs move to ``versions/images/<model>@<fp>/<category>/``
and its rows in every warehouse table to the archive warehouse
``versions/warehouse/<table>/<model>@<fp>/<category>.parquet``, with the image
keys in those rows rewritten (``<model>@<fp>/<category>/<file>``, relative to
``versions/images``). Returning to a version whose archive exists moves it
back instead of generating again. All of it lives under the store root
(``data/`` by default, or ``s3://bucket/prefix``): on disk a partition's
folder moves with one rename, on an object store object by object (after
its rows, so a crash half-way leaves every image findable by its row).

``model_versions`` (a warehouse table, so a DuckDB view) lists each model's
versions: number (1, 2, ... in order of first sight), fingerprint, first
seen, file path. ``@N`` or ``@<fingerprint prefix>`` names a version.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bench_assets.core.errors import BenchError
from bench_assets.core.config import BenchConfig, load_config
from bench_assets.core.naming import recorded_image_key
from bench_assets.core.paths import DataPaths
from bench_assets.core.objects import Store
from bench_assets.storage.store import IMAGES_PREFIX, WAREHOUSE_PREFIX, configured_store, open_store
from bench_assets.storage.status import IMAGES_TABLE
from bench_assets.storage.warehouse import Warehouse

VERSIONS_TABLE = "model_versions"
VERSION_SCHEMA = {"model": pl.Utf8, "version": pl.Int64, "fingerprint": pl.Utf8, "first_seen": pl.Utf8,
                  "path": pl.Utf8}
KEY_CHARS = 16  # fingerprint characters in an archive folder name
ARCHIVE_IMAGES = "versions/images"
ARCHIVE_WAREHOUSE = "versions/warehouse"


def image_columns(table: str) -> tuple[str, ...]:
    """The columns of ``table`` that locate an image: the manifest's ``path``, any row's ``image_path``.

    (``model_versions.path`` is a model file, not an image.)
    """
    return ("path", "image_path") if table == IMAGES_TABLE else ("image_path",)


class VersionError(BenchError, ValueError):
    """A version reference that names nothing (the message lists what exists), or a prune that would keep none."""


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int
    fingerprint: str
    first_seen: str
    path: str

    @property
    def label(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class VersionRef:
    """What a comparison reads: a model's current rows (version None) or one version's."""

    model: str
    version: ModelVersion | None = None

    @property
    def label(self) -> str:
        return self.version.label if self.version else self.model


@dataclass(frozen=True)
class _Place:
    """Where one version of a model keeps a partition: a warehouse, a model key, an image root
    (a prefix of the store root)."""

    warehouse: Warehouse
    key: str
    images: str

    def image_prefix(self, category: str) -> str:
        return f"{self.images}/{self.key}/{category}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class VersionStore:
    """Versions of the models under one store root (``root``: the data dir's folder or a store)."""

    def __init__(self, root: Store | Path | str) -> None:
        self.root: Store = root if isinstance(root, Store) else open_store(root)
        self.warehouse = Warehouse(self.root.child(WAREHOUSE_PREFIX))
        self.images = self.root.child(IMAGES_PREFIX)
        self.archive = Warehouse(self.root.child(ARCHIVE_WAREHOUSE))
        self.archive_images = self.root.child(ARCHIVE_IMAGES)

    # -- the table -------------------------------------------------------------------------------

    def table(self) -> pl.DataFrame:
        frame = self.warehouse.read_table(VERSIONS_TABLE)
        if frame.is_empty():
            return pl.DataFrame(schema=VERSION_SCHEMA)
        return frame.select(list(VERSION_SCHEMA)).cast(VERSION_SCHEMA).sort("model", "version")

    def of(self, model: str) -> list[ModelVersion]:
        """The model's versions, oldest first."""
        rows = self.table().filter(pl.col("model") == model)
        return [ModelVersion(**row) for row in rows.iter_rows(named=True)]

    def register(self, model: str, fingerprint: str, path: str, first_seen: str | None = None) -> ModelVersion:
        """The version with this fingerprint, numbered next if it is new."""
        known = self.of(model)
        for version in known:
            if version.fingerprint == fingerprint:
                return version
        number = max((v.version for v in known), default=0) + 1
        version = ModelVersion(model, number, fingerprint, first_seen or _now(), str(path))
        self.warehouse.write_partition(VERSIONS_TABLE, model, fingerprint[:KEY_CHARS], [version.__dict__],
                                       schema=VERSION_SCHEMA)
        return version

    def latest(self) -> pl.DataFrame:
        """Each model's latest version: (model, version, fingerprint)."""
        return self.table().group_by("model").agg(pl.all().sort_by("version").last()).sort("model")

    # -- the hook before generation ---------------------------------------------------------------

    def current_fingerprint(self, model: str, category: str) -> str | None:
        """The model fingerprint of the partition's current images (None when it has none)."""
        manifest = self.warehouse.read_partition(IMAGES_TABLE, model, category)
        if manifest is None or manifest.is_empty() or "model_fingerprint" not in manifest.columns:
            return None
        counts = manifest["model_fingerprint"].drop_nulls().value_counts(sort=True)
        return counts[0, 0] if counts.height else None

    def before_generation(self, model: str, category: str, fingerprint: str, path: Path | str) -> ModelVersion:
        """Register this fingerprint as a version; archive the partition if it holds another one.

        Called by the images asset before it generates, so that a new
        version's images never overwrite the previous version's.
        """
        current = self.current_fingerprint(model, category)
        if current and current != fingerprint:
            manifest = self.warehouse.read_partition(IMAGES_TABLE, model, category)
            first_seen = manifest["created_at"].drop_nulls().min() if "created_at" in manifest.columns else None
            self.register(model, current, str(path), first_seen)
            self._move(category, self._current(model), self._archived(model, current))
            returning = self._archived(model, fingerprint)
            if category in returning.warehouse.categories(IMAGES_TABLE, returning.key):
                self._move(category, returning, self._current(model))
        return self.register(model, fingerprint, str(path))

    def _current(self, model: str) -> _Place:
        return _Place(self.warehouse, model, IMAGES_PREFIX)

    def _archived(self, model: str, fingerprint: str) -> _Place:
        return _Place(self.archive, f"{model}@{fingerprint[:KEY_CHARS]}", ARCHIVE_IMAGES)

    def _move(self, category: str, source: _Place, target: _Place) -> None:
        """Move a partition's rows (every table) and images; rows first, so a crash loses nothing."""
        moved = []
        for table in source.warehouse.tables():
            if table == VERSIONS_TABLE:
                continue
            frame = source.warehouse.read_partition(table, source.key, category)
            if frame is None:
                continue
            target.warehouse.write_partition(table, target.key, category, _rehome(frame, table, target.key))
            moved.append(table)
        self._move_images(source.image_prefix(category), target.image_prefix(category))
        for table in moved:
            source.warehouse.delete_partition(table, source.key, category)

    def _move_images(self, source: str, target: str) -> None:
        """Replace ``target``'s images with ``source``'s (prefixes of the root): a folder rename on disk."""
        folder = self.root.local_path(source)
        if folder is not None:
            if folder.is_dir():
                self._delete_images(target)
                destination = self.root.local_path(target)
                destination.parent.mkdir(parents=True, exist_ok=True)
                folder.rename(destination)
            return
        keys = self.root.keys(source)
        if keys:
            self._delete_images(target)
        for key in keys:
            self.root.move(key, target + key[len(source):])

    def _delete_images(self, prefix: str) -> None:
        folder = self.root.local_path(prefix)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
            return
        for key in self.root.keys(prefix):
            self.root.delete(key)

    # -- reading a version ------------------------------------------------------------------------

    def rows(self, table: str, ref: VersionRef) -> pl.DataFrame:
        """The rows of ``table`` that belong to ``ref``: current partitions, or one version's."""
        if ref.version is None:
            frames = [self.warehouse.read_partition(table, ref.model, c)
                      for c in self.warehouse.categories(table, ref.model)]
        else:
            fingerprint = ref.version.fingerprint
            current = [c for c in self.warehouse.categories(IMAGES_TABLE, ref.model)
                       if self.current_fingerprint(ref.model, c) == fingerprint]
            place = self._archived(ref.model, fingerprint)
            frames = [self.warehouse.read_partition(table, ref.model, c) for c in current]
            frames += [place.warehouse.read_partition(table, place.key, c)
                       for c in place.warehouse.categories(table, place.key) if c not in current]
        frames = [f for f in frames if f is not None and f.width]
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    def resolve(self, reference: str) -> VersionRef:
        """``model`` (its current rows), ``model@N`` or ``model@<fingerprint prefix>``."""
        model, _, which = reference.partition("@")
        versions = self.of(model)
        if not which:
            if not versions and not any(self.warehouse.categories(t, model) for t in self.warehouse.tables()):
                raise VersionError(f"no results for model '{model}'; models: {self._known()}")
            return VersionRef(model, versions[-1] if versions else None)
        matches = [v for v in versions if which.isdigit() and v.version == int(which)]
        matches = matches or [v for v in versions if v.fingerprint.startswith(which.lower())]
        if len(matches) != 1:
            listed = ", ".join(f"{v.label} ({v.fingerprint[:12]})" for v in versions) or "none"
            problem = "is ambiguous" if matches else "names no version"
            raise VersionError(f"'{reference}' {problem}; versions of '{model}': {listed}")
        return VersionRef(model, matches[0])

    def _known(self) -> str:
        manifest = self.warehouse.read_table(IMAGES_TABLE)
        models = set(self.table()["model"]) | set(manifest["model"] if "model" in manifest.columns else [])
        return ", ".join(sorted(models)) or "none yet"

    # -- pruning ----------------------------------------------------------------------------------

    def prune(self, keep: int) -> list[ModelVersion]:
        """Delete the images and rows of all but each model's ``keep`` newest versions.

        A version that current partitions still hold is never pruned.
        """
        if keep < 1:
            raise VersionError(f"--keep must be at least 1 (the latest version), got {keep}")
        pruned = []
        for model in self.table()["model"].unique().sort():
            versions = self.of(model)
            in_use = {self.current_fingerprint(model, c) for c in self.warehouse.categories(IMAGES_TABLE, model)}
            for version in versions[:-keep]:
                if version.fingerprint in in_use:
                    continue
                self._delete_archive(self._archived(model, version.fingerprint))
                self.warehouse.delete_partition(VERSIONS_TABLE, model, version.fingerprint[:KEY_CHARS])
                pruned.append(version)
        return pruned

    def _delete_archive(self, place: _Place) -> None:
        for table in place.warehouse.tables():
            place.warehouse.delete_model(table, place.key)
        self._delete_images(f"{place.images}/{place.key}")


def open_versions(paths: DataPaths, config: BenchConfig | None = None) -> VersionStore:
    """The installation's versions, under the configured store root (``data/`` by default)."""
    return VersionStore(configured_store(paths, config if config is not None else load_config(paths)))


def _rehome(frame: pl.DataFrame, table: str, model_key: str) -> pl.DataFrame:
    """Rows whose image keys name the same files under the model folder ``model_key`` (``m`` or ``m@fp``).

    Rows that still hold an absolute path (written before keys) get a key too.
    """
    def moved(value: str) -> str:
        return "/".join([model_key, *recorded_image_key(value).split("/")[1:]])

    for column in image_columns(table):
        if column in frame.columns and frame.schema[column] == pl.Utf8:
            frame = frame.with_columns(pl.col(column).map_elements(moved, return_dtype=pl.Utf8))
    return frame
