"""A JSONL suite as the workbench edits it: versioned reads, atomic saves, a history and an undo per save.

- Every read returns the file's *version*: the sha256 of its bytes. A save
  names the version it was made from; when the file has changed since (another
  tab, another person, an editor), the save is refused (:class:`VersionConflict`,
  HTTP 409) and nothing is written: a save is never lost, it is re-done on the
  current file.
- A save writes the new content to a temporary file next to the suite,
  validates it with the same loader the benchmark uses
  (:func:`~bench_assets.prompts.prompt.load_jsonl_suite`), then moves it over
  the suite with ``os.replace`` (atomic: a reader sees the old file or the new
  one, never half of one). A suite that would not load is never written.
- Before the move, the previous content is kept as
  ``prompts/.history/<suite>/<UTC timestamp>-<its version>.jsonl``; undo puts
  the newest one back (itself a versioned save) and removes it, so each undo
  steps back over one save.

One lock per process serialises check-then-write; the version check makes
concurrent writers in other processes (or a hand edit) safe too, short of a
write that lands between the check and the move.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_assets.core.errors import BenchError
from bench_assets.prompts.prompt import Prompt, PromptSuite, PromptSuiteError, load_jsonl_suite

HISTORY = ".history"
_SUITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_HISTORY_RE = re.compile(r"^\d{8}T\d{6}\d{6}Z-[0-9a-f]{64}\.jsonl$")


class VersionConflict(BenchError):
    """The suite changed since the client read it: reload, then save again."""


class NotFound(BenchError):
    """No such suite, or nothing to undo."""


def version_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prompt_record(prompt: Prompt) -> dict[str, Any]:
    """A prompt as one JSONL line holds it (keys in the schema's order, empty fields left out)."""
    record: dict[str, Any] = {"id": prompt.id, "category": prompt.category, "prompt": prompt.prompt}
    if prompt.negative_prompt:
        record["negative_prompt"] = prompt.negative_prompt
    if prompt.difficulty:
        record["difficulty"] = prompt.difficulty
    if prompt.metadata:
        record["metadata"] = prompt.metadata
    return record


def encode_suite(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


@dataclass(frozen=True)
class Snapshot:
    """One read of a suite: its prompts and the version they were read at."""

    suite: PromptSuite
    version: str


class SuiteFiles:
    """The JSONL suites of one ``prompts/`` folder."""

    def __init__(self, prompts_dir: Path) -> None:
        self.root = Path(prompts_dir)
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.jsonl") if _SUITE_RE.match(p.stem))

    def path(self, name: str) -> Path:
        if not _SUITE_RE.match(name or "") or not (self.root / f"{name}.jsonl").is_file():
            raise NotFound(f"no suite {name!r} in {self.root}; suites: {', '.join(self.names()) or 'none'}")
        return self.root / f"{name}.jsonl"

    def history_dir(self, name: str) -> Path:
        return self.root / HISTORY / name

    def read(self, name: str) -> Snapshot:
        path = self.path(name)
        with self._lock:
            data = path.read_bytes()
            return Snapshot(load_jsonl_suite(path), version_of(data))

    def read_at(self, name: str, version: str) -> Snapshot:
        """The suite as read now, refused (:class:`VersionConflict`) unless it is still at ``version``."""
        snapshot = self.read(name)
        if snapshot.version != version:
            self._current(self.path(name), version)
        return snapshot

    def save(self, name: str, records: list[dict[str, Any]], version: str) -> Snapshot:
        """Write ``records`` as the suite if it is still at ``version``; the old content goes to the history."""
        path = self.path(name)
        with self._lock:
            old = self._current(path, version)
            return self._write(path, encode_suite(records), old)

    def undo(self, name: str, version: str) -> Snapshot:
        """Put back the content before the newest save (if the suite is still at ``version``)."""
        path = self.path(name)
        with self._lock:
            self._current(path, version)
            entries = self.history(name)
            if not entries:
                raise NotFound(f"nothing to undo: {name} has no saved history")
            newest = self.history_dir(name) / entries[-1]
            snapshot = self._write(path, newest.read_bytes(), None)
            newest.unlink()
            return snapshot

    def history(self, name: str) -> list[str]:
        folder = self.history_dir(name)
        return sorted(p.name for p in folder.glob("*.jsonl") if _HISTORY_RE.match(p.name)) if folder.is_dir() else []

    def _current(self, path: Path, version: str) -> bytes:
        data = path.read_bytes()
        if version != version_of(data):
            raise VersionConflict(f"{path.name} changed since you loaded it (another tab or person saved it): "
                                  "reload, then make your change again")
        return data

    def _write(self, path: Path, data: bytes, previous: bytes | None) -> Snapshot:
        """Validate ``data`` as the suite, keep ``previous`` in the history, then move ``data`` into place."""
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        try:
            suite = load_jsonl_suite(tmp)
        except PromptSuiteError as exc:
            tmp.unlink()
            raise PromptSuiteError(str(exc).replace(str(tmp), path.name)) from None
        if previous is not None:
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            folder = self.history_dir(path.stem)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{stamp}-{version_of(previous)}.jsonl").write_bytes(previous)
        os.replace(tmp, path)
        return Snapshot(PromptSuite(path.stem, suite.prompts), version_of(data))
