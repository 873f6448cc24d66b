"""Frechet distance: vganzoo's eigendecomposition route vs scipy.linalg.sqrtm, measured in one run.

    PYTHONPATH=. python benchmarks/bench_metrics.py [--repeats 3] [--dims 400 2048]

For each feature size D, two sets of N = 2 D + 1 random correlated features are reduced to
(mean, covariance) once; then the distance is computed by
  * vganzoo: ``frechet_distance`` (two symmetric eigendecompositions, float64), and
  * baseline: the common FID/FVD code path, ``scipy.linalg.sqrtm(S1 @ S2)`` and its real trace.
Prints the median wall time of each, the speed ratio, and the relative difference of the values.

BLAS/LAPACK threads default to 1 (set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS to change it): on a
shared 2-core box, multi-threaded OpenBLAS spin-waits and timings become noise. Both routes run
with the same setting.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads its BLAS

import argparse
import platform
import statistics
import time

import numpy as np
import scipy
import scipy.linalg

from vganzoo.metrics import FeatureStats, frechet_distance


def scipy_frechet(mu1: np.ndarray, mu2: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> float:
    root = scipy.linalg.sqrtm(c1 @ c2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2.0 * np.trace(root).real)


def timed(fn, repeats: int) -> tuple[float, float]:
    times, value = [], 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[400, 2048])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    blas = os.environ.get("OPENBLAS_NUM_THREADS")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, BLAS threads {blas}; numpy {np.__version__}, "
        f"scipy {scipy.__version__}",
        flush=True,
    )
    print(
        f"{'D':>6} {'N':>6} {'accumulate s':>13} {'vganzoo s':>10} {'sqrtm s':>10} {'speed-up':>9} "
        f"{'rel. diff':>10}",
        flush=True,
    )
    for dim in args.dims:
        rng = np.random.default_rng(dim)
        n = 2 * dim + 1
        mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
        feats1 = rng.normal(size=(n, dim)) @ mixing
        feats2 = rng.normal(size=(n, dim)) @ mixing * 1.1 + 0.05
        start = time.perf_counter()
        s1, s2 = FeatureStats(), FeatureStats()
        for chunk1, chunk2 in zip(np.array_split(feats1, 8), np.array_split(feats2, 8)):
            s1.update(chunk1)
            s2.update(chunk2)
        accumulate = time.perf_counter() - start
        mu1, mu2, c1, c2 = s1.mean, s2.mean, s1.cov, s2.cov
        ours_t, ours = timed(lambda g=(mu1, mu2, c1, c2): frechet_distance(*g), args.repeats)
        base_t, base = timed(lambda g=(mu1, mu2, c1, c2): scipy_frechet(*g), args.repeats)
        rel = abs(ours - base) / abs(base)
        print(
            f"{dim:>6} {n:>6} {accumulate:>13.3f} {ours_t:>10.3f} {base_t:>10.3f} {base_t / ours_t:>8.2f}x "
            f"{rel:>10.2e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
