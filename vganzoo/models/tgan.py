"""TGAN (Saito, Matsumoto and Saito, ICCV 2017): a temporal generator and an image generator.

Generator (``tgan/generator``)
    The temporal generator G0 maps ``z_slow ~ U[-1, 1]^100`` through 1-D transposed convolutions to
    one ``z_fast`` per frame (``(N, 100, T)``); the image generator G1 renders each frame from
    ``(z_slow, z_fast_t)``. Submodules keep the original Chainer names (``temporal.dc0``,
    ``temporal.bn0``, ``image.l0s``, ``image.bn0s``, ``image.dc1`` ...) so the converter's key map
    (:mod:`vganzoo.convert.tgan`) is a rename of ``/`` to ``.``.

Discriminator (``tgan/video``)
    Four 3-D convs (k4 s2 p1, with bias, LeakyReLU 0.2, BN without shift after the 2nd to 4th)
    then a 2-D conv over the whole remaining ``(res/16) x (res/16)`` map: one score per video.
    Only valid for 16 frames (the four stride-2 convs reduce 16 frames to 1).

BN without shift (the paper's "no beta"): a normal batch norm whose ``bias`` is a zero buffer
(not a parameter, not saved), so optimisers, weight decay and clipping never see it.
All TGAN BNs use eps 2e-5 and momentum 0.1 (Chainer's defaults). Initialisation (``init``):
``"uniform-all"`` (the default; the authors' ``*_init-uniform-all`` configs): every weight
U(-0.01, 0.01), biases 0; ``"default"`` (their ``*_zdim-100_no-beta`` configs, which pick
``FrameSeedGeneratorNoBetaInitDefault``, ``VideoGeneratorInitUniform`` and
``VideoDiscriminatorNoBetaInitDefault``): G0 and the critic with Chainer's default initialiser
(LeCun normal, std ``sqrt(1 / fan_in)``, fan_in = ``prod(weight.shape[1:])`` for convs, transposed
convs and linears alike), biases 0, and G1 still U(-0.01, 0.01).

Recipes (``vganzoo info tgan``; ``vganzoo train --recipe NAME``)
    ``paper`` (the default) is the authors' ``TGANUpdaterWGANSVC``: one forward pass (fakes, then
    the critic on the fakes and on the real batch), the generator updated first from
    ``-mean D(fake)``, then the critic from ``mean D(fake) - mean D(real)`` on the same fakes and
    outputs, then singular value clipping after every 5th iteration. ``alternate``: vganzoo's loop
    before issue 20: the critic updated on fresh fakes, then the generator on fresh fakes.

Class conditioning (``num_classes > 0``, our documented variant of the paper's conditional TGAN):
the generator concatenates a learned class embedding (``CLASS_EMBEDDING_DIM`` numbers) to
``z_slow`` wherever ``z_slow`` is used (G0's input and G1's slow branch); the discriminator adds a
projection term ``<embed(y), sum_hw(h)>`` (Miyato and Koyama 2018) on its last feature map when
labels are passed (without labels it returns the unconditional score).

Resolutions 32, 64 (the paper's) and 128 (G1 gains or loses one 2x block). The temporal generator
supports any power-of-two frame count >= 2 (log2(T) stride-2 stages); the model, whose
discriminator is 16-frame only, needs 16.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from einops import rearrange, repeat
from torch import nn

from ..nn import STConv3d
from ..registry import register_component, register_model
from .base import DiscriminatorOutput, VideoGAN, check_labels, draw_labels, require
from .common import build_discriminators, check_shared_config, check_video, num_doublings, scaled_channels

__all__ = [
    "DEFAULT_CONFIG",
    "RECIPE",
    "RECIPES",
    "ImageGenerator",
    "TGANDiscriminator",
    "TGANGenerator",
    "TemporalGenerator",
    "batch_norm_without_shift_",
]

PAPER = "Temporal Generative Adversarial Nets with Singular Value Clipping (Saito et al., ICCV 2017)"
RESOLUTIONS = (32, 64, 128)
BN_EPS = 2e-5
BN_MOMENTUM = 0.1
INIT_SCALE = 0.01  # weights ~ U(-INIT_SCALE, INIT_SCALE)
LEAKY_SLOPE = 0.2
BOTTOM_SIZE = 4  # G1's first feature map is 4x4
D_FRAMES = 16
D_CHANNELS = 64  # first discriminator conv at width 1.0 (64 -> 128 -> 256 -> 512)
D_CONVS = 4
D_DOWNSAMPLE = 2**D_CONVS  # each 3-D conv halves T, H and W
G0_FIRST_CHANNELS = 512
G0_MIN_CHANNELS = 128  # G0's hidden ladder: 512, 256, 128, 128, ...
G1_CHANNELS = 512  # G1's 4x4 map: 256 from the slow branch + 256 from the fast branch
CLASS_EMBEDDING_DIM = 32

DEFAULT_CONFIG: dict[str, Any] = {
    "resolution": 64,
    "frames": 16,
    "channels": 3,
    "width": 1.0,
    "num_classes": 0,
    "dim_z_slow": 100,
    "dim_z_fast": 100,
    "init": "uniform-all",  # or "default" (see the module docstring)
    "discriminators": ["tgan/video"],
}
INITS = ("uniform-all", "default")

_RMSPROP = {"name": "rmsprop", "lr": 5e-5, "alpha": 0.99, "eps": 1e-8}
_BASE_RECIPE: dict[str, Any] = {
    "adversarial_loss": "wasserstein",
    "d_steps": 1,
    "batch_size": 32,
    "optimizers": {"generator": dict(_RMSPROP), "discriminators": dict(_RMSPROP)},
    "regularizers": [{"name": "singular_value_clipping", "every": 5}],
    "ema": None,
    "frame_stride": 1,
}
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {**copy.deepcopy(_BASE_RECIPE), "name": "paper", "loop": "g-first-shared-forward"},
    "alternate": {**copy.deepcopy(_BASE_RECIPE), "name": "alternate", "loop": "alternate"},
}
RECIPE = RECIPES["paper"]


def batch_norm_without_shift_(bn: nn.modules.batchnorm._BatchNorm) -> nn.modules.batchnorm._BatchNorm:
    """Turn an affine batch norm into one with a scale but no shift (``bias`` becomes a zero buffer)."""
    zeros = torch.zeros_like(bn.weight, requires_grad=False).detach()
    del bn.bias
    bn.register_buffer("bias", zeros, persistent=False)
    return bn


class _SingleValueSafeBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that, in training, maps a single value per channel to the shift (as Chainer does).

    G0's first BN sees ``(N, 512, 1)``: with N = 1 PyTorch refuses to normalise one value, while
    the batch statistics make the normalised value exactly 0. Running statistics are not updated
    from such a batch (its variance is undefined).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.numel() == x.shape[1]:
            shape = (1, -1) + (1,) * (x.ndim - 2)
            return (x - x) * self.weight.view(shape) + self.bias.view(
                shape
            )  # keeps the graph, value 0 + shift
        return super().forward(x)


def _uniform_init_(module: nn.Module) -> None:
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, STConv3d)):
            nn.init.uniform_(sub.weight, -INIT_SCALE, INIT_SCALE)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)


def _chainer_default_init_(module: nn.Module) -> None:
    """Chainer's default initialiser (LeCun normal: std sqrt(1 / fan_in)), biases 0."""
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, STConv3d)):
            fan_in = math.prod(sub.weight.shape[1:])  # Chainer's fan-in, for its (and our) layouts
            nn.init.normal_(sub.weight, 0.0, math.sqrt(1.0 / fan_in))
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)


