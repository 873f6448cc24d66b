"""StyleGAN2 layers (Karras et al. 2020, as in NVlabs' stylegan2-ada-pytorch), for StyleGAN-based families.

Everything here follows the published network maths exactly, so weights trained with the authors'
code compute the same function (see :mod:`vganzoo.convert.stylegan_v`):

* equalized learning rate: weights are stored unscaled (N(0, 1) at init, divided by the layer's
  learning-rate multiplier) and scaled by ``lr_multiplier / sqrt(fan_in)`` in every forward pass;
* modulated / demodulated convolutions (:class:`ModulatedConv2d`), skip-to-RGB layers (:class:`ToRGB`);
* the mapping network and the minibatch standard-deviation layer;
* the blocks of the skip-architecture generator and the ResNet discriminator built from them
  (:class:`SynthesisBlock`, :class:`DiscriminatorBlock`, :class:`DiscriminatorEpilogue`).

The maths they run (``bias_act``, the fused ``conv2d_bias_act``, FIR resampling, the modulated
convolution) are functions in :mod:`vganzoo.nn.stylegan2_functional`, re-exported here.

Layouts: images ``(N, C, H, W)``, latents ``(N, D)``; ``w`` is a (per-layer) intermediate latent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .stylegan2_functional import (
    ACTIVATION_GAINS,
    DEMODULATION_EPS,
    LEAKY_SLOPE,
    MOMENT_EPS,
    RESAMPLE_TAPS,
    Padding,
    bias_act,
    check_activation,
    conv2d_bias_act,
    downsample2d,
    filter_for_downsampling,
    make_resample_filter,
    modulated_conv2d,
    modulated_weight,
    normalize_2nd_moment,
    upfirdn2d,
    upsample2d,
)

__all__ = [
    "ACTIVATION_GAINS",
    "INPUT_SIZE",
    "LEAKY_SLOPE",
    "DiscriminatorBlock",
    "DiscriminatorEpilogue",
    "EqualizedConv1d",
    "EqualizedConv2d",
    "EqualizedLinear",
    "MappingNetwork",
    "MinibatchStd",
    "ModulatedConv2d",
    "SynthesisBlock",
    "ToRGB",
    "bias_act",
    "channel_ladder",
    "conv2d_bias_act",
    "downsample2d",
    "fused_modconv",
    "make_resample_filter",
    "modulated_conv2d",
    "normalize_2nd_moment",
    "synthesis_blocks",
    "synthesize",
    "upfirdn2d",
    "upsample2d",
]
# defined here before the functions moved to stylegan2_functional, and still importable from here
__all__ += ["DEMODULATION_EPS", "RESAMPLE_TAPS", "Padding"]

MAPPING_LR_MULTIPLIER = 0.01
W_AVG_BETA = 0.995
INPUT_SIZE = 4  # the synthesis network starts from a 4x4 map; the discriminator ends on one


def _scaled_randn(shape: tuple[int, ...], scale: float) -> torch.Tensor:
    """N(0, scale^2) initial weights (in place: out-of-place arithmetic on "meta" tensors costs an import
    of torch's compiler stack, seconds)."""
    w = torch.randn(shape)
    return w.mul_(scale) if scale != 1 else w


# ------------------------------------------------------------------------------------------------
# layers
# ------------------------------------------------------------------------------------------------
class EqualizedLinear(nn.Module):
    """Fully connected layer with equalized learning rate: x (N, in) -> (N, out).

    ``weight`` (out, in) is N(0, 1) / lr_multiplier at init and scaled by lr_multiplier / sqrt(in);
    ``bias`` starts at ``bias_init`` and is scaled by lr_multiplier.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        check_activation(activation)
        self.activation = activation
        self.weight = nn.Parameter(_scaled_randn((out_features, in_features), 1 / lr_multiplier))
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, self.activation)

    def extra_repr(self) -> str:
        out, inp = self.weight.shape
        return f"in_features={inp}, out_features={out}, activation={self.activation}"


class EqualizedConv1d(nn.Module):
    """1-D convolution with equalized learning rate, no padding: x (N, in, L) -> (N, out, L - k + 1).

    Its activation is a plain leaky ReLU 0.2 (no gain), as in StyleGAN-V's motion network.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        check_activation(activation)
        self.activation = activation
        self.weight = nn.Parameter(_scaled_randn((out_channels, in_channels, kernel_size), 1 / lr_multiplier))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = lr_multiplier / math.sqrt(in_channels * kernel_size)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype)
        if self.bias_gain != 1:
            b = b * self.bias_gain
        y = F.conv1d(x, w, b)
        return F.leaky_relu(y, LEAKY_SLOPE) if self.activation == "lrelu" else y


