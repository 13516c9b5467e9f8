"""Distances between two sets of image features: FID, KID, CMMD's MMD, precision/recall/density/coverage.

Plain numpy + scipy, float64 throughout. Each estimator follows the published
reference code (pytorch-fid / clean-fid for the Fréchet distance, clean-fid and
torch-fidelity for KID, google-research's CMMD for the Gaussian MMD, Naeem et
al.'s ``prdc`` for precision/recall/density/coverage) so numbers are comparable
with papers; the tests check them against those libraries on the same matrices.

Streaming: :class:`FeatureMoments` accumulates mean and covariance batch by
batch, so a reference set's FID statistics never need all its features at once.
Memory-heavy pairwise computations (MMD, k-NN radii) run in row chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import numpy as np
from scipy import linalg

# Rows per block in the chunked pairwise computations: a block of 1,000 × 10,000 float64 is 80 MB.
CHUNK_ROWS = 1000

# KID as clean-fid and torch-fidelity compute it: 100 subsets of at most 1,000 rows each.
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000

# CMMD (Jayasumana et al. 2024, google-research/cmmd distance.py): Gaussian kernel bandwidth and output scale.
CMMD_SIGMA = 10.0
CMMD_SCALE = 1000.0

# Precision/recall/density/coverage: the k of the k-NN radii (Naeem et al. 2020 use k=5).
PRDC_K = 5

# pytorch-fid raises when the square root's imaginary part on the diagonal exceeds this.
IMAGINARY_TOLERANCE = 1e-3


class FeatureMoments:
    """Streaming mean and covariance of feature rows (Chan et al.'s pairwise update).

    Holds the count, the mean and the sum of squared deviations ``m2`` (a d×d
    matrix), never the rows: a batch's own mean and deviations are combined with
    the running ones, which stays accurate where the naive sum-of-squares
    formula would cancel catastrophically (features with a large common offset).
    """

    def __init__(self, dim: int) -> None:
        self.dim = int(dim)
        self._n = 0
        self._mean = np.zeros(self.dim)
        self._m2 = np.zeros((self.dim, self.dim))

    @property
    def n(self) -> int:
        return self._n

    @property
    def mean(self) -> np.ndarray:
        return self._mean.copy()

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance (ddof=1, as ``np.cov``); needs at least two rows."""
        if self._n < 2:
            raise ValueError(f"a covariance needs at least 2 feature rows, have {self._n}")
        return self._m2 / (self._n - 1)

    def update(self, batch: np.ndarray) -> "FeatureMoments":
        """Add a (rows, dim) batch; returns self so updates chain."""
        rows = np.asarray(batch, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ValueError(f"expected a (rows, {self.dim}) batch, got shape {rows.shape}")
        if len(rows):
            centred = rows - rows.mean(axis=0)
            self._combine(len(rows), rows.mean(axis=0), centred.T @ centred)
        return self

    def merge(self, other: "FeatureMoments") -> "FeatureMoments":
        """Fold another accumulator's rows into this one (e.g. per-worker partial moments); returns self."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge moments of dimension {other.dim} into {self.dim}")
        if other.n:
            self._combine(other.n, other._mean, other._m2)
        return self

    def _combine(self, n_b: int, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
        n_a, total = self._n, self._n + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / total)
        self._m2 = self._m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / total)
        self._n = total

    def to_dict(self) -> dict[str, Any]:
        """``{"n": int, "mean": (d,) array, "m2": (d, d) array}``: what a cache stores (e.g. ``np.savez(**d)``)."""
        return {"n": self._n, "mean": self._mean.copy(), "m2": self._m2.copy()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureMoments":
        """The inverse of :meth:`to_dict` (accepts arrays, lists or a loaded ``.npz``)."""
        mean = np.asarray(data["mean"], dtype=np.float64)
        moments = cls(len(mean))
        moments._n = int(np.asarray(data["n"]))
        moments._mean = mean.copy()
        moments._m2 = np.asarray(data["m2"], dtype=np.float64).reshape(len(mean), len(mean)).copy()
        return moments

    @classmethod
    def of(cls, features: np.ndarray) -> "FeatureMoments":
        """Moments of a whole matrix, accumulated CHUNK_ROWS rows at a time."""
        features = np.asarray(features)
        moments = cls(features.shape[1])
        for rows in _row_chunks(len(features)):
            moments.update(features[rows])
        return moments


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    """Tr √(Σ1 Σ2) exactly as pytorch-fid / clean-fid: scipy's sqrtm, an eps·I offset if it fails."""
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma1)) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAGINARY_TOLERANCE):
            raise ValueError(f"matrix square root has a large imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(np.trace(covmean))


def _trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    """Tr √(Σ1 Σ2) from symmetric eigenvalues: Σ1 Σ2 is similar to √Σ1 Σ2 √Σ1 (symmetric, PSD).

    The same number as the sqrtm route (the trace of a square root is the sum of
    the square roots of the eigenvalues) at a fraction of the cost (two ``eigh``
    instead of a Schur-based ``sqrtm``), and real by construction; ``eps`` is
    unused (no failure to recover from), kept so both routes share a signature.
    """
    values, vectors = linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    middle = root1 @ sigma2 @ root1
    eigen = linalg.eigvalsh((middle + middle.T) / 2.0)
    return float(np.sqrt(np.clip(eigen, 0.0, None)).sum())


def _trace_sqrt_product_cholesky(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    """Tr √(Σ1 Σ2) via Σ1 = L Lᵀ: Σ1 Σ2 is similar to Lᵀ Σ2 L (symmetric, PSD), so one ``eigvalsh``.

    About twice as fast as "eigh" (a Cholesky instead of a full eigendecomposition);
    a Σ1 that is not positive definite (fewer rows than dimensions, dead
    features) makes the factorisation fail, and then the "eigh" route answers.
    """
    try:
        lower = linalg.cholesky(sigma1, lower=True)
    except linalg.LinAlgError:
        return _trace_sqrt_product_eigh(sigma1, sigma2, eps)
    middle = lower.T @ sigma2 @ lower
    eigen = linalg.eigvalsh((middle + middle.T) / 2.0)
    return float(np.sqrt(np.clip(eigen, 0.0, None)).sum())


# How Tr √(Σ1 Σ2) is computed: "sqrtm" is the reference libraries' route, "eigh" and "cholesky" faster equivalents.
TRACE_SQRT_METHODS: dict[str, Callable[[np.ndarray, np.ndarray, float], float]] = {
    "sqrtm": _trace_sqrt_product_sqrtm,
    "eigh": _trace_sqrt_product_eigh,
    "cholesky": _trace_sqrt_product_cholesky,
}


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    eps: float = 1e-6,
    method: str = "cholesky",
) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2√(Σ1 Σ2)): the Fréchet distance between two Gaussians (FID on Inception features).

    ``method`` picks a row of :data:`TRACE_SQRT_METHODS`; all give the
    reference libraries' number (the tests check ≤1e-6 relative, also for
    rank-deficient covariances); "cholesky" (the default) is the fastest at
    2048 dimensions, "sqrtm" the slowest (see docs/performance.md).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"mismatched moments: {mu1.shape}, {sigma1.shape} vs {mu2.shape}, {sigma2.shape}")
    diff = mu1 - mu2
    tr_covmean = TRACE_SQRT_METHODS[method](sigma1, sigma2, eps)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def frechet_distance_of_moments(first: FeatureMoments, second: FeatureMoments, method: str = "cholesky") -> float:
    """The Fréchet distance between two accumulated feature sets."""
    return frechet_distance(first.mean, first.cov, second.mean, second.cov, method=method)


