"""Which pairs the arena offers, read from a real warehouse and real files."""

from __future__ import annotations

import math
import random
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image
from scipy.stats import chisquare

from bench_assets.arena.pairs import PairPool, usable_images
from bench_assets.models.registry import sha256_file
from bench_assets.storage.store import open_store
from bench_assets.storage.status import FAILURE_SCHEMA, FAILURES_TABLE, IMAGES_TABLE
from bench_assets.storage.warehouse import Warehouse

MODELS = ("m1", "m2", "m3")


def images_of(tmp: Path):
    """The image store the warehouse's keys belong to."""
    return open_store(tmp / "images")


def build_warehouse(tmp: Path) -> Warehouse:
    """Three models, categories a and b, one prompt each, two seeds each; PNGs on disk."""
    wh = Warehouse(tmp / "warehouse")
    for m, model in enumerate(MODELS):
        for category in ("a", "b"):
            rows = []
            for k in range(2):
                path = tmp / "images" / model / category / f"{category}1_i{k}_s{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((8, 8, 3), 40 * m + k, dtype=np.uint8)).save(path)
                rows.append({"model": model, "category": category, "prompt_id": f"{category}1", "image_index": k,
                             "seed": k, "path": path.relative_to(tmp / "images").as_posix(),
                             "sha256": sha256_file(path)})
            wh.write_partition(IMAGES_TABLE, model, category, rows)
    return wh


def pool_of(wh: Warehouse, tmp: Path, models=None, category=None, votes=None, seed=0) -> PairPool:
    images = images_of(tmp)
    return PairPool(usable_images(wh, images, models, category), votes or {}, images, random.Random(seed))


def offered(pool: PairPool, keys) -> set[tuple]:
    """Which of ``keys`` the pool offers; with ``len(pool)`` this pins the candidate set exactly."""
    return {k for k in keys if k in pool}


ALL_KEYS = [(f"{c}1", k, a, b) for c in "ab" for k in range(2) for a in MODELS for b in MODELS if a != b]


def test_only_pairs_of_two_models_with_intact_unfailed_images_of_one_prompt_and_seed(tmp_path):
    wh = build_warehouse(tmp_path)
    everything = pool_of(wh, tmp_path)
    assert len(everything) == 2 * 2 * 3  # categories × seeds × model pairs
    assert offered(everything, ALL_KEYS) == {k for k in ALL_KEYS if k[2] < k[3]}  # models in name order
    drawn = everything.draw("v")
    assert drawn.a.model < drawn.b.model and drawn.a.path.endswith(f"_i{drawn.image_index}_s{drawn.image_index}.png")

    failure = {"model": "m2", "category": "a", "stage": "generate", "prompt_id": "a1", "image_index": 1,
               "seed": 1, "error": "nan latents", "failed_at": "2026-01-01T00:00:00"}
    wh.write_partition(FAILURES_TABLE, "m2", "a", [failure], schema=FAILURE_SCHEMA)
    (tmp_path / "images" / "m3" / "b" / "b1_i0_s0.png").unlink()
    remaining_pool = pool_of(wh, tmp_path)
    assert len(remaining_pool) == 12 - 2  # the failed image's pairs are never candidates
    assert not {k for k in offered(remaining_pool, ALL_KEYS) if (k[0], k[1]) == ("a1", 1) and "m2" in k[2:]}
    # the missing file is found when its pair is drawn (no listing of every image): never shown, then dropped
    drawn = {remaining_pool.draw("v").key for _ in range(200)}
    assert not {k for k in drawn if (k[0], k[1]) == ("b1", 0) and "m3" in k[2:]}
    remaining = offered(remaining_pool, ALL_KEYS)
    assert ("a1", 1, "m1", "m3") in remaining
    assert not {k for k in remaining if (k[0], k[1]) == ("b1", 0) and "m3" in k[2:]}
    assert len(remaining) == len(remaining_pool) == 12 - 2 - 2

    scoped = pool_of(wh, tmp_path, ["m1", "m3"], "a")
    assert offered(scoped, ALL_KEYS) == {("a1", 0, "m1", "m3"), ("a1", 1, "m1", "m3")} and len(scoped) == 2


def test_a_changed_file_leaves_the_pool_instead_of_being_shown(tmp_path):
    wh = build_warehouse(tmp_path)
    pool = pool_of(wh, tmp_path, ["m1", "m2"], "a")
    Image.fromarray(np.full((8, 8, 3), 255, dtype=np.uint8)).save(tmp_path / "images" / "m1" / "a" / "a1_i0_s0.png")
    drawn = {pool.draw("v").key for _ in range(20)}
    assert drawn == {("a1", 1, "m1", "m2")} and len(pool) == 1


