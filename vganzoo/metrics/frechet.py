"""Frechet distance between two Gaussians fitted to feature sets, and a streaming accumulator.

The Frechet (2-Wasserstein) distance between N(mu1, S1) and N(mu2, S2) is

    d^2 = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)).

``Tr((S1 S2)^(1/2))`` equals ``Tr((sqrt(S1) S2 sqrt(S1))^(1/2))``: the inner matrix is symmetric
positive semi-definite, so the trace is the sum of square roots of its eigenvalues and two symmetric
eigendecompositions replace the general (and slower, occasionally complex-valued) ``sqrtm``.
Everything is float64; tiny negative eigenvalues from rounding are clipped to zero.

Features are accumulated as running sums (of ``x - shift`` and of its outer products, with
``shift`` the first batch's mean so the covariance does not suffer from cancellation), so a data set
never has to sit in memory. Statistics can be saved with their protocol and reused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..errors import short_repr
from ..files import (
    atomic_write_bytes,
    check_safetensors_file,
    loads_json,
    safetensors_bytes,
    safetensors_errors,
)

__all__ = ["STATS_FORMAT", "FeatureStats", "frechet_distance", "trace_sqrt_product"]

STATS_FORMAT = "vganzoo-feature-stats/1"
_TENSOR_NAMES = ("shift", "sum", "outer_sum")


def _as_float64_2d(features: Any, name: str = "features") -> np.ndarray:
    if isinstance(features, torch.Tensor):
        if features.is_complex():
            raise TypeError(f"{name} must be real numbers, got {features.dtype}")
        features = features.detach().to("cpu", torch.float64).numpy()
    if np.iscomplexobj(features):
        raise TypeError(f"{name} must be real numbers, got a complex array")
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N, D), got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise ValueError(
            f"{name} contain NaN or infinite values ({bad} of {array.shape[0]} rows); check the extractor's "
            "input"
        )
    return array


class FeatureStats:
    """Streaming mean and covariance of feature vectors, in float64.

    >>> stats = FeatureStats()
    >>> for batch in batches:              # each (B, D)
    ...     stats.update(batch)
    >>> stats.n, stats.mean.shape, stats.cov.shape   # N, (D,), (D, D)

    Attributes:
        n: number of feature vectors seen.
        dim: feature size D (None until the first update).
        protocol: a JSON-able dict describing how the features were made (set by ``load`` or by
            the caller; written by ``save``).
    """

    def __init__(self, dim: int | None = None, protocol: Mapping[str, Any] | None = None) -> None:
        if dim is not None and (not isinstance(dim, int) or dim < 1):
            raise ValueError(f"dim must be a positive int or None, got {dim!r}")
        self.dim = dim
        self.n = 0
        self.protocol: dict[str, Any] = dict(protocol or {})
        self._shift: np.ndarray | None = None
        self._sum: np.ndarray | None = None
        self._outer: np.ndarray | None = None

    def update(self, features: Any) -> FeatureStats:
        """Add a batch ``features: (B, D)`` (tensor or array); returns self."""
        x = _as_float64_2d(features)
        if self.dim is not None and x.shape[1] != self.dim:
            raise ValueError(
                f"features have {x.shape[1]} dimensions but these statistics hold {self.dim}-dimensional "
                "features"
            )
        if x.shape[0] == 0:
            return self
        if self._shift is None:
            self.dim = x.shape[1]
            self._shift = x.mean(axis=0)
            self._sum = np.zeros(self.dim, dtype=np.float64)
            self._outer = np.zeros((self.dim, self.dim), dtype=np.float64)
        centred = x - self._shift
        self._sum += centred.sum(axis=0)
        self._outer += centred.T @ centred
        self.n += x.shape[0]
        return self

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Add another accumulator's features (e.g. from another process); returns self."""
        if not isinstance(other, FeatureStats):
            raise TypeError(
                f"other: expected FeatureStats, got {type(other).__name__} (use update() for raw features)"
            )
        if other.n == 0:
            return self
        if self.dim is not None and other.dim != self.dim:
            raise ValueError(
                f"cannot merge {other.dim}-dimensional statistics into {self.dim}-dimensional ones"
            )
        if self._shift is None:
            self.dim, self.n = other.dim, other.n
            self._shift, self._sum, self._outer = other._shift.copy(), other._sum.copy(), other._outer.copy()
            return self
        # re-centre the other's sums on our shift: x - a = (x - b) + (b - a)
        delta = other._shift - self._shift
        self._outer += (
            other._outer
            + np.outer(other._sum, delta)
            + np.outer(delta, other._sum)
            + other.n * np.outer(delta, delta)
        )
        self._sum += other._sum + other.n * delta
        self.n += other.n
        return self

    def _require(self, minimum: int, what: str) -> None:
        if self.n < minimum:
            raise ValueError(f"{what} needs at least {minimum} feature vectors, got N={self.n}")

    @property
    def mean(self) -> np.ndarray:
        """(D,) float64 mean."""
        self._require(1, "the mean")
        return self._shift + self._sum / self.n

    @property
    def cov(self) -> np.ndarray:
        """(D, D) float64 unbiased (n - 1) covariance."""
        self._require(2, "the covariance")
        centred_mean = self._sum / self.n
        cov = (self._outer - self.n * np.outer(centred_mean, centred_mean)) / (self.n - 1)
        return (cov + cov.T) / 2.0

    def save(self, path: str | os.PathLike, protocol: Mapping[str, Any] | None = None) -> None:
        """Write the sums to ``path`` (safetensors, float64) with ``protocol`` as JSON metadata.

        The file is written atomically; ``protocol`` (default: ``self.protocol``) must be JSON-able.
        """
        self._require(1, "saving statistics")
        protocol = dict(self.protocol if protocol is None else protocol)
        metadata = {
            "format": STATS_FORMAT,
            "n": str(self.n),
            "dim": str(self.dim),
            "protocol": json.dumps(protocol, sort_keys=True),
        }
        tensors = {"shift": self._shift, "sum": self._sum, "outer_sum": self._outer}
        atomic_write_bytes(path, safetensors_bytes(tensors, metadata))
        self.protocol = protocol

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        """Read statistics written by :meth:`save`; ``protocol`` holds what was saved with them."""
        from safetensors import safe_open

        check_safetensors_file(path, what="feature statistics")
        with (
            safetensors_errors(path, "feature statistics"),
            safe_open(os.fspath(path), framework="numpy") as f,
        ):
            metadata = f.metadata() or {}
            if metadata.get("format") != STATS_FORMAT:
                raise ValueError(
                    f"{path}: not a vganzoo feature-statistics file (format {metadata.get('format')!r}, "
                    f"expected {STATS_FORMAT!r})"
                )
            missing = [k for k in _TENSOR_NAMES if k not in f.keys()]  # noqa: SIM118 (a safetensors handle)
            if missing:
                raise ValueError(f"{path}: feature-statistics file lacks tensors {missing}")
            tensors = {k: f.get_tensor(k).astype(np.float64) for k in _TENSOR_NAMES}
        protocol = loads_json(metadata.get("protocol", "{}"), f"{path}: protocol")
        if not isinstance(protocol, dict):
            raise ValueError(f"{path}: its protocol metadata is not a JSON object")
        stats = cls(protocol=protocol)
        stats.n, stats.dim = (_count_field(metadata, key, path) for key in ("n", "dim"))
        d = stats.dim
        if (
            tensors["shift"].shape != (d,)
            or tensors["sum"].shape != (d,)
            or tensors["outer_sum"].shape != (d, d)
        ):
            raise ValueError(f"{path}: tensor shapes do not match dim={d}")
        stats._shift, stats._sum, stats._outer = tensors["shift"], tensors["sum"], tensors["outer_sum"]
        return stats

    def __repr__(self) -> str:
        return f"FeatureStats(n={self.n}, dim={self.dim})"