def frechet_distance_of_features(x: np.ndarray, y: np.ndarray, method: str = "cholesky") -> float:
    """The Fréchet distance between two feature matrices (rows are images), e.g. for :func:`bootstrap_distance`."""
    return frechet_distance_of_moments(FeatureMoments.of(x), FeatureMoments.of(y), method=method)


def _cubic_kernel(a: np.ndarray, b: np.ndarray, dim: int) -> np.ndarray:
    """(a·b/d + 1)³ for all pairs; two multiplications, ~20× faster than numpy's float ``** 3`` (a pow call)."""
    base = a @ b.T / dim + 1.0
    return base * base * base


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with k(a, b) = (a·b/d + 1)³ between two equal-size subsets (diagonals left out)."""
    m, dim = x.shape
    k_xx, k_yy, k_xy = (_cubic_kernel(a, b, dim) for a, b in ((x, x), (y, y), (x, y)))
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kid(
    x: np.ndarray,
    y: np.ndarray,
    num_subsets: int = KID_SUBSETS,
    max_subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance: (mean, std) of the unbiased polynomial MMD² over random subsets.

    Each subset draws ``m = min(len(x), len(y), max_subset_size)`` rows of x, then
    of y, without replacement, from ``np.random.RandomState(seed)`` — torch-fidelity's
    order and generator, so with x = generated and y = reference the subsets (and
    the numbers) are torch-fidelity's. std is over subsets with ddof=0, as theirs.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m = min(len(x), len(y), max_subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 2 rows in each set, have {len(x)} and {len(y)}")
    rng = np.random.RandomState(seed)
    values = np.empty(num_subsets)
    for index in range(num_subsets):
        x_rows = x[rng.choice(len(x), m, replace=False)]
        y_rows = y[rng.choice(len(y), m, replace=False)]
        values[index] = _polynomial_mmd2(x_rows, y_rows)
    return float(values.mean()), float(values.std())


def _row_chunks(n_rows: int) -> Iterator[slice]:
    """Consecutive slices of at most CHUNK_ROWS rows (read at call time, so a test can shrink it)."""
    for start in range(0, n_rows, CHUNK_ROWS):
        yield slice(start, min(start + CHUNK_ROWS, n_rows))


def _squared_distances(a: np.ndarray, b: np.ndarray, a_sq: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances from the Gram expansion, clipped at 0 (rounding)."""
    return np.maximum(a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T), 0.0)


