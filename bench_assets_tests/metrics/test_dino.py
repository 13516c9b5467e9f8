"""Fidelity of DinoFeatures: the HF model run by hand, one image at a time; batch invariance;
reference images (DINO-I / CLIP-I); rows only where there is something to score.

Everything runs offline on a tiny random-weight DINOv2 and a tiny open_clip
model written to tmp_path as real files, and on real PNG files.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench_assets.prompts.prompt import Prompt
from bench_assets.metrics.tiny.dino import TINY_DINO_IMAGE_SIZE, build_tiny_dino
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.dino import DinoFeatures

SIZE = 64
REF_NAME = "refs/ref.png"  # relative to the reference root
VARIED = Prompt(id="var-001", category="object", prompt="a red bicycle")
SUBJECT = Prompt(id="dog-001", category="object", prompt="a photo of sks dog", metadata={"reference_image": REF_NAME})
ONE_REF = Prompt(id="dog-002", category="object", prompt="sks dog on a beach", metadata={"reference_image": REF_NAME})
SAME = Prompt(id="same-001", category="object", prompt="a blue cube")
SINGLE = Prompt(id="one-001", category="object", prompt="a lone tree")


def _pixels(rng: np.random.Generator, kind: int) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)
    colour = rng.uniform(0, 255, size=3)
    if kind % 3 == 0:  # noise
        pixels = rng.uniform(0, 255, size=(SIZE, SIZE, 3))
    elif kind % 3 == 1:  # gradient
        pixels = np.stack([xx * colour[0], yy * colour[1], (1 - xx) * colour[2]], axis=-1)
    else:  # blob on a flat background
        blob = ((xx - rng.uniform(0.2, 0.8)) ** 2 + (yy - rng.uniform(0.2, 0.8)) ** 2) < 0.05
        pixels = np.where(blob[..., None], colour, 255 - colour)
    return np.clip(pixels, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Holds ``refs/ref.png`` (the reference image) and ``images/`` (generated images)."""
    folder = tmp_path_factory.mktemp("dino_root")
    (folder / "refs").mkdir()
    Image.fromarray(_pixels(np.random.default_rng(1), 2)).save(folder / REF_NAME)
    return folder


@pytest.fixture(scope="module")
def items(root: Path) -> dict[str, list[ImageItem]]:
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    out: dict[str, list[ImageItem]] = {}
    counts = {VARIED: 5, SUBJECT: 3, ONE_REF: 1, SINGLE: 1}
    for prompt, n in counts.items():
        out[prompt.id] = []
        for k in range(n):
            path = images / f"{prompt.id}_i{k}.png"
            Image.fromarray(_pixels(rng, k + len(out))).save(path)
            out[prompt.id].append(ImageItem("tiny", prompt.category, prompt, k, k, path, f"sha-{prompt.id}-{k}"))
    same = _pixels(rng, 0)
    out[SAME.id] = []
    for k in range(3):
        path = images / f"{SAME.id}_i{k}.png"
        Image.fromarray(same).save(path)
        out[SAME.id].append(ImageItem("tiny", SAME.category, SAME, k, k, path, f"sha-{SAME.id}-{k}"))
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return build_tiny_dino(tmp_path_factory.mktemp("tiny_dino"), seed=1)


def _all(items: dict[str, list[ImageItem]]) -> list[ImageItem]:
    flat = [item for members in items.values() for item in members]
    return flat[::2] + flat[1::2]  # prompts interleaved, indices out of order


def _score(options: dict, items: list[ImageItem], root: Path, **extra) -> dict[str, dict]:
    metric = DinoFeatures({**options, "reference_root": str(root), **extra})
    metric.load("cpu")
    rows = metric.score(items)
    assert len({r["prompt_id"] for r in rows}) == len(rows)
    return {r["prompt_id"]: r for r in rows}


def test_options_and_files(tiny: dict) -> None:
    assert DinoFeatures.default_options == {
        "model": "facebook/dinov2-base",
        "batch_size": 32,
        "reference_root": None,
        "clip_model": "ViT-L-14",
        "clip_pretrained": "openai",
        "clip_config_file": None,
    }
    assert (DinoFeatures.name, DinoFeatures.table, DinoFeatures.unit) == ("dino", "scores_dino", "prompt")
    folder = Path(tiny["model"])
    assert (folder / "config.json").is_file() and (folder / "preprocessor_config.json").is_file()
    assert list(folder.glob("*.safetensors"))
    assert Path(tiny["clip_pretrained"]).suffix == ".safetensors"
    with pytest.raises(ValueError, match="unknown option"):
        DinoFeatures({"modle": "x"})
    with pytest.raises(ValueError, match="batch_size"):
        DinoFeatures({"batch_size": 0})


