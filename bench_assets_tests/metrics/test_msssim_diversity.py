"""Fidelity of MsssimDiversity against torchmetrics' MS-SSIM called one pair at a time.

No weights: real PNG files, resized as documented, scored by torchmetrics'
functional MS-SSIM with its own (the paper's) defaults.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.tiny.dino import tiny_msssim_options
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.msssim_diversity import PAPER_BETAS, MsssimDiversity, min_msssim_size

SIZE = 64
VARIED = Prompt(id="var-001", category="object", prompt="a red bicycle")
DIM = Prompt(id="dim-001", category="object", prompt="a grey fog")
SAME = Prompt(id="same-001", category="object", prompt="a blue cube")
SINGLE = Prompt(id="one-001", category="object", prompt="a lone tree")
WIDE = Prompt(id="wide-001", category="object", prompt="a wide field")


def _item(prompt: Prompt, index: int, path: Path) -> ImageItem:
    return ImageItem("tiny", prompt.category, prompt, index, index, path, f"sha-{prompt.id}-{index}")


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[ImageItem]]:
    folder = tmp_path_factory.mktemp("msssim_images")
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)

    def save(prompt: Prompt, k: int, pixels: np.ndarray) -> ImageItem:
        path = folder / f"{prompt.id}_i{k}.png"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
        return _item(prompt, k, path)

    varied, varied_pixels = [], []
    base = np.stack([xx, yy, 1 - xx], axis=-1) * 255
    for k in range(5):
        # The same gradient with more and more noise, plus one stripe pattern:
        # similarities differ pair to pair, so a wrong pairing cannot pass.
        noise = rng.uniform(0, 255, size=(SIZE, SIZE, 3))
        mix = k / 5
        pixels = (1 - mix) * base + mix * noise
        if k == 4:
            pixels = np.repeat((np.sin(xx * 20) * 127 + 128)[..., None], 3, axis=-1)
        varied_pixels.append(pixels)
        varied.append(save(VARIED, k, pixels))
    # Low contrast: a data range inferred from the batch would differ from 1.0 here.
    dim = [save(DIM, k, 110 + rng.uniform(0, 30, size=(SIZE, SIZE, 3))) for k in range(3)]
    same_pixels = rng.uniform(0, 255, size=(SIZE, SIZE, 3))
    same = [save(SAME, k, same_pixels) for k in range(3)]
    single = [save(SINGLE, 0, rng.uniform(0, 255, size=(SIZE, SIZE, 3)))]
    wide = [save(WIDE, k, varied_pixels[k][:48]) for k in range(3)]  # 64 wide, 48 high
    return {"varied": varied, "dim": dim, "same": same, "single": single, "wide": wide}


def _score(items: list[ImageItem], **options) -> dict[str, dict]:
    metric = MsssimDiversity({**tiny_msssim_options(), **options})
    metric.load("cpu")
    rows = metric.score(items)
    assert len({r["prompt_id"] for r in rows}) == len(rows)
    return {r["prompt_id"]: r for r in rows}


def _reference_value(members: list[ImageItem], size: int) -> tuple[float, list[float]]:
    """1 - mean over pairs of torchmetrics' MS-SSIM (its defaults), one pair per call."""
    import torch
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    def tensor(item: ImageItem) -> torch.Tensor:
        image = Image.open(item.key).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        return torch.tensor(np.array(image), dtype=torch.float32).permute(2, 0, 1).unsqueeze(0) / 255.0

    images = [tensor(i) for i in members]
    values = [
        float(multiscale_structural_similarity_index_measure(images[a], images[b], data_range=1.0))
        for a, b in itertools.combinations(range(len(members)), 2)
    ]
    return 1.0 - float(np.mean(values)), values