def _mean_gaussian_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> float:
    """Mean of exp(−γ‖a_i − b_j‖²) over all pairs, diagonal included, a's rows in chunks."""
    a_sq, b_sq = np.einsum("ij,ij->i", a, a), np.einsum("ij,ij->i", b, b)
    total = 0.0
    for rows in _row_chunks(len(a)):
        total += float(np.exp(-gamma * _squared_distances(a[rows], b, a_sq[rows], b_sq)).sum())
    return total / (len(a) * len(b))


def mmd_rbf(x: np.ndarray, y: np.ndarray, sigma: float = CMMD_SIGMA, scale: float = CMMD_SCALE) -> float:
    """CMMD's estimator: scale × (mean k(x,x') + mean k(y,y') − 2 mean k(x,y)), k Gaussian with bandwidth sigma.

    The paper's code (google-research/cmmd) averages over all pairs including
    the diagonal (the biased V-statistic); so does this, to give its numbers.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    gamma = 1.0 / (2.0 * sigma**2)
    k_xx, k_yy, k_xy = (_mean_gaussian_kernel(a, b, gamma) for a, b in ((x, x), (y, y), (x, y)))
    return float(scale * (k_xx + k_yy - 2.0 * k_xy))


def knn_radii(features: np.ndarray, k: int = PRDC_K) -> np.ndarray:
    """Each row's distance to its k-th nearest other row (the row itself is the 0th), rows in chunks."""
    features = np.asarray(features, np.float64)
    if len(features) <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} rows, have {len(features)}")
    squared = np.einsum("ij,ij->i", features, features)
    radii = np.empty(len(features))
    for rows in _row_chunks(len(features)):
        dist = _squared_distances(features[rows], features, squared[rows], squared)
        radii[rows] = np.sqrt(np.partition(dist, k, axis=1)[:, k])
    return radii


def prdc(real: np.ndarray, fake: np.ndarray, k: int = PRDC_K) -> dict[str, float]:
    """Precision, recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020) with k-NN radii.

    precision: share of fake rows inside some real row's k-NN ball; recall: share
    of real rows inside some fake row's ball; density: mean count of real balls
    holding a fake row, over k; coverage: share of real rows whose ball holds a
    fake row. Fake rows run in chunks, so memory is len(real) × CHUNK_ROWS.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    real_sq, fake_sq = np.einsum("ij,ij->i", real, real), np.einsum("ij,ij->i", fake, fake)
    in_real_ball = np.zeros(len(fake), dtype=bool)
    real_balls_hit = np.zeros(len(fake))
    real_recalled = np.zeros(len(real), dtype=bool)
    nearest_fake = np.full(len(real), np.inf)
    for cols in _row_chunks(len(fake)):
        dist = np.sqrt(_squared_distances(real, fake[cols], real_sq, fake_sq[cols]))
        inside_real = dist < real_radii[:, None]
        in_real_ball[cols] = inside_real.any(axis=0)
        real_balls_hit[cols] = inside_real.sum(axis=0)
        real_recalled |= (dist < fake_radii[None, cols]).any(axis=1)
        nearest_fake = np.minimum(nearest_fake, dist.min(axis=1))
    return {
        "precision": float(in_real_ball.mean()),
        "recall": float(real_recalled.mean()),
        "density": float(real_balls_hit.mean() / k),
        "coverage": float((nearest_fake < real_radii).mean()),
    }


@dataclass(frozen=True)
class BootstrapInterval:
    """A distance on all rows and its bootstrap interval.

    Each of ``n_boot`` resamples draws ``n_generated`` generated rows with
    replacement (and ``n_reference`` reference rows too when
    ``resampled_reference``). ``method`` says how the resampled distances
    become ``low``/``high`` (:data:`INTERVAL_METHODS`).
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n_boot: int
    n_generated: int
    n_reference: int
    resampled_reference: bool
    method: str = "basic"


