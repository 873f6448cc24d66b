"""Public fused ops, the implementation switch, and the torch.library fake registrations (autograd: C++)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from . import _ext
from ._checks import check_conv_args, check_groups, output_memory_format, triple
from .activations import DEFAULT_NEGATIVE_SLOPE, check_activation
from .reference import conv3d_bias_act_ref, conv_transpose3d_bias_act_ref

IMPLS = ("auto", "ext", "ref")
ENV_VAR = "VGANZOO_OPS_IMPL"

IntOr3 = int | Sequence[int]


def extension_available(device: str | torch.device = "cpu") -> bool:
    """True if the compiled extension has kernels for `device` ("cpu" / "cuda")."""
    return _ext.has_kernel(torch.device(device).type)


def _env_impl() -> str:
    return os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"


def _resolve_env_impl() -> str:
    return _env_impl()


# What torch.compiler.assume_constant_result does (torch/_dynamo/decorators.py), set directly so that
# importing vganzoo does not import torch._dynamo (seconds): under torch.compile the environment is
# read once at trace time instead of being traced.
_resolve_env_impl._dynamo_marked_constant = True  # type: ignore[attr-defined]


def _in_functorch_transform() -> bool:
    """True inside a torch.func transform (grad, vjp, jacrev, vmap, ...). The extension's autograd is a C++
    autograd function, which those transforms cannot run (vmap alone runs it through a slow per-sample
    fallback), so "auto" takes the reference there. Not consulted while torch.compile traces."""
    if torch.compiler.is_compiling():
        return False
    return torch._C._functorch.peek_interpreter_stack() is not None


def resolve_impl(impl: str | None, device_type: str) -> str:
    """ "ext" or "ref": the implementation a call with `impl` (None = environment / "auto") takes on
    `device_type`."""
    choice = _resolve_env_impl() if impl is None else impl
    if choice not in IMPLS:
        source = "impl" if impl is not None else f"environment variable {ENV_VAR}"
        raise ValueError(f"{source} must be one of {IMPLS}, got {choice!r}")
    if choice == "ref" or (choice == "auto" and _in_functorch_transform()):
        return "ref"
    if _ext.has_kernel(device_type):
        return "ext"
    if choice == "ext":
        reason = _ext.load_error(device_type) or f"the extension was built without {device_type} kernels"
        raise RuntimeError(
            f"impl='ext' requested but the compiled vganzoo._C has no {device_type} kernel ({reason})"
        )
    _ext.warn_fallback_once(device_type)
    return "ref"


def _check_tensor_types(x, weight, bias) -> None:
    for name, t in (("x", x), ("weight", weight)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if bias is not None and not isinstance(bias, torch.Tensor):
        raise TypeError(f"bias must be a torch.Tensor or None, got {type(bias).__name__}")


def _autocast_inputs(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """Inside torch.autocast, the casts ATen's autocast applies to conv3d's inputs (lower-precision list):
    floating tensors on the autocast device, other than float64, to the autocast dtype. The extension
    does this in C++ (csrc/autocast.cpp); the reference path and explain() do it here, before the checks."""
    device = x.device.type
    if not (torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)):
        return x, weight, bias
    dtype = torch.get_autocast_dtype(device)

    def cast(t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None or not t.is_floating_point() or t.dtype == torch.float64 or t.device.type != device:
            return t
        return t.to(dtype)

    return cast(x), cast(weight), cast(bias)


def conv3d_bias_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOr3 = 1,
    padding: IntOr3 = 0,
    dilation: IntOr3 = 1,
    groups: int = 1,
    activation: str = "none",
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
    *,
    impl: str | None = None,
) -> torch.Tensor:
    """activation(conv3d(x, weight) + bias) in one op.

    x: (N, C_in, T, H, W); weight: (C_out, C_in/groups, kT, kH, kW); bias: (C_out,) or None.
    Returns (N, C_out, T_out, H_out, W_out) in x's memory format, T_out = (T + 2p - d(k-1) - 1) // s + 1.
    activation: one of vganzoo.ops.ACTIVATIONS ("none" | "relu" | "leaky_relu" | "tanh" | "sigmoid");
    negative_slope (>= 0) is used by "leaky_relu" only.
    Inside torch.autocast it runs in the autocast dtype, as F.conv3d does (float32 inputs are cast).
    """
    stride, padding, dilation = (
        triple(stride, "stride"),
        triple(padding, "padding"),
        triple(dilation, "dilation"),
    )
    check_activation(activation, negative_slope)
    _check_tensor_types(x, weight, bias)
    if resolve_impl(impl, x.device.type) == "ref":
        # The extension repeats these checks in C++ (same messages and exception types), so the
        # ext path skips the Python copy: it matters for the small heads, where the op costs < 1 ms.
        x, weight, bias = _autocast_inputs(x, weight, bias)
        check_conv_args(
            "conv3d_bias_act", x, weight, bias, stride, padding, [0, 0, 0], dilation, groups, False
        )
        return conv3d_bias_act_ref(
            x, weight, bias, stride, padding, dilation, groups, activation, negative_slope
        )
    check_groups("conv3d_bias_act", groups)
    args = (x, weight, bias, stride, padding, dilation, groups, activation, float(negative_slope))
    return torch.ops.vganzoo.conv3d_bias_act.default(*args)


def conv_transpose3d_bias_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOr3 = 1,
    padding: IntOr3 = 0,
    output_padding: IntOr3 = 0,
    dilation: IntOr3 = 1,
    groups: int = 1,
    activation: str = "none",
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
    *,
    impl: str | None = None,
) -> torch.Tensor:
    """activation(conv_transpose3d(x, weight) + bias) in one op.

    x: (N, C_in, T, H, W); weight: (C_in, C_out/groups, kT, kH, kW); bias: (C_out,) or None.
    Returns (N, C_out, T_out, H_out, W_out) in x's memory format,
    T_out = (T - 1) s - 2p + d(k-1) + output_padding + 1.
    Inside torch.autocast it runs in the autocast dtype, as F.conv_transpose3d does.
    """
    stride, padding = triple(stride, "stride"), triple(padding, "padding")
    output_padding, dilation = triple(output_padding, "output_padding"), triple(dilation, "dilation")
    check_activation(activation, negative_slope)
    _check_tensor_types(x, weight, bias)
    if resolve_impl(impl, x.device.type) == "ref":
        x, weight, bias = _autocast_inputs(x, weight, bias)
        check_conv_args(
            "conv_transpose3d_bias_act",
            x,
            weight,
            bias,
            stride,
            padding,
            output_padding,
            dilation,
            groups,
            True,
        )
        return conv_transpose3d_bias_act_ref(
            x, weight, bias, stride, padding, output_padding, dilation, groups, activation, negative_slope
        )
    check_groups("conv_transpose3d_bias_act", groups)
    args = (
        x,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        activation,
        float(negative_slope),
    )
    return torch.ops.vganzoo.conv_transpose3d_bias_act.default(*args)


def explain(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOr3 = 1,
    padding: IntOr3 = 0,
    dilation: IntOr3 = 1,
    groups: int = 1,
    activation: str = "none",
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
    *,
    transposed: bool = False,
    output_padding: IntOr3 = 0,
    impl: str | None = None,
) -> str:
    """One line saying which code path the matching conv3d_bias_act / conv_transpose3d_bias_act call takes.

    Validates the arguments exactly as the call would (inside torch.autocast: after its casts); computes
    nothing.
    """
    _check_tensor_types(x, weight, bias)
    x, weight, bias = _autocast_inputs(x, weight, bias)
    stride, padding = triple(stride, "stride"), triple(padding, "padding")
    output_padding, dilation = triple(output_padding, "output_padding"), triple(dilation, "dilation")
    check_activation(activation, negative_slope)
    op = "conv_transpose3d_bias_act" if transposed else "conv3d_bias_act"
    check_conv_args(
        op,
        x,
        weight,
        bias,
        stride,
        padding,
        output_padding if transposed else [0, 0, 0],
        dilation,
        groups,
        transposed,
    )
    if resolve_impl(impl, x.device.type) == "ref":
        if (impl or _env_impl()) == "ref":
            why = "requested"
        elif _in_functorch_transform():
            why = "inside a torch.func transform, which cannot run the extension's C++ autograd"
        else:
            why = _ext.load_error(x.device.type) or f"extension built without {x.device.type} kernels"
        return f"ref: plain-PyTorch reference ({why})"
    return "ext: " + torch.ops.vganzoo.explain(
        x, weight, bias, stride, padding, output_padding, dilation, groups, transposed, activation
    )


# ---------------------------------------------------------------------------------------------------
# torch.library registrations for the compiled operators (only when vganzoo._C loaded).


def _register() -> None:
    def conv_fake(x, weight, bias, stride, padding, dilation, groups, activation, negative_slope):
        check_activation(activation, negative_slope)
        shape = check_conv_args(
            "conv3d_bias_act",
            x,
            weight,
            bias,
            list(stride),
            list(padding),
            [0, 0, 0],
            list(dilation),
            groups,
            False,
        )
        return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=output_memory_format(x))

    def convt_fake(
        x, weight, bias, stride, padding, output_padding, dilation, groups, activation, negative_slope
    ):
        check_activation(activation, negative_slope)
        shape = check_conv_args(
            "conv_transpose3d_bias_act",
            x,
            weight,
            bias,
            list(stride),
            list(padding),
            list(output_padding),
            list(dilation),
            groups,
            True,
        )
        return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=output_memory_format(x))

    torch.library.register_fake("vganzoo::conv3d_bias_act", conv_fake)
    torch.library.register_fake("vganzoo::conv_transpose3d_bias_act", convt_fake)

    # Autograd is registered in C++ (csrc/autograd.cpp): torch.library.register_autograd's Python wrapper
    # cost ~0.14 ms of host time per call.


if _ext.available():
    _register()
