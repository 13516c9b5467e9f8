"""Metric–human agreement by simulation: a metric that tracks quality agrees, a random one does not."""

from __future__ import annotations

import numpy as np
import polars as pl

from bench_assets.arena.agreement import MetricScores, agreement_table, image_agreement, kendall_tau_b
from bench_assets.arena.ratings import ELO_SCALE, RatingFit

MODELS = [f"model-{i}" for i in range(5)]
STRENGTH = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])  # logit units


def simulated_arena(seed: int = 0, n_images: int = 400, n_votes: int = 2000):
    """Images with a latent quality (model strength + noise); voters prefer by Bradley–Terry on it."""
    rng = np.random.default_rng(seed)
    model = rng.integers(0, 5, n_images)
    quality = STRENGTH[model] + rng.normal(0.0, 0.7, n_images)
    sha = [f"{i:064x}" for i in range(n_images)]
    left = rng.integers(0, n_images, n_votes)
    right = rng.integers(0, n_images, n_votes)
    keep = model[left] != model[right]
    left, right = left[keep], right[keep]
    p_left = 1.0 / (1.0 + np.exp(-(quality[left] - quality[right])))
    draw = rng.random(left.size)
    choice = np.where(draw < 0.08, "tie", np.where(draw < 0.12, "both_bad", np.where(rng.random(left.size) < p_left,
                                                                                     "left", "right")))
    votes = pl.DataFrame({
        "model_left": [MODELS[m] for m in model[left]], "model_right": [MODELS[m] for m in model[right]],
        "sha256_left": [sha[i] for i in left], "sha256_right": [sha[i] for i in right], "choice": choice,
    })

    def scores(values: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({"model": [MODELS[m] for m in model], "image_sha256": sha, "value": values})

    tracking = scores(quality + rng.normal(0.0, 0.5, n_images))
    random_metric = scores(rng.normal(0.0, 1.0, n_images))
    return votes, tracking, random_metric


def test_a_metric_that_tracks_quality_agrees_more_than_a_random_one():
    votes, tracking, random_metric = simulated_arena()
    good = image_agreement(votes, MetricScores("tracking", "image", True, tracking))
    noise = image_agreement(votes, MetricScores("random", "image", True, random_metric))
    decisive = votes.filter(pl.col("choice").is_in(["left", "right"])).height
    assert good["n"] == noise["n"] == decisive  # ties and "both bad" are left out
    assert good["agreement"] > 0.6 and good["ci_low"] > noise["ci_high"]
    assert noise["ci_low"] < 0.5 < noise["ci_high"]
    # the same metric read the wrong way round disagrees as much as it agreed
    flipped = image_agreement(votes, MetricScores("lower", "image", False, tracking))
    assert abs(flipped["agreement"] - (1.0 - good["agreement"])) < 1e-9


def test_votes_on_unscored_images_are_not_counted():
    votes, tracking, _ = simulated_arena()
    half = tracking.head(200)
    row = image_agreement(votes, MetricScores("half", "image", True, half))
    scored = set(half["image_sha256"])
    both = votes.filter(pl.col("choice").is_in(["left", "right"]) & pl.col("sha256_left").is_in(scored)
                        & pl.col("sha256_right").is_in(scored))
    assert row["n"] == both.height > 0


def test_set_metrics_are_compared_at_model_level_with_kendall_tau():
    votes, _, _ = simulated_arena(seed=1)
    fit = RatingFit.from_votes(votes, n_boot=200)
    aligned = pl.DataFrame({"model": MODELS, "value": STRENGTH * ELO_SCALE})
    reversed_ = pl.DataFrame({"model": MODELS, "value": -STRENGTH})
    table = agreement_table(votes, [MetricScores("diversity", "prompt", True, aligned),
                                    MetricScores("anti", "prompt", True, reversed_),
                                    MetricScores("unscored", "image", True, pl.DataFrame(
                                        schema={"model": pl.Utf8, "image_sha256": pl.Utf8, "value": pl.Float64}))],
                            fit)
    rows = {r["metric"]: r for r in table.iter_rows(named=True)}
    assert set(rows) == {"diversity", "anti"}  # a metric without scores has no row
    assert rows["diversity"]["statistic"] == "kendall_tau_b" and rows["diversity"]["n"] == 5
    assert rows["diversity"]["agreement"] == 1.0 and rows["anti"]["agreement"] == -1.0
    assert rows["diversity"]["ci_low"] <= 1.0 <= rows["diversity"]["ci_high"]


def test_kendall_tau_b_matches_the_definition_with_ties():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert kendall_tau_b(x, np.array([1.0, 2.0, 4.0, 3.0])) == (5 - 1) / 6
    # x untied (6 pairs), y one tie (5 untied): concordant 5 → 5 / sqrt(6·5)
    assert np.isclose(kendall_tau_b(x, np.array([1.0, 1.0, 2.0, 3.0])), 5 / np.sqrt(30))
    batched = kendall_tau_b(np.stack([x, -x]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert batched.tolist() == [1.0, -1.0]
