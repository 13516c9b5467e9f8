"""The model registry: what is in ``data/models/`` and what each entry is.

Each entry gets a partition key (stable, sanitised: Dagster does not validate
dynamic keys, and ``|``, ``,``, ``[``, ``]`` break multi-partition keys), a cheap
stat signature (to notice changes and files still being copied) and, on demand,
a content fingerprint (sha256 of the weights, cached by signature so that a
7 GB checkpoint is hashed once, not on every sensor tick).

A broken entry is still an entry: it carries ``error`` so that its own
partition fails with that message while every other model runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")
SETTINGS_SIDECAR = ".settings.yaml"
CONFIG_SIDECAR = ".config"
_KEY_MAX = 48
_SAFETENSORS_HEADER_MAX = 100 * 1024 * 1024


class ModelKind(str, Enum):
    DIFFUSERS = "diffusers"
    SINGLE_FILE = "single_file"
    INVALID = "invalid"


@dataclass(frozen=True)
class ModelEntry:
    """One model in the drop folder."""

    key: str
    name: str
    path: Path
    kind: ModelKind
    signature: str
    newest_mtime: float = 0.0
    error: str | None = None

    @property
    def settings_sidecar(self) -> Path:
        return self.path.parent / f"{self.name}{SETTINGS_SIDECAR}"

    @property
    def config_sidecar(self) -> Path:
        """A diffusers config folder for a single-file checkpoint (no hub needed)."""
        return self.path.parent / f"{self.name}{CONFIG_SIDECAR}"

    def settings_overrides(self) -> dict[str, Any]:
        """Generation settings this model asks for (e.g. 512² for SD 1.5)."""
        sidecar = self.settings_sidecar
        if not sidecar.is_file():
            return {}
        try:
            data = yaml.safe_load(sidecar.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{sidecar}: invalid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{sidecar}: expected a mapping of setting: value")
        return data


def partition_key(name: str) -> str:
    """A stable key that is safe in multi-partition keys and file paths.

    Names that are already clean keep their spelling; anything that had to be
    changed gets a short hash of the original, so ``My Model`` and ``my-model``
    never collide.
    """
    clean = re.sub(r"[^a-z0-9._-]+", "-", name.lower())
    clean = re.sub(r"[-.]{2,}", "-", clean).strip("-._")[:_KEY_MAX] or "model"
    if clean == name:
        return clean
    digest = hashlib.sha1(name.encode()).hexdigest()[:6]
    return f"{clean}-{digest}"


def _is_sidecar(path: Path) -> bool:
    return path.name.endswith(SETTINGS_SIDECAR) or (
        path.is_dir() and path.name.endswith(CONFIG_SIDECAR)
    )


def _file_signature(path: Path) -> tuple[str, float]:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}", stat.st_mtime


def _folder_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _folder_signature(folder: Path) -> tuple[str, float]:
    stats = [p.stat() for p in _folder_files(folder)]
    total = sum(s.st_size for s in stats)
    newest = max((s.st_mtime_ns for s in stats), default=0)
    return f"{len(stats)}:{total}:{newest}", newest / 1e9


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable safetensors file, or None if its header parses.

    Reads only the header (8-byte length + JSON), so a scan stays cheap.
    """
    size = path.stat().st_size
    if size < 8:
        return f"not a safetensors file: only {size} bytes"
    with path.open("rb") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
        if header_len <= 1 or header_len > min(_SAFETENSORS_HEADER_MAX, size - 8):
            return f"not a safetensors file: header length {header_len} does not fit a {size}-byte file"
        try:
            header = json.loads(handle.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "not a safetensors file: its header is not valid JSON"
    if not isinstance(header, dict) or not any(k != "__metadata__" for k in header):
        return "not a safetensors file: the header lists no tensors"
    return None


def _identify(path: Path) -> tuple[ModelKind, str | None]:
    if path.is_dir():
        if (path / "model_index.json").is_file():
            return ModelKind.DIFFUSERS, None
        return ModelKind.INVALID, (
            f"{path}: folder is not a diffusers pipeline (no model_index.json)"
        )
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        problem = safetensors_problem(path)
        return (ModelKind.INVALID, f"{path}: {problem}") if problem else (ModelKind.SINGLE_FILE, None)
    if suffix in PICKLE_SUFFIXES:
        return ModelKind.INVALID, (
            f"{path}: refusing a pickle checkpoint ({suffix}); pickle files can run arbitrary "
            "code when loaded. Convert it to .safetensors."
        )
    raise LookupError(path)  # not a model file at all (README, notes, ...)


def _entry_name(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def scan_models(models_dir: Path) -> list[ModelEntry]:
    """Every model entry in the drop folder, sorted by key.

    Hidden files, sidecars and unrelated files (a README) are skipped; broken
    model files become INVALID entries carrying their error.
    """
    if not models_dir.is_dir():
        return []
    entries: dict[str, ModelEntry] = {}
    for path in sorted(models_dir.iterdir()):
        if path.name.startswith(".") or _is_sidecar(path):
            continue
        try:
            kind, error = _identify(path)
        except LookupError:
            continue
        name = _entry_name(path)
        key = partition_key(name)
        if key in entries:  # e.g. both "x/" and "x.safetensors"
            key = f"{key}-{kind.value}"[: _KEY_MAX + 16]
        signature, newest = _folder_signature(path) if path.is_dir() else _file_signature(path)
        entries[key] = ModelEntry(key, name, path, kind, signature, newest, error)
    return [entries[k] for k in sorted(entries)]


def _sha256_file(path: Path, chunk: int = 8 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _compute_fingerprint(entry: ModelEntry) -> str:
    if entry.path.is_file():
        return _sha256_file(entry.path)
    digest = hashlib.sha256()
    for file in _folder_files(entry.path):
        digest.update(str(file.relative_to(entry.path)).encode())
        digest.update(_sha256_file(file).encode())
    return digest.hexdigest()


def fingerprint(entry: ModelEntry, cache_dir: Path | None = None) -> str:
    """sha256 of the entry's content, cached by path and stat signature."""
    if cache_dir is None:
        return _compute_fingerprint(entry)
    cache_file = cache_dir / "fingerprints.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        cache = {}
    cached = cache.get(str(entry.path))
    if cached and cached.get("signature") == entry.signature:
        return cached["fingerprint"]
    value = _compute_fingerprint(entry)
    cache[str(entry.path)] = {"signature": entry.signature, "fingerprint": value}
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    os.replace(tmp, cache_file)
    return value


def find_model(models_dir: Path, key: str) -> ModelEntry:
    for entry in scan_models(models_dir):
        if entry.key == key:
            return entry
    raise KeyError(f"model '{key}' is not in {models_dir} (was it removed?)")
