"""Cards load real (tiny) pipelines: a Hugging Face repo from a fake hub cache,
a LoRA fused into a tiny base, an allowed pickle checkpoint; and image folders
are cut into the partition's images without any pipeline.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from bench_assets.models.registry import ModelKind, scan_models
from bench_assets.prompts.prompt import Prompt
from bench_assets.core.settings import GenerationSettings
from bench_assets.generation.generate import GenerationRequest
from bench_assets.generation.image_folder import ingest_image_folder, split_grid
from bench_assets.storage.store import LocalStore
from bench_assets.generation.image_set import read_png_meta
from bench_assets.generation.pipelines import ModelLoadError, load_pipeline

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _card(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def _entry(models, key):
    return {e.key: e for e in scan_models(models)}[key]


def _image(pipe, seed: int = 0):
    import torch

    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe("a red bicycle", num_inference_steps=2, guidance_scale=5.0, width=64, height=64,
                generator=generator, output_type="np").images[0]


# --------------------------------------------------------------------------- Hugging Face repo


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub cache like the real one (models--org--name/snapshots/<commit> + refs/main) and its source."""
    from bench_assets.demo.tiny_models import build_tiny_sd_pipeline, save_diffusers_folder

    cache = tmp_path_factory.mktemp("hub")
    repo = cache / "models--tiny-org--tiny-sd"
    pipe = build_tiny_sd_pipeline(seed=3)
    save_diffusers_folder(pipe, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return cache, _image(pipe)


def test_hf_repo_card_loads_from_the_user_cache_offline(tmp_path, hub, monkeypatch):
    cache, expected = hub
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _card(tmp_path / "tiny-hub.yaml", {"repo": "tiny-org/tiny-sd", "dtype": "fp32"})
    entry = _entry(tmp_path, "tiny-hub")
    assert entry.kind == ModelKind.HF_REPO and COMMIT in entry.signature
    pipe = load_pipeline(entry, "cpu", "fp32")
    assert pipe.safety_checker is None
    np.testing.assert_allclose(_image(pipe), expected, atol=1e-5)  # the cached weights, not others


def test_hf_repo_failure_names_the_card_and_never_the_token(tmp_path, hub, monkeypatch):
    cache, _ = hub
    secret = "hf_notARealTokenButSecret123"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", secret)
    card = _card(tmp_path / "absent.yaml", {"repo": "tiny-org/not-downloaded"})
    with pytest.raises(ModelLoadError) as info:
        load_pipeline(_entry(tmp_path, "absent"), "cpu", "fp32")
    message = str(info.value)
    assert message.startswith(f"{card}: could not load hf_repo model")
    assert secret not in message


# --------------------------------------------------------------------------- LoRA


def _save_tiny_lora(path) -> None:
    """A peft LoRA on the tiny UNet's attention projections, non-zero, in diffusers' file format."""
    import torch
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from bench_assets.demo.tiny_models import build_tiny_sd_pipeline

    unet = build_tiny_sd_pipeline(seed=1).unet
    config = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                        init_lora_weights=False)  # random A and B: the LoRA changes the output
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        unet.add_adapter(config)
    layers = get_peft_model_state_dict(unet)
    assert layers and all(float(t.abs().sum()) > 0 for t in layers.values())
    StableDiffusionPipeline.save_lora_weights(path.parent, unet_lora_layers=layers, weight_name=path.name)


@pytest.fixture(scope="module")
def lora_models(tmp_path_factory):
    from bench_assets.demo.tiny_models import build_tiny_sd_pipeline, save_diffusers_folder

    models = tmp_path_factory.mktemp("lora_models")
    save_diffusers_folder(build_tiny_sd_pipeline(seed=1), models / "tiny-base")
    _save_tiny_lora(models / "my-style.safetensors")
    return models


