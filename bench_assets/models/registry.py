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
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

import yaml

from bench_assets.models.checkpoints import CheckpointError, read_safetensors_header
from bench_assets.core.settings import GenerationSettings
from bench_assets.models.cards import (
    CARD_SUFFIXES,
    PICKLE_SUFFIXES,
    SETTINGS_SIDECAR,
    CardError,
    HfRepoSource,
    ImageFolderSource,
    LoraSource,
    ModelCard,
    PickleSource,
    cached_commit,
    load_card,
    looks_like_repo_id,
)
from bench_assets.core.yaml_files import read_yaml_mapping

CONFIG_SIDECAR = ".config"
_KEY_MAX = 48


class ModelKind(str, Enum):
    DIFFUSERS = "diffusers"
    SINGLE_FILE = "single_file"
    HF_REPO = "hf_repo"  # card: repo: org/name
    LORA = "lora"  # card: base + lora + scale
    IMAGE_FOLDER = "image_folder"  # card: images: folder (API models; nothing to load)
    PICKLE_CHECKPOINT = "pickle_checkpoint"  # card: checkpoint: x.ckpt + allow_pickle: true
    INVALID = "invalid"


# Tensor-name fragments that only LoRA files have (kohya, diffusers/peft, old attn-procs).
LORA_KEY_MARKERS = ("lora_unet_", "lora_te", ".lora_A.", ".lora_B.", "lora_down", "lora_up", "_lora.down.", "_lora.up.")


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
    card: ModelCard | None = None  # for entries described by a card (path is then the card)
    base: "ModelEntry | None" = None  # a LoRA's base model

    @property
    def settings_sidecar(self) -> Path:
        return self.path.parent / f"{self.name}{SETTINGS_SIDECAR}"

    @property
    def config_sidecar(self) -> Path:
        """A diffusers config folder for a single-file checkpoint (no hub needed)."""
        return self.path.parent / f"{self.name}{CONFIG_SIDECAR}"

    def settings_overrides(self) -> dict[str, Any]:
        """Generation settings this model asks for (e.g. 512² for SD 1.5).

        Later wins: a LoRA's base model's own overrides, then the card's
        (``settings``, ``dtype``, ``scheduler``, ``grid``), then the
        ``<name>.settings.yaml`` sidecar. The sidecar wins because it is the one
        override file every kind of model has, so a tweak made there (a quick
        low-resolution pass, a test) works the same for cards and files.
        """
        inherited = self.base.settings_overrides() if self.base is not None else {}
        from_card = self.card.settings if self.card is not None else {}
        return {**inherited, **from_card, **self._sidecar_overrides()}

    def dependencies(self) -> list[Path]:
        """Local files besides ``path`` that loading needs (a LoRA's file and base, a checkpoint)."""
        files = list(self.card.referenced_paths()) if self.card is not None else []
        if self.base is not None:
            if self.base.card is None:
                files.append(self.base.path)
            if self.base.config_sidecar.is_dir():
                files.append(self.base.config_sidecar)
            files += self.base.dependencies()
        return files

    def _sidecar_overrides(self) -> dict[str, Any]:
        sidecar = self.settings_sidecar
        if not sidecar.is_file():
            return {}
        return read_yaml_mapping(sidecar, ValueError, "a mapping of setting: value")


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
    digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:6]  # any bytes a file name has
    return f"{clean}-{digest}"


def _is_sidecar(path: Path) -> bool:
    return path.name.endswith(SETTINGS_SIDECAR) or (
        path.is_dir() and path.name.endswith(CONFIG_SIDECAR)
    )


class EntryProblem(Exception):
    """Why one entry is invalid, found before any of its bytes were read; the message names the file."""


def data_root(models_dir: Path) -> Path:
    """The data folder: nothing outside it is read unless a card names it."""
    return Path(models_dir).resolve().parent


def _inside(target: Path, root: Path) -> bool:
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
    if not _inside(target, root):
        raise EntryProblem(
            f"{path}: resolves to {target}, outside the data folder {root}; nothing outside it is read "
            f"unless a card names it: move or copy the model into {root}"
        )
    mode = path.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise EntryProblem(f"{path}: not a regular file or folder (a FIFO, socket or device is never read)")


