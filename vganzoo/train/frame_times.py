"""Frame times: what the trainer hands from a generator's latents to the discriminators, besides labels.

A generator that renders only some frames of each clip (StyleGAN-V renders 3 frames at random times,
its sparse training) returns their times in its latents under ``"frame_times"`` ((N, T) float). The
trainer passes them, cut to each discriminator's batch, as ``frame_times=`` to every discriminator
call on those fakes, and compares only the channels and frame size of real and fake clips. Real
clips go to such a discriminator whole (it picks its frames and their times itself). Generators
without ``frame_times`` in their latents are unaffected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["KEY", "discriminator_inputs", "take"]

KEY = "frame_times"


def discriminator_inputs(latents: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The keyword arguments a discriminator gets with fakes drawn from ``latents``: ``{}`` or
    ``{"frame_times": (N, T)}``."""
    times = latents.get(KEY)
    return {KEY: times} if isinstance(times, torch.Tensor) else {}


def take(inputs: Mapping[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """``inputs`` for the first ``n`` clips of the batch."""
    return {key: value[:n] for key, value in inputs.items()}
