"""TifaScore: questions from metadata, choice log-likelihoods recomputed by hand on a tiny LLaVA.

Offline: the tiny random-weight LLaVA of ``bench_assets.metrics.tiny.vlm`` saved
to tmp_path and loaded through the metric's real loading code; real PNG files.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import json

import numpy as np
import pytest
from PIL import Image

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.tiny.vlm import build_tiny_vlm
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.tifa import ANSWERS_DUCKDB_TYPE, COLOURS, TifaScore, tifa_questions

PROMPTS = [
    Prompt(
        id="col-1",
        category="colour",
        prompt="two red apples left of a cup",
        metadata={
            "objects": [{"name": "apple", "count": 2, "colour": "red"}, {"name": "cup", "count": 1}],
            "relations": [{"subject": "apple", "relation": "left of", "object": "cup"}],
        },
    ),
    Prompt(id="txt-1", category="text", prompt='a sign "OPEN"', metadata={"text": "OPEN"}),
    Prompt(
        id="q-1",
        category="object",
        prompt="a cat",
        metadata={"questions": [{"question": "What animal is this?", "choices": ["cat", "dog"], "answer": "cat"}]},
    ),
    Prompt(id="none-1", category="anime", prompt="an anime girl"),
]


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm"), seed=1)


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[ImageItem]:
    folder = tmp_path_factory.mktemp("tifa_images")
    rng = np.random.default_rng(4)
    out = []
    for prompt in PROMPTS:
        for k in range(2):
            path = folder / f"{prompt.id}_i{k}.png"
            Image.fromarray(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)).save(path)
            out.append(ImageItem("tiny", prompt.category, prompt, k, k, path, f"sha-{prompt.id}-{k}"))
    return out


def test_questions_from_metadata() -> None:
    qs = tifa_questions(PROMPTS[0].metadata)
    assert [q["question"] for q in qs] == [
        "Is there an apple?",
        "How many apple are there?",
        "What color is the apple?",
        "Is there a cup?",
        "Is the apple left of the cup?",
    ]
    assert qs[1]["choices"] == ["1", "2", "3", "4"] and qs[1]["answer"] == "2"
    assert qs[2]["choices"] == COLOURS and qs[2]["answer"] == "red"
    assert tifa_questions(PROMPTS[1].metadata) == [
        {"question": 'Does the image contain the text "OPEN"?', "choices": ["Yes", "No"], "answer": "Yes"}
    ]
    assert tifa_questions(PROMPTS[2].metadata)[0]["choices"] == ["cat", "dog"]
    assert tifa_questions({}) == []
    assert not TifaScore().applies_to(PROMPTS[3]) and TifaScore().applies_to(PROMPTS[1])
    with pytest.raises(ValueError, match="question"):
        TifaScore({"question_template": "no placeholder"})


def _rows(options: dict, items: list[ImageItem]) -> list[dict]:
    metric = TifaScore(options)
    metric.load("cpu")
    return metric.score(items)


def test_log_likelihoods_by_hand(tiny_vlm: dict, items: list[ImageItem]) -> None:
    """One image, the colour question: sum of log-softmax over the choice tokens, unbatched."""
    import torch
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    rows = _rows({**tiny_vlm, "batch_size": 7}, items)
    assert [(r["prompt_id"], r["image_index"]) for r in rows] == [
        (i.prompt.id, i.index) for i in items if i.prompt.id != "none-1"
    ]
    model = LlavaForConditionalGeneration.from_pretrained(tiny_vlm["model"]).eval()
    processor = LlavaProcessor.from_pretrained(tiny_vlm["model"])
    tok = processor.tokenizer
    item, row = items[1], rows[1]
    answers = json.loads(row["answers"])
    q = answers[2]
    assert q["question"] == "What color is the apple?"
    image = Image.open(item.key).convert("RGB")
    prompt = (
        "USER: <image>\nWhat color is the apple?\nAnswer the question using a single word or phrase. ASSISTANT:"
    )
    expected = []
    with torch.no_grad():
        for choice in q["choices"]:
            n_choice = len(tok(prompt + " " + choice)["input_ids"]) - len(tok(prompt)["input_ids"])
            inputs = processor(text=prompt + " " + choice, images=image, return_tensors="pt")
            ids = inputs["input_ids"][0]
            logp = torch.log_softmax(model(**inputs).logits[0].double(), dim=-1)
            total = sum(float(logp[pos - 1, ids[pos]]) for pos in range(len(ids) - n_choice, len(ids)))
            expected.append(total)
    assert q["loglik"] == pytest.approx(expected, abs=1e-5)
    assert q["predicted"] == q["choices"][int(np.argmax(expected))]
    for row in rows:
        answers = json.loads(row["answers"])
        assert row["n_questions"] == len(answers)
        assert row["value"] == pytest.approx(sum(a["correct"] for a in answers) / len(answers))
        for a in answers:
            assert a["correct"] == (a["predicted"].lower() == a["answer"].lower())


def test_batch_invariance_and_sql_unnest(tiny_vlm: dict, items: list[ImageItem]) -> None:
    import duckdb

    one = _rows({**tiny_vlm, "batch_size": 1}, items)
    many = _rows({**tiny_vlm, "batch_size": 16}, items)
    for a, b in zip(one, many):
        assert a["value"] == b["value"]
        for qa, qb in zip(json.loads(a["answers"]), json.loads(b["answers"])):
            assert qa["predicted"] == qb["predicted"]
            assert qa["loglik"] == pytest.approx(qb["loglik"], abs=1e-5)
    con = duckdb.connect()
    con.execute("CREATE TABLE scores_tifa (prompt_id VARCHAR, image_index INTEGER, value DOUBLE, answers VARCHAR)")
    con.executemany(
        "INSERT INTO scores_tifa VALUES (?, ?, ?, ?)",
        [(r["prompt_id"], r["image_index"], r["value"], r["answers"]) for r in many],
    )
    exploded = con.sql(
        "SELECT s.prompt_id, s.image_index, a.question, a.predicted, a.correct "
        f"FROM scores_tifa AS s, unnest(from_json(s.answers, '{ANSWERS_DUCKDB_TYPE}')) AS q(a)"
    ).fetchall()
    assert len(exploded) == sum(r["n_questions"] for r in many)
    per_row = {}
    for prompt_id, index, _, _, correct in exploded:
        per_row.setdefault((prompt_id, index), []).append(correct)
    for r in many:
        assert np.mean(per_row[(r["prompt_id"], r["image_index"])]) == pytest.approx(r["value"])
