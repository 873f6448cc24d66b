"""The offline quality check for ``moving-digits``: a small frame classifier shipped with vganzoo.

No published extractor knows our synthetic digits, so vganzoo trains its own
(``benchmarks/train_digits_classifier.py`` in the source tree) and bundles the weights under
``vganzoo/weights/digits-classifier/``. The classifier sees single frames, gray 32x32 in [-1, 1]
(3-channel videos are averaged to gray, other sizes resized bilinearly with antialiasing), and has
11 classes: the digits 0-9 and ``NO_DIGIT`` (10), trained on noise, blobs, blank and scrambled frames,
so that a frame that shows no digit is not confidently called one.

Scores computed from it on a set of clips (one digit per clip, ``moving-digits`` with
``num_digits=1``):

* ``fvd_digits``: Frechet distance between generated and real clips in the classifier's feature
  space. Per clip: the 64-d penultimate features f_t of every frame, pooled over time as
  ``[mean_t f_t, RMS_t (f_{t+1} - f_t)]`` (128-d: what the clip shows, and how much it flickers),
  followed by 3 trajectory statistics of the ink centroid c_t in pixels at 32x32 (mean speed
  ``mean |c_{t+1} - c_t|``, RMS acceleration ``|c_{t+2} - 2 c_{t+1} + c_t|`` and positional spread
  ``RMS |c_t - mean c|``), because the classifier's features are nearly translation-invariant and
  would not see motion otherwise: 131-d in all. Static clips and clips with shuffled frames move
  away from real ones.
* ``frame_score``: mean over all frames of the highest digit probability (softmax over the 11
  classes), i.e. how confidently each frame shows some digit.
* ``identity_consistency``: fraction of clips whose predicted digit (argmax over 0-9) is the same in
  every frame (cf. MoCoGAN's average content distance). Strict: one stray frame of 16 fails the clip.
* ``identity_agreement``: the graded version: the mean over clips of the fraction of frames whose
  predicted digit is the clip's majority digit (1.0 when every clip keeps its digit; a clip that flips
  between two digits half the time scores 0.5).
* ``digit_frame_rate``: fraction of frames whose top class is a digit, not ``NO_DIGIT``.
* ``digit_histogram``: how often each digit is the clip's majority prediction (mode collapse shows here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..files import read_json_file, sha256_file
from .frechet import FeatureStats
from .preprocess import GRAY_CHANNELS, check_videos, resize_frames, to_channels

__all__ = [
    "BUNDLED_DIR",
    "FEATURE_DIM",
    "INPUT_SIZE",
    "NO_DIGIT",
    "NUM_DIGITS",
    "DigitFrameClassifier",
    "DigitScores",
    "DigitsScorer",
    "load_digits_classifier",
]

NUM_DIGITS = 10
NO_DIGIT = NUM_DIGITS  # class index of "this frame shows no digit"
NUM_CLASSES = NUM_DIGITS + 1
INPUT_SIZE = 32
FEATURE_DIM = 64
STAGE_WIDTHS = (16, 32, 64)
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SHA256_FILE = "SHA256SUMS"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "weights" / "digits-classifier"


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DigitFrameClassifier(nn.Module):
    """``forward(frames: (B, 1, 32, 32) in [-1, 1]) -> (features (B, 64), logits (B, 11))``.

    Three conv stages (widths 16, 32+32, 64; 3x3 conv + BN + ReLU, 2x2 max-pool after each), global
    average pooling, a 64-d ReLU layer (the features) and a linear layer to 11 logits. ~37K params.
    """

    def __init__(
        self,
        widths: tuple[int, int, int] = STAGE_WIDTHS,
        feature_dim: int = FEATURE_DIM,
        num_classes: int = NUM_CLASSES,
    ) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.body = nn.Sequential(
            *_conv_bn_relu(GRAY_CHANNELS, w1), nn.MaxPool2d(2),
            *_conv_bn_relu(w1, w2), *_conv_bn_relu(w2, w2), nn.MaxPool2d(2),
            *_conv_bn_relu(w2, w3), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.embed = nn.Linear(w3, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = F.relu(self.embed(self.body(frames)))
        return features, self.head(features)


def prepare_frames(videos: torch.Tensor) -> torch.Tensor:
    """(N, C, T, H, W) in [-1, 1] -> (N, 1, T, 32, 32): gray (channel mean), bilinear antialiased resize."""
    check_videos(videos)
    videos = to_channels(videos.float(), GRAY_CHANNELS).clamp(-1.0, 1.0)
    return resize_frames(videos, (INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True)


class DigitsScorer(nn.Module):
    """Applies a :class:`DigitFrameClassifier` to every frame of a clip.

    ``forward(videos: (N, C, T, H, W)) -> (features (N, T, 64), probs (N, T, 11))``.
    ``sha256`` and ``source`` identify the weights for a score's protocol.
    """

    def __init__(
        self,
        classifier: DigitFrameClassifier,
        *,
        sha256: str | None = None,
        source: str | None = None,
        card: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.classifier = classifier.eval()
        self.sha256 = sha256
        self.source = source
        self.card = dict(card or {})

    @torch.no_grad()
    def forward(self, videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frames = prepare_frames(videos)
        t = frames.shape[2]  # split by t, not n: n may be 0
        flat = rearrange(frames, "n c t h w -> (n t) c h w").to(next(self.classifier.parameters()).device)
        features, logits = self.classifier(flat)
        features = rearrange(features, "(n t) d -> n t d", t=t)
        probs = rearrange(logits.float().softmax(dim=-1), "(n t) k -> n t k", t=t)
        return features.float(), probs

    @torch.no_grad()
    def motion(self, videos: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) -> (N, 3) :func:`trajectory_statistics` at the classifier's 32x32 input."""
        return trajectory_statistics(prepare_frames(videos))

    def describe(self) -> dict[str, Any]:
        return {
            "name": "vganzoo-digits-classifier",
            "sha256": self.sha256,
            "source": self.source,
            "input": f"gray {INPUT_SIZE}x{INPUT_SIZE} (3->1 channel mean, bilinear antialiased resize), [-1, "
            "1]",
            "features": f"{FEATURE_DIM}-d penultimate per frame f_t, pooled per clip as [mean_t f_t, RMS_t "
            "(f_(t+1) - f_t)], plus ink-centroid [mean speed, RMS acceleration, spread] in px "
            f"at 32x32 ({CLIP_FEATURE_DIM}-d)",
            "test_accuracy": self.card.get("test_accuracy"),
        }


