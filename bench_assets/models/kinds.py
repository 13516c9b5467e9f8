"""The model kinds as a table: ``MODEL_KINDS``, one row per kind of thing in ``data/models/``.

A row says everything the platform needs to know about a kind, and every
place that used to decide by kind reads it here instead:

- how it is detected: a file or folder predicate (``file``), or the one key
  that marks its card (``card``), and for a card how it parses, which local
  paths it points at (they are part of its entry, never entries of their own),
  what it builds on (a LoRA's base) and what outside state it depends on;
- how it is fingerprinted (``fingerprint``: what a content change is, and
  whether the result may be cached by stat signature);
- how it loads (``load``: a function returning a diffusers pipeline, see
  ``models/loaders.py``; None when there is nothing to load because its
  images are ingested, as for an API model's image folder), and whether a
  LoRA may use it as its base.

A kind is the row's key, a plain string: a new kind (a file format, a card)
is one ``KindRow`` in this dict, from here or from a test, and nothing else.
The registry (``models/registry.py``), the generation step
(``generation/pipelines.py``), the assets and the report only read the table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

from bench_assets.models.cards import (
    CardError,
    HfRepoSource,
    ModelCard,
    cached_commit,
    card_settings,
    image_folder_defaults,
    looks_like_repo_id,
    lora_markers_problem,
    named_path,
    parse_hf_repo,
    parse_image_folder,
    parse_lora,
    parse_pickle,
    read_card_data,
)
from bench_assets.models.detect import (
    diffusers_folder_problem,
    is_folder,
    is_pickle_name,
    is_safetensors_name,
    pickle_refusal,
    single_file_problem,
)
from bench_assets.models.entry import ModelEntry, partition_key
from bench_assets.models.files import EntryProblem, folder_digest, inside, json_digest, sha256_file
from bench_assets.models.loaders import (
    Loader,
    load_diffusers_folder,
    load_hf_repo,
    load_lora,
    load_pickle_checkpoint,
    load_single_file,
)


class ModelKind:
    """Readable names of the built-in kinds; a kind is any key of ``MODEL_KINDS`` (a plain string)."""

    DIFFUSERS = "diffusers"
    SINGLE_FILE = "single_file"
    HF_REPO = "hf_repo"  # card: repo: org/name
    LORA = "lora"  # card: base + lora + scale
    IMAGE_FOLDER = "image_folder"  # card: images: folder (API models; nothing to load)
    PICKLE_CHECKPOINT = "pickle_checkpoint"  # card: checkpoint: x.ckpt + allow_pickle: true
    INVALID = "invalid"  # every broken entry, whatever it tried to be


OtherFingerprint = Callable[[ModelEntry], str]  # the (cached) fingerprint of another entry, e.g. a LoRA's base
Fingerprinter = Callable[[ModelEntry, OtherFingerprint], str]


def _no_problem(_path: Path) -> str | None:
    return None


def _no_paths(_card: Path, _data: dict[str, Any]) -> list[Path]:
    return []


def _no_defaults(_source: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class FileFormat:
    """How a file or folder dropped into ``data/models/`` is recognised as this kind."""

    matches: Callable[[Path], bool]  # by name (or being a folder) only: cheap, and a dangling link still counts
    problem: Callable[[Path], str | None] = _no_problem  # why it is this kind but unusable (names the file)


@dataclass(frozen=True)
class CardFormat:
    """How a card ``<name>.yaml`` of this kind is recognised and parsed."""

    key: str  # the YAML key that marks it: a card has exactly one card kind's key
    described: str  # how the "needs exactly one of" message names it
    parse: Callable[[Path, dict[str, Any]], Any]  # (card, its YAML) -> the kind's source, or CardError
    references: Callable[[Path, dict[str, Any]], list[Path]] = _no_paths  # from its raw YAML (broken cards too)
    defaults: Callable[[Any], dict[str, Any]] = _no_defaults  # settings its source implies
    precheck: Callable[[Path, dict[str, Any]], None] | None = None  # on every card, before its kind is known
    check: Callable[[ModelCard, Path], None] | None = None  # (card, data folder) at scan time; EntryProblem
    base: Callable[[ModelCard, dict[str, ModelEntry]], ModelEntry] | None = None  # the model it builds on
    state: Callable[[Any], str] | None = None  # outside state its signature follows (a cached snapshot)


@dataclass(frozen=True)
class KindRow:
    """One row of ``MODEL_KINDS``: how a kind is detected, fingerprinted and loaded."""

    fingerprint: Fingerprinter  # (entry, fingerprint of another entry) -> sha256 hex of its content
    load: Loader | None  # (entry, torch dtype) -> pipeline; None: nothing to load, its images are ingested
    file: FileFormat | None = None
    card: CardFormat | None = None
    lora_base: bool = False  # may a LoRA card name it as its base
    cache_fingerprint: bool = True  # False when the fingerprint reads no weights (cheap, and not by stat)

    @property
    def loads_pipeline(self) -> bool:
        return self.load is not None


# --------------------------------------------------------------------------- fingerprints


def fingerprint_file(entry: ModelEntry, _other: OtherFingerprint) -> str:
    """sha256 of the entry's one file (a single-file checkpoint, or any new one-file format)."""
    return sha256_file(entry.path)


