"""The drop folder's file primitives: containment, stat signatures and content digests.

Every kind of model reads its files through these, so that the rules hold for
all of them: nothing outside the data folder (the parent of ``data/models/``)
is read unless a card names it on purpose, a link or a special file is
refused before a byte is read, a signature is cheap (stat only) and a
fingerprint reads a 7 GB file in chunks, never whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any


class EntryProblem(Exception):
    """Why one entry is invalid, found before any of its bytes were read; the message names the file."""


def data_root(models_dir: Path) -> Path:
    """The data folder: nothing outside it is read unless a card names it."""
    return Path(models_dir).resolve().parent


def inside(target: Path, root: Path) -> bool:
    return target == root or root in target.parents


def check_contained(path: Path, root: Path) -> None:
    """Refuse, before a byte is read, what a link or a special file would make us read.

    Dangling symlinks, links that resolve outside ``root`` and anything that
    is neither a regular file nor a folder (a FIFO blocks the reader forever,
    a device never ends) raise :class:`EntryProblem`.
    """
    target = Path(os.path.realpath(path))
    if path.is_symlink() and not path.exists():
        raise EntryProblem(f"{path}: a dangling symlink (its target {os.readlink(path)} does not exist)")
    if not inside(target, root):
        raise EntryProblem(
            f"{path}: resolves to {target}, outside the data folder {root}; nothing outside it is read "
            f"unless a card names it: move or copy the model into {root}"
        )
    mode = path.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise EntryProblem(f"{path}: not a regular file or folder (a FIFO, socket or device is never read)")


def unreadable(path: Path, exc: OSError) -> str:
    where = exc.filename if isinstance(exc.filename, str) else path
    return f"{where}: cannot be read ({exc.strerror or type(exc).__name__})"


def _file_signature(path: Path) -> tuple[str, float]:
    info = path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}", info.st_mtime


def folder_files(folder: Path, root: Path | None = None) -> list[Path]:
    """Files of a folder, hidden ones skipped; with ``root``, every link inside is checked first."""
    files = []
    for path in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if root is not None and path.is_symlink():
            check_contained(path, root)
        if path.is_file():
            files.append(path)
    return files


def _folder_signature(folder: Path, root: Path | None = None) -> tuple[str, float]:
    stats = [p.stat() for p in folder_files(folder, root)]
    total = sum(s.st_size for s in stats)
    newest = max((s.st_mtime_ns for s in stats), default=0)
    return f"{len(stats)}:{total}:{newest}", newest / 1e9


def path_signature(path: Path, root: Path | None = None) -> tuple[str, float]:
    """(stat signature, newest mtime) of a file or a folder: changes when any of its bytes may have."""
    return _folder_signature(path, root) if path.is_dir() else _file_signature(path)


def sha256_file(path: Path, chunk: int = 8 * 1024 * 1024) -> str:
    """sha256 of a file read in chunks, so a 7 GB checkpoint never sits in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def folder_digest(folder: Path) -> str:
    """sha256 over a folder's (relative name, file sha256) pairs, hidden files skipped."""
    digest = hashlib.sha256()
    for file in folder_files(folder):
        digest.update(str(file.relative_to(folder)).encode("utf-8", "surrogateescape"))
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def json_digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
