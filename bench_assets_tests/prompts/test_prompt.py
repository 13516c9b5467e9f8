import json
from pathlib import Path

import pytest

from bench_assets.prompts.prompt import PromptSuiteError

from bench_assets.prompts.suites import load_suite

REPO = Path(__file__).resolve().parents[2]


def test_default_suite_has_enough_categories_and_prompts():
    suite = load_suite(REPO / "data" / "prompts" / "default.jsonl")
    assert len(suite.categories) >= 4
    for category in suite.categories:
        assert len(suite.in_category(category)) >= 5, category
    text = suite.in_category("text")
    assert all(p.metadata.get("text") for p in text), "text prompts must say what text to render"


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "suite.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = json.dumps({"id": "a-1", "category": "object", "prompt": "a cup"})


@pytest.mark.parametrize(
    "bad, message",
    [
        ("{not json", "invalid JSON"),
        (json.dumps({"id": "a-2", "category": "object"}), "'prompt'"),
        (json.dumps({"id": "../x", "category": "object", "prompt": "p"}), "id"),
        (json.dumps({"id": "a-3", "category": "Bad Cat", "prompt": "p"}), "category"),
        (json.dumps({"id": "a-4", "category": "object", "prompt": "p", "difficulty": "extreme"}), "difficulty"),
        (json.dumps({"id": "a-5", "category": "object", "prompt": "p", "colour": "red"}), "unknown field"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path, [GOOD, "", bad])
    with pytest.raises(PromptSuiteError) as err:
        load_suite(path)
    assert f"{path}:3" in str(err.value)
    assert message in str(err.value)


def test_duplicate_ids_name_both_lines(tmp_path):
    other = json.dumps({"id": "b-1", "category": "object", "prompt": "a mug"})
    path = _write(tmp_path, [GOOD, other, "", GOOD])
    with pytest.raises(PromptSuiteError) as err:
        load_suite(path)
    assert str(err.value) == f"{path}:4: duplicate prompt id 'a-1' (first used on line 1)"


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    bad = json.dumps({"id": "c-1", "category": "object", "prompt": "un caf\u00e9"}, ensure_ascii=False)
    path.write_bytes((GOOD + "\n").encode() * 3 + bad.encode("latin-1") + b"\n")  # line 4 is latin-1
    with pytest.raises(PromptSuiteError) as err:
        load_suite(path)
    assert str(err.value).startswith(f"{path}:4: invalid UTF-8 (byte 0xe9")


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode() + b"\n")
    assert load_suite(path).prompts[0].id == "a-1"


def test_negative_prompt_and_metadata_kept(tmp_path):
    line = json.dumps({"id": "n-1", "category": "human", "prompt": " a chef ", "negative_prompt": "blurry",
                       "difficulty": "hard", "metadata": {"objects": [{"name": "person", "count": 1}]}})
    prompt = load_suite(_write(tmp_path, [line])).prompts[0]
    assert (prompt.prompt, prompt.negative_prompt, prompt.difficulty) == ("a chef", "blurry", "hard")
    assert prompt.metadata["objects"][0]["count"] == 1
