"""STConv3d / STConvTranspose3d: drop-in nn.Conv3d / nn.ConvTranspose3d with a fused activation
and optional batch norm. Interface-first version (reference ops only)."""

from __future__ import annotations

import torch
from torch import nn

from .. import ops
from ..ops.reference import apply_activation


class _STConvBase(nn.Module):
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 activation="none", negative_slope=0.2, norm=None, norm_eps=1e-5, norm_momentum=0.1, norm_affine=True,
                 output_padding=0):
        super().__init__()
        conv_cls = nn.ConvTranspose3d if self.transposed else nn.Conv3d
        kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
        if self.transposed:
            kwargs["output_padding"] = output_padding
        template = conv_cls(in_channels, out_channels, kernel_size, **kwargs)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = template.kernel_size, template.stride, template.padding
        self.dilation, self.groups = template.dilation, groups
        self.output_padding = template.output_padding if self.transposed else (0, 0, 0)
        self.weight = template.weight
        self.bias = template.bias
        self.activation, self.negative_slope = activation, negative_slope
        if norm not in (None, "batch"):
            raise ValueError(f"norm must be None or 'batch', got {norm!r}")
        self.norm = nn.BatchNorm3d(out_channels, eps=norm_eps, momentum=norm_momentum, affine=norm_affine) if norm == "batch" else None

    def _conv(self, x, activation):
        if self.transposed:
            return ops.conv_transpose3d_bias_act(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                                 self.dilation, self.groups, activation, self.negative_slope)
        return ops.conv3d_bias_act(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                                   activation, self.negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm is None:
            return self._conv(x, self.activation)
        return apply_activation(self.norm(self._conv(x, "none")), self.activation, self.negative_slope)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, activation={self.activation!r}")


class STConv3d(_STConvBase):
    """3-D convolution + bias (+ batch norm) + activation. x: (N, C_in, T, H, W)."""


class STConvTranspose3d(_STConvBase):
    """3-D transposed convolution + bias (+ batch norm) + activation. x: (N, C_in, T, H, W)."""

    transposed = True
