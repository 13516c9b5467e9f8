"""How often each metric agrees with the voters: which metric to trust for this team's taste.

- Per-image metrics: over decisive votes (left or right; ties and "both bad"
  say nothing about which image is better), the fraction of votes where the
  metric scores the voter's image higher (a metric tie counts half). 0.5 is
  a coin; a percentile bootstrap over votes gives the interval, ``n`` the
  votes whose two images both have a score.
- Set metrics (one value per prompt, e.g. diversity) cannot judge one image
  against another, so they are compared at model level: Kendall's tau-b
  between the models' human ratings and their metric means, with an interval
  from the same bootstrap resamples as the ratings; ``n`` is models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from bench_assets.arena.ratings import N_BOOT, RatingFit
from bench_assets.stats.resampling import percentile_interval

DECISIVE = ("left", "right")
AGREEMENT_SCHEMA = {
    "metric": pl.Utf8, "level": pl.Utf8, "statistic": pl.Utf8, "agreement": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "n": pl.Int64,
}


@dataclass(frozen=True)
class MetricScores:
    """What agreement needs of one metric: its rows and which way is better."""

    name: str
    unit: str  # "image" or "prompt"
    higher_is_better: bool
    scores: pl.DataFrame  # model, image_sha256, value (per-image) or model, value (set)


def vote_agreements(votes: pl.DataFrame, metric: MetricScores) -> np.ndarray:
    """Per decisive vote with both images scored: 1 if the metric prefers the chosen image, ½ if even, else 0."""
    values = (metric.scores.filter(pl.col("value").is_not_null() & pl.col("value").is_finite())
              .group_by("model", "image_sha256").agg(pl.col("value").mean()))
    joined = (
        votes.filter(pl.col("choice").is_in(DECISIVE))
        .join(values.rename({"model": "model_left", "image_sha256": "sha256_left", "value": "value_left"}),
              on=["model_left", "sha256_left"], how="inner")
        .join(values.rename({"model": "model_right", "image_sha256": "sha256_right", "value": "value_right"}),
              on=["model_right", "sha256_right"], how="inner")
    )
    margin = (joined["value_left"] - joined["value_right"]).to_numpy()
    if not metric.higher_is_better:
        margin = -margin
    chose_left = (joined["choice"] == "left").to_numpy()
    return np.where(margin == 0, 0.5, (margin > 0) == chose_left).astype(float)


def image_agreement(votes: pl.DataFrame, metric: MetricScores, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    agree = vote_agreements(votes, metric)
    row = {"metric": metric.name, "level": "image", "statistic": "fraction_agree", "n": int(agree.size)}
    if agree.size == 0:
        return {**row, "agreement": None, "ci_low": None, "ci_high": None}
    picks = np.random.default_rng(seed).integers(0, agree.size, size=(n_boot, agree.size))
    low, high = percentile_interval(agree[picks].mean(axis=1), agree.size)
    return {**row, "agreement": float(agree.mean()), "ci_low": low, "ci_high": high}


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between the last axes of ``x`` and ``y`` (x may carry leading resample axes)."""
    i, j = np.triu_indices(x.shape[-1], k=1)
    dx, dy = np.sign(x[..., i] - x[..., j]), np.sign(y[..., i] - y[..., j])
    concordance = (dx * dy).sum(axis=-1)
    untied = np.sqrt((dx != 0).sum(axis=-1) * (dy != 0).sum(axis=-1).astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(untied > 0, concordance / np.where(untied > 0, untied, 1.0), np.nan)


def model_agreement(fit: RatingFit, metric: MetricScores) -> dict:
    means = metric.scores.filter(pl.col("value").is_not_null() & pl.col("value").is_finite()) \
        .group_by("model").agg(pl.col("value").mean())
    by_model = dict(zip(means["model"], means["value"]))
    shared = [i for i, m in enumerate(fit.comparisons.models) if m in by_model]
    row = {"metric": metric.name, "level": "model", "statistic": "kendall_tau_b", "n": len(shared)}
    if len(shared) < 2:
        return {**row, "agreement": None, "ci_low": None, "ci_high": None}
    values = np.array([by_model[fit.comparisons.models[i]] for i in shared])
    if not metric.higher_is_better:
        values = -values
    tau = float(kendall_tau_b(fit.rating[shared], values))
    low, high = percentile_interval(kendall_tau_b(fit.boot[:, shared], values), fit.comparisons.n_votes)
    return {**row, "agreement": tau, "ci_low": low, "ci_high": high}


def agreement_table(votes: pl.DataFrame, metrics: list[MetricScores], fit: RatingFit | None) -> pl.DataFrame:
    """One row per metric that has scores: image-level agreement, or model-level tau for set metrics."""
    rows = []
    for metric in metrics:
        if metric.scores.is_empty():
            continue
        if metric.unit == "image":
            rows.append(image_agreement(votes, metric))
        elif fit is not None:
            rows.append(model_agreement(fit, metric))
    return pl.DataFrame(rows, schema=AGREEMENT_SCHEMA).sort("level", "agreement", descending=[False, True],
                                                            nulls_last=True)