class EqualizedConv2d(nn.Module):
    """Convolution with equalized learning rate, 'same' padding, optional 2x FIR downsampling,
    then bias, activation (times its gain and ``forward``'s ``gain``) and clamp.

    x (N, in, H, W) -> (N, out, H / down, W / down). The discriminator's layer.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        activation: str = "linear",
        down: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        check_activation(activation)
        if down not in (1, 2):
            raise ValueError(f"down must be 1 or 2, got {down}")
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("resample_filter", make_resample_filter(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        b = self.bias.to(x.dtype) if self.bias is not None else None
        act_gain = ACTIVATION_GAINS[self.activation] * gain
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        stride, padding = 1, self.padding
        if self.down == 2:
            x, stride = filter_for_downsampling(
                x, self.resample_filter, kernel_size=w.shape[-1], padding=self.padding
            )
            padding = 0
        return conv2d_bias_act(
            x, w, b, stride=stride, padding=padding, activation=self.activation, gain=act_gain, clamp=clamp
        )

    def extra_repr(self) -> str:
        out, inp, k, _ = self.weight.shape
        return f"{inp}, {out}, kernel_size={k}, activation={self.activation}, down={self.down}"


class ModulatedConv2d(nn.Module):
    """StyleGAN2's synthesis layer: modulated conv (optionally 2x upsampling), noise, bias, leaky ReLU.

    forward(x (N, in, R / up, R / up), w (N, w_dim)) -> (N, out, R, R) with R = ``resolution``.
    ``affine`` maps w to the styles (bias starts at 1); ``noise_strength`` and the fixed
    ``noise_const`` (used by ``noise_mode="const"``) exist only with ``use_noise``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        kernel_size: int = 3,
        up: int = 1,
        conv_clamp: float | None = None,
        use_noise: bool = False,
    ) -> None:
        super().__init__()
        if up not in (1, 2):
            raise ValueError(f"up must be 1 or 2, got {up}")
        self.resolution, self.up, self.conv_clamp, self.use_noise = resolution, up, conv_clamp, use_noise
        self.padding = kernel_size // 2
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("resample_filter", make_resample_filter(), persistent=False)

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, *, noise_mode: str = "random", fused: bool = True
    ) -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = (
                torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
                * self.noise_strength
            )
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        gain = ACTIVATION_GAINS["lrelu"]
        bias = self.bias.to(x.dtype)
        if fused and noise is None and self.up == 1 and x.dtype != torch.float16:  # one fused op
            n = x.shape[0]
            weight = modulated_weight(self.weight, styles)
            y = conv2d_bias_act(
                x.reshape(1, -1, *x.shape[2:]),
                weight.reshape(-1, *weight.shape[2:]).to(x.dtype),
                bias.repeat(n),
                padding=self.padding,
                groups=n,
                activation="lrelu",
                gain=gain,
                clamp=self.conv_clamp,
            )
            return y.reshape(n, -1, *y.shape[2:])
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=noise,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            fused=fused,
        )
        return bias_act(x, bias, "lrelu", gain, self.conv_clamp)

    def extra_repr(self) -> str:
        out, inp, k, _ = self.weight.shape
        return f"{inp}, {out}, kernel_size={k}, up={self.up}, resolution={self.resolution}"


class ToRGB(nn.Module):
    """1x1 modulated convolution without demodulation, bias, clamp: x (N, in, H, W), w (N, w_dim) ->
    (N, channels, H, W)."""

    def __init__(self, in_channels: int, channels: int, w_dim: int, *, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, *, fused: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        n = x.shape[0]
        bias = self.bias.to(x.dtype)
        if fused:
            weight = (self.weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)).reshape(-1, x.shape[1], 1, 1)
            y = conv2d_bias_act(
                x.reshape(1, -1, *x.shape[2:]),
                weight.to(x.dtype),
                bias.repeat(n),
                groups=n,
                activation="linear",
                clamp=self.conv_clamp,
            )
            return y.reshape(n, -1, *y.shape[2:])
        return conv2d_bias_act(
            x * styles.to(x.dtype).reshape(n, -1, 1, 1),
            self.weight.to(x.dtype),
            bias,
            activation="linear",
            clamp=self.conv_clamp,
        )


