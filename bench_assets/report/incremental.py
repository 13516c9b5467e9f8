"""What a report build may carry over from the last one: each model's outputs, recognised by content.

A model's files (its page, its drill-down and compare cells, its rows of the
export) and its thumbnails depend only on that model's rows (manifest,
failures, scores, its GPU cost) and on a few shared inputs (the prompts, the
metrics, where images are linked from). A digest of exactly those
(``model_digests``) is kept per model in ``data/report/manifest.json``; a
build after adding one model finds every other digest unchanged, leaves
their files as they are, and does not look at their thumbnails. A model
whose rows changed, or a changed shared input (a new digest for every
model), is written again, so a file kept is always the one a full build
would write.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import polars as pl

from bench_assets.report.data import ReportInputs, to_json
from bench_assets.storage.partition_digests import content_digest
from bench_assets.storage.leaderboard import OVERALL

MANIFEST = "manifest.json"
REPORT_VERSION = 1  # bump when a model page or an export part changes shape, so nothing old is carried over
COSTS = ("generation_gpu_seconds", "scoring_gpu_seconds", "gpu_seconds")


def _per_model(frame: pl.DataFrame) -> dict[str, str]:
    if frame.is_empty() or "model" not in frame.columns:
        return {}
    return {model: content_digest(rows) for (model,), rows in frame.partition_by("model", as_dict=True).items()}


def _costs(inputs: ReportInputs) -> dict[str, list]:
    board = inputs.leaderboard
    if board.is_empty():
        return {}
    overall = board.filter(pl.col("category") == OVERALL)
    present = [c for c in COSTS if c in overall.columns]
    return {row[0]: list(row[1:]) for row in overall.select("model", *present).iter_rows()}


def model_digests(inputs: ReportInputs, shared: Any) -> dict[str, str]:
    """Per model: a digest of every input of its page and export rows, and of ``shared`` (what every page reads)."""
    frames = {"images": inputs.images, "failures": inputs.failures,
              **{f"scores:{name}": frame for name, frame in inputs.scores.items()}}
    parts = {name: _per_model(frame) for name, frame in frames.items()}
    costs = _costs(inputs)
    context = to_json([REPORT_VERSION, shared, prompts_digest(inputs), [vars(m) for m in inputs.metrics]])
    return {model: hashlib.blake2b(to_json([context, {name: digests.get(model) for name, digests in parts.items()},
                                            costs.get(model), inputs.models.get(model)]).encode(),
                                   digest_size=12).hexdigest() for model in inputs.model_names}


def _identity(folder: Path) -> list[int] | None:
    """The thumbnail folder's device and inode: a folder deleted and made again is not the one recorded."""
    try:
        found = folder.stat()
    except OSError:
        return None
    return [found.st_dev, found.st_ino]


@dataclass
class Manifest:
    """What the last build wrote: per model its digest and the thumbnails it could not make, the prompts' digest,
    and which thumbnail folder they were made in."""

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


def prompts_digest(inputs: ReportInputs) -> str:
    return content_digest(inputs.prompts) if not inputs.prompts.is_empty() else ""


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
    def make(cls, report_dir: Path, inputs: ReportInputs, shared: Any, incremental: bool,
             has_files: Callable[[str], bool]) -> "Plan":
        """``has_files(model)``: whether the model's files from the last build are all still there."""
        thumbs = _identity(report_dir / "thumbs")
        carried = Manifest.read(report_dir) if incremental else Manifest()
        if carried.thumbs != thumbs:  # thumbnails made elsewhere, or deleted: nothing is trusted
            carried = Manifest(prompts=carried.prompts)
        digests = model_digests(inputs, shared)
        same = {m for m, d in digests.items() if carried.models.get(m, {}).get("digest") == d and has_files(m)}
        changed = [m for m, entry in carried.models.items() if digests.get(m) != entry.get("digest")]
        now = prompts_digest(inputs)
        return cls(carried, digests, same, set(carried.models) - set(digests), not carried.models or bool(changed),
                   carried.prompts != now or not (report_dir / "data" / "prompt").is_dir(), now)

    def manifest(self, thumbs: Mapping[str, str | None], images: pl.DataFrame, report_dir: Path) -> Manifest:
        """This build's manifest: every model's digest and the images it has that got no thumbnail."""
        shas = dict(images.group_by("model").agg(pl.col("sha256").unique()).iter_rows()) if images.height else {}
        return Manifest({m: {"digest": d, "unreadable": sorted(s for s in shas.get(m, []) if thumbs.get(s) is None)}
                         for m, d in self.digests.items()}, self.prompts_now, _identity(report_dir / "thumbs"))
