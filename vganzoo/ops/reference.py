"""Plain-PyTorch reference implementations of the fused ops (the ground truth in tests).

The activation after the bias is the table's reference function (:mod:`vganzoo.ops.activations`).
"""

from __future__ import annotations

import torch.nn.functional as F

from ._checks import triple
from .activations import DEFAULT_NEGATIVE_SLOPE, apply_activation


def _triples(**values) -> list[list[int]]:
    """Each keyword argument (an int or 3 ints) as 3 ints; errors name the keyword."""
    return [triple(value, name) for name, value in values.items()]


def conv3d_bias_act_ref(
    x,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    activation="none",
    negative_slope=DEFAULT_NEGATIVE_SLOPE,
):
    """conv3d(x, weight) + bias, then activation. x: (N, C_in, T, H, W), weight: (C_out, C_in/groups, kT, kH,
    kW)."""
    stride, padding, dilation = _triples(stride=stride, padding=padding, dilation=dilation)
    y = F.conv3d(x, weight, bias, stride, padding, dilation, groups)
    return apply_activation(y, activation, negative_slope)


def conv_transpose3d_bias_act_ref(
    x,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    dilation=1,
    groups=1,
    activation="none",
    negative_slope=DEFAULT_NEGATIVE_SLOPE,
):
    """conv_transpose3d + bias, then activation. weight: (C_in, C_out/groups, kT, kH, kW)."""
    stride, padding, output_padding, dilation = _triples(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    y = F.conv_transpose3d(x, weight, bias, stride, padding, output_padding, groups, dilation)
    return apply_activation(y, activation, negative_slope)
