"""Write the report: a static site that opens from ``file://`` and from ``bench report --serve``.

Layout of ``data/report/``::

    index.html report.js report.css     the pages (one local script, no CDN)
    data/overview.js                    leaderboard, plots, health
    data/category/<category>.js         the compare grid of one category
    data/prompt/<prompt>.js             one prompt's drill-down
    data/model/<model>.js               one model's page
    data/reference/<reference set>.js   one reference set's page: its images, the models' distribution metrics
    plots/{means,cost}-<metric>-<hash>.svg  matplotlib SVGs, redrawn only when their data change
    thumbs/<sha[:2]>/<sha256>.webp      256 px thumbnails, kept across builds
    export/*.csv                        the leaderboards and the prompts
    export/<table>/<model>.csv          each model's rows of every item-level score table
    manifest.json                       each model's content digest and files (``report.incremental``)

Data files are JavaScript that assigns into ``window.BENCH_REPORT``: a page
loads them with a ``<script>`` tag, which Chromium allows from ``file://``
(``fetch`` of a local JSON file it does not), and only when it shows them.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from bench_assets.core.naming import recorded_image_key
from bench_assets.core.objects import Store
from bench_assets.references.sets import ReferenceSet
from bench_assets.storage.distribution_board import distribution_board
from bench_assets.storage.store import open_store
from bench_assets.report import data as pages
from bench_assets.report.plots import ModelPoint, cost_plot, means_plot
from bench_assets.report.reference_pages import (
    overview_distribution, reference_names, reference_payload, reference_thumbnails, shown_images,
)
from bench_assets.report.incremental import Manifest, Plan
from bench_assets.report.thumbnails import ThumbnailStats, ensure_thumbnail, prune_thumbnails, thumbnail_relpath
from bench_assets.storage.results import LEADERBOARD_TABLES, PROMPTS_TABLE, write_export
from bench_assets.storage.warehouse import Warehouse

STATIC_FILES = ("index.html", "report.js", "report.css")
PLOT_VERSION = 1  # bump when the plots change look, so cached figures are redrawn
THUMBS = "thumbs"
EXPORT_FORMAT = "csv"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")


@dataclass
class ReportSummary:
    """What a build wrote: for the asset's metadata and the CLI."""

    index: Path
    models: int
    images: int
    leaders: dict[str, str]
    thumbnails: ThumbnailStats
    seconds: float
    files: int = 0  # written by this build
    exports: list[str] = field(default_factory=list)
    pages_written: int = 0  # models whose files (page, drill-down and compare cells, export rows) were written
    carried_over: int = 0  # models whose files and thumbnails were kept from the last build

    @property
    def url(self) -> str:
        return self.index.resolve().as_uri()


def safe_name(key: str) -> str:
    """A file name for a model, category or prompt id: itself when harmless, else a slug + hash."""
    if _SAFE.match(key):
        return key
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:60].strip("._") or "x"
    return f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def _write_data(folder: Path, key: str, payload: Any, target: Path | None = None) -> None:
    """``data/<key>.js`` (or ``target``): assigns the payload to ``BENCH_REPORT[key]``, written beside it and renamed."""
    target = target or folder / "data" / f"{key}.js"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(
        "window.BENCH_REPORT=window.BENCH_REPORT||{};"
        f"window.BENCH_REPORT[{pages.to_json(key)}]={pages.to_json(payload)};\n",
        encoding="utf-8",
    )
    tmp.replace(target)


