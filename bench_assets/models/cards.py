"""Model cards: small YAML files in ``data/models/`` for models that are not one weights file.

A card ``<name>.yaml`` (never ``<name>.settings.yaml``, which stays a settings
sidecar) describes one card kind of ``MODEL_KINDS`` (``models/kinds.py``),
told apart by the one key that marks it; this module holds the built-in
kinds' parsers:

- a Hugging Face repo: ``repo: org/name`` (+ ``revision``, ``variant``);
- a LoRA on a base model: ``base: <model in data/models or repo id>``,
  ``lora: file.safetensors``, ``scale: 0.8``;
- a folder of images made by an API model we cannot run: ``images: folder``
  (+ ``grid: [rows, cols]``, ``extension``);
- a trusted pickle checkpoint: ``checkpoint: old.ckpt`` + ``allow_pickle: true``
  (the only way a pickle file is ever loaded: one explicit line per file).

Every card may carry ``settings: {...}`` (generation settings overrides);
generatable kinds also ``dtype`` (→ precision) and ``scheduler`` (→ sampler).
Parsing is strict: an unknown key is usually a typo that would otherwise be
silently ignored, so every error names the card file and the field.

Plain Python: no torch, no Dagster, no huggingface_hub (the HF cache layout is
read directly, so a sensor tick stays cheap).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bench_assets.core.errors import BenchError
from bench_assets.core.settings import SAMPLERS, GenerationSettings, SettingsError
from bench_assets.core.yaml_files import read_yaml

CARD_SUFFIXES = (".yaml", ".yml")
SETTINGS_SIDECAR = ".settings.yaml"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp")
CARD_DTYPES = ("fp16", "bf16", "fp32")
_GRID_MAX = 16
# Hugging Face repo ids: "org/name", letters, digits, '-', '_', '.'; no '--' or '..'.
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_COMMON_KEYS = {"settings", "description"}
_GENERATING_KEYS = _COMMON_KEYS | {"dtype", "scheduler"}


class CardError(BenchError, ValueError):
    """A card is invalid; the message starts with the card's path and names the field."""


@dataclass(frozen=True)
class HfRepoSource:
    repo: str
    revision: str | None = None
    variant: str | None = None


@dataclass(frozen=True)
class LoraSource:
    base: str  # as written: a name in data/models or a repo id (resolved by the registry)
    lora: Path
    scale: float
    revision: str | None = None  # only for a repo-id base
    variant: str | None = None


@dataclass(frozen=True)
class ImageFolderSource:
    images: Path
    grid: tuple[int, int] | None = None
    extension: str | None = None

    @property
    def tiles_per_file(self) -> int:
        return self.grid[0] * self.grid[1] if self.grid else 1


@dataclass(frozen=True)
class PickleSource:
    checkpoint: Path


@dataclass(frozen=True)
class ModelCard:
    """A parsed, validated card: which kind of ``MODEL_KINDS`` it is and what it says."""

    path: Path
    source: Any  # the kind's own dataclass (HfRepoSource, LoraSource, ...)
    settings: dict[str, Any]  # overrides from settings/dtype/scheduler/grid, already validated
    kind: str  # its key in MODEL_KINDS
    # Local files or folders it points at: part of its entry, never listed on their own.
    references: tuple[Path, ...] = ()


def is_card_path(path: Path) -> bool:
    """``<name>.yaml`` files that are not settings sidecars."""
    return path.is_file() and path.suffix.lower() in CARD_SUFFIXES and not path.name.endswith(SETTINGS_SIDECAR)


def card_name(path: Path) -> str:
    return path.stem


# --------------------------------------------------------------------------- field helpers


def _fail(path: Path, field: str, message: str) -> CardError:
    return CardError(f"{path}: field '{field}': {message}")


