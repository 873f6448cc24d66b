"""Self-attention over video feature volumes (SAGAN-style, as used by BigGAN and DVD-GAN).

* :class:`SelfAttention`: every position of the ``(T, H, W)`` volume attends to every other one
  (non-causal). DVD-GAN applies it to the small ``(T, 4, 4)`` volume of its first block.
* :class:`AxialSelfAttention`: positions attend only along one axis (``"t"``, ``"h"`` or ``"w"``).
* :class:`SeparableSelfAttention`: axial attention along height, then width, then time; three
  residual blocks whose composition lets every position reach every other one at the cost of
  ``T + H + W`` instead of ``T * H * W`` keys per query.

Each block is ``x + gamma * out(softmax(q k^T) v)`` with ``q, k`` projected to ``C / 8`` channels,
``v`` to ``C / 2`` (at least 1 each), 1x1x1 projections through :class:`~vganzoo.nn.STConv3d`, no
``1/sqrt(d)`` scaling (as in SAGAN) and ``gamma`` initialised to 0, so a fresh block is the identity
(and its projections receive zero gradient until ``gamma`` moves).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .conv import STConv3d

__all__ = ["AxialSelfAttention", "SelfAttention", "SeparableSelfAttention"]

QUERY_KEY_REDUCTION = 8
VALUE_REDUCTION = 2

# einops patterns that put the attended axis in the sequence position and the others in the batch
_TOKENS = {
    "full": "n c t h w -> n (t h w) c",
    "t": "n c t h w -> (n h w) t c",
    "h": "n c t h w -> (n t w) h c",
    "w": "n c t h w -> (n t h) w c",
}


def _untokens(pattern: str) -> str:
    left, right = pattern.split(" -> ")
    return f"{right} -> {left}"


class _AttentionBase(nn.Module):
    axis = "full"

    def __init__(self, channels: int) -> None:
        super().__init__()
        qk = max(1, channels // QUERY_KEY_REDUCTION)
        v = max(1, channels // VALUE_REDUCTION)
        self.channels = channels
        self.query = STConv3d(channels, qk, 1, bias=False)
        self.key = STConv3d(channels, qk, 1, bias=False)
        self.value = STConv3d(channels, v, 1, bias=False)
        self.out = STConv3d(v, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, T, H, W) -> (N, C, T, H, W)."""
        if x.ndim != 5 or x.shape[1] != self.channels:
            raise ValueError(f"x must have shape (N, {self.channels}, T, H, W), got {tuple(x.shape)}")
        n, _, t, h, w = x.shape
        pattern = _TOKENS[self.axis]
        q, k, v = (rearrange(proj(x), pattern) for proj in (self.query, self.key, self.value))
        attended = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # (B, L, C_v)
        attended = rearrange(attended, _untokens(pattern), n=n, t=t, h=h, w=w)
        return x + self.gamma * self.out(attended)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, axis={self.axis!r}"


class SelfAttention(_AttentionBase):
    """Non-causal self-attention over all ``T * H * W`` positions. x: (N, C, T, H, W)."""


class AxialSelfAttention(_AttentionBase):
    """Self-attention along one axis (``"t"``, ``"h"`` or ``"w"``) only. x: (N, C, T, H, W)."""

    def __init__(self, channels: int, axis: str) -> None:
        if axis not in ("t", "h", "w"):
            raise ValueError(f"axis must be 't', 'h' or 'w', got {axis!r}")
        super().__init__(channels)
        self.axis = axis


class SeparableSelfAttention(nn.Sequential):
    """Axial self-attention along ``order`` (default height, then width, then time).

    x: (N, C, T, H, W) -> (N, C, T, H, W).
    """

    def __init__(self, channels: int, order: tuple[str, ...] = ("h", "w", "t")) -> None:
        if sorted(order) != ["h", "t", "w"]:
            raise ValueError(f"order must be a permutation of ('h', 'w', 't'), got {order!r}")
        super().__init__(*(AxialSelfAttention(channels, axis) for axis in order))
