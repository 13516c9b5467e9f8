"""Speed knobs change how a pipeline runs, not which image a seed gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench_assets.demo.tiny_models import build_tiny_sd_pipeline
from bench_assets.generation.runtime import RuntimeOptions, apply_runtime


def _image(pipe) -> np.ndarray:
    return pipe(prompt=["a red bicycle", "a blue car"], num_inference_steps=3, guidance_scale=5.0,
                width=64, height=64, generator=[torch.Generator("cpu").manual_seed(s) for s in (1, 2)],
                output_type="np").images


def test_attention_and_vae_options_keep_the_pixels():
    pipe = build_tiny_sd_pipeline(seed=3, sample_size=32)
    pipe.set_progress_bar_config(disable=True)
    reference = _image(apply_runtime(pipe, RuntimeOptions(attention="eager"), "cpu"))
    assert type(next(iter(pipe.unet.attn_processors.values()))).__name__ == "AttnProcessor"

    fast = apply_runtime(pipe, RuntimeOptions(attention="sdpa", vae_slicing=True, vae_tiling=True), "cpu")
    assert type(next(iter(pipe.unet.attn_processors.values()))).__name__ == "AttnProcessor2_0"
    assert pipe.vae.use_slicing and pipe.vae.use_tiling
    np.testing.assert_allclose(_image(fast), reference, atol=1e-4)

    apply_runtime(pipe, RuntimeOptions(), "cpu")
    assert not pipe.vae.use_slicing and not pipe.vae.use_tiling, "options are set, not only switched on"


def test_bad_options_and_offload_without_cuda_are_clear_errors():
    with pytest.raises(ValueError, match="attention 'flash3'"):
        RuntimeOptions(attention="flash3")
    with pytest.raises(ValueError, match="cpu_offload 'some'"):
        RuntimeOptions(cpu_offload="some")
    pipe = build_tiny_sd_pipeline(seed=3, sample_size=32)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        apply_runtime(pipe, RuntimeOptions(cpu_offload="model"), "cpu")
