"""Importers, on small sample files written by hand in each published format."""

import json

import pytest

from bench_assets.cli import main
from bench_assets.prompts.importers import (
    import_drawbench,
    import_dsg,
    import_geneval,
    import_oneig,
    import_parti,
    import_prompts,
)
from bench_assets.prompts.prompt import PromptSuiteError
from bench_assets.prompts.suites import load_suite

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
    prompts = import_geneval(source).prompts
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
    prompts = import_oneig(en).prompts
    assert [p.category for p in prompts] == ["anime_stylization", "text_rendering"]
    assert prompts[1].metadata["text"] == ["GRAND OPENING"] and prompts[1].id == "oneig-text_rendering-012"
    assert prompts[1].metadata["text_language"] == "en"
    zh = tmp_path / "OneIG-Bench-ZH.csv"
    zh.write_text("category,id,prompt_cn,type,prompt_length,class\nMultilingualism,001,一只熊猫在竹林里,NP,short,None\n")
    assert import_oneig(zh).prompts[0].prompt == "一只熊猫在竹林里"
    bad = tmp_path / "bad.csv"
    bad.write_text("category,id,type\nPortrait,001,NP\n")
    with pytest.raises(PromptSuiteError, match=f"{bad}:1: missing column prompt_en"):
        import_oneig(bad)
    one_empty = tmp_path / "one_empty.csv"
    one_empty.write_text("category,id,prompt_en\nPortrait,001,\nPortrait,002,A girl\n")
    result = import_oneig(one_empty)
    assert [p.id for p in result.prompts] == ["oneig-portrait-002"]
    assert f"{one_empty}:2: missing column prompt_en or prompt_cn or prompt_zh or prompt: left out" in result.notes


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


# --- OneIG's own metadata: text ground truth and Q_D questions, hand-written in the published formats ---

ONEIG_CSV = (
    "category,id,prompt_en,type,prompt_length,class\n"
    'Anime_Stylization,000,"Four boys and five girls in anime style",NP,short,None\n'
    'Portrait,001,"A girl with blonde hair",NP,short,None\n'
    'Text_Rendering,000,"A slide. The title reads ""The Impact of 5G"" and a footer ""Report, 2025"".",T,long,ppt\n'
    'Text_Rendering,001,"A poster for Nature\'s Touch with a long paragraph of text in it",T,long,poster\n'
    'Text_Rendering,002,"A sign that reads ""OPEN""",T,short,sign\n'
)
# Its text_content column is a Python list literal; the index column has no name.
TEXT_CONTENT = (
    ",id,prompt_en,text_content\n"
    '0,000,"A slide.","[\'The Impact of 5G\', \'Report, 2025\']"\n'
    '1,001,"A poster.","[""Nature\'s Touch for Your Skin"", \'Bringing comfort and elegance together.\']"\n'
    '2,007,"Not in the CSV.","[\'ORPHAN\']"\n'
)
# Q_D: "question" and "dependency" are JSON strings inside the JSON, dependency 0 = no parent.
Q_D_ANIME = {
    "000": {
        "question": json.dumps({"1": "Are there boys?", "2": "Are there four boys?", "3": "Are there girls?",
                                "4": "Are there five girls?", "5": "Is this anime?"}),
        "dependency": json.dumps({"1": [0], "2": [1], "3": [0], "4": [3], "5": [0]}),
    },
    "099": {"question": json.dumps({"1": "Is there a cat?"}), "dependency": json.dumps({"1": [0]})},
}
Q_D_HUMAN = {"001": {"question": {"1": "Is there a girl?", "2": "Is the girl's hair blonde?"},
                     "dependency": {"1": [0], "2": [1]}}}


