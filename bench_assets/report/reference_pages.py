"""The report's distribution metrics: a page per reference set, and the rows the Overview shows.

A reference set's page shows the set (where it is read from, its size, its
fingerprint, the images left out as unreadable, thumbnails of its first
images) and every model scored against it with its distribution metrics,
intervals, ranks and n (``storage.distribution_board``). The set itself is
read through the ``references`` registry (its reader: a folder, a store
prefix, an exported dataset); the rows through storage. A row scored against
another version of the set (its ``reference_fingerprint`` differs from the
set's today) is marked, and a set that has rows but is gone from
``data/references/`` still gets a page, from its rows.
"""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path
from typing import Any, Mapping

import polars as pl

from bench_assets.references.sets import ReferenceImage, ReferenceSet
from bench_assets.report.thumbnails import ThumbnailStats, thumbnail_from
from bench_assets.storage.distribution_board import shown_metrics

THUMBNAILS_SHOWN = 48  # a reference set may hold 10,000 images: the page shows the first ones, by name
ROW_FIELDS = ("model", "category", "metric", "value", "ci_low", "ci_high", "n_generated", "n_reference",
              "comparable", "note", "rank", "ranked_among", "lower_is_better", "fid_mode", "reference_fingerprint")


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


def board_rows(board: pl.DataFrame, reference: str | None = None) -> list[dict[str, Any]]:
    """The board's rows (of one reference set, or all) as JSON-able dicts, the fields the pages show."""
    if board.is_empty():
        return []
    rows = board if reference is None else board.filter(pl.col("reference") == reference)
    return [{k: _clean(row[k]) for k in ("reference", *ROW_FIELDS)} for row in rows.iter_rows(named=True)]


def reference_names(board: pl.DataFrame, sets: Mapping[str, ReferenceSet]) -> list[str]:
    """Every reference set with a page: registered ones and those that only have rows."""
    scored = set(board["reference"]) if not board.is_empty() else set()
    return sorted(scored | set(sets))


def _image_bytes(reference: ReferenceSet, name: str) -> io.BytesIO:
    return io.BytesIO(reference.read(name))


def shown_images(reference: ReferenceSet) -> tuple[ReferenceImage, ...]:
    """The images a set's page shows a thumbnail of: the first ``THUMBNAILS_SHOWN`` by name."""
    return reference.images[:THUMBNAILS_SHOWN]


def reference_thumbnails(sets: Mapping[str, ReferenceSet], thumbs_dir: Path, stats: ThumbnailStats,
                         prefix: str) -> dict[str, dict[str, str | None]]:
    """Per set: image name -> thumbnail href, for the first ``THUMBNAILS_SHOWN`` images (made only if missing)."""
    hrefs: dict[str, dict[str, str | None]] = {}
    for name, reference in sets.items():
        shown = hrefs.setdefault(name, {})
        for image in shown_images(reference):
            rel = thumbnail_from(partial(_image_bytes, reference, image.name), f"{reference.source}/{image.name}",
                                 image.sha256, thumbs_dir, stats)
            shown[image.name] = f"{prefix}{rel}" if rel else None
    return hrefs


def reference_payload(name: str, reference: ReferenceSet | None, board: pl.DataFrame,
                      thumbs: Mapping[str, str | None]) -> dict[str, Any]:
    """One reference set's page: the set (None: no longer registered) and the models scored against it."""
    rows = board_rows(board, name)
    fingerprint = reference.fingerprint if reference is not None else None
    for row in rows:
        row["current"] = fingerprint is None or row["reference_fingerprint"] == fingerprint
    sizes = sorted({r["n_reference"] for r in rows if r["n_reference"] is not None})
    return {
        "name": name,
        "registered": reference is not None,
        "source": reference.source if reference is not None else None,
        "size": len(reference.images) if reference is not None else (sizes[-1] if sizes else None),
        "captions": len(reference.captions) if reference is not None else None,
        "fingerprint": fingerprint,
        "problems": list(reference.problems) if reference is not None else [],
        "thumbs": [{"name": image, "thumb": href} for image, href in thumbs.items()],
        "models": sorted({r["model"] for r in rows}),
        "categories": sorted({r["category"] for r in rows}, key=lambda c: (c != "all", c)),
        "metrics": shown_metrics(r["metric"] for r in rows),
        "rows": rows,
    }


def overview_distribution(board: pl.DataFrame, files: Mapping[str, str]) -> dict[str, Any]:
    """What the Overview shows of the distribution metrics: every row, and each reference set's page."""
    rows = board_rows(board)
    return {"rows": rows, "metrics": shown_metrics(r["metric"] for r in rows), "references": dict(files)}