def _thumbnails(inputs: pages.ReportInputs, thumbs_dir: Path, images: Store, stats: ThumbnailStats,
                carried: Manifest, same: set[str]) -> dict[str, str | None]:
    """sha256 -> thumbnail href (relative to the report), making only the missing ones.

    Images of models in ``same`` (unchanged since the manifest ``carried``) are not looked at: their
    thumbnails were made, except those the manifest lists as unreadable.
    """
    hrefs: dict[str, str | None] = {}
    if inputs.images.is_empty():
        return hrefs
    unreadable = {sha for m in same for sha in carried.models[m].get("unreadable", [])}
    fresh = inputs.images.filter(~pl.col("model").is_in(sorted(same)))
    for sha, path in fresh.select("sha256", "path").unique("sha256").sort("sha256").iter_rows():
        rel = ensure_thumbnail(images, recorded_image_key(path), sha, thumbs_dir, stats)
        hrefs[sha] = f"{THUMBS}/{rel}" if rel else None
    for sha in inputs.images["sha256"].unique().to_list():
        if sha not in hrefs:
            stats.cached += 1
            hrefs[sha] = None if sha in unreadable else f"{THUMBS}/{thumbnail_relpath(sha)}"
    return hrefs


def _reference_pages(report_dir: Path, board: pl.DataFrame, references: Mapping[str, ReferenceSet],
                     stats: ThumbnailStats) -> tuple[dict[str, str], set[str]]:
    """Write each reference set's page (removing those of sets gone); (name -> its data file, the thumbnails
    they use, relative to the thumbnails folder)."""
    thumbs = reference_thumbnails(references, report_dir / THUMBS, stats, f"{THUMBS}/")
    files = {}
    for name in reference_names(board, references):
        files[name] = f"reference/{safe_name(name)}"
        _write_data(report_dir, files[name], reference_payload(name, references.get(name), board, thumbs.get(name, {})))
    for old in (report_dir / "data" / "reference").glob("*.js"):
        if f"reference/{old.stem}" not in files.values():
            old.unlink()
    used = {thumbnail_relpath(image.sha256) for reference in references.values() for image in shown_images(reference)}
    return files, used


def _plot_name(kind: str, metric: str, points: Sequence[ModelPoint], *extra: Any) -> str:
    """``plots/<kind>-<metric>-<hash of what is drawn>.svg``: unchanged figures are not redrawn."""
    blob = pages.to_json([PLOT_VERSION, kind, metric, [vars(p) for p in points], list(extra)])
    return f"plots/{kind}-{safe_name(metric)}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}.svg"


def _plots(inputs: pages.ReportInputs, report_dir: Path) -> dict[str, dict[str, str]]:
    """Per metric: the means plot and the quality-versus-cost plot (paths relative to the report).

    Drawing is most of a small report's build time, so a figure whose data
    has not changed keeps its file; files no figure uses any more are removed.
    """
    written: dict[str, dict[str, str]] = {}
    for metric in inputs.metrics:
        points = [ModelPoint(**p) for p in pages.model_points(inputs, metric.name)]
        if not points:
            continue
        entry = {"means": _plot_name("means", metric.name, points)}
        if any(p.cost is not None for p in points):
            entry["cost"] = _plot_name("cost", metric.name, points, metric.higher_is_better)
        for kind, rel in entry.items():
            if not (report_dir / rel).is_file():
                if kind == "means":
                    means_plot(metric.name, points, report_dir / rel)
                else:
                    cost_plot(metric.name, points, metric.higher_is_better, report_dir / rel)
        written[metric.name] = entry
    used = {rel for entry in written.values() for rel in entry.values()}
    for old in (report_dir / "plots").glob("*.svg"):
        if f"plots/{old.name}" not in used:
            old.unlink()
    return written


def _copy_static(report_dir: Path) -> None:
    static = resources.files("bench_assets.report") / "static"
    for name in STATIC_FILES:
        (report_dir / name).write_bytes((static / name).read_bytes())


def _replace_folder(staging: Path, final: Path) -> None:
    """Put ``staging`` where ``final`` is (a rename each, so a page sees a whole folder, old or new)."""
    trash = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
    if final.exists():
        final.rename(trash)
    if staging.exists():
        staging.rename(final)
    shutil.rmtree(trash, ignore_errors=True)


