"""Suite specs (`data/prompts/<name>.suite.yaml`): combining, filtering, sampling, settings."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from bench_assets.core.paths import DataPaths
from bench_assets.prompts.prompt import PromptSuiteError
from bench_assets.prompts.suites import load_suite

A = [  # like default.jsonl
    {"id": "obj-1", "category": "object", "prompt": "a red bicycle", "difficulty": "easy"},
    {"id": "obj-2", "category": "object", "prompt": "a teapot", "difficulty": "medium", "negative_prompt": "cartoon"},
    {"id": "obj-3", "category": "object", "prompt": "a clock tower", "difficulty": "hard"},
    {"id": "obj-4", "category": "object", "prompt": "a lamp"},
    {"id": "cnt-1", "category": "counting", "prompt": "three apples", "difficulty": "easy",
     "metadata": {"tags": ["counting", "food"]}},
]
B = [  # like an imported GenEval / OneIG suite
    {"id": "geneval-0001", "category": "counting", "prompt": "two dogs",
     "metadata": {"geneval": {"tag": "counting"}}},
    {"id": "geneval-0002", "category": "two_object", "prompt": "a cat and a chair",
     "metadata": {"geneval": {"tag": "two_object"}}},
    {"id": "oneig-1", "category": "portrait", "prompt": "an old sailor", "metadata": {"class": "person"}},
]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _spec(folder: Path, name: str = "mix", **body) -> Path:
    path = folder / f"{name}.suite.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.fixture
def prompts_dir(tmp_path) -> Path:
    folder = tmp_path / "data" / "prompts"
    _write_jsonl(folder / "a.jsonl", A)
    _write_jsonl(folder / "b.jsonl", B)
    return folder


def _ids(suite) -> list[str]:
    return [p.id for p in suite.prompts]


def test_combines_two_files_in_include_order(prompts_dir):
    suite = load_suite(_spec(prompts_dir, include=["a.jsonl", "b.jsonl"]))
    assert suite.name == "mix"
    assert _ids(suite) == [r["id"] for r in A + B]
    assert suite.categories == ["object", "counting", "two_object", "portrait"]
    assert suite.generation == {}


@pytest.mark.parametrize("filters, expected", [
    ({"categories": ["counting"]}, ["cnt-1", "geneval-0001"]),
    ({"difficulty": ["easy", "medium"]}, ["obj-1", "obj-2", "cnt-1"]),  # no difficulty: filtered out
    ({"tags": ["counting"]}, ["cnt-1", "geneval-0001"]),  # metadata.tags and GenEval's geneval.tag
    ({"tags": ["two_object", "person"]}, ["geneval-0002", "oneig-1"]),  # geneval.tag and OneIG's class
    ({"categories": ["object", "counting"], "difficulty": ["easy"]}, ["obj-1", "cnt-1"]),  # all must pass
])
def test_filters(prompts_dir, filters, expected):
    suite = load_suite(_spec(prompts_dir, include=["a.jsonl", "b.jsonl"], **filters))
    assert _ids(suite) == expected


def test_sampling_is_deterministic_and_per_category(tmp_path):
    folder = tmp_path / "prompts"
    many = [{"id": f"{c}-{i:02d}", "category": c, "prompt": f"{c} {i}"} for c in ("x", "y") for i in range(20)]
    few = [{"id": "z-1", "category": "z", "prompt": "z"}]
    _write_jsonl(folder / "many.jsonl", many)
    _write_jsonl(folder / "few.jsonl", few)
    spec = _spec(folder, include=["many.jsonl", "few.jsonl"], sample_per_category=3, seed=7)
    first = load_suite(spec)
    counts = {c: len(first.in_category(c)) for c in first.categories}
    assert counts == {"x": 3, "y": 3, "z": 1}  # a category smaller than N keeps all it has
    assert _ids(load_suite(spec)) == _ids(first)

    # Another file order, category y removed and a new category added: x's picks do not move.
    shuffled = [r for r in many if r["category"] == "x"]
    random.Random(1).shuffle(shuffled)
    _write_jsonl(folder / "other.jsonl", [{"id": "w-1", "category": "w", "prompt": "w"}, *shuffled])
    again = load_suite(_spec(folder, "again", include=["other.jsonl"], sample_per_category=3, seed=7))
    assert {p.id for p in again.in_category("x")} == {p.id for p in first.in_category("x")}

    reseeded = load_suite(_spec(folder, "reseeded", include=["many.jsonl"], sample_per_category=3, seed=8))
    assert {p.id for p in reseeded.prompts} != {p.id for p in first.prompts if p.category != "z"}


def test_duplicate_ids_name_both_files_unless_prefixed(prompts_dir):
    _write_jsonl(prompts_dir / "copy.jsonl", [A[0]])
    spec = _spec(prompts_dir, include=["a.jsonl", "copy.jsonl"])
    with pytest.raises(PromptSuiteError) as err:
        load_suite(spec)
    message = str(err.value)
    assert str(spec) in message and "'obj-1'" in message
    assert str(prompts_dir / "a.jsonl") in message and str(prompts_dir / "copy.jsonl") in message

    prefixed = load_suite(_spec(prompts_dir, include=["a.jsonl", "copy.jsonl"], prefix_ids=True))
    assert _ids(prefixed)[0] == "a-obj-1" and _ids(prefixed)[-1] == "copy-obj-1"


@pytest.mark.parametrize("body, needle", [
    ({"include": ["a.jsonl"], "sample": 3}, "unknown key(s) ['sample']"),
    ({"categories": ["object"]}, "'include' is required"),
    ({"include": ["missing.jsonl"]}, "missing.jsonl: prompt suite not found"),
    ({"include": ["a.jsonl"], "categories": ["objects"]}, "'categories' ['objects'] match no prompt"),
    ({"include": ["a.jsonl"], "tags": ["cuonting"]}, "'tags' ['cuonting'] match no prompt"),
    ({"include": ["a.jsonl"], "difficulty": ["trivial"]}, "'difficulty' ['trivial'] not in"),
    ({"include": ["a.jsonl"], "sample_per_category": 0}, "'sample_per_category' must be an integer >= 1"),
    ({"include": ["a.jsonl"], "generation": {"steps": "20"}}, "generation.steps must be int"),
    ({"include": ["a.jsonl"], "generation": {"width": 500}}, "width must be a positive multiple of 8"),
    ({"include": ["a.jsonl"], "generation": {"stepz": 20}}, "unknown setting(s) ['stepz']"),
    ({"include": ["a.jsonl"], "categories": ["counting"], "difficulty": ["hard"]}, "no prompt passes the filters"),
])
def test_errors_name_the_spec_and_the_field(prompts_dir, body, needle):
    spec = _spec(prompts_dir, **body)
    with pytest.raises(PromptSuiteError) as err:
        load_suite(spec)
    assert str(spec) in str(err.value) and needle in str(err.value)


def test_negative_prompt_default_only_fills_gaps(prompts_dir):
    suite = load_suite(_spec(prompts_dir, include=["a.jsonl"], negative_prompt="blurry, lowres"))
    negatives = {p.id: p.negative_prompt for p in suite.prompts}
    assert negatives["obj-2"] == "cartoon"
    assert {pid for pid, neg in negatives.items() if neg == "blurry, lowres"} == {"obj-1", "obj-3", "obj-4", "cnt-1"}


def test_suite_settings_sit_between_defaults_and_the_model(prompts_dir, tmp_path):
    from bench_assets.models.registry import ModelEntry, ModelKind
    from bench_assets.defs.resources import BenchResource, GenerationResource

    spec = _spec(prompts_dir, include=["a.jsonl"],
                 generation={"steps": 20, "width": 512, "height": 512, "sampler": "dpmpp_2m", "images_per_prompt": 2})
    bench = BenchResource(data_dir=str(tmp_path / "data"), suite_path=str(spec))
    generation = GenerationResource(steps=40, guidance_scale=9.0, width=1024)  # as from data/config.yaml
    models = tmp_path / "data" / "models"
    models.mkdir()
    (models / "m.settings.yaml").write_text(yaml.safe_dump({"steps": 7}))
    entry = ModelEntry(key="m", name="m", path=models / "m.safetensors", kind=ModelKind.SINGLE_FILE, signature="s")

    settings = generation.settings_for(entry, bench.suite().generation)
    assert settings.steps == 7  # the model's sidecar wins over the suite
    assert (settings.width, settings.height, settings.sampler, settings.images_per_prompt) == (512, 512, "dpmpp_2m", 2)
    assert settings.guidance_scale == 9.0  # not in the suite: the resource default stays
    assert generation.settings_for(entry).width == 1024  # no suite overrides: defaults, then the model


def test_filtered_suite_categories_are_the_partitions(prompts_dir, monkeypatch):
    from bench_assets.defs.partitions import CATEGORY_DIM, build_partitions

    _spec(prompts_dir, "quick", include=["a.jsonl", "b.jsonl"], categories=["two_object", "counting"])
    monkeypatch.setenv("BENCH_PROMPT_SUITE", "quick")
    paths = DataPaths(prompts_dir.parent)
    assert paths.default_suite() == prompts_dir / "quick.suite.yaml"
    partitions = build_partitions(paths)
    dimension = next(d for d in partitions.partitions_defs if d.name == CATEGORY_DIM)
    assert dimension.partitions_def.get_partition_keys() == ["counting", "two_object"]  # file order


def test_suite_name_resolution_prefers_jsonl(prompts_dir, monkeypatch):
    _spec(prompts_dir, "a", include=["b.jsonl"])
    paths = DataPaths(prompts_dir.parent)
    monkeypatch.setenv("BENCH_PROMPT_SUITE", "a")
    assert paths.default_suite() == prompts_dir / "a.jsonl"
    monkeypatch.setenv("BENCH_PROMPT_SUITE", "a.suite.yaml")  # a file name in data/prompts/
    assert paths.default_suite() == prompts_dir / "a.suite.yaml"


def test_cli_writes_a_spec_and_prints_counts(prompts_dir, monkeypatch, capsys):
    from bench_assets.cli import main

    monkeypatch.setenv("BENCH_DATA_DIR", str(prompts_dir.parent))
    code = main(["suite", "quick", "--include", "a", "--include", "b.jsonl", "--category", "object",
                 "--category", "counting", "--sample", "1", "--seed", "3", "--set", "steps=12"])
    out = capsys.readouterr().out
    assert code == 0
    spec = prompts_dir / "quick.suite.yaml"
    assert yaml.safe_load(spec.read_text())["include"] == ["a.jsonl", "b.jsonl"]  # relative to the spec
    suite = load_suite(spec)
    assert [line.split() for line in out.splitlines()[1:3]] == [["object", "1"], ["counting", "1"]]
    assert suite.generation == {"steps": 12} and len(suite.prompts) == 2

    assert main(["suite", "bad", "--include", "a", "--tag", "nope"]) == 2
    assert "'tags' ['nope']" in capsys.readouterr().err
    assert not (prompts_dir / "bad.suite.yaml").exists() and not list(prompts_dir.glob(".*"))


def _geneval_lines(n: int) -> str:
    tags = ["single_object", "two_object", "counting", "colors", "position", "color_attr"]
    return "".join(json.dumps({"tag": tags[i % 6], "include": [{"class": "cat", "count": 1}],
                               "prompt": f"a photo of cat {i}"}) + "\n" for i in range(n))


def test_official_geneval_preset_from_the_imported_file(tmp_path, monkeypatch, capsys):
    """553 prompts x 4 images from the user's own import; a set of another size is refused."""
    from bench_assets.cli import main

    data = tmp_path / "data"
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    source = tmp_path / "evaluation_metadata.jsonl"
    source.write_text(_geneval_lines(553))
    assert main(["import-prompts", "--format", "geneval", str(source), "--suite", "geneval"]) == 0
    capsys.readouterr()
    assert main(["suite", "geneval", "--official"]) == 0
    out = capsys.readouterr().out
    spec = data / "prompts" / "geneval-official.suite.yaml"
    assert yaml.safe_load(spec.read_text()) == {"include": ["geneval.jsonl"], "generation": {"images_per_prompt": 4}}
    suite = load_suite(spec)
    assert len(suite.prompts) == 553 and suite.generation == {"images_per_prompt": 4}
    assert "553 prompts in 6 categories, 4 images per prompt" in out and "BENCH_PROMPT_SUITE=geneval-official" in out

    source.write_text(_geneval_lines(552))
    assert main(["import-prompts", "--format", "geneval", str(source), "--suite", "geneval_part"]) == 0
    assert main(["suite", "geneval", "--official", "--include", "geneval_part"]) == 2
    assert "552 prompts, but the published geneval set has 553" in capsys.readouterr().err
    assert main(["suite", "geneval", "--official", "--sample", "2"]) == 2  # a protocol takes no filters
    assert main(["suite", "nope", "--official"]) == 2
    assert "known: ['drawbench', 'geneval', 'oneig', 'oneig-zh', 'parti']" in capsys.readouterr().err


def test_official_oneig_counts_and_unchecked_presets(prompts_dir):
    from bench_assets.prompts.suites import PROTOCOLS, write_official_spec

    assert {k: p.prompts for k, p in PROTOCOLS.items()} == {
        "geneval": 553, "oneig": 1120, "oneig-zh": 1320, "drawbench": None, "parti": None}
    assert all(dict(p.generation) == {"images_per_prompt": 4} for p in PROTOCOLS.values())
    with pytest.raises(PromptSuiteError, match="3 prompts, but the published oneig set has 1120"):
        write_official_spec(prompts_dir, "oneig", ["b"])
    target, protocol = write_official_spec(prompts_dir, "parti", ["a"])  # size not checked for Parti
    assert load_suite(target).generation == {"images_per_prompt": 4} and "people" in protocol.reference
