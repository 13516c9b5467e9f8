"""The report of a data directory: what the ``report`` asset and ``bench report`` both call."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench_assets.core.config import load_config
from bench_assets.models.registry import scan_models
from bench_assets.core.paths import DataPaths
from bench_assets.storage.distribution_scoring import open_reference_sets
from bench_assets.storage.store import images_store
from bench_assets.metrics.registry import METRICS
from bench_assets.report.data import MetricInfo
from bench_assets.report.site import ReportSummary, build_report
from bench_assets.storage.partition_digests import partition_digests
from bench_assets.storage.warehouse import open_warehouse


def _shown(value: object, models_dir: Path) -> str:
    """A card field as the model page shows it: paths relative to data/models when inside it."""
    if isinstance(value, Path):
        try:
            return value.resolve().relative_to(models_dir.resolve()).as_posix()
        except ValueError:
            return str(value)
    return str(value)


def model_sources(models_dir: Path) -> dict[str, dict[str, str]]:
    """Kind and source of every model in the drop folder, for the model pages.

    The source is the file or folder name, plus a card's fields (repo,
    base, lora, scale ...). Cards hold no secrets: tokens only ever come
    from the environment.
    """
    sources = {}
    for entry in scan_models(models_dir):
        source = _shown(entry.path, models_dir)
        if entry.card is not None:
            fields = dataclasses.asdict(entry.card.source)
            source += " (" + ", ".join(f"{k}: {_shown(v, models_dir)}" for k, v in fields.items() if v is not None) + ")"
        sources[entry.key] = {"kind": entry.kind, "source": source}
    return sources


def build_data_dir_report(paths: DataPaths, images_per_prompt: int = 4) -> ReportSummary:
    """Rebuild ``data/report/`` from the warehouse, every registered metric, the drop folder.

    The warehouse and the images are wherever the configuration puts them now
    (the data directory, or a bucket), so a moved data directory needs no rewrite. Unchanged models are
    recognised by the data directory's cached partition digests, so their rows are not read.
    """
    config = load_config(paths)
    references, _ = open_reference_sets(paths, config)  # one that does not load: its rows still get a page
    warehouse = open_warehouse(paths, config)
    return build_report(
        warehouse,
        paths.report,
        images_store(paths, config),
        [MetricInfo.of(cls) for cls in METRICS.values()],
        models=model_sources(paths.models),
        default_images_per_prompt=images_per_prompt,
        references=references,
        digests=partition_digests(paths, warehouse),
    )
