"""Suite specs: several JSONL suites combined, filtered and sampled, with their own settings.

A spec is a small YAML file ``data/prompts/<name>.suite.yaml``::

    include: [default.jsonl, geneval.jsonl]   # relative to this file (or absolute)
    prefix_ids: false                         # true: ids become <file stem>-<id>
    categories: [object, counting]            # keep only these categories
    difficulty: [easy, medium]                # keep only these difficulties
    tags: [counting, two_object]              # keep prompts whose metadata has one of these tags
    sample_per_category: 3                    # then keep N prompts per category ("test mode")
    seed: 0
    negative_prompt: "blurry, lowres"         # for prompts that have none
    generation: {steps: 20, width: 512, height: 512}

Why a spec and not another JSONL file: the published sets stay as imported
(re-importing a newer GenEval updates every spec that includes it), and a
quick subset for a smoke test is one line (``sample_per_category``) instead of
a hand-made copy that drifts.

Steps, in order: load every included file (ids must be unique across files,
or ``prefix_ids``), filter by categories, difficulty and tags (a prompt must
pass every filter given), sample, then fill in the default negative prompt.

Sampling is deterministic: within a category, prompts are ranked by
``sha256(f"{seed}:{category}:{id}")`` and the first N kept (then put back in
file order). A prompt's rank depends only on the seed, its category and its
id, so the same seed picks the same prompts whatever the file order and
whatever other categories or files are added.

Tags come from a prompt's ``metadata``: ``tag``, ``tags`` (a string or a
list), ``class`` (OneIG), ``challenge`` (PartiPrompts) and ``geneval.tag``
(GenEval, as imported by :mod:`bench_assets.prompts.importers`).

``generation`` holds generation settings for this suite; they sit between
the installation's defaults (``data/config.yaml``) and a model's own card or
sidecar, which still wins.

``text_target`` picks which text-rendering target a prompt is scored
against: ``parsed`` (the default: the strings of the published list, as the
importer parsed them) or ``published`` (the ground-truth cell exactly as the
benchmark published it, where the importer kept one: OneIG's
``text_score.py`` compares that raw cell, so an escaped ``\\n`` inside it
leaves an ``n`` in the target). ``bench suite oneig --official`` writes
``published``, so its numbers are OneIG's own.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

import yaml

from bench_assets.prompts.prompt import (
    DIFFICULTIES,
    SPEC_SUFFIXES,
    Prompt,
    PromptSuite,
    PUBLISHED_TEXT_KEY,
    PromptSuiteError,
    load_jsonl_suite,
)
from bench_assets.core.settings import GenerationSettings, SettingsError, checked_overrides
from bench_assets.core.yaml_files import read_yaml

SPEC_SUFFIX = ".suite.yaml"
TAG_FIELDS = ("tag", "tags", "class", "challenge")
_KEYS = ("include", "prefix_ids", "categories", "difficulty", "tags", "sample_per_category", "seed",
         "negative_prompt", "generation", "text_target")
TEXT_TARGETS = ("parsed", "published")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class SuiteSpec:
    """A validated spec file; ``include`` paths are resolved against the spec's folder."""

    source: Path
    include: tuple[Path, ...]
    prefix_ids: bool = False
    categories: tuple[str, ...] | None = None
    difficulty: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    sample_per_category: int | None = None
    seed: int = 0
    negative_prompt: str | None = None
    generation: tuple[tuple[str, Any], ...] = ()
    text_target: str = "parsed"


