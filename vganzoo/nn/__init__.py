"""Layers shared by the model families, built on :mod:`vganzoo.ops`."""

from .conv import STConv3d, STConvTranspose3d
from .noise import InstanceNoise
from .svc import singular_value_clip_

__all__ = ["InstanceNoise", "STConv3d", "STConvTranspose3d", "singular_value_clip_"]
