"""Tiny scorers for the text-rendering, aesthetic and preference metrics, built in code.

- ``tiny_text_options``: the text metric's OCR models ship inside the
  rapidocr wheel (a few MB), so the real ones are used; nothing to build.
- ``build_tiny_aesthetic``: the tiny open_clip model of
  ``tiny.clip.build_tiny_open_clip`` plus a random LAION-style MLP head
  whose input width follows that CLIP's embedding width, saved as
  ``.safetensors``.
- ``build_tiny_preference``: a tiny Hugging Face ``CLIPModel`` and a
  ``CLIPProcessor`` (CLIP's real BPE tokenizer, rebuilt offline) in one folder,
  standing in for PickScore_v1 and its processor.

Each returns the metric's options; the files go through the very loading code
real weights take. Their numbers mean nothing (random weights).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench_assets.metrics.tiny.clip import TINY_CLIP_CONFIG, tiny_clip_options
from bench_assets.metrics.tiny.tokenizer import clip_tokenizer_files

TINY_IMAGE_SIZE = 64
# The LAION head's hidden widths (input width comes from the CLIP model).
AESTHETIC_HIDDEN = (1024, 128, 64, 16, 1)
# Final bias of the tiny head: its outputs sit near the middle of the real head's 0-10 scale.
TINY_AESTHETIC_BIAS = 5.0


def tiny_text_options() -> dict[str, Any]:
    """TextRendering options for tests and the demo: the real (bundled) RapidOCR models."""
    return {}


def build_tiny_aesthetic(out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """A tiny open_clip model and a random aesthetic head in ``out_dir``; AestheticScore options.

    Files: the tiny CLIP's config and weights, and ``aesthetic-head-s<seed>.safetensors``
    with keys ``layers.{0,2,4,6,7}.{weight,bias}`` like the published heads.
    The global torch RNG is left untouched.
    """
    import torch
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    clip = tiny_clip_options(out_dir / "clip", seed=seed)
    widths = (int(TINY_CLIP_CONFIG["embed_dim"]), *AESTHETIC_HIDDEN)
    state: dict[str, torch.Tensor] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        for index, (fan_in, fan_out) in zip((0, 2, 4, 6, 7), zip(widths[:-1], widths[1:])):
            layer = torch.nn.Linear(fan_in, fan_out)
            # Default init shrinks a unit vector layer by layer; scale up so images differ visibly.
            state[f"layers.{index}.weight"] = (2.0 * layer.weight.detach()).contiguous()
            state[f"layers.{index}.bias"] = layer.bias.detach().contiguous()
    state["layers.7.bias"] = torch.full((1,), TINY_AESTHETIC_BIAS)
    head = out_dir / f"aesthetic-head-s{seed}.safetensors"
    tmp = head.with_name(head.name + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(head)
    return {**clip, "head": str(head)}


def save_tiny_hf_clip(out_dir: Path, seed: int = 0, hidden_act: str = "gelu") -> Path:
    """A tiny random HF ``CLIPModel`` + ``CLIPProcessor`` saved to ``out_dir``.

    Architecture as ``tiny.clip.TINY_CLIP_CONFIG`` (64 px ViT-16, 2-layer
    towers, CLIP's real tokenizer). Every parameter is perturbed from HF's
    initial values (unit norms, zero biases) so that none is trivially 0 or 1.
    The global torch RNG is left untouched.
    """
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    out_dir = Path(out_dir)
    vision, text = TINY_CLIP_CONFIG["vision_cfg"], TINY_CLIP_CONFIG["text_cfg"]
    config = CLIPConfig(
        projection_dim=TINY_CLIP_CONFIG["embed_dim"],
        text_config={
            "vocab_size": text["vocab_size"],
            "hidden_size": text["width"],
            "intermediate_size": 4 * text["width"],
            "num_hidden_layers": text["layers"],
            "num_attention_heads": text["heads"],
            "max_position_embeddings": text["context_length"],
            "hidden_act": hidden_act,
            "bos_token_id": 49406,
            "eos_token_id": 49407,
            "pad_token_id": 49407,
        },
        vision_config={
            "hidden_size": vision["width"],
            "intermediate_size": 4 * vision["width"],
            "num_hidden_layers": vision["layers"],
            "num_attention_heads": vision["width"] // vision["head_width"],
            "image_size": vision["image_size"],
            "patch_size": vision["patch_size"],
            "hidden_act": hidden_act,
        },
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config).eval()
        with torch.no_grad():
            for param in model.parameters():
                param.add_(0.05 * torch.randn_like(param))
    model.save_pretrained(out_dir)

    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = CLIPTokenizer.from_pretrained(clip_tokenizer_files(Path(scratch)))
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIZE},
        crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
        do_center_crop=True,
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out_dir)
    return out_dir


def build_tiny_preference(out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """PreferenceScore options for a tiny random PickScore-shaped CLIP (see ``save_tiny_hf_clip``)."""
    out_dir = save_tiny_hf_clip(out_dir, seed)
    return {"model": str(out_dir), "processor": str(out_dir)}