def test_lora_changes_the_output_and_scale_controls_how_much(lora_models):
    base = _image(load_pipeline(_entry(lora_models, "tiny-base"), "cpu", "fp32"))
    distance = {}
    for scale in (1.0, 0.25, 0.0):
        name = f"styled-{str(scale).replace('.', '_')}"
        _card(lora_models / f"{name}.yaml", {"base": "tiny-base", "lora": "my-style.safetensors", "scale": scale})
        entry = _entry(lora_models, name)
        assert entry.kind == ModelKind.LORA and entry.base.key == "tiny-base"
        distance[scale] = float(np.abs(_image(load_pipeline(entry, "cpu", "fp32")) - base).mean())
    assert distance[1.0] > 1e-3, "the LoRA must measurably change the image"
    assert distance[0.0] < distance[0.25] < distance[1.0]
    assert distance[0.0] < 1e-5  # scale 0 is the base model


def test_lora_that_does_not_fit_its_base_fails_with_the_card_path(lora_models, tmp_path):
    from safetensors.torch import save_file
    import torch

    wrong = tmp_path / "wrong.safetensors"
    save_file({"unet.down_blocks.0.attentions.0.no_such.lora_A.weight": torch.ones(4, 4),
               "unet.down_blocks.0.attentions.0.no_such.lora_B.weight": torch.ones(4, 4)}, str(wrong))
    card = _card(lora_models / "wrong-style.yaml", {"base": "tiny-base", "lora": str(wrong)})
    try:
        with pytest.raises(ModelLoadError) as info:
            load_pipeline(_entry(lora_models, "wrong-style"), "cpu", "fp32")
    finally:
        card.unlink()
    assert str(info.value).startswith(f"{card}: could not load lora model")


# --------------------------------------------------------------------------- pickle opt-in


def test_allowed_pickle_checkpoint_loads_the_same_weights(tmp_path):
    import torch
    from safetensors.torch import load_file

    from bench_assets.demo.tiny_models import build_tiny_sd_pipeline, save_single_file

    pipe = build_tiny_sd_pipeline(seed=5)
    single = save_single_file(pipe, tmp_path / "old.safetensors")
    torch.save({"state_dict": load_file(str(single))}, tmp_path / "old.ckpt")
    single.unlink()
    assert _entry(tmp_path, "old").kind == ModelKind.INVALID  # refused without the card
    _card(tmp_path / "old-trusted.yaml", {"checkpoint": "old.ckpt", "allow_pickle": True})
    entry = _entry(tmp_path, "old-trusted")
    assert entry.kind == ModelKind.PICKLE_CHECKPOINT
    loaded = load_pipeline(entry, "cpu", "fp32")  # configs from the old.config/ sidecar, next to the file
    for name, tensor in pipe.unet.state_dict().items():
        torch.testing.assert_close(loaded.unet.state_dict()[name], tensor, msg=name)


# --------------------------------------------------------------------------- image folders

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40)]  # tiles 0..3, row-major


def _grid_png(path, colours, tile=16):
    from PIL import Image

    pixels = np.zeros((2 * tile, 2 * tile, 3), dtype=np.uint8)
    for index, colour in enumerate(colours):
        row, col = divmod(index, 2)
        pixels[row * tile : (row + 1) * tile, col * tile : (col + 1) * tile] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _request(entry, prompts, images_dir, settings=None):
    overrides = entry.settings_overrides()
    settings = settings or GenerationSettings().with_overrides(overrides, source=str(entry.path))
    return GenerationRequest(entry=entry, model_fingerprint="f" * 64, category="object",
                             prompts=tuple(prompts), settings=settings, images=LocalStore(images_dir))


def _pixels(path):
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def test_split_grid_is_row_major():
    pixels = np.arange(4 * 6 * 3, dtype=np.int64).reshape(4, 6, 3)
    tiles = split_grid(pixels, 2, 3)
    assert [t.shape for t in tiles] == [(2, 2, 3)] * 6
    assert tiles[1][0, 0, 0] == pixels[0, 2, 0] and tiles[3][0, 0, 0] == pixels[2, 0, 0]


