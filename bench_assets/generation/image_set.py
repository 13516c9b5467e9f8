"""An image set in the image store: which images a partition should have, and which it has.

Every PNG carries its own provenance in a ``bench_assets`` text chunk (set
fingerprint, seed, settings, seconds, library versions). That makes the files
self-describing: a run cancelled half-way leaves valid images that count on
resume, the manifest can always be rebuilt from the store, and an image made
with other settings is recognised as belonging to another set and is
replaced, never silently mixed in.

Images are addressed by *key* in the image store (``storage/store.py``):
``<model>/<category>/<prompt_id>_i<k>_s<seed>.png``, the same on a local
folder and in a bucket. The manifest's ``path`` column holds that key, so a
data directory or a bucket can move and every row still resolves.

Reading the store is kept to what a decision needs: one listing per
partition folder gives every object's size and mtime; an object whose size
and mtime match a manifest row already known (the previous manifest, or the
row the writer returned) is taken as that row without reading it; any other
object is read once, and that one read gives its provenance, its
completeness and its sha256.

No torch here: planning and manifests are cheap and used outside GPU steps.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from bench_assets.core.naming import ImageName, image_key, recorded_image_key
from bench_assets.prompts.prompt import Prompt
from bench_assets.core.settings import GenerationSettings
from bench_assets.core.objects import ObjectInfo, Store

PNG_META_KEY = "bench_assets"
PngSource = bytes | Path  # an image's bytes in memory, or a local file


@dataclass(frozen=True)
class ImageJob:
    """One image a partition should have, and its key in the image store."""

    model: str
    category: str
    prompt: Prompt
    index: int
    seed: int

    @property
    def key(self) -> str:
        return image_key(self.model, self.category, ImageName(self.prompt.id, self.index, self.seed))


def plan_images(model: str, category: str, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[ImageJob]:
    """Every image of the partition, in (prompt, index) order."""
    return [
        ImageJob(model, category, prompt, k, settings.seed(k))
        for prompt in prompts
        for k in range(settings.images_per_prompt)
    ]


def read_png_meta(source: PngSource) -> dict[str, Any] | None:
    """The provenance stored in the PNG (its bytes or a local file), or None if absent/unreadable."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
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


def is_complete_png(source: PngSource) -> bool:
    """Whether the PNG ends with its IEND chunk: a truncated one does not (no decode)."""
    if isinstance(source, bytes):
        return source.endswith(PNG_TRAILER)
    try:
        with source.open("rb") as handle:
            handle.seek(-len(PNG_TRAILER), 2)
            return handle.read() == PNG_TRAILER
    except OSError:
        return False


def encode_png(pixels: Any, meta: dict[str, Any]) -> bytes:
    """A uint8 HxWx3 array as PNG bytes, with ``meta`` as its provenance chunk."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(PNG_META_KEY, json.dumps(meta, sort_keys=True))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


MANIFEST_COLUMNS = (
    "model", "category", "prompt_id", "image_index", "seed", "path", "sha256", "size", "mtime_ns", "etag",
    "set_fingerprint", "model_fingerprint", "settings", "seconds", "gpu_seconds", "device", "dtype",
    "torch_version", "diffusers_version", "created_at", "width", "height", "prompt_hash",
)


def manifest_row(job: ImageJob, meta: dict[str, Any], sha256: str, info: ObjectInfo) -> dict[str, Any]:
    """The manifest row of one stored image: where it is (its key), what it is, how it was made."""
    return {
        "model": job.model,
        "category": job.category,
        "prompt_id": job.prompt.id,
        "image_index": job.index,
        "seed": job.seed,
        "path": job.key,
        "sha256": sha256,
        "size": info.size,  # with mtime_ns: how a later check sees the object changed without reading it
        "mtime_ns": info.mtime_ns,
        "etag": info.etag,  # an object store's content tag ("" locally): Last-Modified has whole seconds only
        "set_fingerprint": meta.get("set_fingerprint"),
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
        "prompt_hash": meta.get("prompt_hash"),  # None: made before prompts were hashed (taken as current)
    }


def write_image(store: Store, job: ImageJob, pixels: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Store the image under its key in one atomic write; its manifest row (nothing is read back).

    A local store writes a temp file and renames it; an object store makes
    one PUT of the finished bytes. Either way a reader sees the old image or
    the new one, never half of one.
    """
    data = encode_png(pixels, meta)
    store.put_bytes(job.key, data)
    info = store.info(job.key)
    if info is None:  # a store that lost what it just acknowledged: nothing sensible to record
        raise OSError(f"{store.location(job.key)}: not found right after it was written")
    return manifest_row(job, meta, hashlib.sha256(data).hexdigest(), info)


