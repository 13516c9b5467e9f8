"""A data directory at a real team's size, written by the project's own code (issue 21's benchmark).

What ``bench run`` would have left after generating and scoring every model,
without generating or scoring anything: a prompt suite (``data/prompts/default.jsonl``),
a ``data/config.yaml`` whose images-per-prompt matches, one tiny
``.safetensors`` file per model in ``data/models/`` (so the sensor and
``bench status`` see real entries, fingerprinted as always), the image tree,
and per (model, category) the partitions the assets write: the ``images``
manifest, ``generation_failures`` (empty), and one score table per metric
with the columns that metric stores, rows marked with the configured
scorer's id and version so that ``bench status`` finds them current. Each
model is registered in ``model_versions``.

Images are 8×8 PNGs with a provenance chunk, one per (prompt, image index),
written once under ``data/.cache/scale-templates`` and *hard-linked* into
every model's folder: building 4 million image entries costs directory
entries, not 4 million files' worth of bytes or inodes. The manifest records
each link's true size, mtime and sha256 (links share them), so every reader
takes the files as recorded, as after a real run. An added model
(:func:`add_model` with ``own_images``) gets its own PNGs, so its images
are new content (the report makes their thumbnails, as for a real new model).

Partitions are built as polars columns, not row dicts, so that 44 million
score rows (100 models × 10,000 prompts × 4 images × 11 metrics) take
minutes, not hours; memory stays one partition at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from bench_assets.core.config import generation_defaults, load_config
from bench_assets.core.naming import ImageName, image_key
from bench_assets.core.paths import DataPaths
from bench_assets.core.settings import GenerationSettings, set_fingerprint
from bench_assets.metrics.geneval import TASKS as GENEVAL_TASKS
from bench_assets.generation.image_set import MANIFEST_COLUMNS, encode_png
from bench_assets.metrics.base import Metric
from bench_assets.metrics.registry import METRICS, configured_metrics, metric_options
from bench_assets.metrics.text_rendering import compare_text
from bench_assets.models.registry import ModelEntry, fingerprint, model_settings, scan_models
from bench_assets.prompts.prompt import Prompt, PromptSuite
from bench_assets.prompts.suites import load_suite
from bench_assets.storage.status import FAILURE_SCHEMA, FAILURES_TABLE, IMAGES_TABLE
from bench_assets.storage.versions import VersionStore

# 13 categories, as a full suite has (GenEval's six tasks, OneIG's groups, a team's own).
CATEGORY_NAMES = ("object", "colour", "counting", "position", "text", "human", "anime", "scene", "style",
                  "attribute", "spatial", "composition", "long")
IMAGE_SIZE = 8
DTYPE = "fp16"
SCORED_AT = "2026-12-05T00:00:00+00:00"
TEMPLATES = ".cache/scale-templates"


@dataclass(frozen=True)
class ScaleSpec:
    """How big the synthetic data directory is."""

    models: int
    prompts: int  # in all, spread over the categories
    images_per_prompt: int = 4
    categories: int = len(CATEGORY_NAMES)
    metrics: int = len(METRICS)  # how many score tables, in the registry's order
    images: bool = True  # False: no image tree (every recorded image then reads as missing on disk)

    def __post_init__(self) -> None:
        if not 1 <= self.categories <= len(CATEGORY_NAMES):
            raise ValueError(f"categories must be 1..{len(CATEGORY_NAMES)}, got {self.categories}")
        if not 1 <= self.metrics <= len(METRICS):
            raise ValueError(f"metrics must be 1..{len(METRICS)}, got {self.metrics}")
        if self.models < 2 or self.prompts < self.categories or self.images_per_prompt < 1:
            raise ValueError("need at least 2 models, a prompt per category and an image per prompt")

    @property
    def model_names(self) -> list[str]:
        return [model_name(i) for i in range(self.models)]

    @property
    def category_names(self) -> list[str]:
        return list(CATEGORY_NAMES[: self.categories])

    @property
    def metric_names(self) -> list[str]:
        return list(METRICS)[: self.metrics]


def model_name(index: int) -> str:
    return f"model-{index:03d}"


# -- the prompt suite, the config, the model files -------------------------------------------------


def prompt_record(i: int, category: str) -> dict:
    """One suite line whose metadata every metric reads (objects, text, questions), so all of them apply."""
    objects = [{"name": "dog", "count": 1 + i % 3}]
    questions = [{"id": 1, "question": "Is there a dog?", "parents": []},
                 {"id": 2, "question": f"Are there {1 + i % 3} dogs?", "parents": [1]}]
    return {"id": f"{category[:3]}-{i:05d}", "category": category, "prompt": f"a {category} scene number {i}",
            "difficulty": "easy", "metadata": {"objects": objects, "text": f"SIGN {i}", "questions": questions}}


def write_suite(paths: DataPaths, spec: ScaleSpec) -> PromptSuite:
    names = spec.category_names
    lines = [json.dumps(prompt_record(i, names[i % len(names)])) for i in range(spec.prompts)]
    paths.prompts.mkdir(parents=True, exist_ok=True)
    (paths.prompts / "default.jsonl").write_text("\n".join(lines) + "\n")
    return load_suite(paths.default_suite())


def write_config(paths: DataPaths, spec: ScaleSpec) -> None:
    """Generation settings that match the tree (so partitions are complete), compute on the CPU."""
    text = (f"generation: {{images_per_prompt: {spec.images_per_prompt}, width: {IMAGE_SIZE}, "
            f"height: {IMAGE_SIZE}, steps: 2}}\ncompute: {{device: cpu}}\n")
    (paths.root / "config.yaml").write_text(text)


def write_model_file(paths: DataPaths, index: int) -> Path:
    """A tiny single-file checkpoint (distinct bytes per model), dated in the past so it is settled."""
    from safetensors.numpy import save_file  # only the benchmark writes checkpoints

    path = paths.models / f"{model_name(index)}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"weight": np.full(4, index, dtype=np.float32)}, str(path))
    old = path.stat().st_mtime - 3600
    os.utime(path, (old, old))
    return path


# -- images ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFile:
    """One PNG on disk and what the manifest records of it."""

    path: Path
    sha256: str
    size: int
    mtime_ns: int


def write_png(path: Path, seed: int, meta: dict) -> ImageFile:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    data = encode_png(pixels, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stat = path.stat()
    return ImageFile(path, hashlib.sha256(data).hexdigest(), stat.st_size, stat.st_mtime_ns)


def image_meta(settings: GenerationSettings, model_fp: str) -> dict:
    return {"set_fingerprint": set_fingerprint(model_fp, settings, DTYPE), "model_fingerprint": model_fp,
            "settings": settings.as_dict(), "seconds": 0.5, "device": "cpu", "dtype": DTYPE,
            "width": IMAGE_SIZE, "height": IMAGE_SIZE, "created_at": SCORED_AT}


def write_templates(folder: Path, suite: PromptSuite, images: int, meta: dict, salt: int) -> dict[tuple, ImageFile]:
    """One PNG per (prompt, image index): ``salt`` makes another set of contents."""
    return {(p.id, k): write_png(folder / f"{p.id}_i{k}.png", hash((salt, i, k)) & 0xFFFFFFFF, meta)
            for i, p in enumerate(suite.prompts) for k in range(images)}


def link_images(images_root: Path, keys: list[str], files: list[ImageFile]) -> None:
    """Each key a hard link to its file (a copy where links are not possible)."""
    import shutil

    for key, file in zip(keys, files):
        target = images_root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(file.path, target)
        except OSError:
            shutil.copy2(file.path, target)


# -- one partition's tables ------------------------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    """What every table of one (model, category) is built from."""

    model: str
    index: int  # the model's number: its scores get an offset, so models differ
    category: str
    prompts: list[Prompt]
    images: int
    files: dict[tuple, ImageFile]
    meta: dict

    @property
    def keys(self) -> list[str]:
        return [image_key(self.model, self.category, ImageName(p.id, k, k)) for p in self.prompts
                for k in range(self.images)]

    @property
    def image_files(self) -> list[ImageFile]:
        return [self.files[(p.id, k)] for p in self.prompts for k in range(self.images)]


def manifest_frame(part: Partition) -> pl.DataFrame:
    files, n = part.image_files, len(part.prompts) * part.images
    meta = part.meta
    columns = {
        "model": [part.model] * n, "category": [part.category] * n,
        "prompt_id": [p.id for p in part.prompts for _ in range(part.images)],
        "image_index": [k for _ in part.prompts for k in range(part.images)],
        "seed": [k for _ in part.prompts for k in range(part.images)], "path": part.keys,
        "sha256": [f.sha256 for f in files], "size": [f.size for f in files],
        "mtime_ns": [f.mtime_ns for f in files], "etag": [""] * n,
        "set_fingerprint": [meta["set_fingerprint"]] * n, "model_fingerprint": [meta["model_fingerprint"]] * n,
        "settings": [json.dumps(meta["settings"], sort_keys=True)] * n, "seconds": [meta["seconds"]] * n,
        "gpu_seconds": [meta["seconds"] * (1 + part.index % 5)] * n, "device": ["cpu"] * n, "dtype": [DTYPE] * n,
        "torch_version": ["2.5.1"] * n, "diffusers_version": ["0.31.0"] * n, "created_at": [SCORED_AT] * n,
        "width": [IMAGE_SIZE] * n, "height": [IMAGE_SIZE] * n,
        "prompt_hash": [p.text_hash for p in part.prompts for _ in range(part.images)],
    }
    return pl.DataFrame({c: columns[c] for c in MANIFEST_COLUMNS})


def _tifa_answers(correct: bool) -> str:
    return json.dumps([{"question": "Is there a dog?", "choices": ["yes", "no"], "answer": "yes",
                        "predicted": "yes" if correct else "no", "correct": correct}])


def _text_columns(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """OCR read the sign right or wrong: every column ``compare_text`` gives, for both outcomes."""
    right, wrong = compare_text("SIGN 1", "SIGN 1"), compare_text("SIGM 1", "SIGN 1")
    read = pl.Series(rng.random(frame.height) < 0.5)
    return frame.with_columns(pl.when(read).then(pl.lit(right[c])).otherwise(pl.lit(wrong[c])).alias(c)
                              for c in right)


# What each metric stores beside its value (as the real metric's rows have it): one entry per metric
# with extra columns. Each takes the partition's rows (value, prompt_id, ...) and adds them.
EXTRA_COLUMNS: dict[str, Callable[[pl.DataFrame, np.random.Generator], pl.DataFrame]] = {
    "geneval": lambda f, rng: f.with_columns(
        (pl.col("value") > 0.5).cast(pl.Float64).alias("value"),
        pl.Series("task", [GENEVAL_TASKS[i % len(GENEVAL_TASKS)] for i in range(f.height)]),
        pl.when(pl.col("value") > 0.5).then(pl.lit("")).otherwise(pl.lit("expected 2 dog, found 1")).alias("reason")),
    "tifa": lambda f, rng: f.with_columns(
        pl.lit(2).alias("n_questions"),
        pl.when(pl.col("value") >= 0.5).then(pl.lit(_tifa_answers(True))).otherwise(pl.lit(_tifa_answers(False)))
        .alias("answers")),
    "dsg": lambda f, rng: f.with_columns(
        pl.lit(2).alias("n_questions"), (pl.col("value") * 2).round().cast(pl.Int64).alias("n_passed"),
        pl.when(pl.col("value") >= 0.5).then(pl.lit(_tifa_answers(True))).otherwise(pl.lit(_tifa_answers(False)))
        .alias("answers")),
    "text_rendering": _text_columns,
    "vqascore": lambda f, rng: f.with_columns(
        pl.format('Does this figure show "{}"?', pl.col("prompt_id")).alias("question")),
}


def score_frame(part: Partition, metric: Metric, rng: np.random.Generator) -> pl.DataFrame:
    """The metric's rows for the partition: one per image (or per prompt), marked current."""
    per_image = metric.unit == "image"
    files = part.image_files if per_image else [None] * len(part.prompts)
    ids = [p.id for p in part.prompts for _ in range(part.images)] if per_image else [p.id for p in part.prompts]
    n = len(ids)
    indices = [k for _ in part.prompts for k in range(part.images)] if per_image else [None] * n
    frame = pl.DataFrame({
        "model": [part.model] * n, "category": [part.category] * n, "prompt_id": ids,
        "image_index": pl.Series(indices, dtype=pl.Int64), "seed": pl.Series(indices, dtype=pl.Int64),
        "image_path": pl.Series(part.keys if per_image else [None] * n, dtype=pl.Utf8),
        "image_sha256": pl.Series([f.sha256 if f else None for f in files], dtype=pl.Utf8),
        "input_hash": [f.sha256 if f else pid for f, pid in zip(files, ids)],
        "metric": [metric.name] * n, "metric_version": [metric.version] * n, "scorer": [metric.scorer_id] * n,
        "scored_at": [SCORED_AT] * n, "gpu_seconds": [0.01] * n,
        "value": np.clip(rng.normal(0.5 + 0.01 * part.index, 0.2, n), 0, 1),
    })
    if not per_image:
        frame = frame.with_columns(pl.lit(part.images).alias("n_images"))
    extra = EXTRA_COLUMNS.get(metric.name)
    return extra(frame, rng) if extra else frame


