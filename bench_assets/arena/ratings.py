"""Bradley–Terry ratings from pairwise votes, on an Elo-like scale, with bootstrap intervals.

Model: P(i beats j) = σ(θ_i − θ_j). Fitted by maximum likelihood (Newton's
method on the log-likelihood, with a negligible ridge, λ = 0.01 on θ in logit
units, so that a model that has won every vote still gets a finite rating).
A tie, and a "both bad", counts as half a win for each side: the same
likelihood with a fractional outcome, as LMSYS's arena does, rather than a
Davidson tie parameter (one more parameter that votes on ratings do not need).

Scale: rating = 1000 + 400/ln 10 · (θ − mean θ), so 400 points mean 10:1
odds and the models average 1000. Intervals: bootstrap over votes (1000
resamples, fixed seed) with the leaderboard's expanded percentile interval
and rank intervals (``bench_assets.stats``), so "human" reads like any metric.
Votes are compressed to (model a, model b, outcome) counts first, so a
resample is one multinomial draw and all resamples are fitted at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from bench_assets.stats.ranks import rank_intervals
from bench_assets.stats.resampling import percentile_interval

ELO_BASE = 1000.0
ELO_SCALE = 400.0 / math.log(10.0)
RIDGE = 0.01
N_BOOT = 1000
OVERALL = "all"
# Score of the left image per choice: a win, a loss, or half of each.
LEFT_SCORE = {"left": 1.0, "right": 0.0, "tie": 0.5, "both_bad": 0.5}

RATINGS_SCHEMA = {
    "model": pl.Utf8, "category": pl.Utf8, "rating": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
    "votes": pl.Int64, "wins": pl.Float64, "rank": pl.Int64, "rank_low": pl.Int64, "rank_high": pl.Int64,
}


@dataclass(frozen=True)
class Comparisons:
    """Votes compressed to distinct (a, b, score of a) outcomes with their counts."""

    models: list[str]
    a: np.ndarray  # index of one model, per outcome
    b: np.ndarray  # index of the other
    score: np.ndarray  # a's share of the win: 1, 0 or 0.5
    count: np.ndarray  # votes with this outcome

    @classmethod
    def from_votes(cls, votes: pl.DataFrame) -> "Comparisons":
        left_score = pl.col("choice").replace_strict(LEFT_SCORE, return_dtype=pl.Float64)
        # Sides do not matter to the model: orient every vote as (first model by name, second).
        swapped = pl.col("model_left") > pl.col("model_right")
        frame = votes.select(
            pl.when(swapped).then(pl.col("model_right")).otherwise(pl.col("model_left")).alias("a"),
            pl.when(swapped).then(pl.col("model_left")).otherwise(pl.col("model_right")).alias("b"),
            pl.when(swapped).then(1.0 - left_score).otherwise(left_score).alias("score"))
        models = sorted(set(frame["a"]) | set(frame["b"]))
        index = {m: i for i, m in enumerate(models)}
        grouped = frame.group_by("a", "b", "score").len().sort("a", "b", "score")
        return cls(
            models,
            np.array([index[m] for m in grouped["a"]], dtype=int),
            np.array([index[m] for m in grouped["b"]], dtype=int),
            grouped["score"].to_numpy().astype(float),
            grouped["len"].to_numpy().astype(float),
        )

    @property
    def n_votes(self) -> int:
        return int(self.count.sum())

    def resampled_counts(self, n_boot: int, seed: int) -> np.ndarray:
        """(n_boot, outcomes) counts of bootstrap resamples of the votes."""
        rng = np.random.default_rng(seed)
        return rng.multinomial(self.n_votes, self.count / self.count.sum(), size=n_boot).astype(float)


def fit_strengths(comparisons: Comparisons, counts: np.ndarray) -> np.ndarray:
    """Centred MLE θ for each row of ``counts`` (shape (B, outcomes) → (B, models))."""
    k = len(comparisons.models)
    outcomes = len(comparisons.a)
    design = np.zeros((outcomes, k))
    design[np.arange(outcomes), comparisons.a] += 1.0
    design[np.arange(outcomes), comparisons.b] -= 1.0
    # Each outcome adds w·x·xᵀ to the curvature (x = e_a − e_b): one matrix product for all resamples.
    outer = np.einsum("tk,tl->tkl", design, design).reshape(outcomes, k * k)
    theta = np.zeros((counts.shape[0], k))
    ridge = RIDGE * np.eye(k)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(theta @ design.T)))
        gradient = (counts * (comparisons.score - p)) @ design - RIDGE * theta
        curvature = ((counts * p * (1.0 - p)) @ outer).reshape(-1, k, k) + ridge
        step = np.clip(np.linalg.solve(curvature, gradient[..., None])[..., 0], -2.0, 2.0)
        theta = theta + step
        if np.abs(step).max() < 1e-9:
            break
    return theta - theta.mean(axis=1, keepdims=True)


def to_elo(theta: np.ndarray) -> np.ndarray:
    return ELO_BASE + ELO_SCALE * theta


@dataclass(frozen=True)
class RatingFit:
    """Point ratings and bootstrap ratings (Elo scale) for one set of votes."""

    comparisons: Comparisons
    rating: np.ndarray  # (models,)
    boot: np.ndarray  # (n_boot, models)

    @classmethod
    def from_votes(cls, votes: pl.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> "RatingFit":
        comparisons = Comparisons.from_votes(votes)
        point = to_elo(fit_strengths(comparisons, comparisons.count[None, :]))[0]
        boot = to_elo(fit_strengths(comparisons, comparisons.resampled_counts(n_boot, seed)))
        return cls(comparisons, point, boot)

    def interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Per model: the leaderboard's (expanded) percentile interval, votes being the resampled units."""
        bounds = [percentile_interval(self.boot[:, i], self.comparisons.n_votes) for i in range(self.boot.shape[1])]
        return np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])

    def rank_interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Rank 1 = best: the decision statistics' rank intervals over the same resamples."""
        return rank_intervals(self.boot)

    def table(self, category: str) -> pl.DataFrame:
        c = self.comparisons
        k = len(c.models)
        votes = np.bincount(c.a, c.count, k) + np.bincount(c.b, c.count, k)
        wins = np.bincount(c.a, c.count * c.score, k) + np.bincount(c.b, c.count * (1.0 - c.score), k)
        low, high = self.interval()
        rank_low, rank_high = self.rank_interval()
        rank = (-self.rating).argsort().argsort() + 1
        return pl.DataFrame(
            {"model": c.models, "category": [category] * k, "rating": self.rating, "ci_low": low,
             "ci_high": high, "votes": votes.astype(int), "wins": wins, "rank": rank,
             "rank_low": rank_low, "rank_high": rank_high},
            schema=RATINGS_SCHEMA,
        )


