"""Importers, on small sample files written by hand in each published format."""

import json

import pytest

from bench_assets.cli import main
from bench_assets.core.importers import import_geneval, import_oneig, import_prompts
from bench_assets.core.prompts import PromptSuiteError, load_suite

GENEVAL = [
    {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"},
    {"tag": "counting", "include": [{"class": "clock", "count": 3}], "exclude": [{"class": "clock", "count": 4}],
     "prompt": "a photo of three clocks"},
    {"tag": "position", "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1, "position": ["right of", 0]}],
     "prompt": "a photo of a dog right of a cat"},
    {"tag": "color_attr", "include": [{"class": "car", "count": 1, "color": "red"}, {"class": "vase", "count": 1, "color": "blue"}],
     "prompt": "a photo of a red car and a blue vase"},
]


def test_geneval_keeps_objects_counts_colours_and_relations(tmp_path):
    source = tmp_path / "evaluation_metadata.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in GENEVAL) + "\n")
    prompts = import_geneval(source)
    assert [p.category for p in prompts] == ["single_object", "counting", "position", "color_attr"]
    assert prompts[1].metadata["objects"] == [{"name": "clock", "count": 3}]
    assert prompts[2].metadata["relations"] == [{"subject": "dog", "relation": "right of", "object": "cat"}]
    assert prompts[3].metadata["objects"][1] == {"name": "vase", "count": 1, "colour": "blue"}
    assert prompts[1].metadata["geneval"]["exclude"] == [{"class": "clock", "count": 4}]


def test_geneval_malformed_line_names_file_and_line(tmp_path):
    source = tmp_path / "meta.jsonl"
    source.write_text(json.dumps(GENEVAL[0]) + "\n{broken\n")
    with pytest.raises(PromptSuiteError, match=f"{source}:2: invalid JSON"):
        import_geneval(source)


def test_oneig_english_and_chinese_csv(tmp_path):
    en = tmp_path / "OneIG-Bench.csv"
    en.write_text(
        "category,id,prompt_en,type,prompt_length,class\n"
        'Anime_Stylization,000,"A cat in ukiyo-e style",NP,short,None\n'
        'Text_Rendering,012,"A poster that reads ""GRAND OPENING"" in gold",T,short,poster\n'
    )
    prompts = import_oneig(en)
    assert [p.category for p in prompts] == ["anime_stylization", "text_rendering"]
    assert prompts[1].metadata["text"] == "GRAND OPENING" and prompts[1].id == "oneig-text_rendering-012"
    zh = tmp_path / "OneIG-Bench-ZH.csv"
    zh.write_text("category,id,prompt_cn,type,prompt_length,class\nMultilingualism,001,一只熊猫在竹林里,NP,short,None\n")
    assert import_oneig(zh)[0].prompt == "一只熊猫在竹林里"
    bad = tmp_path / "bad.csv"
    bad.write_text("category,id,type\nPortrait,001,NP\n")
    with pytest.raises(PromptSuiteError, match=f"{bad}:2: missing column prompt_en"):
        import_oneig(bad)


def test_drawbench_parti_and_txt_through_the_cli(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    drawbench = tmp_path / "drawbench.csv"
    drawbench.write_text("Prompts,Category\nA red colored car.,Colors\nA pear cut into seven pieces.,Counting\n")
    parti = tmp_path / "PartiPrompts.tsv"
    parti.write_text("Prompt\tCategory\tChallenge\tNote\nA bowl of soup\tFood & Beverage\tSimple Detail\t\n")
    folder = tmp_path / "pairs"
    folder.mkdir()
    (folder / "example1.txt").write_text("a lighthouse at dusk\n")
    (folder / "example1.png").write_bytes(b"\x89PNG")
    (folder / "example2.txt").write_text("a foggy pier")

    for fmt, source, suite in (("drawbench", drawbench, "db"), ("parti", parti, "parti"), ("txt", folder, "mine")):
        assert main(["import-prompts", "--format", fmt, str(source), "--suite", suite]) == 0
    db = load_suite(data / "prompts" / "db.jsonl")
    assert [(p.category, p.prompt) for p in db.prompts] == [("colors", "A red colored car."), ("counting", "A pear cut into seven pieces.")]
    parti_suite = load_suite(data / "prompts" / "parti.jsonl")
    assert parti_suite.prompts[0].category == "food_beverage"
    assert parti_suite.prompts[0].metadata == {"challenge": "Simple Detail"}
    mine = load_suite(data / "prompts" / "mine.jsonl")
    assert mine.prompts[0].metadata["reference_image"].endswith("example1.png")
    assert "reference_image" not in mine.prompts[1].metadata
    assert "wrote 2 prompts" in capsys.readouterr().out


def test_bad_suite_name_and_format_are_refused(tmp_path):
    with pytest.raises(PromptSuiteError, match="suite name"):
        import_prompts("txt", tmp_path, "../evil", tmp_path)
    with pytest.raises(PromptSuiteError, match="unknown format"):
        import_prompts("csv", tmp_path, "ok", tmp_path)
