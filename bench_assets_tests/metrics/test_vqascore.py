"""Fidelity of VqaScore: both modes recomputed by hand, one image at a time, on a tiny LLaVA.

The default ``t2v_metrics`` mode is checked against t2v_metrics' own recipe
written out in the test (literal prompt string with the system message,
"Yes</s>" labels after masking the question, expand2square padding,
exp(-mean cross-entropy)); ``first_token`` against softmax at " Yes".

Offline: a tiny random-weight LlavaForConditionalGeneration (the default
model's architecture class) and its processor are saved to tmp_path and
loaded through the metric's real ``from_pretrained`` path; real PNG files.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.tiny.vlm import build_tiny_vlm
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.vqascore import VqaScore

PROMPTS = [
    Prompt(id="obj-001", category="object", prompt="a red bicycle"),
    Prompt(id="obj-002", category="object", prompt="Two cats, sleeping on a long green sofa by the window."),
    Prompt(id="txt-001", category="text", prompt='a sign that says "OPEN"'),
]


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm"), seed=0)


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[ImageItem]:
    folder = tmp_path_factory.mktemp("vqa_images")
    rng = np.random.default_rng(3)
    out = []
    for p, prompt in enumerate(PROMPTS):
        for k in range(2):
            size = (64, 64) if k == 0 else (48, 80)  # a non-square image exercises resize + crop
            pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            path = folder / f"{prompt.id}_i{k}.png"
            Image.fromarray(pixels).save(path)
            out.append(ImageItem("tiny", prompt.category, prompt, k, k, path, f"sha-{prompt.id}-{k}"))
    return out[::2] + out[1::2]  # mixed prompts (and so prompt lengths) in one batch


def _scored(options: dict, items: list[ImageItem]) -> list[dict]:
    metric = VqaScore(options)
    metric.load("cpu")
    return metric.score(items)


def test_options_and_defaults() -> None:
    assert VqaScore.default_options["model"] == "llava-hf/llava-1.5-7b-hf"
    assert VqaScore.default_options["question"] == 'Does this figure show "{prompt}"? Please answer yes or no.'
    assert VqaScore.default_options["mode"] == "t2v_metrics"
    assert VqaScore.table == "scores_vqascore" and VqaScore.unit == "image" and VqaScore.version == "2"
    with pytest.raises(ValueError, match="mode"):
        VqaScore({"mode": "yes_prob"})
    with pytest.raises(ValueError, match="unknown option"):
        VqaScore({"modle": "x"})
    with pytest.raises(ValueError, match="batch_size"):
        VqaScore({"batch_size": 0})
    with pytest.raises(ValueError, match="prompt"):
        VqaScore({"question": "Is this good?"})
    with pytest.raises(RuntimeError, match="load"):
        VqaScore().score([])


def test_import_is_cheap() -> None:
    code = (
        "import sys, bench_assets.metrics.vqascore, bench_assets.metrics.vlm; "
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules); assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_matches_hand_computed_yes_probability(tiny_vlm: dict, items: list[ImageItem]) -> None:
    """Softmax of the last-position logits at the id of " Yes", one image at a time, no padding."""
    import torch
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    model = LlavaForConditionalGeneration.from_pretrained(tiny_vlm["model"]).eval()
    processor = LlavaProcessor.from_pretrained(tiny_vlm["model"])
    # The chat template ends with "ASSISTANT:"; the answer follows after a space.
    (yes_id,) = processor.tokenizer(" Yes", add_special_tokens=False)["input_ids"]
    assert processor.tokenizer.convert_ids_to_tokens(yes_id) == "ĠYes"
    expected = {}
    with torch.no_grad():
        for item in items:
            text = (
                f'USER: <image>\nDoes this figure show "{item.prompt.prompt}"? Please answer yes or no. ASSISTANT:'
            )
            inputs = processor(text=text, images=Image.open(item.key).convert("RGB"), return_tensors="pt")
            logits = model(**inputs).logits[0, -1].double()
            expected[(item.prompt.id, item.index)] = float(torch.softmax(logits, dim=-1)[yes_id])

    rows = _scored({**tiny_vlm, "batch_size": 6, "mode": "first_token"}, items)
    assert [(r["prompt_id"], r["image_index"]) for r in rows] == [(i.prompt.id, i.index) for i in items]
    for row, item in zip(rows, items):
        assert row["value"] == pytest.approx(expected[(item.prompt.id, item.index)], abs=1e-5)
        assert 0.0 <= row["value"] <= 1.0
        assert row["question"] == f'Does this figure show "{item.prompt.prompt}"? Please answer yes or no.'
    values = [r["value"] for r in rows]
    assert max(values) - min(values) > 1e-3, "test data must give different scores"


T2V_SYSTEM_MSG = (  # t2v_metrics/constants.py SYSTEM_MSG, written out independently of the metric
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions."
)


def _expand2square(image: Image.Image, fill: tuple[int, ...]) -> Image.Image:
    width, height = image.size
    side = max(width, height)
    out = Image.new(image.mode, (side, side), fill)
    out.paste(image, ((side - width) // 2, (side - height) // 2))
    return out


def test_t2v_metrics_mode_matches_their_recipe(tiny_vlm: dict, items: list[ImageItem]) -> None:
    """exp(-mean CE) over the labels "Yes</s>" of SYSTEM_MSG + ' USER: <image>\n{q} ASSISTANT: Yes</s>', |Δ| <= 1e-5."""
    import torch
    import torch.nn.functional as F
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    model = LlavaForConditionalGeneration.from_pretrained(tiny_vlm["model"]).eval()
    processor = LlavaProcessor.from_pretrained(tiny_vlm["model"])
    fill = tuple(int(x * 255) for x in processor.image_processor.image_mean)
    expected = {}
    with torch.no_grad():
        for item in items:
            question = f'Does this figure show "{item.prompt.prompt}"? Please answer yes or no.'
            text_q = f"{T2V_SYSTEM_MSG} USER: <image>\n{question} ASSISTANT: "
            image = _expand2square(Image.open(item.key).convert("RGB"), fill)
            inputs = processor(text=text_q + "Yes</s>", images=image, return_tensors="pt")
            ids = inputs["input_ids"][0]
            # t2v_metrics: mask the question's tokens, less one because the question ends in a space.
            masked = len(processor(text=text_q, images=image, return_tensors="pt")["input_ids"][0]) - 1
            labels = ids.clone()
            labels[:masked] = -100
            answer_tokens = processor.tokenizer.convert_ids_to_tokens(ids[masked:].tolist())
            assert answer_tokens == ["ĠYes", "</s>"], answer_tokens
            logits = model(**inputs).logits[0].double()
            ce = F.cross_entropy(logits[:-1], labels[1:], ignore_index=-100, reduction="mean")
            expected[(item.prompt.id, item.index)] = float(torch.exp(-ce))

    rows = _scored({**tiny_vlm, "batch_size": 6}, items)  # the default mode
    first = _scored({**tiny_vlm, "batch_size": 6, "mode": "first_token"}, items)
    for row, other, item in zip(rows, first, items):
        assert row["mode"] == "t2v_metrics"
        assert row["value"] == pytest.approx(expected[(item.prompt.id, item.index)], abs=1e-5)
        assert abs(row["value"] - other["value"]) > 1e-6, "the two modes must differ on this model"
    values = [r["value"] for r in rows]
    assert max(values) / min(values) > 1.01, "test data must give different scores"


def test_batch_invariance(tiny_vlm: dict, items: list[ImageItem]) -> None:
    one = _scored({**tiny_vlm, "batch_size": 1}, items)
    four = _scored({**tiny_vlm, "batch_size": 4}, items)
    for a, b in zip(one, four):
        assert (a["prompt_id"], a["image_index"]) == (b["prompt_id"], b["image_index"])
        assert a["value"] == pytest.approx(b["value"], abs=1e-5)


def test_answer_must_be_one_token(tiny_vlm: dict, items: list[ImageItem]) -> None:
    with pytest.raises(ValueError, match="one"):
        _scored({**tiny_vlm, "answer": "Yes indeed zebra", "mode": "first_token"}, items[:1])
