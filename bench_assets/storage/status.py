"""What the warehouse says about each (model, category) partition.

Shared by ``bench status`` and the nightly schedule, so that "missing" and
"stale" mean the same thing in the terminal and in the orchestrator: both
walk the models with ``suite_statuses``, over the same ``StatusInputs``.

States:
- ``done``: every expected image exists for the current model and settings,
  and every metric has current rows for them;
- ``missing``: no images yet;
- ``failed``: the model failed to load, or some images failed to generate;
- ``partial``: some images or some scores are still to be made;
- ``stale``: images exist but for other weights or other settings, or the
  files on disk are no longer the ones recorded (missing, truncated, changed):
  the files on disk are the truth, never the manifest a past run wrote; or
  a prompt's text or negative prompt was edited since its images were drawn
  (:func:`edited_prompts`: each image records its prompt's ``text_hash``).
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Iterable, Iterator, Mapping, Sequence

import numpy as np
import polars as pl

from bench_assets.core.config import generation_defaults, load_config
from bench_assets.core.objects import Store
from bench_assets.core.paths import DataPaths
from bench_assets.core.settings import GenerationSettings, set_fields
from bench_assets.generation.image_set import check_manifest_files, describe_problems
from bench_assets.metrics.base import Metric
from bench_assets.metrics.registry import configured_metrics, metric_options
from bench_assets.models.registry import ModelEntry, fingerprint, model_settings
from bench_assets.prompts.prompt import Prompt, PromptSuite
from bench_assets.prompts.suites import load_suite
from bench_assets.storage.status_cache import FileSignature, VerdictCache, digest, file_signatures, listed_files
from bench_assets.storage.store import images_store
from bench_assets.storage.warehouse import Warehouse, open_warehouse

IMAGES_TABLE = "images"
FAILURES_TABLE = "generation_failures"
RECORDED_PROMPTS_TABLE = "prompts"  # the suite as the last leaderboard refresh recorded it

FAILURE_SCHEMA = {
    "model": pl.Utf8,
    "category": pl.Utf8,
    "stage": pl.Utf8,
    "prompt_id": pl.Utf8,
    "image_index": pl.Int64,
    "seed": pl.Int64,
    "error": pl.Utf8,
    "failed_at": pl.Utf8,
}


@dataclass
class PartitionStatus:
    model: str
    category: str
    state: str
    expected_images: int
    images: int = 0
    failed_images: int = 0
    error: str | None = None
    metrics: dict[str, str] = field(default_factory=dict)  # metric -> "done" | "missing" | "partial"
    # The image store folders whose files the verdict compared with the manifest: what the verdict cache
    # watches (``status_cache``). Empty: the verdict came before any look at the disk; None: the manifest
    # names its images by old absolute paths (nothing to watch: such a verdict is never kept).
    image_folders: tuple[str, ...] | None = field(default=(), compare=False, repr=False)

    def verdict(self) -> dict[str, Any]:
        """What the verdict cache keeps (everything but ``image_folders``, which it keeps as signatures)."""
        return {"model": self.model, "category": self.category, "state": self.state,
                "expected_images": self.expected_images, "images": self.images,
                "failed_images": self.failed_images, "error": self.error, "metrics": dict(self.metrics)}


def _rows(warehouse: Warehouse, table: str, model: str, category: str) -> pl.DataFrame:
    frame = warehouse.read_partition(table, model, category)
    return frame if frame is not None else pl.DataFrame()


def applicable_prompts(metrics: Sequence[Metric], prompts: Sequence[Prompt]) -> dict[str, frozenset[str]]:
    """metric name -> ids of the prompts it can score: asked once per prompt, not once per recorded image."""
    by_id = {p.id: p for p in prompts}
    return {m.name: frozenset(i for i, p in by_id.items() if m.applies_to(p)) for m in metrics}


RecordedPrompts = Mapping[str, tuple[str, str | None]]  # prompt id -> (text, negative prompt) as last recorded


def recorded_prompts(warehouse: Warehouse) -> dict[str, tuple[str, str | None]]:
    """The prompts the last benchmark run recorded (empty when no run has refreshed the leaderboard)."""
    table = warehouse.read_table(RECORDED_PROMPTS_TABLE)
    if table.is_empty():
        return {}
    return {row["prompt_id"]: (row["prompt"], row["negative_prompt"] or None)
            for row in table.select("prompt_id", "prompt", "negative_prompt").iter_rows(named=True)}


def changed_prompt_ids(recorded: RecordedPrompts, prompts: Iterable[Prompt]) -> list[str]:
    """Ids of ``prompts`` the last run recorded with another text or negative prompt (new prompts are not here)."""
    return [p.id for p in prompts if p.id in recorded and recorded[p.id] != (p.prompt, p.negative_prompt or None)]


def edited_prompts(manifest: pl.DataFrame, prompts: Sequence[Prompt]) -> list[str]:
    """Ids of ``prompts`` whose recorded images were drawn from another text (each PNG records its prompt's
    ``text_hash``; images made before that was recorded count as current)."""
    if "prompt_hash" not in manifest.columns:
        return []
    current = {p.id: p.text_hash for p in prompts}
    drawn = manifest.select("prompt_id", "prompt_hash").unique().filter(pl.col("prompt_hash").is_not_null())
    return sorted({pid for pid, h in drawn.iter_rows() if pid in current and current[pid] != h})


Scored = dict[tuple[str, str], pl.DataFrame]  # (model, category) -> its current rows' (prompt_id, image)
SCORED = {"prompt_id": pl.Utf8, "image": pl.Utf8}  # image: the row's image_sha256, null for a per-prompt metric
PART = "__status_partition"  # the row's partition, by position in the list read


def scored_images(warehouse: Warehouse, metric: Metric, partitions: Sequence[tuple[str, str]]) -> Scored:
    """What ``metric`` has current rows for, in each of ``partitions`` whose file has rows (absent: no rows).

    Each partition file is read once and the rows filtered once for all of
    them (``suite_statuses`` passes one model's categories), rather than once
    per model × category × metric. A per-prompt metric's rows have a null image.
    """
    image = pl.col("image_sha256") if metric.unit == "image" else pl.lit(None, pl.Utf8)
    found = _scanned(warehouse, metric, partitions)
    if found is None:
        found = [(owner, warehouse.read_partition(metric.table, *owner)) for owner in partitions]
    frames = [frame for _, frame in found if frame is not None and not frame.is_empty()]
    owners = [owner for owner, frame in found if frame is not None and not frame.is_empty()]
    if not frames:
        return {}
    table = pl.concat(frames, how="diagonal_relaxed").with_columns(
        pl.Series(PART, np.repeat(np.arange(len(frames)), [f.height for f in frames])))
    current = table.filter(
        (pl.col("metric_version") == metric.version) & (pl.col("scorer") == metric.scorer_id)
    ).select(PART, pl.col("prompt_id").cast(pl.Utf8), image.cast(pl.Utf8).alias("image"))
    scored: Scored = {owner: pl.DataFrame(schema=SCORED) for owner in owners}
    for (index,), part in current.partition_by(PART, as_dict=True).items():
        scored[owners[index]] = part.drop(PART)
    return scored


def _scanned(warehouse: Warehouse, metric: Metric,
             partitions: Sequence[tuple[str, str]]) -> list[tuple[tuple[str, str], pl.DataFrame]] | None:
    """The partitions' files of a local warehouse read in one scan, only the columns the check reads;
    None where that is not possible (an object store, a file of another shape or damaged: each file is
    then read on its own, and a damaged one set aside as every reader does)."""
    local = {owner: warehouse.partition_file(metric.table, *owner) for owner in partitions}
    if any(path is None for path in local.values()):
        return None
    files = {owner: path for owner, path in local.items() if path.is_file()}  # no file: no rows, as when read
    if len(files) < 2:
        return None
    columns = ["prompt_id", "metric_version", "scorer", *(["image_sha256"] if metric.unit == "image" else [])]
    try:
        scanned = pl.scan_parquet(list(files.values()), include_file_paths=PART).select(*columns, PART).collect()
    except Exception:  # noqa: BLE001 - polars raises several kinds for a file it cannot read
        return None
    by_file = {str(path): owner for owner, path in files.items()}
    return [(by_file[name], rows.drop(PART)) for (name,), rows in scanned.partition_by(PART, as_dict=True).items()]


def _metric_state(metric: Metric, have: pl.DataFrame | None, images: pl.DataFrame, applicable: Collection[str]) -> str:
    """"done", "missing" or "partial": whether ``have`` (``scored_images``' rows; None: no rows at all) holds
    every (prompt, image) the metric needs, judged with one anti-join rather than a set per image.

    ``images``: the partition's (prompt_id, sha256) rows; ``applicable``: the prompts the metric applies to.
    """
    wanted = images.filter(pl.col("prompt_id").is_in(pl.Series(list(applicable), dtype=pl.Utf8)))
    if metric.unit == "image":
        needed, on = wanted.select("prompt_id", pl.col("sha256").alias("image")).unique(), ["prompt_id", "image"]
    else:  # a set metric needs a row per prompt with two images or more
        needed, on = wanted.group_by("prompt_id").len().filter(pl.col("len") >= 2).select("prompt_id"), ["prompt_id"]
        have = None if have is None else have.filter(pl.col("image").is_null())
    if needed.is_empty():
        return "done"
    if have is None:
        return "missing"
    return "done" if needed.join(have.select(on), on=on, how="anti").is_empty() else "partial"


def images_made_from(warehouse: Warehouse, model: str, category: str) -> str | None:
    """The model fingerprint the partition's current images were made from, if any."""
    manifest = warehouse.read_partition(IMAGES_TABLE, model, category)
    if manifest is None or manifest.is_empty():
        return None
    return manifest["model_fingerprint"][0]


def disk_problems(warehouse: Warehouse, model: str, category: str, *, images: Store) -> tuple[int, str]:
    """How many images the partition records, and "" when they are all in the image store as recorded, else
    what is wrong: the sensor's disk sweep counts the first against its per-tick budget."""
    manifest = warehouse.read_partition(IMAGES_TABLE, model, category)
    if manifest is None or manifest.is_empty():
        return 0, ""
    return manifest.height, _on_disk_problems(manifest, images)


FILE_CHECK_COLUMNS = ("path", "size", "mtime_ns", "etag", "sha256")  # what ``check_manifest_files`` reads of a row


def _on_disk_problems(manifest: pl.DataFrame, images: Store) -> str:
    """``describe_problems`` of the manifest's files, handing over only the columns the check reads.

    The files whose listed size, mtime and tag are the recorded ones are fine without a look (what
    ``check_manifest_files`` decides first, per row); that comparison is made here for the whole
    partition at once (a join with the folders' listing), and only the other rows, in their order, go
    to ``check_manifest_files``: the same verdict, without a Python call per unchanged image.
    """
    frame = manifest.select([c for c in FILE_CHECK_COLUMNS if c in manifest.columns])
    suspect = _not_as_listed(frame, images)
    return describe_problems(check_manifest_files(suspect.to_dicts(), images)) if suspect.height else ""


LISTED = {"key": pl.Utf8, "listed_size": pl.Int64, "listed_mtime_ns": pl.Int64, "listed_etag": pl.Utf8}


def listing_frame(store: Store, folders: Sequence[str]) -> pl.DataFrame:
    """``LISTED`` of every object under ``folders`` (one listing each, as ``check_manifest_files`` makes):
    a local folder's walk put in columns as it goes (no object per file), another store's ``infos``."""
    rows: list[tuple] = []
    walk = getattr(store, "walk", None)
    for folder in folders:
        if walk is not None:
            rows.extend((key, size, mtime, "") for key, size, mtime in walk(folder))
        else:
            rows.extend((key, i.size, i.mtime_ns, i.etag) for key, i in store.infos(folder).items())
    return pl.DataFrame(rows, schema=LISTED, orient="row")


def _image_keys(frame: pl.DataFrame) -> pl.Series | None:
    """The manifest's image keys, or None if they are old absolute paths (``recorded_image_key`` resolves
    those one by one)."""
    paths = frame["path"].cast(pl.Utf8).str.replace_all("\\", "/", literal=True)
    if paths.str.contains(r"^/|^[A-Za-z]:/|://").any():
        return None
    return paths.str.strip_chars("/")


def _key_folders(keys: pl.Series) -> pl.Series:
    return pl.select(pl.when(keys.str.contains("/")).then(keys.str.replace(r"/[^/]*$", ""))
                     .otherwise(pl.lit(""))).to_series()


def image_folders(manifest: pl.DataFrame) -> tuple[str, ...] | None:
    """The image store folders the manifest's images are in (None: old absolute paths)."""
    keys = _image_keys(manifest) if manifest.height else pl.Series([], dtype=pl.Utf8)
    return None if keys is None else tuple(sorted(set(_key_folders(keys).to_list())))


def _not_as_listed(frame: pl.DataFrame, images: Store) -> pl.DataFrame:
    """The rows whose file the listing shows missing or with another size, mtime or tag (all rows if their
    paths are old absolute ones, which ``recorded_image_key`` resolves one by one)."""
    if frame.height == 0 or not {"size", "mtime_ns"} <= set(frame.columns):
        return frame
    keys = _image_keys(frame)
    if keys is None:
        return frame
    listing = listing_frame(images, sorted(set(_key_folders(keys).to_list())))
    etag = pl.col("etag").cast(pl.Utf8).fill_null("") if "etag" in frame.columns else pl.lit("")
    joined = frame.with_columns(keys.alias("key")).join(listing, on="key", how="left", maintain_order="left")
    same = ((pl.col("size").cast(pl.Int64) == pl.col("listed_size"))
            & (pl.col("mtime_ns").cast(pl.Int64) == pl.col("listed_mtime_ns")) & (etag == pl.col("listed_etag")))
    return joined.filter(~same.fill_null(False)).select(frame.columns)


def partition_status(
    warehouse: Warehouse,
    model: str,
    category: str,
    prompts: Sequence[Prompt],
    settings: GenerationSettings,
    metrics: Sequence[Metric],
    model_fingerprint: str | None = None,
    *,
    images: Store,
    applicable: Mapping[str, Collection[str]] | None = None,  # ``applicable_prompts`` of the category, if known
    scored: Mapping[str, Scored] | None = None,  # metric name -> ``scored_images`` of a set holding this partition
) -> PartitionStatus:
    expected = len(prompts) * settings.images_per_prompt
    status = PartitionStatus(model, category, "missing", expected)
    failures = _rows(warehouse, FAILURES_TABLE, model, category)
    if not failures.is_empty():
        load = failures.filter(pl.col("stage") == "load")
        if not load.is_empty():
            status.state, status.error = "failed", load["error"][0]
            return status
        status.failed_images = failures.height
    manifest = _rows(warehouse, IMAGES_TABLE, model, category)
    if manifest.is_empty():
        status.state = "failed" if status.failed_images else "missing"
        return status
    wanted = set_fields(settings)
    recorded = json.loads(manifest["settings"][0])
    if (model_fingerprint and manifest["model_fingerprint"][0] != model_fingerprint) or any(
        recorded.get(k) != v for k, v in wanted.items()
    ):
        status.state, status.images = "stale", manifest.height
        return status
    redrawn = edited_prompts(manifest, prompts)
    status.image_folders = image_folders(manifest)
    on_disk = _on_disk_problems(manifest, images) or (
        f"prompt(s) edited since their images were made: {', '.join(redrawn)}" if redrawn else "")
    if on_disk:
        status.state, status.images, status.error = "stale", manifest.height, on_disk
        return status
    ids = {p.id for p in prompts}
    manifest = manifest.filter(
        pl.col("prompt_id").is_in(list(ids)) & (pl.col("image_index") < settings.images_per_prompt)
    )
    status.images = manifest.height
    if applicable is None:
        applicable = applicable_prompts(metrics, prompts)
    pairs = manifest.select(pl.col("prompt_id").cast(pl.Utf8), pl.col("sha256").cast(pl.Utf8))
    for metric in metrics:
        have = (scored[metric.name] if scored is not None
                else scored_images(warehouse, metric, [(model, category)])).get((model, category))
        status.metrics[metric.name] = _metric_state(metric, have, pairs, applicable[metric.name])
    if status.failed_images:
        status.state = "failed"
    elif status.images < expected or any(s != "done" for s in status.metrics.values()):
        status.state = "partial"
    else:
        status.state = "done"
    return status


@dataclass(frozen=True)
class StatusInputs:
    """What every partition's status is judged against: the results, the suite, the metrics and the settings.

    ``bench status`` reads them from the data directory (``from_data_dir``);
    the nightly schedule builds them from its Dagster resources, which were
    built from the same files.
    """

    warehouse: Warehouse
    images: Store
    suite: PromptSuite
    metrics: Sequence[Metric]
    defaults: GenerationSettings  # before the suite's and the model's own settings (``model_settings``)
    cache: Path  # where model fingerprints are cached
    _categories: dict[str, tuple[list[Prompt], dict[str, frozenset[str]], str]] = field(
        default_factory=dict, compare=False, repr=False)

    def category_facts(self, category: str) -> tuple[list[Prompt], dict[str, frozenset[str]], str]:
        """The category's prompts, the prompts each metric applies to, and the digest of both (part of each
        verdict's key): worked out once per inputs (a metric step keeps a verdict per partition it writes)."""
        if category not in self._categories:
            prompts = self.suite.in_category(category)
            applicable = applicable_prompts(self.metrics, prompts)
            metrics = [(m.name, m.version, m.scorer_id, m.unit, m.table) for m in self.metrics]
            self._categories[category] = (prompts, applicable, digest([
                self.warehouse.store.url, self.images.url, metrics,
                sorted((p.id, p.text_hash) for p in prompts),
                {name: sorted(ids) for name, ids in applicable.items()},
            ]))
        return self._categories[category]

    @classmethod
    def from_data_dir(cls, paths: DataPaths) -> "StatusInputs":
        config = load_config(paths)
        return cls(open_warehouse(paths, config), images_store(paths, config), load_suite(paths.default_suite()),
                   configured_metrics(metric_options(config)), generation_defaults(config), paths.cache)


def suite_statuses(inputs: StatusInputs, entries: Iterable[ModelEntry], skip: Collection[tuple[str, str]] = (),
                   *, verify: bool = False) -> Iterator[tuple[ModelEntry, list[PartitionStatus]]]:
    """Each model with its status in every category of the suite, model by model (a generator: ``bench status``
    prints each model as soon as it is judged).

    ``skip`` holds (model, category) pairs not to judge: the schedule's
    partitions already queued or running.

    A partition whose inputs did not change since it was last judged (by a past call, or by the metric asset
    that last wrote it: :func:`keep_partition_verdicts`) is not judged again: its verdict comes from the
    verdict cache (``status_cache``), checked against one listing per warehouse table and one look at each of
    its image folders, so an unchanged data directory costs no Parquet read and no ``stat`` per image. Without
    ``verify`` an image rewritten in place (same folder entries) is not noticed; with it (the nightly schedule,
    ``bench status --verify``) every recorded image of a kept verdict is compared with the manifest as well,
    as a judged partition's always are.
    """
    verdicts = _Verdicts(inputs)
    verdicts.files = listed_files(inputs.warehouse.store, verdicts.tables)  # after the cache noted its start time
    for entry in entries:
        categories = [c for c in inputs.suite.categories if (entry.key, c) not in skip]
        yield entry, verdicts.statuses(entry, categories, verify)
    verdicts.forget_gone()


def keep_partition_verdicts(inputs: StatusInputs, entry: ModelEntry,
                            categories: Sequence[str]) -> list[PartitionStatus]:
    """Judge ``entry``'s ``categories`` now and keep their verdicts: what a writer calls after writing a partition,
    so that the next ``bench status`` reads the verdict rather than every image and score row of it.

    Only the partitions' own files are looked at (one ``info`` each), never a listing of every partition.
    """
    verdicts = _Verdicts(inputs)
    keys = [Warehouse.partition_key(table, entry.key, c) for c in categories for table in verdicts.tables]
    verdicts.files = file_signatures(inputs.warehouse.store, keys)
    return verdicts.statuses(entry, categories, verify=False)


class _Verdicts:
    """The verdict cache as ``suite_statuses`` uses it: a partition's key is everything its status is judged
    from except its images (watched through their folders by ``VerdictCache``).

    ``files``: the signatures of the warehouse files the call may judge, set by the caller once the cache has
    noted its start time (a whole listing, or one partition's files)."""

    def __init__(self, inputs: StatusInputs) -> None:
        self.inputs = inputs
        self.cache = VerdictCache(inputs.cache, inputs.images, inputs.warehouse.store)
        self.tables = [IMAGES_TABLE, FAILURES_TABLE, *dict.fromkeys(m.table for m in inputs.metrics)]
        self.files: dict[str, FileSignature] = {}

    def statuses(self, entry: ModelEntry, categories: Sequence[str], verify: bool) -> list[PartitionStatus]:
        """The model's status in each of ``categories``: kept verdicts where they still hold, the others judged
        (one model's score rows at a time: memory stays bounded however many models there are)."""
        inputs = self.inputs
        model_fp = None if entry.error else fingerprint(entry, inputs.cache)
        settings = model_settings(inputs.defaults, inputs.suite.generation, entry)
        keys = {c: self.key(entry.key, c, model_fp, settings) for c in categories}
        kept = {c: self.reuse(entry.key, c, keys[c], verify) for c in categories}
        judged = [c for c in categories if kept[c] is None]
        racy = {c: self.cache.racy_digests(self._files(entry.key, c)) for c in judged}  # hashed before judging
        scored = {metric.name: scored_images(inputs.warehouse, metric, [(entry.key, c) for c in judged])
                  for metric in inputs.metrics}
        statuses = []
        for category in categories:
            status = kept[category]
            if status is None:
                prompts, applicable, _ = inputs.category_facts(category)
                status = partition_status(inputs.warehouse, entry.key, category, prompts, settings, inputs.metrics,
                                          model_fp, images=inputs.images, applicable=applicable, scored=scored)
                self.record(entry.key, category, keys[category], status, racy[category])
            statuses.append(status)
        return statuses

    def _files(self, model: str, category: str) -> dict[str, FileSignature]:
        found = (Warehouse.partition_key(table, model, category) for table in self.tables)
        return {key: self.files[key] for key in found if key in self.files}

    def key(self, model: str, category: str, model_fp: str | None, settings: GenerationSettings) -> str:
        files = [self.files.get(Warehouse.partition_key(table, model, category)) for table in self.tables]
        return digest([model, category, model_fp, set_fields(settings), self.inputs.category_facts(category)[2], files])

    def reuse(self, model: str, category: str, key: str, verify: bool) -> PartitionStatus | None:
        """The kept verdict, if its inputs and image folders are unchanged (and, with ``verify``, its images
        still as recorded; a verdict that found them changed is judged again). None: judge the partition."""
        found = self.cache.lookup(model, category, key)
        if found is None:
            return None
        status = PartitionStatus(**found[0], image_folders=found[1])
        if not verify or not status.image_folders:
            return status
        if status.state == "stale":
            return None
        racy = self.cache.racy_digests(self._files(model, category))  # hashed before the manifest is read
        count, problem = disk_problems(self.inputs.warehouse, model, category, images=self.inputs.images)
        if not problem:
            return status
        stale = PartitionStatus(model, category, "stale", status.expected_images, images=count,
                                failed_images=status.failed_images, error=problem, image_folders=status.image_folders)
        self.record(model, category, key, stale, racy)
        return stale

    def record(self, model: str, category: str, key: str, status: PartitionStatus,
               racy: Mapping[str, list] | None) -> None:
        self.cache.record(model, category, key, status.verdict(), status.image_folders, racy)

    def forget_gone(self) -> None:
        """Drop the verdicts of partitions no warehouse file names any more (after a whole listing only)."""
        partitions = (Warehouse.partition_of(key) for key in self.files)
        self.cache.forget_except({(model, category) for _, model, category in filter(None, partitions)})


STATUS_HEADER = f"{'model':<28} {'category':<12} {'state':<8} {'images':>9} {'failed':>6}  metrics / error"


def status_lines(status: PartitionStatus, width: int = 120) -> list[str]:
    """One partition's row for ``bench status``, wrapped to ``width`` columns.

    Metrics that are done are counted, not listed, so a healthy row stays
    short; an error wraps onto indented lines rather than being cut.
    """
    not_done = [f"{name}:{state}" for name, state in status.metrics.items() if state != "done"]
    if status.error:
        detail = status.error
    elif not_done:
        detail = " ".join(not_done)
    else:
        detail = f"all {len(status.metrics)} metrics done" if status.metrics else ""
    lead = (f"{status.model:<28} {status.category:<12} {status.state:<8} "
            f"{status.images:>4}/{status.expected_images:<4} {status.failed_images:>6}  ")
    indent = " " * len(lead)
    return textwrap.wrap(detail, width=width, initial_indent=lead, subsequent_indent=indent,
                         break_on_hyphens=False) or [lead.rstrip()]
