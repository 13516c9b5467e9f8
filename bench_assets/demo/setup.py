"""``bench demo``: tiny random-weight models that exercise every real code path.

Three tiny Stable Diffusion pipelines (two diffusers folders, one single-file
checkpoint with the original tensor naming, so both loading paths run), each
with a sidecar asking for small images; every metric scores with the tiny
random-weight scorer its registry row names (``Metric.tiny_scorer``). Their
*numbers* mean nothing (random weights); the pipeline that produces them is
the real one.

Everything is built once: re-running skips what exists.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench_assets.core.config import ConfigError, config_path
from bench_assets.core.paths import DataPaths
from bench_assets.core.yaml_files import read_yaml_mapping
from bench_assets.metrics.base import TinyScorer
from bench_assets.metrics.features import FEATURE_EXTRACTORS
from bench_assets.metrics.registry import METRICS

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
DEMO_DISTRIBUTION = {"bootstrap": 10}  # few repeats: the demo is about the pipeline, not the numbers
DEMO_REFERENCE = "demo-shapes"
DEMO_REFERENCE_IMAGES = 24
SHAPE_COLOURS = (("red", (220, 40, 40)), ("green", (40, 180, 60)), ("blue", (40, 80, 220)), ("yellow", (230, 210, 40)))
SHAPES = ("circle", "square", "triangle")
CONFIG_HEADER = (
    "# Written by `bench demo`: the demo scores with tiny random-weight scorers.\n"
    "# Delete this file (or edit it) to score with the real models\n"
    "# (ViT-L/14 OpenAI CLIP, LPIPS on a pretrained AlexNet).\n"
)


def _build_model(models_dir: Path, name: str, layout: str, seed: int) -> None:
    # tiny_models imports torch (through ldm_checkpoint): only when a model is really built.
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


def tiny_scorer_options(root: Path, names: list[str] | None = None) -> dict[str, dict]:
    """Build the tiny scorers of ``names`` (default: every registered metric) under ``root``; their options.

    Each metric's registry row names its scorer (``Metric.tiny_scorer``);
    metrics naming the same one (VQAScore, TIFA and DSG share one VLM) build it once.
    """
    chosen = names or list(METRICS)
    lacking = [name for name in chosen if METRICS[name].tiny_scorer is None]
    if lacking:
        raise ValueError(f"metric(s) {lacking} name no tiny_scorer: the demo would need their real weights")
    built: dict[TinyScorer, dict] = {}
    options = {}
    for name in chosen:
        scorer = METRICS[name].tiny_scorer
        if scorer not in built:
            built[scorer] = scorer.options(root)
        options[name] = dict(built[scorer])
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
    missing = [name for name in METRICS if name not in metrics]
    distribution = existing.setdefault("distribution", {})
    if not missing and "inception" in distribution:
        return
    metrics.update(tiny_scorer_options(paths.metric_models, missing))
    if "inception" not in distribution:  # the FID Inception's tiny stand-in (metrics/tiny/inception.py)
        distribution.update(DEMO_DISTRIBUTION, inception=FEATURE_EXTRACTORS["inception_clean"].tiny_scorer.options(
            paths.metric_models))
        missing.append("the distribution metrics' Inception")
    target.write_text(CONFIG_HEADER + yaml.safe_dump(existing, sort_keys=True))
    print(f"wrote tiny scorers for {', '.join(missing)} to {target}")


def _draw_shape(index: int, size: int = 64) -> tuple[Any, str]:
    """A coloured shape on a grey background, placed and sized by ``index`` (deterministic), and its caption."""
    from PIL import Image, ImageDraw  # pillow: only when the demo builds its reference set

    rng = np.random.default_rng(index)
    colour_name, colour = SHAPE_COLOURS[index % len(SHAPE_COLOURS)]
    shape = SHAPES[(index // len(SHAPE_COLOURS)) % len(SHAPES)]
    image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(90, 170, 3)))
    radius = int(rng.integers(size // 6, size // 3))
    cx, cy = (int(v) for v in rng.integers(radius, size - radius, 2))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    return image, f"a {colour_name} {shape} on a grey background"


def build_demo_reference(references: Path, count: int = DEMO_REFERENCE_IMAGES) -> Path:
    """``data/references/demo-shapes/``: ``count`` shapes drawn in code (not downloaded), with captions.jsonl."""
    folder = references / DEMO_REFERENCE
    if (folder / "captions.jsonl").is_file():
        return folder
    staging = references / f".building-{DEMO_REFERENCE}"  # hidden: the reference sensor ignores it until the rename
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    lines = []
    for index in range(count):
        image, caption = _draw_shape(index)
        image.save(staging / f"shape_{index:02d}.png")
        lines.append(json.dumps({"file": f"shape_{index:02d}.png", "caption": caption}) + "\n")
    (staging / "captions.jsonl").write_text("".join(lines))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def prepare_demo(paths: DataPaths, n_models: int = 3) -> None:
    paths.models.mkdir(parents=True, exist_ok=True)
    for name, layout, seed in DEMO_MODELS[:n_models]:
        _write_sidecar(paths.models, name)
        _build_model(paths.models, name, layout, seed)
    build_demo_reference(paths.references)
    _write_demo_config(paths)