def test_draws_favour_unvoted_pairs_and_close_models(tmp_path):
    wh = build_warehouse(tmp_path)
    candidates = [k for k in ALL_KEYS if k[0] == "a1" and k[2] < k[3]]
    voted = ("a1", 0, "m1", "m2")
    pool = pool_of(wh, tmp_path, None, "a", {voted: 9}, seed=1)
    counts = Counter(pool.draw("v").key for _ in range(3000))
    others = [counts[k] for k in candidates if k != voted]
    assert counts[voted] < min(others) / 5  # 1/(1+9) of the weight

    pool = pool_of(wh, tmp_path, None, "a", seed=2)
    pool.set_ratings(["m1", "m2", "m3"], np.array([0.0, 0.1, 4.0]))  # m3 far ahead of the close m1, m2
    counts = Counter(frozenset(pool.draw("v").key[2:]) for _ in range(3000))
    assert counts[frozenset({"m1", "m2"})] > 4 * counts[frozenset({"m1", "m3"})] > 0

    pool = pool_of(wh, tmp_path, None, "a", seed=3)
    for _ in range(3):
        pool.record("v", voted)
    assert 0 < pool.weight("v", voted) < pool.weight("w", voted) / 10


def documented_weight(ratings: dict[str, float], votes: int, seen: int, a: str, b: str) -> float:
    """The module docstring's formula, written out again independently of the pool."""
    p = 1.0 / (1.0 + math.exp(-(ratings[a] - ratings[b])))
    return max(4.0 * p * (1.0 - p), 0.05) / (1 + votes) / (1 + 4 * seen)


def test_draws_follow_the_documented_distribution(tmp_path):
    wh = build_warehouse(tmp_path)
    voted, repeated = {("a1", 0, "m1", "m2"): 3, ("b1", 1, "m2", "m3"): 1}, ("a1", 1, "m1", "m3")
    pool = pool_of(wh, tmp_path, votes=voted, seed=7)
    for _ in range(2):
        pool.record("v", repeated)
    ratings = {"m1": 0.0, "m2": 0.5, "m3": 2.0}
    pool.set_ratings(list(ratings), np.array(list(ratings.values())))
    Image.fromarray(np.full((8, 8, 3), 255, dtype=np.uint8)).save(tmp_path / "images" / "m3" / "b" / "b1_i0_s0.png")
    broken = {("b1", 0, "m1", "m3"), ("b1", 0, "m2", "m3")}

    keys = [k for k in ALL_KEYS if k[2] < k[3]]
    expected = {k: 0.0 if k in broken else documented_weight(
        ratings, voted.get(k, 0) + 2 * (k == repeated), 2 * (k == repeated), k[2], k[3]) for k in keys}
    draws = 12_000
    counts = Counter(pool.draw("v").key for _ in range(draws))
    assert not broken & set(counts) and len(pool) == 12 - 2
    live = [k for k in keys if expected[k] > 0]
    total = sum(expected[k] for k in live)
    observed = [counts[k] for k in live]
    assert sum(observed) == draws
    assert chisquare(observed, [draws * expected[k] / total for k in live]).pvalue > 1e-3
    assert all(math.isclose(pool.weight("v", k), expected[k]) for k in live)


def test_the_pool_never_builds_every_pair(tmp_path):
    """120 models × 300 seeds: 2.1 million candidates, held as a seeds × models table, not one by one."""
    path = tmp_path / "images" / "m" / "a" / "x.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(path)
    models, seeds = [f"m{i:03d}" for i in range(120)], 300
    frame = pl.DataFrame({
        "model": [m for m in models for _ in range(seeds)], "category": "a",
        "prompt_id": [f"p{s // 4}" for _ in models for s in range(seeds)],
        "image_index": [s % 4 for _ in models for s in range(seeds)],
        "seed": [s for _ in models for s in range(seeds)], "path": "m/a/x.png", "sha256": sha256_file(path)})
    tracemalloc.start()
    try:
        pool = PairPool(frame, {("p0", 0, "m000", "m001"): 2}, images_of(tmp_path), random.Random(0))
        drawn = [pool.draw(f"v{i}") for i in range(20)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(pool) == 120 * 119 // 2 * seeds
    assert all(d is not None and d.a.model < d.b.model for d in drawn)
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB traced: the pool holds pairs one by one"
