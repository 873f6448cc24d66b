"""Plain-PyTorch reference implementations of the fused ops (the ground truth in tests)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

ACTIVATIONS = ("none", "relu", "leaky_relu", "tanh", "sigmoid")


def _triple(value: int | Sequence[int], name: str) -> list[int]:
    if isinstance(value, int):
        return [value] * 3
    value = list(value)
    if len(value) != 3:
        raise ValueError(f"{name} must be an int or 3 ints, got {value}")
    return value


def apply_activation(x: torch.Tensor, activation: str, negative_slope: float = 0.2) -> torch.Tensor:
    if activation == "none":
        return x
    if activation == "relu":
        return F.relu(x)
    if activation == "leaky_relu":
        return F.leaky_relu(x, negative_slope)
    if activation == "tanh":
        return torch.tanh(x)
    if activation == "sigmoid":
        return torch.sigmoid(x)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def conv3d_bias_act_ref(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation="none", negative_slope=0.2
):
    """conv3d(x, weight) + bias, then activation. x: (N, C_in, T, H, W), weight: (C_out, C_in/groups, kT, kH,
    kW)."""
    y = F.conv3d(
        x,
        weight,
        bias,
        _triple(stride, "stride"),
        _triple(padding, "padding"),
        _triple(dilation, "dilation"),
        groups,
    )
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
    negative_slope=0.2,
):
    """conv_transpose3d + bias, then activation. weight: (C_in, C_out/groups, kT, kH, kW)."""
    y = F.conv_transpose3d(
        x,
        weight,
        bias,
        _triple(stride, "stride"),
        _triple(padding, "padding"),
        _triple(output_padding, "output_padding"),
        groups,
        _triple(dilation, "dilation"),
    )
    return apply_activation(y, activation, negative_slope)
