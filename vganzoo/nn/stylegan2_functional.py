"""StyleGAN2's network maths as functions (Karras et al. 2020, as in NVlabs' stylegan2-ada-pytorch).

The layers of :mod:`vganzoo.nn.stylegan2` are built on these; they follow the published maths exactly,
so weights trained with the authors' code compute the same function:

* ``bias_act``: bias, activation, a gain (``sqrt(2)`` after leaky ReLU 0.2) and an optional clamp;
  :func:`conv2d_bias_act` is a convolution followed by it, through the fused op of :mod:`vganzoo.ops`
  (a 2-D convolution is the 3-D op with one frame), with the activation gain folded into the weight
  and bias (leaky ReLU is positively homogeneous), or, when the plain-PyTorch reference is selected
  (``VGANZOO_OPS_IMPL=ref``), ``F.conv2d`` then :func:`bias_act` in the authors' order of operations;
* FIR resampling with the [1, 3, 3, 1] filter (:func:`upfirdn2d`, plain PyTorch only): 2x upsampling
  by zero insertion + filtering, 2x downsampling by filtering + dropping pixels, each fused with its
  convolution as the authors' ``conv2d_resample`` does;
* modulated / demodulated convolutions (:func:`modulated_conv2d`), in the two equivalent formulations
  the authors use: per-sample weights in one grouped convolution (eval), or one shared weight with the
  styles applied to the activations (training, where it is faster).

On the CPU, float16 / bfloat16 convolutions are computed in float32 and rounded back (torch's CPU
kernels for them are 10-40x slower than float32's).

Layouts: images ``(N, C, H, W)``, latents ``(N, D)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .. import ops

__all__ = [
    "ACTIVATION_GAINS",
    "LEAKY_SLOPE",
    "bias_act",
    "check_activation",
    "conv2d_bias_act",
    "downsample2d",
    "filter_for_downsampling",
    "make_resample_filter",
    "modulated_conv2d",
    "modulated_weight",
    "normalize_2nd_moment",
    "upfirdn2d",
    "upsample2d",
]

LEAKY_SLOPE = 0.2
# The gain each activation's output is multiplied by (keeps the activations' variance).
ACTIVATION_GAINS = {"linear": 1.0, "lrelu": math.sqrt(2)}
RESAMPLE_TAPS = (1, 3, 3, 1)
DEMODULATION_EPS = 1e-8
MOMENT_EPS = 1e-8

Padding = tuple[int, int, int, int]  # (x_before, x_after, y_before, y_after); negative values crop


def check_activation(activation: str) -> None:
    """Raise ValueError unless ``activation`` is one the layers know ("linear", "lrelu")."""
    if activation not in ACTIVATION_GAINS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATION_GAINS)}, got {activation!r}")


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``x / sqrt(mean(x^2) + 1e-8)`` along ``dim``."""
    return x * (x.square().mean(dim=dim, keepdim=True) + MOMENT_EPS).rsqrt()


def bias_act(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """``clamp(act(x + bias) * gain)``; bias along dim 1; ``gain`` defaults to the activation's gain."""
    check_activation(activation)
    gain = ACTIVATION_GAINS[activation] if gain is None else float(gain)
    if bias is not None:
        x = x + bias.reshape([-1 if i == 1 else 1 for i in range(x.ndim)])
    if activation == "lrelu":
        x = F.leaky_relu(x, LEAKY_SLOPE)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def conv2d_bias_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    stride: int = 1,
    padding: int = 0,
    groups: int = 1,
    activation: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """``bias_act(conv2d(x, weight), bias, activation, gain, clamp)`` through the fused op.

    x: (N, C_in, H, W); weight: (C_out, C_in / groups, k, k); bias: (C_out,) or None.
    """
    check_activation(activation)
    gain = ACTIVATION_GAINS[activation] if gain is None else float(gain)
    half = _slow_cpu_half(x)
    if half is not None:
        with torch.autocast("cpu", enabled=False):
            y = conv2d_bias_act(
                x.float(),
                weight.float(),
                bias.float() if bias is not None else None,
                stride=stride,
                padding=padding,
                groups=groups,
                activation=activation,
                gain=gain,
                clamp=clamp,
            )
        return y.to(half)
    if ops.resolve_impl(None, x.device.type) == "ref" or x.shape[0] == 0:
        y = F.conv2d(x, weight, stride=stride, padding=padding, groups=groups)
        return bias_act(y, bias, activation, gain, clamp)
    # Both activations are positively homogeneous: act(z) * g == act(g * z) for g > 0.
    if gain != 1:
        weight = weight * gain
        bias = bias * gain if bias is not None else None
    y = ops.conv3d_bias_act(
        x.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        stride=(1, stride, stride),
        padding=(0, padding, padding),
        groups=groups,
        activation="leaky_relu" if activation == "lrelu" else "none",
        negative_slope=LEAKY_SLOPE,
    ).squeeze(2)
    return y.clamp(-clamp, clamp) if clamp is not None else y


def _slow_cpu_half(x: torch.Tensor) -> torch.dtype | None:
    """float16 / bfloat16 when ``x``'s convolution would run in it on the CPU (``x`` in it, or CPU
    autocast to it), else None. torch's CPU convolutions take a slow path there (10-40x float32's):
    they are computed in float32 and rounded to that dtype."""
    if x.device.type != "cpu":
        return None
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.dtype
    if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") in (
        torch.float16,
        torch.bfloat16,
    ):
        return torch.get_autocast_dtype("cpu")
    return None


