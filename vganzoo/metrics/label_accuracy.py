"""``label-accuracy``: does a class-conditional digits model draw the digit it is asked for?

For each digit ``d`` in 0-9 the model samples ``clips_per_label`` clips with ``labels=d`` (batch ``i``
of every digit uses ``seed + i``, so the ten digits share their other latents), and the bundled
digits classifier (:mod:`vganzoo.metrics.digits`) reads every frame: a frame counts when its top
class of the 11 (the ten digits and "no digit") is ``d``. The score is the fraction of such frames
per digit, averaged over the ten digits (``label_accuracy``); ``label_accuracy_per_label`` keeps the
ten fractions. Real clips with labels get the same score (the ceiling: the classifier's own errors).

The model's label ``d`` must mean the digit ``d`` (a model trained on ``moving-digits`` with its
labels, ``num_classes >= 10``); an unconditional model is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .digits import NUM_DIGITS
from .preprocess import select_frames

__all__ = ["LabelAccuracy", "check_conditional", "protocol_entry", "sample_per_label"]

READ_AS = "argmax over the digits classifier's 11 classes (a 'no digit' frame counts as wrong)"


def check_conditional(model: Any) -> int:
    """``model``'s number of classes; ValueError (one line) unless it can sample with digit labels."""
    if isinstance(model, torch.Tensor) or not hasattr(model, "sample"):
        raise ValueError(
            "label-accuracy samples the model with each label: give a model, not a tensor of videos"
        )
    name = getattr(model, "name", type(model).__name__)
    classes = int(getattr(model, "num_classes", 0) or 0)
    if classes == 0:
        raise ValueError(
            f"label-accuracy needs a class-conditional model; {name} is unconditional (num_classes=0)"
        )
    if classes < NUM_DIGITS:
        raise ValueError(
            f"label-accuracy reads labels 0-9 as digits; {name} has num_classes={classes} (a digits model "
            "has 10)"
        )
    return classes


class LabelAccuracy:
    """Frames read as their clip's label, counted per label 0-9."""

    def __init__(self) -> None:
        self.correct = np.zeros(NUM_DIGITS, dtype=np.int64)
        self.frames = np.zeros(NUM_DIGITS, dtype=np.int64)

    def update(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        """probs: (N, T, 11) from :class:`~vganzoo.metrics.digits.DigitsScorer`; labels: (N,) ints
        (labels outside 0-9 are skipped)."""
        labels = labels.to(probs.device).long()
        read = probs.argmax(dim=-1)  # (N, T)
        hits = (read == labels[:, None]).sum(dim=1)  # (N,)
        keep = (labels >= 0) & (labels < NUM_DIGITS)
        frames = probs.shape[1]
        for label, hit in zip(labels[keep].tolist(), hits[keep].tolist(), strict=True):
            self.correct[label] += hit
            self.frames[label] += frames

    def result(self) -> dict[str, Any]:
        seen = self.frames > 0
        if not seen.any():
            return {}
        per_label = [float(c / f) if f else None for c, f in zip(self.correct, self.frames, strict=True)]
        return {
            "label_accuracy": float(np.mean([v for v in per_label if v is not None])),
            "label_accuracy_per_label": [round(v, 4) if v is not None else None for v in per_label],
        }


def sample_per_label(
    model: Any,
    scorer: Any,
    into: LabelAccuracy,
    clips_per_label: int,
    *,
    frames: int,
    stride: int,
    batch_size: int,
    seed: int,
    device: Any,
) -> int:
    """Draw ``clips_per_label`` clips of each digit (batch ``i`` with ``seed + i``), read them with
    ``scorer`` into ``into``; returns the clips drawn."""
    drawn = 0
    for digit in range(NUM_DIGITS):
        for index, start in enumerate(range(0, clips_per_label, batch_size)):
            count = min(batch_size, clips_per_label - start)
            labels = torch.full((count,), digit, dtype=torch.long)
            videos = model.sample(count, seed=seed + index, labels=labels, device=device)
            into.update(scorer(select_frames(videos, frames, stride))[1], labels)
            drawn += count
    return drawn


def protocol_entry(clips_per_label: int, seed: int) -> dict[str, Any]:
    """What defines the label-accuracy numbers, for the protocol record."""
    return {
        "labels": "digits 0-9, each drawn alike",
        "clips_per_label": clips_per_label,
        "generated_seeds": f"model.sample(batch_size, seed={seed} + batch index, labels=[digit] * "
        "batch_size)",
        "read_as": READ_AS,
        "score": "mean over the ten digits of the fraction of frames read as the requested digit",
    }