def write_partition_tables(store: VersionStore, part: Partition, metrics: list[Metric],
                           rng: np.random.Generator) -> int:
    """Every table's partition, through ``Warehouse.write_partition`` as the assets write them."""
    wh = store.warehouse
    rows = wh.write_partition(IMAGES_TABLE, part.model, part.category, manifest_frame(part))
    wh.write_partition(FAILURES_TABLE, part.model, part.category, [], schema=FAILURE_SCHEMA)
    for metric in metrics:
        rows += wh.write_partition(metric.table, part.model, part.category, score_frame(part, metric, rng))
    return rows


# -- the whole data directory ----------------------------------------------------------------------


@dataclass
class ScaleData:
    """The data directory being built, and what every model shares."""

    paths: DataPaths
    spec: ScaleSpec
    suite: PromptSuite
    metrics: list[Metric]
    shared: dict[tuple, ImageFile] | None = None  # the templates every model links to

    @property
    def store(self) -> VersionStore:
        return VersionStore(self.paths.root)

    def entry(self, index: int) -> ModelEntry:
        return next(e for e in scan_models(self.paths.models) if e.key == model_name(index))

    def settings(self, entry: ModelEntry) -> GenerationSettings:
        return model_settings(generation_defaults(load_config(self.paths)), self.suite.generation, entry)