MOTION_DIM = 3
CLIP_FEATURE_DIM = 2 * FEATURE_DIM + MOTION_DIM
_CENTROID_EPS = 1e-6


def trajectory_statistics(frames: torch.Tensor) -> torch.Tensor:
    """Motion of the ink: frames (N, 1, T, 32, 32) in [-1, 1] -> (N, 3) [mean speed, RMS acceleration,
    positional spread] of the intensity centroid, in pixels (per frame). Blank frames sit at the centre."""
    ink = ((frames[:, 0].float() + 1.0) / 2.0).clamp(0.0, 1.0)  # (N, T, H, W)
    h, w = ink.shape[-2:]
    ys = torch.arange(h, dtype=ink.dtype, device=ink.device).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=ink.dtype, device=ink.device).view(1, 1, 1, w)
    mass = ink.sum(dim=(-2, -1)) + _CENTROID_EPS
    centre_y, centre_x = (h - 1) / 2.0, (w - 1) / 2.0
    cy = ((ink * ys).sum(dim=(-2, -1)) + _CENTROID_EPS * centre_y) / mass
    cx = ((ink * xs).sum(dim=(-2, -1)) + _CENTROID_EPS * centre_x) / mass
    centroid = torch.stack([cy, cx], dim=-1)  # (N, T, 2)
    n, t = centroid.shape[:2]
    zero = centroid.new_zeros(n)
    velocity = centroid[:, 1:] - centroid[:, :-1]
    speed = velocity.norm(dim=-1).mean(dim=1) if t >= 2 else zero
    accel = (velocity[:, 1:] - velocity[:, :-1]).pow(2).sum(-1).mean(dim=1).sqrt() if t >= 3 else zero
    spread = (centroid - centroid.mean(dim=1, keepdim=True)).pow(2).sum(-1).mean(dim=1).sqrt()
    return torch.stack([speed, accel, spread], dim=1)


def pool_clip_features(features: torch.Tensor) -> torch.Tensor:
    """(N, T, D) frame features -> (N, 2D) ``[mean over t of f_t, sqrt(mean over t of (f_{t+1} - f_t)^2)]``.

    The first half is what the clip shows, the second how fast and how smoothly it changes: a static
    clip has zeros there, a clip with shuffled frames large values. Needs T >= 2.
    """
    if features.shape[1] < 2:
        raise ValueError(f"clip features need at least 2 frames, got {features.shape[1]}")
    step = features[:, 1:] - features[:, :-1]
    return torch.cat([features.mean(dim=1), step.pow(2).mean(dim=1).sqrt()], dim=1)


