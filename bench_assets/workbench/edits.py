"""The edits a person makes to a suite, applied to its records, and the checks an edited prompt gets.

A prompt's fields are validated by :func:`~bench_assets.prompts.prompt.parse_prompt`,
the check every suite line gets when the benchmark loads it; the whole file
is validated again on save (unique ids). Structured metadata is checked
against what the metrics read: an object the metrics would skip (no name, a
count that is not a whole number >= 1) or a question whose parent does not
exist is an error; a colour or relation GenEval does not know is a warning
(TIFA still asks about it).

Edits (one row per kind in ``EDITS``):
``put``: replace the prompt ``id`` (or append when ``id`` is null) with ``prompt``;
``delete``: remove the prompts ``ids``; ``move``: set ``category`` on the prompts ``ids``.
"""

from __future__ import annotations

from typing import Any, Callable

from bench_assets.core.errors import BenchError
from bench_assets.metrics.geneval import COLORS, RELATIONS
from bench_assets.prompts.prompt import Prompt, PromptSuiteError, parse_prompt
from bench_assets.workbench.suite_files import prompt_record

Records = list[dict[str, Any]]


class EditError(BenchError, ValueError):
    """An edit that cannot apply (unknown id, bad field): HTTP 400, nothing written."""


def _whole(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _object_problems(objects: Any) -> tuple[list[str], list[str]]:
    errors, warnings = [], []
    for n, obj in enumerate(objects if isinstance(objects, list) else [objects], start=1):
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"].strip():
            errors.append(f"object {n}: needs a name")
            continue
        if not _whole(obj.get("count", 1), 1):
            errors.append(f"object {n} ({obj['name']}): count must be a whole number >= 1")
        colour = obj.get("colour", obj.get("color"))
        if colour not in (None, "") and colour not in COLORS:
            warnings.append(f"object {n} ({obj['name']}): GenEval ignores colour {colour!r} (knows {', '.join(COLORS)})")
    return errors, warnings


def _relation_problems(relations: Any) -> tuple[list[str], list[str]]:
    errors, warnings = [], []
    for n, rel in enumerate(relations if isinstance(relations, list) else [relations], start=1):
        if not isinstance(rel, dict) or not all(isinstance(rel.get(k), str) and rel[k].strip()
                                                for k in ("subject", "relation", "object")):
            errors.append(f"relation {n}: needs a subject, a relation and an object")
        elif rel["relation"] not in RELATIONS:
            warnings.append(f"relation {n}: GenEval checks only {', '.join(RELATIONS)} (TIFA still asks about it)")
    return errors, warnings


def _question_problems(questions: Any) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    items = questions if isinstance(questions, list) else [questions]
    ids = {q.get("id") for q in items if isinstance(q, dict)}
    for n, q in enumerate(items, start=1):
        if not isinstance(q, dict) or not isinstance(q.get("question"), str) or not q["question"].strip():
            errors.append(f"question {n}: needs the question's text")
            continue
        parents = q.get("parents", [])
        if "id" in q and not _whole(q["id"], 0):
            errors.append(f"question {n}: id must be a whole number")
        if not isinstance(parents, list) or any(p not in ids or p == q.get("id") for p in parents):
            errors.append(f"question {n}: parents must list ids of the prompt's other questions")
    return errors, []


METADATA_CHECKS: dict[str, Callable[[Any], tuple[list[str], list[str]]]] = {
    "objects": _object_problems,
    "relations": _relation_problems,
    "questions": _question_problems,
}


def checked_prompt(raw: Any) -> tuple[Prompt, list[str]]:
    """The prompt an edit describes and its warnings; an :class:`EditError` says every problem at once."""
    if not isinstance(raw, dict):
        raise EditError("prompt must be a JSON object")
    raw = {k: v for k, v in raw.items() if v not in (None, "", {})}
    try:
        prompt = parse_prompt(raw, f"prompt {raw.get('id', '(no id)')!r}")
    except PromptSuiteError as exc:
        raise EditError(str(exc)) from None
    errors, warnings = [], []
    for key, check in METADATA_CHECKS.items():
        if key in prompt.metadata:
            found = check(prompt.metadata[key])
            errors += found[0]
            warnings += found[1]
    if errors:
        raise EditError(f"prompt {prompt.id!r}: " + "; ".join(errors))
    return prompt, warnings


def _index(records: Records, prompt_id: Any) -> int:
    for i, record in enumerate(records):
        if record["id"] == prompt_id:
            return i
    raise EditError(f"no prompt {prompt_id!r} in the suite (reload: it may have been renamed or deleted)")


def _put(records: Records, edit: dict[str, Any]) -> Records:
    prompt, _ = checked_prompt(edit.get("prompt"))
    record = prompt_record(prompt)
    if edit.get("id") is None:
        return [*records, record]
    i = _index(records, edit["id"])
    return [*records[:i], record, *records[i + 1:]]


def _ids(edit: dict[str, Any]) -> list[Any]:
    ids = edit.get("ids")
    if not isinstance(ids, list) or not ids:
        raise EditError(f"{edit.get('op')}: 'ids' must be a non-empty list of prompt ids")
    return ids


def _delete(records: Records, edit: dict[str, Any]) -> Records:
    gone = {records[_index(records, i)]["id"] for i in _ids(edit)}
    return [r for r in records if r["id"] not in gone]


def _move(records: Records, edit: dict[str, Any]) -> Records:
    moved = {records[_index(records, i)]["id"] for i in _ids(edit)}
    out = [{**r, "category": edit.get("category")} if r["id"] in moved else r for r in records]
    for record in out:
        if record["id"] in moved:
            checked_prompt(record)
    return out


EDITS: dict[str, Callable[[Records, dict[str, Any]], Records]] = {"put": _put, "delete": _delete, "move": _move}


def apply_edits(records: Records, edits: Any) -> Records:
    """``records`` after every edit in order; the first bad edit raises and nothing is kept."""
    if not isinstance(edits, list) or not edits:
        raise EditError("'edits' must be a non-empty list")
    for edit in edits:
        if not isinstance(edit, dict) or edit.get("op") not in EDITS:
            raise EditError(f"each edit needs 'op', one of {', '.join(EDITS)}")
        records = EDITS[edit["op"]](records, edit)
    return records
