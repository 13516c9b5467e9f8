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
    export/*.csv                        the leaderboard and every item-level score table

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
from bench_assets.report.thumbnails import ThumbnailStats, ensure_thumbnail, prune_thumbnails, thumbnail_relpath
from bench_assets.storage.results import export_results
from bench_assets.storage.warehouse import Warehouse

STATIC_FILES = ("index.html", "report.js", "report.css")
REBUILT_FOLDERS = ("data", "export")  # replaced on every build; thumbs/ and plots/ are kept
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
    files: int = 0
    exports: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.index.resolve().as_uri()


def safe_name(key: str) -> str:
    """A file name for a model, category or prompt id: itself when harmless, else a slug + hash."""
    if _SAFE.match(key):
        return key
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:60].strip("._") or "x"
    return f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def _write_data(folder: Path, key: str, payload: Any) -> None:
    """``data/<key>.js``: assigns the payload to ``BENCH_REPORT[key]``."""
    target = folder / "data" / f"{key}.js"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        "window.BENCH_REPORT=window.BENCH_REPORT||{};"
        f"window.BENCH_REPORT[{pages.to_json(key)}]={pages.to_json(payload)};\n",
        encoding="utf-8",
    )


def _thumbnails(inputs: pages.ReportInputs, thumbs_dir: Path, images: Store,
                stats: ThumbnailStats) -> dict[str, str | None]:
    """sha256 -> thumbnail href (relative to the report), making only the missing ones."""
    hrefs: dict[str, str | None] = {}
    if inputs.images.is_empty():
        return hrefs
    for sha, path in inputs.images.select("sha256", "path").unique("sha256").sort("sha256").iter_rows():
        rel = ensure_thumbnail(images, recorded_image_key(path), sha, thumbs_dir, stats)
        hrefs[sha] = f"{THUMBS}/{rel}" if rel else None
    return hrefs


def _reference_pages(build: Path, board, references: Mapping[str, ReferenceSet], thumbs_dir: Path,
                     stats: ThumbnailStats) -> tuple[dict[str, str], set[str]]:
    """Write each reference set's page; (name -> its data file, the thumbnails they use, relative to ``thumbs_dir``)."""
    thumbs = reference_thumbnails(references, thumbs_dir, stats, f"{THUMBS}/")
    files = {}
    for name in reference_names(board, references):
        files[name] = f"reference/{safe_name(name)}"
        _write_data(build, files[name], reference_payload(name, references.get(name), board, thumbs.get(name, {})))
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


def _swap_in(build: Path, report_dir: Path) -> None:
    """Replace the rebuilt folders with the new build's (each a rename, so a page sees old or new)."""
    for name in REBUILT_FOLDERS:
        new, old = build / name, report_dir / name
        if old.exists():
            trash = report_dir / f".old-{name}-{uuid.uuid4().hex[:8]}"
            old.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        if new.exists():
            new.rename(old)


def build_report(
    warehouse: Warehouse,
    report_dir: Path,
    images: Store | Path,
    metrics: Sequence[pages.MetricInfo],
    models: dict[str, dict[str, str]] | None = None,
    default_images_per_prompt: int = 4,
    score_tables: Sequence[str] | None = None,
    references: Mapping[str, ReferenceSet] | None = None,
) -> ReportSummary:
    """Build the whole site from the warehouse into ``report_dir``; thumbnails already made are reused.

    ``images`` is the image store the rows' keys belong to (a folder path opens a local one);
    ``references`` the registered reference sets, each of which gets a page.
    """
    started = time.perf_counter()
    images = images if isinstance(images, Store) else open_store(images)
    report_dir.mkdir(parents=True, exist_ok=True)
    build = report_dir / f".build-{uuid.uuid4().hex[:8]}"
    try:
        inputs = pages.ReportInputs.read(warehouse, metrics, models)
        stats = ThumbnailStats()
        thumbs = _thumbnails(inputs, report_dir / THUMBS, images, stats)
        board = distribution_board(warehouse)
        reference_files, reference_thumbs = _reference_pages(build, board, references or {}, report_dir / THUMBS, stats)
        stats.removed = prune_thumbnails(report_dir / THUMBS, {*map(thumbnail_relpath, thumbs), *reference_thumbs})
        rows = pages.image_rows(inputs, thumbs, pages.full_image_prefix(report_dir, images))
        sets = pages.set_values(inputs)
        tables = list(score_tables) if score_tables is not None else [m.table for m in metrics]
        exports = [f"export/{p.name}" for p in export_results(warehouse, tables, EXPORT_FORMAT, build / "export")]
        plots = _plots(inputs, report_dir)
        overview = pages.overview_payload(inputs, plots, exports, default_images_per_prompt)
        overview["files"] = {"category": {c: f"category/{safe_name(c)}" for c in inputs.categories},
                             "model": {m: f"model/{safe_name(m)}" for m in inputs.model_names}}
        overview["distribution"] = overview_distribution(board, reference_files)
        _write_data(build, "overview", overview)
        prompts = pages.prompt_payloads(inputs, rows)
        prompt_files = {pid: safe_name(pid) for pid in prompts}
        for pid, payload in prompts.items():
            _write_data(build, f"prompt/{prompt_files[pid]}", payload)
        for category in inputs.categories:
            _write_data(build, f"category/{safe_name(category)}",
                        pages.category_payload(inputs, category, rows, sets, prompt_files))
        for model in inputs.model_names:
            _write_data(build, f"model/{safe_name(model)}", pages.model_payload(inputs, rows, sets, model))
        _swap_in(build, report_dir)
        _copy_static(report_dir)
        files = sum(1 for name in (*REBUILT_FOLDERS, "plots") for p in (report_dir / name).rglob("*") if p.is_file())
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return ReportSummary(
        index=report_dir / "index.html",
        models=len(inputs.model_names),
        images=inputs.images.height,
        leaders=overview["leaders"],
        thumbnails=stats,
        seconds=time.perf_counter() - started,
        files=files + len(STATIC_FILES),
        exports=exports,
    )


def folder_size(folder: Path) -> int:
    """Bytes under ``folder`` (for the benchmark's size-on-disk figure)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

