"""Rank intervals, tiers and the composite in the leaderboard, on a real warehouse."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from bench_assets.core.decision import DecisionConfig
from bench_assets.storage.comparisons import build_comparisons
from bench_assets.storage.leaderboard import MetricColumn, to_markdown
from bench_assets.storage.ranking import leaderboard_tables
from bench_assets.storage.versions import VersionStore

QUALITY = MetricColumn("quality", "scores_quality", True)
ERROR = MetricColumn("error", "scores_error", False)
METRICS = [QUALITY, ERROR]
# quality: a ≈ b >> c (a and b inseparable); error: lower is better, c is best there
EFFECTS = {"a": (1.0, 0.5), "b": (0.98, 0.5), "c": (0.0, 0.1)}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = VersionStore(tmp_path_factory.mktemp("ranking"))
    rng = np.random.default_rng(7)
    prompt_effect = rng.normal(0, 1, 40)
    for model, (quality, error) in EFFECTS.items():
        for table, effect in (("scores_quality", quality), ("scores_error", error)):
            rows = [{"model": model, "category": "x", "prompt_id": f"p{p}", "image_index": k,
                     "value": effect + 0.3 * prompt_effect[p] + rng.normal(0, 0.2)}
                    for p in range(40) for k in range(2)]
            store.warehouse.write_partition(table, model, "x", rows)
    return store


def _tables(store, decision):
    comparisons = build_comparisons(store, METRICS, decision)
    wide, long = leaderboard_tables(store, METRICS, decision, comparisons, None)
    return wide.filter(pl.col("category") == "all"), long


def test_inseparable_models_share_a_tier_and_a_rank_interval(store):
    wide, long = _tables(store, DecisionConfig(weights={"quality": 1.0}))
    quality = long.filter((pl.col("metric") == "quality") & (pl.col("category") == "all")).sort("model")
    assert quality["tier"].to_list() == [1, 1, 2]
    assert quality["rank_low"].to_list() == [1, 1, 3] and quality["rank_high"].to_list() == [2, 2, 3]
    error = long.filter((pl.col("metric") == "error") & (pl.col("category") == "all")).sort("model")
    assert error.filter(pl.col("model") == "c")["rank"].to_list() == [1], "lower is better"
    # composite = quality alone: same order; its interval brackets its value
    assert wide.sort("model")["tier"].to_list() == [1, 1, 2]
    for row in wide.iter_rows(named=True):
        assert row["composite_ci_low"] <= row["composite"] <= row["composite_ci_high"]
    assert "mean_rank" not in wide.columns


def test_weights_decide_the_overall_rank(store):
    by_quality, _ = _tables(store, DecisionConfig(weights={"quality": 1.0}))
    by_error, _ = _tables(store, DecisionConfig(weights={"error": 1.0}))
    both, _ = _tables(store, DecisionConfig(weights={"quality": 1.0, "error": 1.0}))
    assert by_quality.filter(pl.col("model") == "c")["rank"].item() == 3
    assert by_error.filter(pl.col("model") == "c")["rank"].item() == 1
    assert both["composite"].sum() == pytest.approx(0.0, abs=1e-9), "z-scores centre on the models"
    table = to_markdown(both, METRICS)
    assert "| rank | tier | model | version | composite | quality | error |" in table
    assert "#1-2" in table  # a rank interval in the markdown


def test_aligned_slices_put_each_models_sums_at_its_prompts_and_zeros_where_it_has_none():
    """Every slice of several frames aligned at once, as a full join of them would align it slice by slice."""
    from bench_assets.storage.ranking import aligned_slices

    quality = pl.DataFrame({"model": ["a", "a", "a", "b", "c"], "category": ["x", "x", "y", "x", "y"],
                            "prompt_id": ["p2", "p1", "q1", "p1", "q2"], "quality/value": [1.0, 2.0, 3.0, 4.0, 5.0]})
    error = pl.DataFrame({"model": ["b", "d"], "category": ["y", "x"], "prompt_id": ["q1", "p2"],
                          "error/value": [6.0, None]})
    got = aligned_slices([quality, error])
    assert list(got) == ["all", "x", "y"]
    models, arrays, n_prompts = got["all"]
    assert models == ["a", "b", "c", "d"] and n_prompts == 4  # (x, p1), (x, p2), (y, q1), (y, q2)
    assert arrays[0]["quality/value"].tolist() == [2.0, 1.0, 3.0, 0.0]
    assert arrays[1]["error/value"].tolist() == [0.0, 0.0, 6.0, 0.0]  # b lacks error in x: zeros there
    assert arrays[3]["error/value"].tolist() == [0.0, 0.0, 0.0, 0.0]  # a null sum counts as 0
    models, arrays, n_prompts = got["y"]
    assert models == ["a", "b", "c"] and n_prompts == 2  # d has no prompt of y: not in the slice
    assert [a["quality/value"].tolist() for a in arrays] == [[3.0, 0.0], [0.0, 0.0], [0.0, 5.0]]
    assert aligned_slices([quality], models=["c"])["y"][0] == ["c"] and "x" not in aligned_slices([quality], ["c"])