def ratings_table(votes: pl.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> pl.DataFrame:
    """One row per (model, category) and per model overall (category ``all``)."""
    if votes.is_empty():
        return pl.DataFrame(schema=RATINGS_SCHEMA)
    parts = [RatingFit.from_votes(votes, n_boot, seed).table(OVERALL)]
    for (category,), group in votes.sort("category").group_by("category", maintain_order=True):
        parts.append(RatingFit.from_votes(group, n_boot, seed).table(category))
    return pl.concat(parts).sort(pl.col("category") != OVERALL, "category", "rank")


HUMAN_COLUMNS = {"rating": "human_rating", "ci_low": "human_ci_low", "ci_high": "human_ci_high",
                 "votes": "human_votes"}


def with_human_column(leaderboard: pl.DataFrame, ratings: pl.DataFrame) -> pl.DataFrame:
    """The leaderboard plus the arena's rating, interval and votes per (model, category); nulls where none."""
    if leaderboard.is_empty() or "model" not in leaderboard.columns:
        return leaderboard
    if ratings.is_empty():
        return leaderboard.with_columns(
            *[pl.lit(None, dtype=RATINGS_SCHEMA[src]).alias(dst) for src, dst in HUMAN_COLUMNS.items()])
    human = ratings.select("model", "category", *[pl.col(src).alias(dst) for src, dst in HUMAN_COLUMNS.items()])
    return leaderboard.join(human, on=["model", "category"], how="left")
