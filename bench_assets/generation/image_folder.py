"""Ingest the images of a model we cannot run (an API model) from a folder.

An image-folder card (``images: folder``, optional ``grid: [rows, cols]``)
stands in for generation: each planned image of the partition (the same
``plan_images`` as generated sets, so manifests and metrics work unchanged)
is cut from the source files and written as a PNG with provenance.

Layout, by prompt id, optionally under a category subfolder:

- ``<folder>[/<category>]/<prompt_id>.<png|jpg|jpeg|webp>``: one image, or
  one grid of rows x cols tiles (OneIG-Bench API submissions come as 2x2
  grids); tiles in row-major order are image indices 0..n-1;
- ``<folder>[/<category>]/<prompt_id>/<anything>.<ext>``: several images,
  in natural name order (with ``grid``, each file is a grid).

A card with a grid asks for rows x cols images per prompt (see
``model_cards``); if settings ask for fewer, the first tiles are used; if
they ask for more, the extra images are failures ("only N images"), never
invented. A missing file and an all-black tile (OneIG pads failed
generations that way) are failures too: reported, never written, never scored.

PIL and numpy only: no torch, nothing is loaded on a GPU.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from bench_assets.core.errors import BenchError
from bench_assets.models.cards import IMAGE_EXTENSIONS, ImageFolderSource
from bench_assets.core.settings import set_fingerprint
from bench_assets.generation.generate import (
    GenerationFailure, GenerationReport, GenerationRequest, image_provenance, todo_jobs,
)
from bench_assets.generation.image_set import ImageJob, plan_images, write_image

Log = Callable[[str], None]
SOURCE_DTYPE = "source"  # stands for "the provider's pixels" in the set fingerprint and manifest
SOURCE_DEVICE = "none"
BLACK_MAX = 2  # a tile whose brightest pixel is <= this is padding, not an image (JPEG noise allowed)


class SourceError(BenchError, RuntimeError):
    """A prompt's source images are missing or unreadable; the message names the file or folder."""