def _basic(estimate: float, low_q: float, high_q: float) -> tuple[float, float]:
    return 2.0 * estimate - high_q, 2.0 * estimate - low_q


def _percentile(estimate: float, low_q: float, high_q: float) -> tuple[float, float]:
    return low_q, high_q


# How resampled distances become an interval. FID, KID, CMMD and prdc are biased at finite n, and a resample's
# repeated rows bias them again in the same direction (FID up: at 2,048-d and n in the thousands the whole
# percentile interval lies above the estimate and far from the true distance). The basic ("reverse
# percentile") interval reflects the quantiles around the estimate, which cancels that shift to first order;
# by simulation it covers the analytic distance at about its nominal rate where the percentile one covers it
# never (bench_assets_tests/stats/test_distribution.py).
INTERVAL_METHODS: dict[str, Callable[[float, float, float], tuple[float, float]]] = {
    "basic": _basic,
    "percentile": _percentile,
}


def bootstrap_figures(
    figures: Callable[[np.ndarray, np.ndarray], Mapping[str, float]],
    generated: np.ndarray,
    reference: np.ndarray,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    resample_reference: bool = False,
    seed: int = 0,
    method: str = "basic",
    bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
    estimates: Mapping[str, float] | None = None,
) -> dict[str, BootstrapInterval]:
    """Bootstrap intervals of every figure ``figures(generated, reference)`` returns, from one set of resamples.

    prdc gives four figures from one k-NN computation: one resampling loop for all four costs a quarter of
    four :func:`bootstrap_distance` calls. ``bounds``: each figure's range (default 0 and up), which its
    interval is clipped to. ``estimates``: ``figures(generated, reference)`` when the caller has it already
    (it is not computed again). Otherwise as :func:`bootstrap_distance`.
    """
    generated, reference = np.asarray(generated), np.asarray(reference)
    rng = np.random.default_rng(seed)
    resampled: list[Mapping[str, float]] = []
    for _ in range(n_boot):
        gen_rows = generated[rng.integers(0, len(generated), len(generated))]
        ref_rows = reference[rng.integers(0, len(reference), len(reference))] if resample_reference else reference
        resampled.append(figures(gen_rows, ref_rows))
    tail = (1.0 - confidence) / 2.0
    intervals = {}
    for name, estimate in (figures(generated, reference) if estimates is None else estimates).items():
        values = np.array([draw[name] for draw in resampled], dtype=float)
        low, high = INTERVAL_METHODS[method](float(estimate), *np.quantile(values, [tail, 1.0 - tail]))
        floor, ceiling = (bounds or {}).get(name, (0.0, None))
        low = max(low, floor) if floor is not None else low
        high = min(high, ceiling) if ceiling is not None else high
        intervals[name] = BootstrapInterval(
            estimate=float(estimate), low=float(low), high=float(high), confidence=confidence, n_boot=n_boot,
            n_generated=len(generated), n_reference=len(reference), resampled_reference=resample_reference,
            method=method,
        )
    return intervals


def bootstrap_distance(
    distance: Callable[[np.ndarray, np.ndarray], float],
    generated: np.ndarray,
    reference: np.ndarray,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    resample_reference: bool = False,
    seed: int = 0,
    method: str = "basic",
    bounds: tuple[float | None, float | None] = (0.0, None),
    estimate: float | None = None,
) -> BootstrapInterval:
    """Bootstrap interval of ``distance(generated, reference)`` over generated rows (and reference rows).

    ``method`` picks the interval (:data:`INTERVAL_METHODS`); ``bounds`` is the
    distance's range (0 and up for a distance, [0, 1] for precision or recall),
    which the interval is clipped to; ``estimate``: the distance on all rows, when the caller has it.
    Estimators built on nearest neighbours
    (prdc) or on subsets without replacement (kid) see repeated rows as exact
    duplicates, so read their intervals as approximate. Fixed seed: the same
    features give the same interval every run.
    """
    return bootstrap_figures(lambda g, r: {"value": distance(g, r)}, generated, reference, n_boot=n_boot,
                             confidence=confidence, resample_reference=resample_reference, seed=seed,
                             method=method, bounds={"value": bounds},
                             estimates=None if estimate is None else {"value": estimate})["value"]