def _listing(store: Store, keys: Iterable[str]) -> dict[str, ObjectInfo]:
    """Size and mtime of what exists among ``keys``: one listing per folder they are in."""
    folders = {key.rsplit("/", 1)[0] if "/" in key else "" for key in keys}
    found: dict[str, ObjectInfo] = {}
    for folder in sorted(folders):
        found.update(store.infos(folder))
    return found


def _unchanged(row: dict[str, Any], info: ObjectInfo) -> bool:
    """Whether a recorded row still describes the stored object, judged without reading it."""
    same_tag = (row.get("etag") or "") == info.etag
    return row.get("size") == info.size and row.get("mtime_ns") == info.mtime_ns and same_tag


def _read(store: Store, key: str) -> bytes | None:
    try:
        return store.get_bytes(key)
    except (OSError, ValueError):  # gone since the listing, or unreadable: not an image of the set
        return None


def _row_from_store(store: Store, job: ImageJob, info: ObjectInfo) -> dict[str, Any] | None:
    """The manifest row of an object read once; None when it is not a whole PNG with provenance."""
    data = _read(store, job.key)
    meta = read_png_meta(data) if data else None
    if data is None or not meta or not is_complete_png(data):
        return None
    return manifest_row(job, meta, hashlib.sha256(data).hexdigest(), info)


def _drawn_from(row: dict[str, Any], prompt: Prompt) -> bool:
    """Whether the image was drawn from the prompt's current text (an edited prompt's images are redrawn)."""
    return row.get("prompt_hash") in (None, prompt.text_hash)


def stored_rows(
    store: Store, jobs: Sequence[ImageJob], set_fingerprint: str, known: Iterable[dict[str, Any]] = ()
) -> dict[str, dict[str, Any]]:
    """key -> manifest row, for each job whose image is in the store, whole and of this set.

    ``known``: manifest rows the caller has (the previous manifest, rows a
    writer returned); later rows win. One whose size, mtime and ETag match
    the stored object is trusted without reading it; other objects are read
    once. Rows come out with exactly the manifest's columns, whatever an
    older manifest recorded.
    """
    trusted = {recorded_image_key(row["path"]): row for row in known if row.get("path")}
    listed = _listing(store, (job.key for job in jobs))
    rows: dict[str, dict[str, Any]] = {}
    for job in jobs:
        info = listed.get(job.key)
        if info is None:
            continue
        row = trusted.get(job.key)
        if row is None or not _unchanged(row, info):
            row = _row_from_store(store, job, info)
        if row is not None and row.get("set_fingerprint") == set_fingerprint and _drawn_from(row, job.prompt):
            rows[job.key] = {**{c: row.get(c) for c in MANIFEST_COLUMNS}, "etag": row.get("etag") or "",
                             "path": job.key}
    return rows


def missing_jobs(
    store: Store, jobs: Sequence[ImageJob], set_fingerprint: str, known: Iterable[dict[str, Any]] = ()
) -> list[ImageJob]:
    """Jobs with no image of this set in the store (absent, unreadable, cut short, another set's, or drawn
    from a prompt text since edited)."""
    present = stored_rows(store, jobs, set_fingerprint, known)
    return [job for job in jobs if job.key not in present]


def manifest_rows(
    store: Store, jobs: Sequence[ImageJob], set_fingerprint: str, known: Iterable[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """One manifest row per image of this set in the store, in job order."""
    present = stored_rows(store, jobs, set_fingerprint, known)
    return [present[job.key] for job in jobs if job.key in present]


@dataclass(frozen=True)
class FileCheck:
    """What a manifest row's image looks like now."""

    path: str  # where it is, for messages: a local path or a URL
    problem: str | None  # None: the same bytes as recorded; else "missing", "changed" or "unreadable"
    key: str = ""  # its key in the image store


def _check(store: Store, key: str, row: dict[str, Any], info: ObjectInfo | None) -> FileCheck:
    where = store.location(key)
    if info is None:
        return FileCheck(where, "missing", key)
    if _unchanged(row, info):
        return FileCheck(where, None, key)
    data = _read(store, key)
    if data is None:
        return FileCheck(where, "unreadable", key)
    same = hashlib.sha256(data).hexdigest() == row["sha256"]
    return FileCheck(where, None if same else "changed", key)


def check_manifest_files(rows: Sequence[dict[str, Any]], store: Store) -> list[FileCheck]:
    """Compare each recorded image with what the image store holds now.

    Size and mtime first (one listing per folder); only an object whose size
    or mtime changed is read and hashed. One with the recorded hash but a
    new mtime (touched, copied) is still the same image.
    """
    keys = [recorded_image_key(row["path"]) for row in rows]
    listed = _listing(store, keys)
    return [_check(store, key, row, listed.get(key)) for row, key in zip(rows, keys)]


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
