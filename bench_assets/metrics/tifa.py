"""TIFA-style question answering: the fraction of questions about the prompt a VLM answers correctly.

After TIFA (Hu et al. 2023, "TIFA: Accurate and Interpretable Text-to-Image
Faithfulness Evaluation with Question Answering"): value = (number of
questions answered correctly) / (number of questions), per image. TIFA has an
LLM write the questions; here they come from the prompt's structured
metadata, or are given explicitly:

- ``questions: [{"question", "choices", "answer"}]`` in the metadata: used as
  given (and then nothing is derived). Questions with ``parents`` (the OneIG
  and DSG-1k importers write them) are scored here ungated; the ``dsg``
  metric applies their dependencies.
- otherwise, derived (choices in brackets, answer first):
  each object -> "Is there a {name}?" [Yes, No];
  count > 1 -> "How many {name} are there?" [count-1 (if >= 1), count, count+1, count+2];
  colour -> "What color is the {name}?" [GenEval's ten colours, + the asked one if missing];
  each relation -> "Is the {subject} {relation} the {object}?" [Yes, No];
  text -> 'Does the image contain the text "{text}"?' [Yes, No].

Answering (TIFA answers multiple-choice questions; this is the
likelihood form of it, never free generation): the VLM scores every choice
as the continuation of the prompt ``question_template`` (default: the
question followed by LLaVA-1.5's short-answer instruction "Answer the
question using a single word or phrase."), by the summed log-probability of
the choice's tokens given image + question; the predicted answer is the
arg-max (first on ties). Correct = predicted equals the answer, ignoring case.
Shared plumbing in ``bench_assets.metrics.vlm``; default model as VQAScore
(``llava-hf/llava-1.5-7b-hf``).

Row: ``value``, ``n_questions``, and ``answers``: JSON list of
``{question, choices, answer, predicted, correct, loglik}`` (``loglik``: one
summed log-likelihood per choice). Prompts without usable metadata are
skipped (no row).

Per-question rows in DuckDB::

    SELECT s.model, s.prompt_id, s.image_index, a.question, a.answer, a.predicted, a.correct
    FROM scores_tifa AS s,
         unnest(from_json(s.answers,
             '[{"question": "VARCHAR", "choices": ["VARCHAR"], "answer": "VARCHAR",
                "predicted": "VARCHAR", "correct": "BOOLEAN", "loglik": ["DOUBLE"]}]')) AS q(a);

and e.g. accuracy per question type:
``... GROUP BY split_part(a.question, ' ', 1)``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Sequence

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.base import ExtraColumn, ImageItem, Metric, chunks
from bench_assets.metrics.vlm import TINY_VLM
from bench_assets.metrics.vlm import choice_log_likelihoods, load_vlm

COLOURS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white"]
YES_NO = ["Yes", "No"]
DEFAULT_TEMPLATE = "{question}\nAnswer the question using a single word or phrase."

ANSWERS_DUCKDB_TYPE = (
    '[{"question": "VARCHAR", "choices": ["VARCHAR"], "answer": "VARCHAR", '
    '"predicted": "VARCHAR", "correct": "BOOLEAN", "loglik": ["DOUBLE"]}]'
)


def _article(name: str) -> str:
    return "an" if name[:1].lower() in "aeiou" else "a"


def tifa_questions(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """Questions ``{"question", "choices", "answer"}`` for a prompt's metadata (empty if none usable)."""
    given = metadata.get("questions")
    if given:
        out = []
        for q in given:
            if not isinstance(q, dict) or not isinstance(q.get("question"), str):
                continue
            choices = [str(c) for c in q.get("choices") or YES_NO]
            answer = str(q.get("answer", "yes"))
            if answer.lower() not in [c.lower() for c in choices]:
                choices.append(answer)
            out.append({"question": q["question"], "choices": choices, "answer": answer})
        return out
    out = []
    for obj in metadata.get("objects") or []:
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"].strip():
            continue
        name = obj["name"].strip()
        out.append({"question": f"Is there {_article(name)} {name}?", "choices": YES_NO, "answer": "Yes"})
        count = obj.get("count", 1)
        if isinstance(count, int) and not isinstance(count, bool) and count > 1:
            choices = [str(n) for n in range(max(1, count - 1), count + 3)]
            out.append({"question": f"How many {name} are there?", "choices": choices, "answer": str(count)})
        colour = obj.get("colour", obj.get("color"))
        if isinstance(colour, str) and colour.strip():
            choices = COLOURS + ([colour] if colour not in COLOURS else [])
            out.append({"question": f"What color is the {name}?", "choices": choices, "answer": colour})
    for rel in metadata.get("relations") or []:
        if isinstance(rel, dict) and all(isinstance(rel.get(k), str) for k in ("subject", "relation", "object")):
            question = f"Is the {rel['subject']} {rel['relation']} the {rel['object']}?"
            out.append({"question": question, "choices": YES_NO, "answer": "Yes"})
    text = metadata.get("text")
    if isinstance(text, str) and text.strip():
        out.append({"question": f'Does the image contain the text "{text}"?', "choices": YES_NO, "answer": "Yes"})
    return out


