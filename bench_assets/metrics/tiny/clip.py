"""Tiny open_clip scorers and LPIPS options, built in code: no download, a few MB.

``build_tiny_open_clip`` writes a real open_clip model config (JSON) and
random weights (``.safetensors``) and returns the ``ClipScore`` options that
load them through exactly the path a real checkpoint file takes
(``tiny_clip_options``: the same as ``clip_*`` options, for GenEval, DINO and
the aesthetic head).
``tiny_lpips_options`` returns ``LpipsDiversity`` options that need no
torchvision download (random backbone; the LPIPS calibration layers ship in
the lpips wheel).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TINY_CLIP_NAME = "bench-tiny-clip"

# open_clip model config: a 2-layer ViT-16 at 64 px and a 2-layer text
# transformer with CLIP's real tokenizer (vocab 49408, context 77).
TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {
        "image_size": 64,
        "layers": 2,
        "width": 64,
        "head_width": 32,
        "patch_size": 16,
    },
    "text_cfg": {
        "context_length": 77,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 2,
    },
}


def write_tiny_open_clip_config(out_dir: Path, name: str = TINY_CLIP_NAME) -> Path:
    """Write the tiny config as ``<name>.json`` (open_clip names a config by its file stem)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(TINY_CLIP_CONFIG, indent=2) + "\n", encoding="utf-8")
    return path


def build_tiny_open_clip(out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Write a tiny random-weight open_clip model to ``out_dir``; return ClipScore options for it.

    Files: ``bench-tiny-clip.json`` (model config) and
    ``bench-tiny-clip-s<seed>.safetensors`` (weights drawn from ``seed``).
    The global torch RNG is left untouched.
    """
    import open_clip
    import torch
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    config_path = write_tiny_open_clip_config(out_dir)
    open_clip.add_model_config(config_path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None)
    state_dict = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    weights_path = out_dir / f"{TINY_CLIP_NAME}-s{seed}.safetensors"
    tmp_path = weights_path.with_name(weights_path.name + ".tmp")
    save_file(state_dict, str(tmp_path))
    tmp_path.replace(weights_path)
    return {"model": TINY_CLIP_NAME, "pretrained": str(weights_path), "config_file": str(config_path)}


def tiny_clip_options(out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """The tiny open_clip (built in ``out_dir``) as ``clip_*`` options, for a metric pairing it with another model."""
    return {f"clip_{key}": value for key, value in build_tiny_open_clip(out_dir, seed=seed).items()}


def tiny_lpips_options(size: int | None = None) -> dict[str, Any]:
    """LpipsDiversity options that need nothing from the network.

    ``size`` (optional) sets the LPIPS input size; the tiny generators make
    64x64 images, and ``size=64`` skips the default upscaling to 256, which is
    about 30x cheaper on CPU.
    """
    options: dict[str, Any] = {"net": "alex", "backbone": "random"}
    if size is not None:
        options["size"] = size
    return options