class MappingNetwork(nn.Module):
    """z (and a class / conditioning vector c) -> w through ``num_layers`` leaky-ReLU layers.

    Both inputs are normalised to unit second moment first (c after its ``embed`` layer). With
    ``num_ws`` the result is broadcast to (N, num_ws, w_dim), else it is (N, w_dim). ``w_avg``
    tracks the mean w in training (decay ``w_avg_beta``; None: not tracked) for truncation.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        *,
        num_ws: int | None,
        num_layers: int,
        lr_multiplier: float = MAPPING_LR_MULTIPLIER,
        w_avg_beta: float | None = W_AVG_BETA,
    ) -> None:
        super().__init__()
        if z_dim + c_dim < 1 or num_layers < 1:
            raise ValueError("MappingNetwork needs an input (z_dim + c_dim >= 1) and at least one layer")
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.w_avg_beta = w_avg_beta
        embed_features = w_dim if c_dim else 0
        self.embed = EqualizedLinear(c_dim, embed_features) if c_dim else None
        features = [z_dim + embed_features] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            EqualizedLinear(features[i], features[i + 1], activation="lrelu", lr_multiplier=lr_multiplier)
            for i in range(num_layers)
        )
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = True,
    ) -> torch.Tensor:
        x = None
        if self.z_dim:
            x = normalize_2nd_moment(z)
        if self.c_dim:
            y = normalize_2nd_moment(self.embed(c))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for layer in self.layers:
            x = layer(x)
        if self.w_avg_beta is not None and self.num_ws is not None and self.training and update_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.to(x.dtype).lerp(x, truncation_psi)
            else:
                head = self.w_avg.to(x.dtype).lerp(x[:, :truncation_cutoff], truncation_psi)
                x = torch.cat([head, x[:, truncation_cutoff:]], dim=1)
        return x


class MinibatchStd(nn.Module):
    """Appends ``num_channels`` feature maps holding the standard deviation of the features across
    groups of ``group_size`` samples: (N, C, H, W) -> (N, C + num_channels, H, W).

    The group is ``min(group_size, N)``, as in the authors' code; a batch it does not divide (where
    their code fails) uses ``gcd(group, N)``.
    """

    def __init__(self, group_size: int, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = math.gcd(min(self.group_size, n) if self.group_size is not None else n, n)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + MOMENT_EPS).sqrt()
        y = y.mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


# ------------------------------------------------------------------------------------------------
# blocks
# ------------------------------------------------------------------------------------------------
class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: [2x upsampling conv], conv, to-RGB (skip architecture).

    forward(x (N, C_in, R/2, R/2) or the 4x4 input, img (N, channels, R/2, R/2) or None,
    ws (N, num_ws, w_dim)) -> (x (N, C_out, R, R), img (N, channels, R, R)).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        w_dim: int,
        resolution: int,
        channels: int,
        first: bool,
        conv_clamp: float | None,
        use_noise: bool,
    ) -> None:
        super().__init__()
        self.first = first
        layer = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, use_noise=use_noise)
        self.conv0 = None if first else ModulatedConv2d(in_channels, out_channels, up=2, **layer)
        self.conv1 = ModulatedConv2d(in_channels if first else out_channels, out_channels, **layer)
        self.to_rgb = ToRGB(out_channels, channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if first else 2
        self.register_buffer("resample_filter", make_resample_filter(), persistent=False)

    def forward(
        self, x: torch.Tensor, img: torch.Tensor | None, ws: torch.Tensor, *, fused: bool, noise_mode: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w = iter(ws.unbind(dim=1))
        if self.conv0 is not None:
            x = self.conv0(x, next(w), fused=fused, noise_mode=noise_mode)
        x = self.conv1(x, next(w), fused=fused, noise_mode=noise_mode)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.to_rgb(x, next(w), fused=fused)
        return x, (img + y if img is not None else y)


class DiscriminatorBlock(nn.Module):
    """ResNet block: [from-RGB], conv, conv with 2x downsampling, plus a downsampled 1x1 skip; the two
    paths are scaled by sqrt(1/2). x (M, C_in, R, R) -> (M, C_out, R/2, R/2)."""

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        *,
        channels: int,
        conv_clamp: float | None,
    ) -> None:
        super().__init__()
        first = in_channels == 0
        self.from_rgb = (
            EqualizedConv2d(channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
            if first
            else None
        )
        conv0_in = tmp_channels if first else in_channels
        self.conv0 = EqualizedConv2d(conv0_in, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = EqualizedConv2d(
            tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp
        )
        self.skip = EqualizedConv2d(conv0_in, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.from_rgb is not None:
            x = self.from_rgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class DiscriminatorEpilogue(nn.Module):
    """4x4 features (N, C, 4, 4) and the mapped conditioning (N, cmap_dim) -> logits (N,).

    Minibatch standard deviation, a 3x3 conv, a dense layer, then the projection
    ``<out(h), cmap> / sqrt(cmap_dim)``.
    """

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        *,
        mbstd_group_size: int,
        mbstd_channels: int,
        conv_clamp: float | None,
    ) -> None:
        super().__init__()
        self.cmap_dim = cmap_dim
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_channels) if mbstd_channels > 0 else None
        self.conv = EqualizedConv2d(
            in_channels + mbstd_channels, in_channels, 3, activation="lrelu", conv_clamp=conv_clamp
        )
        self.fc = EqualizedLinear(in_channels * INPUT_SIZE**2, in_channels, activation="lrelu")
        self.out = EqualizedLinear(in_channels, cmap_dim)

    def forward(self, x: torch.Tensor, cmap: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        return (x * cmap.to(x.dtype)).sum(dim=1) * (1 / math.sqrt(self.cmap_dim))


def channel_ladder(resolution: int, *, width: float, channel_base: int, channel_max: int) -> dict[int, int]:
    """Channels at each resolution 4, 8, ..., ``resolution``: ``min(base // res, max)`` (scaled by width)."""
    base, top = max(1, round(channel_base * width)), max(1, round(channel_max * width))
    return {2**i: min(base // 2**i, top) for i in range(2, int(math.log2(resolution)) + 1)}


def synthesis_blocks(
    ladder: Mapping[int, int],
    *,
    input_channels: int,
    w_dim: int,
    channels: int,
    conv_clamp: float | None,
    use_noise: bool,
) -> nn.ModuleList:
    """The skip generator's :class:`SynthesisBlock` for each resolution of ``ladder`` (resolution ->
    channels, from 4x4 up): the first takes ``input_channels`` at 4x4, each next one the channels of
    the one before."""
    blocks = []
    for res, out_channels in ladder.items():
        first = res == INPUT_SIZE
        in_channels = input_channels if first else ladder[res // 2]
        blocks.append(
            SynthesisBlock(
                in_channels,
                out_channels,
                w_dim=w_dim,
                resolution=res,
                channels=channels,
                first=first,
                conv_clamp=conv_clamp,
                use_noise=use_noise,
            )
        )
    return nn.ModuleList(blocks)


def synthesize(
    blocks: nn.ModuleList, x: torch.Tensor, ws: torch.Tensor, *, fused: bool, noise_mode: str
) -> torch.Tensor:
    """Run :func:`synthesis_blocks` on the 4x4 input x (M, C, 4, 4) with ws (M, num_ws, w_dim); returns
    the image (M, channels, R, R). Each block reads its convs' ws and the next one (its to-RGB shares
    the next block's first w), so ``num_ws`` is the blocks' convolutions plus one."""
    img, index = None, 0
    for block in blocks:
        x, img = block(x, img, ws[:, index : index + block.num_conv + 1], fused=fused, noise_mode=noise_mode)
        index += block.num_conv
    return img


def fused_modconv(x: torch.Tensor, training: bool) -> bool:
    """Whether the modulated convolutions on ``x`` run as per-sample weights in one grouped convolution
    (True) or with the styles applied to the activations: the same function. The first is faster
    without gradients on a GPU in full precision (the authors' rule); on the CPU the grouped
    convolution is the slower one."""
    return (
        not training
        and x.device.type == "cuda"
        and x.dtype in (torch.float32, torch.float64)
        and not torch.is_autocast_enabled(x.device.type)
    )
