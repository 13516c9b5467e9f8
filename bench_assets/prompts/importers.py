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
  ``prompt_cn``), with the benchmark's own metadata when given (or found in
  a folder of the published repository's layout, see :func:`import_oneig`):
  the text ground truth ``scripts/text/text_content.csv`` (``,id,prompt_en,text_content``,
  ``text_content`` a Python list literal of the strings to render; the
  Chinese file ``text_content_zh.csv`` has ``prompt_cn``) and the alignment
  questions ``scripts/alignment/Q_D/<folder>[_zh].json`` (per prompt id:
  ``question``, a JSON object ``{"1": "Is there a girl?", ...}``, and
  ``dependency``, ``{"1": [0], "2": [1], ...}`` where 0 means "no parent";
  both may be JSON strings). Without the ground truth, text-rendering prompts
  take the text in their quotes.
- ``dsg``: DSG-1k's ``dsg-1k-anns.csv`` (Davidsonian Scene Graph), one row
  per question: ``item_id,text,keywords,proposition_id,dependency,
  category_broad,category_detailed,tuple,question_natural_language``;
  ``dependency`` is ``0`` or the comma-separated parent proposition ids.
- ``drawbench``: DrawBench's CSV/TSV with ``Prompts`` (or ``Prompt``) and
  ``Category``; ``Text`` prompts take their quoted text (single or double quotes) as target.
- ``parti``: PartiPrompts' TSV with ``Prompt``, ``Category``, ``Challenge``,
  ``Note``; ``Writing & Symbols`` prompts take their quoted text as target.
- ``txt``: a folder of ``.txt`` files, one prompt per file (the file stem is
  the id); ``example1.txt`` next to ``example1.png`` gives the prompt a
  reference image.

TSV files are read without quote processing (PartiPrompts does not quote its
fields, and one of its prompts begins with a quoted phrase: its quotes are
text). Every importer returns an :class:`ImportResult`: the prompts and
``notes``, one line for everything the source has that the suite does not
carry (unused columns, prompts left without a text target, questions or
ground truth matching no prompt), so nothing is dropped silently.

Questions (OneIG Q_D, DSG-1k) become metadata ``questions``: a list of
``{"id", "question", "choices": ["Yes", "No"], "answer": "Yes", "parents": [ids]}``
(DSG adds ``tuple``, ``category``, ``detail``); the ``dsg`` metric answers
them with the Davidsonian gate, TIFA without it.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from bench_assets.prompts.prompt import PUBLISHED_TEXT_KEY, Prompt, PromptSuiteError, jsonl_records
from bench_assets.prompts.suites import load_suite

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”')
# Single-quoted spans, not apostrophes: the quote may not touch a letter on its outer side.
_SINGLE_QUOTED = re.compile(r"(?<![A-Za-z0-9])'([^']+?)'(?![A-Za-z0-9])|‘([^’]+)’")
YES_NO = ["Yes", "No"]


@dataclass
class ImportResult:
    """Prompts read from a published file, and a note for everything in it the suite does not carry."""

    prompts: list[Prompt]
    notes: list[str] = field(default_factory=list)


def quoted_spans(text: str, single: bool = False) -> list[str]:
    """The double-quoted (and, with ``single``, single-quoted) spans of a prompt, in order."""
    spans = [(m.start(), m.group(1) or m.group(2)) for m in _QUOTED.finditer(text)]
    if single:
        spans += [(m.start(), m.group(1) or m.group(2)) for m in _SINGLE_QUOTED.finditer(text)]
    return [span.strip() for _, span in sorted(spans) if span.strip()]


def _ids_note(what: str, ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit]) + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")
    return f"{len(ids)} {what}: {shown}"


def category_key(raw: str) -> str:
    """A published category name as a partition-safe key: ``Anime_Stylization`` → ``anime_stylization``."""
    key = re.sub(r"[^a-z0-9]+", "_", raw.strip().lower()).strip("_")
    return key or "uncategorised"


def _id_key(raw: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw.strip()).strip("-.") or "x"