def _natural_key(path: Path) -> list[Any]:
    # "2.png" before "10.png", as providers number them.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class FolderIndex:
    """The source folder listed once per ingest (a OneIG folder holds thousands of files)."""

    def __init__(self, source: ImageFolderSource):
        self.source = source
        self.extensions = (source.extension,) if source.extension else IMAGE_EXTENSIONS
        self._listings: dict[Path, dict[str, list[Path]]] = {}

    def _is_image(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower().lstrip(".") in self.extensions

    def _listing(self, folder: Path) -> dict[str, list[Path]]:
        if folder not in self._listings:
            by_stem: dict[str, list[Path]] = defaultdict(list)
            if folder.is_dir():
                for path in folder.iterdir():
                    if not path.name.startswith(".") and self._is_image(path):
                        by_stem[path.stem].append(path)
            self._listings[folder] = by_stem
        return self._listings[folder]

    def files_for(self, category: str, prompt_id: str) -> list[Path]:
        """The prompt's source files, category subfolder first; SourceError if none or ambiguous."""
        folder = self.source.images
        for root in (folder / category, folder):
            files = sorted(self._listing(root).get(prompt_id, []))
            if len(files) > 1:
                raise SourceError(f"{root}: several files for prompt {prompt_id!r} ({[f.name for f in files]}); "
                                  "keep one, or set 'extension' in the card")
            if files:
                return files
            subfolder = root / prompt_id
            if subfolder.is_dir():
                images = sorted((p for p in subfolder.iterdir() if not p.name.startswith(".") and self._is_image(p)),
                                key=_natural_key)
                if images:
                    return images
        raise SourceError(
            f"{folder}: no image for prompt {prompt_id!r} (looked for {category}/{prompt_id}.<ext>, "
            f"{prompt_id}.<ext> and {prompt_id}/*.<ext> with <ext> in {list(self.extensions)})"
        )


def split_grid(pixels: Any, rows: int, cols: int) -> list[Any]:
    """Tiles of an HxWx3 array in row-major order; uneven edges go to the last row/column."""
    height, width = pixels.shape[:2]
    if height < rows or width < cols:
        raise ValueError(f"a {width}x{height} image cannot hold a {rows}x{cols} grid")
    ys = [r * height // rows for r in range(rows + 1)]
    xs = [c * width // cols for c in range(cols + 1)]
    return [pixels[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] for r in range(rows) for c in range(cols)]


def _read_rgb(path: Path) -> Any:
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise SourceError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None


def source_tiles(source: ImageFolderSource, files: list[Path]) -> list[tuple[Path, int, Any]]:
    """(file, tile index within the file, pixels) for every image the files hold, in order."""
    tiles = []
    for path in files:
        pixels = _read_rgb(path)
        if source.grid is None:
            tiles.append((path, 0, pixels))
            continue
        try:
            parts = split_grid(pixels, *source.grid)
        except ValueError as exc:
            raise SourceError(f"{path}: {exc}") from None
        tiles += [(path, index, tile) for index, tile in enumerate(parts)]
    return tiles


def is_black(pixels: Any, tolerance: int = BLACK_MAX) -> bool:
    return int(pixels.max()) <= tolerance


def _by_prompt(jobs: list[ImageJob]) -> dict[str, list[ImageJob]]:
    grouped: dict[str, list[ImageJob]] = {}
    for job in jobs:
        grouped.setdefault(job.prompt.id, []).append(job)
    return grouped


def _meta(request: GenerationRequest, job: ImageJob, set_fp: str, file: Path, tile: int, pixels: Any) -> dict:
    source = request.entry.card.source if request.entry.card else None
    return image_provenance(
        request, job, set_fp,
        seconds=0.0, gpu_seconds=0.0, device=SOURCE_DEVICE, dtype=SOURCE_DTYPE,
        width=int(pixels.shape[1]), height=int(pixels.shape[0]),
        # Strings, not nulls: an all-null column would not union with generated partitions' columns.
        torch_version="n/a", diffusers_version="n/a",
        source_file=str(file), source_tile=tile,
        source_grid=list(source.grid) if isinstance(source, ImageFolderSource) and source.grid else None,
    )


def _job_problem(job: ImageJob, tiles: list[tuple[Path, int, Any]], wanted: int) -> str | None:
    if job.index >= len(tiles):
        files = sorted({str(t[0]) for t in tiles})
        return (f"only {len(tiles)} source image(s) for prompt {job.prompt.id!r} in {files}, "
                f"but images_per_prompt is {wanted}")
    file, tile, pixels = tiles[job.index]
    if is_black(pixels):
        return f"{file}: tile {tile} is all black (max pixel <= {BLACK_MAX}): the provider's generation failed"
    return None


def ingest_image_folder(
    request: GenerationRequest,
    log: Log = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> GenerationReport:
    """Fill the partition's missing images from the card's folder; same report as generation."""
    entry = request.entry
    source = entry.card.source if entry.card is not None else None
    if not isinstance(source, ImageFolderSource):
        raise ValueError(f"{entry.path}: not an image-folder card")
    settings = request.settings
    set_fp = set_fingerprint(request.model_fingerprint, settings, SOURCE_DTYPE)
    jobs = plan_images(entry.key, request.category, request.prompts, settings)
    todo = todo_jobs(request, jobs, set_fp)
    report = GenerationReport(set_fp, SOURCE_DEVICE, SOURCE_DTYPE, expected=len(jobs),
                              present_before=len(jobs) - len(todo))
    index = FolderIndex(source)
    for prompt_id, prompt_jobs in _by_prompt(todo).items():
        if should_stop():
            report.cancelled = True
            break
        try:
            tiles = source_tiles(source, index.files_for(request.category, prompt_id))
        except SourceError as exc:
            report.failures += [GenerationFailure(j.prompt.id, j.index, j.seed, str(exc)) for j in prompt_jobs]
            continue
        for job in prompt_jobs:
            problem = _job_problem(job, tiles, settings.images_per_prompt)
            if problem:
                report.failures.append(GenerationFailure(job.prompt.id, job.index, job.seed, problem))
                continue
            file, tile, pixels = tiles[job.index]
            meta = _meta(request, job, set_fp, file, tile, pixels)
            report.written.append(write_image(request.images, job, pixels.copy(), meta))
            report.generated += 1
    log(f"ingested {report.generated} of {len(todo)} missing images from {source.images} "
        f"({len(report.failures)} failed, set {set_fp})")
    return report