def test_image_folder_grids_become_tiles_in_order_and_black_tiles_fail(tmp_path):
    models, shots = tmp_path / "models", tmp_path / "models" / "api-shots"
    _grid_png(shots / "object" / "p1.png", COLOURS)  # category subfolder
    _grid_png(shots / "p2.png", [COLOURS[0], COLOURS[1], (0, 0, 0), COLOURS[3]])  # tile 2 padded black
    _card(models / "api.yaml", {"images": "api-shots", "grid": [2, 2]})
    entry = _entry(models, "api")
    prompts = [Prompt("p1", "object", "a red bicycle"), Prompt("p2", "object", "a teapot"),
               Prompt("p3", "object", "a cat")]  # p3 has no file
    report = ingest_image_folder(_request(entry, prompts, tmp_path / "images"))

    out = tmp_path / "images" / "api" / "object"
    assert report.expected == 12 and report.generated == 7
    assert sorted((f.prompt_id, f.image_index) for f in report.failures) == [
        ("p2", 2), ("p3", 0), ("p3", 1), ("p3", 2), ("p3", 3)]
    black = next(f for f in report.failures if f.prompt_id == "p2")
    assert "all black" in black.error and str(shots / "p2.png") in black.error
    assert "no image for prompt 'p3'" in next(f.error for f in report.failures if f.prompt_id == "p3")
    assert not (out / "p2_i2_s2.png").exists()
    for k, colour in enumerate(COLOURS):
        assert (_pixels(out / f"p1_i{k}_s{k}.png") == colour).all(), k
    meta = read_png_meta(out / "p1_i3_s3.png")
    assert meta["source_file"] == str(shots / "object" / "p1.png") and meta["source_tile"] == 3
    assert meta["set_fingerprint"] == report.set_fingerprint and (meta["width"], meta["height"]) == (16, 16)

    again = ingest_image_folder(_request(entry, prompts, tmp_path / "images"))
    assert (again.generated, again.present_before, again.set_fingerprint) == (0, 7, report.set_fingerprint)


def test_image_folder_per_prompt_folders_and_too_few_images(tmp_path):
    from PIL import Image

    models, shots = tmp_path / "models", tmp_path / "models" / "shots"
    (shots / "p1").mkdir(parents=True)
    for name, colour in (("img10.png", COLOURS[2]), ("img2.png", COLOURS[1]), ("img1.jpg", COLOURS[0])):
        Image.fromarray(np.full((8, 8, 3), colour, dtype=np.uint8)).save(shots / "p1" / name, quality=100)
    _card(models / "api.yaml", {"images": "shots", "settings": {"images_per_prompt": 4}})
    entry = _entry(models, "api")
    report = ingest_image_folder(_request(entry, [Prompt("p1", "object", "x")], tmp_path / "images"))
    out = tmp_path / "images" / "api" / "object"
    assert report.generated == 3
    for k, colour in enumerate(COLOURS[:3]):  # natural order: img1, img2, img10
        assert np.abs(_pixels(out / f"p1_i{k}_s{k}.png").astype(int) - colour).max() <= 3, k
    (failure,) = report.failures
    assert failure.image_index == 3 and "only 3 source image(s)" in failure.error


def test_image_folder_with_fewer_images_per_prompt_than_tiles_takes_the_first(tmp_path):
    models = tmp_path / "models"
    _grid_png(models / "shots" / "p1.png", COLOURS)
    _card(models / "api.yaml", {"images": "shots", "grid": [2, 2], "settings": {"images_per_prompt": 2}})
    entry = _entry(models, "api")
    report = ingest_image_folder(_request(entry, [Prompt("p1", "object", "x")], tmp_path / "images"))
    out = tmp_path / "images" / "api" / "object"
    assert (report.generated, report.failures) == (2, [])
    assert sorted(p.name for p in out.iterdir()) == ["p1_i0_s0.png", "p1_i1_s1.png"]
    assert (_pixels(out / "p1_i1_s1.png") == COLOURS[1]).all()
    assert read_png_meta(out / "p1_i1_s1.png")["source_tile"] == 1
