"""DsgScore: the Davidsonian gate as OneIG's alignment script applies it, on hand answers and on a tiny LLaVA.

Offline: the tiny random-weight LLaVA of ``bench_assets.metrics.tiny.vlm`` saved
to tmp_path and loaded through the metric's real loading code; real PNG files.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import json
from copy import deepcopy

import numpy as np
import pytest
from PIL import Image

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.tiny.vlm import build_tiny_vlm
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.dsg import ANSWERS_DUCKDB_TYPE, DsgScore, apply_gate, gated_questions

# OneIG Q_D anime "000" as the importer writes it, plus a grandchild (6 depends on 2, 2 on 1).
QUESTIONS = [
    {"id": 1, "question": "Are there boys?", "parents": []},
    {"id": 2, "question": "Are there four boys?", "parents": [1]},
    {"id": 3, "question": "Are there girls?", "parents": []},
    {"id": 4, "question": "Are there five girls?", "parents": [3]},
    {"id": 5, "question": "Is this anime?", "parents": []},
    {"id": 6, "question": "Are the boys in the background?", "parents": [2, 3]},
]


def _oneig_alignment_tile(questions: list[dict], answers: dict[int, float]) -> float:
    """OneIG's alignment_score() for one tile, transcribed: gate on the raw scores, then the mean."""
    score = {q["id"]: answers[q["id"]] for q in questions}
    dependencies = {q["id"]: q["parents"] or [0] for q in questions}
    filter_score = deepcopy(score)
    for qid, parent_ids in dependencies.items():
        if any(parent != 0 and score[parent] == 0 for parent in parent_ids):
            filter_score[qid] = 0
    return sum(filter_score.values()) / len(filter_score)


def test_a_gated_question_whose_parent_failed_scores_zero() -> None:
    yes = {1: False, 2: True, 3: True, 4: True, 5: False, 6: True}
    gated = apply_gate(QUESTIONS, yes)
    by_id = {g["id"]: g for g in gated}
    assert by_id[2] == {"id": 2, "question": "Are there four boys?", "parents": [1], "yes": True, "gated": True,
                        "passed": False}  # answered yes, parent 1 said no: 0
    assert by_id[4]["passed"] and not by_id[4]["gated"]
    assert not by_id[5]["passed"] and not by_id[5]["gated"]  # its own "no", no parent
    # OneIG gates on the parents' own answers: 2 said yes, so 6 is not gated by its grandparent 1.
    assert by_id[6]["passed"] and not by_id[6]["gated"]
    value = sum(g["passed"] for g in gated) / len(gated)
    assert value == pytest.approx(_oneig_alignment_tile(QUESTIONS, {k: float(v) for k, v in yes.items()}))
    assert value == pytest.approx(3 / 6)


def test_only_questions_with_dependencies_apply() -> None:
    tifa_style = {"questions": [{"question": "What animal?", "choices": ["cat", "dog"], "answer": "cat"}]}
    assert gated_questions(tifa_style) == []
    assert not DsgScore().applies_to(Prompt("a", "anime", "x", metadata=tifa_style))
    assert DsgScore().applies_to(Prompt("b", "anime", "x", metadata={"questions": QUESTIONS}))
    with pytest.raises(ValueError, match="question"):
        DsgScore({"question_template": "no placeholder"})
    assert DsgScore.default_options["question_template"] == "{question}. Please answer 'Yes' or 'No' only."


