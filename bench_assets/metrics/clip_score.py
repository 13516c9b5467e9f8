"""CLIPScore: how well each image matches its prompt, by an open_clip model.

Per image: ``100 * max(cos(E_image, E_text), 0)`` (Hessel et al. 2021,
"CLIPScore", with w = 100 as in torchmetrics). Note that torchmetrics'
``CLIPScore`` averages the raw ``100 * cos`` over a batch and clamps the
*mean* at zero; here every image is clamped on its own, and the raw cosine is
kept in the ``cosine`` column so that either aggregate can be rebuilt. An
image identical in embedding to its prompt scores exactly 100, not 100.000005
(``base.snap_to_range``).

Options:

- ``model``: an open_clip model name (``ViT-L-14``), or the name of a model
  config registered from ``config_file``.
- ``pretrained``: an open_clip pretrained tag (``openai``; fetched through the
  user's own Hugging Face cache) or a local checkpoint file (``.safetensors``,
  or a ``.bin``/``.pt`` state dict, read with ``torch.load(weights_only=True)``).
- ``config_file``: optional JSON model config; its file stem is the model name
  open_clip registers, so it must equal ``model``.
- ``batch_size``: images per forward pass.

torch and open_clip are imported inside ``load``/``score`` only, so importing
this module (and the registry) is cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

from bench_assets.metrics.base import ImageItem, Metric, TinyScorer, image_text_rows, scoring_precision, snap_to_range
from bench_assets.metrics.tiny.clip import build_tiny_open_clip


class ClipScore(Metric):
    name: ClassVar[str] = "clip_score"
    table: ClassVar[str] = "scores_clip"
    version: ClassVar[str] = "1"
    value_range: ClassVar[tuple[float, float]] = (0.0, 100.0)
    default_options: ClassVar[dict[str, Any]] = {
        "model": "ViT-L-14",
        "pretrained": "openai",
        "batch_size": 32,
        "config_file": None,
    }
    description: ClassVar[str] = (
        "CLIPScore (Hessel et al. 2021): 100 * max(cosine(image, prompt), 0) per image, "
        "with an open_clip model."
    )
    tiny_scorer = TinyScorer(build_tiny_open_clip, "tiny-clip")

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None
        self._device: str | None = None
        self._precision: str | None = None

    # ------------------------------------------------------------------ load
    def load(self, device: str, dtype: str = "fp32") -> None:
        precision = scoring_precision(self.name, dtype, device)
        if self._model is not None and self._device == str(device) and self._precision == precision:
            return

        import open_clip

        model_name = self.options["model"]
        pretrained = self.options["pretrained"]
        config_file = self.options["config_file"]
        if config_file is not None:
            config_path = Path(config_file)
            if not config_path.is_file():
                raise FileNotFoundError(f"metric {self.name}: config_file {config_path} not found")
            if config_path.stem != model_name:
                raise ValueError(
                    f"metric {self.name}: open_clip registers config_file {config_path.name} as model "
                    f"{config_path.stem!r}, but option model is {model_name!r}"
                )
            open_clip.add_model_config(config_path)
        if not pretrained:
            raise ValueError(
                f"metric {self.name}: option pretrained is required (a tag such as 'openai' or a "
                "checkpoint file); a randomly initialised CLIP would score noise"
            )

        # OpenAI checkpoints were trained with QuickGELU, but open_clip's plain
        # configs (ViT-L-14, ...) use GELU and only *warn* on the mismatch. Follow
        # the tag's own setting so that ViT-L-14/openai is the real OpenAI model.
        force_quick_gelu = False
        if not Path(str(pretrained)).is_file():
            tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained) or {}
            force_quick_gelu = bool(tag_cfg.get("quick_gelu", False))

        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name,
            pretrained=str(pretrained),
            precision=precision,
            device=device,
            force_quick_gelu=force_quick_gelu,
            require_pretrained=True,
            weights_only=True,
        )
        model.eval()
        self._model = model
        self._preprocess = preprocess
        self._tokenizer = open_clip.get_tokenizer(model_name)
        self._device = str(device)
        self._precision = precision

    # ----------------------------------------------------------------- score
    def _encode_texts(self, texts: list[str]) -> Any:
        import torch.nn.functional as F

        tokens = self._tokenizer(texts).to(self._device)
        features = self._model.encode_text(tokens).float()
        return F.normalize(features, dim=-1)

    def _encode_images(self, items: Sequence[ImageItem]) -> Any:
        import torch
        import torch.nn.functional as F

        dtype = next(self._model.parameters()).dtype
        pixels = torch.stack([self._preprocess(item.load()) for item in items])
        pixels = pixels.to(self._device, dtype=dtype)
        features = self._model.encode_image(pixels).float()
        return F.normalize(features, dim=-1)

    def score(self, items: Sequence[ImageItem]) -> list[dict[str, Any]]:
        if self._model is None:
            raise RuntimeError(f"metric {self.name}: call load() before score()")
        return image_text_rows(items, self.options["batch_size"], self._encode_images, self._encode_texts,
                               lambda cosine: snap_to_range(100.0 * max(cosine, 0.0), self.value_range))
