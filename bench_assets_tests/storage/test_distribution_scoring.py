"""Distribution rows against a reference set: written with n and intervals, features cached and counted."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench_assets.metrics.features import FEATURE_EXTRACTORS
from bench_assets.metrics.distribution_registry import DISTRIBUTION_METRICS
from bench_assets.references.registry import load_reference_set
from bench_assets.storage.catalog import refresh_views
from bench_assets.storage.distribution import DISTRIBUTION_SCHEMA, distribution_partitions, read_distribution_scores
from bench_assets.storage.distribution_scoring import score_against_reference
from bench_assets.storage.status import IMAGES_TABLE
from bench_assets.storage.store import LocalStore
from bench_assets.storage.warehouse import Warehouse

# The tests build on each other's warehouse (a first model, a second one, then a changed reference image):
# one worker runs them, in order.
pytestmark = pytest.mark.xdist_group("distribution_scoring")

CATEGORIES = ("object", "colour")
PER_CATEGORY = 7  # > k = 5: precision/recall has a value per category
EXTRACTORS = ("inception_clean", "clip", "dinov2")  # what the default metrics read (fid_mode clean)


def _png_bytes(rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_model(warehouse: Warehouse, images: LocalStore, model: str, seed: int) -> None:
    """A model's images and manifest rows, as generation writes them (key and sha256 per image)."""
    rng = np.random.default_rng(seed)
    for category in CATEGORIES:
        rows = []
        for index in range(PER_CATEGORY):
            data, key = _png_bytes(rng), f"{model}/{category}/p{index}_i0_s{index}.png"
            images.put_bytes(key, data)
            rows.append({"model": model, "category": category, "path": key,
                         "sha256": hashlib.sha256(data).hexdigest()})
        warehouse.write_partition(IMAGES_TABLE, model, category, rows)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_sources):
    root = tmp_path_factory.mktemp("distribution")
    metric_config = json.loads((tiny_sources / "scorers.json").read_text())  # the session's tiny CLIP and DINOv2
    inception = FEATURE_EXTRACTORS["inception_clean"].tiny_scorer.options(root / "scorers")
    distribution = {"bootstrap": 5, "inception": inception}
    references = root / "references"
    rng = np.random.default_rng(99)
    (references / "shapes").mkdir(parents=True)
    for index in range(9):
        (references / "shapes" / f"r{index}.png").write_bytes(_png_bytes(rng))
    warehouse, images = Warehouse(root / "warehouse"), LocalStore(root / "images")
    _write_model(warehouse, images, "model-a", 1)
    _write_model(warehouse, images, "model-b", 2)

    def score(model):
        return score_against_reference(warehouse, images, model, CATEGORIES, load_reference_set(references, "shapes"),
                                       metric_config=metric_config, distribution_config=distribution)

    return root, warehouse, references, score


def test_rows_have_n_intervals_and_bookkeeping_and_sql_sees_them(setup):
    root, warehouse, references, score = setup
    run = score("model-a")
    n_images = len(CATEGORIES) * PER_CATEGORY
    assert run.extracted == len(EXTRACTORS) * (9 + n_images) and run.reused == 0
    rows = read_distribution_scores(warehouse, "model-a", "shapes")
    assert rows.columns == list(DISTRIBUTION_SCHEMA)
    metrics = {"fid", "kid", "cmmd", "fd_dinov2", "precision", "recall", "density", "coverage"}
    assert set(rows["metric"]) == metrics and len(DISTRIBUTION_METRICS) == 5
    assert rows.height == len(metrics) * (1 + len(CATEGORIES))
    overall = {r["metric"]: r for r in rows.filter(rows["category"] == "all").to_dicts()}
    assert overall["fid"]["n_generated"] == n_images and overall["fid"]["n_reference"] == 9
    assert overall["fid"]["fid_mode"] == "clean" and overall["fid"]["comparable"] is False
    assert overall["fid"]["min_n"] == 10_000 and "biased upward" in overall["fid"]["note"]
    assert overall["kid"]["std"] > 0 and overall["precision"]["k"] == 5 and overall["precision"]["lower_is_better"] is False
    assert all(r["ci_low"] <= r["ci_high"] for r in overall.values())
    assert overall["cmmd"]["extractor"] == "clip" and overall["fd_dinov2"]["extractor_id"].startswith("dinov2:")
    per_category = rows.filter(rows["category"] == "object")
    assert set(per_category["n_generated"]) == {PER_CATEGORY} and per_category["value"].null_count() == 0
    # The stored value is the metric on the features themselves (not a stale or shuffled number).
    fid_value = overall["fid"]["value"]
    assert fid_value > 0 and np.isfinite(fid_value)

    refresh_views(root / "bench.duckdb", warehouse)
    import duckdb

    con = duckdb.connect(str(root / "bench.duckdb"), read_only=True)
    try:
        count = con.execute("select count(*) from distribution_scores where model = 'model-a'").fetchone()[0]
    finally:
        con.close()
    assert count == rows.height


def test_second_model_reuses_every_reference_feature_and_unchanged_rows_are_kept(setup):
    _, warehouse, references, score = setup
    run = score("model-b")
    assert run.extracted == len(EXTRACTORS) * len(CATEGORIES) * PER_CATEGORY  # its own images only
    assert run.reused == len(EXTRACTORS) * 9  # the reference set's, from model-a's run
    assert distribution_partitions(warehouse) == [("model-a", "shapes"), ("model-b", "shapes")]
    again = score("model-b")
    assert again.skipped and again.extracted == 0


def test_a_changed_reference_image_re_extracts_exactly_that_image(setup):
    _, warehouse, references, score = setup
    before = read_distribution_scores(warehouse, "model-a", "shapes")
    Image.new("RGB", (24, 24), (250, 0, 0)).save(references / "shapes" / "r3.png")
    run = score("model-a")
    assert not run.skipped
    assert run.extracted == len(EXTRACTORS)  # one image, once per extractor; nothing of model-a's
    after = read_distribution_scores(warehouse, "model-a", "shapes")
    assert set(after["reference_fingerprint"]) != set(before["reference_fingerprint"])
    assert score("model-b").extracted == 0  # the new reference row is cached for every model
