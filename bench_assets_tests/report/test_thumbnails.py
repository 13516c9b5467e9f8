"""Thumbnails: made once per image content, never twice, and never from a broken file."""

from __future__ import annotations

import hashlib

from PIL import Image

from bench_assets.storage.store import open_store
from bench_assets.report.thumbnails import THUMB_SIZE, ThumbnailStats, ensure_thumbnail, prune_thumbnails


def _png(path, size, colour):
    Image.new("RGB", size, colour).save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_thumbnail_is_made_once_and_fits_the_box_keeping_the_aspect(tmp_path):
    wide = tmp_path / "wide.png"
    sha = _png(wide, (600, 300), (200, 10, 10))
    stats = ThumbnailStats()
    rel = ensure_thumbnail(open_store(tmp_path), wide.name, sha, tmp_path / "thumbs", stats)
    assert rel == f"{sha[:2]}/{sha}.webp"
    target = tmp_path / "thumbs" / rel
    with Image.open(target) as thumb:
        assert thumb.format == "WEBP"
        assert thumb.size == (THUMB_SIZE, THUMB_SIZE // 2)
        red, green, _ = thumb.convert("RGB").getpixel((10, 10))
        assert red > 150 and green < 60, "the thumbnail shows the image"
    made = target.stat().st_mtime_ns
    again = ensure_thumbnail(open_store(tmp_path), wide.name, sha, tmp_path / "thumbs", stats)
    assert again == rel and target.stat().st_mtime_ns == made
    assert (stats.created, stats.cached) == (1, 1)


def test_new_content_gets_a_new_thumbnail_and_small_images_are_not_enlarged(tmp_path):
    small = tmp_path / "small.png"
    first = _png(small, (64, 64), (0, 0, 255))
    stats = ThumbnailStats()
    ensure_thumbnail(open_store(tmp_path), small.name, first, tmp_path / "thumbs", stats)
    second = _png(small, (64, 64), (0, 255, 0))
    rel = ensure_thumbnail(open_store(tmp_path), small.name, second, tmp_path / "thumbs", stats)
    assert first != second and stats.created == 2
    with Image.open(tmp_path / "thumbs" / rel) as thumb:
        assert thumb.size == (64, 64)
    assert len(list((tmp_path / "thumbs").rglob("*.webp"))) == 2


def test_an_unreadable_image_gets_no_thumbnail_and_is_named(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    stats = ThumbnailStats()
    assert ensure_thumbnail(open_store(tmp_path), broken.name, "ab" * 32, tmp_path / "thumbs", stats) is None
    assert stats.created == 0 and stats.unreadable and str(broken) in stats.unreadable[0]
    assert not list((tmp_path / "thumbs").rglob("*")) or not list((tmp_path / "thumbs").rglob("*.webp"))
    assert not list((tmp_path / "thumbs").rglob("*.tmp"))


def test_pruning_removes_only_thumbnails_of_images_that_are_gone(tmp_path):
    stats = ThumbnailStats()
    kept, gone = [], []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        sha = _png(tmp_path / f"{i}.png", (32, 32), colour)
        rel = ensure_thumbnail(open_store(tmp_path), f"{i}.png", sha, tmp_path / "thumbs", stats)
        (kept if i < 2 else gone).append(rel)
    assert prune_thumbnails(tmp_path / "thumbs", set(kept)) == 1
    assert sorted(p.relative_to(tmp_path / "thumbs").as_posix() for p in (tmp_path / "thumbs").rglob("*.webp")) == sorted(kept)
