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
from bench_assets.report.incremental import Listing, Plan, model_digests, partitions_of
from bench_assets.report.thumbnails import (
    THUMBS_FOLDER, ThumbnailStats, ensure_thumbnail, prune_thumbnails, thumbnail_relpath,
)
from bench_assets.storage.partition_digests import PartitionDigests
from bench_assets.storage.results import (
    LEADERBOARD_TABLES, PROMPTS_TABLE, prompts as read_prompts, read_model_column, write_export,
)
from bench_assets.storage.status import FAILURES_TABLE, IMAGES_TABLE
from bench_assets.storage.warehouse import Warehouse

STATIC_FILES = ("index.html", "report.js", "report.css")
PLOT_VERSION = 2  # bump when the plots change look, so cached figures are redrawn
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


def _thumbnails(images_rows: pl.DataFrame, thumbs_dir: Path, images: Store,
                stats: ThumbnailStats) -> dict[str, str | None]:
    """sha256 -> thumbnail href (relative to the report) of one model's images, making only the missing ones."""
    hrefs: dict[str, str | None] = {}
    if images_rows.is_empty():
        return hrefs
    for sha, path in images_rows.select("sha256", "path").unique("sha256").sort("sha256").iter_rows():
        rel = ensure_thumbnail(images, recorded_image_key(path), sha, thumbs_dir, stats)
        hrefs[sha] = f"{THUMBS_FOLDER}/{rel}" if rel else None
    return hrefs


def _reference_pages(report_dir: Path, board: pl.DataFrame, references: Mapping[str, ReferenceSet],
                     stats: ThumbnailStats) -> tuple[dict[str, str], set[str]]:
    """Write each reference set's page (removing those of sets gone); (name -> its data file, the thumbnails
    they use, relative to the thumbnails folder)."""
    thumbs = reference_thumbnails(references, report_dir / THUMBS_FOLDER, stats, f"{THUMBS_FOLDER}/")
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


def _plots(site: pages.SiteInputs, report_dir: Path) -> dict[str, dict[str, str]]:
    """Per metric: the means plot and the quality-versus-cost plot (paths relative to the report).

    Drawing is most of a small report's build time, so a figure whose data
    has not changed keeps its file; files no figure uses any more are removed.
    """
    written: dict[str, dict[str, str]] = {}
    for metric in site.metrics:
        points = [ModelPoint(**p) for p in pages.model_points(site, metric.name)]
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


