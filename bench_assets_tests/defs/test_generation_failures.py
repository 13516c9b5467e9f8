"""A failed generation is never saved as an image and never scored."""

from __future__ import annotations

import polars as pl
import torch
from safetensors.torch import load_file, save_file

from bench_assets.core.paths import DataPaths
from bench_assets.definitions import build_definitions
from bench_assets.defs.headless import root_cause
from dagster_helpers import materialize, register


def _poison_vae(folder):
    """NaN in the VAE decoder: every decoded image is NaN, like an fp16 overflow."""
    path = folder / "vae" / "diffusion_pytorch_model.safetensors"
    weights = load_file(path)
    weights["decoder.conv_out.bias"] = torch.full_like(weights["decoder.conv_out.bias"], float("nan"))
    save_file(weights, path)


def test_nan_images_are_failures_not_files(data_dir, instance):
    _poison_vae(data_dir / "models" / "tiny-a")
    defs = build_definitions(DataPaths(data_dir))
    register(instance, "tiny-a")
    result = materialize(defs, instance, "tiny-a", "object")
    assert not result.success
    assert "non-finite" in root_cause(result)
    assert not list((data_dir / "images").rglob("*.png"))
    failures = pl.read_parquet(data_dir / "warehouse" / "generation_failures" / "tiny-a" / "object.parquet")
    assert failures.height == 4 and set(failures["stage"]) == {"generate"}
    assert not (data_dir / "warehouse" / "scores_clip").exists()