def _oneig_repo(root):
    """A folder laid out like the published OneIG-Benchmark repository."""
    (root / "scripts" / "text").mkdir(parents=True)
    (root / "scripts" / "alignment" / "Q_D").mkdir(parents=True)
    (root / "OneIG-Bench.csv").write_text(ONEIG_CSV)
    (root / "scripts" / "text" / "text_content.csv").write_text(TEXT_CONTENT)
    (root / "scripts" / "alignment" / "Q_D" / "anime.json").write_text(json.dumps(Q_D_ANIME, indent=4))
    (root / "scripts" / "alignment" / "Q_D" / "human.json").write_text(json.dumps(Q_D_HUMAN))
    (root / "scripts" / "alignment" / "Q_D" / "anime_zh.json").write_text(json.dumps({"000": Q_D_HUMAN["001"]}))
    return root


def test_oneig_text_targets_equal_the_ground_truth_file(tmp_path):
    import ast
    import csv

    from bench_assets.metrics.text_rendering import normalize_text, target_text_of

    repo = _oneig_repo(tmp_path / "OneIG-Benchmark")
    result = import_oneig(repo / "OneIG-Bench.csv",
                          text_content=repo / "scripts" / "text" / "text_content.csv",
                          questions=repo / "scripts" / "alignment" / "Q_D")
    by_id = {p.id: p for p in result.prompts}
    with (repo / "scripts" / "text" / "text_content.csv").open(newline="") as handle:
        truth = {row["id"]: row["text_content"] for row in csv.DictReader(handle)}
    for oneig_id in ("000", "001"):  # 001 is a long-text prompt with no quotes at all
        prompt = by_id[f"oneig-text_rendering-{oneig_id}"]
        assert prompt.metadata["text"] == ast.literal_eval(truth[oneig_id])
        # What OneIG's text_score.py compares with: preprocess_string of the raw cell.
        assert normalize_text(target_text_of(prompt)) == normalize_text(truth[oneig_id])
    assert by_id["oneig-text_rendering-002"].metadata["text"] == ["OPEN"]  # not in the file: its quotes
    notes = "\n".join(result.notes)
    assert "1 text prompts not in" in notes and "oneig-text_rendering-002" in notes
    assert "ids in" in notes and "007" in notes  # ground truth for no prompt is reported, not dropped


# OneIG's text_content_zh/text_content cells 195-199 hold an escaped newline: two characters inside the literal.
ESCAPED_NEWLINE_CELL = "['OPEN', 'Line one\\nLine two']"


def test_official_oneig_compares_text_as_text_score_py_does(tmp_path, monkeypatch):
    """text_score.py reads text_content as a plain string (never parsing the literal): its target keeps an 'n'."""
    from dataclasses import replace as replace_field

    from bench_assets.metrics.text_rendering import compare_text, normalize_text, target_text_of
    from bench_assets.prompts.suites import PROTOCOLS, write_official_spec, write_spec

    repo = _oneig_repo(tmp_path / "repo")
    (repo / "scripts" / "text" / "text_content.csv").write_text(
        ",id,prompt_en,text_content\n" f'0,002,"A sign.","{ESCAPED_NEWLINE_CELL}"\n')
    prompts_dir = tmp_path / "data" / "prompts"
    import_prompts("oneig", repo, "oneig", prompts_dir)
    # The preset: OneIG's protocol writes text_target: published (the published size check aside).
    monkeypatch.setitem(PROTOCOLS, "oneig", replace_field(PROTOCOLS["oneig"], prompts=5))
    official, _ = write_official_spec(prompts_dir, "oneig")
    assert "text_target: published" in official.read_text()
    sign = load_suite(official).by_id()["oneig-text_rendering-002"]
    # What OneIG's preprocess_string leaves of the raw cell, derived by hand: brackets, quotes, commas
    # and the backslash go, the 'n' stays glued to "one".
    assert normalize_text(target_text_of(sign)) == "OPEN Line onenLine two"
    ocr_reading_the_sign = "OPEN Line one Line two"
    official_row = compare_text(ocr_reading_the_sign, target_text_of(sign), "en")
    assert official_row["edit_distance"] == 1  # text_score.py's ED for a perfect image of this sign
    assert official_row["completion_rate"] == 0.0
    # Outside the preset the parsed target stays the default: the newline is whitespace, the image is perfect.
    parsed = load_suite(write_spec(prompts_dir, "mine", ["oneig"])).by_id()["oneig-text_rendering-002"]
    assert parsed.metadata["text"] == ["OPEN", "Line one\nLine two"]
    assert compare_text(ocr_reading_the_sign, target_text_of(parsed), "en")["edit_distance"] == 0


