"""Instance noise: add Gaussian noise to a discriminator's input or activations."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["InstanceNoise"]


class InstanceNoise(nn.Module):
    """``x + sigma * N(0, 1)``, in training *and* evaluation mode (as MoCoGAN's ``Noise`` layer).

    ``sigma = 0`` makes the layer the identity (and draws nothing), so a discriminator can always
    contain the layer and the noise can be switched on by setting ``sigma``.

    Args:
        sigma: standard deviation of the noise (>= 0).

    Shapes: any ``x``; the output has the same shape, dtype and device.
    """

    def __init__(self, sigma: float = 0.0) -> None:
        super().__init__()
        sigma = float(sigma)
        if not sigma >= 0.0:  # also rejects NaN
            raise ValueError(f"sigma must be a non-negative number, got {sigma!r}")
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sigma == 0.0:
            return x
        return x + self.sigma * torch.randn_like(x)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"
