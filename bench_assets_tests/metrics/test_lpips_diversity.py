"""Fidelity of LpipsDiversity against the lpips package called one pair at a time.

Offline: random (seeded) AlexNet backbone, the real LPIPS calibration layers
shipped in the lpips wheel, real PNG files.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download

import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.tiny.clip import tiny_lpips_options
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.lpips_diversity import RANDOM_BACKBONE_SEED, LpipsDiversity
from bench_assets.metrics.registry import get_metric

SIZE = 64
VARIED = Prompt(id="var-001", category="object", prompt="a red bicycle")
SAME = Prompt(id="same-001", category="object", prompt="a blue cube")
SINGLE = Prompt(id="one-001", category="object", prompt="a lone tree")


def _item(prompt: Prompt, index: int, path: Path) -> ImageItem:
    return ImageItem("tiny", prompt.category, prompt, index, index, path, f"sha-{prompt.id}-{index}")


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[ImageItem]]:
    folder = tmp_path_factory.mktemp("lpips_images")
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)
    varied = []
    for k in range(5):
        noise = rng.uniform(0, 255, size=(SIZE, SIZE, 3))
        gradient = np.stack([xx, yy, 1 - xx], axis=-1) * rng.uniform(0, 255, size=3)
        mix = k / 4  # from pure gradient to pure noise: distances differ pair to pair
        pixels = (1 - mix) * gradient + mix * noise
        path = folder / f"{VARIED.id}_i{k}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        varied.append(_item(VARIED, k, path))
    same_pixels = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    same = []
    for k in range(3):  # three files with identical content
        path = folder / f"{SAME.id}_i{k}.png"
        Image.fromarray(same_pixels).save(path)
        same.append(_item(SAME, k, path))
    single_path = folder / f"{SINGLE.id}_i0.png"
    Image.fromarray(rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)).save(single_path)
    return {"varied": varied, "same": same, "single": [_item(SINGLE, 0, single_path)]}


def _score(items: list[ImageItem], **options) -> dict[str, dict]:
    metric = get_metric("lpips_diversity", {**tiny_lpips_options(), "size": SIZE, **options})
    metric.load("cpu")
    rows = metric.score(items)
    assert len({r["prompt_id"] for r in rows}) == len(rows)
    return {r["prompt_id"]: r for r in rows}


def test_options() -> None:
    assert LpipsDiversity.default_options == {"net": "alex", "backbone": "pretrained", "batch_size": 64, "size": 256}
    assert LpipsDiversity.unit == "prompt"
    assert tiny_lpips_options()["backbone"] == "random"
    with pytest.raises(ValueError, match="backbone"):
        LpipsDiversity({"backbone": "imagenet"})


def test_matches_lpips_one_pair_at_a_time(items: dict[str, list[ImageItem]]) -> None:
    """(a) Prompt value = mean over all unordered pairs of lpips.LPIPS()(a, b)."""
    import lpips
    import torch

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision: lpips passes `pretrained=`
        torch.manual_seed(RANDOM_BACKBONE_SEED)
        reference = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()
    varied = items["varied"]
    tensors = [lpips.im2tensor(np.asarray(Image.open(i.key).convert("RGB"))) for i in varied]
    with torch.no_grad():
        distances = [float(reference(tensors[a], tensors[b])) for a, b in itertools.combinations(range(len(varied)), 2)]
    assert max(distances) - min(distances) > 0.01, "pairs should differ, or a wrong pairing could pass"

    rows = _score(varied)
    row = rows[VARIED.id]
    assert row["value"] == pytest.approx(float(np.mean(distances)), abs=1e-5)
    assert row["image_index"] is None
    assert (row["n_images"], row["n_pairs"]) == (5, 10)
    low, high = LpipsDiversity.value_range
    assert low < row["value"] < high


def test_identical_images_score_zero(items: dict[str, list[ImageItem]]) -> None:
    """(b) A prompt whose images are all the same has no diversity."""
    row = _score(items["same"])[SAME.id]
    assert row["value"] == pytest.approx(0.0, abs=1e-6)
    assert (row["n_images"], row["n_pairs"]) == (3, 3)


def test_single_image_prompt_gives_no_row(items: dict[str, list[ImageItem]]) -> None:
    """(c) One image has no pairs: no row at all (not a zero), other prompts unaffected."""
    rows = _score(items["single"] + items["varied"] + items["same"])
    assert set(rows) == {VARIED.id, SAME.id}
    assert _score(items["single"]) == {}


def test_pair_batching_does_not_change_the_result(items: dict[str, list[ImageItem]]) -> None:
    """(d) Two pairs per batch or all of them in one batch: the same values."""
    mixed = items["varied"][::-1] + items["same"]  # order of arrival must not matter either
    small = _score(mixed, batch_size=2)
    large = _score(mixed, batch_size=64)
    assert set(small) == set(large) == {VARIED.id, SAME.id}
    for prompt_id in small:
        assert small[prompt_id]["value"] == pytest.approx(large[prompt_id]["value"], abs=1e-6)
        assert small[prompt_id]["n_pairs"] == large[prompt_id]["n_pairs"]