def test_oneig_questions_and_dependencies_survive_import(tmp_path, monkeypatch, capsys):
    repo = _oneig_repo(tmp_path / "OneIG-Benchmark")
    data = tmp_path / "data"
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    # The published folder layout: the CSV, the ground truth and Q_D are found by themselves.
    assert main(["import-prompts", "--format", "oneig", str(repo), "--suite", "oneig"]) == 0
    out = capsys.readouterr().out
    suite = load_suite(data / "prompts" / "oneig.jsonl")
    anime = suite.by_id()["oneig-anime_stylization-000"].metadata["questions"]
    assert [(q["id"], q["question"], q["parents"]) for q in anime] == [
        (1, "Are there boys?", []), (2, "Are there four boys?", [1]), (3, "Are there girls?", []),
        (4, "Are there five girls?", [3]), (5, "Is this anime?", []),
    ]
    assert all(q["choices"] == ["Yes", "No"] and q["answer"] == "Yes" for q in anime)
    human = suite.by_id()["oneig-portrait-001"].metadata["questions"]
    assert [q["parents"] for q in human] == [[], [1]]  # dict form (not a JSON string) read alike
    assert "questions" not in suite.by_id()["oneig-text_rendering-000"].metadata
    assert "note: 1 question sets matching no prompt" in out and "oneig-anime_stylization-099" in out
    assert "Q_D files of the other language" in out and "anime_zh.json" in out


def test_oneig_self_referencing_question_is_ignored_with_a_note(tmp_path):
    """As published (anime.json item 192: question 19 depends on [19]); alignment_score.py gates nothing on it."""
    repo = _oneig_repo(tmp_path / "repo")
    anime = dict(Q_D_ANIME)
    anime["000"] = {"question": {"1": "Are there boys?", "2": "Are there four boys?"},
                    "dependency": {"1": [0], "2": [2, 1]}}  # 2 lists itself next to its real parent
    (repo / "scripts" / "alignment" / "Q_D" / "anime.json").write_text(json.dumps(anime, indent=4))
    result = import_oneig(repo)
    assert len(result.prompts) == 5  # every prompt of the CSV
    questions = {p.id: p.metadata.get("questions") for p in result.prompts}
    assert [(q["id"], q["parents"]) for q in questions["oneig-anime_stylization-000"]] == [(1, []), (2, [1])]
    assert [q["parents"] for q in questions["oneig-portrait-001"]] == [[], [1]]
    file = repo / "scripts" / "alignment" / "Q_D" / "anime.json"
    # The note names the file, the item's line in it, the item and what was done.
    assert f"{file}:2: item 000: question 2 lists itself as a parent: ignored (it changes no gate)" in result.notes


def test_oneig_unreadable_item_costs_only_its_prompt(tmp_path):
    repo = _oneig_repo(tmp_path / "repo")
    human = {"001": {"question": {"1": "   "}, "dependency": {"1": [0]}}}  # nothing to ask
    (repo / "scripts" / "alignment" / "Q_D" / "human.json").write_text(json.dumps(human))
    result = import_oneig(repo)
    ids = [p.id for p in result.prompts]
    assert "oneig-portrait-001" not in ids and len(ids) == 4
    assert any("human.json:1: item 001: question 1 must be a non-empty string: prompt oneig-portrait-001 left out"
               in note for note in result.notes)


