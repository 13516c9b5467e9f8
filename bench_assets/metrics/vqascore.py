"""VQAScore: how strongly a VLM answers "Yes" to "does this image show the prompt?".

Per image (Lin et al. 2024, "Evaluating Text-to-Visual Generation with
Image-to-Text Generation", Eq. 1 and Sec. 3)::

    question = 'Does this figure show "{prompt}"? Please answer yes or no.'

Two modes (option ``mode``), one table of scorers (``MODES``):

- ``t2v_metrics`` (default): the score as the authors' reference
  implementation computes it (github.com/linzhiqiu/t2v_metrics,
  ``t2v_metrics/models/vqascore_models/llava_model.py``, LLaVA-1.5 models with
  ``conversation: chat`` and ``image_aspect_ratio: pad``):

  - prompt = system message + ``" USER: <image>\\n{question} ASSISTANT: "``,
    system message ``T2V_SYSTEM_MESSAGE`` (their ``SYSTEM_MSG``), built here
    through the processor's chat template with a system turn;
  - answer = ``"Yes" + "</s>"`` (the tokenizer's end token): tokens a_1..a_k
    (for LLaMA: ``"▁Yes"``, ``"</s>"``);
  - the image is padded to a square with the image processor's mean colour
    (LLaVA's ``expand2square``) before the processor's resize and crop;
  - value = exp(-mean_i CE_i) = exp((1/k) Σ_i log P(a_i | image, prompt, a_<i)),
    teacher-forced, the mean over the answer tokens (their
    ``CrossEntropyLoss(reduction='mean')`` over the unmasked labels).

- ``first_token``: the single-token form of Eq. 1, P("Yes" | image,
  question) = softmax of the next-token logits after the chat template's
  generation prompt, at the id of "Yes" (``"▁Yes"`` after ``"ASSISTANT:"``); no
  system message, no padding (the processor resizes and centre-crops).

Nothing is sampled. Range [0, 1]. Numbers comparable with a published
VQAScore table need its backbone: ``t2v_metrics``' default VQAScore model is
CLIP-FlanT5-XXL (not in transformers); with ``model:
llava-hf/llava-1.5-7b-hf`` (the transformers port of ``liuhaotian/llava-v1.5-7b``)
the ``t2v_metrics`` mode matches their ``llava-v1.5-7b`` scorer. Remaining
differences: transformers' LLaVA port vs their own LLaVA code (the same
weights), left padding of batches instead of right padding (masked, so the
same values up to float rounding), and their bf16 autocast on CUDA (here:
the ``dtype`` the runner asks for).

Options:

- ``model``: hub id or local folder (``from_pretrained``; safetensors only).
- ``mode``: ``"t2v_metrics"`` or ``"first_token"`` (see above).
- ``question``: the question template, ``{prompt}`` is replaced by the prompt.
- ``answer``: the answer ("Yes"); in ``first_token`` mode it must be one token.
- ``batch_size``: images per forward pass (rows are left-padded).

Extra columns: ``question`` (the exact question asked) and ``mode``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

from bench_assets.metrics.base import ImageItem, Metric, chunks
from bench_assets.metrics.vlm import TINY_VLM
from bench_assets.metrics.vlm import answer_log_probs, load_vlm, pad_to_square, yes_probabilities

if TYPE_CHECKING:
    from PIL import Image

    from bench_assets.metrics.vlm import Vlm

VQASCORE_QUESTION = 'Does this figure show "{prompt}"? Please answer yes or no.'
# t2v_metrics' SYSTEM_MSG (t2v_metrics/constants.py), LLaVA-1.5's training system prompt.
T2V_SYSTEM_MESSAGE = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


def t2v_metrics_scores(vlm: "Vlm", images: Sequence["Image.Image"], questions: Sequence[str], answer: str) -> list[float]:
    """exp(-mean CE) of ``answer`` + end token after the system + user turn, images padded to squares."""
    fill = vlm.padding_colour()

    padded = [pad_to_square(image, fill) for image in images]
    prompts = [vlm.prompt(q, system=T2V_SYSTEM_MESSAGE) for q in questions]
    full_answer = answer + (vlm.tokenizer.eos_token or "")
    log_probs = answer_log_probs(vlm, padded, prompts, [full_answer] * len(prompts))
    return [math.exp(sum(lp) / len(lp)) for lp in log_probs]


def first_token_scores(vlm: "Vlm", images: Sequence["Image.Image"], questions: Sequence[str], answer: str) -> list[float]:
    """P(answer token | image, question) from the next-token logits (one token)."""
    return yes_probabilities(vlm, images, questions, answer)


MODES: dict[str, Callable[..., list[float]]] = {
    "t2v_metrics": t2v_metrics_scores,
    "first_token": first_token_scores,
}


class VqaScore(Metric):
    name: ClassVar[str] = "vqascore"
    table: ClassVar[str] = "scores_vqascore"
    version: ClassVar[str] = "2"
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    default_options: ClassVar[dict[str, Any]] = {
        "model": "llava-hf/llava-1.5-7b-hf",
        "mode": "t2v_metrics",
        "question": VQASCORE_QUESTION,
        "answer": "Yes",
        "batch_size": 8,
    }
    description: ClassVar[str] = (
        'VQAScore (Lin et al. 2024) as t2v_metrics computes it: exp(-mean cross-entropy) of the answer "Yes" '
        "+ end token to 'Does this figure show \"{prompt}\"? Please answer yes or no.' (system message, "
        "square padding); or P(\"Yes\") of the first token (mode first_token)."
    )
    tiny_scorer = TINY_VLM
    value_label = "P(yes)"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        if "{prompt}" not in str(self.options["question"]):
            raise ValueError(f"metric {self.name}: option question must contain '{{prompt}}'")
        if self.options["mode"] not in MODES:
            raise ValueError(f"metric {self.name}: mode must be one of {sorted(MODES)}, got {self.options['mode']!r}")
        self._vlm: Any = None

    def load(self, device: str, dtype: str = "fp32") -> None:
        if self._vlm is not None and self._vlm.device == str(device):
            return
        self._vlm = load_vlm(self.options["model"], device, dtype, metric_name=self.name)

    def question_for(self, prompt: str) -> str:
        return str(self.options["question"]).replace("{prompt}", prompt)

    def score(self, items: Sequence[ImageItem]) -> list[dict[str, Any]]:
        if self._vlm is None:
            raise RuntimeError(f"metric {self.name}: call load() before score()")
        import torch

        scorer = MODES[self.options["mode"]]
        rows: list[dict[str, Any]] = []
        with torch.inference_mode():
            for chunk in chunks(list(items), self.options["batch_size"]):
                questions = [self.question_for(item.prompt.prompt) for item in chunk]
                values = scorer(self._vlm, [item.load() for item in chunk], questions, self.options["answer"])
                for item, question, value in zip(chunk, questions, values):
                    rows.append(
                        {
                            "prompt_id": item.prompt.id,
                            "image_index": item.index,
                            "value": float(value),
                            "question": question,
                            "mode": self.options["mode"],
                        }
                    )
        return rows
