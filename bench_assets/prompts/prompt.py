"""Prompt suites: JSONL files, one prompt per line, validated on load.

A line looks like::

    {"id": "obj-001", "category": "object", "prompt": "a red bicycle",
     "negative_prompt": "blurry", "difficulty": "easy",
     "metadata": {"objects": [{"name": "bicycle", "count": 1, "colour": "red"}]}}

A ``.suite.yaml`` spec (see :mod:`bench_assets.prompts.suites`) combines,
filters and samples JSONL suites; :func:`load_suite` reads either.

Prompt ids become file names and categories become Dagster partition keys, so
both are restricted to characters that are safe in paths and partition keys.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from bench_assets.core.errors import BenchError

DIFFICULTIES = ("easy", "medium", "hard")
# A text target exactly as its benchmark published it (OneIG's ``text_content`` cell), next to the parsed
# ``text``: what the benchmark's own scoring compares with (``text_target: published`` in a suite spec).
PUBLISHED_TEXT_KEY = "text_published"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_CATEGORY_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
_ALLOWED_KEYS = {"id", "category", "prompt", "negative_prompt", "difficulty", "metadata"}


class PromptSuiteError(BenchError, ValueError):
    """A prompt suite file is malformed; the message names file and line."""


@dataclass(frozen=True)
class Prompt:
    id: str
    category: str
    prompt: str
    negative_prompt: str | None = None
    difficulty: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def text_hash(self) -> str:
        """What the images are drawn from (text and negative prompt), hashed: recorded in every image, so an
        edited prompt's images are found stale and drawn again (its id, index and seed stay the same)."""
        drawn = json.dumps([self.prompt, self.negative_prompt or ""], ensure_ascii=False)
        return hashlib.sha256(drawn.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class PromptSuite:
    name: str
    prompts: tuple[Prompt, ...]
    # Generation settings of a suite spec (see prompts/suites.py): between the defaults and a model's own.
    generation: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def categories(self) -> list[str]:
        """Categories in order of first appearance (stable partition order)."""
        return list(dict.fromkeys(p.category for p in self.prompts))

    def in_category(self, category: str) -> list[Prompt]:
        return [p for p in self.prompts if p.category == category]

    def by_id(self) -> dict[str, Prompt]:
        return {p.id: p for p in self.prompts}

    def category_digests(self) -> dict[str, str]:
        """category -> a hash of its prompts' ids and texts: which categories an edit of the suite touched,
        kept in the sensor's cursor in a few bytes per category (see :func:`edited_categories`)."""
        digests = {}
        for category in self.categories:
            drawn = sorted((p.id, p.text_hash) for p in self.in_category(category))
            digests[category] = hashlib.sha256(json.dumps(drawn).encode()).hexdigest()[:16]
        return digests


def edited_categories(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Categories of both whose prompts were added, removed or edited since ``before`` (in ``after``'s order).

    A category new to the suite is not here: it is a new partition, which needs the definitions reloaded
    (the code location's Reload in the UI) before anything can run in it.
    """
    return [category for category, digest in after.items() if category in before and before[category] != digest]


def _parse_line(raw: dict[str, Any], where: str) -> Prompt:
    if not isinstance(raw, dict):
        raise PromptSuiteError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    unknown = set(raw) - _ALLOWED_KEYS
    if unknown:
        raise PromptSuiteError(f"{where}: unknown field(s) {sorted(unknown)}")
    for key in ("id", "category", "prompt"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise PromptSuiteError(f"{where}: field '{key}' must be a non-empty string")
    if not _ID_RE.match(raw["id"]):
        raise PromptSuiteError(
            f"{where}: id {raw['id']!r} may only use letters, digits, '_', '.', '-'"
        )
    if not _CATEGORY_RE.match(raw["category"]):
        raise PromptSuiteError(
            f"{where}: category {raw['category']!r} must be lower-case letters, digits, '_'"
        )
    negative = raw.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise PromptSuiteError(f"{where}: 'negative_prompt' must be a string")
    difficulty = raw.get("difficulty")
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise PromptSuiteError(f"{where}: 'difficulty' must be one of {DIFFICULTIES}")
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise PromptSuiteError(f"{where}: 'metadata' must be an object")
    return Prompt(
        id=raw["id"],
        category=raw["category"],
        prompt=raw["prompt"].strip(),
        negative_prompt=negative or None,
        difficulty=difficulty,
        metadata=metadata,
    )


def parse_prompt(raw: dict[str, Any], where: str) -> Prompt:
    """One prompt's fields validated as a suite line is (the workbench validates an edit with this)."""
    return _parse_line(raw, where)


SPEC_SUFFIXES = (".yaml", ".yml")


def _decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) per line, decoded one line at a time so that bad UTF-8 names its line."""
    with Path(path).open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise PromptSuiteError(
                    f"{path}:{lineno}: invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                    "save the file as UTF-8"
                ) from None
            yield lineno, line.removeprefix("\ufeff") if lineno == 1 else line


def jsonl_records(path: Path) -> Iterator[tuple[int, str, Any]]:
    """(line number, "file:line", parsed object) per non-blank line; ``//`` lines are comments.

    Invalid JSON or UTF-8 raises with file and line, so every JSONL reader reports errors alike.
    """
    for lineno, line in _decoded_lines(path):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        where = f"{path}:{lineno}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptSuiteError(f"{where}: invalid JSON ({exc.msg}, column {exc.colno})") from None
        yield lineno, where, raw


def _check_unique_ids(path: Path, prompts: list[tuple[int, Prompt]]) -> None:
    """A repeated id names both lines: which of the two to rename is the user's call."""
    first_line: dict[str, int] = {}
    for lineno, prompt in prompts:
        if prompt.id in first_line:
            raise PromptSuiteError(
                f"{path}:{lineno}: duplicate prompt id {prompt.id!r} (first used on line {first_line[prompt.id]})"
            )
        first_line[prompt.id] = lineno


def load_jsonl_suite(path: Path) -> PromptSuite:
    """Read and validate every line; the first problem raises with file:line."""
    path = Path(path)
    if not path.is_file():
        raise PromptSuiteError(f"{path}: prompt suite not found")
    try:
        numbered = [(lineno, _parse_line(raw, where)) for lineno, where, raw in jsonl_records(path)]
    except OSError as exc:
        raise PromptSuiteError(f"{path}: cannot read the suite ({exc.strerror or exc})") from None
    if not numbered:
        raise PromptSuiteError(f"{path}: the suite has no prompts")
    _check_unique_ids(path, numbered)
    return PromptSuite(name=path.stem, prompts=tuple(prompt for _, prompt in numbered))
