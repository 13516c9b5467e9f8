"""Dependency-gated question answering: Davidsonian Scene Graph (DSG) scoring, and OneIG-Bench's alignment.

After DSG (Cho et al. 2024, "Davidsonian Scene Graph: Improving Reliability
in Fine-grained Evaluation for Text-to-Image Generation", github.com/j-min/DSG)
as OneIG-Bench's alignment script applies it (github.com/OneIG-Bench/OneIG-Benchmark,
``scripts/alignment/alignment_score.py``):

- Every prompt carries yes/no questions, each with the ids of the questions
  it depends on (its parents): metadata ``questions`` = ``[{"id", "question",
  "parents": [ids]}, ...]``, written by the OneIG importer from
  ``scripts/alignment/Q_D/*.json`` and by the DSG-1k importer from
  ``dsg-1k-anns.csv`` (see :mod:`bench_assets.prompts.importers`).
- The VLM answers every question of the image (``yes``).
- The gate: a question with a parent answered "no" scores 0, whatever its own
  answer. As in OneIG's script, the gate reads the parents' *own* answers,
  not their gated scores (a grandparent's "no" gates a child only through a
  parent that also answered "no").
- Per image: ``value`` = (questions passed) / (questions); OneIG's per-tile score.
- Leaderboard: OneIG's averaging, the mean over prompts of the mean over a
  prompt's images ("grid tiles" in OneIG, one image each here), so a prompt
  with a failed image counts as much as the others (``summary_columns``).
  With every image present this equals the plain mean over images.

Why a metric of its own rather than a mode of ``tifa``: its number means
something else (a gated fraction, not TIFA's accuracy), it comes only from
question sets with dependencies, and it needs its own aggregate; as a mode,
``scores_tifa.value`` would change meaning with an option. Both read
``questions``: TIFA scores the same questions ungated, so the two columns
side by side show what the gate costs.

Answering: each question goes to the VLM as OneIG asks it,
``"{question}. Please answer 'Yes' or 'No' only."`` (option
``question_template``), and the answer is "Yes" when the VLM's log-likelihood
of "Yes" is at least its log-likelihood of "No" (TIFA's likelihood form,
:func:`bench_assets.metrics.tifa.answer_questions`). Differences from OneIG:
OneIG asks Qwen2.5-VL-7B-Instruct and counts a greedy reply of exactly "Yes";
here the default VLM is LLaVA-1.5-7B (``model``: any image-text-to-text model,
e.g. ``Qwen/Qwen2.5-VL-7B-Instruct`` if your transformers loads it through
``AutoModelForImageTextToText``), and the comparison of two answers' likelihoods
replaces generation (the arg-max over all tokens of a greedy reply could be
neither word). DSG's paper answers with PaLI; its DSG-1k numbers are not
comparable with either VLM.

Row: ``value``, ``n_questions``, ``n_passed``, and ``answers``: a JSON list of
``{id, question, parents, yes, gated, passed, loglik}`` (``yes``: the VLM's
own answer; ``gated``: a parent answered no; ``passed`` = yes and not gated;
``loglik``: [log-likelihood of "Yes", of "No"]). In DuckDB::

    SELECT s.model, s.prompt_id, s.image_index, a.id, a.question, a.yes, a.gated, a.passed
    FROM scores_dsg AS s,
         unnest(from_json(s.answers, '[{"id": "INTEGER", "question": "VARCHAR", "parents": ["INTEGER"],
             "yes": "BOOLEAN", "gated": "BOOLEAN", "passed": "BOOLEAN", "loglik": ["DOUBLE"]}]')) AS q(a);
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Sequence

from bench_assets.metrics.tifa import VlmQuestionMetric

ONEIG_TEMPLATE = "{question}. Please answer 'Yes' or 'No' only."
ANSWERS_DUCKDB_TYPE = (
    '[{"id": "INTEGER", "question": "VARCHAR", "parents": ["INTEGER"], "yes": "BOOLEAN", '
    '"gated": "BOOLEAN", "passed": "BOOLEAN", "loglik": ["DOUBLE"]}]'
)
_PROMPT_KEYS = ("model", "category", "prompt_id")


def gated_questions(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The prompt's questions that carry a dependency list (``id`` + ``parents``), as yes/no questions."""
    out = []
    for q in metadata.get("questions") or []:
        if not isinstance(q, dict) or not isinstance(q.get("question"), str) or not isinstance(q.get("parents"), list):
            continue
        if not isinstance(q.get("id"), int):
            continue
        out.append({"id": q["id"], "question": q["question"], "parents": list(q["parents"]),
                    "choices": ["Yes", "No"], "answer": "Yes"})
    return out


def apply_gate(questions: Sequence[dict[str, Any]], yes: dict[int, bool]) -> list[dict[str, Any]]:
    """DSG's rule on one image: a question whose parent answered no is gated to 0.

    ``yes``: question id -> the VLM's own answer. Parents are read from these
    raw answers (OneIG's ``score``, not its ``filter_score``); a parent id with
    no question is ignored, as OneIG's script skips it.
    """
    out = []
    for q in questions:
        gated = any(parent in yes and not yes[parent] for parent in q["parents"])
        out.append({"id": q["id"], "question": q["question"], "parents": list(q["parents"]),
                    "yes": bool(yes[q["id"]]), "gated": gated, "passed": bool(yes[q["id"]]) and not gated})
    return out


class DsgScore(VlmQuestionMetric):
    name: ClassVar[str] = "dsg"
    table: ClassVar[str] = "scores_dsg"
    version: ClassVar[str] = "1"
    default_options: ClassVar[dict[str, Any]] = {
        **VlmQuestionMetric.default_options,
        "question_template": ONEIG_TEMPLATE,
    }
    description: ClassVar[str] = (
        "Dependency-gated yes/no questions (DSG; OneIG-Bench alignment): fraction of a prompt's questions "
        "answered yes whose parent questions were also answered yes; mean over images, then prompts."
    )
    uses_metadata: ClassVar[tuple[str, ...]] = ("questions",)

    def questions(self, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        return gated_questions(metadata)

    @classmethod
    def summary_columns(cls) -> dict[str, Any]:
        """Each image weighted 1 / (images of its prompt): every prompt counts once, as in OneIG."""
        import polars as pl

        share = 1.0 / pl.len().over(*_PROMPT_KEYS).cast(pl.Float64)
        return {"value": pl.col("value") * share, "n": share}

    def summarize(self, questions: list[dict[str, Any]], answers: list[dict[str, Any]]) -> dict[str, Any]:
        yes = {q["id"]: a["predicted"] == "Yes" for q, a in zip(questions, answers)}
        gated = apply_gate(questions, yes)
        for entry, answer in zip(gated, answers):
            entry["loglik"] = answer["loglik"]
        passed = sum(entry["passed"] for entry in gated)
        return {"value": passed / len(gated), "n_questions": len(gated), "n_passed": passed,
                "answers": json.dumps(gated)}
