"""A synthetic warehouse of any size, written with the storage functions the assets use.

For the report's benchmark (10 models × 1,000 prompts × 4 images) and for
fast report tests that need no generation: real PNG files (small smooth
colour fields, distinct per image), manifest rows, score rows for every
registered metric (each metric's ``example_row``: its value and the extra
columns the report and its aggregate read), the prompts table and the
leaderboard computed by ``storage.leaderboard``. Values are random with a
per-model offset, so models differ. Everything per metric comes from its
registry row: a new metric gets rows here with no change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from bench_assets.core.naming import ImageName, image_key
from bench_assets.metrics.registry import METRICS
from bench_assets.storage.leaderboard import compute_leaderboard, gpu_costs, widen
from bench_assets.storage.status import FAILURE_SCHEMA, FAILURES_TABLE, IMAGES_TABLE
from bench_assets.storage.metric_columns import metric_columns
from bench_assets.storage.warehouse import Warehouse


@dataclass(frozen=True)
class SyntheticSpec:
    models: int = 2
    prompts: int = 4  # in all, spread over the categories
    images_per_prompt: int = 2
    categories: tuple[str, ...] = ("object", "colour")
    image_size: int = 32
    seed: int = 0

    @property
    def model_names(self) -> list[str]:
        return [f"model-{i:02d}" for i in range(self.models)]


def _prompts(spec: SyntheticSpec) -> pl.DataFrame:
    rows = []
    for i in range(spec.prompts):
        category = spec.categories[i % len(spec.categories)]
        rows.append({"prompt_id": f"{category[:3]}-{i:04d}", "category": category,
                     "prompt": f"a {category} scene number {i}", "negative_prompt": None, "difficulty": "easy",
                     "metadata": json.dumps({"text": f"SIGN {i}"}), "suite": "synthetic"})
    return pl.DataFrame(rows, schema={"prompt_id": pl.Utf8, "category": pl.Utf8, "prompt": pl.Utf8,
                                      "negative_prompt": pl.Utf8, "difficulty": pl.Utf8, "metadata": pl.Utf8,
                                      "suite": pl.Utf8})


def _write_png(path: Path, rng: np.random.Generator, size: int) -> str:
    from PIL import Image

    low = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(low).resize((size, size), Image.Resampling.BILINEAR).save(path, optimize=False)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_synthetic_warehouse(data: Path, spec: SyntheticSpec) -> Warehouse:
    """Images under ``data/images``, tables under ``data/warehouse``; returns the warehouse."""
    rng = np.random.default_rng(spec.seed)
    wh = Warehouse(data / "warehouse")
    prompts = _prompts(spec)
    wh.write_table("prompts", prompts)
    settings = json.dumps({"images_per_prompt": spec.images_per_prompt, "width": spec.image_size,
                           "height": spec.image_size, "steps": 2})
    for m, model in enumerate(spec.model_names):
        for category in spec.categories:
            mine = prompts.filter(pl.col("category") == category)
            manifest, scores = [], {name: [] for name in METRICS}
            for p, row in enumerate(mine.iter_rows(named=True)):
                for k in range(spec.images_per_prompt):
                    key = image_key(model, category, ImageName(row["prompt_id"], k, k))
                    sha = _write_png(data / "images" / key, rng, spec.image_size)
                    manifest.append({"model": model, "category": category, "prompt_id": row["prompt_id"],
                                     "image_index": k, "seed": k, "path": key, "sha256": sha,
                                     "set_fingerprint": f"set-{model}", "model_fingerprint": f"fp-{model}",
                                     "settings": settings, "seconds": 0.1, "gpu_seconds": 0.1 * (m + 1),
                                     "device": "cpu", "dtype": "fp32"})
                    for name, cls in METRICS.items():
                        if cls.unit == "image":
                            draw = float(np.clip(rng.normal(0.5 + 0.05 * m, 0.2), 0, 1))
                            scores[name].append(_score_row(model, category, row["prompt_id"], k, key, sha, name,
                                                           cls.example_row(p, draw)))
                for name, cls in METRICS.items():
                    if cls.unit == "prompt":
                        example = {**cls.example_row(p, float(rng.uniform(0, 1))), "n_images": spec.images_per_prompt}
                        scores[name].append(_score_row(model, category, row["prompt_id"], None, None, None, name,
                                                       example))
            wh.write_partition(IMAGES_TABLE, model, category, manifest)
            wh.write_partition(FAILURES_TABLE, model, category, [], schema=FAILURE_SCHEMA)
            for name, rows in scores.items():
                wh.write_partition(METRICS[name].table, model, category, rows)
    columns = metric_columns()
    long = compute_leaderboard(wh, columns)
    wh.write_table("leaderboard", widen(long, columns, gpu_costs(wh, IMAGES_TABLE, [c.table for c in columns])))
    wh.write_table("leaderboard_long", long)
    return wh


def _score_row(model, category, prompt_id, index, path, sha, metric, example) -> dict:
    return {"model": model, "category": category, "prompt_id": prompt_id, "image_index": index,
            "seed": index, "image_path": path, "image_sha256": sha, "input_hash": sha or prompt_id,
            "metric": metric, "metric_version": "1", "scorer": "synthetic", "scored_at": "2026-12-02T00:00:00+00:00",
            "gpu_seconds": 0.01, **example}
