"""Layers shared by the model families, built on :mod:`vganzoo.ops`."""

from .conv import STConv3d, STConvTranspose3d
from .noise import InstanceNoise
from .svc import singular_value_clip_

__all__ = ["STConv3d", "STConvTranspose3d", "InstanceNoise", "singular_value_clip_"]