def test_oneig_unknown_parent_is_ignored_with_a_note(tmp_path):
    repo = _oneig_repo(tmp_path / "repo")
    bad = {"000": {"question": {"1": "Are there boys?"}, "dependency": {"1": [3]}}}
    (repo / "scripts" / "alignment" / "Q_D" / "anime.json").write_text(json.dumps(bad))
    result = import_oneig(repo)
    anime = {p.id: p for p in result.prompts}["oneig-anime_stylization-000"]
    assert anime.metadata["questions"][0]["parents"] == []
    assert any("anime.json:1: item 000: question 1 depends on [3], which the item does not have: ignored" in note
               for note in result.notes)


DSG_CSV = (
    "item_id,text,keywords,proposition_id,dependency,category_broad,category_detailed,tuple,question_natural_language\n"
    "coco_1,A man in a red hat rides a bike.,,1,0,entity,whole,entity - whole (man),Is there a man?\n"
    "coco_1,A man in a red hat rides a bike.,,2,0,entity,whole,entity - whole (hat),Is there a hat?\n"
    'coco_1,A man in a red hat rides a bike.,,3,"1,2",relation,spatial,"relation - spatial (man, hat, in)",Is the man in the hat?\n'
    "coco_1,A man in a red hat rides a bike.,,4,2,attribute,color,\"attribute - color (hat, red)\",Is the hat red?\n"
    "drawtext_7,A sign that says 'HELLO'.,sign,1,0,entity,whole,entity - whole (sign),Is there a sign?\n"
)


def test_dsg_importer_keeps_questions_and_dependencies(tmp_path):
    source = tmp_path / "dsg-1k-anns.csv"
    source.write_text(DSG_CSV)
    result = import_dsg(source)
    assert [(p.id, p.category) for p in result.prompts] == [("dsg-coco_1", "coco"), ("dsg-drawtext_7", "drawtext")]
    questions = result.prompts[0].metadata["questions"]
    assert [(q["id"], q["parents"]) for q in questions] == [(1, []), (2, []), (3, [1, 2]), (4, [2])]
    assert questions[3]["question"] == "Is the hat red?" and questions[3]["tuple"] == "attribute - color (hat, red)"
    assert (questions[3]["category"], questions[3]["detail"]) == ("attribute", "color")
    assert result.prompts[1].metadata["keywords"] == "sign" and result.notes == []


# The three irregularities of the published dsg-1k-anns.csv, one item each (lines 2-3, 4-5, 6-7).
DSG_IRREGULAR = DSG_CSV.splitlines()[0] + "\n" + (
    'whoops_5,A penguin in a desert.,,1,0,entity,whole,entity - whole (penguin),Is there a penguin?\n'
    'whoops_5,A penguin in a desert.,,2,"1, right",relation,spatial,"relation - spatial (penguin, desert, in)",'
    'Is the penguin in the desert?\n'
    'vrd_3,A cup on a table.,,1,0,entity,whole,entity - whole (cup),Is there a cup?\n'
    'vrd_3,A cup on a table.,,2,"2,1",relation,spatial,"relation - spatial (cup, table, on)",Is the cup on a table?\n'
    'posescript_9,A person kneeling.,,1,0,entity,whole,entity - whole (person),Is there a person?\n'
    'posescript_9,A person kneeling.,,2,4,attribute,pose,"attribute - pose (person, kneeling)",Is the person kneeling?\n'
)


