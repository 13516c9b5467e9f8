"""What each page of the report shows, as plain JSON-able dicts built from the warehouse.

Everything is read through ``bench_assets.storage``; nothing here knows about
HTML. One payload per page unit, so pages load only what they show:
``overview`` (leaderboard, plots, health), one per ``category`` (the compare
grid: thumbnails and per-image values), one per ``prompt`` (the drill-down:
every value and the reasons a metric stored) and one per ``model``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import polars as pl

from bench_assets.core.objects import Store
from bench_assets.storage.leaderboard import OVERALL
from bench_assets.storage.results import image_keys, item_scores, metric_extras, prompts as read_prompts
from bench_assets.storage.status import FAILURES_TABLE, IMAGES_TABLE
from bench_assets.storage.warehouse import Warehouse

LEADERBOARD_TABLE = "leaderboard"
# The per-metric columns the leaderboard's ``widen`` writes; other ``<metric>_*``
# columns (added later, e.g. rank intervals) are shown generically beside them.
METRIC_FIELDS = ("mean", "ci_low", "ci_high", "n", "rank")
WORST_PROMPTS = 5


@dataclass(frozen=True)
class MetricInfo:
    """What the report needs to know about a metric (from the registry)."""

    name: str
    table: str
    unit: str = "image"  # "image" or "prompt" (a set metric such as diversity)
    higher_is_better: bool = True
    description: str = ""
    # How the drill-down shows a value and its reasons: the metric's own ``value_label`` and
    # ``extra_columns`` (as ``ExtraColumn.as_json`` dicts), so the page needs no table per metric.
    value_label: str = ""
    columns: tuple[dict[str, str], ...] = ()

    @classmethod
    def of(cls, metric: Any) -> "MetricInfo":
        return cls(metric.name, metric.table, metric.unit, metric.higher_is_better, metric.description,
                   metric.value_label, tuple(column.as_json() for column in metric.extra_columns))


@dataclass
class ReportInputs:
    """The warehouse tables the report reads, read once per build."""

    leaderboard: pl.DataFrame
    images: pl.DataFrame
    failures: pl.DataFrame
    prompts: pl.DataFrame
    scores: dict[str, pl.DataFrame]  # metric name -> item scores joined to prompts
    metrics: list[MetricInfo]
    models: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> kind, source

    @classmethod
    def read(cls, warehouse: Warehouse, metrics: Sequence[MetricInfo],
             models: dict[str, dict[str, str]] | None = None) -> "ReportInputs":
        prompt_table = read_prompts(warehouse)
        scores = {m.name: item_scores(warehouse, m.table, prompt_table) for m in metrics}
        return cls(
            leaderboard=warehouse.read_table(LEADERBOARD_TABLE),
            images=warehouse.read_table(IMAGES_TABLE),
            failures=warehouse.read_table(FAILURES_TABLE),
            prompts=prompt_table,
            scores={name: frame for name, frame in scores.items() if not frame.is_empty()},
            metrics=[m for m in metrics if m.name in scores and not scores[m.name].is_empty()],
            models=models or {},
        )

    @property
    def model_names(self) -> list[str]:
        """Every model with rows anywhere, or in the drop folder: one that failed to load still shows."""
        names = set(self.models)
        for frame in (self.images, self.leaderboard, self.failures):
            if not frame.is_empty():
                names |= set(frame["model"])
        return sorted(names)

    @property
    def categories(self) -> list[str]:
        if not self.prompts.is_empty():
            return list(dict.fromkeys(self.prompts["category"]))
        return sorted(set(self.images["category"])) if not self.images.is_empty() else []

    def metric(self, name: str) -> MetricInfo:
        return next(m for m in self.metrics if m.name == name)

    def of_unit(self, unit: str) -> list[MetricInfo]:
        return [m for m in self.metrics if m.unit == unit]


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


# --- Overview -------------------------------------------------------------------------------


def leaderboard_layout(columns: Sequence[str], metric_names: Iterable[str]) -> dict[str, Any]:
    """Split the leaderboard's columns into metric groups and the rest, whatever columns it has.

    A metric group is every ``<metric>_<field>`` column of a metric with a
    ``<metric>_mean``; the longest metric name wins when names nest. Columns
    of no group (rank, gpu_seconds, anything added later) are ``extra``.
    """
    known = sorted({m for m in metric_names if f"{m}_mean" in columns}
                   | {c[: -len("_mean")] for c in columns if c.endswith("_mean")}, key=len, reverse=True)
    groups: dict[str, list[str]] = {}
    extra = []
    for column in columns:
        if column in ("model", "category"):
            continue
        owner = next((m for m in known if column.startswith(f"{m}_")), None)
        if owner is None:
            extra.append(column)
        else:
            groups.setdefault(owner, []).append(column[len(owner) + 1:])
    order = [m for m in metric_names if m in groups] + [m for m in groups if m not in metric_names]
    return {"metrics": [{"name": m, "fields": groups[m]} for m in order], "extra": extra}


def _images_per_prompt(images: pl.DataFrame, default: int) -> dict[str, int]:
    if images.is_empty():
        return {}
    first = images.group_by("model").agg(pl.col("settings").first())
    return {r["model"]: json.loads(r["settings"]).get("images_per_prompt", default) for r in first.iter_rows(named=True)}


def health(inputs: ReportInputs, default_images_per_prompt: int) -> list[dict[str, Any]]:
    """Per model: images expected, present, failed and missing, and whole-partition errors."""
    per_category = (inputs.prompts.group_by("category").len() if not inputs.prompts.is_empty()
                    else pl.DataFrame(schema={"category": pl.Utf8, "len": pl.UInt32}))
    n_prompts = dict(zip(per_category["category"], per_category["len"]))
    per_prompt = _images_per_prompt(inputs.images, default_images_per_prompt)
    rows = []
    for model in inputs.model_names:
        mine = inputs.images.filter(pl.col("model") == model) if not inputs.images.is_empty() else inputs.images
        fails = (inputs.failures.filter(pl.col("model") == model) if not inputs.failures.is_empty()
                 else pl.DataFrame(schema={"stage": pl.Utf8, "category": pl.Utf8, "error": pl.Utf8}))
        expected = sum(n_prompts.values()) * per_prompt.get(model, default_images_per_prompt)
        load_errors = fails.filter(pl.col("stage") == "load")
        rows.append({
            "model": model,
            "expected": int(expected),
            "images": mine.height,
            "failed": fails.filter(pl.col("stage") != "load").height,
            "missing": max(0, int(expected) - mine.height),
            "errors": [{"category": r["category"], "error": r["error"]} for r in load_errors.iter_rows(named=True)],
        })
    return rows


def _leaders(inputs: ReportInputs) -> dict[str, str]:
    """The overall leader of each metric (rank 1 in category ``all``)."""
    board = inputs.leaderboard
    if board.is_empty():
        return {}
    overall = board.filter(pl.col("category") == OVERALL)
    leaders = {}
    for metric in inputs.metrics:
        column = f"{metric.name}_rank"
        if column in overall.columns:
            top = overall.filter(pl.col(column) == 1)["model"].to_list()
            if top:
                leaders[metric.name] = ", ".join(sorted(top))
    return leaders


def overview_payload(inputs: ReportInputs, plots: dict[str, dict[str, str]], exports: Sequence[str],
                     default_images_per_prompt: int) -> dict[str, Any]:
    board = inputs.leaderboard
    return {
        "models": inputs.model_names,
        "categories": inputs.categories,
        "metrics": [{"name": m.name, "unit": m.unit, "higher_is_better": m.higher_is_better,
                     "description": m.description, "plots": plots.get(m.name, {}),
                     "value_label": m.value_label, "columns": list(m.columns)} for m in inputs.metrics],
        "leaderboard": {
            "layout": leaderboard_layout(board.columns, [m.name for m in inputs.metrics]),
            "columns": board.columns,
            "rows": [[clean(v) for v in row] for row in board.iter_rows()],
        },
        "health": health(inputs, default_images_per_prompt),
        "leaders": _leaders(inputs),
        "exports": list(exports),
        "images": inputs.images.height,
    }


def model_points(inputs: ReportInputs, metric: str) -> list[dict[str, Any]]:
    """Overall mean, interval and GPU-seconds per image of every model, for the plots."""
    board = inputs.leaderboard
    if board.is_empty() or f"{metric}_mean" not in board.columns:
        return []
    overall = board.filter((pl.col("category") == OVERALL) & pl.col(f"{metric}_mean").is_not_null())
    counts = (dict(inputs.images.group_by("model").len().iter_rows()) if not inputs.images.is_empty() else {})
    points = []
    for row in overall.sort("model").iter_rows(named=True):
        seconds, n = row.get("gpu_seconds"), counts.get(row["model"], 0)
        points.append({
            "model": row["model"], "mean": row[f"{metric}_mean"],
            "ci_low": row.get(f"{metric}_ci_low"), "ci_high": row.get(f"{metric}_ci_high"),
            "cost": seconds / n if seconds is not None and n else None,
        })
    return points


# --- Images, thumbnails and per-image values ---------------------------------------------------


def image_rows(inputs: ReportInputs, thumbs: dict[str, str | None], full_prefix: str) -> pl.DataFrame:
    """One row per image: where its thumbnail and full image are (relative to the report)
    and a column per per-image metric with its value."""
    if inputs.images.is_empty():
        return pl.DataFrame()
    frame = inputs.images.select("model", "category", "prompt_id", "image_index", "seed", "path", "sha256")
    frame = frame.with_columns(
        pl.col("sha256").replace_strict(thumbs, default=None, return_dtype=pl.Utf8).alias("thumb"),
        pl.Series("full", [full_prefix + key for key in image_keys(frame["path"]).to_list()], dtype=pl.Utf8),
    )
    keys = ["model", "category", "prompt_id", "image_index"]
    for metric in inputs.of_unit("image"):
        values = inputs.scores[metric.name].select(*keys, pl.col("value").alias(metric.name)).unique(keys, keep="last")
        frame = frame.join(values, on=keys, how="left")
    return frame.sort("model", "category", "prompt_id", "image_index")


# Where ``bench report --serve`` serves the image store, relative to ``report/index.html``.
SERVED_IMAGES = "../images/"


def full_image_prefix(report_dir: Path, images: Store) -> str:
    """What a full-size image's link is, before its key, relative to the report folder.

    A local image store: the relative path from the report to it (opens from
    ``file://``, and is ``../images/`` -- what the server serves -- for the
    default layout), so the data directory can move with its report. An
    object store: ``../images/``, which ``bench report --serve`` streams from
    the store; a page opened from ``file://`` has no way to reach a bucket.
    """
    folder = images.local_path("")
    if folder is None:
        return SERVED_IMAGES
    return Path(os.path.relpath(folder.resolve(), Path(report_dir).resolve())).as_posix() + "/"


def set_values(inputs: ReportInputs) -> pl.DataFrame:
    """Long (model, category, prompt_id, metric, value) rows of the set metrics."""
    parts = [
        inputs.scores[m.name].select("model", "category", "prompt_id", pl.lit(m.name).alias("metric"),
                                     pl.col("value").cast(pl.Float64))
        for m in inputs.of_unit("prompt")
    ]
    return pl.concat(parts) if parts else pl.DataFrame(
        schema={"model": pl.Utf8, "category": pl.Utf8, "prompt_id": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64})


# --- Compare (one category) ---------------------------------------------------------------------


def category_payload(inputs: ReportInputs, category: str, images: pl.DataFrame, sets: pl.DataFrame,
                     prompt_files: dict[str, str]) -> dict[str, Any]:
    """The compare grid of one category, without its cells: which models and seeds it has, and its prompts.

    Each model's cells are in its own file (``category_cells``), so a new model adds a file and
    leaves the others' alone; the page loads the models listed in ``shards``.
    """
    mine = images.filter(pl.col("category") == category) if not images.is_empty() else images
    with_sets = sets.filter(pl.col("category") == category)
    prompt_rows = inputs.prompts.filter(pl.col("category") == category) if not inputs.prompts.is_empty() else None
    listed = (prompt_rows.select("prompt_id", "prompt").rows() if prompt_rows is not None
              else [(p, p) for p in sorted(set(mine["prompt_id"]))])
    models = sorted(set(mine["model"])) if mine.height else []
    return {
        "category": category,
        "models": models,
        "shards": sorted({*models, *with_sets["model"]}),
        "seeds": sorted({int(i) for i in mine["image_index"]}) if mine.height else [],
        "image_metrics": [m.name for m in inputs.of_unit("image")],
        "set_metrics": [m.name for m in inputs.of_unit("prompt")],
        "prompts": [{"id": pid, "text": text, "file": prompt_files[pid]} for pid, text in listed
                    if pid in prompt_files],
    }


def category_cells(inputs: ReportInputs, images: pl.DataFrame, sets: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """One model's compare cells per category (``images``/``sets``: that model's rows only):
    per prompt and seed index, [seed, thumbnail, full image, values], and its set metrics' values."""
    image_metrics = [m.name for m in inputs.of_unit("image")]
    out: dict[str, dict[str, Any]] = {}
    for row in (images.iter_rows(named=True) if not images.is_empty() else []):
        values = {m: clean(row[m]) for m in image_metrics if row.get(m) is not None}
        page = out.setdefault(row["category"], {"cells": {}, "sets": {}})
        page["cells"].setdefault(row["prompt_id"], {})[str(row["image_index"])] = [
            row["seed"], row["thumb"], row["full"], values]
    for row in sets.iter_rows(named=True):
        page = out.setdefault(row["category"], {"cells": {}, "sets": {}})
        page["sets"].setdefault(row["prompt_id"], {})[row["metric"]] = clean(row["value"])
    return out


