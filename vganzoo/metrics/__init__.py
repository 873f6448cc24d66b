"""Evaluation: Frechet distances (FVD, FVD-digits), the video Inception Score and the digits check.

    >>> from vganzoo.metrics import evaluate
    >>> result = evaluate(model, "moving-digits", metric=["fvd-digits", "consistency"], n=512)
    >>> result["scores"], result["real_scores"], result["protocol"]

Every score comes with its protocol (N, frames, stride, resolution, resizing, extractor and its
sha256, seed, versions). See :mod:`vganzoo.metrics.evaluation` for the metrics,
:mod:`vganzoo.metrics.frechet` for the distance, :mod:`vganzoo.metrics.extractors` for loading
I3D / C3D weights and :mod:`vganzoo.metrics.digits` for the bundled classifier.
"""

from __future__ import annotations

from .evaluation import METRICS, evaluate
from .extractors import TinyVideoCNN, VideoExtractor, build_extractor, load_extractor, save_extractor
from .frechet import FeatureStats, frechet_distance, trace_sqrt_product
from .inception import inception_score

__all__ = [
    "METRICS",
    "FeatureStats",
    "TinyVideoCNN",
    "VideoExtractor",
    "build_extractor",
    "evaluate",
    "frechet_distance",
    "inception_score",
    "load_digits_classifier",
    "load_extractor",
    "save_extractor",
    "trace_sqrt_product",
]


def __getattr__(name: str):
    if name == "load_digits_classifier":
        from .digits import load_digits_classifier

        return load_digits_classifier
    raise AttributeError(f"module 'vganzoo.metrics' has no attribute {name!r}")
