"""What a report build may carry over from the last one: each model's outputs, recognised by content.

A model's files (its page, its drill-down and compare cells, its rows of the
export) and its thumbnails depend only on that model's rows (manifest,
failures, scores, its GPU cost) and on a few shared inputs (the prompts, the
metrics, where images are linked from). A digest of exactly those
(``model_digests``) is kept per model in ``data/report/manifest.json``,
with the model's ``model_summary`` (what the shared pages need of it). The
rows' part of the digest is each table's partition digests
(``storage.partition_digests``: recognised from the store's listing, a
file read only when its listing changed), so a build after adding one model
finds every other digest unchanged without reading their rows, leaves their
files as they are, does not look at their thumbnails and writes the shared
pages from their summaries. A model whose rows changed, or a changed shared
input (a new digest for every model), is written again, so a file kept is
always the one a full build would write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import polars as pl

from bench_assets.report.data import MetricInfo, to_json
from bench_assets.storage.partition_digests import content_digest, digest, model_digests as partition_model_digests
from bench_assets.storage.leaderboard import OVERALL

MANIFEST = "manifest.json"
REPORT_VERSION = 2  # bump when a model page, an export part or a summary changes shape, so nothing old is carried over
COSTS = ("generation_gpu_seconds", "scoring_gpu_seconds", "gpu_seconds")

# table -> (model, category) -> the partition's content digest (``PartitionDigests.of_table``)
Listing = Mapping[str, Mapping[tuple[str, str], str]]


def partitions_of(listing: Listing, model: str) -> dict[str, list[str]]:
    """table -> the categories ``model`` has a partition of (what its rows are read from)."""
    return {table: sorted(c for m, c in parts if m == model) for table, parts in listing.items()}


def _costs(leaderboard: pl.DataFrame) -> dict[str, list]:
    if leaderboard.is_empty():
        return {}
    overall = leaderboard.filter(pl.col("category") == OVERALL)
    present = [c for c in COSTS if c in overall.columns]
    return {row[0]: list(row[1:]) for row in overall.select("model", *present).iter_rows()}


def model_digests(listing: Listing, leaderboard: pl.DataFrame, prompts: pl.DataFrame, metrics: Sequence[MetricInfo],
                  models: Mapping[str, Any], candidates: Sequence[str], shared: Any) -> dict[str, str]:
    """Per model of ``candidates``: a digest of every input of its files -- its partitions' digests, its costs,
    its drop-folder entry -- and of ``shared`` (what every model's files read)."""
    parts = {table: partition_model_digests(found) for table, found in listing.items()}
    costs = _costs(leaderboard)
    context = to_json([REPORT_VERSION, shared, prompts_digest(prompts), [vars(m) for m in metrics]])
    return {model: digest(to_json([context, {table: digests.get(model) for table, digests in parts.items()},
                                   costs.get(model), models.get(model)])) for model in candidates}


def _identity(folder: Path) -> list[int] | None:
    """The thumbnail folder's device and inode: a folder deleted and made again is not the one recorded."""
    try:
        found = folder.stat()
    except OSError:
        return None
    return [found.st_dev, found.st_ino]


@dataclass
class Manifest:
    """What the last build wrote: per model its digest, its summary and the images it could not thumbnail, the
    prompts' digest, and which thumbnail folder they were made in."""

    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    prompts: str = ""
    thumbs: list[int] | None = None

    @classmethod
    def read(cls, report_dir: Path) -> "Manifest":
        try:
            loaded = json.loads((report_dir / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if loaded.get("version") != REPORT_VERSION:
            return cls()
        return cls(loaded.get("models", {}), loaded.get("prompts", ""), loaded.get("thumbs"))

    def write(self, report_dir: Path) -> None:
        target = report_dir / MANIFEST
        tmp = target.with_name(f".{MANIFEST}.tmp")
        tmp.write_text(json.dumps({"version": REPORT_VERSION, "models": self.models, "prompts": self.prompts,
                                   "thumbs": self.thumbs}, sort_keys=True), encoding="utf-8")
        tmp.replace(target)


def prompts_digest(prompts: pl.DataFrame) -> str:
    return content_digest(prompts) if not prompts.is_empty() else ""


@dataclass
class Plan:
    """One build's plan: which models keep the last build's files (``same``), which are gone, whether the
    prompt pages and the thumbnail pruning are due."""

    carried: Manifest
    digests: dict[str, str]
    same: set[str]
    gone: set[str]
    lost: bool  # a model changed or went (or nothing was recorded): thumbnails may be left to prune
    prompts_changed: bool
    prompts_now: str

    @classmethod
    def make(cls, report_dir: Path, digests: dict[str, str], prompts: pl.DataFrame, incremental: bool,
             has_files: Callable[[str], bool]) -> "Plan":
        """``digests``: ``model_digests`` now; ``has_files(model)``: whether the model's files from the last build
        are all still there."""
        thumbs = _identity(report_dir / "thumbs")
        carried = Manifest.read(report_dir) if incremental else Manifest()
        if carried.thumbs != thumbs:  # thumbnails made elsewhere, or deleted: nothing is trusted
            carried = Manifest(prompts=carried.prompts)
        same = {m for m, d in digests.items() if carried.models.get(m, {}).get("digest") == d and has_files(m)}
        changed = [m for m, entry in carried.models.items() if digests.get(m) != entry.get("digest")]
        now = prompts_digest(prompts)
        return cls(carried, digests, same, set(carried.models) - set(digests), not carried.models or bool(changed),
                   carried.prompts != now or not (report_dir / "data" / "prompt").is_dir(), now)

    def manifest(self, entries: Mapping[str, dict[str, Any]], report_dir: Path) -> Manifest:
        """This build's manifest: per model shown (``entries``: its summary and the images that got no
        thumbnail), its digest."""
        return Manifest({m: {"digest": self.digests[m], **entry} for m, entry in entries.items()},
                        self.prompts_now, _identity(report_dir / "thumbs"))
