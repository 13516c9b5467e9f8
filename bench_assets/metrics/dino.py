"""DINO features: semantic diversity of a prompt's images, and likeness to a reference image.

Embeddings are DINOv2 image features (Oquab et al. 2023) through transformers:
``AutoModel`` (``Dinov2Model``) with the model's own ``AutoImageProcessor``
(for ``facebook/dinov2-*``: bicubic resize of the shortest edge to 256,
centre crop 224, ImageNet mean/std), and the embedding of an image is the
CLS token of the final (layer-normed) hidden states, ``last_hidden_state[:, 0]``.

Per prompt:

- ``value`` = ``1 - mean cosine`` over all unordered pairs of the prompt's
  images (a semantic counterpart of LPIPS / MS-SSIM diversity; higher = more
  diverse; in [0, 2]). ``mean_cosine`` keeps the raw mean. ``value``,
  ``dino_i`` and ``clip_i`` are snapped to the end of their range when they
  are float round-off away from it (``base.snap_to_range``): identical images
  score exactly 0, never -6.6e-08.
- Where the prompt's metadata has ``reference_image`` (a path to an image
  file), also ``dino_i`` and ``clip_i``: the mean over the prompt's images of
  the cosine to the reference image's embedding, by DINOv2 and by an open_clip
  image encoder. These are DreamBooth's DINO and CLIP-I subject-fidelity
  metrics (Ruiz et al. 2023, sec. 4.1: average pairwise cosine between
  generated and real images' embeddings), with one real image. DreamBooth
  used DINO v1 ViT-S/16; the default here is DINOv2-base, so the numbers are
  not comparable with the paper's table.

A prompt with fewer than two images has no pairs: with a reference image its
row has ``value`` None (and still ``dino_i``/``clip_i``); without one it
yields no row.

Reference paths: absolute, or relative to ``reference_root`` (default: the
parent of the data directory, i.e. the repository root), else to the current
working directory. A reference named but not found is an error, not a
silently missing column. Note that the runner's cache key covers the
generated images, not the reference file: after replacing a reference image
under the same path, re-score with a new ``reference_root`` or delete the rows.

Options:

- ``model``: DINOv2 hub id (``facebook/dinov2-base``, from the user's own
  Hugging Face cache) or a local folder saved with ``save_pretrained``.
- ``batch_size``: images per forward pass (DINOv2 and CLIP).
- ``reference_root``: folder that relative ``reference_image`` paths resolve
  against (None: the data directory's parent).
- ``clip_model``, ``clip_pretrained``, ``clip_config_file``: the open_clip
  image encoder for ``clip_i``, as ``ClipScore``'s ``model``/``pretrained``/
  ``config_file`` (and loaded by it). It is loaded only when a prompt with a
  reference image is scored.

torch, transformers and open_clip are imported inside ``load``/``score`` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

from bench_assets.core.paths import DataPaths
from bench_assets.metrics.base import (
    ImageItem,
    Metric,
    chunks,
    group_by_prompt,
    mean_over_pairs,
    scoring_precision,
    snap_to_range,
    TinyScorer,
)
from bench_assets.metrics.clip_score import ClipScore
from bench_assets.metrics.tiny.dino import build_tiny_dino

REFERENCE_KEY = "reference_image"
COSINE_RANGE = (-1.0, 1.0)



def _load_rgb(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")


class DinoFeatures(Metric):
    name: ClassVar[str] = "dino"
    table: ClassVar[str] = "scores_dino"
    version: ClassVar[str] = "1"
    unit = "prompt"
    value_range: ClassVar[tuple[float, float]] = (0.0, 2.0)
    default_options: ClassVar[dict[str, Any]] = {
        "model": "facebook/dinov2-base",
        "batch_size": 32,
        "reference_root": None,
        "clip_model": "ViT-L-14",
        "clip_pretrained": "openai",
        "clip_config_file": None,
    }
    description: ClassVar[str] = (
        "1 - mean pairwise cosine of DINOv2 CLS embeddings of a prompt's images (semantic diversity); "
        "with a reference image also DINO-I and CLIP-I (DreamBooth)."
    )
    tiny_scorer = TinyScorer(build_tiny_dino, "tiny-dino")

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        if not isinstance(self.options["model"], str) or not self.options["model"]:
            raise ValueError(f"metric {self.name}: model must be a hub id or a folder, got {self.options['model']!r}")
        root = self.options["reference_root"]
        if root is not None and not isinstance(root, str):
            raise ValueError(f"metric {self.name}: reference_root must be a path string or None, got {root!r}")
        self._model: Any = None
        self._processor: Any = None
        self._clip: Any = None  # a loaded ClipScore, created at first need
        self._device: str | None = None
        self._dtype: str = "fp32"
        self._references: dict[str, tuple[Any, Any]] = {}

    # ------------------------------------------------------------------ load
    def load(self, device: str, dtype: str = "fp32") -> None:
        precision = scoring_precision(self.name, dtype, device)
        if self._model is not None and self._device == str(device) and self._dtype == precision:
            return

        import torch
        from transformers import AutoImageProcessor, AutoModel

        torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        model = AutoModel.from_pretrained(self.options["model"], dtype=torch_dtype)
        model.eval().requires_grad_(False)
        self._model = model.to(device)
        self._processor = AutoImageProcessor.from_pretrained(self.options["model"])
        self._device = str(device)
        self._dtype = precision
        self._clip = None
        self._references = {}

    def _clip_scorer(self) -> Any:
        """The open_clip image encoder, loaded at first need (through ClipScore's loading code)."""
        if self._clip is None:
            clip = ClipScore(
                {
                    "model": self.options["clip_model"],
                    "pretrained": self.options["clip_pretrained"],
                    "config_file": self.options["clip_config_file"],
                    "batch_size": self.options["batch_size"],
                }
            )
            clip.load(self._device, self._dtype)
            self._clip = clip
        return self._clip

    # ------------------------------------------------------------ embeddings
    def _dino_embed(self, images: list[Any]) -> Any:
        """Unit-norm DINOv2 CLS embeddings (float32), ``batch_size`` images per forward."""
        import torch
        import torch.nn.functional as F

        dtype = next(self._model.parameters()).dtype
        out = []
        for chunk in chunks(images, self.options["batch_size"]):
            pixels = self._processor(images=list(chunk), return_tensors="pt")["pixel_values"]
            hidden = self._model(pixel_values=pixels.to(self._device, dtype=dtype)).last_hidden_state
            out.append(F.normalize(hidden[:, 0].float(), dim=-1))
        return torch.cat(out)

    def _clip_embed(self, images: list[Any]) -> Any:
        """Unit-norm open_clip image embeddings (float32), ``batch_size`` images per forward."""
        import torch
        import torch.nn.functional as F

        clip = self._clip_scorer()
        dtype = next(clip._model.parameters()).dtype
        out = []
        for chunk in chunks(images, self.options["batch_size"]):
            pixels = torch.stack([clip._preprocess(image) for image in chunk]).to(self._device, dtype=dtype)
            out.append(F.normalize(clip._model.encode_image(pixels).float(), dim=-1))
        return torch.cat(out)

    # ------------------------------------------------------------ references
    def resolve_reference(self, value: Any) -> Path:
        """The file a prompt's ``reference_image`` names (see the module docstring)."""
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"metric {self.name}: {REFERENCE_KEY} must be a non-empty path string, got {value!r}")
        path = Path(value).expanduser()
        if path.is_absolute():
            candidates = [path]
        else:
            root = self.options["reference_root"]
            if root is None:
                base = DataPaths.from_env().root.parent
            else:
                base = Path(root).expanduser()
            candidates = [base / path, Path.cwd() / path]
        for candidate in candidates:
            if candidate.is_file():
                return candidate.resolve()
        raise FileNotFoundError(
            f"metric {self.name}: {REFERENCE_KEY} {value!r} not found (looked in {[str(c) for c in candidates]})"
        )

    def _reference_embeddings(self, path: Path) -> tuple[Any, Any]:
        key = str(path)
        if key not in self._references:
            image = _load_rgb(path)
            self._references[key] = (self._dino_embed([image])[0], self._clip_embed([image])[0])
        return self._references[key]

    # ----------------------------------------------------------------- score
    def score(self, items: Sequence[ImageItem]) -> list[dict[str, Any]]:
        if self._model is None:
            raise RuntimeError(f"metric {self.name}: call load() before score()")
        import torch

        by_prompt = group_by_prompt(items)

        # Which prompts give a row, and where their reference image is.
        scored: list[tuple[str, list[ImageItem], Path | None]] = []
        for prompt_id, members in by_prompt.items():  # members come in image-index order
            raw = members[0].prompt.metadata.get(REFERENCE_KEY)
            reference = self.resolve_reference(raw) if raw else None
            if len(members) >= 2 or reference is not None:
                scored.append((prompt_id, members, reference))
        if not scored:
            return []

        rows: list[dict[str, Any]] = []
        with torch.inference_mode():
            # Each image is decoded once; the runner's batch bounds how many at a time.
            images = [item.load() for _, members, _ in scored for item in members]
            dino = self._dino_embed(images)
            # Rows of ``images`` that belong to prompts with a reference, in order.
            offsets, position = [], 0
            for _, members, _ in scored:
                offsets.append(position)
                position += len(members)
            with_reference = [
                offset + k
                for offset, (_, members, reference) in zip(offsets, scored)
                if reference is not None
                for k in range(len(members))
            ]
            clip_at: dict[int, Any] = {}
            if with_reference:
                clip = self._clip_embed([images[k] for k in with_reference])
                clip_at = dict(zip(with_reference, clip))

            for start, (prompt_id, members, reference) in zip(offsets, scored):
                embeddings = dino[start : start + len(members)].double()
                row: dict[str, Any] = {"prompt_id": prompt_id, "image_index": None, "n_images": len(members)}
                if len(members) >= 2:
                    mean_cosine, n_pairs = mean_over_pairs(
                        len(members), self.options["batch_size"], embeddings.device,
                        lambda a, b: (embeddings[a] * embeddings[b]).sum(dim=-1))
                    row.update(value=snap_to_range(1.0 - mean_cosine, self.value_range), mean_cosine=mean_cosine,
                               n_pairs=n_pairs)
                else:
                    row.update(value=None, mean_cosine=None, n_pairs=0)
                if reference is not None:
                    ref_dino, ref_clip = self._reference_embeddings(reference)
                    clip_members = torch.stack([clip_at[start + k] for k in range(len(members))]).double()
                    row["dino_i"] = snap_to_range((embeddings @ ref_dino.double()).mean().item(), COSINE_RANGE)
                    row["clip_i"] = snap_to_range((clip_members @ ref_clip.double()).mean().item(), COSINE_RANGE)
                    row[REFERENCE_KEY] = str(members[0].prompt.metadata[REFERENCE_KEY])
                rows.append(row)
        return rows
