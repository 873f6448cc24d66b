"""Evaluation: Frechet distances (FVD, FVD-digits), the video Inception Score and the digits check.

    >>> from vganzoo.metrics import evaluate
    >>> result = evaluate(model, "moving-digits", metric=["fvd-digits", "consistency"], n=512)
    >>> result["scores"], result["real_scores"], result["protocol"]

Every score comes with its protocol (N, frames, stride, resolution, resizing, extractor and its
sha256, seed, versions). The literature's definitions are named, pinned protocols
(:mod:`vganzoo.metrics.protocols`: ``stylegan-v-fvd16``, ``videogpt-fvd``, ``tgan2-is``...), run with
``evaluate(model, data, protocol="stylegan-v-fvd16", detector="i3d_torchscript.pt")`` or
:func:`evaluate_protocol`. See :mod:`vganzoo.metrics.evaluation` for the metrics,
:mod:`vganzoo.metrics.frechet` for the distance, :mod:`vganzoo.metrics.extractors` for loading
I3D / C3D weights and :mod:`vganzoo.metrics.digits` for the bundled classifier.
"""

from __future__ import annotations

from .evaluation import METRICS, evaluate
from .extractors import TinyVideoCNN, VideoExtractor, build_extractor, load_extractor, save_extractor
from .frechet import FeatureStats, frechet_distance, trace_sqrt_product
from .inception import inception_score
from .protocol_eval import evaluate_protocol
from .protocols import DETECTORS, PROTOCOLS, Protocol, get_protocol

__all__ = [
    "DETECTORS",
    "METRICS",
    "PROTOCOLS",
    "FeatureStats",
    "Protocol",
    "TinyVideoCNN",
    "VideoExtractor",
    "build_extractor",
    "evaluate",
    "evaluate_protocol",
    "frechet_distance",
    "get_protocol",
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