@dataclass
class Table:
    """A CSV/TSV file's header and its rows with line numbers."""

    path: Path
    columns: list[str]
    rows: list[tuple[int, dict[str, str]]]

    def unused_note(self, used: set[str]) -> list[str]:
        """A note naming the columns no importer rule reads (empty when all are read)."""
        unused = [c for c in self.columns if c and c not in used]
        return [f"{self.path}: column(s) {unused} not imported"] if unused else []


def read_table(path: Path) -> Table:
    """CSV or TSV (the delimiter sniffed from the header); TSV without quote processing.

    A row with more (non-empty) fields than the header is an error naming its
    line: its extra fields would otherwise vanish. Empty trailing fields are ignored.
    """
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = handle.readline()
        tsv = header.count("\t") > header.count(",")
        handle.seek(0)
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else csv.DictReader(handle)
        rows = []
        for row in reader:
            if any(v.strip() for v in row.get(None) or []):
                raise PromptSuiteError(f"{path}:{reader.line_num}: more fields than the header's {len(reader.fieldnames)}")
            rows.append((reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items() if k}))
        return Table(path, [c.strip() for c in reader.fieldnames or []], rows)


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """CSV or TSV rows with their line numbers (see :func:`read_table`)."""
    yield from read_table(path).rows


def _column(row: dict[str, str], names: tuple[str, ...], where: str) -> str:
    for name in names:
        if row.get(name):
            return row[name]
    raise PromptSuiteError(f"{where}: missing column {' or '.join(names)}")


def readable(rows: Iterable[tuple[str, Any]], convert: Callable[[str, Any], Prompt], notes: list[str]) -> list[Prompt]:
    """``convert(where, row)`` for each row; a row nothing can be read from is left out with a note.

    Published files carry a few broken rows; one of them must cost only its own prompt.
    """
    prompts = []
    for where, row in rows:
        try:
            prompts.append(convert(where, row))
        except PromptSuiteError as exc:
            notes.append(f"{exc}: left out")
    return prompts


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


GENEVAL_KEYS = {"tag", "prompt", "include", "exclude"}


def import_geneval(path: Path) -> ImportResult:
    prompts, extra = [], Counter()
    for lineno, where, raw in jsonl_records(path):
        if not isinstance(raw, dict) or not raw.get("prompt") or not raw.get("tag"):
            raise PromptSuiteError(f"{where}: a GenEval line needs 'tag', 'prompt' and 'include'")
        extra.update(set(raw) - GENEVAL_KEYS)
        objects, relations = _geneval_objects(raw.get("include") or [], where)
        metadata: dict[str, Any] = {"objects": objects, "geneval": {k: raw[k] for k in ("tag", "include", "exclude") if k in raw}}
        if relations:
            metadata["relations"] = relations
        prompts.append(Prompt(f"geneval-{lineno:04d}", category_key(raw["tag"]), raw["prompt"], metadata=metadata))
    notes = [f"{path}: key(s) {sorted(extra)} not imported" ] if extra else []
    return ImportResult(prompts, notes)


# --- OneIG-Bench -----------------------------------------------------------------------

# OneIG category -> the folder name its scripts use (text2image.py's class_item); Q_D files are
# named after it (``anime.json``, ``anime_zh.json``).
ONEIG_FOLDERS = {
    "anime_stylization": "anime",
    "portrait": "human",
    "general_object": "object",
    "text_rendering": "text",
    "knowledge_reasoning": "reasoning",
    "multilingualism": "multilingualism",
}
ONEIG_CSV = {"en": "OneIG-Bench.csv", "zh": "OneIG-Bench-ZH.csv"}
ONEIG_TEXT_CONTENT = {"en": "text_content.csv", "zh": "text_content_zh.csv"}
ONEIG_PROMPT_COLUMNS = ("prompt_en", "prompt_cn", "prompt_zh", "prompt")
ONEIG_METADATA_COLUMNS = ("type", "prompt_length", "class")


@dataclass(frozen=True)
class OneigSources:
    """The files of one OneIG import: the prompt CSV, and the ground truth and questions if any."""

    csv: Path
    text_content: Path | None
    questions: Path | None
    notes: tuple[str, ...] = ()


