"""Layers shared by the model families, built on :mod:`vganzoo.ops`."""

from ..ops import triple  # kernel/stride/padding normalisation, shared with layers outside nn
from .attention import AxialSelfAttention, SelfAttention, SeparableSelfAttention
from .cbn import ConditionalBatchNorm, FrameBatchNorm
from .conv import STConv3d, STConvTranspose3d
from .convgru import ConvGRU
from .graphs import GraphedInference
from .noise import InstanceNoise
from .spectral import SpectralNorm, spectral_norm
from .svc import singular_value_clip_

__all__ = [
    "AxialSelfAttention",
    "ConditionalBatchNorm",
    "ConvGRU",
    "FrameBatchNorm",
    "GraphedInference",
    "InstanceNoise",
    "STConv3d",
    "STConvTranspose3d",
    "SelfAttention",
    "SeparableSelfAttention",
    "SpectralNorm",
    "singular_value_clip_",
    "spectral_norm",
    "triple",
]
