"""Fidelity of PreferenceScore: the PickScore model-card computation, one image at a time.

Offline: a tiny random Hugging Face CLIPModel + CLIPProcessor (CLIP's real
tokenizer, rebuilt from open_clip's BPE file) saved to tmp_path and loaded from
the folder, as PickScore_v1 is loaded from the hub.
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
from bench_assets.metrics.tiny.judges import build_tiny_preference
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.preference import PreferenceScore, _features

SIZE = 64
PROMPTS = [
    Prompt(id="obj-001", category="object", prompt="a red bicycle leaning on a wall"),
    Prompt(id="obj-002", category="object", prompt="Two cats."),
    # Longer than CLIP's 77 tokens: truncated, as in the model card.
    Prompt(id="hum-001", category="human", prompt="a portrait of an old fisherman, " * 20),
]


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[ImageItem]:
    folder = tmp_path_factory.mktemp("preference_images")
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)
    out = []
    for prompt in PROMPTS:
        for k in range(3):
            gradient = np.stack([xx, yy, 1 - xx], axis=-1) * rng.uniform(0, 255, size=3)
            pixels = (1 - k / 2) * gradient + (k / 2) * rng.uniform(0, 255, size=(SIZE, SIZE, 3))
            path = folder / f"{prompt.id}_i{k}.png"
            Image.fromarray(pixels.astype(np.uint8)).save(path)
            out.append(ImageItem("tiny", prompt.category, prompt, k, k, path, f"sha-{prompt.id}-{k}"))
    return out[::2] + out[1::2]  # prompts interleaved within a batch


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return build_tiny_preference(tmp_path_factory.mktemp("tiny_pickscore"), seed=1)


def _scored(options: dict, items: list[ImageItem]) -> list[dict]:
    metric = PreferenceScore(options)
    metric.load("cpu")
    return metric.score(items)


def test_defaults_and_options(tiny: dict) -> None:
    assert PreferenceScore.default_options == {
        "model": "yuvalkirstain/PickScore_v1",
        "processor": "laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
        "batch_size": 16,
    }
    assert (PreferenceScore.name, PreferenceScore.table, PreferenceScore.unit) == (
        "preference", "scores_preference", "image"
    )
    assert (Path(tiny["model"]) / "config.json").is_file()
    assert any(Path(tiny["processor"]).glob("*processor_config.json"))
    with pytest.raises(ValueError, match="unknown option"):
        PreferenceScore({"modell": "x"})
    with pytest.raises(ValueError, match="dtype"):
        PreferenceScore(tiny).load("cpu", "fp8")
    with pytest.raises(RuntimeError, match="load"):
        PreferenceScore(tiny).score([])


def test_matches_model_card_one_image_at_a_time(tiny: dict, items: list[ImageItem]) -> None:
    """PickScore as its model card computes it, called on the HF model directly per image."""
    import torch
    from transformers import AutoModel, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny["processor"])
    model = AutoModel.from_pretrained(tiny["model"]).eval()
    expected = {}
    with torch.no_grad():
        for item in items:
            image_inputs = processor(images=Image.open(item.key).convert("RGB"), return_tensors="pt")
            text_inputs = processor(
                text=item.prompt.prompt, padding=True, truncation=True, max_length=77, return_tensors="pt"
            )
            image_embs = model.get_image_features(**image_inputs)
            text_embs = model.get_text_features(**text_inputs)
            if not isinstance(image_embs, torch.Tensor):  # transformers >= 5: a ModelOutput
                image_embs, text_embs = image_embs.pooler_output, text_embs.pooler_output
            image_embs = image_embs.double() / torch.norm(image_embs.double(), dim=-1, keepdim=True)
            text_embs = text_embs.double() / torch.norm(text_embs.double(), dim=-1, keepdim=True)
            score = model.logit_scale.double().exp() * (text_embs @ image_embs.T)[0]
            expected[(item.prompt.id, item.index)] = float(score[0])
    assert len(set(expected.values())) == len(items)

    rows = _scored(tiny, items)
    assert [(r["prompt_id"], r["image_index"]) for r in rows] == [(i.prompt.id, i.index) for i in items]
    scale = float(model.logit_scale.detach().exp())
    for row in rows:
        assert row["value"] == pytest.approx(expected[(row["prompt_id"], row["image_index"])], abs=1e-5)
        assert row["value"] == pytest.approx(scale * row["cosine"], abs=1e-6)
        assert abs(row["value"]) <= scale + 1e-6


def test_batch_invariance(tiny: dict, items: list[ImageItem]) -> None:
    """Texts of different lengths padded together, or one at a time: the same scores."""
    one = _scored({**tiny, "batch_size": 1}, items)
    many = _scored({**tiny, "batch_size": 5}, items)
    assert [(r["prompt_id"], r["image_index"]) for r in one] == [(r["prompt_id"], r["image_index"]) for r in many]
    for a, b in zip(one, many):
        assert a["value"] == pytest.approx(b["value"], abs=1e-5)


def test_features_accepts_tensor_or_model_output() -> None:
    import torch
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    x = torch.randn(2, 4)
    assert _features(x) is x
    assert _features(BaseModelOutputWithPooling(pooler_output=x)) is x
    with pytest.raises(TypeError):
        _features(BaseModelOutputWithPooling(last_hidden_state=x))
