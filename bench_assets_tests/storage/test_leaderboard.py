import numpy as np
import polars as pl
import pytest

from bench_assets.storage.leaderboard import (
    OVERALL, MetricColumn, bootstrap_ci, compute_leaderboard, to_markdown, widen,
)
from bench_assets.storage.warehouse import Warehouse

CLIP = MetricColumn("clip_score", "scores_clip")
LPIPS = MetricColumn("lpips_diversity", "scores_lpips")
LOWER = MetricColumn("error_rate", "scores_err", higher_is_better=False)


def _write(wh, table, model, category, values_by_prompt):
    rows = [
        {"model": model, "category": category, "prompt_id": pid, "image_index": k, "value": v}
        for pid, values in values_by_prompt.items()
        for k, v in enumerate(values)
    ]
    wh.write_partition(table, model, category, rows)


def test_bootstrap_interval_contains_mean_and_shrinks_with_more_prompts():
    rng = np.random.default_rng(1)
    small = rng.normal(size=10)
    large = rng.normal(size=1000)
    lo_s, hi_s = bootstrap_ci({"value": small, "n": np.ones(10)})
    lo_l, hi_l = bootstrap_ci({"value": large, "n": np.ones(1000)})
    assert lo_s <= small.mean() <= hi_s
    assert lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s)
    assert bootstrap_ci({"value": small, "n": np.ones(10)}) == (lo_s, hi_s), "fixed seed: reproducible"


def _coverage(n_prompts: int, replicates: int, interval) -> float:
    """How often ``interval`` (of per-prompt values) contains the true mean 0, over simulated benchmarks."""
    rng = np.random.default_rng(12345 + n_prompts)
    hits = 0
    for _ in range(replicates):
        values = rng.normal(size=n_prompts)
        low, high = interval(values)
        hits += low <= 0.0 <= high
    return hits / replicates


def _plain_percentile(values: np.ndarray) -> tuple[float, float]:
    picks = np.random.default_rng(0).integers(0, len(values), size=(1000, len(values)))
    return tuple(np.quantile(values[picks].mean(axis=1), [0.025, 0.975]))


@pytest.mark.parametrize("n_prompts", [10, 50])
def test_leaderboard_interval_covers_the_true_mean_95_percent(n_prompts):
    """Coverage by simulation (600 benchmarks, Monte Carlo SE ~0.9%): within 2.7 SE of 95%."""
    coverage = _coverage(n_prompts, 600, lambda v: bootstrap_ci({"value": v, "n": np.ones(len(v))}))
    assert 0.925 <= coverage <= 0.975, coverage


def test_a_plain_percentile_cut_would_undercover_ten_prompts():
    """Why the expanded interval: the plain 2.5% cut the leaderboard used to make misses far too often at n=10."""
    assert _coverage(10, 600, _plain_percentile) < 0.925


def test_means_counts_ranks_per_category_and_overall(tmp_path):
    wh = Warehouse(tmp_path)
    _write(wh, "scores_clip", "good", "a", {"p1": [30, 32], "p2": [34, 36]})
    _write(wh, "scores_clip", "good", "b", {"p3": [20, 20]})
    _write(wh, "scores_clip", "bad", "a", {"p1": [10, 12], "p2": [14, 16]})
    _write(wh, "scores_clip", "bad", "b", {"p3": [40, 40]})
    _write(wh, "scores_err", "good", "a", {"p1": [0.1]})
    _write(wh, "scores_err", "bad", "a", {"p1": [0.5]})
    long = compute_leaderboard(wh, [CLIP, LOWER])
    row = lambda m, c, metric: long.filter(
        (pl.col("model") == m) & (pl.col("category") == c) & (pl.col("metric") == metric)
    ).row(0, named=True)
    assert row("good", "a", "clip_score")["mean"] == pytest.approx(33.0)
    assert row("good", "a", "clip_score")["n"] == 4
    assert row("good", OVERALL, "clip_score")["mean"] == pytest.approx((30 + 32 + 34 + 36 + 20 + 20) / 6)
    assert row("good", OVERALL, "clip_score")["n_prompts"] == 3
    assert row("good", "a", "clip_score")["rank"] == 1 and row("bad", "b", "clip_score")["rank"] == 1
    assert row("good", "a", "error_rate")["rank"] == 1, "lower is better for this metric"
    r = row("bad", "a", "clip_score")
    assert r["ci_low"] <= r["mean"] <= r["ci_high"]

    wide = widen(long, [CLIP, LOWER])
    overall = wide.filter(pl.col("category") == OVERALL)
    assert set(overall["model"]) == {"good", "bad"}
    assert {"clip_score_mean", "clip_score_ci_low", "clip_score_ci_high", "clip_score_n", "rank"} <= set(wide.columns)
    table = to_markdown(wide, [CLIP, LOWER])
    assert "| rank | tier | model | clip_score | error_rate |" in table and "(n=6)" in table


def test_empty_warehouse_gives_empty_leaderboard(tmp_path):
    long = compute_leaderboard(Warehouse(tmp_path), [CLIP, LPIPS])
    assert long.is_empty()
    assert to_markdown(widen(long, [CLIP]), [CLIP]) == "_no scores yet_"


