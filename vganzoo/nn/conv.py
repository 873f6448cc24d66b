"""STConv3d / STConvTranspose3d: drop-in nn.Conv3d / nn.ConvTranspose3d with a fused activation and
optional batch norm, computed through the fused ops in :mod:`vganzoo.ops`.

Forward paths (x: (N, C_in, T, H, W) -> (N, C_out, T', H', W'), memory format of x kept):
* no norm:                    one fused op: activation(conv(x) + bias).
* batch norm, training mode   (or no running statistics): conv(x) + bias through the fused op, then
                              batch norm, then the activation in place (stats pass + normalise pass +
                              activation pass; no extra output-sized buffers for the activation).
* batch norm, eval mode:      the norm is folded into the conv weight and bias
                              (w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) +
                              beta)
                              and the whole layer is one fused op.
Parameter names match nn.Conv3d (`weight`, `bias`) plus `norm` (a BatchNorm3d or None), so state
dicts are laid out as `<layer>.weight`, `<layer>.bias`, `<layer>.norm.{weight,bias,running_mean,...}`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops

IntOr3 = int | Sequence[int]


class _STConvBase(nn.Module):
    transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOr3,
        stride: IntOr3 = 1,
        padding: IntOr3 | str = 0,
        dilation: IntOr3 = 1,
        groups: int = 1,
        bias: bool = True,
        activation: str = "none",
        negative_slope: float = ops.DEFAULT_NEGATIVE_SLOPE,
        norm: str | None = None,
        norm_eps: float = 1e-5,
        norm_momentum: float | None = 0.1,
        norm_affine: bool = True,
        output_padding: IntOr3 = 0,
        *,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        impl: str | None = None,
    ):
        super().__init__()
        ops.check_activation(activation, negative_slope)
        if norm not in (None, "batch"):
            raise ValueError(f"norm must be None or 'batch', got {norm!r}")
        if impl is not None and impl not in ops.IMPLS:
            raise ValueError(f"impl must be one of {ops.IMPLS} or None, got {impl!r}")
        if self.transposed and isinstance(padding, str):
            raise ValueError(
                f"padding={padding!r} is not supported for transposed convolutions: give integer padding"
            )
        conv_cls = nn.ConvTranspose3d if self.transposed else nn.Conv3d
        kwargs = dict(
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        if self.transposed:
            kwargs["output_padding"] = output_padding
        # validates everything (string paddings, padding modes, ...) and initialises like torch
        template = conv_cls(in_channels, out_channels, kernel_size, **kwargs)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = template.kernel_size, template.stride, template.padding
        self.dilation, self.groups, self.padding_mode = template.dilation, groups, template.padding_mode
        # What the op is called with: symmetric zero padding, after an optional F.pad of the input for
        # padding="same" with an odd total (torch puts the extra element at the end) or a non-zero
        # padding_mode.
        pads = list(template._reversed_padding_repeated_twice)  # (W_l, W_r, H_l, H_r, T_l, T_r)
        self._input_pad: list[int] | None = None
        self._input_pad_mode = "constant"
        if padding_mode != "zeros":
            self._conv_padding = (0, 0, 0)
            self._input_pad, self._input_pad_mode = pads, padding_mode
        elif isinstance(self.padding, str):
            self._conv_padding = (pads[4], pads[2], pads[0])
            extra = [0, pads[1] - pads[0], 0, pads[3] - pads[2], 0, pads[5] - pads[4]]
            self._input_pad = extra if any(extra) else None
        else:
            self._conv_padding = tuple(self.padding)
        self.output_padding = template.output_padding if self.transposed else (0, 0, 0)
        self.weight = template.weight
        self.bias = template.bias
        self.activation, self.negative_slope = activation, negative_slope
        self.impl = impl
        self.norm = (
            nn.BatchNorm3d(
                out_channels,
                eps=norm_eps,
                momentum=norm_momentum,
                affine=norm_affine,
                device=device,
                dtype=dtype,
            )
            if norm == "batch"
            else None
        )

    def reset_parameters(self) -> None:
        """Re-initialise the weight and bias exactly as nn.Conv3d / nn.ConvTranspose3d do; reset the norm."""
        (nn.ConvTranspose3d if self.transposed else nn.Conv3d).reset_parameters(self)  # type: ignore[arg-type]
        if self.norm is not None:
            self.norm.reset_parameters()

    def _conv(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        activation: str,
        output_padding: Sequence[int] | None = None,
    ) -> torch.Tensor:
        if self.transposed:
            out_pad = self.output_padding if output_padding is None else output_padding
            return ops.conv_transpose3d_bias_act(
                x,
                weight,
                bias,
                self.stride,
                self.padding,
                out_pad,
                self.dilation,
                self.groups,
                activation,
                self.negative_slope,
                impl=self.impl,
            )
        if self._input_pad is not None:
            fmt = ops.output_memory_format(x)  # the format the op would return for x
            # the circular mode returns a contiguous tensor; the layer keeps x's format
            x = F.pad(x, self._input_pad, mode=self._input_pad_mode).contiguous(memory_format=fmt)
        return ops.conv3d_bias_act(
            x,
            weight,
            bias,
            self.stride,
            self._conv_padding,
            self.dilation,
            self.groups,
            activation,
            self.negative_slope,
            impl=self.impl,
        )

    def folded_weight_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight and bias with the (eval-mode) batch norm folded in; differentiable."""
        norm = self.norm
        assert norm is not None and norm.running_var is not None and norm.running_mean is not None
        scale = torch.rsqrt(norm.running_var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight
        bias = -norm.running_mean * scale
        if self.bias is not None:
            bias = bias + self.bias * scale
        if norm.bias is not None:
            bias = bias + norm.bias
        w = self.weight
        if self.transposed:  # (C_in, C_out/g, k...): output channel = group * (C_out/g) + j
            g = self.groups
            c_in, c_out_g = w.shape[0], w.shape[1]
            w = (w.reshape(g, c_in // g, c_out_g, -1) * scale.reshape(g, 1, c_out_g, 1)).reshape(w.shape)
        else:
            w = w * scale.reshape(-1, 1, 1, 1, 1)
        return w.to(self.weight.dtype), bias.to(self.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(x)

    def __prepare_scriptable__(self) -> nn.Module:
        # torch.jit.script calls this first: say why instead of a TorchScript compiler error
        raise TypeError(
            f"{type(self).__name__}: TorchScript is not supported (the layer picks its implementation in "
            "Python); "
            "use torch.compile, or torch.export for a serialisable graph"
        )

    def _forward(self, x: torch.Tensor, output_padding: Sequence[int] | None = None) -> torch.Tensor:
        norm = self.norm
        if norm is None:
            return self._conv(x, self.weight, self.bias, self.activation, output_padding)
        if not norm.training and norm.running_mean is not None:
            weight, bias = self.folded_weight_bias()
            return self._conv(x, weight, bias, self.activation, output_padding)
        y = norm(self._conv(x, self.weight, self.bias, "none", output_padding))
        return ops.apply_activation_(y, self.activation, self.negative_slope)

    def extra_repr(self) -> str:
        padding = repr(self.padding) if isinstance(self.padding, str) else self.padding
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={padding}"
        )
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        if self.transposed and any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s + f", activation={self.activation!r}"


class STConv3d(_STConvBase):
    """3-D convolution + bias (+ batch norm) + activation. x: (N, C_in, T, H, W) -> (N, C_out, T', H', W').

    Drop-in for nn.Conv3d (same arguments, including padding="same" / "valid", padding_mode, device and dtype,
    and `weight` (C_out, C_in/groups, kT, kH, kW) / `bias`; reset_parameters initialises as nn.Conv3d does),
    plus
    activation (one of vganzoo.ops.ACTIVATIONS), negative_slope (leaky_relu only; default
    ops.DEFAULT_NEGATIVE_SLOPE), norm (None | "batch")
    with norm_eps / norm_momentum / norm_affine, and impl (None = VGANZOO_OPS_IMPL / "auto", "ext", "ref").
    """


class STConvTranspose3d(_STConvBase):
    """3-D transposed convolution + bias (+ batch norm) + activation. x: (N, C_in, T, H, W).

    Drop-in for nn.ConvTranspose3d (`weight` (C_in, C_out/groups, kT, kH, kW), `output_padding`, device,
    dtype;
    like it, integer padding and padding_mode "zeros" only), with the same extra arguments as STConv3d.
    forward(x, output_size=None): as nn.ConvTranspose3d, output_size (the output's (T, H, W), or with N and C
    in front) picks the output padding for this call.
    """

    transposed = True

    def forward(self, x: torch.Tensor, output_size: Sequence[int] | None = None) -> torch.Tensor:
        if output_size is None:
            return self._forward(x)
        # torch's own resolution of output_size (its checks and messages), for this call only
        output_padding = nn.ConvTranspose3d._output_padding(
            self,
            x,
            list(output_size),
            list(self.stride),
            list(self.padding),
            list(self.kernel_size),
            3,  # type: ignore[arg-type]
            list(self.dilation),
        )
        return self._forward(x, tuple(output_padding))
