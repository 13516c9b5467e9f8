"""Loading pipelines from the drop folder, offline, and choosing samplers."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from bench_assets.models.registry import ModelKind, scan_models  # noqa: E402
from bench_assets.core.settings import SAMPLERS  # noqa: E402
from bench_assets.demo.tiny_models import build_tiny_sd_pipeline, save_diffusers_folder, save_single_file  # noqa: E402
from bench_assets.generation.pipelines import (  # noqa: E402
    ModelLoadError,
    apply_sampler,
    load_pipeline,
    resolve_device,
    resolve_dtype,
)

PROMPT = "a red bicycle leaning on a wall"


@pytest.fixture(scope="module")
def tiny_drop(tmp_path_factory):
    """One tiny pipeline saved both ways into a drop folder, plus the pipeline itself."""
    models = tmp_path_factory.mktemp("drop") / "models"
    pipe = build_tiny_sd_pipeline(seed=7)
    save_diffusers_folder(pipe, models / "tiny-folder")
    save_single_file(pipe, models / "tiny-single.safetensors")
    return models, pipe


def _generate(pipe, seed: int = 123):
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(
        [PROMPT, "a blue car"], num_inference_steps=3, height=64, width=64, guidance_scale=5.0,
        generator=generator, output_type="np",
    ).images


def test_folder_and_single_file_load_offline_and_give_identical_images(tiny_drop, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models, original = tiny_drop
    entries = {e.key: e for e in scan_models(models)}
    assert entries["tiny-folder"].kind == ModelKind.DIFFUSERS
    assert entries["tiny-single"].kind == ModelKind.SINGLE_FILE
    assert entries["tiny-single"].config_sidecar.is_dir()

    from_folder = load_pipeline(entries["tiny-folder"], "cpu", "fp32")
    from_file = load_pipeline(entries["tiny-single"], "cpu", "fp32")
    assert type(from_file).__name__ == "StableDiffusionPipeline"
    assert from_file.safety_checker is None and from_folder.safety_checker is None
    assert type(from_file.scheduler).__name__ == "PNDMScheduler"  # from the sidecar, not a guess

    expected = _generate(original)
    assert expected.shape == (2, 64, 64, 3)
    assert expected.std() > 0.01  # a real image, not a constant
    for loaded in (from_folder, from_file):
        assert abs(_generate(loaded) - expected).max() < 1e-5
    assert abs(_generate(from_file, seed=124) - expected).max() > 1e-3  # the seed matters


def test_different_seeds_are_different_models(tiny_drop):
    _, seven = tiny_drop
    assert abs(_generate(seven) - _generate(build_tiny_sd_pipeline(seed=8))).max() > 1e-2


def _entry(models: Path, name: str):
    return next(e for e in scan_models(models) if e.name == name)


def test_garbage_safetensors_raises_model_load_error_naming_the_file(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    path = models / "garbage.safetensors"
    path.write_bytes(os.urandom(4096))
    entry = _entry(models, "garbage")
    assert entry.kind == ModelKind.INVALID  # the scan already notices
    with pytest.raises(ModelLoadError) as caught:
        load_pipeline(entry, "cpu", "fp32")
    assert str(caught.value).startswith(str(path))
    # Even if the scan were fooled, loading fails with the path, not a raw library error.
    with pytest.raises(ModelLoadError) as caught:
        load_pipeline(replace(entry, kind=ModelKind.SINGLE_FILE, error=None), "cpu", "fp32")
    assert str(caught.value).startswith(str(path))


def test_truncated_single_file_raises_model_load_error(tiny_drop, tmp_path):
    source_models, _ = tiny_drop
    models = tmp_path / "models"
    models.mkdir()
    data = (source_models / "tiny-single.safetensors").read_bytes()
    path = models / "cut.safetensors"
    path.write_bytes(data[: len(data) // 2])  # header intact, tensors missing: a copy still in progress
    shutil.copytree(source_models / "tiny-single.config", models / "cut.config")
    entry = _entry(models, "cut")
    assert entry.kind == ModelKind.SINGLE_FILE
    with pytest.raises(ModelLoadError) as caught:
        load_pipeline(entry, "cpu", "fp32")
    assert str(caught.value).startswith(str(path))
    assert "could not load" in str(caught.value)


def test_truncated_weights_in_a_folder_raise_model_load_error(tiny_drop, tmp_path):
    source_models, _ = tiny_drop
    folder = tmp_path / "models" / "broken"
    shutil.copytree(source_models / "tiny-folder", folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelLoadError) as caught:
        load_pipeline(_entry(tmp_path / "models", "broken"), "cpu", "fp32")
    assert str(caught.value).startswith(str(folder))


def test_pickle_checkpoint_is_refused(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "old.ckpt").write_bytes(b"not loaded")
    with pytest.raises(ModelLoadError, match="pickle"):
        load_pipeline(_entry(models, "old"), "cpu", "fp32")


@pytest.mark.parametrize(
    ("sampler", "cls", "karras"),
    [
        ("euler", "EulerDiscreteScheduler", False),
        ("euler_a", "EulerAncestralDiscreteScheduler", None),
        ("ddim", "DDIMScheduler", None),
        ("pndm", "PNDMScheduler", None),
        ("dpmpp_2m", "DPMSolverMultistepScheduler", False),
        ("dpmpp_2m_karras", "DPMSolverMultistepScheduler", True),
    ],
)
def test_apply_sampler(sampler, cls, karras):
    from diffusers import DPMSolverMultistepScheduler

    # Start from a Karras DPM++ scheduler: a named sampler must not inherit its options.
    start = DPMSolverMultistepScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, use_karras_sigmas=True
    )
    pipe = SimpleNamespace(scheduler=start)
    apply_sampler(pipe, sampler)
    assert type(pipe.scheduler).__name__ == cls
    assert pipe.scheduler.config.beta_end == 0.012  # the model's noise schedule is kept
    if karras is not None:
        assert pipe.scheduler.config.use_karras_sigmas is karras


def test_apply_sampler_default_keeps_scheduler_and_unknown_is_refused():
    assert set(SAMPLERS) >= {"default", "euler", "dpmpp_2m_karras"}
    scheduler = object()
    pipe = SimpleNamespace(scheduler=scheduler)
    apply_sampler(pipe, "default")
    assert pipe.scheduler is scheduler
    with pytest.raises(ValueError, match="heun"):
        apply_sampler(pipe, "heun")


def test_resolve_device_and_dtype():
    assert resolve_dtype("auto", "cuda") == "fp16"
    assert resolve_dtype("auto", "cuda:1") == "fp16"
    assert resolve_dtype("auto", "cpu") == "fp32"
    assert resolve_dtype("auto", "mps") == "fp32"
    assert resolve_dtype("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError):
        resolve_dtype("int8", "cpu")
    assert resolve_device("cpu") == "cpu"
    auto = resolve_device()
    assert auto == ("cuda" if torch.cuda.is_available() else auto)
    assert auto in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            resolve_device("cuda")
