"""Argument normalisation and validation for the fused ops (mirrors csrc/cpu/checks.cpp).

Run before every call whatever the implementation, so the reference and the extension reject bad
input with the same clear ValueError / TypeError naming the argument. The activation argument is
checked by :func:`vganzoo.ops.activations.check_activation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
DIMS = "THW"


def triple(value: int | Sequence[int], name: str) -> list[int]:
    """An int or a 3-sequence of ints -> a list of 3 ints (T, H, W)."""
    # Fast path for what the modules pass every call (tuples of plain ints, and the lists made here that the
    # reference gets): the general checks below (isinstance against the Sequence ABC) cost ~2 us each, a
    # noticeable share of a small layer's host time.
    if (
        type(value) in (tuple, list)
        and len(value) == 3
        and type(value[0]) is int
        and type(value[1]) is int
        and type(value[2]) is int
    ):
        return list(value)
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a sequence of 3 ints, got {value!r}")
    if isinstance(value, int):
        return [value] * 3
    if isinstance(value, torch.SymInt):
        return [value] * 3
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(f"{name} must be an int or a sequence of 3 ints, got {type(value).__name__}")
    out = list(value)
    if len(out) != 3:
        raise ValueError(
            f"{name} must be an int or a sequence of 3 ints (T, H, W), got {len(out)} values: {value!r}"
        )
    for v in out:
        if isinstance(v, bool) or not isinstance(v, (int, torch.SymInt)):
            raise TypeError(f"{name} must contain ints, got {value!r}")
    return out


def check_groups(op: str, groups: Any) -> None:
    """groups is an int (not a bool, which the dispatcher would take as 1)."""
    if isinstance(groups, bool) or not isinstance(groups, (int, torch.SymInt)):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")


def output_memory_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last_3d iff x is channels_last_3d-contiguous but not plain contiguous (as in C++)."""
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d):
        return torch.channels_last_3d
    return torch.contiguous_format


def check_conv_args(
    op: str,
    x,
    weight,
    bias,
    stride: list[int],
    padding: list[int],
    output_padding: list[int],
    dilation: list[int],
    groups: int,
    transposed: bool,
) -> list[int]:
    """Validate every argument; returns the output shape [N, C_out, T_out, H_out, W_out]."""
    _check_tensors(op, x, weight, bias)
    check_groups(op, groups)
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    for name, vals, lo in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if any(v < lo for v in vals):
            raise ValueError(f"{op}: {name} must be >= {lo} in every dimension, got {vals}")
    c_out = _output_channels(op, x, weight, groups, transposed, output_padding)
    out = [x.shape[0], c_out]
    for d in range(3):
        size, k = x.shape[2 + d], weight.shape[2 + d]
        if k < 1:
            raise ValueError(f"{op}: weight kernel sizes must be >= 1, got {tuple(weight.shape)}")
        if size < 1:
            raise ValueError(f"{op}: x spatial sizes (T, H, W) must be >= 1, got {tuple(x.shape)}")
        geometry = (size, k, stride, padding, output_padding, dilation)
        out.append(_transposed_size(op, d, *geometry) if transposed else _conv_size(op, d, *geometry))
    if bias is not None:
        if bias.dtype != x.dtype:
            raise TypeError(f"{op}: bias dtype {bias.dtype} does not match x dtype {x.dtype}")
        if bias.device != x.device:
            raise ValueError(f"{op}: bias is on {bias.device} but x is on {x.device}")
        if bias.dim() != 1 or bias.shape[0] != c_out:
            raise ValueError(f"{op}: bias must have shape ({c_out},), got {tuple(bias.shape)}")
    return out


def _check_tensors(op: str, x, weight, bias) -> None:
    """Types, ranks, dtypes and devices of x and weight (and bias's type)."""
    for name, t in (("x", x), ("weight", weight)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if bias is not None and not isinstance(bias, torch.Tensor):
        raise TypeError(f"{op}: bias must be a torch.Tensor or None, got {type(bias).__name__}")
    if x.dim() != 5:
        raise ValueError(
            f"{op}: x must be 5-D (N, C, T, H, W), got a {x.dim()}-D tensor of shape {tuple(x.shape)}"
        )
    if weight.dim() != 5:
        raise ValueError(
            f"{op}: weight must be 5-D, got a {weight.dim()}-D tensor of shape {tuple(weight.shape)}"
        )
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}: x must be a floating tensor (float32, float16, bfloat16 or float64), got {x.dtype}"
        )
    if weight.dtype != x.dtype:
        raise TypeError(f"{op}: weight dtype {weight.dtype} does not match x dtype {x.dtype}")
    if weight.device != x.device:
        raise ValueError(f"{op}: weight is on {weight.device} but x is on {x.device}")


def _output_channels(op: str, x, weight, groups: int, transposed: bool, output_padding: list[int]) -> int:
    """C_out, after checking the channel counts against ``groups`` (and output_padding >= 0)."""
    c_in = x.shape[1]
    if c_in % groups != 0:
        raise ValueError(f"{op}: groups ({groups}) must divide the input channels ({c_in})")
    if transposed:
        if any(v < 0 for v in output_padding):
            raise ValueError(f"{op}: output_padding must be >= 0 in every dimension, got {output_padding}")
        if weight.shape[0] != c_in:
            raise ValueError(
                f"{op}: weight.shape[0] ({weight.shape[0]}) must equal the input channels x.shape[1] "
                f"({c_in}) for a transposed convolution"
            )
        c_out = weight.shape[1] * groups
    else:
        if weight.shape[0] % groups != 0:
            raise ValueError(
                f"{op}: groups ({groups}) must divide the output channels weight.shape[0] ({weight.shape[0]})"
            )
        if weight.shape[1] * groups != c_in:
            raise ValueError(
                f"{op}: x has {c_in} channels but weight expects {weight.shape[1]} x groups ({groups}) "
                f"= {weight.shape[1] * groups}"
            )
        c_out = weight.shape[0]
    if c_out < 1:
        raise ValueError(f"{op}: the convolution must have at least one output channel")
    return c_out


def _conv_size(op: str, d: int, size: int, k: int, stride, padding, output_padding, dilation) -> int:
    """Output size of a convolution in dimension ``d`` (T, H, W = 0, 1, 2)."""
    span = dilation[d] * (k - 1) + 1
    if span > size + 2 * padding[d]:
        raise ValueError(
            f"{op}: kernel (dilated size {span} in dimension {DIMS[d]}) is larger than the "
            f"padded input ({size} + 2*{padding[d]})"
        )
    return (size + 2 * padding[d] - span) // stride[d] + 1


def _transposed_size(op: str, d: int, size: int, k: int, stride, padding, output_padding, dilation) -> int:
    """Output size of a transposed convolution in dimension ``d``."""
    if not (output_padding[d] < stride[d] or output_padding[d] < dilation[d]):
        raise ValueError(
            f"{op}: output_padding must be smaller than either stride or dilation, got "
            f"output_padding={output_padding} stride={stride} dilation={dilation}"
        )
    o = (size - 1) * stride[d] - 2 * padding[d] + dilation[d] * (k - 1) + 1 + output_padding[d]
    if o < 1:
        raise ValueError(
            f"{op}: padding {padding} is too large: the output would have size {o} in dimension {DIMS[d]}"
        )
    return o
