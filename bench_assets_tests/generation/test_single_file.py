"""Single-file SD 2.x and SDXL checkpoints, and v-prediction, through the real loader.

Each tiny pipeline is saved as a diffusers folder and as an original-layout
file converted by our code; both must load to the same pixels as the
pipeline they came from, which only holds if our LDM writer and diffusers'
single-file reader agree on every tensor.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from bench_assets.models.registry import ModelKind, scan_models  # noqa: E402
from bench_assets.demo.tiny_models import (  # noqa: E402
    build_tiny_sd2_pipeline,
    build_tiny_sdxl_pipeline,
    save_diffusers_folder,
    save_single_file,
)
from bench_assets.generation.pipelines import ModelLoadError, apply_sampler, load_pipeline  # noqa: E402

PROMPTS = ["a red bicycle leaning on a wall", "a blue car"]


@pytest.fixture(scope="module")
def drop(tmp_path_factory):
    """SD2 and SDXL tiny pipelines saved both ways, plus v-prediction variants of the SDXL file."""
    models = tmp_path_factory.mktemp("single") / "models"
    sd2, sdxl = build_tiny_sd2_pipeline(seed=3), build_tiny_sdxl_pipeline(seed=4)
    save_diffusers_folder(sd2, models / "sd2-folder")
    save_single_file(sd2, models / "sd2-file.safetensors")
    save_diffusers_folder(sdxl, models / "xl-folder")
    save_single_file(sdxl, models / "xl-file.safetensors")
    save_single_file(sdxl, models / "xl-v-pred.safetensors")  # the name says so
    save_single_file(sdxl, models / "xl-meta.safetensors", v_prediction="metadata")
    save_single_file(sdxl, models / "xl-keys.safetensors", v_prediction="keys", zero_terminal_snr=True)
    entries = {e.key: e for e in scan_models(models)}
    return entries, {"sd2": sd2, "xl": sdxl}


@pytest.fixture(scope="module")
def loaded(drop):
    """Pipelines loaded once through ``load_pipeline``, as the benchmark does."""
    entries, _ = drop
    cache: dict = {}

    def get(key):
        if key not in cache:
            cache[key] = load_pipeline(entries[key], "cpu", "fp32")
        return cache[key]

    return get


def _generate(pipe, seed: int = 11):
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(
        PROMPTS, num_inference_steps=3, height=64, width=64, guidance_scale=5.0, generator=generator, output_type="np"
    ).images


@pytest.mark.parametrize(
    ("name", "pipeline_class", "scheduler_class"),
    [
        ("sd2", "StableDiffusionPipeline", "DDIMScheduler"),
        ("xl", "StableDiffusionXLPipeline", "EulerDiscreteScheduler"),
    ],
)
def test_single_file_gives_the_pixels_of_the_pipeline_it_came_from(drop, loaded, name, pipeline_class, scheduler_class):
    entries, originals = drop
    assert entries[f"{name}-file"].kind == ModelKind.SINGLE_FILE
    from_file, from_folder = loaded(f"{name}-file"), loaded(f"{name}-folder")
    assert type(from_file).__name__ == pipeline_class
    assert type(from_file.scheduler).__name__ == scheduler_class  # from the sidecar, not a reference repo
    assert from_file.scheduler.config.prediction_type == "epsilon"

    expected = _generate(originals[name])
    assert expected.shape == (2, 64, 64, 3)
    assert expected.std() > 0.01  # a real image, not a constant
    assert abs(_generate(from_folder) - expected).max() < 1e-5
    assert abs(_generate(from_file) - expected).max() < 1e-5
    assert abs(_generate(from_file, seed=12) - expected).max() > 1e-3  # the comparison can fail


def test_sd2_and_sdxl_text_encoders_went_through_the_open_clip_path(drop, loaded):
    """The OpenCLIP towers (merged q/k/v in the file) come back exactly, pad token and all."""
    _, originals = drop
    pairs = [("sd2-file", "sd2", "text_encoder", "tokenizer"), ("xl-file", "xl", "text_encoder_2", "tokenizer_2")]
    for key, name, encoder, tokenizer in pairs:
        ours = getattr(originals[name], encoder).state_dict()
        theirs = getattr(loaded(key), encoder).state_dict()
        assert sorted(theirs) == sorted(ours), key
        assert all(torch.equal(theirs[k], ours[k]) for k in ours), key
        assert getattr(loaded(key), tokenizer).pad_token == "!", key


@pytest.mark.parametrize("key", ["xl-v-pred", "xl-meta", "xl-keys"])
def test_v_prediction_file_wins_over_an_epsilon_sidecar_and_survives_apply_sampler(drop, loaded, key):
    entries, _ = drop
    sidecar = json.loads((entries[key].config_sidecar / "scheduler" / "scheduler_config.json").read_text())
    assert sidecar["prediction_type"] == "epsilon"  # the config says epsilon; the file must win
    pipe = loaded(key)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    for sampler in ("dpmpp_2m", "euler"):
        apply_sampler(pipe, sampler)
        assert pipe.scheduler.config.prediction_type == "v_prediction", sampler
    ztsnr = key == "xl-keys"
    assert bool(pipe.scheduler.config.get("rescale_betas_zero_snr")) is ztsnr
    assert (pipe.scheduler.config.timestep_spacing == "trailing") is ztsnr
    if ztsnr:  # the last timestep has zero signal: sampling must still give finite, non-constant images
        images = _generate(pipe)
        assert torch.isfinite(torch.from_numpy(images)).all() and images.std() > 0.01


def test_v_prediction_changes_pixels_as_v_prediction_does(drop, loaded):
    """Same weights: the v file differs from the epsilon file, and equals the original sampled as v."""
    from diffusers import EulerDiscreteScheduler

    _, originals = drop
    epsilon, v_pred = loaded("xl-file"), loaded("xl-meta")
    apply_sampler(epsilon, "euler")
    apply_sampler(v_pred, "euler")
    assert abs(_generate(v_pred) - _generate(epsilon)).max() > 1e-2

    original = originals["xl"]
    saved = original.scheduler
    try:
        original.scheduler = EulerDiscreteScheduler.from_config(
            saved.config, prediction_type="v_prediction", use_karras_sigmas=False
        )
        assert abs(_generate(v_pred) - _generate(original)).max() < 1e-5
    finally:
        original.scheduler = saved


def test_a_sidecar_saying_v_prediction_is_kept_when_the_file_says_nothing(drop, tmp_path):
    entries, _ = drop
    models = tmp_path / "models"
    models.mkdir()
    os.link(entries["sd2-file"].path, models / "plain.safetensors")
    shutil.copytree(entries["sd2-file"].config_sidecar, models / "plain.config")
    config_file = models / "plain.config" / "scheduler" / "scheduler_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "prediction_type": "v_prediction"}))
    (entry,) = scan_models(models)
    assert load_pipeline(entry, "cpu", "fp32").scheduler.config.prediction_type == "v_prediction"

    # The model's own settings beat both the file and the config.
    (models / "plain.settings.yaml").write_text("prediction_type: epsilon\n")
    (entry,) = scan_models(models)
    assert load_pipeline(entry, "cpu", "fp32").scheduler.config.prediction_type == "epsilon"


def test_without_a_sidecar_configs_come_from_the_detected_architectures_reference_repo(drop, tmp_path, monkeypatch):
    """Offline with an empty HF cache the load fails, naming the repo chosen from the tensor names.

    diffusers alone would pick SD 1.5 for this file (its width is not SD 2.x's 1024).
    """
    entries, _ = drop
    models = tmp_path / "models"
    models.mkdir()
    os.link(entries["sd2-file"].path, models / "no-sidecar.safetensors")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    (entry,) = scan_models(models)
    with pytest.raises(ModelLoadError) as caught:
        load_pipeline(entry, "cpu", "fp32")
    assert str(caught.value).startswith(str(entry.path))
    assert "stabilityai/stable-diffusion-2-1" in str(caught.value)


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        (["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"], "LoRA"),
        (["model.diffusion_model.out.2.weight", "conditioner.embedders.0.model.text_projection"], "SDXL refiner"),
    ],
)
def test_non_checkpoints_fail_with_a_model_load_error_that_says_what_they_are(tmp_path, keys, says):
    from safetensors.torch import save_file

    models = tmp_path / "models"
    models.mkdir()
    save_file({key: torch.zeros(1) for key in keys}, str(models / "thing.safetensors"))
    (entry,) = scan_models(models)
    # Even past the registry (which may already mark it invalid), loading names the file and what it is.
    with pytest.raises(ModelLoadError, match=says) as caught:
        load_pipeline(replace(entry, kind=ModelKind.SINGLE_FILE, error=None), "cpu", "fp32")
    assert str(caught.value).startswith(str(entry.path))
