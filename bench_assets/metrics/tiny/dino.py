"""Tiny scorers for ``DinoFeatures`` and ``MsssimDiversity``, built in code: no download.

``build_tiny_dino`` writes a 2-layer DINOv2 (``Dinov2Model``, random weights)
with ``save_pretrained`` next to the DINOv2 image processor config
(``BitImageProcessor``, the class ``facebook/dinov2-*`` use), so that
``AutoModel.from_pretrained(folder)`` and ``AutoImageProcessor.from_pretrained(folder)``
load it offline through exactly the path a hub id takes. It also writes the
tiny open_clip model of ``tiny.clip`` for the ``clip_i`` column.

``tiny_msssim_options`` returns ``MsssimDiversity`` options for small images
(MS-SSIM itself has no weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench_assets.metrics.tiny.clip import tiny_clip_options

# A 2-layer ViT with 8-px patches on 32-px crops (16 patches + CLS).
TINY_DINO_IMAGE_SIZE = 32
TINY_DINO_CONFIG: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "mlp_ratio": 4,
    "patch_size": 8,
    "image_size": TINY_DINO_IMAGE_SIZE,
}
# facebook/dinov2-base's preprocessor: resize the shortest edge to 256
# (bicubic), centre-crop 224, ImageNet mean/std. Scaled down by the same
# ratio so that the crop is the model's image_size.
TINY_DINO_PROCESSOR: dict[str, Any] = {
    "do_resize": True,
    "size": {"shortest_edge": 36},
    "resample": 3,  # PIL bicubic
    "do_center_crop": True,
    "crop_size": {"height": TINY_DINO_IMAGE_SIZE, "width": TINY_DINO_IMAGE_SIZE},
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "do_convert_rgb": True,
}


def build_tiny_dinov2(out_dir: Path, seed: int = 0) -> Path:
    """Write a tiny random-weight DINOv2 + its image processor to ``out_dir``; return the folder.

    Transformers initialises layer norms to 1/0 and biases to 0; every tensor
    is perturbed (seeded) so that the embedding depends on all weights and on
    the image. The global torch RNG is left untouched.
    """
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Dinov2Model(Dinov2Config(**TINY_DINO_CONFIG)).eval()
        with torch.no_grad():
            for param in model.parameters():
                param.add_(0.05 * torch.randn_like(param))
    model.save_pretrained(out_dir)
    BitImageProcessor(**TINY_DINO_PROCESSOR).save_pretrained(out_dir)
    return out_dir


def build_tiny_dino(out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Build the tiny DINOv2 (``out_dir/dinov2``) and tiny open_clip (``out_dir/clip``); return DinoFeatures options."""
    out_dir = Path(out_dir)
    dino = build_tiny_dinov2(out_dir / "dinov2", seed=seed)
    return {"model": str(dino), **tiny_clip_options(out_dir / "clip", seed=seed)}


def tiny_msssim_options() -> dict[str, Any]:
    """MsssimDiversity options for the tiny demo images: the smallest valid size.

    torchmetrics' MS-SSIM with 5 scales and an 11-px kernel requires
    ``size // 16 > 10``, i.e. at least 176 px (the default is 256).
    """
    return {"size": 176}
