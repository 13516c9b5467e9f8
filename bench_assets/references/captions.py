"""Captions of a reference set, and the prompt suite they make (COCO-style "caption → image" pairs).

Two caption files are read, beside the images: ``captions.jsonl`` (one
``{"file": ..., "caption": ...}`` per line) or a COCO ``captions.json``
(``images: [{id, file_name}]``, ``annotations: [{image_id, caption}]``; an
image's first caption is used). ``captions_suite`` turns them into prompts of
one category (the set's name), one prompt per captioned image, so a model is
prompted with the reference set's own captions; ``bench references suite
NAME`` writes it as ``data/prompts/<name>.jsonl``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bench_assets.prompts.prompt import Prompt
from bench_assets.references.sets import ReferenceSet, ReferenceSetError

CAPTION_FILES = ("captions.jsonl", "captions.json")  # the first one present is read
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")


def _jsonl_captions(text: str, where: str) -> dict[str, str]:
    captions = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReferenceSetError(f"{where}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("file"), str) or not isinstance(row.get("caption"), str):
            raise ReferenceSetError(f"{where}:{number}: expected {{\"file\": ..., \"caption\": ...}}")
        captions.setdefault(row["file"], row["caption"])
    return captions


def _coco_captions(text: str, where: str) -> dict[str, str]:
    try:
        data: Any = json.loads(text)
        files = {image["id"]: image["file_name"] for image in data["images"]}
        captions: dict[str, str] = {}
        for note in data["annotations"]:
            captions.setdefault(files[note["image_id"]], str(note["caption"]).strip())
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ReferenceSetError(f"{where}: not a COCO captions file (images[].file_name, annotations[].caption): "
                                f"{exc}") from None
    return captions


CAPTION_READERS = {"captions.jsonl": _jsonl_captions, "captions.json": _coco_captions}


def parse_captions(file_name: str, data: bytes, where: str) -> dict[str, str]:
    """Image name -> caption from one caption file's bytes (``where`` names it in errors)."""
    return CAPTION_READERS[file_name](data.decode("utf-8"), where)


def prompt_id(image_name: str) -> str:
    """A prompt id from an image's name (ids may use letters, digits, '_', '.', '-')."""
    return _UNSAFE_ID.sub("_", image_name.rsplit(".", 1)[0]).strip("_") or "image"


def captions_suite(reference: ReferenceSet) -> list[Prompt]:
    """One prompt per captioned image, category = the set's name, metadata naming the image it came from."""
    prompts = [
        Prompt(id=prompt_id(image.name), category=reference.name, prompt=image.caption,
               metadata={"reference_set": reference.name, "reference_file": image.name})
        for image in reference.images if image.caption
    ]
    if not prompts:
        raise ReferenceSetError(f"reference set {reference.name!r} has no captions ({' or '.join(CAPTION_FILES)})")
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise ReferenceSetError(f"reference set {reference.name!r}: two images give the same prompt id")
    return prompts


def suite_jsonl(prompts: list[Prompt]) -> str:
    """The prompts as a suite file's text (the JSONL schema of prompts/prompt.py)."""
    return "".join(json.dumps({"id": p.id, "category": p.category, "prompt": p.prompt, "metadata": p.metadata})
                   + "\n" for p in prompts)