def _model_files(report_dir: Path, inputs: pages.ReportInputs, rows: pl.DataFrame, sets: pl.DataFrame,
                 tables: Sequence[str], model: str, prompt_files: Mapping[str, str]) -> int:
    """Everything of one model: its page, its drill-down and compare cells (``data/model/<model>/``, written
    aside and renamed into place) and its export rows (``export/<table>/<model>.csv``); the files written."""
    own, own_rows, own_sets = pages.of_model(inputs, rows, sets, model)
    name = safe_name(model)
    staging = report_dir / "data" / "model" / f".{name}-{uuid.uuid4().hex[:8]}"
    written = 0
    try:
        for pid, payload in pages.prompt_images(own, own_rows).items():
            _write_data(report_dir, f"model/{name}/prompt/{prompt_files[pid]}", payload,
                        staging / "prompt" / f"{prompt_files[pid]}.js")
            written += 1
        for category, payload in pages.category_cells(own, own_rows, own_sets).items():
            _write_data(report_dir, f"model/{name}/category/{safe_name(category)}", payload,
                        staging / "category" / f"{safe_name(category)}.js")
            written += 1
        _replace_folder(staging, report_dir / "data" / "model" / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_data(report_dir, f"model/{name}", pages.model_payload(own, own_rows, own_sets, model))
    for metric in inputs.metrics:
        target = report_dir / "export" / safe_name(metric.table) / f"{name}.{EXPORT_FORMAT}"
        if metric.table in tables and own.scores[metric.name].height:
            write_export(own.scores[metric.name], EXPORT_FORMAT, target)
            written += 1
        else:
            target.unlink(missing_ok=True)
    return written + 1


def _remove_model(report_dir: Path, model: str) -> None:
    """The files of a model the warehouse no longer has."""
    name = safe_name(model)
    (report_dir / "data" / "model" / f"{name}.js").unlink(missing_ok=True)
    shutil.rmtree(report_dir / "data" / "model" / name, ignore_errors=True)
    for part in (report_dir / "export").glob(f"*/{name}.{EXPORT_FORMAT}"):
        part.unlink(missing_ok=True)


def _exports_listed(report_dir: Path, inputs: pages.ReportInputs, tables: Sequence[str]) -> list[str]:
    """The export files for the overview: the shared tables, then each score table's per-model files."""
    shared = [f"export/{name}.{EXPORT_FORMAT}" for name in (*LEADERBOARD_TABLES, PROMPTS_TABLE)
              if (report_dir / "export" / f"{name}.{EXPORT_FORMAT}").is_file()]
    parts = [f"export/{safe_name(m.table)}/{safe_name(model)}.{EXPORT_FORMAT}"
             for m in inputs.metrics if m.table in tables
             for model in sorted(set(inputs.scores[m.name]["model"]))]
    return shared + parts


def _shared_files(warehouse: Warehouse, inputs: pages.ReportInputs, rows: pl.DataFrame, sets: pl.DataFrame,
                  report_dir: Path, prompt_files: Mapping[str, str], prompts_changed: bool) -> int:
    """The pages every model shows on: each category's grid (its cells are the models'), each prompt's page
    (only when the prompts changed), and the leaderboards' and prompts' export; the files written."""
    written = 0
    for category in inputs.categories:
        _write_data(report_dir, f"category/{safe_name(category)}",
                    pages.category_payload(inputs, category, rows, sets, dict(prompt_files)))
        written += 1
    if prompts_changed:
        pages_now = pages.prompt_pages(inputs)
        for pid, payload in pages_now.items():
            _write_data(report_dir, f"prompt/{prompt_files[pid]}", payload)
        keep = {f"{prompt_files[pid]}.js" for pid in pages_now}
        for old in (report_dir / "data" / "prompt").glob("*.js"):
            if old.name not in keep:
                old.unlink()
        written += len(pages_now)
    for name in (*LEADERBOARD_TABLES, PROMPTS_TABLE):
        frame = warehouse.read_table(name)
        target = report_dir / "export" / f"{name}.{EXPORT_FORMAT}"
        if frame.is_empty():
            target.unlink(missing_ok=True)
        else:
            write_export(frame, EXPORT_FORMAT, target)
            written += 1
    return written


def build_report(
    warehouse: Warehouse,
    report_dir: Path,
    images: Store | Path,
    metrics: Sequence[pages.MetricInfo],
    models: dict[str, dict[str, str]] | None = None,
    default_images_per_prompt: int = 4,
    score_tables: Sequence[str] | None = None,
    incremental: bool = True,
    references: Mapping[str, ReferenceSet] | None = None,
) -> ReportSummary:
    """Build the site from the warehouse into ``report_dir``; thumbnails already made are reused.

    ``images`` is the image store the rows' keys belong to (a folder path opens a local one);
    ``references`` the registered reference sets, each of which gets a page. ``incremental``: a model whose inputs are unchanged since the last build (``report.incremental``)
    keeps its files and its thumbnails are not looked at; the shared pages are written again. False:
    every model's files are written.
    """
    started = time.perf_counter()
    images = images if isinstance(images, Store) else open_store(images)
    report_dir.mkdir(parents=True, exist_ok=True)
    inputs = pages.ReportInputs.read(warehouse, metrics, models)
    prefix = pages.full_image_prefix(report_dir, images)
    tables = list(score_tables) if score_tables is not None else [m.table for m in metrics]
    plan = Plan.make(report_dir, inputs, [prefix, default_images_per_prompt, sorted(tables)], incremental,
                     lambda m: (report_dir / "data" / "model" / f"{safe_name(m)}.js").is_file())
    stats = ThumbnailStats()
    thumbs = _thumbnails(inputs, report_dir / THUMBS, images, stats, plan.carried, plan.same)
    board = distribution_board(warehouse)
    reference_files, reference_thumbs = _reference_pages(report_dir, board, references or {}, stats)
    if plan.lost or inputs.images.is_empty():  # thumbnails no image uses any more: only when a model changed or went
        stats.removed = prune_thumbnails(report_dir / THUMBS,
                                         {*(thumbnail_relpath(sha) for sha in thumbs), *reference_thumbs})
    rows, sets = pages.image_rows(inputs, thumbs, prefix), pages.set_values(inputs)
    prompt_files = {pid: safe_name(pid) for pid in inputs.prompts["prompt_id"]} if not inputs.prompts.is_empty() else {}
    written = sum(_model_files(report_dir, inputs, rows, sets, tables, model, prompt_files)
                  for model in inputs.model_names if model not in plan.same)
    for gone in plan.gone:
        _remove_model(report_dir, gone)
    written += _shared_files(warehouse, inputs, rows, sets, report_dir, prompt_files, plan.prompts_changed)
    exports = _exports_listed(report_dir, inputs, tables)
    overview = pages.overview_payload(inputs, _plots(inputs, report_dir), exports, default_images_per_prompt)
    overview["files"] = {"category": {c: f"category/{safe_name(c)}" for c in inputs.categories},
                         "model": {m: f"model/{safe_name(m)}" for m in inputs.model_names}}
    overview["distribution"] = overview_distribution(board, reference_files)
    _write_data(report_dir, "overview", overview)
    plan.manifest(thumbs, inputs.images, report_dir).write(report_dir)
    _copy_static(report_dir)
    return ReportSummary(
        index=report_dir / "index.html",
        models=len(inputs.model_names),
        images=inputs.images.height,
        leaders=overview["leaders"],
        thumbnails=stats,
        seconds=time.perf_counter() - started,
        files=written + 1 + len(STATIC_FILES),
        exports=exports,
        pages_written=len(inputs.model_names) - len(plan.same),
        carried_over=len(plan.same),
    )


def folder_size(folder: Path) -> int:
    """Bytes under ``folder`` (for the benchmark's size-on-disk figure)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