def open_scale_data(paths: DataPaths, spec: ScaleSpec) -> ScaleData:
    """Suite, config and the metrics as configured (their scorer ids and versions mark the rows)."""
    suite = write_suite(paths, spec) if not paths.default_suite().is_file() else load_suite(paths.default_suite())
    if not (paths.root / "config.yaml").is_file():
        write_config(paths, spec)
    chosen = set(spec.metric_names)
    metrics = [m for m in configured_metrics(metric_options(load_config(paths))) if m.name in chosen]
    return ScaleData(paths, spec, suite, metrics)


def add_model(data: ScaleData, index: int, own_images: bool = False) -> int:
    """One model: its checkpoint, version, image links and every table's partitions; the rows written."""
    write_model_file(data.paths, index)
    entry = data.entry(index)
    model_fp = fingerprint(entry, data.paths.cache)
    data.store.register(entry.key, model_fp, str(entry.path))
    meta = image_meta(data.settings(entry), model_fp)
    folder, images = data.paths.root / TEMPLATES, data.spec.images_per_prompt
    if own_images:
        files = write_templates(folder / entry.key, data.suite, images, meta, salt=index)
    else:
        if data.shared is None:
            data.shared = write_templates(folder / "shared", data.suite, images, meta, salt=-1)
        files = data.shared
    rng, rows = np.random.default_rng(index), 0
    for category in data.spec.category_names:
        part = Partition(entry.key, index, category, data.suite.in_category(category), data.spec.images_per_prompt,
                         files, meta)
        if data.spec.images:
            link_images(data.paths.images, part.keys, part.image_files)
        rows += write_partition_tables(data.store, part, data.metrics, rng)
    return rows


def build_data_dir(paths: DataPaths, spec: ScaleSpec, log: Callable[[str], None] = lambda line: None) -> int:
    """The whole data directory for ``spec``; the rows written."""
    data = open_scale_data(paths, spec)
    data.store.warehouse.write_table("prompts", _prompts_table(data.suite))
    rows = 0
    for index in range(spec.models):
        rows += add_model(data, index)
        log(f"  model {index + 1}/{spec.models}: {rows:,} rows so far")
    return rows


def _prompts_table(suite: PromptSuite) -> pl.DataFrame:
    from bench_assets.defs.assets import prompts_frame  # the leaderboard asset's own table (defs imports dagster)

    return prompts_frame(suite)
