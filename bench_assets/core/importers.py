"""Importers: published prompt sets (as the user downloaded them) → our JSONL schema.

Each importer reads one file (or folder) and returns :class:`Prompt` objects,
keeping the structured metadata the metrics use. Nothing is downloaded.

Formats, as published:
- ``geneval``: GenEval's ``evaluation_metadata.jsonl``; one object per line with
  ``tag`` (single_object, two_object, counting, colors, position,
  color_attr), ``prompt``, ``include`` (``{"class", "count", "color"?,
  "position"?: [relation, index]}``) and optional ``exclude``. A
  ``position`` of ``["right of", 0]`` means *this* object is right of
  ``include[0]``.
- ``oneig``: OneIG-Bench's prompt CSVs, header
  ``category,id,prompt_en,type,prompt_length,class`` (the Chinese file has
  ``prompt_cn``); text-rendering prompts put the text to render in quotes.
- ``drawbench``: DrawBench's CSV/TSV with ``Prompts`` (or ``Prompt``) and ``Category``.
- ``parti``: PartiPrompts' TSV with ``Prompt``, ``Category``, ``Challenge``, ``Note``.
- ``txt``: a folder of ``.txt`` files, one prompt per file (the file stem is
  the id); ``example1.txt`` next to ``example1.png`` gives the prompt a
  reference image.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterator

from bench_assets.core.prompts import Prompt, PromptSuiteError, jsonl_records

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”')


def category_key(raw: str) -> str:
    """A published category name as a partition-safe key: ``Anime_Stylization`` → ``anime_stylization``."""
    key = re.sub(r"[^a-z0-9]+", "_", raw.strip().lower()).strip("_")
    return key or "uncategorised"


def _id_key(raw: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw.strip()).strip("-.") or "x"


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """CSV or TSV rows with their line numbers (the delimiter is sniffed from the header)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = handle.readline()
        delimiter = "\t" if header.count("\t") > header.count(",") else ","
        handle.seek(0)
        reader = csv.DictReader(handle, delimiter=delimiter)
        for row in reader:
            yield reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items() if k}


def _column(row: dict[str, str], names: tuple[str, ...], where: str) -> str:
    for name in names:
        if row.get(name):
            return row[name]
    raise PromptSuiteError(f"{where}: missing column {' or '.join(names)}")


def _geneval_objects(include: list[dict[str, Any]], where: str) -> tuple[list[dict], list[dict]]:
    objects, relations = [], []
    for item in include:
        if not isinstance(item, dict) or "class" not in item:
            raise PromptSuiteError(f"{where}: every 'include' entry needs a 'class'")
        obj = {"name": item["class"], "count": int(item.get("count", 1))}
        if item.get("color"):
            obj["colour"] = item["color"]
        objects.append(obj)
        if item.get("position"):
            relation, reference = item["position"]
            relations.append({"subject": item["class"], "relation": relation, "object": include[int(reference)]["class"]})
    return objects, relations


def import_geneval(path: Path) -> list[Prompt]:
    prompts = []
    for lineno, where, raw in jsonl_records(path):
        if not isinstance(raw, dict) or not raw.get("prompt") or not raw.get("tag"):
            raise PromptSuiteError(f"{where}: a GenEval line needs 'tag', 'prompt' and 'include'")
        objects, relations = _geneval_objects(raw.get("include") or [], where)
        metadata: dict[str, Any] = {"objects": objects, "geneval": {k: raw[k] for k in ("tag", "include", "exclude") if k in raw}}
        if relations:
            metadata["relations"] = relations
        prompts.append(Prompt(f"geneval-{lineno:04d}", category_key(raw["tag"]), raw["prompt"], metadata=metadata))
    return prompts


