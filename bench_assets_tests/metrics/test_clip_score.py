"""Fidelity of ClipScore: reference formula, batch invariance, torchmetrics on the same weights.

Everything runs offline on tiny random-weight models written to tmp_path as
real files, and on real PNG files.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.tiny.clip import (
    TINY_CLIP_CONFIG,
    TINY_CLIP_NAME,
    build_tiny_open_clip,
    write_tiny_open_clip_config,
)
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.clip_score import ClipScore
from bench_assets.metrics.registry import get_metric

PROMPTS = [
    Prompt(id="obj-001", category="object", prompt="a red bicycle leaning on a wall"),
    Prompt(id="obj-002", category="object", prompt="Two cats, sleeping on a sofa."),
    Prompt(id="ani-001", category="anime", prompt="an anime girl with blue hair"),
]
IMAGES_PER_PROMPT = 4
SIZE = 64  # the tiny models' input size: resizing is the identity in both pipelines


def _png(path: Path, rng: np.random.Generator, kind: int) -> Path:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)
    colour = rng.uniform(0, 255, size=3)
    if kind % 3 == 0:  # noise
        pixels = rng.uniform(0, 255, size=(SIZE, SIZE, 3))
    elif kind % 3 == 1:  # gradient
        pixels = np.stack([xx * colour[0], yy * colour[1], (1 - xx) * colour[2]], axis=-1)
    else:  # blob on a flat background
        blob = ((xx - rng.uniform(0.2, 0.8)) ** 2 + (yy - rng.uniform(0.2, 0.8)) ** 2) < 0.05
        pixels = np.where(blob[..., None], colour, 255 - colour)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[ImageItem]:
    folder = tmp_path_factory.mktemp("clip_images")
    rng = np.random.default_rng(7)
    out = []
    for p, prompt in enumerate(PROMPTS):
        for k in range(IMAGES_PER_PROMPT):
            path = _png(folder / f"{prompt.id}_i{k}_s{k}.png", rng, p + k)
            out.append(ImageItem("tiny", prompt.category, prompt, k, k, path, f"sha-{prompt.id}-{k}"))
    # Interleave prompts so that a batch holds several prompts in mixed order.
    return out[::2] + out[1::2]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return build_tiny_open_clip(tmp_path_factory.mktemp("tiny_clip"), seed=2)  # a seed whose cosines fall on both sides of zero


def _scored(options: dict, items: list[ImageItem]) -> list[dict]:
    metric = get_metric("clip_score", options)
    metric.load("cpu")
    return metric.score(items)


def test_options_files_and_cheap_import(tiny_clip: dict) -> None:
    assert Path(tiny_clip["pretrained"]).suffix == ".safetensors" and Path(tiny_clip["pretrained"]).is_file()
    assert Path(tiny_clip["config_file"]).name == f"{TINY_CLIP_NAME}.json"
    assert ClipScore.default_options == {
        "model": "ViT-L-14",
        "pretrained": "openai",
        "batch_size": 32,
        "config_file": None,
    }
    with pytest.raises(ValueError, match="unknown option"):
        ClipScore({"modle": "ViT-B-32"})
    with pytest.raises(KeyError, match="clip_score"):
        get_metric("clip_scor")


def test_matches_reference_formula(tiny_clip: dict, items: list[ImageItem]) -> None:
    """(a) Per-image values equal 100*max(cos, 0) from open_clip's own encoders, one image at a time."""
    import open_clip
    import torch

    open_clip.add_model_config(tiny_clip["config_file"])
    model, _, preprocess = open_clip.create_model_and_transforms(
        tiny_clip["model"], pretrained=tiny_clip["pretrained"]
    )
    model.eval()
    tokenizer = open_clip.get_tokenizer(tiny_clip["model"])
    expected = {}
    with torch.no_grad():
        for item in items:
            image = preprocess(Image.open(item.key).convert("RGB")).unsqueeze(0)
            e_image = model.encode_image(image)[0].double()
            e_text = model.encode_text(tokenizer([item.prompt.prompt]))[0].double()
            cosine = float(e_image @ e_text / (e_image.norm() * e_text.norm()))
            expected[(item.prompt.id, item.index)] = (100.0 * max(cosine, 0.0), cosine)
    cosines = [c for _, c in expected.values()]
    assert min(cosines) < 0 < max(cosines), "test data must exercise the clamp at zero"

    rows = _scored({**tiny_clip, "batch_size": 32}, items)
    assert [(r["prompt_id"], r["image_index"]) for r in rows] == [(i.prompt.id, i.index) for i in items]
    for row in rows:
        value, cosine = expected[(row["prompt_id"], row["image_index"])]
        assert row["cosine"] == pytest.approx(cosine, abs=1e-7)
        assert row["value"] == pytest.approx(value, abs=1e-5)
        assert 0.0 <= row["value"] <= 100.0


def test_batch_invariance(tiny_clip: dict, items: list[ImageItem]) -> None:
    """(b) One image per forward and eight per forward give the same rows."""
    one = _scored({**tiny_clip, "batch_size": 1}, items)
    eight = _scored({**tiny_clip, "batch_size": 8}, items)
    assert [(r["prompt_id"], r["image_index"]) for r in one] == [(r["prompt_id"], r["image_index"]) for r in eight]
    for a, b in zip(one, eight):
        assert a["value"] == pytest.approx(b["value"], abs=1e-5)
        assert a["cosine"] == pytest.approx(b["cosine"], abs=1e-7)


# --------------------------------------------------------------------------- torchmetrics


