"""``data/references/``: every reference set there, read and validated (the sensor's and the asset's view).

An entry is a folder of images (``data/references/<name>/``, sub-folders
included) or a card ``data/references/<name>.yaml`` with exactly one of the
keys of ``REFERENCE_SOURCES``:

- ``folder: /path/to/images`` a local folder (relative paths: to the card);
- ``store_prefix: refs/coco-val`` a prefix of the configured store root, read
  through the storage seam (the caller passes ``open_prefix``, which opens it);
- ``hf_dataset: org/name`` with ``split:`` (default ``train``),
  ``image_column:`` (default ``image``), ``caption_column:`` (optional) and
  ``limit:`` (optional): exported once with the ``datasets`` package into
  ``<cache>/references/<name>/``, then read as a folder.

Captions come from ``captions.jsonl`` / ``captions.json`` beside the images
(``references/captions.py``). Every image is decoded once to check it: a
broken or unreadable image is reported by name in ``ReferenceSet.problems``
and left out (never scored, not in the fingerprint). Hashes and checks are
kept per (location, size, mtime), so a sensor tick re-reads only changed files.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from bench_assets.core.objects import Store
from bench_assets.core.yaml_files import read_yaml_mapping
from bench_assets.references.captions import CAPTION_FILES, parse_captions
from bench_assets.references.sets import ReferenceImage, ReferenceSet, ReferenceSetError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
CARD_SUFFIXES = (".yaml", ".yml")
OpenPrefix = Callable[[str], Store]


@dataclass(frozen=True)
class Listing:
    """What a source holds: image name -> a signature that changes with its bytes, and a reader by name."""

    where: str
    files: dict[str, tuple[Any, ...]]
    read: Callable[[str], bytes]


def _folder_listing(folder: Path) -> Listing:
    if not folder.is_dir():
        raise ReferenceSetError(f"{folder}: not a folder of images")
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not path.name.startswith("."):
            stat = path.stat()
            files[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return Listing(str(folder), files, lambda name: (folder / name).read_bytes())


def _card_folder(card: Mapping[str, Any], card_path: Path, _open: OpenPrefix | None, _cache: Path) -> Listing:
    folder = Path(str(card["folder"])).expanduser()
    return _folder_listing(folder if folder.is_absolute() else card_path.parent / folder)


def _card_store(card: Mapping[str, Any], card_path: Path, open_prefix: OpenPrefix | None, _cache: Path) -> Listing:
    if open_prefix is None:
        raise ReferenceSetError(f"{card_path}: store_prefix needs the configured store (no store was given)")
    store = open_prefix(str(card["store_prefix"]).strip("/"))
    infos = store.infos()
    files = {key: (info.size, info.mtime_ns, info.etag) for key, info in infos.items()
             if Path(key).suffix.lower() in IMAGE_SUFFIXES}
    if not files:
        raise ReferenceSetError(f"{card_path}: no images under {store.url}")
    return Listing(store.url, files, store.get_bytes)


def _card_hf_dataset(card: Mapping[str, Any], card_path: Path, _open: OpenPrefix | None, cache: Path) -> Listing:
    folder = cache / "references" / card_path.stem
    marker = folder / ".exported"
    wanted = repr(sorted((k, str(v)) for k, v in card.items()))
    if not (marker.is_file() and marker.read_text() == wanted):
        _export_hf_dataset(card, card_path, folder)
        marker.write_text(wanted)
    return _folder_listing(folder)


def _export_hf_dataset(card: Mapping[str, Any], card_path: Path, folder: Path) -> None:
    """Write the dataset split's images (and captions.jsonl) into ``folder``, with the user's own HF cache/token."""
    try:
        import datasets  # optional: only a card naming a Hugging Face dataset needs it
    except ImportError:
        raise ReferenceSetError(f"{card_path}: hf_dataset needs the 'datasets' package (pip install datasets)") from None
    image_column, caption_column = card.get("image_column", "image"), card.get("caption_column")
    try:
        rows = datasets.load_dataset(str(card["hf_dataset"]), split=str(card.get("split", "train")))
    except Exception as exc:  # offline, no access, unknown id: the library's many error types
        raise ReferenceSetError(f"{card_path}: cannot load Hugging Face dataset {card['hf_dataset']!r} "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    if card.get("limit"):
        rows = rows.select(range(min(int(card["limit"]), len(rows))))
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for index, row in enumerate(rows):
        name = f"{index:06d}.png"
        row[image_column].convert("RGB").save(folder / name)
        if caption_column:
            caption = row[caption_column]
            caption = caption[0] if isinstance(caption, list) else caption
            lines.append(json.dumps({"file": name, "caption": str(caption)}) + "\n")
    if lines:
        (folder / "captions.jsonl").write_text("".join(lines))


# One row per kind of card: the key that marks it -> how its images are listed and read.
REFERENCE_SOURCES: dict[str, Callable[[Mapping[str, Any], Path, OpenPrefix | None, Path], Listing]] = {
    "folder": _card_folder,
    "store_prefix": _card_store,
    "hf_dataset": _card_hf_dataset,
}

_CHECKED: dict[tuple[str, str, tuple[Any, ...]], tuple[str | None, str | None]] = {}  # -> (sha256, problem)


def _check_image(listing: Listing, name: str) -> tuple[str | None, str | None]:
    """(sha256, None) for a readable image, (None, why) for a broken one; cached by the file's signature."""
    key = (listing.where, name, listing.files[name])
    if key not in _CHECKED:
        from PIL import Image  # pillow: decoding checks the whole image, not only its header

        try:
            data = listing.read(name)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
            _CHECKED[key] = (hashlib.sha256(data).hexdigest(), None)
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for a damaged file
            _CHECKED[key] = (None, f"{name}: unreadable image ({type(exc).__name__}: {exc})"[:300])
    return _CHECKED[key]


