"""Distribution distances (issue 22): equal to clean-fid / torch-fidelity / torchmetrics on the same
feature matrices, and right by simulation against Gaussians whose distances are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cleanfid import fid as cleanfid
from scipy.spatial.distance import cdist
from torch_fidelity import metric_fid as tf_fid
from torch_fidelity import metric_kid as tf_kid
from torchmetrics.image.fid import _compute_fid as torchmetrics_fid
from torchmetrics.image.kid import poly_mmd as torchmetrics_poly_mmd

from bench_assets.stats import distribution
from bench_assets.stats.distribution import (
    FeatureMoments,
    bootstrap_distance,
    bootstrap_figures,
    frechet_distance,
    frechet_distance_of_features,
    kid,
    mmd_rbf,
    prdc,
)

RELATIVE = 1e-6


def _features(seed: int, n: int, dim: int, shift: float = 0.0) -> np.ndarray:
    """Correlated, non-centred rows, like network features (a shared mixing matrix per seed)."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    return rng.normal(size=(n, dim)) @ mixing + shift + 0.3


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.cov(x, rowvar=False)


# Full rank (more rows than dimensions) and near-singular (fewer rows than dimensions: rank-deficient covariances).
@pytest.mark.parametrize("n_x,n_y,dim", [(300, 250, 24), (12, 9, 40)], ids=["full-rank", "near-singular"])
def test_frechet_distance_equals_clean_fid_torch_fidelity_and_torchmetrics(n_x, n_y, dim):
    (mu1, s1), (mu2, s2) = _moments(_features(1, n_x, dim)), _moments(_features(2, n_y, dim, shift=0.2))
    references = {
        "clean-fid": float(cleanfid.frechet_distance(mu1, s1, mu2, s2)),
        "torch-fidelity": tf_fid.fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, False)[
            tf_fid.KEY_METRIC_FID
        ],
        "torchmetrics": float(torchmetrics_fid(*(torch.from_numpy(a) for a in (mu1, s1, mu2, s2)))),
    }
    for method in distribution.TRACE_SQRT_METHODS:
        ours = frechet_distance(mu1, s1, mu2, s2, method=method)
        for name, value in references.items():
            assert ours == pytest.approx(value, rel=RELATIVE), (method, name)


def test_feature_moments_over_uneven_batches_and_merges_equal_the_whole_matrix():
    x = _features(3, 257, 8, shift=1e4)  # a large common offset: the naive sum-of-squares formula loses digits
    first, second = FeatureMoments(8), FeatureMoments(8)
    for start, stop in [(0, 1), (1, 40), (40, 41), (41, 130)]:
        first.update(x[start:stop])
    second.update(x[130:200]).update(x[200:200]).update(x[200:])
    merged = FeatureMoments.from_dict(first.to_dict()).merge(second)
    assert merged.n == 257
    np.testing.assert_allclose(merged.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.cov, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError):
        FeatureMoments(8).update(x[:, :7])


def test_kid_equals_torch_fidelity_subset_for_subset_and_clean_fid_and_torchmetrics_on_the_full_set():
    x, y = _features(4, 90, 16), _features(5, 70, 16, shift=0.1)
    ours = kid(x, y, num_subsets=15, max_subset_size=50, seed=7)
    theirs = tf_kid.kid_features_to_metric(
        torch.from_numpy(x), torch.from_numpy(y), kid_subsets=15, kid_subset_size=50, rng_seed=7, verbose=False
    )
    assert ours[0] == pytest.approx(theirs[tf_kid.KEY_METRIC_KID_MEAN], rel=RELATIVE)
    assert ours[1] == pytest.approx(theirs[tf_kid.KEY_METRIC_KID_STD], rel=RELATIVE)
    # clean-fid draws from numpy's global generator, feats2 first: seeded alike, its subsets are ours.
    saved = np.random.get_state()
    np.random.seed(7)
    try:
        clean = cleanfid.kernel_distance(y, x, num_subsets=15, max_subset_size=50)
    finally:
        np.random.set_state(saved)
    assert ours[0] == pytest.approx(clean, rel=RELATIVE)
    # One subset of every row is a permutation of the sets, so any library's sampling gives the same MMD².
    full = kid(x[:70], y, num_subsets=1, max_subset_size=1000)[0]
    tm = float(torchmetrics_poly_mmd(torch.from_numpy(x[:70]), torch.from_numpy(y)))
    assert full == pytest.approx(tm, rel=RELATIVE)


