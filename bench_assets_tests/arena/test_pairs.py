"""Which pairs the arena offers, read from a real warehouse and real files."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from bench_assets.arena.pairs import PairPool, candidate_pairs, usable_images
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


def keys(candidates) -> set[tuple]:
    return {c.key for c in candidates}


def test_only_pairs_of_two_models_with_intact_unfailed_images_of_one_prompt_and_seed(tmp_path):
    wh = build_warehouse(tmp_path)
    everything = candidate_pairs(usable_images(wh, images_of(tmp_path), None, None))
    assert len(everything) == 2 * 2 * 3  # categories × seeds × model pairs
    assert all(c.a.model < c.b.model and c.a.path.endswith(f"_i{c.image_index}_s{c.image_index}.png")
               for c in everything)

    failure = {"model": "m2", "category": "a", "stage": "generate", "prompt_id": "a1", "image_index": 1,
               "seed": 1, "error": "nan latents", "failed_at": "2026-01-01T00:00:00"}
    wh.write_partition(FAILURES_TABLE, "m2", "a", [failure], schema=FAILURE_SCHEMA)
    (tmp_path / "images" / "m3" / "b" / "b1_i0_s0.png").unlink()
    remaining = keys(candidate_pairs(usable_images(wh, images_of(tmp_path), None, None)))
    assert ("a1", 1, "m1", "m3") in remaining
    assert not {k for k in remaining if (k[0], k[1]) == ("a1", 1) and "m2" in k[2:]}
    assert not {k for k in remaining if (k[0], k[1]) == ("b1", 0) and "m3" in k[2:]}
    assert len(remaining) == 12 - 2 - 2

    scoped = candidate_pairs(usable_images(wh, images_of(tmp_path), ["m1", "m3"], "a"))
    assert keys(scoped) == {("a1", 0, "m1", "m3"), ("a1", 1, "m1", "m3")}


def test_a_changed_file_leaves_the_pool_instead_of_being_shown(tmp_path):
    wh = build_warehouse(tmp_path)
    pool = PairPool(candidate_pairs(usable_images(wh, images_of(tmp_path), ["m1", "m2"], "a")), {}, images_of(tmp_path),
                    random.Random(0))
    Image.fromarray(np.full((8, 8, 3), 255, dtype=np.uint8)).save(tmp_path / "images" / "m1" / "a" / "a1_i0_s0.png")
    drawn = {pool.draw("v").key for _ in range(20)}
    assert drawn == {("a1", 1, "m1", "m2")} and len(pool) == 1


def test_draws_favour_unvoted_pairs_and_close_models(tmp_path):
    wh = build_warehouse(tmp_path)
    candidates = candidate_pairs(usable_images(wh, images_of(tmp_path), None, "a"))
    voted = ("a1", 0, "m1", "m2")
    pool = PairPool(candidates, {voted: 9}, images_of(tmp_path), random.Random(1))
    counts = Counter(pool.draw("v").key for _ in range(3000))
    others = [counts[c.key] for c in candidates if c.key != voted]
    assert counts[voted] < min(others) / 5  # 1/(1+9) of the weight

    pool = PairPool(candidates, {}, images_of(tmp_path), random.Random(2))
    pool.set_ratings(["m1", "m2", "m3"], np.array([0.0, 0.1, 4.0]))  # m3 far ahead of the close m1, m2
    counts = Counter(frozenset(pool.draw("v").key[2:]) for _ in range(3000))
    assert counts[frozenset({"m1", "m2"})] > 4 * counts[frozenset({"m1", "m3"})] > 0

    pool = PairPool(candidates, {}, images_of(tmp_path), random.Random(3))
    for _ in range(3):
        pool.record("v", voted)
    assert pool.weights("v")[[c.key for c in candidates].index(voted)] < pool.weights("w")[[c.key for c in candidates].index(voted)] / 10
