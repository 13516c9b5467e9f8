"""``bench status``'s verdicts kept between calls, so that a call judges only the partitions whose inputs changed.

A partition's verdict depends on its warehouse files (images manifest, generation failures, each
metric's score partition), the model's fingerprint and settings, the category's prompts, the metrics'
versions and scorers, and the image files its manifest records. ``storage.status`` sums up all but the
images in the verdict's *key*, built from what costs no file read: one listing per warehouse table
(:func:`listed_files`: each partition file's size, mtime and tag, so a rewritten, truncated, moved
aside or deleted file changes it), the fingerprint cache, the parsed suite. The images are watched
through their folders (:func:`folder_signature`):

- a local folder's own mtime (and inode): it changes when a file is added, deleted or renamed into
  it, as every image write does (temp file + rename), but not when a file is rewritten in place;
  ``bench status --verify`` compares every image with the manifest and notices that too;
- an object store folder's listing (each object's size, Last-Modified and ETag): exact.

A verdict is kept only if nothing it watches changed less than ``RACY_NS`` before the call started
(as git's "racily clean" entries): a change in the same clock tick as the look would leave an mtime
unchanged. Such a partition is judged again next time, by then with settled files.

The verdicts live in one small JSON file in the data directory's cache folder, replaced atomically;
a damaged or missing file only means every partition is judged again. Two calls writing at once lose
each other's new verdicts, never correctness: a verdict is used only under its exact key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from bench_assets.core.objects import Store

log = logging.getLogger(__name__)

VERDICTS_FILE = "status_verdicts.json"
FORMAT = 1  # bump when a verdict's meaning or key changes: older files are then ignored
RACY_NS = 2_000_000_000  # a file or folder changed this close to the call's start is not trusted to show a change

FileSignature = tuple[int, int, str]  # size, mtime_ns, etag


def digest(value: Any) -> str:
    """A short sha256 of ``value``'s JSON (keys sorted)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]


def listed_files(store: Store, prefixes: Iterable[str]) -> dict[str, FileSignature]:
    """key -> (size, mtime_ns, etag) of every file under ``prefixes``: one listing each (a local folder's walk,
    an object store's ``infos``), never a request per file."""
    walk = getattr(store, "walk", None)
    found: dict[str, FileSignature] = {}
    for prefix in prefixes:
        if walk is not None:
            found.update((key, (size, mtime, "")) for key, size, mtime in walk(prefix))
        else:
            found.update((key, (i.size, i.mtime_ns, i.etag)) for key, i in store.infos(prefix).items())
    return found


def folder_signature(store: Store, folder: str) -> list | None:
    """What changes when a file is added to, deleted from or renamed into ``folder`` (None: no such folder).

    Local: the folder's ``[mtime_ns, inode]`` (one ``stat``). Object store: ``["listing", digest]`` of its
    objects' keys, sizes, Last-Modified and ETags (one listing; an in-place rewrite shows there too)."""
    local = store.local_path(folder)
    if local is not None:
        try:
            stat = os.stat(local)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return [stat.st_mtime_ns, stat.st_ino]
    listing = store.infos(folder)
    return ["listing", digest(sorted((k, i.size, i.mtime_ns, i.etag) for k, i in listing.items()))] if listing else None


def _settled(signature: list | None, before_ns: int) -> bool:
    """Whether a folder signature is older than ``before_ns`` (a listing digest always is: it is exact)."""
    return signature is None or signature[0] == "listing" or signature[0] < before_ns


class VerdictCache:
    """The verdicts of the partitions judged before, by (model, category), in ``folder``/``VERDICTS_FILE``."""

    def __init__(self, folder: Path, images: Store) -> None:
        self.file = folder / VERDICTS_FILE
        self.images = images
        self.started_ns = time.time_ns()  # before anything is listed or read
        self.changed = False
        self.asked: set[str] = set()  # the partitions this call looked up or recorded
        try:
            saved = json.loads(self.file.read_text())
            self.entries: dict[str, dict] = saved["partitions"] if saved.get("format") == FORMAT else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.entries = {}

    @staticmethod
    def _name(model: str, category: str) -> str:
        return f"{model}/{category}"

    def lookup(self, model: str, category: str, key: str) -> tuple[dict, tuple[str, ...]] | None:
        """The verdict kept under ``key`` and the image folders it watched, if none of them changed since."""
        self.asked.add(self._name(model, category))
        entry = self.entries.get(self._name(model, category))
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        folders = entry.get("folders", [])
        if any(folder_signature(self.images, folder) != signature for folder, signature in folders):
            return None
        return entry["verdict"], tuple(folder for folder, _ in folders)

    def record(self, model: str, category: str, key: str, verdict: Mapping[str, Any],
               folders: Sequence[str] | None, newest_file_ns: int) -> None:
        """Keep ``verdict`` under ``key``, watching ``folders`` (None: nothing it could watch), unless something it
        was judged from changed too recently to be sure a later change shows (``RACY_NS``); ``newest_file_ns``:
        its warehouse files' newest mtime. Otherwise the partition's old verdict is dropped."""
        self.asked.add(self._name(model, category))
        settled_before = self.started_ns - RACY_NS
        signatures = [[folder, folder_signature(self.images, folder)] for folder in folders or ()]
        if folders is None or newest_file_ns >= settled_before or not all(
                _settled(signature, settled_before) for _, signature in signatures):
            self.changed |= self.entries.pop(self._name(model, category), None) is not None
        else:
            self.entries[self._name(model, category)] = {"key": key, "folders": signatures, "verdict": dict(verdict)}
            self.changed = True

    def forget_except(self, listed: set[tuple[str, str]]) -> None:
        """Drop the verdicts of partitions that have no warehouse file any more (``listed``: the (model, category)
        of every file listed) and were not asked about in this call: a deleted model's verdicts go, so the file
        holds the data directory's partitions, not every partition it ever had."""
        gone = [name for name in self.entries if name not in self.asked and tuple(name.rsplit("/", 1)) not in listed]
        for name in gone:
            del self.entries[name]
        self.changed |= bool(gone)

    def save(self) -> None:
        """Replace the file at once (a temp file of its own + rename), only when a verdict changed. A folder
        that cannot be written costs the next call its speed, never its answer: logged, not raised."""
        if not self.changed:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.file.parent, prefix=self.file.name,
                                             suffix=".tmp", delete=False) as tmp:
                tmp.write(json.dumps({"format": FORMAT, "partitions": self.entries}, separators=(",", ":")))
            os.replace(tmp.name, self.file)
        except OSError as exc:
            log.warning("could not keep the status verdicts in %s: %s", self.file, exc)
            return
        self.changed = False