def _fingerprint_folder(entry: ModelEntry, _other: OtherFingerprint) -> str:
    return folder_digest(entry.path)


def _fingerprint_hf_repo(entry: ModelEntry, _other: OtherFingerprint) -> str:
    """No weights are hashed: the repo, revision, variant and the cached snapshot commit say it all."""
    src = _source(entry)
    commit = cached_commit(src.repo, src.revision)
    return json_digest({"repo": src.repo, "revision": src.revision, "variant": src.variant, "commit": commit})


def _fingerprint_lora(entry: ModelEntry, other: OtherFingerprint) -> str:
    src = _source(entry)
    assert entry.base is not None
    return json_digest({"base": other(entry.base), "lora": sha256_file(src.lora), "scale": src.scale})


def _fingerprint_image_folder(entry: ModelEntry, _other: OtherFingerprint) -> str:
    src = _source(entry)
    return json_digest({"images": folder_digest(src.images), "grid": src.grid, "extension": src.extension})


def _fingerprint_pickle(entry: ModelEntry, _other: OtherFingerprint) -> str:
    return sha256_file(_source(entry).checkpoint)


def _fingerprint_invalid(entry: ModelEntry, _other: OtherFingerprint) -> str:
    """Never read (its bytes may be anything, anywhere): a changed error (a fixed card) launches it again."""
    return json_digest({"invalid": entry.error, "signature": entry.signature})


def _source(entry: ModelEntry) -> Any:
    assert entry.card is not None, f"{entry.path}: a {entry.kind} entry has no card"
    return entry.card.source


# --------------------------------------------------------------------------- what cards point at


def _lora_paths(card: Path, data: dict[str, Any]) -> list[Path]:
    return named_path(card, data, "lora")


def _image_folder_paths(card: Path, data: dict[str, Any]) -> list[Path]:
    return named_path(card, data, "images", folder=True)


def _checkpoint_paths(card: Path, data: dict[str, Any]) -> list[Path]:
    return named_path(card, data, "checkpoint")


def _images_inside(card: ModelCard, root: Path) -> None:
    """An image-folder card may only point inside the data folder: every file in it is read."""
    images = card.source.images
    target = Path(os.path.realpath(images))
    if not inside(target, root):
        raise EntryProblem(f"{card.path}: field 'images': {images} resolves to {target}, outside the "
                           f"data folder {root}; put the images in a folder inside it")


def hf_state(repo: str, revision: str | None) -> str:
    """The cached snapshot a repo resolves to: a new download changes the entry's signature."""
    return cached_commit(repo, revision) or "not-cached"


def _hf_repo_state(source: HfRepoSource) -> str:
    return hf_state(source.repo, source.revision)


def _hf_base(card: ModelCard) -> ModelEntry:
    """A LoRA's base given as a repo id: an HF entry that exists only inside the LoRA entry."""
    src = card.source
    hf_card = ModelCard(card.path, HfRepoSource(src.base, src.revision, src.variant), {}, ModelKind.HF_REPO)
    state = hf_state(src.base, src.revision)
    return ModelEntry(partition_key(src.base), src.base, card.path, ModelKind.HF_REPO, state, 0.0, None, hf_card)


def _lora_base(card: ModelCard, entries: dict[str, ModelEntry]) -> ModelEntry:
    """The LoRA's base: a model in the folder (by file/folder name, name or key) or a repo id."""
    src = card.source
    for entry in entries.values():
        if src.base in (entry.path.name, entry.name, entry.key):
            if entry.error:
                raise CardError(f"{card.path}: field 'base': {src.base!r} is broken: {entry.error}")
            if not model_kind(entry.kind).lora_base:
                raise CardError(f"{card.path}: field 'base': {src.base!r} is a {entry.kind} entry, "
                                "not a model that can generate")
            return entry
    if looks_like_repo_id(src.base):
        return _hf_base(card)
    raise CardError(f"{card.path}: field 'base': {src.base!r} is neither a model in {card.path.parent} "
                    "nor a Hugging Face repo id like 'org/name'")


# --------------------------------------------------------------------------- loading


def _not_loadable(entry: ModelEntry, _torch_dtype: Any) -> Any:
    raise ValueError(entry.error or f"{entry.path}: not a loadable model")