def import_oneig(path: Path) -> list[Prompt]:
    prompts = []
    for lineno, row in _rows(path):
        where = f"{path}:{lineno}"
        category = _column(row, ("category",), where)
        text = _column(row, ("prompt_en", "prompt_cn", "prompt_zh", "prompt"), where)
        metadata: dict[str, Any] = {k: row[k] for k in ("type", "prompt_length", "class") if row.get(k)}
        quoted = [a or b for a, b in _QUOTED.findall(text)]
        if category_key(category) == "text_rendering" and quoted:
            metadata["text"] = " ".join(quoted)
        pid = f"oneig-{category_key(category)}-{_id_key(_column(row, ('id',), where))}"
        prompts.append(Prompt(pid, category_key(category), text, metadata=metadata))
    return prompts


def import_drawbench(path: Path) -> list[Prompt]:
    prompts = []
    for n, (lineno, row) in enumerate(_rows(path), start=1):
        where = f"{path}:{lineno}"
        text = _column(row, ("Prompts", "Prompt", "prompt"), where)
        category = _column(row, ("Category", "category"), where)
        prompts.append(Prompt(f"drawbench-{n:03d}", category_key(category), text, metadata={"source": "drawbench"}))
    return prompts


def import_parti(path: Path) -> list[Prompt]:
    prompts = []
    for n, (lineno, row) in enumerate(_rows(path), start=1):
        where = f"{path}:{lineno}"
        text = _column(row, ("Prompt", "prompt"), where)
        category = _column(row, ("Category", "category"), where)
        metadata = {k.lower(): row[k] for k in ("Challenge", "Note") if row.get(k)}
        prompts.append(Prompt(f"parti-{n:04d}", category_key(category), text, metadata=metadata))
    return prompts


def import_txt(path: Path, category: str = "custom") -> list[Prompt]:
    """One prompt per ``.txt`` file; a same-stem image becomes the reference image."""
    if not path.is_dir():
        raise PromptSuiteError(f"{path}: the txt format reads a folder of .txt files")
    prompts = []
    for file in sorted(path.glob("*.txt")):
        text = " ".join(file.read_text(encoding="utf-8").split())
        if not text:
            raise PromptSuiteError(f"{file}:1: empty prompt")
        metadata: dict[str, Any] = {}
        reference = next((file.with_suffix(s) for s in IMAGE_SUFFIXES if file.with_suffix(s).is_file()), None)
        if reference is not None:
            metadata["reference_image"] = str(reference.resolve())
        prompts.append(Prompt(_id_key(file.stem), category_key(category), text, metadata=metadata))
    if not prompts:
        raise PromptSuiteError(f"{path}: no .txt prompts found")
    return prompts


IMPORTERS: dict[str, Callable[[Path], list[Prompt]]] = {
    "geneval": import_geneval,
    "oneig": import_oneig,
    "drawbench": import_drawbench,
    "parti": import_parti,
    "txt": import_txt,
}


def write_suite(prompts: list[Prompt], target: Path) -> Path:
    """Write prompts as a suite JSONL file (atomically) and validate it by loading it back."""
    from bench_assets.core.prompts import load_suite

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for p in prompts:
            row = {"id": p.id, "category": p.category, "prompt": p.prompt, "metadata": p.metadata}
            if p.negative_prompt:
                row["negative_prompt"] = p.negative_prompt
            if p.difficulty:
                row["difficulty"] = p.difficulty
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    load_suite(tmp)
    tmp.replace(target)
    return target


def import_prompts(fmt: str, source: Path, suite: str, prompts_dir: Path) -> Path:
    """``bench import-prompts``: read ``source`` in ``fmt`` and write ``prompts_dir/<suite>.jsonl``."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", suite):
        raise PromptSuiteError(f"suite name {suite!r} may only use letters, digits, '_' and '-'")
    if fmt not in IMPORTERS:
        raise PromptSuiteError(f"unknown format {fmt!r}; known: {sorted(IMPORTERS)}")
    if not Path(source).exists():
        raise PromptSuiteError(f"{source}: not found")
    return write_suite(IMPORTERS[fmt](Path(source)), prompts_dir / f"{suite}.jsonl")
