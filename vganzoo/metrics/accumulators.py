"""One accumulator per metric: fed generated and real batches, it gives (scores, real-data scores)."""

from __future__ import annotations

from typing import Any

import torch

from .frechet import FeatureStats, frechet_distance
from .inception import inception_score

__all__ = ["DigitsMetric", "FrechetMetric", "InceptionMetric", "LabelAccuracyMetric"]


class FrechetMetric:
    def __init__(
        self, name: str, features: Any, describe: dict[str, Any], cached: FeatureStats | None
    ) -> None:
        self.name, self.features, self.describe = name, features, describe
        self.generated = FeatureStats()
        self.real = cached if cached is not None else FeatureStats()
        self.needs_real = cached is None

    def add(self, videos: torch.Tensor, which: str) -> None:
        target = self.generated if which == "generated" else self.real if which == "real" else None
        if target is not None:
            target.update(self.features(videos))

    def result(self) -> tuple[dict[str, Any], dict[str, Any]]:
        key = self.name.replace("-", "_")
        return {key: frechet_distance(self.generated, self.real)}, {}


class DigitsMetric:
    """Shared by fvd-digits and consistency: one classifier pass per clip."""

    def __init__(self, scorer: Any, want_fvd: bool, want_consistency: bool) -> None:
        from .digits import DigitScores

        self.scorer, self.want_fvd, self.want_consistency = scorer, want_fvd, want_consistency
        self.scores = {"generated": DigitScores(), "real": DigitScores(), "real2": DigitScores()}

    def add(self, videos: torch.Tensor, which: str) -> None:
        features, probs = self.scorer(videos)
        self.scores[which].update(features.cpu(), probs.cpu(), self.scorer.motion(videos).cpu())

    def result(self) -> tuple[dict[str, Any], dict[str, Any]]:
        gen, real, real2 = self.scores["generated"], self.scores["real"], self.scores["real2"]
        scores: dict[str, Any] = {}
        real_scores: dict[str, Any] = {}
        if self.want_fvd:
            scores["fvd_digits"] = frechet_distance(gen.stats, real.stats)
            real_scores["fvd_digits"] = frechet_distance(real2.stats, real.stats)
        if self.want_consistency:
            scores.update({k: v for k, v in gen.result().items() if k != "clips"})
            if real.clips:
                real_scores.update({k: v for k, v in real.result().items() if k != "clips"})
        return scores, real_scores


class LabelAccuracyMetric:
    """label-accuracy: real clips arrive with their labels (``wants_labels``); the generated ones are
    drawn per label by :meth:`sample_generated` (the unlabelled generated stream is ignored)."""

    wants_labels = True

    def __init__(self, scorer: Any) -> None:
        from .label_accuracy import LabelAccuracy

        self.scorer = scorer
        self.generated, self.real = LabelAccuracy(), LabelAccuracy()

    def add(self, videos: torch.Tensor, which: str, labels: torch.Tensor | None = None) -> None:
        if which == "real" and labels is not None:
            self.real.update(self.scorer(videos)[1], labels)

    def sample_generated(self, model: Any, clips_per_label: int, **how: Any) -> int:
        """Draw and read ``clips_per_label`` clips of each digit (see
        :func:`~vganzoo.metrics.label_accuracy.sample_per_label`); returns the clips drawn."""
        from .label_accuracy import sample_per_label

        return sample_per_label(model, self.scorer, self.generated, clips_per_label, **how)

    def result(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.generated.result(), self.real.result()


class InceptionMetric:
    def __init__(self, extractor: Any, splits: int) -> None:
        self.extractor, self.splits = extractor, splits
        self.probs: dict[str, list[torch.Tensor]] = {"generated": [], "real": []}

    def add(self, videos: torch.Tensor, which: str) -> None:
        if which in self.probs:
            self.probs[which].append(self.extractor(videos).softmax(dim=1).double().cpu())

    def result(self) -> tuple[dict[str, Any], dict[str, Any]]:
        mean, std = inception_score(torch.cat(self.probs["generated"]), self.splits)
        real = {}
        if self.probs["real"]:
            real_mean, real_std = inception_score(torch.cat(self.probs["real"]), self.splits)
            real = {"is_mean": real_mean, "is_std": real_std}
        return {"is_mean": mean, "is_std": std}, real
