"""``bench demo``: tiny random-weight models that exercise every real code path.

Three tiny Stable Diffusion pipelines (two diffusers folders, one single-file
checkpoint with the original tensor naming, so both loading paths run), each
with a sidecar asking for small images; a tiny open_clip model and LPIPS on a
random backbone as scorers. Their *numbers* mean nothing (random weights);
the pipeline that produces them is the real one.

Everything is built once: re-running skips what exists.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import yaml

from bench_assets.core.config import ConfigError, config_path
from bench_assets.core.paths import DataPaths
from bench_assets.core.yaml_files import read_yaml_mapping

DEMO_SETTINGS = {
    "width": 32,
    "height": 32,
    "steps": 4,
    "guidance_scale": 5.0,
    "sampler": "euler",
    "images_per_prompt": 3,
    "batch_size": 18,
}
DEMO_MODELS = (("tiny-sd-alpha", "folder", 1), ("tiny-sd-beta", "single_file", 2), ("tiny-sd-gamma", "folder", 3))
CONFIG_HEADER = (
    "# Written by `bench demo`: the demo scores with tiny random-weight scorers.\n"
    "# Delete this file (or edit it) to score with the real models\n"
    "# (ViT-L/14 OpenAI CLIP, LPIPS on a pretrained AlexNet).\n"
)


def _build_model(models_dir: Path, name: str, layout: str, seed: int) -> None:
    from bench_assets.demo.tiny_models import build_tiny_sd_pipeline, save_diffusers_folder, save_single_file

    final = models_dir / (f"{name}.safetensors" if layout == "single_file" else name)
    if final.exists():
        return
    pipe = build_tiny_sd_pipeline(seed=seed)
    staging = models_dir / f".building-{name}"  # hidden: the sensor ignores it until the rename
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if layout == "single_file":
        save_single_file(pipe, staging / final.name)
        (staging / f"{name}.config").rename(models_dir / f"{name}.config")
        (staging / final.name).rename(final)
    else:
        save_diffusers_folder(pipe, staging / name)
        (staging / name).rename(final)
    shutil.rmtree(staging, ignore_errors=True)


def _write_sidecar(models_dir: Path, name: str) -> None:
    sidecar = models_dir / f"{name}.settings.yaml"
    if not sidecar.exists():
        sidecar.write_text("# demo model: tiny images, few steps\n" + yaml.safe_dump(DEMO_SETTINGS))


def _tiny_clip(root: Path) -> dict:
    from bench_assets.demo.tiny_scorers import build_tiny_open_clip

    return build_tiny_open_clip(root / "tiny-clip")


def _tiny_lpips(root: Path) -> dict:
    from bench_assets.demo.tiny_scorers import tiny_lpips_options

    return tiny_lpips_options(size=64)


def _tiny_vlm(root: Path) -> dict:
    from bench_assets.demo.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(root / "tiny-vlm")


def _tiny_geneval(root: Path) -> dict:
    from bench_assets.demo.tiny_detector import build_tiny_geneval

    return build_tiny_geneval(root / "tiny-geneval")


def _tiny_msssim(root: Path) -> dict:
    from bench_assets.demo.tiny_dino import tiny_msssim_options

    return tiny_msssim_options()


def _tiny_dino(root: Path) -> dict:
    from bench_assets.demo.tiny_dino import build_tiny_dino

    return build_tiny_dino(root / "tiny-dino")


def _tiny_text(root: Path) -> dict:
    from bench_assets.demo.tiny_judges import tiny_text_options

    return tiny_text_options()


def _tiny_aesthetic(root: Path) -> dict:
    from bench_assets.demo.tiny_judges import build_tiny_aesthetic

    return build_tiny_aesthetic(root / "tiny-aesthetic")


def _tiny_preference(root: Path) -> dict:
    from bench_assets.demo.tiny_judges import build_tiny_preference

    return build_tiny_preference(root / "tiny-pickscore")


# metric name -> builder of its tiny scorer (weights under ``root``), returning the metric's options.
TINY_SCORERS: dict[str, Callable[[Path], dict]] = {
    "clip_score": _tiny_clip,
    "lpips_diversity": _tiny_lpips,
    "vqascore": _tiny_vlm,
    "tifa": _tiny_vlm,
    "geneval": _tiny_geneval,
    "msssim_diversity": _tiny_msssim,
    "text_rendering": _tiny_text,
    "aesthetic": _tiny_aesthetic,
    "preference": _tiny_preference,
    "dino": _tiny_dino,
    "dsg": _tiny_vlm,
}


def tiny_scorer_options(root: Path, names: list[str] | None = None) -> dict[str, dict]:
    """Build the tiny scorers of ``names`` (default: all) and return their options.

    Metrics sharing a scorer (VQAScore, TIFA and DSG share one VLM) build it once.
    """
    built: dict[Callable[[Path], dict], dict] = {}
    options = {}
    for name in names or list(TINY_SCORERS):
        builder = TINY_SCORERS[name]
        if builder not in built:
            built[builder] = builder(root)
        options[name] = dict(built[builder])
    return options


def _write_demo_config(paths: DataPaths) -> None:
    """Write (or complete) the demo's config; a config the user wrote is left alone."""
    target = config_path(paths)
    existing: dict = {}
    if target.exists():
        text = target.read_text()
        if not text.startswith(CONFIG_HEADER):
            print(f"keeping your {target}")
            return
        existing = read_yaml_mapping(target, ConfigError, "a mapping of config sections")
    metrics = existing.setdefault("metrics", {})
    missing = [name for name in TINY_SCORERS if name not in metrics]
    if not missing:
        return
    metrics.update(tiny_scorer_options(paths.metric_models, missing))
    target.write_text(CONFIG_HEADER + yaml.safe_dump(existing, sort_keys=True))
    print(f"wrote tiny scorers for {', '.join(missing)} to {target}")


def prepare_demo(paths: DataPaths, n_models: int = 3) -> None:
    paths.models.mkdir(parents=True, exist_ok=True)
    for name, layout, seed in DEMO_MODELS[:n_models]:
        _write_sidecar(paths.models, name)
        _build_model(paths.models, name, layout, seed)
    _write_demo_config(paths)