class DigitScores:
    """Accumulates the digit scores of a stream of clips (see the module docstring)."""

    def __init__(self) -> None:
        self.stats = FeatureStats()
        self.clips = 0
        self.frames = 0
        self.confidence_sum = 0.0
        self.digit_frames = 0
        self.consistent_clips = 0
        self.agreement_sum = 0.0
        self.histogram = np.zeros(NUM_DIGITS, dtype=np.int64)

    def update(self, features: torch.Tensor, probs: torch.Tensor, motion: torch.Tensor | None = None) -> None:
        """features: (N, T, D), probs: (N, T, 11) from :class:`DigitsScorer`; motion: (N, 3) from
        :meth:`DigitsScorer.motion` (appended to the clip features when given)."""
        digit_probs = probs[..., :NUM_DIGITS]
        predicted = digit_probs.argmax(dim=-1)  # (N, T)
        clip = pool_clip_features(features)
        self.stats.update(clip if motion is None else torch.cat([clip, motion.to(clip)], dim=1))
        self.clips += probs.shape[0]
        self.frames += probs.shape[0] * probs.shape[1]
        self.confidence_sum += float(digit_probs.max(dim=-1).values.double().sum())
        self.digit_frames += int((probs.argmax(dim=-1) != NO_DIGIT).sum())
        self.consistent_clips += int((predicted == predicted[:, :1]).all(dim=1).sum())
        majority = torch.mode(predicted, dim=1).values
        self.agreement_sum += float((predicted == majority[:, None]).double().mean(dim=1).sum())
        self.histogram += np.bincount(majority.cpu().numpy(), minlength=NUM_DIGITS)

    def result(self) -> dict[str, Any]:
        if self.clips == 0:
            raise ValueError("no clips were scored")
        return {
            "frame_score": self.confidence_sum / self.frames,
            "identity_consistency": self.consistent_clips / self.clips,
            "identity_agreement": self.agreement_sum / self.clips,
            "digit_frame_rate": self.digit_frames / self.frames,
            "digit_histogram": [round(float(v), 4) for v in self.histogram / self.clips],
            "clips": self.clips,
        }


def load_digits_classifier(
    path: str | os.PathLike | None = None, device: torch.device | str = "cpu"
) -> DigitsScorer:
    """Load the classifier from a folder (``model.safetensors`` + ``config.json`` [+ ``SHA256SUMS``]);
    default: the copy bundled with vganzoo. The weights' sha256 is checked against ``SHA256SUMS``
    when present and recorded on the returned scorer."""
    from safetensors.torch import load_file

    from ..files import check_safetensors_file

    folder = Path(path) if path is not None else BUNDLED_DIR
    weights = folder / WEIGHTS_FILE if folder.is_dir() else folder
    folder = weights.parent
    if not weights.exists():
        raise FileNotFoundError(
            f"digits classifier weights not found at {weights}; train them with "
            f"`python benchmarks/train_digits_classifier.py --out {folder}`"
        )
    check_safetensors_file(weights, what="digits classifier weights")
    digest = sha256_file(weights)
    sums = folder / SHA256_FILE
    if sums.exists():
        expected = {
            name: h
            for h, name in (line.split(maxsplit=1) for line in sums.read_text().splitlines() if line.strip())
        }
        want = expected.get(weights.name)
        if want is not None and want != digest:
            raise ValueError(
                f"{weights}: sha256 {digest} does not match {sums} ({want}); the file is corrupt or was "
                "replaced"
            )
    card = read_json_file(folder / CONFIG_FILE) if (folder / CONFIG_FILE).exists() else {}
    arch = card.get("architecture", {})
    model = DigitFrameClassifier(
        widths=tuple(arch.get("widths", STAGE_WIDTHS)),
        feature_dim=int(arch.get("feature_dim", FEATURE_DIM)),
        num_classes=int(arch.get("num_classes", NUM_CLASSES)),
    )
    state = load_file(str(weights))
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(
            f"{weights} does not hold digits-classifier weights (missing {missing[:3]}, unexpected "
            f"{list(unexpected)[:3]})"
        )
    source = "bundled" if path is None else str(folder)
    return DigitsScorer(model, sha256=digest, source=source, card=card).to(device)
