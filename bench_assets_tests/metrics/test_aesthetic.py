"""Fidelity of AestheticScore: the LAION head applied by hand to open_clip's embedding.

Offline: a tiny random open_clip model and a random head with the published
layout (``layers.{0,2,4,6,7}``), written to tmp_path as real files.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.tiny.judges import build_tiny_aesthetic
from bench_assets.metrics.tiny.clip import TINY_CLIP_CONFIG
from bench_assets.metrics.aesthetic import DEFAULT_HEAD, HEAD_SOURCE, AestheticScore
from bench_assets.metrics.base import ImageItem

SIZE = 64
PROMPTS = [
    Prompt(id="obj-001", category="object", prompt="a red bicycle"),
    Prompt(id="ani-001", category="anime", prompt="an anime girl with blue hair"),
]


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[ImageItem]:
    folder = tmp_path_factory.mktemp("aesthetic_images")
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)
    out = []
    for p, prompt in enumerate(PROMPTS):
        for k in range(5):
            mix = k / 4
            gradient = np.stack([xx, yy, 1 - xx], axis=-1) * rng.uniform(0, 255, size=3)
            pixels = (1 - mix) * gradient + mix * rng.uniform(0, 255, size=(SIZE, SIZE, 3))
            path = folder / f"{prompt.id}_i{k}.png"
            Image.fromarray(pixels.astype(np.uint8)).save(path)
            out.append(ImageItem("tiny", prompt.category, prompt, k, k, path, f"sha-{prompt.id}-{k}"))
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return build_tiny_aesthetic(tmp_path_factory.mktemp("tiny_aesthetic"), seed=0)


def _scored(options: dict, items: list[ImageItem]) -> list[dict]:
    metric = AestheticScore(options)
    metric.load("cpu")
    return metric.score(items)


def _reference(tiny: dict, items: list[ImageItem]) -> dict[tuple[str, int], float]:
    """open_clip's encoder one image at a time, then the head as explicit float64 matmuls."""
    import open_clip
    import torch
    from safetensors.torch import load_file

    open_clip.add_model_config(tiny["clip_config_file"])
    model, _, preprocess = open_clip.create_model_and_transforms(tiny["clip_model"], pretrained=tiny["clip_pretrained"])
    model.eval()
    w = {k: v.double() for k, v in load_file(tiny["head"]).items()}
    out = {}
    with torch.no_grad():
        for item in items:
            e = model.encode_image(preprocess(Image.open(item.key).convert("RGB")).unsqueeze(0))[0].double()
            x = e / e.norm()
            for i in (0, 2, 4, 6, 7):  # Linear layers; dropout (1, 3, 5) is the identity at inference
                x = w[f"layers.{i}.weight"] @ x + w[f"layers.{i}.bias"]
            out[(item.prompt.id, item.index)] = float(x[0])
    return out


def test_defaults_and_options(tiny: dict) -> None:
    assert AestheticScore.default_options == {
        "clip_model": "ViT-L-14",
        "clip_pretrained": "openai",
        "clip_config_file": None,
        "head": "sac+logos+ava1-l14-linearMSE.pth",
        "head_dir": "~/.cache/bench_assets/aesthetic",
        "batch_size": 32,
    }
    assert (AestheticScore.name, AestheticScore.table, AestheticScore.unit) == ("aesthetic", "scores_aesthetic", "image")
    assert Path(tiny["head"]).suffix == ".safetensors" and Path(tiny["head"]).is_file()
    from safetensors.torch import load_file

    head = load_file(tiny["head"])
    assert head["layers.0.weight"].shape == (1024, TINY_CLIP_CONFIG["embed_dim"])  # follows the CLIP width
    with pytest.raises(ValueError, match="unknown option"):
        AestheticScore({"heads": "x"})
    with pytest.raises(ValueError, match="batch_size"):
        AestheticScore({"batch_size": 0})


def test_matches_head_applied_by_hand(tiny: dict, items: list[ImageItem]) -> None:
    expected = _reference(tiny, items)
    rows = _scored(tiny, items)
    assert [(r["prompt_id"], r["image_index"]) for r in rows] == [(i.prompt.id, i.index) for i in items]
    values = [r["value"] for r in rows]
    assert max(values) - min(values) > 1e-3, "test images must give different scores"
    for row in rows:
        assert row["value"] == pytest.approx(expected[(row["prompt_id"], row["image_index"])], abs=1e-5)
        assert 0.0 < row["value"] < 10.0


def test_batch_invariance(tiny: dict, items: list[ImageItem]) -> None:
    one = _scored({**tiny, "batch_size": 1}, items)
    four = _scored({**tiny, "batch_size": 4}, items)
    assert [(r["prompt_id"], r["image_index"]) for r in one] == [(r["prompt_id"], r["image_index"]) for r in four]
    for a, b in zip(one, four):
        assert a["value"] == pytest.approx(b["value"], abs=1e-5)


def test_head_by_name_in_head_dir_and_pth(tiny: dict, items: list[ImageItem], tmp_path: Path) -> None:
    """A bare name is looked up in head_dir; a torch.save-d .pth (the published format) loads weights-only."""
    import torch
    from safetensors.torch import load_file

    options = {k: v for k, v in tiny.items() if k != "head"}
    missing = AestheticScore({**options, "head_dir": str(tmp_path)})
    with pytest.raises(FileNotFoundError) as err:
        missing.load("cpu")
    message = str(err.value)
    assert str(tmp_path / DEFAULT_HEAD) in message and HEAD_SOURCE in message and "option 'head'" in message

    torch.save(dict(load_file(tiny["head"])), tmp_path / DEFAULT_HEAD)
    by_name = _scored({**options, "head_dir": str(tmp_path)}, items[:3])
    by_path = _scored(tiny, items[:3])
    for a, b in zip(by_name, by_path):
        assert a["value"] == pytest.approx(b["value"], abs=1e-6)

    # New weights saved over the old file: a new scorer id (the runner's cache key).
    metric = AestheticScore({**options, "head_dir": str(tmp_path)})
    before = metric.scorer_id
    os.utime(tmp_path / DEFAULT_HEAD, ns=(1, 1))
    assert AestheticScore({**options, "head_dir": str(tmp_path)}).scorer_id != before


def test_bad_heads_are_refused(tiny: dict, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    state = load_file(tiny["head"])
    wide = dict(state)
    wide["layers.0.weight"] = torch.zeros(1024, TINY_CLIP_CONFIG["embed_dim"] + 16)
    save_file(wide, str(tmp_path / "wide.safetensors"))
    with pytest.raises(ValueError, match="wide embeddings"):
        AestheticScore({**tiny, "head": str(tmp_path / "wide.safetensors")}).load("cpu")

    renamed = {k.replace("layers.", "net."): v for k, v in state.items()}
    save_file(renamed, str(tmp_path / "renamed.safetensors"))
    with pytest.raises(ValueError, match="missing"):
        AestheticScore({**tiny, "head": str(tmp_path / "renamed.safetensors")}).load("cpu")

    shutil.copy(tiny["head"], tmp_path / "head.npz")
    with pytest.raises(ValueError, match="unknown file type"):
        AestheticScore({**tiny, "head": str(tmp_path / "head.npz")}).load("cpu")
