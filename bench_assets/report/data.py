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
from typing import Any, Iterable, Mapping, Sequence

import polars as pl

from bench_assets.core.objects import Store
from bench_assets.storage.leaderboard import OVERALL
from bench_assets.storage.results import image_keys, metric_extras, model_scores, read_model_rows
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
    """One model's rows the report reads (``read_model``), with the small tables every page shares.

    A build holds one model's inputs at a time: its images manifest, its
    failures and its rows of every score table, read just before its files
    are written and dropped after, so memory is one model's, whatever the
    number of models.
    """

    leaderboard: pl.DataFrame
    images: pl.DataFrame
    failures: pl.DataFrame
    prompts: pl.DataFrame
    scores: dict[str, pl.DataFrame]  # metric name -> the model's item scores joined to prompts
    metrics: list[MetricInfo]  # the metrics the model has rows of
    models: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> kind, source

    @classmethod
    def read_model(cls, warehouse: Warehouse, metrics: Sequence[MetricInfo], model: str, prompts: pl.DataFrame,
                   leaderboard: pl.DataFrame, models: dict[str, dict[str, str]] | None = None,
                   partitions: Mapping[str, Sequence[str]] | None = None) -> "ReportInputs":
        """``model``'s rows; ``partitions``: table -> the model's categories in it (as listed), else listed here."""
        def categories(table: str) -> Sequence[str]:
            return partitions.get(table, ()) if partitions is not None else warehouse.categories(table, model)

        scores = {m.name: model_scores(warehouse, m.table, model, categories(m.table), prompts) for m in metrics}
        return cls(
            leaderboard=leaderboard,
            images=read_model_rows(warehouse, IMAGES_TABLE, model, categories(IMAGES_TABLE)),
            failures=read_model_rows(warehouse, FAILURES_TABLE, model, categories(FAILURES_TABLE)),
            prompts=prompts,
            scores={name: frame for name, frame in scores.items() if not frame.is_empty()},
            metrics=[m for m in metrics if not scores[m.name].is_empty()],
            models=models or {},
        )

    def metric(self, name: str) -> MetricInfo:
        return next(m for m in self.metrics if m.name == name)

    def of_unit(self, unit: str) -> list[MetricInfo]:
        return [m for m in self.metrics if m.unit == unit]


@dataclass
class SiteInputs:
    """What the shared pages (overview, one per category, one per prompt) read: small inputs only.

    The leaderboard and the prompts (one row per model x category, one per
    prompt) and each model's ``model_summary`` (a few numbers per category),
    which the report's manifest keeps, so a build after adding one model
    reads no other model's rows to write them.
    """

    leaderboard: pl.DataFrame
    prompts: pl.DataFrame
    metrics: list[MetricInfo]  # those some model has rows of, in the registry's order
    summaries: dict[str, dict[str, Any]]  # model -> model_summary, every model shown
    models: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> kind, source

    @property
    def model_names(self) -> list[str]:
        return sorted(self.summaries)

    @property
    def categories(self) -> list[str]:
        if not self.prompts.is_empty():
            return list(dict.fromkeys(self.prompts["category"]))
        return sorted({c for s in self.summaries.values() for c, seen in s["categories"].items() if seen["images"]})

    @property
    def images(self) -> int:
        return sum(s["images"] for s in self.summaries.values())

    def of_unit(self, unit: str) -> list[MetricInfo]:
        return [m for m in self.metrics if m.unit == unit]


def shown_models(models: Mapping[str, Any], leaderboard: pl.DataFrame,
                 summaries: Mapping[str, dict[str, Any]]) -> set[str]:
    """Every model with rows anywhere, or in the drop folder: one that failed to load still shows."""
    names = set(models) | {m for m, s in summaries.items() if s["images"] or s["failures"]}
    return names | (set(leaderboard["model"]) if not leaderboard.is_empty() else set())


def present_metrics(metrics: Sequence[MetricInfo], summaries: Mapping[str, dict[str, Any]]) -> list[MetricInfo]:
    """The registered metrics some model has rows of, in the registry's order."""
    scored = {name for s in summaries.values() for name in s["scored"]}
    return [m for m in metrics if m.name in scored]