def oneig_sources(path: Path, text_content: Path | None = None, questions: Path | None = None) -> OneigSources:
    """Resolve a OneIG import: a CSV file, or a folder of the published repository's layout.

    A folder is read as ``OneIG-Bench.csv`` (else ``OneIG-Bench-ZH.csv``) plus
    ``scripts/text/text_content[_zh].csv`` and ``scripts/alignment/Q_D/``; next
    to a CSV file, those are used too unless given explicitly.
    """
    notes: list[str] = []
    root = path if path.is_dir() else path.parent
    if path.is_dir():
        found = [root / name for name in ONEIG_CSV.values() if (root / name).is_file()]
        if not found:
            raise PromptSuiteError(f"{path}: no {' or '.join(ONEIG_CSV.values())} in this folder")
        path = found[0]
        if len(found) > 1:
            notes.append(f"{found[1]} not imported: import it as its own suite (pass the file) for OneIG-Bench-ZH")
    language = _oneig_language(read_table(path).columns)
    if text_content is None and (root / "scripts" / "text" / ONEIG_TEXT_CONTENT[language]).is_file():
        text_content = root / "scripts" / "text" / ONEIG_TEXT_CONTENT[language]
    if questions is None and (root / "scripts" / "alignment" / "Q_D").is_dir():
        questions = root / "scripts" / "alignment" / "Q_D"
    return OneigSources(path, text_content, questions, tuple(notes))


def _oneig_language(columns: list[str]) -> str:
    return "zh" if {"prompt_cn", "prompt_zh"} & set(columns) else "en"


def import_oneig(path: Path, text_content: Path | None = None, questions: Path | None = None) -> ImportResult:
    """OneIG-Bench (EN or ZH): prompts, text ground truth and alignment questions with dependencies."""
    sources = oneig_sources(Path(path), text_content, questions)
    table = read_table(sources.csv)
    for names in (("category",), ("id",), ONEIG_PROMPT_COLUMNS):  # a header without them: no row can be read
        if not set(names) & set(table.columns):
            raise PromptSuiteError(f"{sources.csv}:1: missing column {' or '.join(names)}")
    language = _oneig_language(table.columns)
    notes = list(sources.notes) + table.unused_note({"category", "id", *ONEIG_PROMPT_COLUMNS, *ONEIG_METADATA_COLUMNS})
    prompts = readable(((f"{sources.csv}:{lineno}", row) for lineno, row in table.rows),
                       lambda where, row: _oneig_prompt(row, where, language), notes)
    truth = read_text_content(sources.text_content, notes) if sources.text_content else {}
    prompts, text_notes = _oneig_text_targets(prompts, truth, sources.text_content)
    notes += text_notes
    if sources.questions is not None:
        questions = read_oneig_questions(sources.questions, language)
        prompts, question_notes = _attach_questions(prompts, questions)
        notes += question_notes
        if questions.skipped_files:
            notes.append(_ids_note(f"Q_D files of the other language in {sources.questions} not imported",
                                   questions.skipped_files))
    else:
        notes.append("no Q_D questions given (--questions): OneIG's alignment questions are not imported")
    return ImportResult(prompts, notes)


def _oneig_prompt(row: dict[str, str], where: str, language: str) -> Prompt:
    category = category_key(_column(row, ("category",), where))
    text = _column(row, ONEIG_PROMPT_COLUMNS, where)
    metadata: dict[str, Any] = {k: row[k] for k in ONEIG_METADATA_COLUMNS if row.get(k)}
    metadata["oneig"] = {"id": _column(row, ("id",), where), "language": language}
    if category == "text_rendering":
        metadata["text_language"] = language
    return Prompt(f"oneig-{category}-{_id_key(metadata['oneig']['id'])}", category, text, metadata=metadata)


@dataclass(frozen=True)
class TextTruth:
    """One ground-truth cell: the strings its list literal holds, and the cell exactly as published."""

    strings: list[str]
    cell: str