def test_leaderboard_aggregate_is_oneigs_mean_over_prompts_of_tile_means() -> None:
    import polars as pl

    frame = pl.DataFrame({
        "model": ["m"] * 6, "category": ["anime"] * 6,
        "prompt_id": ["a", "a", "a", "a", "b", "b"],  # prompt b lost two of its four images
        "value": [1.0, 0.5, 0.5, 0.0, 0.75, 1.0],
    })
    summary = DsgScore.summary_columns()
    per_prompt = (frame.with_columns(*[e.cast(pl.Float64).alias(n) for n, e in summary.items()])
                  .group_by("prompt_id").agg(*[pl.col(n).sum() for n in summary]))
    totals = {n: np.array([per_prompt[n].sum()]) for n in summary}
    oneig = np.mean([np.mean([1.0, 0.5, 0.5, 0.0]), np.mean([0.75, 1.0])])
    assert float(DsgScore.combine(totals)[0]) == pytest.approx(oneig)
    assert oneig != pytest.approx(frame["value"].mean())  # the plain image mean would differ here


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm"), seed=6)  # a seed whose answers vary


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[ImageItem]:
    folder = tmp_path_factory.mktemp("dsg_images")
    rng = np.random.default_rng(5)
    prompts = [
        Prompt("oneig-anime_stylization-000", "anime_stylization", "Four boys and five girls",
               metadata={"questions": QUESTIONS}),
        Prompt("plain", "anime_stylization", "a cat"),  # no questions: skipped
    ]
    out = []
    for prompt in prompts:
        for k in range(3):
            path = folder / f"{prompt.id}_i{k}.png"
            Image.fromarray(rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)).save(path)
            out.append(ImageItem("tiny", prompt.category, prompt, k, k, path, f"sha-{prompt.id}-{k}"))
    return out


def _rows(options: dict, items: list[ImageItem]) -> list[dict]:
    metric = DsgScore(options)
    metric.load("cpu")
    return metric.score(items)


def test_scores_on_a_tiny_vlm(tiny_vlm: dict, items: list[ImageItem]) -> None:
    """Yes = loglik(Yes) >= loglik(No) with OneIG's question wording; the gate and the mean on top."""
    import duckdb
    import torch
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    rows = _rows({**tiny_vlm, "batch_size": 5}, items)
    assert [(r["prompt_id"], r["image_index"]) for r in rows] == [("oneig-anime_stylization-000", k) for k in range(3)]
    for row in rows:
        answers = json.loads(row["answers"])
        assert [a["id"] for a in answers] == [q["id"] for q in QUESTIONS]
        for a in answers:
            assert a["yes"] == (a["loglik"][0] >= a["loglik"][1])
        assert answers == [{**g, "loglik": a["loglik"]} for g, a in
                           zip(apply_gate(QUESTIONS, {a["id"]: a["yes"] for a in answers}), answers)]
        assert row["value"] == pytest.approx(_oneig_alignment_tile(QUESTIONS, {a["id"]: float(a["yes"]) for a in answers}))
        assert (row["n_questions"], row["n_passed"]) == (6, sum(a["passed"] for a in answers))
    gated_yes = [a for r in rows for a in json.loads(r["answers"]) if a["yes"] and a["gated"]]
    assert gated_yes and not any(a["passed"] for a in gated_yes), "the sample must exercise the gate end to end"
    # The loglik of "Yes" for question 1 on image 0, by hand with OneIG's wording and LLaVA-1.5's turn format.
    model = LlavaForConditionalGeneration.from_pretrained(tiny_vlm["model"]).eval()
    processor = LlavaProcessor.from_pretrained(tiny_vlm["model"])
    prompt = "USER: <image>\nAre there boys?. Please answer 'Yes' or 'No' only. ASSISTANT:"
    (yes_id,) = processor.tokenizer(" Yes", add_special_tokens=False)["input_ids"]
    inputs = processor(text=prompt, images=Image.open(items[0].key).convert("RGB"), return_tensors="pt")
    with torch.no_grad():
        expected = float(torch.log_softmax(model(**inputs).logits[0, -1].double(), dim=-1)[yes_id])
    assert json.loads(rows[0]["answers"])[0]["loglik"][0] == pytest.approx(expected, abs=1e-5)
    # The drill-down the report shows: every question's answer and gate, from SQL.
    con = duckdb.connect()
    con.execute("CREATE TABLE scores_dsg (prompt_id VARCHAR, image_index INTEGER, value DOUBLE, answers VARCHAR)")
    con.executemany("INSERT INTO scores_dsg VALUES (?, ?, ?, ?)",
                    [(r["prompt_id"], r["image_index"], r["value"], r["answers"]) for r in rows])
    means = con.sql("SELECT s.image_index, avg(a.passed::INT) FROM scores_dsg AS s, "
                    f"unnest(from_json(s.answers, '{ANSWERS_DUCKDB_TYPE}')) AS q(a) GROUP BY 1 ORDER BY 1").fetchall()
    assert [m for _, m in means] == pytest.approx([r["value"] for r in rows])