def model_summary(inputs: ReportInputs, rows: pl.DataFrame, sets: pl.DataFrame, thumbnails: int,
                  default_images_per_prompt: int) -> dict[str, Any]:
    """What the shared pages need of one model (``inputs``, ``rows``, ``sets``: its own), small enough for the
    manifest: per category whether it has images or set values and which seed indices; its image and failure
    counts, its load errors, the metrics it has rows of and its distinct images (``thumbnails``)."""
    categories: dict[str, dict[str, Any]] = {}
    if not rows.is_empty():
        seeds = rows.group_by("category").agg(pl.col("image_index").unique().sort())
        for category, indices in seeds.sort("category").iter_rows():
            categories[category] = {"images": True, "sets": False, "seeds": [int(i) for i in indices]}
    for category in sorted(set(sets["category"])):
        categories.setdefault(category, {"images": False, "sets": False, "seeds": []})["sets"] = True
    failures, manifest = inputs.failures, inputs.images
    stages = failures["stage"] if not failures.is_empty() else pl.Series("stage", [], dtype=pl.Utf8)
    load_errors = failures.filter(pl.col("stage") == "load") if not failures.is_empty() else failures
    return {
        "images": manifest.height,
        "images_per_prompt": (json.loads(manifest["settings"][0]).get("images_per_prompt", default_images_per_prompt)
                              if manifest.height else default_images_per_prompt),
        "categories": categories,
        "failures": failures.height,
        "failed": int((stages != "load").sum()),
        "errors": [{"category": r["category"], "error": r["error"]} for r in load_errors.iter_rows(named=True)],
        "scored": [m.name for m in inputs.metrics],
        "thumbnails": thumbnails,
    }


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


def health(site: SiteInputs) -> list[dict[str, Any]]:
    """Per model: images expected, present, failed and missing, and whole-partition errors."""
    expected_prompts = site.prompts.height if not site.prompts.is_empty() else 0
    rows = []
    for model in site.model_names:
        summary = site.summaries[model]
        expected = expected_prompts * summary["images_per_prompt"]
        rows.append({
            "model": model,
            "expected": int(expected),
            "images": summary["images"],
            "failed": summary["failed"],
            "missing": max(0, int(expected) - summary["images"]),
            "errors": summary["errors"],
        })
    return rows


def _leaders(site: SiteInputs) -> dict[str, str]:
    """The overall leader of each metric (rank 1 in category ``all``)."""
    board = site.leaderboard
    if board.is_empty():
        return {}
    overall = board.filter(pl.col("category") == OVERALL)
    leaders = {}
    for metric in site.metrics:
        column = f"{metric.name}_rank"
        if column in overall.columns:
            top = overall.filter(pl.col(column) == 1)["model"].to_list()
            if top:
                leaders[metric.name] = ", ".join(sorted(top))
    return leaders


def overview_payload(site: SiteInputs, plots: dict[str, dict[str, str]], exports: Sequence[str]) -> dict[str, Any]:
    board = site.leaderboard
    return {
        "models": site.model_names,
        "categories": site.categories,
        "metrics": [{"name": m.name, "unit": m.unit, "higher_is_better": m.higher_is_better,
                     "description": m.description, "plots": plots.get(m.name, {}),
                     "value_label": m.value_label, "columns": list(m.columns)} for m in site.metrics],
        "leaderboard": {
            "layout": leaderboard_layout(board.columns, [m.name for m in site.metrics]),
            "columns": board.columns,
            "rows": [[clean(v) for v in row] for row in board.iter_rows()],
        },
        "health": health(site),
        "leaders": _leaders(site),
        "exports": list(exports),
        "images": site.images,
    }


def model_points(site: SiteInputs, metric: str) -> list[dict[str, Any]]:
    """Overall mean, interval and GPU-seconds per image of every model, for the plots."""
    board = site.leaderboard
    if board.is_empty() or f"{metric}_mean" not in board.columns:
        return []
    overall = board.filter((pl.col("category") == OVERALL) & pl.col(f"{metric}_mean").is_not_null())
    counts = {model: summary["images"] for model, summary in site.summaries.items()}
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


def category_payload(site: SiteInputs, category: str, prompt_files: dict[str, str]) -> dict[str, Any]:
    """The compare grid of one category, without its cells: which models and seeds it has, and its prompts.

    Each model's cells are in its own file (``category_cells``), so a new model adds a file and
    leaves the others' alone; the page loads the models listed in ``shards``.
    """
    here = {m: s["categories"][category] for m, s in site.summaries.items() if category in s["categories"]}
    models = sorted(m for m, seen in here.items() if seen["images"])
    listed = (site.prompts.filter(pl.col("category") == category).select("prompt_id", "prompt").rows()
              if not site.prompts.is_empty() else [])
    return {
        "category": category,
        "models": models,
        "shards": sorted(m for m, seen in here.items() if seen["images"] or seen["sets"]),
        "seeds": sorted({i for seen in here.values() for i in seen["seeds"]}),
        "image_metrics": [m.name for m in site.of_unit("image")],
        "set_metrics": [m.name for m in site.of_unit("prompt")],
        "prompts": [{"id": pid, "text": text, "file": prompt_files[pid]} for pid, text in listed
                    if pid in prompt_files],
    }


