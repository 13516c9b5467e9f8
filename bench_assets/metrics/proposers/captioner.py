"""The captioner: the project's VLM (the one VQAScore, TIFA and DSG load) writes a one-sentence caption.

The model loads through ``metrics.vlm.load_vlm`` (``AutoModelForImageTextToText``
on a hub id or a local folder, safetensors only) and is asked LLaVA-1.5's
short-caption instruction (``CAPTION_QUESTION``, the one its training data
uses for COCO captions) as a user turn of the processor's chat template,
with the image padded to a square as LLaVA was trained (``pad_to_square``).
The caption is greedy decoding (no sampling: the same image gives the same
caption), at most ``max_new_tokens`` tokens, batches left-padded.

``propose`` returns the decoded answer as it is (special tokens dropped,
ends trimmed); ``usable_caption`` cleans it and says whether it is a prompt at
all: a random-weight model (the demo's) answers with arbitrary tokens, and an
empty or degenerate caption must not become a prompt's text
(``propose.propose_prompt`` then builds the text from the tagged objects).
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any, ClassVar

from bench_assets.metrics.proposers.base import Proposer
from bench_assets.metrics.vlm import TINY_VLM, load_vlm, pad_to_square

if TYPE_CHECKING:
    from PIL import Image

CAPTION_QUESTION = "Provide a one-sentence caption for the provided image."
MIN_WORDS = 2  # "a dog" is a prompt; one word is not a caption
MIN_LETTER_SHARE = 0.6  # of the non-space characters: less is token soup, not a sentence


def usable_caption(raw: str) -> str:
    """The caption with whitespace collapsed and stray quotes trimmed, or "" when it is no caption.

    No caption: a control, private-use or unassigned character or U+FFFD (a
    byte-level tokenizer decoding a broken sequence), fewer than ``MIN_WORDS``
    words, fewer than ``MIN_LETTER_SHARE`` letters among its characters, or
    one word repeated throughout.
    """
    text = re.sub(r"\s+", " ", raw).strip().strip("\"'`").strip()
    if "\ufffd" in text or any(unicodedata.category(ch).startswith("C") for ch in text):
        return ""
    words = re.findall(r"[^\W\d_]+", text)
    visible = text.replace(" ", "")
    if len(words) < MIN_WORDS or not visible:
        return ""
    if sum(ch.isalpha() for ch in visible) / len(visible) < MIN_LETTER_SHARE:
        return ""
    if len({word.lower() for word in words}) == 1:
        return ""
    return text


class VlmCaptioner(Proposer[str]):
    """A caption per image from the VLM the question-answering metrics load (its answer, uncleaned)."""

    name: ClassVar[str] = "captioner"
    version: ClassVar[str] = "1"
    default_options: ClassVar[dict[str, Any]] = {
        "model": "llava-hf/llava-1.5-7b-hf",
        "question": CAPTION_QUESTION,
        "max_new_tokens": 40,
        "batch_size": 8,
    }
    description: ClassVar[str] = "A one-sentence caption, greedy-decoded by the VLM that VQAScore/TIFA/DSG load."
    tiny_scorer = TINY_VLM
    borrows_from: ClassVar[str] = "tifa"
    borrowed_options: ClassVar[tuple[str, ...]] = ("model",)

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        tokens = self.options["max_new_tokens"]
        if not isinstance(tokens, int) or isinstance(tokens, bool) or not 1 <= tokens <= 256:
            raise ValueError(f"proposer {self.name}: max_new_tokens must be an int in [1, 256], got {tokens!r}")
        self._vlm: Any = None

    def load(self, device: str, dtype: str = "fp32") -> None:
        self._vlm = load_vlm(self.options["model"], device, dtype, metric_name=self.name)

    def _propose(self, images: list["Image.Image"]) -> list[str]:
        size = self.options["batch_size"]
        return [caption for start in range(0, len(images), size) for caption in self._captions(images[start:start + size])]

    def _captions(self, images: list["Image.Image"]) -> list[str]:
        """Greedy captions of one batch, special tokens dropped and ends trimmed."""
        import torch

        vlm = self._vlm
        fill = vlm.padding_colour()
        prompt = vlm.prompt(str(self.options["question"]))
        inputs = vlm._inputs([prompt] * len(images), [pad_to_square(image, fill) for image in images])
        tokenizer = vlm.tokenizer
        with torch.inference_mode():
            out = vlm.model.generate(
                **inputs, max_new_tokens=int(self.options["max_new_tokens"]), do_sample=False,
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            )
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
