"""``bench status``'s verdicts kept between calls, so that a call judges only the partitions whose inputs changed.

A partition's verdict depends on its warehouse files (images manifest, generation failures, each
metric's score partition), the model's fingerprint and settings, the category's prompts, the metrics'
versions and scorers, and the image files its manifest records. ``storage.status`` sums up all but the
images in the verdict's *key*, built from what costs no file read: each partition file's size, mtime
and tag (:func:`listed_files`: one listing per warehouse table for a whole call, one ``info`` per file
for one partition, so a rewritten, truncated, moved aside or deleted file changes it), the fingerprint
cache, the parsed suite. The images are watched through their folders (:func:`folder_signature`):

- a local folder's own mtime (and inode): it changes when a file is added, deleted or renamed into
  it, as every image write does (temp file + rename), but not when a file is rewritten in place;
  ``bench status --verify`` compares every image with the manifest and notices that too;
- an object store folder's listing (each object's size, Last-Modified and ETag): exact.

Verdicts are kept by ``bench status`` and by the writers themselves: a metric asset judges and keeps
its partition's verdict right after writing its scores (``status.keep_partition_verdicts``), so the first
``bench status`` after a run judges nothing the run wrote.

Racy files (as git's "racily clean" index entries): a change made within the same clock tick as the
look that judged a file would leave its size and mtime unchanged. A warehouse file changed less than
``RACY_NS`` before the judging call started (always the case for a writer's own file) is therefore kept
with the sha256 of its bytes, hashed *before* it was judged; a later call hashes it again and uses the
verdict only if the bytes are the same (and, once the file has settled, keeps it without the hash). An
image folder changed that recently cannot be checked that cheaply: such a verdict is not kept, and the
partition is judged again next time.

Each partition's verdict is a small JSON file of its own under the data directory's cache folder
(``status-verdicts/<model>/<category>.json``), replaced atomically, so concurrent writers of different
partitions never lose each other's verdicts. A damaged or missing file only means the partition is
judged again; a verdict is used only under its exact key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from bench_assets.core.objects import Store
from bench_assets.storage.cache_files import replacing

log = logging.getLogger(__name__)

VERDICTS_FOLDER = "status-verdicts"
OLD_VERDICTS_FILE = "status_verdicts.json"  # every verdict in one file, as kept before: removed when seen
FORMAT = 2  # bump when a verdict's meaning or key changes: older files are then ignored
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


def file_signatures(store: Store, keys: Iterable[str]) -> dict[str, FileSignature]:
    """:func:`listed_files` of just ``keys`` (the files that exist): one ``info`` each, for a writer that
    keeps one partition's verdict and has no reason to list every partition of every table."""
    found: dict[str, FileSignature] = {}
    for key in keys:
        info = store.info(key)
        if info is not None:
            found[key] = (info.size, info.mtime_ns, info.etag)
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


def _remove(path: Path) -> None:
    """Delete a verdict file if it is there; in a folder that cannot be written it stays (a stale verdict is
    never used: its key no longer matches)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def _bytes_digest(store: Store, key: str) -> str | None:
    """sha256 of the object's bytes (None: it is gone)."""
    try:
        return hashlib.sha256(store.get_bytes(key)).hexdigest()
    except (FileNotFoundError, KeyError):
        return None


