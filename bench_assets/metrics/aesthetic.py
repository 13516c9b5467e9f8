"""Aesthetic score: the LAION aesthetic predictor v2 on CLIP ViT-L/14 image embeddings.

Per image: ``head(E / |E|)``, where ``E`` is the CLIP image embedding and
``head`` the MLP of christophschuhmann/improved-aesthetic-predictor
(``simple_inference.py``, commit 6934dd8)::

    Linear(768, 1024) -> Dropout(0.2) -> Linear(1024, 128) -> Dropout(0.2)
    -> Linear(128, 64) -> Dropout(0.1) -> Linear(64, 16) -> Linear(16, 1)

(no activations: the published ``*-linearMSE`` heads are affine maps; dropout
is off at inference). The weights are the state dict of that
``nn.Sequential`` stored under ``layers.``: keys ``layers.{0,2,4,6,7}.{weight,
bias}``. The head was trained on AVA/SAC/LAION-Logos ratings, so values fall
roughly in (0, 10); higher is prettier. The CLIP model is OpenAI's ViT-L/14
(``ViT-L-14``/``openai`` in open_clip, with its QuickGELU), and the image goes
through open_clip's matching preprocessing (resize 224 bicubic, centre crop,
CLIP mean/std), as in the reference script's ``clip.load("ViT-L/14")``.

Options:

- ``clip_model``, ``clip_pretrained``, ``clip_config_file``: the open_clip
  model, as ``model``/``pretrained``/``config_file`` of ``clip_score`` (a tag
  fetched through the user's own Hugging Face cache, or a local checkpoint).
- ``head``: the head's weights: a file name looked up in ``head_dir``, or a
  path. Default ``sac+logos+ava1-l14-linearMSE.pth``, the head the LAION
  repository recommends. ``.pth``/``.pt``/``.bin`` files are read with
  ``torch.load(weights_only=True)`` (no pickled code runs); ``.safetensors``
  files are read with safetensors. Nothing is downloaded: if the file is
  missing the error says where to get it and where to put it.
- ``head_dir``: where bare head file names are looked up
  (default ``~/.cache/bench_assets/aesthetic``).
- ``batch_size``: images per CLIP forward pass.

The head's input width must equal the CLIP embedding width (768 for ViT-L/14).
torch and open_clip are imported inside ``load``/``score`` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

from bench_assets.metrics.base import ImageItem, Metric, TinyScorer, _file_stamp
from bench_assets.metrics.clip_score import ClipScore
from bench_assets.metrics.tiny.judges import build_tiny_aesthetic

HEAD_SOURCE = "https://github.com/christophschuhmann/improved-aesthetic-predictor"
DEFAULT_HEAD = "sac+logos+ava1-l14-linearMSE.pth"
# nn.Sequential indices of the Linear layers (1, 3 and 5 are Dropout) and the dropout rates.
LINEAR_INDICES = (0, 2, 4, 6, 7)
DROPOUT_AFTER = {0: 0.2, 2: 0.2, 4: 0.1}
_TORCH_LOAD_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


def head_keys() -> list[str]:
    """The state-dict keys of a head, in order."""
    return [f"layers.{i}.{kind}" for i in LINEAR_INDICES for kind in ("weight", "bias")]


def build_head(state_dict: dict[str, Any]) -> Any:
    """The predictor's MLP (as an ``nn.Module`` with a ``layers`` Sequential), weights loaded strictly.

    Layer widths come from the weights, so a head for a smaller CLIP (the
    tiny test models) uses the same code as the real 768-wide one.
    """
    import torch

    missing = [key for key in head_keys() if key not in state_dict]
    extra = sorted(set(state_dict) - set(head_keys()))
    if missing or extra:
        raise ValueError(
            f"aesthetic head: expected the keys {head_keys()} (LAION improved-aesthetic-predictor MLP); "
            f"missing {missing}, unexpected {extra}"
        )
    modules: list[torch.nn.Module] = []
    for index in LINEAR_INDICES:
        out_features, in_features = state_dict[f"layers.{index}.weight"].shape
        while len(modules) < index:  # a Dropout sits between consecutive Linear layers 0..6
            modules.append(torch.nn.Dropout(DROPOUT_AFTER[len(modules) - 1]))
        modules.append(torch.nn.Linear(in_features, out_features))
    if modules[-1].out_features != 1:
        raise ValueError(f"aesthetic head: the last layer must have one output, got {modules[-1].out_features}")

    class AestheticHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.Sequential(*modules)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layers(x)

    head = AestheticHead()
    head.load_state_dict({key: value.float() for key, value in state_dict.items()}, strict=True)
    return head.eval()


def read_head_weights(path: Path) -> dict[str, Any]:
    """A head's state dict from ``.safetensors`` or a ``torch.save``-d state dict (weights only)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if path.suffix in _TORCH_LOAD_SUFFIXES:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"aesthetic head {path}: expected a state dict, got {type(state).__name__}")
        return dict(state)
    raise ValueError(f"aesthetic head {path}: unknown file type; use .safetensors or .pth")