def test_mmd_rbf_in_chunks_equals_cmmds_biased_gaussian_mmd(monkeypatch):
    x, y = _features(6, 53, 12) * 8, _features(7, 53, 12, shift=0.5) * 8
    kernels = [tf_kid.kernel_rbf(a, b, kid_kernel_rbf_sigma=10.0) for a, b in ((x, x), (x, y), (y, y))]
    reference = 1000.0 * tf_kid.mmd2(*kernels, mmd_est="biased")
    monkeypatch.setattr(distribution, "CHUNK_ROWS", 7)  # blocks that do not divide the rows
    assert mmd_rbf(x, y) == pytest.approx(reference, rel=RELATIVE)
    assert mmd_rbf(x, x) == pytest.approx(0.0, abs=1e-9)


def _prdc_full_matrix(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """The prdc package's computation, with every distance matrix held at once."""
    real_radii = np.sort(cdist(real, real), axis=1)[:, k]
    fake_radii = np.sort(cdist(fake, fake), axis=1)[:, k]
    dist = cdist(real, fake)
    return {
        "precision": (dist < real_radii[:, None]).any(axis=0).mean(),
        "recall": (dist < fake_radii[None, :]).any(axis=1).mean(),
        "density": (dist < real_radii[:, None]).sum(axis=0).mean() / k,
        "coverage": (dist.min(axis=1) < real_radii).mean(),
    }


def test_prdc_in_chunks_equals_the_full_matrix_computation(monkeypatch):
    real, fake = _features(8, 61, 6), _features(9, 47, 6, shift=0.4)
    monkeypatch.setattr(distribution, "CHUNK_ROWS", 10)
    ours = prdc(real, fake, k=3)
    expected = _prdc_full_matrix(real, fake, k=3)
    assert ours == pytest.approx(expected, abs=1e-12)
    assert 0 < ours["precision"] < 1 and 0 < ours["coverage"] < 1  # a case where every figure is informative


def test_prdc_of_identical_sets_is_one_and_of_disjoint_sets_is_zero():
    real = _features(10, 80, 5)
    same = prdc(real, real.copy(), k=5)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] >= 1.0  # every fake row sits in its own real twin's ball, and in its neighbours'
    apart = prdc(real, real + 1e3, k=5)
    assert apart == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def _analytic_frechet_diagonal(mu1, var1, mu2, var2) -> float:
    """Closed form for diagonal covariances (they commute): ‖μ1 − μ2‖² + Σ (√v1 − √v2)²."""
    return float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum())


def test_fid_converges_to_the_analytic_frechet_distance_as_n_grows():
    mu1, var1 = np.array([0.0, 0.5, -0.3, 0.0]), np.array([1.0, 2.0, 0.5, 1.0])
    mu2, var2 = np.array([0.4, 0.0, 0.0, 0.2]), np.array([1.5, 1.0, 0.5, 3.0])
    truth = _analytic_frechet_diagonal(mu1, var1, mu2, var2)
    rng = np.random.default_rng(11)
    errors = []
    for n in (50, 500, 20_000):
        values = [
            frechet_distance_of_features(rng.normal(mu1, np.sqrt(var1), (n, 4)), rng.normal(mu2, np.sqrt(var2), (n, 4)))
            for _ in range(5)
        ]
        errors.append(abs(np.mean(values) - truth))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.01 * truth, (errors, truth)


def _gaussian_moment_tensors(mu: np.ndarray, cov: np.ndarray) -> list[np.ndarray]:
    """E[x], E[x⊗x], E[x⊗x⊗x] of N(mu, cov) (Isserlis)."""
    second = cov + np.outer(mu, mu)
    third = np.einsum("i,j,k->ijk", mu, mu, mu)
    third = third + np.einsum("i,jk->ijk", mu, cov) + np.einsum("j,ik->ijk", mu, cov) + np.einsum("k,ij->ijk", mu, cov)
    return [mu, second, third]


def _analytic_cubic_mmd2(mu_x, cov_x, mu_y, cov_y) -> float:
    """MMD² for k(a, b) = (a·b/d + 1)³: Σ_k C(3, k) ‖E[x^⊗k] − E[y^⊗k]‖² / d^k, as E[(a·b)^k] = ⟨E a^⊗k, E b^⊗k⟩."""
    dim = len(mu_x)
    pairs = zip(_gaussian_moment_tensors(mu_x, cov_x), _gaussian_moment_tensors(mu_y, cov_y))
    return float(sum(c * ((mx - my) ** 2).sum() / dim**k for k, c, (mx, my) in zip((1, 2, 3), (3, 3, 1), pairs)))


