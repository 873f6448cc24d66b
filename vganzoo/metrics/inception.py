"""Inception Score from class probabilities: ``IS = exp(E_x KL(p(y|x) || p(y)))``, mean and std over
splits."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["DEFAULT_SPLITS", "inception_score"]

DEFAULT_SPLITS = 10


def inception_score(probs: Any, splits: int = DEFAULT_SPLITS) -> tuple[float, float]:
    """Inception Score of ``probs: (N, K)`` (rows are class distributions p(y|x)).

    The N samples are cut into ``splits`` consecutive equal parts (the last takes the remainder);
    in each, ``p(y)`` is the part's mean distribution. Returns (mean, std) of the per-split scores
    (std is the population std, as in the original implementation). Computed in float64.
    """
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().to("cpu", torch.float64).numpy()
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("probs must be finite and non-negative")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("each row of probs must sum to 1 (apply softmax to logits first)")
    if not isinstance(splits, int) or splits < 1:
        raise ValueError(f"splits must be a positive int, got {splits!r}")
    if p.shape[0] < splits:
        raise ValueError(f"need at least one sample per split: N={p.shape[0]} < splits={splits}")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # 0 * log 0 = 0
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))