def _is_power_of_two(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


class TemporalGenerator(nn.Module):
    """G0: z_slow (N, in_dim) -> z_fast (N, dim_z_fast, frames), frames a power of two >= 2."""

    def __init__(self, in_dim: int, dim_z_fast: int, frames: int, width: float) -> None:
        super().__init__()
        self.stages = num_doublings(frames, 1)
        in_ch = in_dim
        for i in range(self.stages + 1):
            last = i == self.stages
            out_ch = (
                dim_z_fast if last else scaled_channels(max(G0_MIN_CHANNELS, G0_FIRST_CHANNELS >> i), width)
            )
            kernel, stride, padding = (1, 1, 0) if i == 0 else (4, 2, 1)
            setattr(self, f"dc{i}", nn.ConvTranspose1d(in_ch, out_ch, kernel, stride, padding))
            if not last:
                setattr(
                    self,
                    f"bn{i}",
                    batch_norm_without_shift_(
                        _SingleValueSafeBatchNorm1d(out_ch, eps=BN_EPS, momentum=BN_MOMENTUM)
                    ),
                )
            in_ch = out_ch

    def forward(self, z_slow: torch.Tensor) -> torch.Tensor:
        h = rearrange(z_slow, "n d -> n d 1")
        for i in range(self.stages):
            h = torch.relu(getattr(self, f"bn{i}")(getattr(self, f"dc{i}")(h)))
        return torch.tanh(getattr(self, f"dc{self.stages}")(h))


class ImageGenerator(nn.Module):
    """G1: (z_slow (M, slow_dim), z_fast (M, fast_dim)) -> frames (M, channels, res, res), M = N*T."""

    def __init__(self, slow_dim: int, fast_dim: int, channels: int, resolution: int, width: float) -> None:
        super().__init__()
        self.half = scaled_channels(G1_CHANNELS // 2, width)
        mid = BOTTOM_SIZE * BOTTOM_SIZE * self.half
        self.l0s = nn.Linear(slow_dim, mid, bias=False)
        self.l0f = nn.Linear(fast_dim, mid, bias=False)
        self.bn0s = nn.BatchNorm1d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.bn0f = nn.BatchNorm1d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.blocks = num_doublings(resolution, BOTTOM_SIZE)
        in_ch = 2 * self.half
        for i in range(1, self.blocks + 1):
            out_ch = scaled_channels(G1_CHANNELS >> i, width)
            setattr(self, f"dc{i}", nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=False))
            setattr(self, f"bn{i}", nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=BN_MOMENTUM))
            in_ch = out_ch
        setattr(self, f"dc{self.blocks + 1}", nn.ConvTranspose2d(in_ch, channels, 3, 1, 1, bias=True))

    def forward(self, z_slow: torch.Tensor, z_fast: torch.Tensor) -> torch.Tensor:
        to_map = "m (c h w) -> m c h w"
        h_slow = rearrange(torch.relu(self.bn0s(self.l0s(z_slow))), to_map, h=BOTTOM_SIZE, w=BOTTOM_SIZE)
        h_fast = rearrange(torch.relu(self.bn0f(self.l0f(z_fast))), to_map, h=BOTTOM_SIZE, w=BOTTOM_SIZE)
        h = torch.cat([h_slow, h_fast], dim=1)
        for i in range(1, self.blocks + 1):
            h = torch.relu(getattr(self, f"bn{i}")(getattr(self, f"dc{i}")(h)))
        return torch.tanh(getattr(self, f"dc{self.blocks + 1}")(h))