def read_text_content(path: Path, notes: list[str]) -> dict[str, TextTruth]:
    """OneIG's text ground truth: prompt id -> the strings to render (``text_content``, a Python list literal).

    The cell itself is kept too: OneIG's ``text_score.py`` never parses the
    literal, it compares the raw cell (``bench suite oneig --official`` does the
    same, see ``prompts/suites.py``). A cell that is not a list literal of
    strings is read as one plain string, as that script reads every cell, and noted.
    """
    truth: dict[str, TextTruth] = {}
    for lineno, row in read_table(path).rows:
        where = f"{path}:{lineno}"
        raw = _column(row, ("text_content",), where)
        try:
            value = ast.literal_eval(raw) if raw.lstrip().startswith("[") else [raw]
        except (ValueError, SyntaxError):
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            notes.append(f"{where}: text_content is not a list of strings ({raw[:60]!r}): read as plain text, "
                         "as OneIG's text_score.py reads every cell")
            value = [raw]
        truth[_column(row, ("id",), where)] = TextTruth(value, raw)
    return truth


def _oneig_text_targets(
    prompts: list[Prompt], truth: dict[str, TextTruth], source: Path | None
) -> tuple[list[Prompt], list[str]]:
    """Text targets: the ground truth where given, else the prompt's quoted text; every gap noted."""
    out, from_quotes, without = [], [], []
    text_ids = {p.metadata["oneig"]["id"] for p in prompts if p.category == "text_rendering"}
    for prompt in prompts:
        if prompt.category != "text_rendering":
            out.append(prompt)
            continue
        published = truth.get(prompt.metadata["oneig"]["id"])
        if published is None:
            target = quoted_spans(prompt.prompt)
            (from_quotes if target else without).append(prompt.id)
            out.append(replace(prompt, metadata={**prompt.metadata, "text": target}) if target else prompt)
        else:
            out.append(replace(prompt, metadata={**prompt.metadata, "text": published.strings,
                                                 PUBLISHED_TEXT_KEY: published.cell}))
    notes = []
    if source is not None and from_quotes:
        notes.append(_ids_note(f"text prompts not in {source}, target taken from their quotes", from_quotes))
    if source is None and text_ids:
        notes.append("no text ground truth given (--text-content): text targets come from the prompts' quotes")
    if without:
        notes.append(_ids_note("text prompts without a text target (text_rendering skips them)", without))
    if extra := sorted(set(truth) - text_ids):
        notes.append(_ids_note(f"ids in {source} matching no text prompt", extra))
    return out, notes


@dataclass
class OneigQuestions:
    """What one language's Q_D files give: questions per prompt id, and what could not be read."""

    by_prompt: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # prompt id -> why its questions cannot be read
    skipped_files: list[str] = field(default_factory=list)  # the other language's files, left alone
    notes: list[str] = field(default_factory=list)


def read_oneig_questions(folder: Path, language: str) -> OneigQuestions:
    """Q_D files of one language, each item read on its own: one bad item never costs the others."""
    if not folder.is_dir():
        raise PromptSuiteError(f"{folder}: --questions must be OneIG's Q_D folder of <category>[_zh].json files")
    by_folder = {name: key for key, name in ONEIG_FOLDERS.items()}
    out = OneigQuestions()
    for file in sorted(folder.glob("*.json")):
        stem = file.stem
        file_language = "zh" if stem.endswith("_zh") else "en"
        stem = stem.removesuffix("_zh")
        if file_language != language:
            out.skipped_files.append(file.name)
            continue
        if stem not in by_folder:
            raise PromptSuiteError(f"{file}: not a OneIG category file; known: {sorted(by_folder)}")
        text = file.read_text(encoding="utf-8")
        data, lines = _load_json(file, text), _top_level_lines(text)
        for key, item in data.items():
            prompt_id = f"oneig-{by_folder[stem]}-{_id_key(key)}"
            try:
                out.by_prompt[prompt_id] = _oneig_item_questions(item, f"{file}:{lines[key]}: item {key}", out.notes)
            except PromptSuiteError as exc:
                out.refused[prompt_id] = str(exc)
    return out


