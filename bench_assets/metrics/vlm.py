"""Shared vision-language-model plumbing for VQAScore, TIFA and DSG.

Both metrics ask a VLM a question about an image and read the answer from the
model's *token probabilities*, never from sampled text:

- ``yes_probabilities``: P(answer token | image, question) = softmax of the
  logits of the next token after the prompt, at the id of the answer token
  ("Yes") — the VQAScore definition (Lin et al. 2024, "Evaluating
  Text-to-Visual Generation with Image-to-Text Generation", Eq. 1).
- ``choice_log_likelihoods``: for a multiple-choice question, the summed
  log-probability of each choice's tokens conditioned on image + question
  (teacher forcing); the predicted answer is the arg-max choice.
- ``answer_log_probs``: the log-probability of every token of an answer after
  a full prompt (teacher forcing), the building block of both above and of
  ``t2v_metrics``' VQAScore: exp(mean log P) of "Yes" + the end token, i.e.
  exp(-mean cross-entropy) over the answer tokens.

The model is loaded with ``AutoModelForImageTextToText`` and ``AutoProcessor``
(``from_pretrained`` on a hub id through the user's own cache, or on a local
folder). The question becomes a user turn of the processor's chat template
with one image, followed by the generation prompt (for LLaVA-1.5:
``"USER: <image>\\n{question} ASSISTANT:"``). Batches are left-padded, so the
last position of every row is the last prompt/choice token.

torch and transformers are imported inside functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from bench_assets.metrics.base import TinyScorer, scoring_precision
from bench_assets.metrics.tiny.vlm import build_tiny_vlm

if TYPE_CHECKING:
    from PIL import Image


# The demo's and the tests' VLM: one tiny LLaVA that VQAScore, TIFA and DSG share (built once).
TINY_VLM = TinyScorer(build_tiny_vlm, "tiny-vlm")

# Used when a processor ships no chat template: LLaVA-1.5's conversation format.
FALLBACK_TEMPLATE = "USER: <image>\n{question} ASSISTANT:"


def pad_to_square(image: "Image.Image", fill: tuple[int, ...]) -> "Image.Image":
    """LLaVA's ``expand2square``: the image centred on a square of ``fill`` (its side the longer side).

    LLaVA-1.5 was trained on images padded this way (``image_aspect_ratio: pad``),
    and ``t2v_metrics`` pads every image with the processor's mean colour before
    its CLIP preprocessing; without it a non-square image would be centre-cropped.
    """
    from PIL import Image

    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    square = Image.new(image.mode, (side, side), fill)
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square



@dataclass
class Vlm:
    """A loaded VLM: model, processor and where it runs."""

    model: Any
    processor: Any
    device: str
    precision: str

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    # ------------------------------------------------------------- prompts
    def prompt(self, question: str, system: str | None = None) -> str:
        """The full text prompt (with the image placeholder) that asks ``question``, after ``system`` if given."""
        processor = self.processor
        if getattr(processor, "chat_template", None):
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
            if system:
                messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
            return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        image_token = getattr(processor, "image_token", "<image>")
        text = FALLBACK_TEMPLATE.replace("<image>", image_token).format(question=question)
        return f"{system} {text}" if system else text

    def padding_colour(self) -> tuple[int, ...]:
        """The image processor's mean as 0-255 RGB: the colour ``pad_to_square`` fills with (as LLaVA does)."""
        mean = getattr(self.processor.image_processor, "image_mean", None) or (0.5, 0.5, 0.5)
        return tuple(int(x * 255) for x in mean)

    def continuation_ids(self, prompt: str, answer: str) -> list[int]:
        """Token ids that ``answer`` adds after ``prompt`` (a space is inserted unless the prompt ends in one).

        The ids are read off the tokenisation of the whole string, so they are
        exactly the tokens the model would see (e.g. ``"▁Yes"`` after
        ``"ASSISTANT:"`` for a Llama tokenizer).
        """
        sep = "" if not prompt or prompt[-1].isspace() else " "
        tok = self.tokenizer
        prompt_ids = tok(prompt)["input_ids"]
        full_ids = tok(prompt + sep + answer)["input_ids"]
        if full_ids[: len(prompt_ids)] != prompt_ids or len(full_ids) == len(prompt_ids):
            raise ValueError(f"answer {answer!r} does not tokenise as a continuation of the prompt")
        return list(full_ids[len(prompt_ids) :])

    def answer_token_id(self, prompt: str, answer: str) -> int:
        ids = self.continuation_ids(prompt, answer)
        if len(ids) != 1:
            raise ValueError(f"answer {answer!r} is {len(ids)} tokens after the prompt; VQAScore needs one")
        return ids[0]

    # ------------------------------------------------------------- forward
    def _inputs(self, texts: list[str], images: list["Image.Image"]) -> Any:
        tok = self.tokenizer
        old_side = tok.padding_side
        tok.padding_side = "left"
        try:
            inputs = self.processor(text=texts, images=images, return_tensors="pt", padding=True)
        finally:
            tok.padding_side = old_side
        inputs = inputs.to(self.device)
        dtype = next(self.model.parameters()).dtype
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
        return inputs

    def last_logits(
        self, texts: list[str], images: list["Image.Image"], keep: int = 1, tails: Sequence[list[int]] | None = None
    ) -> Any:
        """Logits (float32) of the last ``keep`` positions of each left-padded row: (batch, keep, vocab).

        ``tails`` (optional): the token ids each row must end with (checked, so
        that the positions read are the tokens meant).
        """
        inputs = self._inputs(texts, images)
        if tails is not None:
            ids = inputs["input_ids"].tolist()
            for row, tail in zip(ids, tails):
                if row[len(row) - len(tail) :] != list(tail):
                    raise ValueError("processor tokenised the answer differently from the tokenizer")
        out = self.model(**inputs, logits_to_keep=keep)
        return out.logits[:, -keep:, :].float()