class VerdictCache:
    """The verdicts of the partitions judged before, one file each under ``folder``/``VERDICTS_FOLDER``.

    ``files``: the warehouse store, whose racy files (see the module's docstring) are hashed."""

    def __init__(self, folder: Path, images: Store, files: Store) -> None:
        self.folder = folder / VERDICTS_FOLDER
        self.images = images
        self.files = files
        self.started_ns = time.time_ns()  # before anything is listed or read
        self.settled_before = self.started_ns - RACY_NS
        self.asked: set[tuple[str, str]] = set()  # the partitions this call looked up or recorded
        _remove(folder / OLD_VERDICTS_FILE)

    def _file(self, model: str, category: str) -> Path:
        return self.folder / model / f"{category}.json"

    def _read(self, model: str, category: str) -> dict | None:
        try:
            entry = json.loads(self._file(model, category).read_text())
        except (OSError, ValueError):
            return None
        shaped = (isinstance(entry, dict) and entry.get("format") == FORMAT and isinstance(entry.get("verdict"), dict)
                  and isinstance(entry.get("folders"), list) and isinstance(entry.get("racy"), dict))
        return entry if shaped else None

    def _write(self, model: str, category: str, entry: Mapping[str, Any]) -> None:
        """Replace the partition's file at once. A folder that cannot be written costs the next call its speed,
        never its answer: logged, not raised."""
        try:
            with replacing(self._file(model, category)) as tmp:
                tmp.write_text(json.dumps({"format": FORMAT, **entry}, separators=(",", ":")))
        except OSError as exc:
            log.warning("could not keep the status verdict of %s/%s in %s: %s", model, category, self.folder, exc)

    def racy_digests(self, files: Mapping[str, FileSignature]) -> dict[str, list] | None:
        """key -> [mtime_ns, sha256] of each of ``files`` (the partition's warehouse files, with their signatures)
        changed too recently for its signature to show a later change; to be called *before* the partition is
        judged. None: one of them is gone already (nothing can be kept)."""
        racy: dict[str, list] = {}
        for key, (_size, mtime_ns, etag) in files.items():
            if not etag and mtime_ns >= self.settled_before:
                found = _bytes_digest(self.files, key)
                if found is None:
                    return None
                racy[key] = [mtime_ns, found]
        return racy

    def lookup(self, model: str, category: str, key: str) -> tuple[dict, tuple[str, ...]] | None:
        """The verdict kept under ``key`` and the image folders it watched, if none of them changed since (and the
        racy files it was kept with still have the bytes it was judged from)."""
        self.asked.add((model, category))
        entry = self._read(model, category)
        if entry is None or entry.get("key") != key:
            return None
        folders, racy = entry["folders"], entry["racy"]
        if any(folder_signature(self.images, folder) != signature for folder, signature in folders):
            return None
        if any(_bytes_digest(self.files, file) != sha for file, (_mtime, sha) in racy.items()):
            return None
        still_racy = {file: value for file, value in racy.items() if value[0] >= self.settled_before}
        if still_racy != racy:  # the bytes are as judged and the file has settled since: no need to hash it again
            self._write(model, category, {**entry, "racy": still_racy})
        return entry["verdict"], tuple(folder for folder, _ in folders)

    def record(self, model: str, category: str, key: str, verdict: Mapping[str, Any],
               folders: Sequence[str] | None, racy: Mapping[str, list] | None) -> None:
        """Keep ``verdict`` under ``key``, watching ``folders`` (None: nothing it could watch); ``racy``: what
        :meth:`racy_digests` gave before it was judged (None: nothing can be kept). Not kept if an image folder
        changed too recently to be sure a later change shows (``RACY_NS``): the partition's old verdict is
        dropped then."""
        self.asked.add((model, category))
        signatures = [[folder, folder_signature(self.images, folder)] for folder in folders or ()]
        if folders is None or racy is None or not all(_settled(s, self.settled_before) for _, s in signatures):
            _remove(self._file(model, category))
            return
        self._write(model, category, {"key": key, "folders": signatures, "verdict": dict(verdict), "racy": dict(racy)})

    def forget_except(self, listed: set[tuple[str, str]]) -> None:
        """Drop the verdicts of partitions that have no warehouse file any more (``listed``: the (model, category)
        of every file listed) and were not asked about in this call: a deleted model's verdicts go, so the folder
        holds the data directory's partitions, not every partition it ever had."""
        for path in self.folder.glob("*/*.json"):
            partition = (path.parent.name, path.name[: -len(".json")])
            if partition not in self.asked and partition not in listed:
                _remove(path)
        for folder in self.folder.glob("*/"):
            try:
                folder.rmdir()  # only if empty
            except OSError:
                pass