def category_cells(inputs: ReportInputs, images: pl.DataFrame, sets: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """One model's compare cells per category (``images``/``sets``: that model's rows only):
    per prompt and seed index, [seed, thumbnail, full image, values], and its set metrics' values."""
    image_metrics = [m.name for m in inputs.of_unit("image") if m.name in images.columns]
    out: dict[str, dict[str, Any]] = {}
    rows = (_columns(images, "category", "prompt_id", "image_index", "seed", "thumb", "full", *image_metrics)
            if not images.is_empty() else [])
    for category, pid, index, seed, thumb, full, *scores in rows:
        values = {m: clean(v) for m, v in zip(image_metrics, scores) if v is not None}
        page = out.setdefault(category, {"cells": {}, "sets": {}})
        page["cells"].setdefault(pid, {})[str(index)] = [seed, thumb, full, values]
    for category, pid, metric, value in _columns(sets, "category", "prompt_id", "metric", "value"):
        page = out.setdefault(category, {"cells": {}, "sets": {}})
        page["sets"].setdefault(pid, {})[metric] = clean(value)
    return out


# --- Drill-down (one prompt) --------------------------------------------------------------------


def prompt_pages(prompts: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Every prompt's own page: the prompt (each model's images of it are in the model's ``prompt_images``)."""
    return {row["prompt_id"]: {"prompt": {
        "id": row["prompt_id"], "category": row["category"], "text": row["prompt"],
        "negative_prompt": row.get("negative_prompt"), "difficulty": row.get("difficulty"),
        "metadata": json.loads(row["metadata"] or "{}")}}
        for row in (prompts.iter_rows(named=True) if not prompts.is_empty() else [])}


def _columns(frame: pl.DataFrame, *names: str) -> Iterable[tuple]:
    """The rows of ``names`` as tuples, a column at a time: far cheaper than ``iter_rows(named=True)``
    over the hundreds of thousands of score rows one model has."""
    return zip(*(frame[name].to_list() for name in names))


def prompt_images(inputs: ReportInputs, images: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """One model's drill-down per prompt (``inputs`` and ``images``: that model's rows only): its images with
    every metric value and its details, and its set metrics' values."""
    known = set(inputs.prompts["prompt_id"]) if not inputs.prompts.is_empty() else set()
    by_prompt: dict[str, dict[str, Any]] = {}
    if not images.is_empty():
        for model, pid, index, seed, thumb, full, sha in _columns(
                images, "model", "prompt_id", "image_index", "seed", "thumb", "full", "sha256"):
            if pid in known:
                by_prompt.setdefault(pid, {"images": {}, "sets": []})["images"][index] = {
                    "model": model, "index": index, "seed": seed, "thumb": thumb, "full": full, "sha256": sha,
                    "scores": {}}
    for metric in inputs.metrics:
        frame = inputs.scores[metric.name]
        extras = metric_extras(frame)
        cleaned = any(frame.schema[c].is_float() for c in extras)  # only a float can be NaN or infinite
        indices = frame["image_index"] if "image_index" in frame.columns else pl.Series([None] * frame.height)
        for pid, model, index, value, *details in _columns(
                frame.with_columns(indices.alias("image_index")), "prompt_id", "model", "image_index", "value",
                *extras):
            if pid not in known:
                continue
            entry = {"metric": metric.name, "value": clean(value),
                     "details": ({c: clean(v) for c, v in zip(extras, details) if v is not None} if cleaned
                                 else {c: v for c, v in zip(extras, details) if v is not None})}
            if metric.unit == "prompt":
                by_prompt.setdefault(pid, {"images": {}, "sets": []})["sets"].append({"model": model, **entry})
                continue
            page = by_prompt.get(pid)
            image = page["images"].get(index) if page is not None else None
            if image is not None:
                image["scores"][metric.name] = entry
    for page in by_prompt.values():
        page["images"] = sorted(page["images"].values(), key=lambda i: i["index"])
        page["sets"].sort(key=lambda s: s["metric"])
    return by_prompt


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
