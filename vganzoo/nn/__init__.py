"""Layers shared by the model families, built on :mod:`vganzoo.ops`."""

from .conv import STConv3d, STConvTranspose3d

__all__ = ["STConv3d", "STConvTranspose3d"]