def suite_name(path: Path) -> str:
    """``quick.suite.yaml`` → ``quick`` (the name the CLI and BENCH_PROMPT_SUITE use)."""
    name = Path(path).name
    for suffix in (SPEC_SUFFIX, ".suite.yml", ".yaml", ".yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


# --- reading and validating the spec ---------------------------------------------------


def _strings(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise PromptSuiteError(f"{where} must be a non-empty list of strings")
    return tuple(v.strip() for v in value)


def _int(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PromptSuiteError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def validate_generation(raw: Any, where: str) -> dict[str, Any]:
    """The suite's settings, checked field by field against GenerationSettings (``checked_overrides``)."""
    try:
        return checked_overrides(raw, where)
    except SettingsError as exc:
        raise PromptSuiteError(str(exc)) from None


def _include(raw: Any, spec: Path) -> tuple[Path, ...]:
    entries = _strings(raw, f"{spec}: 'include'")
    if entries is None:
        raise PromptSuiteError(f"{spec}: 'include' is required: a list of .jsonl suites")
    paths = []
    for entry in entries:
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else spec.parent / path
        if path.suffix != ".jsonl":
            raise PromptSuiteError(f"{spec}: 'include' entry {entry!r} must be a .jsonl suite")
        if path in paths:
            raise PromptSuiteError(f"{spec}: 'include' lists {entry!r} twice")
        paths.append(path)
    return tuple(paths)


def read_spec(path: Path) -> SuiteSpec:
    """Parse and validate a spec; every error names the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise PromptSuiteError(f"{path}: suite spec not found")
    raw = read_yaml(path, PromptSuiteError)
    if not isinstance(raw, dict):  # an empty spec too (read_yaml_mapping would take it for {})
        raise PromptSuiteError(f"{path}: expected a mapping with keys {list(_KEYS)}")
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise PromptSuiteError(f"{path}: unknown key(s) {unknown}; known: {list(_KEYS)}")
    difficulty = _strings(raw.get("difficulty"), f"{path}: 'difficulty'")
    if difficulty and (bad := [d for d in difficulty if d not in DIFFICULTIES]):
        raise PromptSuiteError(f"{path}: 'difficulty' {bad} not in {DIFFICULTIES}")
    negative = raw.get("negative_prompt")
    if negative is not None and (not isinstance(negative, str) or not negative.strip()):
        raise PromptSuiteError(f"{path}: 'negative_prompt' must be a non-empty string")
    if not isinstance(raw.get("prefix_ids", False), bool):
        raise PromptSuiteError(f"{path}: 'prefix_ids' must be true or false")
    sample = raw.get("sample_per_category")
    generation = validate_generation(raw.get("generation") or {}, f"{path}: generation")
    text_target = raw.get("text_target", "parsed")
    if text_target not in TEXT_TARGETS:
        raise PromptSuiteError(f"{path}: 'text_target' must be one of {TEXT_TARGETS}, got {text_target!r}")
    return SuiteSpec(
        source=path,
        include=_include(raw.get("include"), path),
        prefix_ids=raw.get("prefix_ids", False),
        categories=_strings(raw.get("categories"), f"{path}: 'categories'"),
        difficulty=difficulty,
        tags=_strings(raw.get("tags"), f"{path}: 'tags'"),
        sample_per_category=None if sample is None else _int(sample, f"{path}: 'sample_per_category'", 1),
        seed=_int(raw.get("seed", 0), f"{path}: 'seed'", 0),
        negative_prompt=negative.strip() if negative else None,
        generation=tuple(generation.items()),
        text_target=text_target,
    )


# --- building the suite ----------------------------------------------------------------


def _id_prefix(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-.") or "suite"


def combine(files: Iterable[Path], prefix_ids: bool, spec: Path) -> list[Prompt]:
    """Every prompt of every file, in include order; a repeated id names both files."""
    prompts: list[Prompt] = []
    origin: dict[str, Path] = {}
    for file in files:
        try:
            loaded = load_jsonl_suite(file).prompts
        except PromptSuiteError as exc:
            raise PromptSuiteError(f"{spec}: 'include': {exc}") from None
        for prompt in loaded:
            if prefix_ids:
                prompt = replace(prompt, id=f"{_id_prefix(file)}-{prompt.id}")
            if prompt.id in origin:
                raise PromptSuiteError(
                    f"{spec}: prompt id {prompt.id!r} is in both {origin[prompt.id]} and {file}; "
                    "rename one or set 'prefix_ids: true'"
                )
            origin[prompt.id] = file
            prompts.append(prompt)
    return prompts


def prompt_tags(prompt: Prompt) -> set[str]:
    """The tag-like values in a prompt's metadata (see the module docstring)."""
    meta = prompt.metadata
    values: list[Any] = [meta.get(key) for key in TAG_FIELDS]
    geneval = meta.get("geneval")
    if isinstance(geneval, dict):
        values.append(geneval.get("tag"))
    tags: set[str] = set()
    for value in values:
        items = value if isinstance(value, list) else [value]
        tags.update(str(item).strip() for item in items if isinstance(item, (str, int)) and str(item).strip())
    return tags


def _check_known(wanted: tuple[str, ...], present: Iterable[str], field: str, spec: Path) -> None:
    """A filter value that matches nothing is almost always a typo: say so instead of silently dropping."""
    known = set(present)
    missing = [w for w in wanted if w not in known]
    if missing:
        shown = sorted(known)[:30]
        raise PromptSuiteError(f"{spec}: '{field}' {missing} match no prompt in the included files; known: {shown}")


def filter_prompts(prompts: list[Prompt], spec: SuiteSpec) -> list[Prompt]:
    """Keep the prompts that pass every filter the spec gives.

    A prompt without a ``difficulty`` fails a difficulty filter.
    """
    if spec.categories:
        _check_known(spec.categories, (p.category for p in prompts), "categories", spec.source)
    if spec.tags:
        _check_known(spec.tags, (t for p in prompts for t in prompt_tags(p)), "tags", spec.source)
    return [
        p for p in prompts
        if (not spec.categories or p.category in spec.categories)
        and (not spec.difficulty or p.difficulty in spec.difficulty)
        and (not spec.tags or prompt_tags(p) & set(spec.tags))
    ]


def _rank(seed: int, prompt: Prompt) -> str:
    return hashlib.sha256(f"{seed}:{prompt.category}:{prompt.id}".encode()).hexdigest()


def sample_per_category(prompts: list[Prompt], n: int, seed: int) -> list[Prompt]:
    """N prompts per category, chosen by a seeded hash of (category, id); file order kept."""
    chosen: set[str] = set()
    for category in dict.fromkeys(p.category for p in prompts):
        members = sorted((p for p in prompts if p.category == category), key=lambda p: _rank(seed, p))
        chosen.update(p.id for p in members[:n])
    return [p for p in prompts if p.id in chosen]


def build_suite(spec: SuiteSpec) -> PromptSuite:
    """Combine, filter, sample and fill in defaults: the suite the benchmark runs."""
    prompts = filter_prompts(combine(spec.include, spec.prefix_ids, spec.source), spec)
    if spec.sample_per_category is not None:
        prompts = sample_per_category(prompts, spec.sample_per_category, spec.seed)
    if not prompts:
        raise PromptSuiteError(f"{spec.source}: no prompt passes the filters (categories, difficulty, tags)")
    if spec.negative_prompt:
        prompts = [p if p.negative_prompt else replace(p, negative_prompt=spec.negative_prompt) for p in prompts]
    if spec.text_target == "published":
        prompts = [published_text_target(p) for p in prompts]
    return PromptSuite(name=suite_name(spec.source), prompts=tuple(prompts), generation=dict(spec.generation))


def published_text_target(prompt: Prompt) -> Prompt:
    """The prompt scored against its published ground-truth cell, where the importer kept one."""
    cell = prompt.metadata.get(PUBLISHED_TEXT_KEY)
    if not isinstance(cell, str):
        return prompt
    return replace(prompt, metadata={**prompt.metadata, "text": cell})


def load_spec_suite(path: Path) -> PromptSuite:
    """Read a ``.suite.yaml`` spec and build its suite."""
    return build_suite(read_spec(Path(path)))


# --- writing a spec (``bench suite``) --------------------------------------------------


def _include_entry(raw: str, prompts_dir: Path) -> str:
    """``geneval``, ``geneval.jsonl`` or a path → how the spec names it (relative when in prompts/)."""
    path = Path(raw).expanduser()
    if path.suffix != ".jsonl":
        path = path.with_name(path.name + ".jsonl")
    if not path.is_file() and (prompts_dir / path.name).is_file():
        path = prompts_dir / path.name
    if not path.is_file():
        raise PromptSuiteError(f"--include {raw}: no such suite ({path}, nor {prompts_dir / path.name})")
    resolved, root = path.resolve(), prompts_dir.resolve()
    return str(resolved.relative_to(root)) if resolved.parent == root else str(resolved)


def write_spec(prompts_dir: Path, name: str, include: list[str], **options: Any) -> Path:
    """Write ``prompts_dir/<name>.suite.yaml`` (validated by building it first, then moved into place).

    ``options`` are spec keys (``categories``, ``tags``, ``sample_per_category``,
    ...); None values are left out.
    """
    if not _NAME_RE.match(name):
        raise PromptSuiteError(f"suite name {name!r} may only use letters, digits, '_' and '-'")
    if (prompts_dir / f"{name}.jsonl").exists():
        raise PromptSuiteError(f"{prompts_dir / name}.jsonl exists: pick another name, so that "
                               f"BENCH_PROMPT_SUITE={name} means one thing")
    body: dict[str, Any] = {"include": [_include_entry(item, prompts_dir) for item in include]}
    body.update({key: value for key, value in options.items() if value not in (None, [], {})})
    prompts_dir.mkdir(parents=True, exist_ok=True)
    target = prompts_dir / f"{name}{SPEC_SUFFIX}"
    tmp = prompts_dir / f".{name}.suite.yaml.tmp"
    tmp.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    try:
        build_suite(read_spec(tmp))
    except PromptSuiteError as exc:
        tmp.unlink()
        raise PromptSuiteError(str(exc).replace(str(tmp), str(target))) from None
    os.replace(tmp, target)
    return target


# --- published protocols (``bench suite NAME --official``) ------------------------------


@dataclass(frozen=True)
class Protocol:
    """A published benchmark's protocol over the suite its importer wrote: which prompts, how many images.

    ``prompts``: the published set's size, checked so that a partial or edited
    file is not mistaken for the benchmark (None: not checked). ``metrics``:
    the warehouse metrics whose numbers the protocol's published ones compare
    with (the other metrics still run; they skip prompts they cannot score).
    """

    include: str
    prompts: int | None
    generation: tuple[tuple[str, Any], ...]
    metrics: tuple[str, ...]
    reference: str
    text_target: str = "parsed"  # "published": text targets as the benchmark's own scoring reads them


PROTOCOLS: dict[str, Protocol] = {
    # GenEval README: prompts/evaluation_metadata.jsonl (553 prompts); generation/diffusers_generate.py n_samples=4.
    "geneval": Protocol("geneval", 553, (("images_per_prompt", 4),), ("geneval",),
                        "GenEval README 'Main results' (overall and per task, Mask2Former detector)"),
    # OneIG README: 245 + 244 + 206 + 200 + 225 prompts (EN); ZH adds 200 Multilingualism; 4 images per prompt.
    # text_score.py compares the raw text_content cell (it never parses the list literal): "published".
    "oneig": Protocol("oneig", 1120, (("images_per_prompt", 4),), ("dsg", "text_rendering"),
                      "OneIG-Bench leaderboard (EN): alignment, text", text_target="published"),
    "oneig-zh": Protocol("oneig-zh", 1320, (("images_per_prompt", 4),), ("dsg", "text_rendering"),
                         "OneIG-Bench leaderboard (ZH): alignment, text", text_target="published"),
    "drawbench": Protocol("drawbench", None, (("images_per_prompt", 4),), ("vqascore", "clip_score", "text_rendering"),
                          "none automated: DrawBench was judged by people (Imagen paper)"),
    "parti": Protocol("parti", None, (("images_per_prompt", 4),), ("vqascore", "clip_score", "text_rendering"),
                      "none automated: PartiPrompts was judged by people (Parti paper)"),
}


def write_official_spec(prompts_dir: Path, name: str, include: list[str] | None = None) -> tuple[Path, Protocol]:
    """``bench suite NAME --official``: ``<name>-official.suite.yaml`` over the imported set, checked.

    ``include`` defaults to the suite the README's import command writes
    (``geneval``, ``oneig``, ...). Nothing is fetched: the file must have been imported.
    """
    if name not in PROTOCOLS:
        raise PromptSuiteError(f"no published protocol {name!r}; known: {sorted(PROTOCOLS)}")
    protocol = PROTOCOLS[name]
    entries = include or [protocol.include]
    files = [prompts_dir / _include_entry(entry, prompts_dir) for entry in entries]
    prompts = combine(files, prefix_ids=False, spec=prompts_dir / f"{name}-official{SPEC_SUFFIX}")
    if protocol.prompts is not None and len(prompts) != protocol.prompts:
        raise PromptSuiteError(
            f"{', '.join(map(str, files))}: {len(prompts)} prompts, but the published {name} set has "
            f"{protocol.prompts}; import the published file unchanged (bench import-prompts)"
        )
    target = write_spec(prompts_dir, f"{name}-official", entries, generation=dict(protocol.generation),
                        text_target=None if protocol.text_target == "parsed" else protocol.text_target)
    return target, protocol


def load_suite(path: Path) -> PromptSuite:
    """The active suite: a JSONL file, or a ``.suite.yaml`` spec combining several."""
    path = Path(path)
    if path.suffix.lower() in SPEC_SUFFIXES:
        return load_spec_suite(path)
    return load_jsonl_suite(path)
