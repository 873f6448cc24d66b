"""A convolutional GRU unrolled over the time axis of a video feature volume."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

__all__ = ["ConvGRU"]


class ConvGRU(nn.Module):
    """Convolutional GRU (Ballas et al. 2016) run causally over ``T``.

    For each frame ``t`` with input ``x_t`` and previous state ``h_{t-1}`` (zeros, or ``h0``)::

        r, u = sigmoid(conv_gates([x_t; h_{t-1}]))          # reset and update gates
        c    = tanh(conv_candidate([x_t; r * h_{t-1}]))
        h_t  = u * h_{t-1} + (1 - u) * c

    The output at frame ``t`` depends only on inputs ``0..t``. Convolutions are 2-D with
    ``kernel_size`` and "same" padding, so the spatial size is kept. The parameters are the two
    convolutions over the concatenation ``[x_t; h]`` (``gates``, ``candidate``); the forward pass
    applies their ``x`` halves to all frames at once and only the ``h`` halves step by step.

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
        self.padding = kernel_size // 2
        self.gates = nn.Conv2d(
            in_channels + hidden_channels, 2 * hidden_channels, kernel_size, padding=self.padding
        )
        self.candidate = nn.Conv2d(
            in_channels + hidden_channels, hidden_channels, kernel_size, padding=self.padding
        )

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
        # The convolutions are linear in [x_t; h]: the x part of every frame runs as one batched
        # convolution up front, only the h part runs per step (same weights, same result).
        gates_x, gates_h = self._split(self.gates)
        cand_x, cand_h = self._split(self.candidate)
        frames = rearrange(x, "n c t h w -> (n t) c h w")
        gates_from_x = rearrange(
            F.conv2d(frames, gates_x, self.gates.bias, padding=self.padding), "(n t) c h w -> n t c h w", t=t
        )
        cand_from_x = rearrange(
            F.conv2d(frames, cand_x, self.candidate.bias, padding=self.padding),
            "(n t) c h w -> n t c h w",
            t=t,
        )
        states = []
        for step in range(t):
            gate_logits = gates_from_x[:, step] + F.conv2d(h, gates_h, padding=self.padding)
            reset, update = torch.sigmoid(gate_logits).chunk(2, dim=1)
            candidate = torch.tanh(cand_from_x[:, step] + F.conv2d(reset * h, cand_h, padding=self.padding))
            h = update * h + (1.0 - update) * candidate
            states.append(h)
        return torch.stack(states, dim=2)

    def _split(self, conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight's input-channel halves acting on x and on h (read once: it may be parametrized)."""
        weight = conv.weight
        return weight[:, : self.in_channels].contiguous(), weight[:, self.in_channels :].contiguous()

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.hidden_channels}"
