"""An uploaded image kept as a prompt's reference image, for the distribution metrics' reference sets.

``/api/propose`` stashes every image it proposes a prompt for: a PNG
re-encoded from the decoded pixels (never the bytes the browser sent, so no
metadata or trailing payload of the upload survives), named by its sha256
under ``data/.cache/workbench-uploads/``; that sha is the upload's id. Stashed
uploads older than a day are deleted when the next one arrives.

A save (the edit endpoint's ``put``) may ask to keep it:
``keep_image: {"upload": <id>, "reference_set": <name, default "workbench">}``.
Then, once the suite is saved, the PNG is copied to
``data/references/<set>/<prompt id>.png``, the set's ``captions.jsonl`` gets
(or replaces) the line ``{"file": "<prompt id>.png", "caption": <prompt text>}``,
and the prompt's metadata records ``"reference_image": "<set>/<prompt id>.png"``.
Every write is a temporary file moved into place. Everything is checked
before anything is written: the id (64 hex digits, in the stash), the set
name (a plain name, as ``data/references/`` lists them: letters, digits,
``_ . -``, not hidden) and the set itself (a folder, not a card, with no
COCO ``captions.json`` that a ``captions.jsonl`` would hide).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench_assets.core.errors import BenchError
from bench_assets.references.registry import CARD_SUFFIXES
from bench_assets.storage.store import LocalStore
from bench_assets.workbench.suite_files import NotFound

if TYPE_CHECKING:
    from PIL import Image

STASH_FOLDER = "workbench-uploads"  # under data/.cache/
STASH_MAX_AGE_S = 24 * 3600
DEFAULT_REFERENCE_SET = "workbench"
CAPTIONS = "captions.jsonl"
_UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_SET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PNG_MODES = ("RGB", "RGBA", "L", "LA")


class KeepError(BenchError, ValueError):
    """A ``keep_image`` request that cannot apply (bad id, bad set name or set): HTTP 400, nothing written."""


def png_bytes(image: "Image.Image") -> bytes:
    """The image's pixels as a fresh PNG: no text chunks, EXIF or ICC profile of the upload carried over."""
    transparent = "A" in image.getbands() or "transparency" in image.info
    pixels = image if image.mode in _PNG_MODES else image.convert("RGBA" if transparent else "RGB")
    clean = pixels.copy()
    clean.info = {}
    out = io.BytesIO()
    clean.save(out, format="PNG")
    return out.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` as ``path``, atomically: the local store's write (a temporary file moved over it)."""
    LocalStore(path.parent).put_bytes(path.name, data)


def captions_with(old: str, file_name: str, caption: str) -> str:
    """``captions.jsonl``'s text with ``file_name``'s line added or replaced; every other line kept as it was."""
    def names(line: str) -> bool:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return False
        return isinstance(row, dict) and row.get("file") == file_name

    kept = [line for line in old.splitlines() if line.strip() and not names(line)]
    return "".join(f"{line}\n" for line in kept) + json.dumps({"file": file_name, "caption": caption},
                                                               ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class KeepImage:
    """A checked ``keep_image`` request: the stashed PNG's bytes and the reference set they go to."""

    png: bytes
    reference_set: str

    def relative(self, prompt_id: str) -> str:
        """``<set>/<prompt id>.png``: the prompt's ``reference_image`` (a prompt id is a plain file name)."""
        return f"{self.reference_set}/{prompt_id}.png"


class ReferenceImages:
    """The upload stash of one data directory and the reference sets uploads are kept in."""

    def __init__(self, cache: Path, references: Path) -> None:
        self.stash_dir = Path(cache) / STASH_FOLDER
        self.references = Path(references)
        self._lock = threading.Lock()

    def stash(self, image: "Image.Image", now: float | None = None) -> str:
        """Keep ``image`` (a validated upload) as a PNG named by its sha256, which is returned; sweep old ones."""
        data = png_bytes(image)
        upload_id = hashlib.sha256(data).hexdigest()
        with self._lock:
            self.sweep(now)
            target = self.stash_dir / f"{upload_id}.png"
            if target.is_file():
                os.utime(target)  # the same image again: a day from now, not from its first upload
            else:
                write_atomic(target, data)
        return upload_id

    def sweep(self, now: float | None = None) -> None:
        """Delete stashed uploads (and leftover temporary files) older than ``STASH_MAX_AGE_S``."""
        if not self.stash_dir.is_dir():
            return
        cutoff = (time.time() if now is None else now) - STASH_MAX_AGE_S
        for path in self.stash_dir.iterdir():
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    def requested(self, raw: Any) -> KeepImage:
        """The ``keep_image`` of an edit, checked: a :class:`KeepError` (400) or :class:`NotFound` (404) if not."""
        if not isinstance(raw, dict):
            raise KeepError("keep_image must be {\"upload\": <id from /api/propose>, \"reference_set\": <name>}")
        upload_id, name = raw.get("upload"), raw.get("reference_set") or DEFAULT_REFERENCE_SET
        if not isinstance(upload_id, str) or not _UPLOAD_ID_RE.match(upload_id):
            raise KeepError("keep_image.upload must be the 64 hex digits /api/propose returned as 'upload'")
        if not isinstance(name, str) or not _SET_NAME_RE.match(name):
            raise KeepError(f"reference set name {str(name)[:80]!r}: letters, digits, '_', '.', '-' only, "
                            "starting with a letter or digit")
        self._check_set(name)
        path = self.stash_dir / f"{upload_id}.png"
        png = path.read_bytes() if path.is_file() else b""
        if hashlib.sha256(png).hexdigest() != upload_id:
            raise NotFound(f"upload {upload_id[:12]}… is not in the stash (uploads are kept a day): upload it again")
        return KeepImage(png, name)

    def with_keeps(self, edits: Any) -> tuple[Any, list[tuple[KeepImage, Any]]]:
        """The edits with each kept image's ``reference_image`` in its prompt's metadata, and (request, prompt id)."""
        if not isinstance(edits, list):
            return edits, []  # ``apply_edits`` says what is wrong with it
        out, keeps = [], []
        for edit in edits:
            if isinstance(edit, dict) and edit.get("keep_image") is not None:
                if edit.get("op") != "put":
                    raise KeepError("keep_image goes with a 'put' edit (the prompt the image is kept for)")
                request, prompt = self.requested(edit["keep_image"]), edit.get("prompt")
                metadata = (prompt.get("metadata") or {}) if isinstance(prompt, dict) else None
                if isinstance(metadata, dict):  # otherwise ``apply_edits`` refuses the prompt
                    metadata = {**metadata, "reference_image": request.relative(str(prompt.get("id")))}
                    edit = {**edit, "prompt": {**prompt, "metadata": metadata}}
                    keeps.append((request, prompt.get("id")))
            out.append(edit)
        return out, keeps

    def _check_set(self, name: str) -> None:
        folder = self.references / name
        if any((self.references / f"{name}{s}").is_file() for s in CARD_SUFFIXES) and not folder.is_dir():
            raise KeepError(f"reference set {name!r} is a card ({name}.yaml), not a folder: choose another set")
        if folder.exists() and not folder.is_dir():
            raise KeepError(f"reference set {name!r}: {folder.name} is not a folder")
        if (folder / "captions.json").is_file() and not (folder / CAPTIONS).is_file():
            raise KeepError(f"reference set {name!r} has COCO captions (captions.json); the workbench adds to "
                            f"{CAPTIONS} only: choose another set")

    def keep(self, request: KeepImage, prompt_id: str, caption: str) -> str:
        """Copy the PNG into its set as ``<prompt id>.png`` and caption it; the prompt's ``reference_image``."""
        folder = self.references / request.reference_set
        with self._lock:
            write_atomic(folder / f"{prompt_id}.png", request.png)
            captions = folder / CAPTIONS
            old = captions.read_text(encoding="utf-8") if captions.is_file() else ""
            write_atomic(captions, captions_with(old, f"{prompt_id}.png", caption).encode("utf-8"))
        return request.relative(prompt_id)
