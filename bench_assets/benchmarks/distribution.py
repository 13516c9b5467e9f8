"""Speed of the distribution metrics (issue 22) at the size FID is meant for: 10,000 × 10,000 feature vectors.

Random 2048-d features (Inception's pool size) for a generated and a reference
set; each step times what a metric asset does once the features are extracted:
the streaming moments, the matrix square root (both routes of
``TRACE_SQRT_METHODS``), KID's 100 subsets of 1,000, CMMD's Gaussian MMD over
all pairs, and precision/recall/density/coverage with k=5. Feature extraction
itself (Inception on a GPU) is not in here.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np

from bench_assets.stats.distribution import (
    TRACE_SQRT_METHODS,
    FeatureMoments,
    frechet_distance,
    kid,
    mmd_rbf,
    prdc,
)


def _timed(step: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = step()
    return value, time.perf_counter() - start


def _features(rng: np.random.Generator, n: int, dim: int, shift: float) -> np.ndarray:
    """Non-negative, correlated rows (like post-ReLU pool features): a shared low-rank part plus noise."""
    basis = rng.standard_normal((64, dim)) / 8
    return np.abs(rng.standard_normal((n, 64)) @ basis + 0.5 * rng.standard_normal((n, dim)) + shift)


def _fid_rows(gen: np.ndarray, ref: np.ndarray) -> list[tuple[str, float, str]]:
    (gen_m, ref_m), seconds_moments = _timed(lambda: (FeatureMoments.of(gen), FeatureMoments.of(ref)))
    rows = [("moments of both sets (streamed, 1,000 rows a batch)", seconds_moments, "")]
    stats = (gen_m.mean, gen_m.cov, ref_m.mean, ref_m.cov)
    for method in TRACE_SQRT_METHODS:
        value, seconds = _timed(lambda: frechet_distance(*stats, method=method))
        rows.append((f"Fréchet distance, trace route `{method}`", seconds, f"{value:.6f}"))
        rows.append((f"**FID total** (moments + `{method}`)", seconds_moments + seconds, ""))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="rows in each set")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--skip", nargs="*", default=[], choices=["kid", "cmmd", "prdc"])
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    gen, ref = _features(rng, args.n, args.dim, 0.1), _features(rng, args.n, args.dim, 0.0)
    print(f"{args.n:,} generated × {args.n:,} reference feature vectors, {args.dim}-d, float64")
    print("| step | seconds | value |\n|---|---|---|", flush=True)
    for label, seconds, value in _fid_rows(gen, ref):
        print(f"| {label} | {seconds:.2f} | {value} |", flush=True)
    others: dict[str, tuple[str, Callable[[], Any]]] = {
        "kid": ("KID (100 subsets × 1,000)", lambda: kid(gen, ref)),
        "cmmd": ("CMMD Gaussian MMD (all pairs)", lambda: mmd_rbf(gen, ref)),
        "prdc": ("prdc, k=5", lambda: prdc(ref, gen, k=5)),
    }
    for name, (label, step) in others.items():
        if name not in args.skip:
            value, seconds = _timed(step)
            print(f"| {label} | {seconds:.2f} | {value} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
