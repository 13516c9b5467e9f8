"""The model registry: what is in ``data/models/`` and what each entry is.

Each entry gets a partition key (stable, sanitised: Dagster does not validate
dynamic keys, and ``|``, ``,``, ``[``, ``]`` break multi-partition keys), a cheap
stat signature (to notice changes and files still being copied) and, on demand,
a content fingerprint (sha256 of the weights, cached by signature so that a
7 GB checkpoint is hashed once, not on every sensor tick).

A broken entry is still an entry: it carries ``error`` so that its own
partition fails with that message while every other model runs. Each entry is
identified inside its own error boundary (a dangling symlink, a file that
cannot be read, a FIFO, a broken card or settings sidecar all become INVALID
entries naming the file), and an INVALID entry is never hashed.

Nothing outside the data folder (the parent of ``data/models/``) is read
unless a card names it on purpose (a LoRA or checkpoint file): a symlink in
``data/models/``, or inside a model folder, that resolves outside it is
refused before a byte is read, and so is an image folder outside it.

Besides weights files and diffusers folders, the folder holds model cards
(``<name>.yaml``, see :mod:`bench_assets.models.cards`): Hugging Face
repos, LoRAs on a base model, folders of images made by API models, and
explicitly allowed pickle checkpoints. A file a card points at (a LoRA, a
checkpoint, an image folder) is part of that card's entry, not its own.

What each kind is (how it is detected, parsed, fingerprinted) comes from one
table, ``MODEL_KINDS`` in :mod:`bench_assets.models.kinds`; this module only
walks the folder and applies the rules every kind shares.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from bench_assets.core.settings import GenerationSettings
from bench_assets.models.cards import CARD_SUFFIXES, SETTINGS_SIDECAR, CardError, ModelCard, read_card_data
from bench_assets.models.entry import CONFIG_SIDECAR, KEY_MAX, ModelEntry, partition_key
from bench_assets.models.files import (
    EntryProblem,
    check_contained,
    data_root,
    path_signature,
    sha256_file,  # noqa: F401  (re-exported: the one file hash, also for tests)
    unreadable,
)
from bench_assets.models.kinds import MODEL_KINDS, ModelKind, identify_file, is_model_file, load_card, model_kind

__all__ = ["ModelEntry", "ModelKind", "MODEL_KINDS", "fingerprint", "find_model", "model_settings",
           "partition_key", "scan_models", "sha256_file"]


def _is_sidecar(path: Path) -> bool:
    return path.name.endswith(SETTINGS_SIDECAR) or (
        path.is_dir() and path.name.endswith(CONFIG_SIDECAR)
    )


def _entry_name(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _card_signature(card: ModelCard, base: ModelEntry | None, root: Path | None = None) -> tuple[str, float]:
    """Changes when the card, a file it points at, its base or the outside state it follows changes."""
    parts, newest = [], []
    for path in (card.path, *card.references):
        sig, mtime = path_signature(path, root)
        parts.append(sig)
        newest.append(mtime)
    state = model_kind(card.kind).card.state
    if state is not None:
        parts.append(state(card.source))
    if base is not None:
        parts.append(base.signature)
        newest.append(base.newest_mtime)
    return "|".join(parts), max(newest)


def _invalid(path: Path, name: str, error: str, card: ModelCard | None = None) -> ModelEntry:
    """An INVALID entry; its signature comes from ``lstat``, which works for a dangling link too."""
    try:
        info = path.lstat()
        signature, newest = f"invalid:{info.st_size}:{info.st_mtime_ns}", info.st_mtime
    except OSError:
        signature, newest = "invalid:gone", 0.0
    return ModelEntry(partition_key(name), name, path, ModelKind.INVALID, signature, newest, error, card)


def _card_entry(path: Path, card: ModelCard | CardError, entries: dict[str, ModelEntry], root: Path) -> ModelEntry:
    name = path.stem
    if isinstance(card, CardError):
        return _invalid(path, name, str(card))
    fmt = model_kind(card.kind).card
    try:
        if fmt.check is not None:
            fmt.check(card, root)
        base = fmt.base(card, entries) if fmt.base is not None else None
        sig, newest = _card_signature(card, base, root)
    except (CardError, EntryProblem) as exc:
        return _invalid(path, name, str(exc), card)
    except OSError as exc:
        return _invalid(path, name, unreadable(path, exc), card)
    entry = ModelEntry(partition_key(name), name, path, card.kind, sig, newest, None, card, base)
    return _with_sidecar_checked(entry, root)


def _sidecar_problem(entry: ModelEntry, root: Path) -> str | None:
    """Why the ``<name>.settings.yaml`` sidecar is unusable, or None (checked at scan time, so that
    ``bench status``, the sensor and the schedule never meet a broken one later)."""
    sidecar = entry.settings_sidecar
    if not (sidecar.exists() or sidecar.is_symlink()):
        return None
    try:
        check_contained(sidecar, root)
        GenerationSettings().with_overrides(entry.settings_overrides(), source=str(sidecar))
    except (EntryProblem, ValueError, TypeError) as exc:
        return str(exc)
    except OSError as exc:
        return unreadable(sidecar, exc)
    return None


def _with_sidecar_checked(entry: ModelEntry, root: Path) -> ModelEntry:
    problem = _sidecar_problem(entry, root)
    return entry if problem is None else replace(entry, kind=ModelKind.INVALID, error=problem)


def _file_entry(path: Path, root: Path) -> ModelEntry | None:
    """A weights file or folder in its own error boundary; None for files that are not models."""
    name = _entry_name(path)
    try:
        check_contained(path, root)
        kind, error = identify_file(path)
        signature, newest = path_signature(path, root)
    except LookupError:
        return None
    except EntryProblem as exc:
        return _invalid(path, name, str(exc))
    except OSError as exc:
        return _invalid(path, name, unreadable(path, exc))
    entry = ModelEntry(partition_key(name), name, path, kind, signature, newest, error)
    return entry if error else _with_sidecar_checked(entry, root)


def _add(entries: dict[str, ModelEntry], entry: ModelEntry) -> None:
    key = entry.key
    if key in entries:  # e.g. both "x/" and "x.safetensors"
        key = f"{key}-{entry.kind}"[: KEY_MAX + 24]
    entries[key] = replace(entry, key=key)


def _claimed_by(path: Path, card: ModelCard | CardError) -> list[Path]:
    """What a card points at; for a broken card, best effort from its raw YAML (every card kind's fields).

    A broken LoRA card must not also make its LoRA file show up as "write a card".
    A card that was refused unread (a link outside the data folder) is not read here either.
    """
    if isinstance(card, ModelCard):
        return list(card.references)
    if getattr(card, "unread", False):
        return []
    try:
        data = read_card_data(path)
    except CardError:
        return []
    if not isinstance(data, dict):
        return []
    return [p for row in MODEL_KINDS.values() if row.card is not None for p in row.card.references(path, data)]


def _is_card_name(path: Path) -> bool:
    """``<name>.yaml`` that is not a settings sidecar, by name only (a dangling link is still a card)."""
    return path.suffix.lower() in CARD_SUFFIXES and not path.name.endswith(SETTINGS_SIDECAR)


def _read_card(path: Path, root: Path) -> ModelCard | CardError:
    try:
        check_contained(path, root)
    except (EntryProblem, OSError) as exc:
        error = CardError(str(exc) if isinstance(exc, EntryProblem) else unreadable(path, exc))
        error.unread = True  # type: ignore[attr-defined]
        return error
    try:
        return load_card(path)
    except CardError as exc:
        return exc


def _builds_on_another(card: ModelCard | CardError) -> bool:
    """Cards of a kind with a base (a LoRA) are scanned last, so that their base can be any other entry."""
    return isinstance(card, ModelCard) and model_kind(card.kind).card.base is not None


def scan_models(models_dir: Path) -> list[ModelEntry]:
    """Every model entry in the drop folder, sorted by key; never raises for one bad entry.

    Hidden files, sidecars and unrelated files (a README) are skipped; broken
    model files and cards become INVALID entries carrying their error. Files
    a valid card points at are part of that card's entry. LoRA cards come
    last, so that their base can be any other entry, card or not.
    """
    if not models_dir.is_dir():
        return []
    root = data_root(models_dir)
    paths = [p for p in sorted(models_dir.iterdir()) if not p.name.startswith(".") and not _is_sidecar(p)]
    cards = {p: _read_card(p, root) for p in paths if _is_card_name(p)}
    claimed = [r for path, card in cards.items() for r in _claimed_by(path, card)]
    entries: dict[str, ModelEntry] = {}
    for path in paths:
        if path in cards or not is_model_file(path) or any(_same_path(path, r) for r in claimed):
            continue
        if (entry := _file_entry(path, root)) is not None:
            _add(entries, entry)
    for path in sorted(cards, key=lambda p: _builds_on_another(cards[p])):
        _add(entries, _card_entry(path, cards[path], entries, root))
    return [entries[k] for k in sorted(entries)]


def model_settings(defaults: GenerationSettings, suite_generation: Mapping[str, Any] | None,
                   entry: ModelEntry) -> GenerationSettings:
    """The settings a model is generated with; later wins.

    Defaults (the platform's, then ``data/config.yaml``'s ``generation:``, see
    ``core.config.generation_defaults``) < the prompt suite's ``generation:``
    < the model's card and ``<name>.settings.yaml`` sidecar. The one place this
    order lives: the assets, the nightly schedule and ``bench status`` call it.
    A broken entry's own files cannot be read; it gets the suite's settings.
    """
    settings = defaults.with_overrides(dict(suite_generation or {}), source="the prompt suite's generation settings")
    if entry.error:
        return settings
    return settings.with_overrides(entry.settings_overrides(), source=str(entry.settings_sidecar))


def _compute_fingerprint(entry: ModelEntry, cache_dir: Path | None) -> str:
    # A broken entry is never read, whatever kind it tried to be: its bytes may be anything, anywhere.
    row = model_kind(ModelKind.INVALID if entry.error else entry.kind)
    return row.fingerprint(entry, lambda other: fingerprint(other, cache_dir))


def fingerprint(entry: ModelEntry, cache_dir: Path | None = None) -> str:
    """sha256 of the entry's content (its kind's ``fingerprint``), cached by path and stat signature.

    An INVALID entry is never read: its fingerprint is a digest of its error
    and signature, so that a changed error (a fixed card) launches it again.

    A kind whose fingerprint reads no weights (a Hugging Face repo: repo,
    revision, variant and the cached snapshot commit) is never cached.
    """
    if entry.error or cache_dir is None or not model_kind(entry.kind).cache_fingerprint:
        return _compute_fingerprint(entry, cache_dir)
    cache_file = cache_dir / "fingerprints.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        cache = {}
    cached = cache.get(str(entry.path))
    if cached and cached.get("signature") == entry.signature:
        return cached["fingerprint"]
    value = _compute_fingerprint(entry, cache_dir)
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