def make_resample_filter(taps: Sequence[int] = RESAMPLE_TAPS) -> torch.Tensor:
    """The separable low-pass filter as a normalised 2-D kernel: ``outer(taps, taps) / sum``.

    Made on the CPU whatever the default device (a constant, also for models built on "meta").
    """
    f = torch.tensor(taps, dtype=torch.float32, device="cpu")
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    *,
    up: int = 1,
    down: int = 1,
    padding: Padding = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative: crop), convolve with ``f``, keep every ``down``-th pixel.

    x: (N, C, H, W); f: (kh, kw) float32 (a true convolution: the filter is flipped).
    """
    half = _slow_cpu_half(x)
    if half is not None:
        with torch.autocast("cpu", enabled=False):
            y = upfirdn2d(x.float(), f, up=up, down=down, padding=padding, gain=gain)
        return y.to(half)
    n, c, h, w = x.shape
    px0, px1, py0, py1 = padding
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    f = (f * gain).to(x.dtype).flip([0, 1])
    x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::down, ::down] if down > 1 else x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, up H, up W), filtered (the skip-to-RGB image path)."""
    fw = f.shape[-1]
    pad0, pad1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, f, up=up, padding=(pad0, pad1, pad0, pad1), gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H / down, W / down), filtered."""
    fw = f.shape[-1]
    pad0, pad1 = (fw - down + 1) // 2, (fw - down) // 2
    return upfirdn2d(x, f, down=down, padding=(pad0, pad1, pad0, pad1))


def _upsample_conv2d(
    x: torch.Tensor, weight: torch.Tensor, f: torch.Tensor, *, padding: int, groups: int
) -> torch.Tensor:
    """2x upsampling convolution (StyleGAN2's ``up=2``): a stride-2 transposed convolution, then the FIR
    filter. weight: (C_out, C_in / groups, k, k) as for a plain convolution."""
    half = _slow_cpu_half(x)
    if half is not None:
        with torch.autocast("cpu", enabled=False):
            y = _upsample_conv2d(x.float(), weight.float(), f, padding=padding, groups=groups)
        return y.to(half)
    out_channels, in_per_group, k, _ = weight.shape
    fw, up = f.shape[-1], 2
    pad0 = padding + (fw + up - 1) // 2 - (k - 1)
    pad1 = padding + (fw - up) // 2 - (k - up)
    if groups == 1:
        weight = weight.transpose(0, 1)
    else:  # (G * O/G, I/G, k, k) -> (G * I/G, O/G, k, k), the transposed convolution's layout
        weight = weight.reshape(groups, out_channels // groups, in_per_group, k, k).transpose(1, 2)
        weight = weight.reshape(groups * in_per_group, out_channels // groups, k, k)
    transposed_pad = max(min(-pad0, -pad1), 0)
    x = F.conv_transpose2d(x, weight, stride=up, padding=transposed_pad, groups=groups)
    pads = (pad0 + transposed_pad, pad1 + transposed_pad) * 2
    return upfirdn2d(x, f, padding=(pads[0], pads[1], pads[0], pads[1]), gain=up * up)


def filter_for_downsampling(x: torch.Tensor, f: torch.Tensor, *, kernel_size: int, padding: int):
    """The FIR part of a 2x downsampling convolution (``down=2``); returns ``(x, stride)`` for the
    convolution that follows: a kxk kernel filters the padded input and strides by 2, a 1x1 kernel
    convolves the already filtered and decimated input."""
    fw, down = f.shape[-1], 2
    pad0 = padding + (fw - down + 1) // 2
    pad1 = padding + (fw - down) // 2
    if kernel_size == 1:
        return upfirdn2d(x, f, down=down, padding=(pad0, pad1, pad0, pad1)), 1
    return upfirdn2d(x, f, padding=(pad0, pad1, pad0, pad1)), down


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    fused: bool = True,
) -> torch.Tensor:
    """StyleGAN2's modulated convolution (no bias); ``noise`` is added after demodulation.

    x: (N, C_in, H, W); weight: (C_out, C_in, k, k); styles: (N, C_in). ``fused``: one grouped
    convolution with per-sample weights; otherwise the shared weight with the styles and the
    demodulation applied to the activations (the same function).
    """
    n = x.shape[0]
    _, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:  # pre-normalise against float16 overflow
        weight = weight * (
            1 / math.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    w = dcoefs = None
    if demodulate or fused:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # (N, O, I, k, k)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + DEMODULATION_EPS).rsqrt()  # (N, O)
    if demodulate and fused:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)

    if not fused:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        weight = weight.to(x.dtype)
        if up > 1:
            x = _upsample_conv2d(x, weight, resample_filter, padding=padding, groups=1)
        else:
            x = conv2d_bias_act(x, weight, padding=padding)
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(n, -1, 1, 1))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        return x + noise.to(x.dtype) if noise is not None else x

    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw).to(x.dtype)
    if up > 1:
        x = _upsample_conv2d(x, w, resample_filter, padding=padding, groups=n)
    else:
        x = F.conv2d(x, w, padding=padding, groups=n)
    x = x.reshape(n, -1, *x.shape[2:])
    return x + noise if noise is not None else x


def modulated_weight(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """Per-sample modulated and demodulated weights (N, O, I, k, k) of ``weight`` (O, I, k, k)."""
    w = weight.unsqueeze(0) * styles.reshape(styles.shape[0], 1, -1, 1, 1)
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + DEMODULATION_EPS).rsqrt()
    return w * dcoefs.reshape(styles.shape[0], -1, 1, 1, 1)