def _optional_str(path: Path, data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # e.g. an unquoted numeric revision
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, field, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _required_str(path: Path, data: dict[str, Any], field: str) -> str:
    value = _optional_str(path, data, field)
    if value is None:
        raise _fail(path, field, "is required")
    return value


def _repo_id(path: Path, field: str, value: str) -> str:
    if not _REPO_RE.match(value) or "--" in value or ".." in value:
        raise _fail(path, field, f"{value!r} is not a Hugging Face repo id like 'org/name'")
    return value


def looks_like_repo_id(value: str) -> bool:
    return bool(_REPO_RE.match(value)) and "--" not in value and ".." not in value


def _resolve(card: Path, field: str, value: str) -> Path:
    """A path relative to the card's folder, or absolute (``~`` expanded)."""
    target = Path(value).expanduser()
    return target if target.is_absolute() else card.parent / target


def _float(path: Path, data: dict[str, Any], field: str, default: float) -> float:
    value = data.get(field, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, field, f"must be a number, got {value!r}")
    return float(value)


def _grid(path: Path, value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= _GRID_MAX for v in value)
    )
    if not ok:
        raise _fail(path, "grid", f"must be [rows, cols] with integers 1..{_GRID_MAX}, got {value!r}")
    return int(value[0]), int(value[1])


