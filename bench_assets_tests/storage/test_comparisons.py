"""Paired comparisons over a real warehouse (synthetic score rows with known answers)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from bench_assets.core.decision import DecisionConfig
from bench_assets.metrics.geneval import TASKS, GenEval
from bench_assets.stats.paired import holm
from bench_assets.storage.comparisons import (
    build_comparisons, compare_pair, compare_references, norms_from, refresh_comparisons, regressions, to_markdown,
    version_side,
)
from bench_assets.storage.leaderboard import MetricColumn, compute_leaderboard
from bench_assets.storage.versions import VersionStore

CLIP = MetricColumn("clip_score", "scores_clip", True)
ERROR = MetricColumn("error_rate", "scores_error", False)
GENEVAL = MetricColumn("geneval", "scores_geneval", True, GenEval.summary_columns, GenEval.combine)
METRICS = [CLIP, ERROR, GENEVAL]
DECISION = DecisionConfig(weights={"clip_score": 1.0, "error_rate": 1.0, "geneval": 1.0})
REFERENCE_GOOD = DecisionConfig(weights=DECISION.weights, reference="good")  # good against everyone
PROMPTS, IMAGES = 30, 2


def _write(store: VersionStore, model: str, shift: float, seed: int, drop: tuple = ()) -> None:
    rng = np.random.default_rng(seed)
    for category in ("a", "b"):
        clip, error, geneval = [], [], []
        for p in range(PROMPTS):
            base = np.sin(p)  # the prompt effect every model shares
            for k in range(IMAGES):
                if (category, p, k) in drop:
                    continue
                key = {"model": model, "category": category, "prompt_id": f"{category}{p}", "image_index": k}
                clip.append({**key, "value": 20 + 5 * base + shift + rng.normal(0, 1)})
                error.append({**key, "value": 0.5 + 0.1 * base - 0.01 * shift + rng.normal(0, 0.05)})
                geneval.append({**key, "value": float(rng.random() < 0.4 + 0.05 * shift), "task": TASKS[p % 3]})
        store.warehouse.write_partition("scores_clip", model, category, clip)
        store.warehouse.write_partition("scores_error", model, category, error)
        store.warehouse.write_partition("scores_geneval", model, category, geneval)


@pytest.fixture
def store(tmp_path):
    store = VersionStore(tmp_path)
    _write(store, "good", 3.0, 1, drop=(("a", 0, 1), ("b", 5, 0)))
    _write(store, "bad", 0.0, 2, drop=(("a", 7, 0),))
    _write(store, "twin", 0.0, 3)
    return store


def test_matched_items_only_and_the_unmatched_are_counted(store):
    frame = compare_references(store, "good", "bad", [CLIP], DECISION, categories=["a", "all"])
    row = frame.filter((pl.col("metric") == "clip_score") & (pl.col("category") == "a")).row(0, named=True)
    assert (row["unmatched_a"], row["unmatched_b"], row["n_items"]) == (1, 1, PROMPTS * IMAGES - 2)
    overall = frame.filter((pl.col("metric") == "clip_score") & (pl.col("category") == "all")).row(0, named=True)
    assert (overall["unmatched_a"], overall["unmatched_b"]) == (1, 2)  # good misses 2 of bad's, bad 1 of good's
    assert overall["n_items"] == 2 * PROMPTS * IMAGES - 3
    clip = store.warehouse.read_table("scores_clip")
    keys = ["category", "prompt_id", "image_index"]
    both = clip.filter(pl.col("model") == "good").join(clip.filter(pl.col("model") == "bad"), on=keys)
    assert overall["diff"] == pytest.approx((both["value"] - both["value_right"]).mean())
    assert overall["a_wins"] + overall["ties"] + overall["b_wins"] == overall["n_items"]
    assert overall["a_wins"] > overall["b_wins"]
    assert overall["ci_low"] < 3.0 < overall["ci_high"] and overall["better"] == "good"


def test_a_task_mean_is_compared_on_the_task_mean(store):
    frame = compare_references(store, "good", "twin", [GENEVAL], DECISION, categories=["all"])
    row = frame.filter(pl.col("metric") == "geneval").row(0, named=True)
    rows = store.warehouse.read_table("scores_geneval").filter(pl.col("model") == "good")
    matched = rows.join(store.warehouse.read_table("scores_geneval").filter(pl.col("model") == "twin"),
                        on=["category", "prompt_id", "image_index"], how="semi")
    task_mean = matched.group_by("task").agg(pl.col("value").mean())["value"].mean()
    assert row["value_a"] == pytest.approx(task_mean)
    assert row["value_a"] != pytest.approx(matched["value"].mean())


def test_only_neighbours_in_rank_are_tested_and_holm_counts_only_them(store):
    models = build_comparisons(store, METRICS, DECISION).filter(pl.col("kind") == "models")
    for (_, category), group in models.group_by("metric", "category"):
        assert group.height == 3, "every pair keeps its difference and interval"
        tested = group.filter(pl.col("p_value").is_not_nan())
        assert tested.height == 2, "three models: two neighbours in rank, the outer pair untested"
        np.testing.assert_allclose(tested["p_adjusted"], holm(tested["p_value"]))
        untested = group.filter(pl.col("p_value").is_nan()).row(0, named=True)
        assert untested["better"] is None and untested["ci_low"] < untested["ci_high"]
        assert untested["adjusted_over"].startswith("Holm over the tested pairs")


def test_direction_holm_over_pairs_and_the_composite(store):
    table = build_comparisons(store, METRICS, REFERENCE_GOOD)
    models = table.filter(pl.col("kind") == "models")
    assert set(zip(models["model_a"], models["model_b"])) == {("bad", "good"), ("bad", "twin"), ("good", "twin")}
    for (_, category), group in models.group_by("metric", "category"):
        assert group.height == 3
        assert group.filter(pl.col("p_value").is_nan())["model_a"].to_list() in ([], ["bad"]), "good is tested"
        np.testing.assert_allclose(group["p_adjusted"].fill_nan(None).drop_nulls(),
                                   holm(group["p_value"].fill_nan(None).drop_nulls()))
    # lower is better for error_rate, and "good" has the lower error
    err = models.filter((pl.col("metric") == "error_rate") & (pl.col("category") == "all")
                        & (pl.col("model_b") == "good")).row(0, named=True)
    assert err["diff"] > 0 and err["better"] == "good"
    twins = models.filter((pl.col("model_a") == "bad") & (pl.col("model_b") == "twin") & (pl.col("category") == "all"))
    assert twins.filter(pl.col("metric") == "clip_score")["better"].to_list() == [None]
    composite = models.filter((pl.col("metric") == "composite") & (pl.col("category") == "all")
                              & (pl.col("model_b") == "good")).row(0, named=True)
    assert composite["diff"] < 0 and composite["better"] == "good"
    assert "composite" in to_markdown(models) and "| clip_score | all | bad" in to_markdown(models)


def test_regressions_need_significance_and_more_than_the_margin(store):
    frame = compare_references(store, "bad", "good", METRICS, DECISION, categories=["all"])
    worse = regressions(frame, DECISION)
    assert "clip_score" in worse["metric"].to_list()
    lenient = DecisionConfig(weights=DECISION.weights, margins={"clip_score": 5.0, "error_rate": 1.0, "geneval": 1.0})
    assert regressions(frame, lenient).is_empty()
    assert regressions(compare_references(store, "good", "bad", METRICS, DECISION, categories=["all"]),
                       DECISION).is_empty()


def test_a_metric_with_nothing_in_common_is_reported_not_dropped(store):
    clip = store.warehouse.read_table("scores_clip")
    shifted = clip.filter(pl.col("model") == "twin").with_columns(pl.col("image_index") + 10)
    for category in ("a", "b"):
        store.warehouse.write_partition("scores_clip", "twin", category, shifted.filter(pl.col("category") == category))
    row = compare_references(store, "bad", "twin", [CLIP], DECISION).filter(pl.col("metric") == "clip_score")
    assert row.select("category", "n_items", "unmatched_a", "unmatched_b").rows() == [
        ("all", 0, 2 * PROMPTS * IMAGES - 1, 2 * PROMPTS * IMAGES)]
    assert np.isnan(row["diff"].item()) and row["better"].item() is None


# -- every model at once, and only what changed ------------------------------------------------------

FULL = [("m1", 0.0, 11), ("m2", 0.4, 12), ("m3", 0.8, 13), ("m4", 3.0, 14)]  # every item scored by every model


@pytest.fixture
def full_store(tmp_path):
    store = VersionStore(tmp_path)
    for model, shift, seed in FULL[:3]:
        _write(store, model, shift, seed)
    return store


def _models(table: pl.DataFrame) -> pl.DataFrame:
    return table.filter(pl.col("kind") == "models").sort("metric", "category", "model_a", "model_b")


def test_every_pair_from_the_shared_bootstrap_equals_the_pair_compared_alone(full_store):
    table = _models(build_comparisons(full_store, METRICS, DECISION))
    norms = norms_from(compute_leaderboard(full_store.warehouse, METRICS))
    sides = {ref: version_side(full_store, full_store.resolve(ref), METRICS) for ref in ("m1", "m2", "m3")}
    alone = pl.DataFrame([r for a, b in [("m1", "m2"), ("m1", "m3"), ("m2", "m3")]
                          for r in compare_pair(sides[a], sides[b], METRICS, DECISION, norms)])
    alone = alone.sort("metric", "category", "model_a", "model_b")
    assert table.height == alone.height == 3 * (3 * 3 + 3)  # (3 metrics + composite) × (a, b, all) × 3 pairs
    for column in ("value_a", "value_b", "diff", "ci_low", "ci_high"):
        np.testing.assert_allclose(table[column], alone[column], rtol=1e-9, err_msg=column)
    for column in ("a_wins", "ties", "b_wins", "n_items", "n_prompts", "unmatched_a"):
        assert table[column].to_list() == alone[column].to_list(), column
    tested = table["p_value"].is_not_nan()
    np.testing.assert_allclose(table.filter(tested)["p_value"], alone.filter(tested)["p_value"], rtol=1e-12)
    assert tested.sum() == 2 * 12, "neighbours only: two of the three pairs in each metric and category"


def test_adding_a_model_recomputes_only_the_rows_involving_it(full_store):
    before = refresh_comparisons(full_store, METRICS, DECISION)
    assert (before.tally.recomputed, before.tally.carried) == (before.table.height, 0)
    again = refresh_comparisons(full_store, METRICS, DECISION, previous=before.table)
    assert (again.tally.recomputed, again.tally.tests) == (0, 0), "nothing changed, nothing computed"
    assert again.table.equals(before.table)

    model, shift, seed = FULL[3]
    _write(full_store, model, shift, seed)
    after = refresh_comparisons(full_store, METRICS, DECISION, previous=before.table)
    rows = _models(after.table)
    new = (pl.col("model_a") == model) | (pl.col("model_b") == model)
    composite = pl.col("metric") == "composite"
    # metric rows: only the new model's pairs; composite rows: all (its normalisation spans every model)
    assert after.tally.recomputed == rows.filter(new | composite).height
    assert after.tally.carried == rows.filter(~new & ~composite).height == 3 * 3 * 3
    fresh = _models(build_comparisons(full_store, METRICS, DECISION))
    assert rows.equals(fresh), "carried rows and a full rebuild give the same table"


def test_a_pair_that_becomes_neighbours_gets_its_test(full_store):
    before = refresh_comparisons(full_store, METRICS, DECISION)
    outer = _models(before.table).filter((pl.col("metric") == "clip_score") & (pl.col("category") == "all")
                                         & (pl.col("model_a") == "m1") & (pl.col("model_b") == "m3"))
    assert np.isnan(outer["p_value"].item()), "m2 sits between m1 and m3 on CLIP score"
    _write(full_store, "m2", 9.0, 12)  # m2 re-run, now far ahead: m1 and m3 become neighbours
    after = refresh_comparisons(full_store, METRICS, DECISION, previous=before.table)
    outer = _models(after.table).filter((pl.col("metric") == "clip_score") & (pl.col("category") == "all")
                                        & (pl.col("model_a") == "m1") & (pl.col("model_b") == "m3"))
    assert np.isfinite(outer["p_value"].item()) and outer["better"].item() == "m3"