class VlmQuestionMetric(Metric):
    """A metric that asks a VLM each image's questions (TIFA, DSG): one loader, one answering loop.

    Subclasses say which questions a prompt has (:meth:`questions`) and what
    one image's answers come to (:meth:`summarize`: its value and extras).
    """

    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    default_options: ClassVar[dict[str, Any]] = {
        "model": "llava-hf/llava-1.5-7b-hf",
        "question_template": DEFAULT_TEMPLATE,
        "batch_size": 16,
    }
    tiny_scorer = TINY_VLM

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        if "{question}" not in str(self.options["question_template"]):
            raise ValueError(f"metric {self.name}: question_template must contain '{{question}}'")
        self._vlm: Any = None

    def questions(self, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def applies_to(self, prompt: Prompt) -> bool:
        return bool(self.questions(prompt.metadata))

    def load(self, device: str, dtype: str = "fp32") -> None:
        if self._vlm is not None and self._vlm.device == str(device):
            return
        self._vlm = load_vlm(self.options["model"], device, dtype, metric_name=self.name)

    def answer(self, items: Sequence[ImageItem]) -> tuple[list[tuple[ImageItem, list[dict]]], list[list[dict]]]:
        """((item, its questions) for items that have any, the VLM's answers to each)."""
        if self._vlm is None:
            raise RuntimeError(f"metric {self.name}: call load() before score()")
        scored = [(item, self.questions(item.prompt.metadata)) for item in items]
        scored = [(item, qs) for item, qs in scored if qs]
        template = str(self.options["question_template"])
        return scored, answer_questions(self._vlm, scored, template, self.options["batch_size"])

    def summarize(self, questions: list[dict[str, Any]], answers: list[dict[str, Any]]) -> dict[str, Any]:
        """One image's row beyond its keys: ``value`` and what explains it."""
        raise NotImplementedError

    def score(self, items: Sequence[ImageItem]) -> list[dict[str, Any]]:
        scored, answered = self.answer(items)
        return [{"prompt_id": item.prompt.id, "image_index": item.index, **self.summarize(questions, answers)}
                for (item, questions), answers in zip(scored, answered)]


class TifaScore(VlmQuestionMetric):
    name: ClassVar[str] = "tifa"
    table: ClassVar[str] = "scores_tifa"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "TIFA-style QA (Hu et al. 2023): fraction of metadata-derived multiple-choice questions a VLM "
        "answers correctly, choosing the most likely choice."
    )
    uses_metadata: ClassVar[tuple[str, ...]] = ("objects",)
    extra_columns = (ExtraColumn("answers", format="answers"),)

    def questions(self, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        return tifa_questions(metadata)

    def summarize(self, questions: list[dict[str, Any]], answers: list[dict[str, Any]]) -> dict[str, Any]:
        return {"value": sum(a["correct"] for a in answers) / len(answers), "n_questions": len(answers),
                "answers": json.dumps(answers)}


def answer_questions(
    vlm: Any, scored: Sequence[tuple[ImageItem, list[dict[str, Any]]]], template: str, batch_size: int
) -> list[list[dict[str, Any]]]:
    """Answer every question of every image by the likelihood of its choices; one answer list per image.

    Each answer: ``{question, choices, answer, predicted, correct, loglik}``
    (``predicted``: the arg-max choice, the first on ties; ``loglik``: one
    summed log-likelihood per choice). Every (image, question, choice) triple
    goes through the VLM ``batch_size`` at a time, so several images share a
    forward and only the images of the current forward are in memory.
    """
    import torch


    triples = [(n, qi, c) for n, (_, qs) in enumerate(scored) for qi, q in enumerate(qs) for c in q["choices"]]
    logliks: list[float] = []
    images: dict[int, Any] = {}
    with torch.inference_mode():
        for chunk in chunks(triples, batch_size):
            images = {n: images[n] if n in images else scored[n][0].load() for n in dict.fromkeys(n for n, _, _ in chunk)}
            logliks += choice_log_likelihoods(
                vlm,
                [images[n] for n, _, _ in chunk],
                [template.replace("{question}", scored[n][1][qi]["question"]) for n, qi, _ in chunk],
                [c for _, _, c in chunk],
            )
    out, start = [], 0
    for _, questions in scored:
        answers = []
        for q in questions:
            ll = logliks[start : start + len(q["choices"])]
            start += len(q["choices"])
            predicted = q["choices"][max(range(len(ll)), key=lambda i: (ll[i], -i))]
            answers.append(
                {
                    "question": q["question"],
                    "choices": list(q["choices"]),
                    "answer": q["answer"],
                    "predicted": predicted,
                    "correct": predicted.strip().lower() == q["answer"].strip().lower(),
                    "loglik": ll,
                }
            )
        out.append(answers)
    return out