def test_options() -> None:
    assert MsssimDiversity.default_options == {
        "size": 256,
        "batch_size": 32,
        "betas": (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
        "kernel_size": 11,
        "sigma": 1.5,
    }
    assert (MsssimDiversity.name, MsssimDiversity.table, MsssimDiversity.unit) == (
        "msssim_diversity",
        "scores_msssim",
        "prompt",
    )
    assert min_msssim_size() == 176
    assert tiny_msssim_options()["size"] == min_msssim_size()
    with pytest.raises(ValueError, match="176"):
        MsssimDiversity({"size": 175})
    MsssimDiversity({"size": 176})
    with pytest.raises(ValueError, match="unknown option"):
        MsssimDiversity({"sise": 256})
    with pytest.raises(ValueError, match="betas"):
        MsssimDiversity({"betas": []})
    # A YAML list and the default tuple are the same scorer (same cache key).
    assert MsssimDiversity({"betas": list(PAPER_BETAS)}).scorer_id == MsssimDiversity().scorer_id


def test_cheap_import() -> None:
    code = (
        "import sys, bench_assets.metrics.msssim_diversity; "
        "heavy = sorted(m for m in ('torch', 'torchmetrics') if m in sys.modules); assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("kind", ["varied", "dim"])
def test_matches_torchmetrics_one_pair_at_a_time(items: dict[str, list[ImageItem]], kind: str) -> None:
    """(a) value = 1 - mean over all unordered pairs of torchmetrics' MS-SSIM, with its default settings."""
    members = items[kind]
    size = tiny_msssim_options()["size"]
    expected, per_pair = _reference_value(members, size)
    if kind == "varied":
        assert max(per_pair) - min(per_pair) > 0.05, "pairs should differ, or a wrong pairing could pass"

    row = _score(members[::-1])[members[0].prompt.id]  # order of arrival must not matter
    n = len(members)
    assert row["value"] == pytest.approx(expected, abs=1e-5)
    assert row["mean_msssim"] == pytest.approx(1.0 - expected, abs=1e-5)
    assert row["image_index"] is None
    assert (row["n_images"], row["n_pairs"]) == (n, n * (n - 1) // 2)
    low, high = MsssimDiversity.value_range
    assert low <= row["value"] <= high


def test_default_size_matches_too(items: dict[str, list[ImageItem]]) -> None:
    """(a') At the default 256 px, non-square images included (squashed to a square by both sides)."""
    members = items["wide"]
    assert Image.open(members[0].key).size == (SIZE, 48)
    expected, _ = _reference_value(members, 256)
    metric = MsssimDiversity()
    metric.load("cpu")
    (row,) = metric.score(members)
    assert row["value"] == pytest.approx(expected, abs=1e-5)


def test_identical_images_score_zero(items: dict[str, list[ImageItem]]) -> None:
    """(b) A prompt whose images are all the same has no diversity (MS-SSIM = 1)."""
    row = _score(items["same"])[SAME.id]
    assert row["value"] == pytest.approx(0.0, abs=1e-6)
    assert (row["n_images"], row["n_pairs"]) == (3, 3)


def test_single_image_prompt_gives_no_row(items: dict[str, list[ImageItem]]) -> None:
    """(c) One image has no pairs: no row at all (not a zero), other prompts unaffected."""
    rows = _score(items["single"] + items["same"] + items["dim"])
    assert set(rows) == {SAME.id, DIM.id}
    assert _score(items["single"]) == {}
    assert _score([]) == {}


def test_pair_batching_does_not_change_the_result(items: dict[str, list[ImageItem]]) -> None:
    """(d) One pair per call or all pairs in one call, prompts mixed: the same values."""
    mixed = items["dim"] + items["varied"][::-1] + items["same"]
    one = _score(mixed, batch_size=1)
    many = _score(mixed, batch_size=64)
    assert set(one) == set(many) == {VARIED.id, DIM.id, SAME.id}
    for prompt_id in one:
        assert one[prompt_id]["value"] == pytest.approx(many[prompt_id]["value"], abs=1e-6)
        assert one[prompt_id]["n_pairs"] == many[prompt_id]["n_pairs"]


def test_score_before_load_fails(items: dict[str, list[ImageItem]]) -> None:
    with pytest.raises(RuntimeError, match="load"):
        MsssimDiversity().score(items["same"])
