"""Bradley–Terry ratings checked against known truth by simulation (fixed seeds)."""

from __future__ import annotations

import numpy as np
import polars as pl

from bench_assets.arena.ratings import ELO_SCALE, RatingFit, ratings_table, with_human_column

MODELS = [f"model-{i}" for i in range(5)]
TRUE_ELO = np.array([850.0, 940.0, 1000.0, 1070.0, 1140.0])  # mean 1000, as the fit's scale


def simulated_votes(rng: np.random.Generator, strengths: np.ndarray, n: int, categories=("object",)) -> pl.DataFrame:
    """``n`` votes between random pairs, random sides, winners drawn from Bradley–Terry."""
    k = len(strengths)
    left = rng.integers(0, k, n)
    right = (left + rng.integers(1, k, n)) % k
    p_left = 1.0 / (1.0 + np.exp(-(strengths[left] - strengths[right]) / ELO_SCALE))
    return pl.DataFrame({
        "model_left": [MODELS[i] for i in left], "model_right": [MODELS[i] for i in right],
        "choice": np.where(rng.random(n) < p_left, "left", "right"),
        "category": rng.choice(list(categories), n),
    })


def test_ratings_recover_the_true_order_and_intervals_cover_the_truth():
    rng = np.random.default_rng(0)
    covered = np.zeros(len(MODELS))
    for _ in range(50):
        fit = RatingFit.from_votes(simulated_votes(rng, TRUE_ELO, 2000))
        assert fit.comparisons.models == MODELS
        assert list(np.argsort(fit.rating)) == [0, 1, 2, 3, 4], fit.rating
        low, high = fit.interval()
        assert np.all(low <= fit.rating) and np.all(fit.rating <= high)
        covered += (low <= TRUE_ELO) & (TRUE_ELO <= high)
    assert np.all(covered / 50 >= 0.90), covered / 50


def test_ties_count_half_a_win_each_and_elo_scale_means_ten_to_one_at_400():
    # a beats b 10 times in 11: a rating gap of 400 points
    votes = pl.DataFrame({"model_left": ["a"] * 11, "model_right": ["b"] * 11, "choice": ["left"] * 10 + ["right"]})
    fit = RatingFit.from_votes(votes, n_boot=50)
    assert 395.0 < fit.rating[0] - fit.rating[1] < 400.0  # the tiny ridge only shrinks it, by a hair
    ties = pl.DataFrame({"model_left": ["a", "b"] * 10, "model_right": ["b", "a"] * 10,
                         "choice": ["tie", "both_bad"] * 10})
    assert np.allclose(RatingFit.from_votes(ties, n_boot=50).rating, [1000.0, 1000.0])
    # 2 wins + 2 ties ⇒ 3 of 4: the same as 3 wins and 1 loss
    mixed = pl.DataFrame({"model_left": ["a"] * 4, "model_right": ["b"] * 4, "choice": ["left", "left", "tie", "tie"]})
    plain = pl.DataFrame({"model_left": ["a"] * 4, "model_right": ["b"] * 4, "choice": ["left"] * 3 + ["right"]})
    assert np.allclose(RatingFit.from_votes(mixed, n_boot=10).rating, RatingFit.from_votes(plain, n_boot=10).rating)


def test_a_model_that_always_wins_gets_a_finite_top_rating():
    votes = pl.DataFrame({"model_left": ["a", "b", "a"], "model_right": ["b", "c", "c"], "choice": ["left"] * 3})
    fit = RatingFit.from_votes(votes, n_boot=100)
    assert np.all(np.isfinite(fit.rating)) and np.all(np.isfinite(fit.boot))
    assert list(np.argsort(-fit.rating)) == [0, 1, 2]


def test_ratings_table_per_category_and_overall_with_rank_intervals():
    votes = simulated_votes(np.random.default_rng(3), TRUE_ELO, 3000, categories=("object", "colour"))
    table = ratings_table(votes, n_boot=200)
    assert set(table["category"]) == {"all", "object", "colour"}
    overall = table.filter(pl.col("category") == "all").sort("model")
    assert overall["votes"].sum() == 2 * votes.height and overall["wins"].sum() == votes.height
    assert overall["rank"].to_list() == [5, 4, 3, 2, 1]
    assert (overall["rank_low"] <= overall["rank"]).all() and (overall["rank"] <= overall["rank_high"]).all()
    per_category = table.filter(pl.col("category") == "object")
    assert per_category["votes"].sum() == 2 * votes.filter(pl.col("category") == "object").height


def test_leaderboard_gets_human_columns_with_nulls_where_no_votes():
    leaderboard = pl.DataFrame({"model": ["model-0", "model-9"], "category": ["all", "all"], "rank": [1, 2]})
    ratings = ratings_table(simulated_votes(np.random.default_rng(4), TRUE_ELO, 500), n_boot=50)
    joined = with_human_column(leaderboard, ratings)
    assert joined.height == 2
    row0, row9 = joined.sort("model").iter_rows(named=True)
    assert row0["human_ci_low"] <= row0["human_rating"] <= row0["human_ci_high"] and row0["human_votes"] > 0
    assert row9["human_rating"] is None and row9["human_votes"] is None
    empty = with_human_column(leaderboard, ratings.clear())
    assert empty["human_rating"].null_count() == 2 and empty.height == 2