def test_kid_is_unbiased_at_small_n_and_converges_to_the_analytic_mmd():
    mu_x, cov_x = np.zeros(3), np.eye(3)
    mu_y, cov_y = np.array([0.5, 0.0, -0.2]), np.diag([1.5, 1.0, 0.8])
    truth = _analytic_cubic_mmd2(mu_x, cov_x, mu_y, cov_y)
    rng = np.random.default_rng(12)

    def draw(n):
        return rng.multivariate_normal(mu_x, cov_x, n), rng.multivariate_normal(mu_y, cov_y, n)

    small = np.array([kid(*draw(15), num_subsets=1)[0] for _ in range(400)])
    standard_error = small.std(ddof=1) / np.sqrt(len(small))
    assert abs(small.mean() - truth) < 3 * standard_error, (small.mean(), truth, standard_error)
    large = kid(*draw(2000), num_subsets=4, max_subset_size=2000)[0]
    assert large == pytest.approx(truth, rel=0.15)


def _coverage(dim: int, n: int, repeats: int, method: str) -> float:
    """How often the 95% interval of FID between N(e1·1, diag(1, 2, 1, ...)) and N(0, I) covers the truth."""
    mu1, var1 = np.zeros(dim), np.ones(dim)
    mu2, var2 = np.eye(dim)[0], np.ones(dim) + np.eye(dim)[1]
    truth = _analytic_frechet_diagonal(mu1, var1, mu2, var2)
    rng = np.random.default_rng(13)
    hits = []
    for repeat in range(repeats):
        gen, ref = rng.normal(mu2, np.sqrt(var2), (n, dim)), rng.normal(mu1, np.sqrt(var1), (n, dim))
        interval = bootstrap_distance(frechet_distance_of_features, gen, ref, n_boot=150, resample_reference=True,
                                      seed=repeat, method=method)
        hits.append(interval.low <= truth <= interval.high)
    assert (interval.n_generated, interval.n_reference, interval.n_boot, interval.method) == (n, n, 150, method)
    return float(np.mean(hits))


def test_bootstrap_interval_covers_the_true_distance_at_about_its_nominal_rate():
    # Few dimensions for the rows: FID's small-sample bias is small, and both intervals cover about 95%.
    assert 0.82 <= _coverage(2, 300, 60, "basic") <= 1.0
    assert 0.82 <= _coverage(2, 300, 60, "percentile") <= 1.0
    # 16 dimensions, 200 rows: FID is biased up (mean 2.0 for a truth of 1.17) and a resample's repeated rows
    # bias it up again, so the percentile interval lies wholly above the truth; the basic one still covers it.
    assert _coverage(16, 200, 30, "basic") >= 0.82
    assert _coverage(16, 200, 30, "percentile") <= 0.1


def test_bootstrap_bounds_clip_the_interval_to_the_distances_range():
    rng = np.random.default_rng(16)
    gen, ref = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))  # the same distribution: FID near 0
    interval = bootstrap_distance(frechet_distance_of_features, gen, ref, n_boot=50, seed=1)
    assert interval.low == 0.0 <= interval.estimate <= interval.high, "a distance's interval never goes below 0"
    unclipped = bootstrap_distance(frechet_distance_of_features, gen, ref, n_boot=50, seed=1, bounds=(None, None))
    assert unclipped.low < 0.0 and unclipped.high == interval.high


def test_bootstrap_is_seeded_and_resamples_only_what_it_is_asked_to():
    gen, ref = _features(14, 40, 3), _features(15, 30, 3, shift=1.0)
    seen_refs = []

    def distance(g, r):
        seen_refs.append(r)
        return frechet_distance_of_features(g, r)

    first = bootstrap_distance(distance, gen, ref, n_boot=30, seed=5)
    assert all(r is ref for r in seen_refs)  # the reference rows stay fixed unless asked
    assert first == bootstrap_distance(frechet_distance_of_features, gen, ref, n_boot=30, seed=5)
    assert first.low < first.high and not first.resampled_reference


def test_several_figures_from_one_set_of_resamples_equal_one_bootstrap_each():
    """prdc's four figures: one resampling loop (n_boot + 1 evaluations), the intervals four loops would give."""
    rng = np.random.default_rng(21)
    real, fake = rng.normal(size=(60, 3)), rng.normal(0.3, 1.0, size=(50, 3))
    calls = []

    def figures(g, r):
        calls.append(1)
        return prdc(r, g, k=3)

    bounds = {"precision": (0.0, 1.0), "density": (0.0, None)}
    together = bootstrap_figures(figures, fake, real, n_boot=25, resample_reference=True, seed=4, bounds=bounds)
    assert len(calls) == 26 and set(together) == {"precision", "recall", "density", "coverage"}
    for name, interval in together.items():
        alone = bootstrap_distance(lambda g, r, name=name: prdc(r, g, k=3)[name], fake, real, n_boot=25,
                                   resample_reference=True, seed=4, bounds=bounds.get(name, (0.0, None)))
        assert interval == alone
