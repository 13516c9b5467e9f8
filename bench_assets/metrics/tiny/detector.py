"""Tiny random-weight scorers for GenEval, built in code: an OWLv2 detector and an open_clip CLIP.

``build_tiny_geneval`` saves a tiny ``Owlv2ForObjectDetection`` (the default
detector's architecture class) with an ``Owlv2Processor`` (CLIP's real BPE
tokenizer, rebuilt offline by ``clip_tokenizer_files``) to a folder, and a tiny
open_clip model for the colour classifier, and returns ``GenEval`` options
that load both through the metric's real loading code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench_assets.metrics.tiny.clip import tiny_clip_options
from bench_assets.metrics.tiny.tokenizer import clip_tokenizer_files

OWL_IMAGE_SIZE = 64
OWL_QUERY_LENGTH = 16  # OWL-ViT/OWLv2 text queries are padded to 16 tokens


def build_tiny_owlv2(out_dir: Path, seed: int = 0) -> Path:
    """Write a tiny random-weight OWLv2 + processor to ``out_dir`` (global torch RNG untouched)."""
    import torch
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    out_dir = Path(out_dir)
    tok_dir = clip_tokenizer_files(out_dir / "_tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir, model_max_length=OWL_QUERY_LENGTH, pad_token="!")
    config = Owlv2Config(
        text_config={
            "vocab_size": 49408,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": OWL_QUERY_LENGTH,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": OWL_IMAGE_SIZE,
            "patch_size": 16,
        },
        projection_dim=32,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Owlv2ForObjectDetection(config)
    model.eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessor(size={"height": OWL_IMAGE_SIZE, "width": OWL_IMAGE_SIZE}),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(out_dir)
    return out_dir


def build_tiny_geneval(out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Tiny OWLv2 (``<out_dir>/owlv2``) + tiny open_clip (``<out_dir>/clip``); return GenEval options."""
    out_dir = Path(out_dir)
    detector = build_tiny_owlv2(out_dir / "owlv2", seed=seed)
    return {"model": str(detector), **tiny_clip_options(out_dir / "clip", seed=seed)}