class AestheticScore(Metric):
    name: ClassVar[str] = "aesthetic"
    table: ClassVar[str] = "scores_aesthetic"
    version: ClassVar[str] = "1"
    value_range: ClassVar[tuple[float, float]] = (0.0, 10.0)
    default_options: ClassVar[dict[str, Any]] = {
        "clip_model": "ViT-L-14",
        "clip_pretrained": "openai",
        "clip_config_file": None,
        "head": DEFAULT_HEAD,
        "head_dir": "~/.cache/bench_assets/aesthetic",
        "batch_size": 32,
    }
    description: ClassVar[str] = (
        "LAION aesthetic predictor v2 (improved-aesthetic-predictor): an MLP on the normalised "
        "CLIP ViT-L/14 image embedding, roughly 0-10."
    )
    tiny_scorer = TinyScorer(build_tiny_aesthetic, "tiny-aesthetic")

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        if not isinstance(self.options["head"], str) or not self.options["head"]:
            raise ValueError(f"metric {self.name}: head must be a file name or path, got {self.options['head']!r}")
        # The CLIP image encoder, loaded exactly as clip_score loads it.
        self._clip = ClipScore(
            {
                "model": self.options["clip_model"],
                "pretrained": self.options["clip_pretrained"],
                "config_file": self.options["clip_config_file"],
                "batch_size": self.options["batch_size"],
            }
        )
        self._head: Any = None
        self._device: str | None = None

    def head_path(self) -> Path:
        """Where the head's weights are read from: ``head`` itself if it names a path, else in ``head_dir``."""
        head = self.options["head"]
        if Path(head).name != head:  # has a directory part: a path
            return Path(head).expanduser()
        return Path(self.options["head_dir"]).expanduser() / head

    @property
    def scorer_id(self) -> str:
        """As the base class; a bare head name also records the resolved file's path, size and mtime."""
        base = super().scorer_id
        if Path(self.options["head"]).name != self.options["head"]:
            return base  # a path: the base class already stamps it
        path = self.head_path()
        return f"{base},head_file={path}{_file_stamp(str(path))}"

    # ------------------------------------------------------------------ load
    def load(self, device: str, dtype: str = "fp32") -> None:
        path = self.head_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"metric {self.name}: aesthetic head weights not found at {path}. Download "
                f"{DEFAULT_HEAD} from {HEAD_SOURCE} (a file in the repository's root) and save it "
                f"there, or set option 'head' to the file's path. Nothing is downloaded automatically."
            )
        self._clip.load(device, dtype)
        if self._head is None or self._device != str(device):
            head = build_head(read_head_weights(path))
            width = getattr(self._clip._model.visual, "output_dim", None)
            in_features = head.layers[0].in_features
            if width is not None and width != in_features:
                raise ValueError(
                    f"metric {self.name}: head {path.name} takes {in_features}-wide embeddings but "
                    f"CLIP {self.options['clip_model']} makes {width}-wide ones"
                )
            self._head = head.to(device)
            self._device = str(device)

    # ----------------------------------------------------------------- score
    def score(self, items: Sequence[ImageItem]) -> list[dict[str, Any]]:
        if self._head is None:
            raise RuntimeError(f"metric {self.name}: call load() before score()")
        import torch

        rows: list[dict[str, Any]] = []
        items = list(items)
        step = self.options["batch_size"]
        with torch.inference_mode():
            for start in range(0, len(items), step):
                chunk = items[start : start + step]
                embeddings = self._clip._encode_images(chunk)  # L2-normalised, float32
                values = self._head(embeddings.to(self._device)).squeeze(-1).cpu().tolist()
                for item, value in zip(chunk, values):
                    rows.append({"prompt_id": item.prompt.id, "image_index": item.index, "value": value})
        return rows
