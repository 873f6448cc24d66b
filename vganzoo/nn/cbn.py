"""Batch norm for video features with per-frame statistics, and its class-conditional form.

DVD-GAN's generator folds time into the batch for its ResBlocks but keeps batch-norm statistics
"not pooled over time". We read that literally: every frame index ``t`` has its own statistics,
computed over ``(N, H, W)`` for each channel, and its own running estimates. This is exactly a
``BatchNorm2d`` over ``T * C`` feature maps, which is how it is computed (one fused
``F.batch_norm`` call on ``(N, T*C, H, W)``). Frame 0 of a recurrent generator (whose hidden
state starts at zero) looks very different from frame 15, so pooling their statistics would
couple the frames' scales; per-frame statistics keep each frame's normalisation its own.

Passing ``frames=None`` gives the pooled alternative (statistics over ``(N, T, H, W)``, running
estimates per channel), which accepts any clip length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

__all__ = ["ConditionalBatchNorm", "FrameBatchNorm"]


class FrameBatchNorm(nn.Module):
    """Batch norm of ``(N, C, T, H, W)`` features with statistics per frame index.

    Args:
        num_features: channels ``C``.
        frames: clip length ``T`` the statistics are kept for; None pools over time instead.
        eps, momentum: as in ``nn.BatchNorm3d``.
        affine: learn a per-channel scale and shift (shared by all frames).

    Buffers ``running_mean`` / ``running_var`` have shape ``(T * C,)`` (frame-major) or ``(C,)``.
    """

    def __init__(
        self,
        num_features: int,
        frames: int | None = None,
        *,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
    ) -> None:
        super().__init__()
        if frames is not None and (not isinstance(frames, int) or frames < 1):
            raise ValueError(f"frames must be a positive int or None, got {frames!r}")
        self.num_features, self.frames, self.eps, self.momentum = num_features, frames, eps, momentum
        stats = num_features * (frames or 1)
        self.register_buffer("running_mean", torch.zeros(stats))
        self.register_buffer("running_var", torch.ones(stats))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x: (N, C, T, H, W)`` without the affine part."""
        if x.ndim != 5 or x.shape[1] != self.num_features:
            raise ValueError(f"x must have shape (N, {self.num_features}, T, H, W), got {tuple(x.shape)}")
        if self.training:
            self.num_batches_tracked.add_(1)
        if self.frames is None:
            return F.batch_norm(
                x, self.running_mean, self.running_var, None, None, self.training, self.momentum, self.eps
            )
        if x.shape[2] != self.frames:
            raise ValueError(f"x has {x.shape[2]} frames but this layer keeps statistics for {self.frames}")
        folded = rearrange(x, "n c t h w -> n (t c) h w")
        out = F.batch_norm(
            folded, self.running_mean, self.running_var, None, None, self.training, self.momentum, self.eps
        )
        return rearrange(out, "n (t c) h w -> n c t h w", t=self.frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, T, H, W) -> same shape."""
        out = self.normalize(x)
        if self.weight is not None:
            out = out * self.weight.view(1, -1, 1, 1, 1) + self.bias.view(1, -1, 1, 1, 1)
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, frames={self.frames}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.weight is not None}"
        )


class ConditionalBatchNorm(nn.Module):
    """Class-conditional batch norm (BigGAN): BN without affine, then a per-sample, per-channel
    gain ``1 + W_g c`` and bias ``W_b c`` from a linear map of the conditioning vector ``c``.

    Args:
        num_features: channels ``C``.
        cond_dim: length of the conditioning vector (DVD-GAN: ``[z; e(y)]``).
        frames: see :class:`FrameBatchNorm` (per-frame statistics when given).

    Forward: ``x: (N, C, T, H, W)``, ``cond: (N, cond_dim)`` -> ``(N, C, T, H, W)``; the gain and
    bias are the same for every frame of a sample.
    """

    def __init__(
        self,
        num_features: int,
        cond_dim: int,
        frames: int | None = None,
        *,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.norm = FrameBatchNorm(num_features, frames, eps=eps, momentum=momentum, affine=False)
        self.gain = nn.Linear(cond_dim, num_features)
        self.bias = nn.Linear(cond_dim, num_features)
        self.cond_dim = cond_dim

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if cond.ndim != 2 or cond.shape != (x.shape[0], self.cond_dim):
            raise ValueError(f"cond must have shape ({x.shape[0]}, {self.cond_dim}), got {tuple(cond.shape)}")
        gain = rearrange(1.0 + self.gain(cond), "n c -> n c 1 1 1")
        bias = rearrange(self.bias(cond), "n c -> n c 1 1 1")
        return self.norm.normalize(x) * gain + bias