def _count_field(metadata: Mapping[str, str], key: str, path: Any) -> int:
    """A positive count from a statistics file's metadata, or a ValueError naming the file and key."""
    text = metadata.get(key)
    if not isinstance(text, str) or not text.isdigit() or len(text) > 12 or int(text) < 1:
        raise ValueError(f"{path}: metadata {key!r} must be a positive integer, got {short_repr(text)}")
    return int(text)


def _check_gaussian(mu: Any, cov: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if mu.ndim != 1 or cov.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{name}: mean must be (D,) and covariance (D, D), got {mu.shape} and {cov.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(cov).all()):
        raise ValueError(f"{name}: mean or covariance contains NaN or infinite values")
    scale = max(float(np.abs(cov).max(initial=0.0)), 1e-300)
    if np.abs(cov - cov.T).max(initial=0.0) > 1e-6 * scale:
        raise ValueError(f"{name}: the covariance is not symmetric")
    if cov.size and float(np.linalg.eigvalsh(cov).min()) < -1e-6 * scale:  # rounding leaves tiny negatives
        raise ValueError(f"{name}: the covariance is not positive semi-definite (a negative eigenvalue)")
    return mu, cov


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative rounding eigenvalues -> 0)."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    root = np.sqrt(np.clip(eigenvalues, 0.0, None))
    return (eigenvectors * root) @ eigenvectors.T


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """``Tr((S1 S2)^(1/2))`` for symmetric PSD ``cov1``, ``cov2`` of shape (D, D), in float64."""
    root1 = _psd_sqrt(np.asarray(cov1, dtype=np.float64))
    inner = root1 @ np.asarray(cov2, dtype=np.float64) @ root1
    eigenvalues = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_distance(first: Any, second: Any, cov1: Any = None, cov2: Any = None) -> float:
    """Frechet distance between two Gaussians.

    Call as ``frechet_distance(stats1, stats2)`` with two :class:`FeatureStats` (each needs
    N >= 2), or ``frechet_distance(mu1, mu2, cov1, cov2)`` with means (D,) and covariances (D, D).
    Returns a float >= 0 (rounding below zero is clipped).
    """
    if isinstance(first, FeatureStats) or isinstance(second, FeatureStats):
        if (
            not (isinstance(first, FeatureStats) and isinstance(second, FeatureStats))
            or cov1 is not None
            or cov2 is not None
        ):
            raise TypeError("pass either two FeatureStats or (mu1, mu2, cov1, cov2)")
        for label, stats in (("first", first), ("second", second)):
            if stats.n < 2:
                raise ValueError(
                    f"the {label} feature set has N={stats.n}; the Frechet distance needs N >= 2 in each set"
                )
        if first.dim != second.dim:
            raise ValueError(
                f"feature sizes differ: {first.dim} vs {second.dim}; both sets must come from the same "
                "extractor"
            )
        first, second, cov1, cov2 = first.mean, second.mean, first.cov, second.cov
    elif cov1 is None or cov2 is None:
        raise TypeError("frechet_distance(mu1, mu2, cov1, cov2) needs both covariances")
    mu1, cov1 = _check_gaussian(first, cov1, "first")
    mu2, cov2 = _check_gaussian(second, cov2, "second")
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"feature sizes differ: {mu1.shape[0]} vs {mu2.shape[0]}; both sets must come from the same "
            "extractor"
        )
    diff = mu1 - mu2
    distance = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt_product(cov1, cov2))
    return max(distance, 0.0)