def _captions(listing: Listing) -> dict[str, str]:
    for file_name in CAPTION_FILES:
        try:
            data = listing.read(file_name)
        except (FileNotFoundError, KeyError, OSError):
            continue
        return parse_captions(file_name, data, f"{listing.where}/{file_name}")
    return {}


def reference_set_from(name: str, listing: Listing) -> ReferenceSet:
    """Check every listed image; the readable ones with their captions, the others as problems."""
    captions = _captions(listing)
    images, problems = [], []
    for image_name in listing.files:
        sha, problem = _check_image(listing, image_name)
        if problem:
            problems.append(problem)
        else:
            images.append(ReferenceImage(image_name, sha, captions.get(image_name)))
    if not images:
        raise ReferenceSetError(f"reference set {name!r} ({listing.where}): no readable images"
                                + (f"; {problems[0]}" if problems else ""))
    return ReferenceSet(name, listing.where, tuple(images), listing.read, tuple(problems))


def _listing(references: Path, name: str, open_prefix: OpenPrefix | None, cache: Path) -> Listing:
    folder = references / name
    if folder.is_dir():
        return _folder_listing(folder)
    card_path = next((references / f"{name}{s}" for s in CARD_SUFFIXES if (references / f"{name}{s}").is_file()), None)
    if card_path is None:
        raise ReferenceSetError(f"no reference set {name!r} in {references} (a folder or {name}.yaml)")
    card = read_yaml_mapping(card_path, ReferenceSetError, f"one of the keys {sorted(REFERENCE_SOURCES)}")
    kinds = [key for key in REFERENCE_SOURCES if key in card]
    if len(kinds) != 1:
        raise ReferenceSetError(f"{card_path}: needs exactly one of {sorted(REFERENCE_SOURCES)}, has {kinds or 'none'}")
    return REFERENCE_SOURCES[kinds[0]](card, card_path, open_prefix, cache)


def _checks_file(cache: Path, name: str) -> Path:
    return cache / "references" / f"{name}.checked.json"


def _load_checks(path: Path) -> None:
    """Earlier processes' checks (the report, ``bench run``): a 10,000-image set is decoded once, not per process."""
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    for where, image, signature, sha, problem in rows:
        _CHECKED.setdefault((where, image, tuple(signature)), (sha, problem))


def _save_checks(path: Path, listing: Listing) -> None:
    rows = [[listing.where, image, list(signature), *_CHECKED[(listing.where, image, signature)]]
            for image, signature in listing.files.items() if (listing.where, image, signature) in _CHECKED]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows))
        tmp.replace(path)
    except OSError:  # a read-only data dir: the checks are redone next time, nothing is lost
        pass


def load_reference_set(references: Path, name: str, open_prefix: OpenPrefix | None = None,
                       cache: Path | None = None) -> ReferenceSet:
    """The reference set ``name`` of the folder ``references`` (``DataPaths.references``); raises ReferenceSetError.

    Each image's check (decoded whole, hashed) is kept by its signature in ``<cache>/references/``, so only
    new or changed images are read again.
    """
    cache = cache or references / ".cache"
    listing = _listing(references, name, open_prefix, cache)
    checks = _checks_file(cache, name)
    if any((listing.where, image, signature) not in _CHECKED for image, signature in listing.files.items()):
        _load_checks(checks)  # a sensor's later ticks find every image checked in memory and read no file
    known = len(_CHECKED)
    try:
        return reference_set_from(name, listing)
    finally:
        if len(_CHECKED) != known or not checks.exists():
            _save_checks(checks, listing)


def reference_names(references: Path) -> list[str]:
    """The entries of ``data/references/``: folders and cards, hidden ones left out."""
    if not references.is_dir():
        return []
    names = {p.name if p.is_dir() else p.stem for p in references.iterdir()
             if not p.name.startswith(".") and (p.is_dir() or p.suffix in CARD_SUFFIXES)}
    return sorted(names)


def scan_reference_sets(references: Path, open_prefix: OpenPrefix | None = None,
                        cache: Path | None = None) -> tuple[dict[str, ReferenceSet], dict[str, str]]:
    """Every reference set that loads, and one line per entry that does not (name -> why)."""
    found, broken = {}, {}
    for name in reference_names(references):
        try:
            found[name] = load_reference_set(references, name, open_prefix, cache)
        except ReferenceSetError as exc:
            broken[name] = str(exc)
    return found, broken