def test_cheap_import() -> None:
    code = (
        "import sys, bench_assets.metrics.dino; "
        "heavy = sorted(m for m in ('torch', 'transformers', 'open_clip') if m in sys.modules); "
        "assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def _cos(a, b) -> float:
    return float(a @ b / (a.norm() * b.norm()))


def test_matches_hf_model_one_image_at_a_time(tiny: dict, items: dict[str, list[ImageItem]], root: Path) -> None:
    """(a) value = 1 - mean pairwise cosine of CLS tokens; dino_i / clip_i = mean cosine to the reference."""
    import open_clip
    import torch
    from transformers import AutoImageProcessor, AutoModel

    model = AutoModel.from_pretrained(tiny["model"]).eval()
    processor = AutoImageProcessor.from_pretrained(tiny["model"])
    open_clip.add_model_config(tiny["clip_config_file"])
    clip, _, clip_preprocess = open_clip.create_model_and_transforms(
        tiny["clip_model"], pretrained=tiny["clip_pretrained"]
    )
    clip.eval()

    def dino(path: Path) -> torch.Tensor:
        pixels = processor(images=Image.open(path).convert("RGB"), return_tensors="pt")["pixel_values"]
        assert pixels.shape[-2:] == (TINY_DINO_IMAGE_SIZE, TINY_DINO_IMAGE_SIZE)
        return model(pixel_values=pixels).last_hidden_state[:, 0][0].double()

    def clip_embed(path: Path) -> torch.Tensor:
        return clip.encode_image(clip_preprocess(Image.open(path).convert("RGB")).unsqueeze(0))[0].double()

    with torch.no_grad():
        ref_dino, ref_clip = dino(root / REF_NAME), clip_embed(root / REF_NAME)
        expected = {}
        for prompt in (VARIED, SUBJECT, ONE_REF, SAME):
            members = items[prompt.id]
            e = [dino(i.key) for i in members]
            cosines = [_cos(e[a], e[b]) for a, b in itertools.combinations(range(len(e)), 2)]
            entry = {"cosines": cosines}
            if prompt.metadata.get("reference_image"):
                entry["dino_i"] = float(np.mean([_cos(x, ref_dino) for x in e]))
                entry["clip_i"] = float(np.mean([_cos(clip_embed(i.key), ref_clip) for i in members]))
            expected[prompt.id] = entry
    spread = expected[VARIED.id]["cosines"]
    assert max(spread) - min(spread) > 0.01, "pairs should differ, or a wrong pairing could pass"

    rows = _score(tiny, _all(items), root)
    assert set(rows) == {VARIED.id, SUBJECT.id, ONE_REF.id, SAME.id}  # SINGLE: one image, no reference
    for prompt_id, entry in expected.items():
        row = rows[prompt_id]
        n = len(items[prompt_id])
        assert row["image_index"] is None
        assert (row["n_images"], row["n_pairs"]) == (n, n * (n - 1) // 2)
        if entry["cosines"]:
            assert row["mean_cosine"] == pytest.approx(np.mean(entry["cosines"]), abs=1e-5)
            assert row["value"] == pytest.approx(1.0 - np.mean(entry["cosines"]), abs=1e-5)
            low, high = DinoFeatures.value_range
            assert low <= row["value"] <= high
        else:  # one image with a reference: a row, but no diversity
            assert row["value"] is None and row["mean_cosine"] is None
        if "dino_i" in entry:
            assert row["dino_i"] == pytest.approx(entry["dino_i"], abs=1e-5)
            assert row["clip_i"] == pytest.approx(entry["clip_i"], abs=1e-5)
            assert row["reference_image"] == REF_NAME
        else:
            assert "dino_i" not in row and "clip_i" not in row
    assert rows[SAME.id]["value"] == 0.0


def test_batch_invariance(tiny: dict, items: dict[str, list[ImageItem]], root: Path) -> None:
    """(b) One image per forward, three, or all at once; prompts split across calls: the same rows."""
    everything = _all(items)
    one = _score(tiny, everything, root, batch_size=1)
    three = _score(tiny, everything, root, batch_size=3)
    metric = DinoFeatures({**tiny, "reference_root": str(root), "batch_size": 32})
    metric.load("cpu")
    split = {}
    for prompt_id in items:
        for row in metric.score(items[prompt_id][::-1]):
            split[row["prompt_id"]] = row
    for other in (three, split):
        assert set(other) == set(one)
        for prompt_id, row in one.items():
            assert set(row) == set(other[prompt_id])
            for key in ("value", "mean_cosine", "dino_i", "clip_i"):
                if row.get(key) is None:
                    assert other[prompt_id].get(key) is None
                else:
                    assert other[prompt_id][key] == pytest.approx(row[key], abs=1e-5)


def test_no_reference_never_loads_clip(tiny: dict, items: dict[str, list[ImageItem]], root: Path) -> None:
    """(c) CLIP is loaded at first need: without reference images a missing CLIP checkpoint is never touched."""
    options = {**tiny, "clip_pretrained": str(root / "no-such-clip.safetensors")}
    metric = DinoFeatures({**options, "reference_root": str(root)})
    metric.load("cpu")
    rows = metric.score(items[VARIED.id] + items[SAME.id] + items[SINGLE.id])
    assert {r["prompt_id"] for r in rows} == {VARIED.id, SAME.id}
    assert metric._clip is None
    assert metric.score(items[SINGLE.id]) == []
    with pytest.raises(RuntimeError, match="no-such-clip"):
        metric.score(items[SUBJECT.id])  # now it is needed, and the checkpoint is missing


def test_reference_paths(
    tiny: dict, items: dict[str, list[ImageItem]], root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(d) Absolute paths; relative to reference_root; to the data dir's parent by default; to the cwd."""
    metric = DinoFeatures({**tiny, "reference_root": str(root)})
    absolute = (root / REF_NAME).resolve()
    assert metric.resolve_reference(str(absolute)) == absolute
    assert metric.resolve_reference(REF_NAME) == absolute

    default = DinoFeatures(tiny)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCH_DATA_DIR", str(root / "data"))  # its parent holds refs/
    assert default.resolve_reference(REF_NAME) == absolute
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "elsewhere" / "data"))
    with pytest.raises(FileNotFoundError, match="ref.png"):
        default.resolve_reference(REF_NAME)
    monkeypatch.chdir(root)  # relative to the working directory
    assert default.resolve_reference(REF_NAME) == absolute
    with pytest.raises(ValueError, match="reference_image"):
        default.resolve_reference(3)

    # A named reference that does not exist is an error, not a silently missing column.
    monkeypatch.chdir(tmp_path)
    missing = Prompt(id="dog-009", category="object", prompt="x", metadata={"reference_image": "refs/nope.png"})
    item = ImageItem("tiny", "object", missing, 0, 0, items[VARIED.id][0].key, "sha")
    metric.load("cpu")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        metric.score([item])


def test_reference_identical_to_image(tiny: dict, root: Path) -> None:
    """(e) Images equal to the reference: DINO-I and CLIP-I are 1, diversity 0."""
    prompt = Prompt(id="copy-001", category="object", prompt="x", metadata={"reference_image": str(root / REF_NAME)})
    copies = [ImageItem("tiny", "object", prompt, k, k, root / REF_NAME, "sha") for k in range(2)]
    row = _score(tiny, copies, root)[prompt.id]
    assert row["dino_i"] == pytest.approx(1.0, abs=1e-6)
    assert row["clip_i"] == pytest.approx(1.0, abs=1e-6)
    assert row["value"] == pytest.approx(0.0, abs=1e-6)


def test_identical_images_are_exactly_zero_never_negative(tiny: dict, tmp_path: Path) -> None:
    """Float32 unit vectors dot to 1 + 4.7e-08 for some images (1 - 1e-08 for others): without
    the snap to the range, "1 - mean cosine" of identical images is -4.7e-08, below [0, 2]."""
    rng = np.random.default_rng(0)
    items = []
    for n in range(4):  # noise images 1 and 3 of this seed come out above 1 on CPU
        path = tmp_path / f"same{n}.png"
        Image.fromarray(rng.uniform(0, 255, (SIZE, SIZE, 3)).astype(np.uint8)).save(path)
        prompt = Prompt(id=f"same-{n}", category="object", prompt="a copy")
        items += [ImageItem("tiny", "object", prompt, k, k, path, "sha") for k in range(3)]
    rows = _score(tiny, items, tmp_path)
    assert {pid: row["value"] for pid, row in rows.items()} == {f"same-{n}": 0.0 for n in range(4)}
    assert max(row["mean_cosine"] for row in rows.values()) > 1.0, "the raw mean keeps the round-off"


def test_snap_to_range_moves_round_off_only() -> None:
    from bench_assets.metrics.base import snap_to_range

    assert snap_to_range(-6.6e-08, (0.0, 2.0)) == 0.0
    assert snap_to_range(1e-08, (0.0, 2.0)) == 0.0
    assert snap_to_range(100.000004, (0.0, 100.0)) == 100.0
    assert snap_to_range(0.5, (0.0, 2.0)) == 0.5
    assert snap_to_range(-0.01, (0.0, 2.0)) == -0.01, "a real bug stays visible to the range check"


def test_score_before_load_fails(items: dict[str, list[ImageItem]]) -> None:
    with pytest.raises(RuntimeError, match="load"):
        DinoFeatures().score(items[VARIED.id])