# --- Drill-down (one prompt) --------------------------------------------------------------------


def _details(row: dict[str, Any], extras: Sequence[str]) -> dict[str, Any]:
    return {c: clean(row[c]) for c in extras if row.get(c) is not None}


def prompt_pages(inputs: ReportInputs) -> dict[str, dict[str, Any]]:
    """Every prompt's own page: the prompt (each model's images of it are in the model's ``prompt_images``)."""
    return {row["prompt_id"]: {"prompt": {
        "id": row["prompt_id"], "category": row["category"], "text": row["prompt"],
        "negative_prompt": row.get("negative_prompt"), "difficulty": row.get("difficulty"),
        "metadata": json.loads(row["metadata"] or "{}")}}
        for row in (inputs.prompts.iter_rows(named=True) if not inputs.prompts.is_empty() else [])}


def prompt_images(inputs: ReportInputs, images: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """One model's drill-down per prompt (``inputs`` and ``images``: that model's rows only): its images with
    every metric value and its details, and its set metrics' values."""
    known = set(inputs.prompts["prompt_id"]) if not inputs.prompts.is_empty() else set()
    by_prompt: dict[str, dict[str, Any]] = {}
    if not images.is_empty():
        for row in images.select("model", "prompt_id", "image_index", "seed", "thumb", "full", "sha256").iter_rows(named=True):
            if row["prompt_id"] in known:
                by_prompt.setdefault(row["prompt_id"], {"images": {}, "sets": []})["images"][row["image_index"]] = {
                    "model": row["model"], "index": row["image_index"], "seed": row["seed"],
                    "thumb": row["thumb"], "full": row["full"], "sha256": row["sha256"], "scores": {}}
    for metric in inputs.metrics:
        frame = inputs.scores[metric.name]
        extras = metric_extras(frame)
        for row in frame.iter_rows(named=True):
            if row["prompt_id"] not in known:
                continue
            entry = {"metric": metric.name, "value": clean(row["value"]), "details": _details(row, extras)}
            if metric.unit == "prompt":
                by_prompt.setdefault(row["prompt_id"], {"images": {}, "sets": []})["sets"].append(
                    {"model": row["model"], **entry})
                continue
            image = by_prompt.get(row["prompt_id"], {"images": {}})["images"].get(row["image_index"])
            if image is not None:
                image["scores"][metric.name] = entry
    for page in by_prompt.values():
        page["images"] = sorted(page["images"].values(), key=lambda i: i["index"])
        page["sets"].sort(key=lambda s: s["metric"])
    return by_prompt


def of_model(inputs: ReportInputs, images: pl.DataFrame, sets: pl.DataFrame,
             model: str) -> tuple[ReportInputs, pl.DataFrame, pl.DataFrame]:
    """The inputs, image rows and set values of one model only (the leaderboard and prompts kept whole)."""
    def mine(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("model") == model) if not frame.is_empty() else frame

    return (ReportInputs(inputs.leaderboard, mine(inputs.images), mine(inputs.failures), inputs.prompts,
                         {name: mine(frame) for name, frame in inputs.scores.items()}, inputs.metrics,
                         inputs.models), mine(images), mine(sets))


# --- Model page -----------------------------------------------------------------------------------


def _worst(inputs: ReportInputs, images: pl.DataFrame, sets: pl.DataFrame, model: str) -> dict[str, list]:
    """Each metric's worst prompts for the model, with the image that shows it."""
    text = (dict(inputs.prompts.select("prompt_id", "prompt").iter_rows()) if not inputs.prompts.is_empty() else {})
    mine = images.filter(pl.col("model") == model) if not images.is_empty() else images
    worst: dict[str, list] = {}
    for metric in inputs.metrics:
        better_high = metric.higher_is_better
        if metric.unit == "image":
            scored = mine.filter(pl.col(metric.name).is_not_null())
            if scored.is_empty():
                continue
            per_prompt = scored.sort(metric.name, descending=not better_high).group_by(
                "category", "prompt_id", maintain_order=True).agg(
                pl.col(metric.name).mean().alias("value"), pl.col("thumb").first(), pl.col("full").first(),
                pl.col("image_index").first())
        else:
            values = sets.filter((pl.col("model") == model) & (pl.col("metric") == metric.name))
            if values.is_empty():
                continue
            first = mine.sort("image_index").group_by("category", "prompt_id").agg(
                pl.col("thumb").first(), pl.col("full").first(), pl.col("image_index").first())
            per_prompt = values.join(first, on=["category", "prompt_id"], how="left")
        rows = per_prompt.sort(["value", "category", "prompt_id"], descending=[not better_high, False, False])
        worst[metric.name] = [
            {"category": r["category"], "prompt_id": r["prompt_id"], "text": text.get(r["prompt_id"], ""),
             "value": clean(r["value"]), "thumb": r["thumb"], "full": r["full"], "index": r["image_index"]}
            for r in rows.head(WORST_PROMPTS).iter_rows(named=True)
        ]
    return worst


def model_payload(inputs: ReportInputs, images: pl.DataFrame, sets: pl.DataFrame, model: str) -> dict[str, Any]:
    manifest = inputs.images.filter(pl.col("model") == model) if not inputs.images.is_empty() else inputs.images
    board = inputs.leaderboard
    overall = board.filter((pl.col("model") == model) & (pl.col("category") == OVERALL)) if not board.is_empty() else board
    costs = {c: clean(overall[c][0]) for c in ("generation_gpu_seconds", "scoring_gpu_seconds", "gpu_seconds")
             if c in overall.columns and overall.height}
    fails = inputs.failures.filter(pl.col("model") == model) if not inputs.failures.is_empty() else inputs.failures
    return {
        "model": model,
        **inputs.models.get(model, {}),
        "fingerprints": sorted(set(manifest["model_fingerprint"])) if manifest.height else [],
        "settings": json.loads(manifest["settings"][0]) if manifest.height else {},
        "images": manifest.height,
        "devices": sorted(set(manifest["device"])) if "device" in manifest.columns else [],
        "gpu_seconds": costs,
        "gpu_seconds_per_image": (costs["gpu_seconds"] / manifest.height
                                  if costs.get("gpu_seconds") is not None and manifest.height else None),
        "failures": [{k: r.get(k) for k in ("category", "stage", "prompt_id", "image_index", "seed", "error")}
                     for r in fails.iter_rows(named=True)],
        "worst": _worst(inputs, images, sets, model),
    }
