"""Layers shared by the model families, built on :mod:`vganzoo.ops`."""

from .attention import AxialSelfAttention, SelfAttention, SeparableSelfAttention
from .cbn import ConditionalBatchNorm, FrameBatchNorm
from .conv import STConv3d, STConvTranspose3d
from .convgru import ConvGRU
from .spectral import SpectralNorm, spectral_norm

__all__ = [
    "AxialSelfAttention",
    "ConditionalBatchNorm",
    "ConvGRU",
    "FrameBatchNorm",
    "STConv3d",
    "STConvTranspose3d",
    "SelfAttention",
    "SeparableSelfAttention",
    "SpectralNorm",
    "spectral_norm",
]