def load_base(base: ModelEntry, torch_dtype: Any) -> Any:
    """A LoRA's base pipeline, through the base's own row."""
    row = model_kind(base.kind)
    if not row.lora_base or row.load is None:
        raise ValueError(f"base {base.path} is a {base.kind} entry, which cannot carry a LoRA")
    try:
        return row.load(base, torch_dtype)
    except Exception as exc:
        raise RuntimeError(f"base model {base.path}: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- the table

MODEL_KINDS: dict[str, KindRow] = {
    ModelKind.DIFFUSERS: KindRow(
        file=FileFormat(matches=is_folder, problem=diffusers_folder_problem),
        fingerprint=_fingerprint_folder, load=load_diffusers_folder, lora_base=True),
    ModelKind.SINGLE_FILE: KindRow(
        file=FileFormat(matches=is_safetensors_name, problem=single_file_problem),
        fingerprint=fingerprint_file, load=load_single_file, lora_base=True),
    ModelKind.HF_REPO: KindRow(
        card=CardFormat("repo", "'repo' (Hugging Face)", parse_hf_repo, state=_hf_repo_state),
        fingerprint=_fingerprint_hf_repo, load=load_hf_repo, lora_base=True, cache_fingerprint=False),
    ModelKind.LORA: KindRow(
        card=CardFormat("lora", "'base' + 'lora' (LoRA)", parse_lora, references=_lora_paths,
                        precheck=lora_markers_problem, base=_lora_base),
        fingerprint=_fingerprint_lora, load=partial(load_lora, load_base=load_base)),
    ModelKind.IMAGE_FOLDER: KindRow(
        card=CardFormat("images", "'images' (image folder)", parse_image_folder, references=_image_folder_paths,
                        defaults=image_folder_defaults, check=_images_inside),
        fingerprint=_fingerprint_image_folder, load=None),
    ModelKind.PICKLE_CHECKPOINT: KindRow(
        # A pickle file on its own is refused by name; only its card (allow_pickle: true) loads it.
        file=FileFormat(matches=is_pickle_name, problem=pickle_refusal),
        card=CardFormat("checkpoint", "'checkpoint' (pickle opt-in)", parse_pickle, references=_checkpoint_paths),
        fingerprint=_fingerprint_pickle, load=load_pickle_checkpoint, lora_base=True),
    ModelKind.INVALID: KindRow(fingerprint=_fingerprint_invalid, load=_not_loadable, cache_fingerprint=False),
}


def model_kind(name: str) -> KindRow:
    """``MODEL_KINDS[name]``, or an error naming the kinds there are."""
    try:
        return MODEL_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown model kind {name!r}; known: {tuple(MODEL_KINDS)}") from None


# --------------------------------------------------------------------------- detection


def is_model_file(path: Path) -> bool:
    """Some kind's file or folder, by name only (a README or notes are not models)."""
    return any(row.file is not None and row.file.matches(path) for row in MODEL_KINDS.values())


def identify_file(path: Path) -> tuple[str, str | None]:
    """(kind, None), or (INVALID, why) for a file of a kind that cannot be used; the first matching row wins.

    Raises LookupError for a path no kind claims.
    """
    for name, row in MODEL_KINDS.items():
        if row.file is not None and row.file.matches(path):
            problem = row.file.problem(path)
            return (ModelKind.INVALID, problem) if problem else (name, None)
    raise LookupError(path)


def card_formats() -> dict[str, CardFormat]:
    """The card kinds, in table order."""
    return {name: row.card for name, row in MODEL_KINDS.items() if row.card is not None}


def _one_key_message(path: Path, formats: dict[str, CardFormat], found: list[str]) -> str:
    named = [fmt.described for fmt in formats.values()]
    choices = " or ".join([", ".join(named[:-1]), named[-1]]) if len(named) > 1 else "".join(named)
    keys = [formats[kind].key for kind in found]
    return f"{path}: a model card needs exactly one of {choices}; {f'found {keys}' if keys else 'found none'}"


def parse_card(path: Path, data: Any) -> ModelCard:
    """Validate a loaded card as the one card kind whose key it has; CardError names the file and field."""
    path = Path(path)
    if not isinstance(data, dict):
        raise CardError(f"{path}: a model card must be a mapping (e.g. `repo: org/name`), got {type(data).__name__}")
    formats = card_formats()
    for fmt in formats.values():
        if fmt.precheck is not None:
            fmt.precheck(path, data)
    found = [kind for kind, fmt in formats.items() if fmt.key in data]
    if len(found) != 1:
        raise CardError(_one_key_message(path, formats, found))
    fmt = formats[found[0]]
    source = fmt.parse(path, data)
    settings = card_settings(path, data, fmt.defaults(source))
    return ModelCard(path, source, settings, found[0], tuple(fmt.references(path, data)))


def load_card(path: Path) -> ModelCard:
    """Read and validate the card at ``path``."""
    return parse_card(path, read_card_data(path))
