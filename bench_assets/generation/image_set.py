"""An image set on disk: which images a partition should have, and which it has.

Every PNG carries its own provenance in a ``bench_assets`` text chunk (set
fingerprint, seed, settings, seconds, library versions). That makes the files
self-describing: a run cancelled half-way leaves valid images that count on
resume, the manifest can always be rebuilt from disk, and an image made with
other settings is recognised as belonging to another set and is replaced,
never silently mixed in.

No torch here: planning and manifests are cheap and used outside GPU steps.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bench_assets.core.models import sha256_file
from bench_assets.core.naming import ImageName, image_path
from bench_assets.core.prompts import Prompt
from bench_assets.core.settings import GenerationSettings

PNG_META_KEY = "bench_assets"


@dataclass(frozen=True)
class ImageJob:
    """One image a partition should have."""

    prompt: Prompt
    index: int
    seed: int
    path: Path


def plan_images(
    images_dir: Path, model: str, category: str, prompts: Sequence[Prompt], settings: GenerationSettings
) -> list[ImageJob]:
    """Every image of the partition, in (prompt, index) order."""
    jobs = []
    for prompt in prompts:
        for k in range(settings.images_per_prompt):
            name = ImageName(prompt.id, k, settings.seed(k))
            jobs.append(ImageJob(prompt, k, name.seed, image_path(images_dir, model, category, name)))
    return jobs


def read_png_meta(path: Path) -> dict[str, Any] | None:
    """The provenance stored in the PNG, or None if absent/unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            raw = img.text.get(PNG_META_KEY)  # type: ignore[attr-defined]
    except (OSError, SyntaxError, ValueError):
        return None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return None


PNG_TRAILER = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk every complete PNG ends with


def is_complete_png(path: Path) -> bool:
    """Whether the file ends with PNG's IEND chunk: a truncated file does not (12 bytes read, no decode)."""
    try:
        with path.open("rb") as handle:
            handle.seek(-len(PNG_TRAILER), os.SEEK_END)
            return handle.read() == PNG_TRAILER
    except OSError:
        return False


def belongs_to_set(path: Path, set_fingerprint: str) -> bool:
    """A whole PNG of this set: its provenance says so and the file is not cut short."""
    meta = read_png_meta(path) if path.is_file() else None
    return bool(meta) and meta.get("set_fingerprint") == set_fingerprint and is_complete_png(path)


def missing_jobs(jobs: Sequence[ImageJob], set_fingerprint: str) -> list[ImageJob]:
    """Jobs with no image of this set on disk (absent, unreadable, or another set's)."""
    return [job for job in jobs if not belongs_to_set(job.path, set_fingerprint)]


def write_png_atomic(path: Path, pixels: Any, meta: dict[str, Any]) -> None:
    """Write a uint8 HxWx3 array as PNG via temp file + rename: readers never see half a file."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text(PNG_META_KEY, json.dumps(meta, sort_keys=True))
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        Image.fromarray(pixels).save(tmp, format="PNG", pnginfo=info)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


MANIFEST_COLUMNS = (
    "model", "category", "prompt_id", "image_index", "seed", "path", "sha256", "size", "mtime_ns",
    "set_fingerprint", "model_fingerprint", "settings", "seconds", "gpu_seconds", "device", "dtype",
    "torch_version", "diffusers_version", "created_at", "width", "height",
)


def manifest_rows(
    model: str, category: str, jobs: Sequence[ImageJob], set_fingerprint: str
) -> list[dict[str, Any]]:
    """One manifest row per image of this set that exists on disk."""
    rows = []
    for job in jobs:
        meta = read_png_meta(job.path) if job.path.is_file() else None
        if not meta or meta.get("set_fingerprint") != set_fingerprint or not is_complete_png(job.path):
            continue
        stat = job.path.stat()
        rows.append(
            {
                "model": model,
                "category": category,
                "prompt_id": job.prompt.id,
                "image_index": job.index,
                "seed": job.seed,
                "path": str(job.path),
                "sha256": sha256_file(job.path),
                "size": stat.st_size,  # with mtime_ns: how a later check sees the file changed without hashing it
                "mtime_ns": stat.st_mtime_ns,
                "set_fingerprint": set_fingerprint,
                "model_fingerprint": meta.get("model_fingerprint"),
                "settings": json.dumps(meta.get("settings", {}), sort_keys=True),
                "seconds": float(meta.get("seconds", 0.0)),
                "gpu_seconds": float(meta.get("gpu_seconds", meta.get("seconds", 0.0))),
                "device": meta.get("device"),
                "dtype": meta.get("dtype"),
                "torch_version": meta.get("torch_version"),
                "diffusers_version": meta.get("diffusers_version"),
                "created_at": meta.get("created_at"),
                "width": int(meta.get("width", 0)),
                "height": int(meta.get("height", 0)),
            }
        )
    return rows


@dataclass(frozen=True)
class FileCheck:
    """What a manifest row's file looks like now."""

    path: str
    problem: str | None  # None: the same bytes as recorded; else "missing", "changed" or "unreadable"


def check_manifest_files(rows: Sequence[dict[str, Any]]) -> list[FileCheck]:
    """Compare each recorded image with the file on disk now.

    Size and mtime first (one ``stat``); only a file whose size or mtime
    changed is hashed. A file with the recorded hash but a new mtime (touched,
    copied) is still the same image.
    """
    checks = []
    for row in rows:
        path = Path(row["path"])
        try:
            stat = path.stat()
        except FileNotFoundError:
            checks.append(FileCheck(str(path), "missing"))
            continue
        except OSError:
            checks.append(FileCheck(str(path), "unreadable"))
            continue
        if stat.st_size == row.get("size") and stat.st_mtime_ns == row.get("mtime_ns"):
            checks.append(FileCheck(str(path), None))
            continue
        try:
            same = sha256_file(path) == row["sha256"]
        except OSError:
            checks.append(FileCheck(str(path), "unreadable"))
            continue
        checks.append(FileCheck(str(path), None if same else "changed"))
    return checks


def describe_problems(checks: Sequence[FileCheck]) -> str:
    """"2 missing, 1 changed on disk (first: /path/x.png)", or "" when every file is as recorded."""
    bad = [c for c in checks if c.problem]
    if not bad:
        return ""
    counts: dict[str, int] = {}
    for check in bad:
        counts[check.problem] = counts.get(check.problem, 0) + 1  # type: ignore[index]
    summary = ", ".join(f"{n} {problem}" for problem, n in sorted(counts.items()))
    return f"{summary} on disk (first: {bad[0].path})"
