"""Human preference: PickScore (Kirstain et al. 2023, "Pick-a-Pic").

Per image, as in the PickScore_v1 model card (huggingface.co/yuvalkirstain/PickScore_v1)::

    image_embs = model.get_image_features(**processor(images=...))
    text_embs  = model.get_text_features(**processor(text=prompt, padding=True,
                                                     truncation=True, max_length=77))
    score = model.logit_scale.exp() * cos(image_embs, text_embs)

PickScore_v1 is a CLIP-H/14 fine-tuned on Pick-a-Pic preferences and stored as
a Hugging Face ``CLIPModel``; its processor is the one of
``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``. Higher means humans would more
likely prefer the image for the prompt. Scores are only comparable between
images of the same prompt in the paper's use (a softmax over candidates); as a
benchmark we report the raw score, whose mean over a suite ranks models
(typical values are around 20). ``|value| <= exp(logit_scale)``, which CLIP
training clamps at 100.

Options:

- ``model``: hub id or local folder of the ``CLIPModel`` (fetched through the
  user's own Hugging Face cache; never at test time).
- ``processor``: hub id or local folder of the ``CLIPProcessor``.
- ``batch_size``: images per forward pass (each distinct prompt of a batch is
  encoded once).

transformers >= 5 returns a ``BaseModelOutputWithPooling`` from
``get_image_features``/``get_text_features`` (the projected embedding is its
``pooler_output``); older versions return the tensor. Both are handled.
torch and transformers are imported inside ``load``/``score`` only.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

from bench_assets.metrics.base import (
    TORCH_DTYPE_NAMES, ImageItem, Metric, TinyScorer, image_text_rows, scoring_precision,
)
from bench_assets.metrics.tiny.judges import build_tiny_preference


def _features(output: Any) -> Any:
    """The projected embedding from a ``get_*_features`` return value (tensor or ModelOutput)."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        raise TypeError(f"unexpected features output {type(output).__name__} (no pooler_output)")
    return pooled


class PreferenceScore(Metric):
    name: ClassVar[str] = "preference"
    table: ClassVar[str] = "scores_preference"
    version: ClassVar[str] = "1"
    value_range: ClassVar[tuple[float, float]] = (-100.0, 100.0)
    default_options: ClassVar[dict[str, Any]] = {
        "model": "yuvalkirstain/PickScore_v1",
        "processor": "laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
        "batch_size": 16,
    }
    description: ClassVar[str] = (
        "PickScore v1 (Pick-a-Pic human preference): exp(logit_scale) * cosine(image, prompt) "
        "with a CLIP-H fine-tuned on human choices."
    )
    tiny_scorer = TinyScorer(build_tiny_preference, "tiny-pickscore")

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        for key in ("model", "processor"):
            if not isinstance(self.options[key], str) or not self.options[key]:
                raise ValueError(f"metric {self.name}: {key} must be a hub id or a folder, got {self.options[key]!r}")
        self._model: Any = None
        self._processor: Any = None
        self._device: str | None = None
        self._dtype: str | None = None

    # ------------------------------------------------------------------ load
    def load(self, device: str, dtype: str = "fp32") -> None:
        torch_dtype = TORCH_DTYPE_NAMES[scoring_precision(self.name, dtype, device)]
        if self._model is not None and self._device == str(device) and self._dtype == torch_dtype:
            return
        import torch
        from transformers import CLIPModel, CLIPProcessor

        model = CLIPModel.from_pretrained(self.options["model"], dtype=getattr(torch, torch_dtype))
        self._model = model.to(device).eval()
        self._processor = CLIPProcessor.from_pretrained(self.options["processor"])
        self._device = str(device)
        self._dtype = torch_dtype

    # ----------------------------------------------------------------- score
    def _encode_texts(self, texts: list[str]) -> Any:
        import torch.nn.functional as F

        inputs = self._processor(
            text=texts, padding=True, truncation=True, max_length=77, return_tensors="pt"
        ).to(self._device)
        features = _features(self._model.get_text_features(**inputs)).float()
        return F.normalize(features, dim=-1)

    def _encode_images(self, items: Sequence[ImageItem]) -> Any:
        import torch.nn.functional as F

        inputs = self._processor(images=[item.load() for item in items], return_tensors="pt").to(self._device)
        pixels = inputs["pixel_values"].to(self._model.dtype)
        features = _features(self._model.get_image_features(pixel_values=pixels)).float()
        return F.normalize(features, dim=-1)

    def score(self, items: Sequence[ImageItem]) -> list[dict[str, Any]]:
        if self._model is None:
            raise RuntimeError(f"metric {self.name}: call load() before score()")
        scale = float(self._model.logit_scale.detach().float().exp())
        return image_text_rows(items, self.options["batch_size"], self._encode_images, self._encode_texts,
                               lambda cosine: scale * cosine)
