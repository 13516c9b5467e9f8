"""Thumbnails: the report shows these, never the full-size PNGs.

One WebP per image, named by the image's sha256, so an unchanged image is
never thumbnailed twice (across rebuilds, models and categories) and a
changed one gets a new file. The source is read through the image store: a
local file by its path, an object's bytes otherwise (only for thumbnails not
made yet).
"""

from __future__ import annotations

import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from functools import partial
from typing import Any, BinaryIO, Callable, Iterable, Mapping

from bench_assets.core.naming import recorded_image_key
from bench_assets.core.objects import Store

THUMB_SIZE = 256
THUMB_QUALITY = 80
THUMB_SUFFIX = ".webp"
THUMBS_FOLDER = "thumbs"  # under the report folder


@dataclass
class ThumbnailStats:
    """How many thumbnails a build made and how many it found already made."""

    created: int = 0
    cached: int = 0
    removed: int = 0  # thumbnails of images the warehouse no longer has
    unreadable: list[str] | None = None


def thumbnail_relpath(sha256: str) -> str:
    """Where an image's thumbnail lives, relative to the thumbnail folder."""
    return f"{sha256[:2]}/{sha256}{THUMB_SUFFIX}"


def make_thumbnail(source: Path | BinaryIO, target: Path, size: int = THUMB_SIZE) -> None:
    """Downscale ``source`` to fit ``size``² and write it as WebP, atomically."""
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with Image.open(source) as img:
            img = img.convert("RGB")
            img.thumbnail((size, size), Image.Resampling.LANCZOS)
            img.save(tmp, format="WEBP", quality=THUMB_QUALITY, method=4)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _source(images: Store, key: str) -> Path | BinaryIO:
    """The image to open: the local file itself, or the object's bytes in memory."""
    path = images.local_path(key)
    return path if path is not None else io.BytesIO(images.get_bytes(key))


def ensure_thumbnail(images: Store, key: str, sha256: str, thumbs_dir: Path, stats: ThumbnailStats) -> str | None:
    """The thumbnail of the image store's ``key`` (``thumbnail_from``)."""
    return thumbnail_from(partial(_source, images, key), images.location(key), sha256, thumbs_dir, stats)


def thumbnail_from(source: Callable[[], Path | BinaryIO], where: str, sha256: str, thumbs_dir: Path,
                   stats: ThumbnailStats) -> str | None:
    """The thumbnail's path relative to ``thumbs_dir``, reading ``source()`` only if it is not there yet.

    An image that cannot be read gets no thumbnail (None) and is listed in
    ``stats.unreadable`` (``where`` names it): the report shows it as missing instead of failing.
    """
    rel = thumbnail_relpath(sha256)
    target = thumbs_dir / rel
    if target.is_file():
        stats.cached += 1
        return rel
    try:
        make_thumbnail(source(), target)
    except (OSError, ValueError) as exc:
        stats.unreadable = [*(stats.unreadable or []), f"{where}: {exc}"]
        return None
    stats.created += 1
    return rel


def thumbnails_of(images: Store, rows: Iterable[Mapping[str, Any]], thumbs_dir: Path) -> ThumbnailStats:
    """The thumbnails of manifest rows (``path``, ``sha256``), made where missing.

    What the images step calls for the images it has just written: at real
    sizes a thumbnail costs 20-80 ms, so a new model's 40,000 would cost a
    report refresh 800-3,200 s, but add a few percent to generating them.
    The report then finds them made.
    """
    stats = ThumbnailStats()
    for row in rows:
        ensure_thumbnail(images, recorded_image_key(row["path"]), row["sha256"], thumbs_dir, stats)
    return stats


def prune_thumbnails(thumbs_dir: Path, keep: set[str]) -> int:
    """Delete thumbnails whose image is no longer in the warehouse (``keep``: relative paths)."""
    removed = 0
    for path in thumbs_dir.glob(f"*/*{THUMB_SUFFIX}"):
        if path.relative_to(thumbs_dir).as_posix() not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