def load_vlm(model_id: str, device: str, dtype: str = "fp32", metric_name: str = "vlm") -> Vlm:
    precision = scoring_precision(metric_name, dtype, device)
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    model = AutoModelForImageTextToText.from_pretrained(model_id, dtype=torch_dtype, use_safetensors=True)
    model.to(device)
    model.eval()
    processor = AutoProcessor.from_pretrained(model_id)
    return Vlm(model=model, processor=processor, device=str(device), precision=precision)


def yes_probabilities(
    vlm: Vlm, images: Sequence["Image.Image"], questions: Sequence[str], answer: str = "Yes"
) -> list[float]:
    """P(answer | image_i, question_i) for each pair, in one forward pass."""
    import torch

    prompts = [vlm.prompt(q) for q in questions]
    ids = torch.tensor([vlm.answer_token_id(p, answer) for p in prompts])
    logits = vlm.last_logits(prompts, list(images), keep=1)[:, -1, :]
    probs = torch.softmax(logits, dim=-1)
    return probs.gather(1, ids.to(probs.device)[:, None])[:, 0].cpu().tolist()


def answer_log_probs(
    vlm: Vlm, images: Sequence["Image.Image"], prompts: Sequence[str], answers: Sequence[str]
) -> list[list[float]]:
    """log P(token | image_i, prompt_i, earlier answer tokens) for every token of ``answers[i]``, one forward.

    ``prompts`` are full prompts (``Vlm.prompt``); each answer follows its
    prompt after a space (unless the prompt ends in one). With left padding the
    answer's ``k_i`` tokens are the last of the row and are predicted by the
    ``k_i`` positions before them.
    """
    import torch

    conts = [vlm.continuation_ids(p, a) for p, a in zip(prompts, answers)]
    texts = [p + ("" if p[-1].isspace() else " ") + a for p, a in zip(prompts, answers)]
    keep = max(len(c) for c in conts) + 1
    logits = vlm.last_logits(texts, list(images), keep=keep, tails=conts)
    logprobs = torch.log_softmax(logits, dim=-1)
    out = []
    for row, cont in enumerate(conts):
        k = len(cont)
        # positions keep-1-k .. keep-2 predict the k answer tokens at keep-k .. keep-1
        pred = logprobs[row, keep - 1 - k : keep - 1, :]
        target = torch.tensor(cont, device=pred.device)
        out.append(pred.gather(1, target[:, None])[:, 0].cpu().tolist())
    return out


def choice_log_likelihoods(
    vlm: Vlm, images: Sequence["Image.Image"], questions: Sequence[str], choices: Sequence[str]
) -> list[float]:
    """Summed log P(choice tokens | image_i, question_i) for each triple, in one forward pass.

    Row i scores ``choices[i]`` as the answer to ``questions[i]`` about ``images[i]``.
    """
    prompts = [vlm.prompt(q) for q in questions]
    return [float(sum(lp)) for lp in answer_log_probs(vlm, images, prompts, choices)]