def _load_json(file: Path, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PromptSuiteError(f"{file}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise PromptSuiteError(f"{file}: expected an object of prompt id -> {{question, dependency}}")
    return data


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _top_level_lines(text: str) -> dict[str, int]:
    """The line each top-level key of a JSON object stands on (json.loads keeps no positions).

    Walks the object key by key with the decoder's own ``raw_decode``, so a
    nested key that looks like a prompt id is never mistaken for one. Only
    called on text ``json.loads`` has already accepted.
    """
    decoder, lines = json.JSONDecoder(), {}
    pos = _skip_space(text, text.index("{") + 1)
    while pos < len(text) and text[pos] != "}":
        key, pos = decoder.raw_decode(text, pos)
        lines[key] = text.count("\n", 0, pos) + 1
        _, pos = decoder.raw_decode(text, _skip_space(text, _skip_space(text, pos) + 1))
        pos = _skip_space(text, pos)
        pos = _skip_space(text, pos + 1) if text[pos:pos + 1] == "," else pos
    return lines


def _json_field(item: dict[str, Any], key: str, where: str) -> dict[int, Any]:
    value = item.get(key)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise PromptSuiteError(f"{where}: '{key}' is not valid JSON") from None
    if not isinstance(value, dict):
        raise PromptSuiteError(f"{where}: '{key}' must be an object keyed by question number")
    try:
        return {int(k): v for k, v in value.items()}
    except ValueError:
        raise PromptSuiteError(f"{where}: '{key}' keys must be question numbers") from None


def _oneig_item_questions(item: Any, where: str, notes: list[str]) -> list[dict[str, Any]]:
    if not isinstance(item, dict):
        raise PromptSuiteError(f"{where}: expected {{question, dependency}}")
    texts = _json_field(item, "question", where)
    dependency = _json_field(item, "dependency", where) if "dependency" in item else {}
    return [gated_question(qid, texts[qid], dependency.get(qid, [0]), texts, where, notes) for qid in sorted(texts)]


def gated_question(qid: int, text: Any, parents: Any, known: Any, where: str, notes: list[str]) -> dict[str, Any]:
    """A yes/no question with its parents (0 = none).

    Read as the benchmarks' own scoring reads them: a question listed as its
    own parent changes no gate (OneIG's ``alignment_score.py``, DSG's
    ``evaluate_image_dsg``), and a parent the item does not have gates nothing;
    both are dropped, each with a note in ``notes``.
    """
    if not isinstance(text, str) or not text.strip():
        raise PromptSuiteError(f"{where}: question {qid} must be a non-empty string")
    if not isinstance(parents, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in parents):
        raise PromptSuiteError(f"{where}: the dependency of question {qid} must be a list of question numbers")
    parents = [x for x in parents if x != 0]
    if qid in parents:
        notes.append(f"{where}: question {qid} lists itself as a parent: ignored (it changes no gate)")
    if unknown := [x for x in parents if x not in known]:
        notes.append(f"{where}: question {qid} depends on {unknown}, which the item does not have: ignored")
    parents = [x for x in parents if x != qid and x in known]
    return {"id": qid, "question": text.strip(), "choices": list(YES_NO), "answer": "Yes", "parents": parents}


def _attach_questions(prompts: list[Prompt], questions: OneigQuestions) -> tuple[list[Prompt], list[str]]:
    """Each prompt with its questions; a prompt whose questions cannot be read is left out, named."""
    ids = {p.id for p in prompts}
    kept = [p for p in prompts if p.id not in questions.refused]
    out = [replace(p, metadata={**p.metadata, "questions": questions.by_prompt[p.id]})
           if p.id in questions.by_prompt else p for p in kept]
    notes = list(questions.notes)
    notes += [f"{why}: prompt {prompt_id} left out" for prompt_id, why in questions.refused.items() if prompt_id in ids]
    if orphans := sorted((set(questions.by_prompt) | set(questions.refused)) - ids):
        notes.append(_ids_note("question sets matching no prompt (not imported)", orphans))
    return out, notes


# --- DSG-1k --------------------------------------------------------------------------

DSG_COLUMNS = ("item_id", "text", "proposition_id", "dependency", "question_natural_language")
DSG_KEPT = {"keywords", "category_broad", "category_detailed", "tuple"}


def import_dsg(path: Path) -> ImportResult:
    """DSG-1k: one prompt per ``item_id``, its questions with their parent propositions.

    Dependencies are read as DSG's ``data_utils.py`` reads them: a cell that
    does not parse as comma-separated integers gives its whole item no
    dependencies (that file's fallback), self-references and parents the item
    lacks are ignored; each is noted with its file, line and item.
    """
    table = read_table(path)
    missing = [c for c in DSG_COLUMNS if c not in table.columns]
    if missing:
        raise PromptSuiteError(f"{path}: missing column(s) {missing} (DSG-1k's dsg-1k-anns.csv header)")
    items: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for lineno, row in table.rows:
        items.setdefault(row["item_id"], []).append((f"{path}:{lineno}", row))
    notes = table.unused_note(set(DSG_COLUMNS) | DSG_KEPT)
    prompts = readable(items.items(), lambda item_id, rows: _dsg_prompt(item_id, rows, notes), notes)
    return ImportResult(prompts, notes)


def _dsg_prompt(item_id: str, rows: list[tuple[str, dict[str, str]]], notes: list[str]) -> Prompt:
    where, first = rows[0]
    texts = {row["text"] for _, row in rows}
    if len(texts) > 1:
        raise PromptSuiteError(f"{where}: item {item_id} has {len(texts)} different prompt texts")
    ids = {_int_field(row["proposition_id"], "proposition_id", f"{w}: item {item_id}") for w, row in rows}
    dependencies = _dsg_dependencies(item_id, rows, notes)
    questions = [_dsg_question(row, f"{w}: item {item_id}", ids, dependencies, notes) for w, row in rows]
    metadata: dict[str, Any] = {"questions": questions, "dsg": {"item_id": item_id}}
    if first.get("keywords"):
        metadata["keywords"] = first["keywords"]
    category = category_key(re.sub(r"_\d+$", "", item_id))  # e.g. "coco_12" -> "coco": the item's source set
    return Prompt(f"dsg-{_id_key(item_id)}", category, first["text"], metadata=metadata)


def _dsg_dependencies(item_id: str, rows: list[tuple[str, dict[str, str]]], notes: list[str]) -> dict[str, list[int]]:
    """Each row's parent ids by its ``proposition_id`` cell; all empty when any cell of the item does not parse."""
    parsed: dict[str, list[int]] = {}
    for where, row in rows:
        try:
            parsed[row["proposition_id"]] = [int(x.strip()) for x in row["dependency"].split(",") if x.strip()]
        except ValueError:
            notes.append(f"{where}: item {item_id}: dependency {row['dependency']!r} is not a list of integers: "
                         "the item has no dependencies (as DSG's data_utils.py reads it)")
            return {}
    return parsed


def _int_field(raw: str, name: str, where: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise PromptSuiteError(f"{where}: {name} must be an integer, got {raw!r}") from None


def _dsg_question(row: dict[str, str], where: str, known: set[int], dependencies: dict[str, list[int]],
                  notes: list[str]) -> dict[str, Any]:
    qid = _int_field(row["proposition_id"], "proposition_id", where)
    parents = dependencies.get(row["proposition_id"], [])
    question = gated_question(qid, row["question_natural_language"], parents, known, where, notes)
    extras = {"tuple": row.get("tuple"), "category": row.get("category_broad"), "detail": row.get("category_detailed")}
    return {**question, **{k: v for k, v in extras.items() if v}}


# --- DrawBench, PartiPrompts, txt -------------------------------------------------------


def _text_targets(prompts: list[Prompt], wanted: Callable[[Prompt], bool], single: bool, what: str) -> tuple[list[Prompt], list[str]]:
    """Give the ``wanted`` prompts their quoted text as ``text``; note those without any."""
    out, without = [], []
    for prompt in prompts:
        spans = quoted_spans(prompt.prompt, single=single) if wanted(prompt) else []
        if wanted(prompt) and not spans:
            without.append(prompt.id)
        out.append(replace(prompt, metadata={**prompt.metadata, "text": spans}) if spans else prompt)
    return out, [_ids_note(f"{what} prompts without quoted text (no text target)", without)] if without else []


def import_drawbench(path: Path) -> ImportResult:
    table = read_table(path)
    prompts = []
    for n, (lineno, row) in enumerate(table.rows, start=1):
        where = f"{path}:{lineno}"
        text = _column(row, ("Prompts", "Prompt", "prompt"), where)
        category = _column(row, ("Category", "category"), where)
        prompts.append(Prompt(f"drawbench-{n:03d}", category_key(category), text, metadata={"source": "drawbench"}))
    prompts, notes = _text_targets(prompts, lambda p: p.category == "text", single=True, what="DrawBench Text")
    return ImportResult(prompts, table.unused_note({"Prompts", "Prompt", "prompt", "Category", "category"}) + notes)


PARTI_TEXT_CHALLENGE = "Writing & Symbols"


def import_parti(path: Path) -> ImportResult:
    table = read_table(path)
    prompts = []
    for n, (lineno, row) in enumerate(table.rows, start=1):
        where = f"{path}:{lineno}"
        text = _column(row, ("Prompt", "prompt"), where)
        category = _column(row, ("Category", "category"), where)
        metadata = {k.lower(): row[k] for k in ("Challenge", "Note") if row.get(k)}
        prompts.append(Prompt(f"parti-{n:04d}", category_key(category), text, metadata=metadata))
    prompts, notes = _text_targets(
        prompts, lambda p: p.metadata.get("challenge") == PARTI_TEXT_CHALLENGE, single=False, what=PARTI_TEXT_CHALLENGE
    )
    return ImportResult(prompts, table.unused_note({"Prompt", "prompt", "Category", "category", "Challenge", "Note"}) + notes)


def import_txt(path: Path, category: str = "custom") -> ImportResult:
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
    others = sorted(f.name for f in path.iterdir() if f.suffix not in (".txt", *IMAGE_SUFFIXES) and not f.name.startswith("."))
    return ImportResult(prompts, [_ids_note(f"files in {path} not imported", others)] if others else [])


IMPORTERS: dict[str, Callable[..., ImportResult]] = {
    "geneval": import_geneval,
    "oneig": import_oneig,
    "dsg": import_dsg,
    "drawbench": import_drawbench,
    "parti": import_parti,
    "txt": import_txt,
}
# Extra source files a format accepts (``bench import-prompts --text-content/--questions``).
EXTRA_SOURCES: dict[str, tuple[str, ...]] = {"oneig": ("text_content", "questions")}


def write_suite(prompts: list[Prompt], target: Path) -> Path:
    """Write prompts as a suite JSONL file (atomically) and validate it by loading it back."""
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


def import_prompts(fmt: str, source: Path, suite: str, prompts_dir: Path, **extra: Path | None) -> tuple[Path, ImportResult]:
    """``bench import-prompts``: read ``source`` in ``fmt``, write ``prompts_dir/<suite>.jsonl``; the result's notes."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", suite):
        raise PromptSuiteError(f"suite name {suite!r} may only use letters, digits, '_' and '-'")
    if fmt not in IMPORTERS:
        raise PromptSuiteError(f"unknown format {fmt!r}; known: {sorted(IMPORTERS)}")
    extra = {k: Path(v) for k, v in extra.items() if v is not None}
    if bad := sorted(set(extra) - set(EXTRA_SOURCES.get(fmt, ()))):
        raise PromptSuiteError(f"--{bad[0].replace('_', '-')} does not apply to --format {fmt}")
    for path in [Path(source), *extra.values()]:
        if not path.exists():
            raise PromptSuiteError(f"{path}: not found")
    result = IMPORTERS[fmt](Path(source), **extra)
    return write_suite(result.prompts, prompts_dir / f"{suite}.jsonl"), result