def _check_keys(path: Path, data: dict[str, Any], allowed: set[str], kind: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(path, unknown[0], f"unknown for a {kind} card (allowed: {sorted(allowed)})")


# --------------------------------------------------------------------------- settings


def card_settings(path: Path, data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The card's settings overrides, validated now so that a bad card fails at scan time."""
    block = data.get("settings") or {}
    if not isinstance(block, dict):
        raise _fail(path, "settings", f"must be a mapping of setting: value, got {type(block).__name__}")
    known = {f.name for f in fields(GenerationSettings)}
    unknown = sorted(set(block) - known)
    if unknown:
        raise _fail(path, f"settings.{unknown[0]}", f"unknown setting; known: {sorted(known)}")
    merged = {**defaults, **block}
    for field, setting, choices in (("dtype", "precision", CARD_DTYPES), ("scheduler", "sampler", SAMPLERS)):
        value = _optional_str(path, data, field)
        if value is None:
            continue
        if value not in choices:
            raise _fail(path, field, f"{value!r} is not one of {choices}")
        if setting in block and block[setting] != value:
            raise _fail(path, field, f"{value!r} disagrees with settings.{setting}: {block[setting]!r}")
        merged[setting] = value
    try:
        GenerationSettings().with_overrides(merged, source=f"{path}: field 'settings'")
    except SettingsError as exc:
        raise CardError(str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise _fail(path, "settings", f"bad value ({exc})") from None
    return merged


# --------------------------------------------------------------------------- the card kinds' parsers


def parse_hf_repo(path: Path, data: dict[str, Any]) -> HfRepoSource:
    _check_keys(path, data, _GENERATING_KEYS | {"repo", "revision", "variant"}, "Hugging Face repo")
    repo = _repo_id(path, "repo", _required_str(path, data, "repo"))
    return HfRepoSource(repo, _optional_str(path, data, "revision"), _optional_str(path, data, "variant"))


def parse_lora(path: Path, data: dict[str, Any]) -> LoraSource:
    _check_keys(path, data, _GENERATING_KEYS | {"base", "lora", "scale", "revision", "variant"}, "LoRA")
    base = _required_str(path, data, "base")
    lora = _resolve(path, "lora", _required_str(path, data, "lora"))
    if lora.suffix.lower() != ".safetensors":
        raise _fail(path, "lora", f"{lora} is not a .safetensors file (pickled LoRAs are never loaded)")
    if not lora.is_file():
        raise _fail(path, "lora", f"{lora} does not exist")
    scale = _float(path, data, "scale", 1.0)
    if not -10.0 <= scale <= 10.0:
        raise _fail(path, "scale", f"{scale} is outside [-10, 10]")
    revision, variant = _optional_str(path, data, "revision"), _optional_str(path, data, "variant")
    if (revision or variant) and not looks_like_repo_id(base):
        raise _fail(path, "revision" if revision else "variant", "only applies when 'base' is a repo id")
    return LoraSource(base, lora, scale, revision, variant)


def parse_image_folder(path: Path, data: dict[str, Any]) -> ImageFolderSource:
    _check_keys(path, data, _COMMON_KEYS | {"images", "grid", "extension"}, "image folder")
    folder = _resolve(path, "images", _required_str(path, data, "images"))
    if not folder.is_dir():
        raise _fail(path, "images", f"{folder} is not a folder")
    extension = _optional_str(path, data, "extension")
    if extension is not None:
        extension = extension.lower().lstrip(".")
        if extension not in IMAGE_EXTENSIONS:
            raise _fail(path, "extension", f"{extension!r} is not one of {IMAGE_EXTENSIONS}")
    return ImageFolderSource(folder, _grid(path, data.get("grid")), extension)


def parse_pickle(path: Path, data: dict[str, Any]) -> PickleSource:
    _check_keys(path, data, _GENERATING_KEYS | {"checkpoint", "allow_pickle"}, "checkpoint")
    checkpoint = _resolve(path, "checkpoint", _required_str(path, data, "checkpoint"))
    suffix = checkpoint.suffix.lower()
    if suffix == ".safetensors":
        raise _fail(path, "checkpoint", "a .safetensors file needs no card: put it in data/models "
                    "(settings go in <name>.settings.yaml)")
    if suffix not in PICKLE_SUFFIXES:
        raise _fail(path, "checkpoint", f"{checkpoint.name} is not a checkpoint file {PICKLE_SUFFIXES}")
    if data.get("allow_pickle") is not True:
        raise _fail(path, "allow_pickle", "must be `true` to load a pickle checkpoint: pickle files can "
                    "run arbitrary code when loaded, so only allow files from a source you trust")
    if not checkpoint.is_file():
        raise _fail(path, "checkpoint", f"{checkpoint} does not exist")
    return PickleSource(checkpoint)


def image_folder_defaults(source: ImageFolderSource) -> dict[str, Any]:
    """A grid of rows x cols is that many images per prompt, unless settings say otherwise."""
    return {"images_per_prompt": source.tiles_per_file} if source.grid else {}


def lora_markers_problem(path: Path, data: dict[str, Any]) -> None:
    """The two ways a LoRA card goes wrong before its kind is even clear, said plainly."""
    if "base" in data and "lora" not in data:
        raise _fail(path, "lora", "a card with 'base' needs 'lora: <file>.safetensors'")
    if "lora" in data and "repo" in data:
        raise _fail(path, "repo", "a LoRA card names its base model with 'base', not 'repo'")


def named_path(card: Path, data: dict[str, Any], field: str, folder: bool = False) -> list[Path]:
    """The local path a card's ``field`` names, read from its raw YAML: ``[]`` when it names none.

    Best effort, so that a broken card still claims its files (a broken LoRA card
    must not also make its LoRA file show up as "write a card"); with ``folder``,
    only an existing folder counts (``images: model.safetensors`` is a mistake in
    the card, not a claim on a model file).
    """
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        return []
    target = _resolve(card, field, value.strip())
    return [target] if not folder or target.is_dir() else []


def read_card_data(path: Path) -> Any:
    """The card's YAML, or CardError naming the file."""
    path = Path(path)
    try:
        return read_yaml(path, CardError)
    except (OSError, UnicodeDecodeError) as exc:
        raise CardError(f"{path}: cannot read the card ({exc})") from None


# --------------------------------------------------------------------------- Hugging Face cache


def hf_hub_cache() -> Path:
    """The user's hub cache, resolved like huggingface_hub does, but at call time."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
        home = str(Path(xdg) / "huggingface")
    return Path(home).expanduser() / "hub"


def hf_repo_folder(repo: str, cache: Path | None = None) -> Path:
    return (cache or hf_hub_cache()) / f"models--{repo.replace('/', '--')}"


def cached_commit(repo: str, revision: str | None, cache: Path | None = None) -> str | None:
    """The snapshot commit ``revision`` (default "main") resolves to in the cache, or None."""
    folder = hf_repo_folder(repo, cache)
    rev = revision or "main"
    if _COMMIT_RE.match(rev):
        return rev if (folder / "snapshots" / rev).is_dir() else None
    ref = folder / "refs" / rev
    try:
        commit = ref.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return commit if _COMMIT_RE.match(commit) and (folder / "snapshots" / commit).is_dir() else None