def test_intervals_do_not_depend_on_row_order(tmp_path):
    rng = np.random.default_rng(3)
    values = {f"p{i:02d}": list(rng.normal(30, 5, size=3)) for i in range(20)}
    first, second = Warehouse(tmp_path / "a"), Warehouse(tmp_path / "b")
    _write(first, "scores_clip", "m", "a", values)
    _write(second, "scores_clip", "m", "a", dict(reversed(list(values.items()))))
    a = compute_leaderboard(first, [CLIP]).sort("category")
    b = compute_leaderboard(second, [CLIP]).sort("category")
    assert a.select("ci_low", "ci_high").rows() == b.select("ci_low", "ci_high").rows()


def test_custom_aggregate_is_applied_and_bootstrapped(tmp_path):
    """A metric defined on model-level means (like OneIG's text score) is not a mean of values."""
    wh = Warehouse(tmp_path)
    rows = [{"model": "m", "category": "a", "prompt_id": f"p{i}", "value": 0.0, "hits": h, "tries": 2.0}
            for i, h in enumerate([2.0, 1.0, 0.0, 2.0])]
    wh.write_partition("scores_ratio", "m", "a", rows)
    ratio = MetricColumn(
        "ratio", "scores_ratio",
        summary=lambda: {"hits": pl.col("hits"), "tries": pl.col("tries")},
        combine=lambda t: t["hits"] / t["tries"],
    )
    row = compute_leaderboard(wh, [ratio]).filter(pl.col("category") == "a").row(0, named=True)
    assert row["mean"] == pytest.approx(5 / 8)
    assert row["ci_low"] <= 5 / 8 <= row["ci_high"] and row["ci_low"] < row["ci_high"]


def test_gpu_seconds_sum_generation_and_scoring_per_category_and_overall(tmp_path):
    from bench_assets.storage.leaderboard import gpu_costs

    wh = Warehouse(tmp_path)
    wh.write_partition("images", "m", "a", [{"model": "m", "category": "a", "prompt_id": "p", "gpu_seconds": 2.0}] * 3)
    wh.write_partition("images", "m", "b", [{"model": "m", "category": "b", "prompt_id": "p", "gpu_seconds": 1.5}])
    wh.write_partition("scores_clip", "m", "a", [{"model": "m", "category": "a", "prompt_id": "p",
                                                  "image_index": 0, "value": 1.0, "gpu_seconds": 0.25}] * 2)
    # a table written before cost tracking (no gpu_seconds column) adds nothing, breaks nothing
    _write(wh, "scores_err", "m", "a", {"p": [0.1]})
    costs = gpu_costs(wh, "images", ["scores_clip", "scores_err", "scores_missing"])
    got = {r["category"]: r for r in costs.iter_rows(named=True)}
    assert got["a"]["generation_gpu_seconds"] == pytest.approx(6.0)
    assert got["a"]["scoring_gpu_seconds"] == pytest.approx(0.5)
    assert got["b"]["gpu_seconds"] == pytest.approx(1.5) and got["b"]["scoring_gpu_seconds"] == 0.0
    assert got[OVERALL]["gpu_seconds"] == pytest.approx(8.0)

    _write(wh, "scores_clip", "m", "b", {"p": [1.0]})
    wide = widen(compute_leaderboard(wh, [CLIP]), [CLIP], costs)
    assert wide.filter(pl.col("category") == OVERALL)["gpu_seconds"].to_list() == [pytest.approx(8.0)]
    assert "gpu_seconds" in to_markdown(wide, [CLIP]) and "| 8.0 |" in to_markdown(wide, [CLIP])


def test_gpu_seconds_do_not_depend_on_the_order_their_rows_are_summed_in(tmp_path):
    """Float sums depend on their order (0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1), and polars' order varies with
    threads: unrounded, an unchanged model's cost changed in its last bits and its report page was rewritten."""
    from bench_assets.storage.leaderboard import gpu_costs

    seconds = [0.1, 0.2, 0.3, 1e-7, 0.7]
    assert sum(seconds) != sum(reversed(seconds))
    built = []
    for order in (seconds, seconds[::-1]):
        wh = Warehouse(tmp_path / f"wh{len(built)}")
        wh.write_partition("images", "m", "a", [{"model": "m", "category": "a", "prompt_id": f"p{i}",
                                                 "gpu_seconds": s} for i, s in enumerate(order)])
        built.append(gpu_costs(wh, "images", []).sort("category"))
    assert built[0].equals(built[1])
    assert built[0].filter(pl.col("category") == "a")["gpu_seconds"].item() == 1.3  # to the microsecond


def test_cost_per_thousand_images_from_recorded_gpu_seconds(tmp_path):
    from bench_assets.storage.leaderboard import cost_per_thousand

    wh = Warehouse(tmp_path)
    wh.write_partition("images", "m", "a", [{"model": "m", "category": "a", "prompt_id": "p", "gpu_seconds": 2.0}] * 4)
    wh.write_partition("scores_clip", "m", "a", [{"model": "m", "category": "a", "prompt_id": "p",
                                                  "image_index": 0, "value": 1.0, "gpu_seconds": 0.5}] * 4)
    row = cost_per_thousand(wh, "images", ["scores_clip"], price_per_hour=3.6).row(0, named=True)
    assert row["images"] == 4
    assert row["generation_s_per_image"] == pytest.approx(2.0)
    assert row["gpu_s_per_image"] == pytest.approx(2.5)
    assert row["usd_per_1000_images"] == pytest.approx(2.5 * 1000 * 3.6 / 3600)  # $2.50