def test_dsg_reads_irregular_dependencies_as_dsg_does(tmp_path):
    source = tmp_path / "dsg-1k-anns.csv"
    source.write_text(DSG_IRREGULAR)
    result = import_dsg(source)
    by_item = {p.metadata["dsg"]["item_id"]: p.metadata["questions"] for p in result.prompts}
    assert sorted(by_item) == ["posescript_9", "vrd_3", "whoops_5"]  # every item imported
    # "1, right" does not parse as integers: data_utils.py gives the whole item no dependencies.
    assert [q["parents"] for q in by_item["whoops_5"]] == [[], []]
    assert [q["parents"] for q in by_item["vrd_3"]] == [[], [1]]  # the self-reference dropped
    assert [q["parents"] for q in by_item["posescript_9"]] == [[], []]  # the missing parent dropped
    assert result.notes == [
        f"{source}:3: item whoops_5: dependency '1, right' is not a list of integers: the item has no "
        "dependencies (as DSG's data_utils.py reads it)",
        f"{source}:5: item vrd_3: question 2 lists itself as a parent: ignored (it changes no gate)",
        f"{source}:7: item posescript_9: question 2 depends on [4], which the item does not have: ignored",
    ]


def test_dsg_item_nothing_can_be_read_from_is_left_out_alone(tmp_path):
    source = tmp_path / "dsg-1k-anns.csv"
    source.write_text(DSG_CSV.replace("coco_1,A man in a red hat rides a bike.,,4,", "coco_1,A man in a red hat rides a bike.,,four,"))
    result = import_dsg(source)
    assert [p.id for p in result.prompts] == ["dsg-drawtext_7"]
    assert result.notes == [f"{source}:5: item coco_1: proposition_id must be an integer, got 'four': left out"]


def test_tsv_line_beginning_with_a_quote_keeps_its_quotes(tmp_path):
    parti = tmp_path / "PartiPrompts.tsv"
    parti.write_text(
        "Prompt\tCategory\tChallenge\tNote\n"
        '"G I G G L E" painted in thick colorful lines\tIllustrations\tWriting & Symbols\t\n'
        'A sign that says "Please refrain from feeding the animals"\tOutdoor Scenes\tWriting & Symbols\t\n'
        "A cartoon of a cat writing\tIllustrations\tWriting & Symbols\tno quoted text\n"
        'a "quoted" word in a simple prompt\tAbstract\tBasic\t\n'
    )
    result = import_parti(parti)
    prompts = result.prompts
    assert prompts[0].prompt == '"G I G G L E" painted in thick colorful lines'
    assert prompts[0].metadata["text"] == ["G I G G L E"]
    assert prompts[1].metadata["text"] == ["Please refrain from feeding the animals"]
    assert "text" not in prompts[2].metadata and "text" not in prompts[3].metadata  # only Writing & Symbols
    assert result.notes == ["1 Writing & Symbols prompts without quoted text (no text target): parti-0003"]


def test_drawbench_text_targets_and_unused_columns(tmp_path):
    drawbench = tmp_path / "drawbench.csv"
    drawbench.write_text(
        "Prompts,Category,Source\n"
        "A storefront with 'Deep Learning' written on it.,Text,Imagen\n"
        "A sign that says 'Hello World' and it's red.,Text,Imagen\n"
        "A cat's toy.,Text,Imagen\n"
        "A red colored car.,Colors,Imagen\n"
    )
    result = import_drawbench(drawbench)
    assert [p.metadata.get("text") for p in result.prompts] == [["Deep Learning"], ["Hello World"], None, None]
    assert result.notes == [
        f"{drawbench}: column(s) ['Source'] not imported",
        "1 DrawBench Text prompts without quoted text (no text target): drawbench-003",
    ]


def test_flags_only_for_oneig_and_extra_fields_are_errors(tmp_path):
    source = tmp_path / "drawbench.csv"
    source.write_text("Prompts,Category\nA,Colors,extra\nB,Colors,\n")
    with pytest.raises(PromptSuiteError, match="--text-content does not apply to --format drawbench"):
        import_prompts("drawbench", source, "db", tmp_path, text_content=source)
    with pytest.raises(PromptSuiteError, match=f"{source}:2: more fields than the header"):
        import_drawbench(source)
    source.write_text("Prompts,Category\nB,Colors,\n")  # an empty trailing field is harmless
    assert [p.prompt for p in import_drawbench(source).prompts] == ["B"]