def _model_files(report_dir: Path, own: pages.ReportInputs, rows: pl.DataFrame, sets: pl.DataFrame,
                 metrics: Sequence[pages.MetricInfo], tables: Sequence[str], model: str,
                 prompt_files: Mapping[str, str]) -> int:
    """Everything of one model (``own``, ``rows``, ``sets``: its rows only): its page, its drill-down and
    compare cells (``data/model/<model>/``, written aside and renamed into place) and its export rows
    (``export/<table>/<model>.csv``, one per registered metric it has rows of); the files written."""
    name = safe_name(model)
    staging = report_dir / "data" / "model" / f".{name}-{uuid.uuid4().hex[:8]}"
    written = 0
    try:
        for pid, payload in pages.prompt_images(own, rows).items():
            _write_data(report_dir, f"model/{name}/prompt/{prompt_files[pid]}", payload,
                        staging / "prompt" / f"{prompt_files[pid]}.js")
            written += 1
        for category, payload in pages.category_cells(own, rows, sets).items():
            _write_data(report_dir, f"model/{name}/category/{safe_name(category)}", payload,
                        staging / "category" / f"{safe_name(category)}.js")
            written += 1
        _replace_folder(staging, report_dir / "data" / "model" / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_data(report_dir, f"model/{name}", pages.model_payload(own, rows, sets, model))
    for metric in metrics:
        target = report_dir / "export" / safe_name(metric.table) / f"{name}.{EXPORT_FORMAT}"
        if metric.table in tables and metric.name in own.scores:
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


def _exports_listed(report_dir: Path, site: pages.SiteInputs, tables: Sequence[str]) -> list[str]:
    """The export files for the overview: the shared tables, then each score table's per-model files."""
    shared = [f"export/{name}.{EXPORT_FORMAT}" for name in (*LEADERBOARD_TABLES, PROMPTS_TABLE)
              if (report_dir / "export" / f"{name}.{EXPORT_FORMAT}").is_file()]
    parts = [f"export/{safe_name(m.table)}/{safe_name(model)}.{EXPORT_FORMAT}"
             for m in site.metrics if m.table in tables
             for model in site.model_names if m.name in site.summaries[model]["scored"]]
    return shared + parts


def _shared_files(warehouse: Warehouse, site: pages.SiteInputs, report_dir: Path, prompt_files: Mapping[str, str],
                  prompts_changed: bool) -> int:
    """The pages every model shows on: each category's grid (its cells are the models'), each prompt's page
    (only when the prompts changed), and the leaderboards' and prompts' export; the files written."""
    written = 0
    for category in site.categories:
        _write_data(report_dir, f"category/{safe_name(category)}",
                    pages.category_payload(site, category, dict(prompt_files)))
        written += 1
    if prompts_changed:
        pages_now = pages.prompt_pages(site.prompts)
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


@dataclass(frozen=True)
class _Shared:
    """What every model's files read besides its own rows (each is in every model's digest)."""

    prompts: pl.DataFrame
    leaderboard: pl.DataFrame
    models: dict[str, dict[str, str]]  # the drop folder: key -> kind, source
    prefix: str  # a full image's link, before its key
    tables: list[str]  # the score tables exported
    default_images_per_prompt: int
    prompt_files: dict[str, str]  # prompt id -> its file name


@dataclass
class _ModelsBuilt:
    """What the per-model pass leaves for the shared pages: every shown model's manifest entry (its summary,
    the images that got no thumbnail), the files written, and each built model's image digests (for pruning)."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    written: int = 0
    shas: list[pl.Series] = field(default_factory=list)


def _build_models(warehouse: Warehouse, report_dir: Path, images: Store, metrics: Sequence[pages.MetricInfo],
                  shared: _Shared, plan: Plan, listing: Listing, stats: ThumbnailStats) -> _ModelsBuilt:
    """Each model in turn: an unchanged one keeps its files and its manifest entry; any other has its rows read,
    its thumbnails made and its files written, then its rows are dropped before the next model's are read."""
    built = _ModelsBuilt()
    for model in sorted(plan.digests):
        if model in plan.same:
            built.entries[model] = {k: v for k, v in plan.carried.models[model].items() if k != "digest"}
            stats.cached += built.entries[model]["summary"]["thumbnails"]
            continue
        own = pages.ReportInputs.read_model(warehouse, metrics, model, shared.prompts, shared.leaderboard,
                                            shared.models, partitions_of(listing, model))
        thumbs = _thumbnails(own.images, report_dir / THUMBS_FOLDER, images, stats)
        rows, sets = pages.image_rows(own, thumbs, shared.prefix), pages.set_values(own)
        summary = pages.model_summary(own, rows, sets, len(thumbs), shared.default_images_per_prompt)
        if model not in pages.shown_models(shared.models, shared.leaderboard, {model: summary}):
            _remove_model(report_dir, model)  # only empty partitions: not a model the report shows
            continue
        built.written += _model_files(report_dir, own, rows, sets, metrics, shared.tables, model, shared.prompt_files)
        unreadable = sorted(sha for sha, href in thumbs.items() if href is None)
        built.entries[model] = {"summary": summary, "unreadable": unreadable}
        if own.images.height:
            built.shas.append(own.images["sha256"])
    return built


def _thumbnails_in_use(warehouse: Warehouse, built: _ModelsBuilt, plan: Plan, listing: Listing) -> set[str]:
    """Every shown model's thumbnails (relative to the thumbnail folder): the built models' from their rows,
    the unchanged ones' from their manifests' ``sha256`` column only."""
    columns = list(built.shas)
    for model in sorted(plan.same & set(built.entries)):
        categories = partitions_of(listing, model).get(IMAGES_TABLE, ())
        columns.append(read_model_column(warehouse, IMAGES_TABLE, model, categories, "sha256"))
    if not columns:
        return set()
    return {thumbnail_relpath(sha) for sha in pl.concat(columns).unique().to_list()}


def _overview(report_dir: Path, site: pages.SiteInputs, exports: list[str], distribution: Any) -> dict[str, Any]:
    """Write the overview (leaderboard, plots, health, where each category's and model's file is); its payload."""
    overview = pages.overview_payload(site, _plots(site, report_dir), exports)
    overview["files"] = {"category": {c: f"category/{safe_name(c)}" for c in site.categories},
                         "model": {m: f"model/{safe_name(m)}" for m in site.model_names}}
    overview["distribution"] = distribution
    _write_data(report_dir, "overview", overview)
    return overview


def _shared_inputs(warehouse: Warehouse, report_dir: Path, images: Store, metrics: Sequence[pages.MetricInfo],
                   models: dict[str, dict[str, str]], default_images_per_prompt: int,
                   score_tables: Sequence[str] | None) -> _Shared:
    """The small tables and settings every model's files read (read once per build)."""
    prompts = read_prompts(warehouse)
    return _Shared(prompts, warehouse.read_table(pages.LEADERBOARD_TABLE), models,
                   pages.full_image_prefix(report_dir, images),
                   list(score_tables) if score_tables is not None else [m.table for m in metrics],
                   default_images_per_prompt,
                   {pid: safe_name(pid) for pid in prompts["prompt_id"]} if not prompts.is_empty() else {})


def _plan(report_dir: Path, listing: Listing, shared: _Shared, metrics: Sequence[pages.MetricInfo],
          incremental: bool) -> Plan:
    """Which models keep their files: every model shown from the listing, the leaderboard or the drop folder,
    each with its digest now."""
    board = shared.leaderboard
    candidates = sorted(set(shared.models) | {m for table in (IMAGES_TABLE, FAILURES_TABLE) for m, _ in listing[table]}
                        | (set(board["model"]) if board.height else set()))
    digests = model_digests(listing, board, shared.prompts, metrics, shared.models, candidates,
                            [shared.prefix, shared.default_images_per_prompt, sorted(shared.tables)])
    return Plan.make(report_dir, digests, shared.prompts, incremental,
                     lambda m: (report_dir / "data" / "model" / f"{safe_name(m)}.js").is_file())


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
    digests: PartitionDigests | None = None,
) -> ReportSummary:
    """Build the site from the warehouse into ``report_dir``; thumbnails already made are reused.

    ``images`` is the image store the rows' keys belong to (a folder path opens a local one);
    ``references`` the registered reference sets, each of which gets a page. ``incremental``: a model whose
    inputs are unchanged since the last build (``report.incremental``) keeps its files and its thumbnails
    are not looked at; the shared pages are written again. False:
    every model's files are written. ``digests``: the partition digests to recognise unchanged models by (the
    data directory's cache, saved after the build); none: every partition is read once to digest it.

    One model's rows are in memory at a time; the shared pages are written from the leaderboard, the
    prompts and each model's summary.
    """
    started = time.perf_counter()
    images = images if isinstance(images, Store) else open_store(images)
    report_dir.mkdir(parents=True, exist_ok=True)
    digests = digests or PartitionDigests(warehouse)
    listing = {table: digests.of_table(table) for table in dict.fromkeys([IMAGES_TABLE, FAILURES_TABLE,
                                                                          *(m.table for m in metrics)])}
    shared = _shared_inputs(warehouse, report_dir, images, metrics, models or {}, default_images_per_prompt,
                            score_tables)
    plan = _plan(report_dir, listing, shared, metrics, incremental)
    stats = ThumbnailStats()
    built = _build_models(warehouse, report_dir, images, metrics, shared, plan, listing, stats)
    summaries = {m: entry["summary"] for m, entry in built.entries.items()}
    site = pages.SiteInputs(shared.leaderboard, shared.prompts, pages.present_metrics(metrics, summaries), summaries,
                            shared.models)
    board = distribution_board(warehouse)
    reference_files, reference_thumbs = _reference_pages(report_dir, board, references or {}, stats)
    if plan.lost or not site.images:  # thumbnails no image uses any more: only when a model changed or went
        stats.removed = prune_thumbnails(report_dir / THUMBS_FOLDER,
                                         _thumbnails_in_use(warehouse, built, plan, listing) | reference_thumbs)
    for gone in plan.gone - set(built.entries):
        _remove_model(report_dir, gone)
    written = built.written + _shared_files(warehouse, site, report_dir, shared.prompt_files, plan.prompts_changed)
    exports = _exports_listed(report_dir, site, shared.tables)
    overview = _overview(report_dir, site, exports, overview_distribution(board, reference_files))
    plan.manifest(built.entries, report_dir).write(report_dir)
    digests.save()
    _copy_static(report_dir)
    kept = len(plan.same & set(site.model_names))
    return ReportSummary(index=report_dir / "index.html", models=len(site.model_names), images=site.images,
                         leaders=overview["leaders"], thumbnails=stats, seconds=time.perf_counter() - started,
                         files=written + 1 + len(STATIC_FILES), exports=exports,
                         pages_written=len(site.model_names) - kept, carried_over=kept)


def folder_size(folder: Path) -> int:
    """Bytes under ``folder`` (for the benchmark's size-on-disk figure)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