@register_component("generator", "tgan/generator")
class TGANGenerator(nn.Module):
    """TGAN's generator (G0 + G1).

    Args:
        resolution: 32, 64 or 128.  frames: a power of two >= 2 (16 in the paper).
        channels: 1 or 3.  width: channel multiplier.  num_classes: 0 or the number of classes.
        dim_z_slow, dim_z_fast: latent sizes (100 each).
    """

    def __init__(
        self,
        *,
        resolution: int = 64,
        frames: int = 16,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 0,
        dim_z_slow: int = 100,
        dim_z_fast: int = 100,
        init: str = "uniform-all",
    ) -> None:
        super().__init__()
        check_shared_config(
            "tgan/generator",
            resolution=resolution,
            frames=frames,
            channels=channels,
            width=width,
            num_classes=num_classes,
            resolutions=RESOLUTIONS,
        )
        require(
            frames >= 2 and _is_power_of_two(frames),
            f"tgan/generator: frames must be a power of two >= 2 (one 2x temporal stage each), got {frames}",
        )
        for key, value in (("dim_z_slow", dim_z_slow), ("dim_z_fast", dim_z_fast)):
            require(
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                f"tgan/generator: {key} must be a positive int, got {value!r}",
            )
        self.resolution, self.frames, self.channels, self.num_classes = (
            resolution,
            frames,
            channels,
            num_classes,
        )
        self.dim_z_slow, self.dim_z_fast = dim_z_slow, dim_z_fast
        cond_dim = CLASS_EMBEDDING_DIM if num_classes else 0
        self.class_embedding = nn.Embedding(num_classes, CLASS_EMBEDDING_DIM) if num_classes else None
        self.temporal = TemporalGenerator(dim_z_slow + cond_dim, dim_z_fast, frames, width)
        self.image = ImageGenerator(dim_z_slow + cond_dim, dim_z_fast, channels, resolution, width)
        require(init in INITS, f"tgan/generator: init must be one of {', '.join(INITS)}, got {init!r}")
        (_uniform_init_ if init == "uniform-all" else _chainer_default_init_)(self.temporal)
        _uniform_init_(self.image)  # the default-init configs keep G1 uniform too

    def sample_latents(
        self, n: int, *, generator: torch.Generator, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``z_slow (n, dim_z_slow)`` ~ U[-1, 1] and, when conditional, ``labels (n,)`` (uniform when not
        given)."""
        latents = {"z_slow": torch.rand(n, self.dim_z_slow, generator=generator) * 2 - 1}
        labels = draw_labels(n, self.num_classes, labels, generator)
        if labels is not None:
            latents["labels"] = labels
        return latents

    def forward(self, z_slow: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """z_slow: (N, dim_z_slow); labels: (N,) ints when conditional. Returns (N, C, T, H, W) in [-1, 1]."""
        if (
            not isinstance(z_slow, torch.Tensor)
            or not z_slow.is_floating_point()
            or z_slow.ndim != 2
            or z_slow.shape[1] != self.dim_z_slow
        ):
            got = tuple(z_slow.shape) if isinstance(z_slow, torch.Tensor) else type(z_slow).__name__
            raise ValueError(f"z_slow must be a float tensor of shape (N, {self.dim_z_slow}), got {got}")
        n = z_slow.shape[0]
        labels = check_labels(
            labels, n, self.num_classes, owner="tgan/generator", required=True, device=z_slow.device
        )
        if labels is None:
            z = z_slow
        else:
            z = torch.cat([z_slow, self.class_embedding(labels).to(z_slow.dtype)], dim=1)
        z_fast = self.temporal(z)  # (N, dim_z_fast, T)
        t = z_fast.shape[2]
        frames = self.image(repeat(z, "n d -> (n t) d", t=t), rearrange(z_fast, "n d t -> (n t) d"))
        return rearrange(frames, "(n t) c h w -> n c t h w", t=t)  # t, not n: n may be 0


@register_component("discriminator", "tgan/video")
class TGANDiscriminator(nn.Module):
    """TGAN's 3-D critic: forward(video (N, C, 16, H, W), labels=None) -> logits (N, 1).

    With ``num_classes > 0`` and labels given, adds the projection term (see the module docstring).
    """

    role = "video"

    def __init__(
        self,
        *,
        resolution: int = 64,
        frames: int = 16,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 0,
        init: str = "uniform-all",
    ) -> None:
        super().__init__()
        require(init in INITS, f"tgan/video: init must be one of {', '.join(INITS)}, got {init!r}")
        check_shared_config(
            "tgan/video",
            resolution=resolution,
            frames=frames,
            channels=channels,
            width=width,
            num_classes=num_classes,
            resolutions=RESOLUTIONS,
        )
        require(
            frames == D_FRAMES,
            f"tgan/video: only valid for {D_FRAMES} frames (four stride-2 convs reduce them to one), got "
            f"frames={frames}",
        )
        self.resolution, self.frames, self.channels, self.num_classes = (
            resolution,
            frames,
            channels,
            num_classes,
        )
        in_ch = channels
        for i in range(D_CONVS):
            out_ch = scaled_channels(D_CHANNELS * 2**i, width)
            conv = STConv3d(
                in_ch,
                out_ch,
                4,
                stride=2,
                padding=1,
                bias=True,
                activation="leaky_relu",
                negative_slope=LEAKY_SLOPE,
                norm="batch" if i > 0 else None,
                norm_eps=BN_EPS,
                norm_momentum=BN_MOMENTUM,
            )
            if conv.norm is not None:
                batch_norm_without_shift_(conv.norm)
            setattr(self, f"c{i}", conv)
            in_ch = out_ch
        self.top = resolution // D_DOWNSAMPLE
        setattr(self, f"c{D_CONVS}", nn.Conv2d(in_ch, 1, self.top, 1, 0, bias=True))
        self.class_projection = nn.Embedding(num_classes, in_ch) if num_classes else None
        (_uniform_init_ if init == "uniform-all" else _chainer_default_init_)(self)
        if self.class_projection is not None:
            nn.init.uniform_(self.class_projection.weight, -INIT_SCALE, INIT_SCALE)

    def forward(self, video: torch.Tensor, labels: Any = None) -> DiscriminatorOutput:
        check_video(
            video, name="tgan/video", channels=self.channels, resolution=self.resolution, frames=self.frames
        )
        h = video
        for i in range(D_CONVS):
            h = getattr(self, f"c{i}")(h)
        h = rearrange(h, "n c 1 h w -> n c h w")
        out = getattr(self, f"c{D_CONVS}")(h).flatten(1)  # (N, 1)
        n = video.shape[0]
        labels = check_labels(labels, n, self.num_classes, owner="tgan/video", device=video.device)
        if labels is not None:
            projection = (self.class_projection(labels) * h.sum(dim=(2, 3))).sum(dim=1, keepdim=True)
            out = out + projection
        return DiscriminatorOutput(out)


@register_model("tgan", family="tgan", paper=PAPER, default_config=DEFAULT_CONFIG, recipes=RECIPES)
def tgan(
    *,
    resolution: int,
    frames: int,
    channels: int,
    width: float,
    num_classes: int,
    dim_z_slow: int,
    dim_z_fast: int,
    init: str,
    discriminators: list[str],
) -> VideoGAN:
    """TGAN: temporal + image generator, 3-D critic, WGAN with singular value clipping (ICCV 2017)."""
    shared = {
        "resolution": resolution,
        "frames": frames,
        "channels": channels,
        "width": width,
        "num_classes": num_classes,
    }
    generator = TGANGenerator(**shared, dim_z_slow=dim_z_slow, dim_z_fast=dim_z_fast, init=init)
    discs = build_discriminators("tgan", discriminators, shared, {"init": init})
    return VideoGAN(generator, discs, recipe=copy.deepcopy(RECIPE))
