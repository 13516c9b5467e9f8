"""VQAScore: the probability that a VLM answers "Yes" to "does this image show the prompt?".

Per image (Lin et al. 2024, "Evaluating Text-to-Visual Generation with
Image-to-Text Generation", Eq. 1 and Sec. 3; question wording from their
``t2v_metrics`` code)::

    question = 'Does this figure show "{prompt}"? Please answer yes or no.'
    value    = P("Yes" | image, question)

read from the logits of the next token after the prompt: softmax over the
whole vocabulary at that position, taken at the id of the answer token
("Yes" as it tokenises after the chat template's generation prompt, e.g.
``"▁Yes"`` after ``"ASSISTANT:"``). Nothing is sampled. Range [0, 1].

Default model: ``llava-hf/llava-1.5-7b-hf``. The paper evaluates LLaVA-1.5 as a
VQAScore backbone (its best model, CLIP-FlanT5, is not in transformers);
``llava-hf/llava-1.5-7b-hf`` is the widely used transformers port, loads with
``AutoModelForImageTextToText``/``AutoProcessor``, and ships its chat template
and processor config in the repo, so it works offline once cached. Any other
image-text-to-text model with a chat template (LLaVA-OneVision, Qwen2-VL, ...)
can be named instead, as long as its answer "Yes" is one token.

Options:

- ``model``: hub id or local folder (``from_pretrained``; safetensors only).
- ``question``: the question template, ``{prompt}`` is replaced by the prompt.
- ``answer``: the answer token whose probability is the score ("Yes").
- ``batch_size``: images per forward pass (rows are left-padded).

Extra column: ``question`` (the exact question asked).
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

from bench_assets.metrics.base import ImageItem, Metric, chunks

VQASCORE_QUESTION = 'Does this figure show "{prompt}"? Please answer yes or no.'


class VqaScore(Metric):
    name: ClassVar[str] = "vqascore"
    table: ClassVar[str] = "scores_vqascore"
    version: ClassVar[str] = "1"
    unit = "image"
    higher_is_better: ClassVar[bool] = True
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    default_options: ClassVar[dict[str, Any]] = {
        "model": "llava-hf/llava-1.5-7b-hf",
        "question": VQASCORE_QUESTION,
        "answer": "Yes",
        "batch_size": 8,
    }
    description: ClassVar[str] = (
        'VQAScore (Lin et al. 2024): P("Yes" | image, \'Does this figure show "{prompt}"? Please answer '
        "yes or no.') from a vision-language model's next-token logits."
    )

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        if "{prompt}" not in str(self.options["question"]):
            raise ValueError(f"metric {self.name}: option question must contain '{{prompt}}'")
        self._vlm: Any = None

    def load(self, device: str, dtype: str = "fp32") -> None:
        from bench_assets.metrics.vlm import load_vlm

        if self._vlm is not None and self._vlm.device == str(device):
            return
        self._vlm = load_vlm(self.options["model"], device, dtype, metric_name=self.name)

    def question_for(self, prompt: str) -> str:
        return str(self.options["question"]).replace("{prompt}", prompt)

    def score(self, items: Sequence[ImageItem]) -> list[dict[str, Any]]:
        if self._vlm is None:
            raise RuntimeError(f"metric {self.name}: call load() before score()")
        import torch

        from bench_assets.metrics.vlm import yes_probabilities

        rows: list[dict[str, Any]] = []
        with torch.inference_mode():
            for chunk in chunks(list(items), self.options["batch_size"]):
                questions = [self.question_for(item.prompt.prompt) for item in chunk]
                probs = yes_probabilities(self._vlm, [item.load() for item in chunk], questions, self.options["answer"])
                for item, question, prob in zip(chunk, questions, probs):
                    rows.append(
                        {
                            "prompt_id": item.prompt.id,
                            "image_index": item.index,
                            "value": float(prob),
                            "question": question,
                        }
                    )
        return rows