def _helper(name: str):
    """Import a sibling helper module by path (works under any pytest import mode)."""
    import importlib.util
    import sys

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def _hf_clip_folder(folder: Path, seed: int = 3) -> Path:
    """A tiny HF CLIPModel + CLIPProcessor with TINY_CLIP_CONFIG's architecture (QuickGELU, as open_clip's)."""
    from bench_assets.metrics.tiny.judges import save_tiny_hf_clip

    return save_tiny_hf_clip(folder, seed, hidden_act="quick_gelu")


def _torchmetrics_loader(folder: Path):
    """torchmetrics 1.9 accepts only its listed hub ids or a callable returning (model, processor).

    The model subclass unwraps ``get_*_features``: transformers >= 5 returns a
    ``BaseModelOutputWithPooling`` whose ``pooler_output`` is the projected
    embedding, and torchmetrics 1.9 calls ``.norm`` on the return value
    (Lightning-AI/torchmetrics#3407; fix merged upstream in #3408, not in 1.9.0).
    """
    import torch
    from transformers import CLIPModel, CLIPProcessor

    class FeaturesAsTensors(CLIPModel):
        def get_image_features(self, *args, **kwargs):
            out = super().get_image_features(*args, **kwargs)
            return out if isinstance(out, torch.Tensor) else out.pooler_output

        def get_text_features(self, *args, **kwargs):
            out = super().get_text_features(*args, **kwargs)
            return out if isinstance(out, torch.Tensor) else out.pooler_output

    return lambda: (FeaturesAsTensors.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder))


def test_agrees_with_torchmetrics_on_same_model(tmp_path: Path, items: list[ImageItem]) -> None:
    """(c) torchmetrics' batch CLIPScore = max(100 * mean(our cosines), 0) for the same weights."""
    import open_clip
    import torch
    from safetensors.torch import save_file
    from torchmetrics.multimodal.clip_score import CLIPScore
    from transformers import CLIPModel, CLIPTokenizer

    hf_clip_to_open_clip = _helper("hf_clip_to_open_clip").hf_clip_to_open_clip

    hf_folder = _hf_clip_folder(tmp_path / "hf_clip")
    hf_model = CLIPModel.from_pretrained(hf_folder)
    converted = hf_clip_to_open_clip(
        hf_model.state_dict(),
        text_layers=TINY_CLIP_CONFIG["text_cfg"]["layers"],
        vision_layers=TINY_CLIP_CONFIG["vision_cfg"]["layers"],
    )
    weights = tmp_path / "converted.safetensors"
    save_file(converted, str(weights))
    config_file = write_tiny_open_clip_config(tmp_path / "oc_config")

    # Same tokens on both sides (HF tokenizer rebuilt from open_clip's BPE file).
    texts = [p.prompt for p in PROMPTS]
    open_clip.add_model_config(config_file)
    oc_tokens = open_clip.get_tokenizer(TINY_CLIP_NAME)(texts)
    hf_tokens = CLIPTokenizer.from_pretrained(hf_folder)(texts)["input_ids"]
    for oc_row, hf_row in zip(oc_tokens.tolist(), hf_tokens):
        assert oc_row[: len(hf_row)] == hf_row

    ours = ClipScore({"model": TINY_CLIP_NAME, "pretrained": str(weights), "config_file": str(config_file)})
    ours.load("cpu")
    rows = ours.score(items)
    cosine = {(r["prompt_id"], r["image_index"]): r["cosine"] for r in rows}

    metric = CLIPScore(model_name_or_path=_torchmetrics_loader(hf_folder))

    def torchmetrics_score(subset: list[ImageItem]) -> float:
        metric.reset()
        images = [torch.from_numpy(np.array(Image.open(i.key).convert("RGB"))).permute(2, 0, 1) for i in subset]
        metric.update(images, [i.prompt.prompt for i in subset])
        return float(metric.compute())

    def expected(subset: list[ImageItem]) -> float:
        return max(100.0 * float(np.mean([cosine[(i.prompt.id, i.index)] for i in subset])), 0.0)

    by_cosine = sorted(items, key=lambda i: cosine[(i.prompt.id, i.index)])
    negative = [i for i in by_cosine if cosine[(i.prompt.id, i.index)] < 0]
    positive = [i for i in by_cosine if cosine[(i.prompt.id, i.index)] > 0]
    assert len(positive) >= 2 and negative, "test data must have images on both sides of zero"

    # Positive images only: the mean is positive, so magnitudes are compared, not two zeros.
    assert expected(positive) > 1.0
    assert torchmetrics_score(positive) == pytest.approx(expected(positive), abs=1e-4)
    # Add the negative image closest to zero: torchmetrics averages the raw 100*cos
    # (the negative one pulls the mean down) where our rows clamp each image.
    value = {(r["prompt_id"], r["image_index"]): r["value"] for r in rows}
    mixed = positive + negative[-1:]
    mean_of_our_values = float(np.mean([value[(i.prompt.id, i.index)] for i in mixed]))
    assert 0 < expected(mixed) < mean_of_our_values - 0.01  # the two aggregates differ here
    assert torchmetrics_score(mixed) == pytest.approx(expected(mixed), abs=1e-4)
    # The whole batch: torchmetrics clamps the batch mean, not each image.
    assert torchmetrics_score(items) == pytest.approx(expected(items), abs=1e-4)
    # Per image, torchmetrics on one image is our per-image value (0 for a negative cosine).
    for item in (positive[0], positive[-1], negative[0]):
        assert torchmetrics_score([item]) == pytest.approx(value[(item.prompt.id, item.index)], abs=1e-4)
