"""A convolutional GRU unrolled over the time axis of a video feature volume."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvGRU"]


class ConvGRU(nn.Module):
    """Convolutional GRU (Ballas et al. 2016) run causally over ``T``.

    For each frame ``t`` with input ``x_t`` and previous state ``h_{t-1}`` (zeros, or ``h0``)::

        r, u = sigmoid(conv_gates([x_t; h_{t-1}]))          # reset and update gates
        c    = tanh(conv_candidate([x_t; r * h_{t-1}]))
        h_t  = u * h_{t-1} + (1 - u) * c

    The output at frame ``t`` depends only on inputs ``0..t``. Convolutions are 2-D with
    ``kernel_size`` and "same" padding, so the spatial size is kept.

    Args:
        in_channels: channels of ``x``.
        hidden_channels: channels of the state and of the output.
        kernel_size: odd spatial kernel size (DVD-GAN: 3).
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (for same padding), got {kernel_size}")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        padding = kernel_size // 2
        self.gates = nn.Conv2d(in_channels + hidden_channels, 2 * hidden_channels, kernel_size, padding=padding)
        self.candidate = nn.Conv2d(in_channels + hidden_channels, hidden_channels, kernel_size, padding=padding)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, C_in, T, H, W), h0: (N, C_hidden, H, W) or None -> states (N, C_hidden, T, H, W)."""
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (N, {self.in_channels}, T, H, W), got {tuple(x.shape)}")
        n, _, t, height, width = x.shape
        expected = (n, self.hidden_channels, height, width)
        if h0 is None:
            h = x.new_zeros(expected)
        elif tuple(h0.shape) != expected:
            raise ValueError(f"h0 must have shape {expected}, got {tuple(h0.shape)}")
        else:
            h = h0
        states = []
        for step in range(t):
            x_t = x[:, :, step]
            reset, update = torch.sigmoid(self.gates(torch.cat([x_t, h], dim=1))).chunk(2, dim=1)
            candidate = torch.tanh(self.candidate(torch.cat([x_t, reset * h], dim=1)))
            h = update * h + (1.0 - update) * candidate
            states.append(h)
        return torch.stack(states, dim=2)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.hidden_channels}"