def _file_signature(path: Path) -> tuple[str, float]:
    info = path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}", info.st_mtime


def _folder_files(folder: Path, root: Path | None = None) -> list[Path]:
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
    stats = [p.stat() for p in _folder_files(folder, root)]
    total = sum(s.st_size for s in stats)
    newest = max((s.st_mtime_ns for s in stats), default=0)
    return f"{len(stats)}:{total}:{newest}", newest / 1e9


def _safetensors_header(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(header, None) if ``path``'s safetensors header parses, else (None, why not).

    Reads only the header (8-byte length + JSON), so a scan stays cheap.
    """
    try:
        header = read_safetensors_header(path)
    except CheckpointError as exc:
        return None, str(exc).removeprefix(f"{path}: ")
    if not any(k != "__metadata__" for k in header):
        return None, "not a safetensors file: the header lists no tensors"
    return header, None


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable safetensors file, or None if its header parses."""
    return _safetensors_header(path)[1]


def is_lora_header(header: dict[str, Any]) -> bool:
    """LoRA files are recognised by their tensor names (kohya, peft/diffusers, attn-procs)."""
    return any(marker in key for key in header for marker in LORA_KEY_MARKERS)


def _lora_hint(path: Path) -> str:
    return (
        f"{path}: this is a LoRA (its tensor names are LoRA weights), not a full model; to benchmark it, "
        f"write a card {path.stem}-lora.yaml next to it, e.g. "
        f"`{{base: stabilityai/stable-diffusion-xl-base-1.0, lora: {path.name}, scale: 0.8}}`"
    )


def _pickle_refusal(path: Path) -> str:
    return (
        f"{path}: refusing a pickle checkpoint ({path.suffix.lower()}); pickle files can run arbitrary "
        "code when loaded. Convert it to .safetensors or, only if you trust its source, allow this one "
        f"file with a card {path.stem}.yaml: `{{checkpoint: {path.name}, allow_pickle: true}}`"
    )


def _identify(path: Path) -> tuple[ModelKind, str | None]:
    if path.is_dir():
        if (path / "model_index.json").is_file():
            return ModelKind.DIFFUSERS, None
        return ModelKind.INVALID, (
            f"{path}: folder is not a diffusers pipeline (no model_index.json)"
        )
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        header, problem = _safetensors_header(path)
        if problem:
            return ModelKind.INVALID, f"{path}: {problem}"
        if header is not None and is_lora_header(header):
            return ModelKind.INVALID, _lora_hint(path)
        return ModelKind.SINGLE_FILE, None
    if suffix in PICKLE_SUFFIXES:
        return ModelKind.INVALID, _pickle_refusal(path)
    raise LookupError(path)  # not a model file at all (README, notes, ...)


def _entry_name(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def _path_signature(path: Path, root: Path | None = None) -> tuple[str, float]:
    return _folder_signature(path, root) if path.is_dir() else _file_signature(path)


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


_CARD_KINDS = {
    HfRepoSource: ModelKind.HF_REPO,
    LoraSource: ModelKind.LORA,
    ImageFolderSource: ModelKind.IMAGE_FOLDER,
    PickleSource: ModelKind.PICKLE_CHECKPOINT,
}


def _hf_state(repo: str, revision: str | None) -> str:
    # The cached snapshot a repo resolves to: a new download changes the entry's signature.
    return cached_commit(repo, revision) or "not-cached"


def _card_signature(card: ModelCard, base: ModelEntry | None, root: Path | None = None) -> tuple[str, float]:
    """Changes when the card, a file it points at, its base or its cached HF snapshot changes."""
    parts, newest = [], []
    for path in (card.path, *card.referenced_paths()):
        sig, mtime = _path_signature(path, root)
        parts.append(sig)
        newest.append(mtime)
    if isinstance(card.source, HfRepoSource):
        parts.append(_hf_state(card.source.repo, card.source.revision))
    if base is not None:
        parts.append(base.signature)
        newest.append(base.newest_mtime)
    return "|".join(parts), max(newest)


def _hf_base(card: ModelCard) -> ModelEntry:
    """A LoRA's base given as a repo id: an HF entry that exists only inside the LoRA entry."""
    src = card.source
    assert isinstance(src, LoraSource)
    hf_card = ModelCard(card.path, HfRepoSource(src.base, src.revision, src.variant), {})
    state = _hf_state(src.base, src.revision)
    return ModelEntry(partition_key(src.base), src.base, card.path, ModelKind.HF_REPO, state, 0.0, None, hf_card)


def _find_base(card: ModelCard, entries: dict[str, ModelEntry]) -> ModelEntry:
    """The LoRA's base: a model in the folder (by file/folder name, name or key) or a repo id."""
    src = card.source
    assert isinstance(src, LoraSource)
    for entry in entries.values():
        if src.base in (entry.path.name, entry.name, entry.key):
            if entry.error:
                raise CardError(f"{card.path}: field 'base': {src.base!r} is broken: {entry.error}")
            if entry.kind in (ModelKind.LORA, ModelKind.IMAGE_FOLDER):
                raise CardError(f"{card.path}: field 'base': {src.base!r} is a {entry.kind.value} entry, "
                                "not a model that can generate")
            return entry
    if looks_like_repo_id(src.base):
        return _hf_base(card)
    raise CardError(f"{card.path}: field 'base': {src.base!r} is neither a model in {card.path.parent} "
                    "nor a Hugging Face repo id like 'org/name'")


def _invalid(path: Path, name: str, error: str, card: ModelCard | None = None) -> ModelEntry:
    """An INVALID entry; its signature comes from ``lstat``, which works for a dangling link too."""
    try:
        info = path.lstat()
        signature, newest = f"invalid:{info.st_size}:{info.st_mtime_ns}", info.st_mtime
    except OSError:
        signature, newest = "invalid:gone", 0.0
    return ModelEntry(partition_key(name), name, path, ModelKind.INVALID, signature, newest, error, card)


def _unreadable(path: Path, exc: OSError) -> str:
    where = exc.filename if isinstance(exc.filename, str) else path
    return f"{where}: cannot be read ({exc.strerror or type(exc).__name__})"


def _check_image_folder(card: ModelCard, root: Path) -> None:
    """An image-folder card may only point inside the data folder: every file in it is read."""
    src = card.source
    if isinstance(src, ImageFolderSource):
        target = Path(os.path.realpath(src.images))
        if not _inside(target, root):
            raise EntryProblem(f"{card.path}: field 'images': {src.images} resolves to {target}, outside the "
                               f"data folder {root}; put the images in a folder inside it")


def _card_entry(path: Path, card: ModelCard | CardError, entries: dict[str, ModelEntry], root: Path) -> ModelEntry:
    name = path.stem
    if isinstance(card, CardError):
        return _invalid(path, name, str(card))
    try:
        _check_image_folder(card, root)
        base = _find_base(card, entries) if isinstance(card.source, LoraSource) else None
        sig, newest = _card_signature(card, base, root)
    except (CardError, EntryProblem) as exc:
        return _invalid(path, name, str(exc), card)
    except OSError as exc:
        return _invalid(path, name, _unreadable(path, exc), card)
    entry = ModelEntry(partition_key(name), name, path, _CARD_KINDS[type(card.source)], sig, newest, None, card, base)
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
        return _unreadable(sidecar, exc)
    return None


def _with_sidecar_checked(entry: ModelEntry, root: Path) -> ModelEntry:
    problem = _sidecar_problem(entry, root)
    return entry if problem is None else replace(entry, kind=ModelKind.INVALID, error=problem)


def _is_model_candidate(path: Path) -> bool:
    """Weights files and folders by name; a dangling ``x.safetensors`` link still counts."""
    return path.suffix.lower() in (".safetensors", *PICKLE_SUFFIXES) or path.is_dir()


def _file_entry(path: Path, root: Path) -> ModelEntry | None:
    """A weights file or folder in its own error boundary; None for files that are not models."""
    name = _entry_name(path)
    try:
        check_contained(path, root)
        kind, error = _identify(path)
        signature, newest = _path_signature(path, root)
    except LookupError:
        return None
    except EntryProblem as exc:
        return _invalid(path, name, str(exc))
    except OSError as exc:
        return _invalid(path, name, _unreadable(path, exc))
    entry = ModelEntry(partition_key(name), name, path, kind, signature, newest, error)
    return entry if error else _with_sidecar_checked(entry, root)


def _add(entries: dict[str, ModelEntry], entry: ModelEntry) -> None:
    key = entry.key
    if key in entries:  # e.g. both "x/" and "x.safetensors"
        key = f"{key}-{entry.kind.value}"[: _KEY_MAX + 24]
    entries[key] = replace(entry, key=key)


def _claimed_by(path: Path, card: ModelCard | CardError) -> list[Path]:
    """What a card points at; for a broken card, best effort from its raw YAML.

    A broken LoRA card must not also make its LoRA file show up as "write a card".
    A card that was refused unread (a link outside the data folder) is not read here either.
    """
    if isinstance(card, ModelCard):
        return card.referenced_paths()
    if getattr(card, "unread", False):
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return []
    if not isinstance(data, dict):
        return []
    named = {field: data.get(field) for field in ("lora", "checkpoint", "images")}
    paths = {f: path.parent / Path(v).expanduser() for f, v in named.items() if isinstance(v, str) and v.strip()}
    # `images: model.safetensors` is a mistake in the card, not a claim on a model file.
    return [p for field, p in paths.items() if field != "images" or p.is_dir()]


def _is_card_name(path: Path) -> bool:
    """``<name>.yaml`` that is not a settings sidecar, by name only (a dangling link is still a card)."""
    return path.suffix.lower() in CARD_SUFFIXES and not path.name.endswith(SETTINGS_SIDECAR)


def _read_card(path: Path, root: Path) -> ModelCard | CardError:
    try:
        check_contained(path, root)
    except (EntryProblem, OSError) as exc:
        error = CardError(str(exc) if isinstance(exc, EntryProblem) else _unreadable(path, exc))
        error.unread = True  # type: ignore[attr-defined]
        return error
    try:
        return load_card(path)
    except CardError as exc:
        return exc


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
        if path in cards or not _is_model_candidate(path) or any(_same_path(path, r) for r in claimed):
            continue
        if (entry := _file_entry(path, root)) is not None:
            _add(entries, entry)
    is_lora = {p: isinstance(c, ModelCard) and isinstance(c.source, LoraSource) for p, c in cards.items()}
    for path in sorted(cards, key=lambda p: is_lora[p]):
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


def sha256_file(path: Path, chunk: int = 8 * 1024 * 1024) -> str:
    """sha256 of a file read in chunks, so a 7 GB checkpoint never sits in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in _folder_files(folder):
        digest.update(str(file.relative_to(folder)).encode("utf-8", "surrogateescape"))
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def _json_digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _card_fingerprint(entry: ModelEntry, cache_dir: Path | None) -> str:
    assert entry.card is not None
    src = entry.card.source
    if isinstance(src, HfRepoSource):
        commit = cached_commit(src.repo, src.revision)
        return _json_digest({"repo": src.repo, "revision": src.revision, "variant": src.variant, "commit": commit})
    if isinstance(src, LoraSource):
        assert entry.base is not None
        return _json_digest({"base": fingerprint(entry.base, cache_dir), "lora": sha256_file(src.lora),
                             "scale": src.scale})
    if isinstance(src, ImageFolderSource):
        return _json_digest({"images": _folder_digest(src.images), "grid": src.grid, "extension": src.extension})
    if isinstance(src, PickleSource):
        return sha256_file(src.checkpoint)
    raise TypeError(f"unknown card source {type(src).__name__}")


def _compute_fingerprint(entry: ModelEntry, cache_dir: Path | None = None) -> str:
    if entry.card is not None:
        return _card_fingerprint(entry, cache_dir)
    if entry.path.is_file():
        return sha256_file(entry.path)
    return _folder_digest(entry.path)


def fingerprint(entry: ModelEntry, cache_dir: Path | None = None) -> str:
    """sha256 of the entry's content, cached by path and stat signature.

    An INVALID entry is never read: its fingerprint is a digest of its error
    and signature, so that a changed error (a fixed card) launches it again.

    A Hugging Face repo's fingerprint hashes no weights (repo, revision,
    variant and the cached snapshot commit), so it is never cached.
    """
    if entry.error:  # never hashed: its bytes may be anything, anywhere
        return _json_digest({"invalid": entry.error, "signature": entry.signature})
    if cache_dir is None or entry.kind == ModelKind.HF_REPO:
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
