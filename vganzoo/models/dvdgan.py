"""The attention video GAN after DVD-GAN (Clark, Donahue and Simonyan 2019), zoo-sized.

DVD-GAN has no official code; this is the faithful small variant of /shared/ARCHITECTURES.md.

Generator ``dvdgan/generator``
    ``z ~ N(0, I)^latent_dim`` (120), concatenated with a learned class embedding ``e(y)`` (120)
    when ``num_classes > 0``; ``cond = [z; e(y)]`` feeds an affine map to a ``(ch0, 4, 4)`` map,
    repeated as the input of every frame, and every class-conditional batch norm. Then one group
    per doubling of the resolution::

        ConvGRU over time -> ResBlock -> ResBlock with 2x nearest upsampling

    ResBlocks are BigGAN's (CBN, ReLU, 3x3 conv, CBN, ReLU, 3x3 conv, 1x1 shortcut) applied to every
    frame independently (time folded into the batch). Batch-norm statistics are per frame index,
    not pooled over time (see :mod:`vganzoo.nn.cbn`). A non-causal self-attention over the whole
    ``(T, 4, 4)`` volume follows the first ResBlock of the first group; a separable (height, then
    width, then time) self-attention comes right before the last ResBlock. Output: BN, ReLU, 3x3
    conv, tanh. Channels per group: ``ch * min(8, 2**(n - i))`` with ``n = log2(resolution / 4)``
    groups and ``ch = 32 * width`` (64x64: 256, 256, 128, 64, 32).

Discriminators (BigGAN ResNet blocks: ReLU, 3x3 conv, ReLU, 3x3 conv, 2x average pool, with a 1x1
shortcut; the first block skips the leading ReLU). Block ``i`` of ``n + 1`` has
``ch * min(16, 2**i)`` channels and all but the last downsample. After the blocks: ReLU, sum over
positions, a linear score, plus a projection term ``<embed(y), h>`` when conditional.

* ``dvdgan/spatial`` (role ``"image"``), D_S: scores ``sampled_frames`` (8) full-resolution frames
  chosen at random per video in training (evenly spaced in eval mode, so evaluation is
  deterministic) and sums their scores; with fewer frames in the clip, all of them are scored.
* ``dvdgan/temporal`` (role ``"video"``), D_T: 2x2 average-pools every frame, runs its first two
  blocks as 3-D ResBlocks (3x3x3 convolutions through :class:`~vganzoo.nn.STConv3d`, 2x2x2
  pooling, so it needs ``frames`` divisible by 4), and the rest as 2-D blocks with time folded
  into the batch; the features are summed over time and space before the score.

Every weight layer (convolutions, linear maps, embeddings, attention projections, CBN maps) is
orthogonally initialised and spectrally normalised. Training recipe: hinge loss, two D steps per G
step, Adam with betas (0, 0.999) (as in BigGAN and DVD-GAN) at lr 1e-4 for G and 5e-4 for the
discriminators (DVD-GAN's rates), EMA of G with decay 0.9999. The batch size 16 is zoo-sized
(the paper used 512). The recipe is named ``paper`` (DVD-GAN has no official code, so the loop is
the paper's description: the two D steps each on fresh fakes, then one G step on fresh fakes, the
``alternate`` loop of :mod:`vganzoo.train.loops`); it is the only one.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn
from torch.nn.utils import parametrize

from ..nn import (
    ConditionalBatchNorm,
    ConvGRU,
    FrameBatchNorm,
    SelfAttention,
    SeparableSelfAttention,
    STConv3d,
    spectral_norm,
)
from ..registry import register_component, register_model
from .base import DiscriminatorOutput, VideoGAN, check_labels, require
from .common import build_discriminators, check_shared_config, check_video, num_doublings, scaled_channels

__all__ = ["DVDGANGenerator", "SpatialDiscriminator", "TemporalDiscriminator", "dvdgan"]

LATENT_DIM = 120
BASE_CHANNELS = 32  # "ch" of the zoo-sized default; width multiplies it
SPATIAL_SAMPLED_FRAMES = 8  # k of D_S
SUPPORTED_RESOLUTIONS = (32, 64, 128)
INITIAL_SIZE = 4  # the affine map produces (ch0, 4, 4) per frame
MAX_GENERATOR_MULT = 8
MAX_DISCRIMINATOR_MULT = 16
TEMPORAL_3D_BLOCKS = 2  # D_T's first two blocks are 3-D and halve T each
TEMPORAL_FRAME_MULTIPLE = 2**TEMPORAL_3D_BLOCKS
WEIGHT_LAYERS = (nn.Conv2d, nn.Linear, nn.Embedding, STConv3d)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _scaled_channels(width: float, mult: int) -> int:
    """``ch * mult`` channels at width ``width``, rounded once (``round(32 * width * mult)``, at least 1)."""
    return scaled_channels(BASE_CHANNELS * mult, width)


def orthogonal_spectral_norm_(module: nn.Module) -> nn.Module:
    """Orthogonally initialise (biases to 0) and spectrally normalise every weight layer in place."""
    layers = [m for m in module.modules() if isinstance(m, WEIGHT_LAYERS)]
    for layer in layers:
        if not layer.weight.is_meta:  # meta tensors (parameter counting) hold no values to initialise
            nn.init.orthogonal_(layer.weight)
        bias = getattr(layer, "bias", None)
        if isinstance(bias, nn.Parameter):
            nn.init.zeros_(bias)
        spectral_norm(layer)
    return module


def _per_frame(fn, x: torch.Tensor) -> torch.Tensor:
    """Apply a 2-D layer ``fn`` to every frame of ``x: (N, C, T, H, W)``."""
    t = x.shape[2]
    out = fn(rearrange(x, "n c t h w -> (n t) c h w"))
    return rearrange(out, "(n t) c h w -> n c t h w", t=t)


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def _avg_pool3d(x: torch.Tensor, kernel_size: int | tuple[int, int, int]) -> torch.Tensor:
    """F.avg_pool3d, also for float16 / bfloat16 on the CPU (torch has no such CPU kernel): pooled in
    float32 there and cast back."""
    if x.device.type == "cpu" and x.dtype in (torch.float16, torch.bfloat16):
        return F.avg_pool3d(x.float(), kernel_size).to(x.dtype)
    return F.avg_pool3d(x, kernel_size)


# ------------------------------------------------------------------------------------------------
# generator
# ------------------------------------------------------------------------------------------------
class GeneratorBlock(nn.Module):
    """BigGAN G ResBlock on every frame: x (N, C_in, T, H, W), cond (N, D) -> (N, C_out, T, H', W')."""

    def __init__(
        self, in_channels: int, out_channels: int, cond_dim: int, frames: int, *, upsample: bool
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.norm1 = ConditionalBatchNorm(in_channels, cond_dim, frames)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = ConditionalBatchNorm(out_channels, cond_dim, frames)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        learnable = in_channels != out_channels or upsample
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if learnable else None

    def _conv1(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv1(_upsample(h) if self.upsample else h)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = _upsample(x)
        return self.shortcut(x) if self.shortcut is not None else x

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = _per_frame(self._conv1, F.relu(self.norm1(x, cond)))
        h = _per_frame(self.conv2, F.relu(self.norm2(h, cond)))
        return h + _per_frame(self._shortcut, x)


class GeneratorGroup(nn.Module):
    """ConvGRU over time -> ResBlock -> [attention] -> [separable attention] -> ResBlock with 2x
    upsampling."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        cond_dim: int,
        frames: int,
        *,
        full_attention: bool,
        separable_attention: bool,
    ) -> None:
        super().__init__()
        self.recurrent = ConvGRU(in_channels, in_channels)
        self.block1 = GeneratorBlock(in_channels, in_channels, cond_dim, frames, upsample=False)
        self.attention = SelfAttention(in_channels) if full_attention else None
        self.separable_attention = SeparableSelfAttention(in_channels) if separable_attention else None
        self.block2 = GeneratorBlock(in_channels, out_channels, cond_dim, frames, upsample=True)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x: (N, C_in, T, H, W) -> (N, C_out, T, 2H, 2W)."""
        x = self.block1(self.recurrent(x), cond)
        if self.attention is not None:
            x = self.attention(x)
        if self.separable_attention is not None:
            x = self.separable_attention(x)
        return self.block2(x, cond)


@register_component("generator", "dvdgan/generator")
class DVDGANGenerator(nn.Module):
    """DVD-GAN-style generator. See the module docstring for the layers.

    Latent codes (``forward`` keywords, drawn by :meth:`sample_latents`):
        z: ``(N, latent_dim)`` float, ``N(0, I)``.
        labels: ``(N,)`` int64 class indices in ``[0, num_classes)``; required when
            ``num_classes > 0``, must be None otherwise.

    Output: ``(N, channels, frames, resolution, resolution)`` in [-1, 1].
    """

    def __init__(
        self,
        *,
        resolution: int = 64,
        frames: int = 16,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 0,
        latent_dim: int = LATENT_DIM,
    ) -> None:
        super().__init__()
        check_shared_config(
            "dvdgan/generator",
            resolution=resolution,
            frames=frames,
            channels=channels,
            width=width,
            num_classes=num_classes,
            resolutions=SUPPORTED_RESOLUTIONS,
        )
        require(
            isinstance(latent_dim, int) and latent_dim >= 1,
            f"dvdgan/generator: latent_dim must be a positive int, got {latent_dim!r}",
        )
        self.resolution, self.frames, self.channels, self.num_classes = (
            resolution,
            frames,
            channels,
            num_classes,
        )
        self.latent_dim = latent_dim
        num_groups = num_doublings(resolution, INITIAL_SIZE)
        mults = [min(MAX_GENERATOR_MULT, 2 ** (num_groups - i)) for i in range(num_groups + 1)]
        widths = [_scaled_channels(width, m) for m in mults]
        self.group_channels = tuple(widths)
        cond_dim = latent_dim * (2 if num_classes else 1)
        self.class_embedding = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.affine = nn.Linear(cond_dim, widths[0] * INITIAL_SIZE * INITIAL_SIZE)
        self.groups = nn.ModuleList(
            GeneratorGroup(
                widths[i],
                widths[i + 1],
                cond_dim,
                frames,
                full_attention=(i == 0),
                separable_attention=(i == num_groups - 1),
            )
            for i in range(num_groups)
        )
        self.out_norm = FrameBatchNorm(widths[-1], frames)
        self.out_conv = nn.Conv2d(widths[-1], channels, 3, padding=1)
        orthogonal_spectral_norm_(self)

    def sample_latents(
        self, n: int, *, generator: torch.Generator, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Draw ``{"z": (n, latent_dim)}`` (plus ``"labels": (n,)`` when conditional) on the CPU."""
        z = torch.randn(n, self.latent_dim, generator=generator)
        if labels is None and self.num_classes:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator)
        labels = check_labels(labels, n, self.num_classes, owner="dvdgan/generator")
        return {"z": z} if labels is None else {"z": z, "labels": labels}

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z: (N, latent_dim), labels: (N,) or None -> video (N, C, T, H, W) in [-1, 1]."""
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.latent_dim:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"dvdgan/generator: z must have shape (N, {self.latent_dim}), got {shape}")
        labels = check_labels(
            labels, z.shape[0], self.num_classes, owner="dvdgan/generator", required=True, device=z.device
        )
        # the ConvGRUs reuse their weights at every frame: normalise each weight once per forward
        with parametrize.cached():
            cond = z if self.class_embedding is None else torch.cat([z, self.class_embedding(labels)], dim=1)
            x = rearrange(self.affine(cond), "n (c h w) -> n c h w", h=INITIAL_SIZE, w=INITIAL_SIZE)
            x = repeat(x, "n c h w -> n c t h w", t=self.frames)
            for group in self.groups:
                x = group(x, cond)
            x = F.relu(self.out_norm(x))
            return torch.tanh(_per_frame(self.out_conv, x))


# ------------------------------------------------------------------------------------------------
# discriminators
# ------------------------------------------------------------------------------------------------
class DiscriminatorBlock(nn.Module):
    """BigGAN D ResBlock, 2-D (x: (N, C, H, W)) or 3-D (x: (N, C, T, H, W), convolutions via STConv3d)."""

    def __init__(
        self, in_channels: int, out_channels: int, *, downsample: bool, preactivation: bool, dims: int = 2
    ) -> None:
        super().__init__()
        self.downsample, self.preactivation, self.dims = downsample, preactivation, dims
        if dims == 3:
            self.conv1 = STConv3d(in_channels, out_channels, 3, padding=1, activation="relu")
            self.conv2 = STConv3d(out_channels, out_channels, 3, padding=1)
        else:
            self.conv1 = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU())
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        learnable = in_channels != out_channels or downsample
        conv = STConv3d if dims == 3 else nn.Conv2d
        self.shortcut = conv(in_channels, out_channels, 1) if learnable else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if not self.downsample:
            return x
        return _avg_pool3d(x, 2) if self.dims == 3 else F.avg_pool2d(x, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._pool(self.conv2(self.conv1(h)))
        shortcut = x
        if self.shortcut is not None:
            # BigGAN: convolve before pooling after a preactivation, pool first on the raw input
            shortcut = self._pool(self.shortcut(x)) if self.preactivation else self.shortcut(self._pool(x))
        return h + shortcut


def _discriminator_blocks(
    input_resolution: int, in_channels: int, width: float, num_3d: int
) -> nn.ModuleList:
    num_down = num_doublings(input_resolution, INITIAL_SIZE)
    widths = [_scaled_channels(width, min(MAX_DISCRIMINATOR_MULT, 2**i)) for i in range(num_down + 1)]
    blocks = []
    for i, out_channels in enumerate(widths):
        blocks.append(
            DiscriminatorBlock(
                in_channels if i == 0 else widths[i - 1],
                out_channels,
                downsample=i < num_down,
                preactivation=i > 0,
                dims=3 if i < num_3d else 2,
            )
        )
    return nn.ModuleList(blocks)


class _ScoreHead(nn.Module):
    """ReLU, sum over positions (done by the caller), linear score + projection ``<embed(y), h>``."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, 1)
        self.embedding = nn.Embedding(num_classes, features) if num_classes else None

    def forward(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """h: (B, F) pooled features, labels: (B,) or None -> scores (B,)."""
        score = self.linear(h).flatten()
        if self.embedding is not None:
            score = score + (self.embedding(labels) * h).sum(dim=1)
        return score


@register_component("discriminator", "dvdgan/spatial")
class SpatialDiscriminator(nn.Module):
    """D_S: a 2-D ResNet scoring ``sampled_frames`` frames of each clip; the scores are summed.

    ``forward(video (N, C, T, H, W), labels (N,) | None) -> DiscriminatorOutput(logits (N,))``.
    """

    role = "image"

    def __init__(
        self,
        *,
        resolution: int = 64,
        frames: int = 16,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 0,
        sampled_frames: int = SPATIAL_SAMPLED_FRAMES,
    ) -> None:
        super().__init__()
        check_shared_config(
            "dvdgan/spatial",
            resolution=resolution,
            frames=frames,
            channels=channels,
            width=width,
            num_classes=num_classes,
            resolutions=SUPPORTED_RESOLUTIONS,
        )
        require(
            isinstance(sampled_frames, int) and sampled_frames >= 1,
            f"dvdgan/spatial: sampled_frames must be a positive int, got {sampled_frames!r}",
        )
        self.resolution, self.frames, self.channels, self.num_classes = (
            resolution,
            frames,
            channels,
            num_classes,
        )
        self.sampled_frames = sampled_frames
        self.blocks = _discriminator_blocks(resolution, channels, width, num_3d=0)
        self.head = _ScoreHead(self.blocks[-1].conv2.out_channels, num_classes)
        orthogonal_spectral_norm_(self)

    def frame_indices(self, n: int, t: int, device: torch.device) -> torch.Tensor:
        """(n, k) frame indices, k = min(sampled_frames, t): random per clip in training, evenly spaced in
        eval."""
        k = min(self.sampled_frames, t)
        if self.training:
            return torch.rand(n, t, device=device).argsort(dim=1)[:, :k]
        evenly = torch.linspace(0, t - 1, k, device=device).round().long()
        return evenly.expand(n, k)

    def forward(self, video: torch.Tensor, labels: torch.Tensor | None = None) -> DiscriminatorOutput:
        check_video(video, name="dvdgan/spatial", channels=self.channels, resolution=self.resolution)
        n, c, t, h, w = video.shape
        labels = check_labels(
            labels, n, self.num_classes, owner="dvdgan/spatial", required=True, device=video.device
        )
        index = self.frame_indices(n, t, video.device)
        k = index.shape[1]
        frames = video.gather(2, index.view(n, 1, k, 1, 1).expand(n, c, k, h, w))
        x = rearrange(frames, "n c k h w -> (n k) c h w")
        for block in self.blocks:
            x = block(x)
        features = F.relu(x).sum(dim=(2, 3))  # (N*k, F)
        frame_labels = None if labels is None else labels.repeat_interleave(k)
        scores = self.head(features, frame_labels)
        return DiscriminatorOutput(rearrange(scores, "(n k) -> n k", k=k).sum(dim=1))


@register_component("discriminator", "dvdgan/temporal")
class TemporalDiscriminator(nn.Module):
    """D_T: 2x2-average-pooled clip, two 3-D ResBlocks, then 2-D ResBlocks with time in the batch.

    ``forward(video (N, C, T, H, W), labels (N,) | None) -> DiscriminatorOutput(logits (N,))``;
    ``T`` must be a positive multiple of 4.
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
    ) -> None:
        super().__init__()
        check_shared_config(
            "dvdgan/temporal",
            resolution=resolution,
            frames=frames,
            channels=channels,
            width=width,
            num_classes=num_classes,
            resolutions=SUPPORTED_RESOLUTIONS,
        )
        require(
            frames % TEMPORAL_FRAME_MULTIPLE == 0,
            f"dvdgan/temporal: frames must be a multiple of {TEMPORAL_FRAME_MULTIPLE} (its two 3-D blocks "
            f"halve time twice), got {frames}",
        )
        self.resolution, self.frames, self.channels, self.num_classes = (
            resolution,
            frames,
            channels,
            num_classes,
        )
        self.blocks = _discriminator_blocks(resolution // 2, channels, width, num_3d=TEMPORAL_3D_BLOCKS)
        self.head = _ScoreHead(self.blocks[-1].conv2.out_channels, num_classes)
        orthogonal_spectral_norm_(self)

    def forward(self, video: torch.Tensor, labels: torch.Tensor | None = None) -> DiscriminatorOutput:
        check_video(video, name="dvdgan/temporal", channels=self.channels, resolution=self.resolution)
        n, _, t, _, _ = video.shape
        if t < 1 or t % TEMPORAL_FRAME_MULTIPLE:
            raise ValueError(
                f"dvdgan/temporal: the clip must have a positive multiple of {TEMPORAL_FRAME_MULTIPLE} "
                f"frames, got {t}"
            )
        labels = check_labels(
            labels, n, self.num_classes, owner="dvdgan/temporal", required=True, device=video.device
        )
        x = _avg_pool3d(video, (1, 2, 2))
        for block in self.blocks[:TEMPORAL_3D_BLOCKS]:
            x = block(x)
        t_left = x.shape[2]
        x = rearrange(x, "n c t h w -> (n t) c h w")
        for block in self.blocks[TEMPORAL_3D_BLOCKS:]:
            x = block(x)
        features = rearrange(F.relu(x).sum(dim=(2, 3)), "(n t) f -> n t f", t=t_left).sum(dim=1)
        return DiscriminatorOutput(self.head(features, labels))


# ------------------------------------------------------------------------------------------------
# model
# ------------------------------------------------------------------------------------------------
DEFAULT_CONFIG: dict[str, Any] = {
    "resolution": 64,
    "frames": 16,
    "channels": 3,
    "width": 1.0,
    "num_classes": 0,
    "latent_dim": LATENT_DIM,
    "sampled_frames": SPATIAL_SAMPLED_FRAMES,
    "discriminators": ["dvdgan/spatial", "dvdgan/temporal"],
}

RECIPE: dict[str, Any] = {
    "adversarial_loss": "hinge",
    "d_steps": 2,
    "batch_size": 16,
    "optimizers": {
        "generator": {"name": "adam", "lr": 1e-4, "betas": [0.0, 0.999], "weight_decay": 0.0},
        "discriminators": {"name": "adam", "lr": 5e-4, "betas": [0.0, 0.999], "weight_decay": 0.0},
    },
    "regularizers": [],
    "ema": {"decay": 0.9999},
    "frame_stride": 1,
    "name": "paper",
    "loop": "alternate",  # no official code: the paper's two D steps, then one G step on fresh fakes
}


@register_model(
    "dvdgan",
    family="dvdgan",
    paper="Clark, Donahue, Simonyan: Adversarial Video Generation on Complex Datasets (2019), "
    "arXiv:1907.06571",
    default_config=DEFAULT_CONFIG,
    recipes={"paper": RECIPE},
)
def dvdgan(
    *,
    resolution: int,
    frames: int,
    channels: int,
    width: float,
    num_classes: int,
    latent_dim: int,
    sampled_frames: int,
    discriminators: Sequence[str],
) -> VideoGAN:
    """Attention video GAN after DVD-GAN: ConvGRU + ResBlock generator with self-attention, dual D."""
    shared = {
        "resolution": resolution,
        "frames": frames,
        "channels": channels,
        "width": width,
        "num_classes": num_classes,
    }
    generator = DVDGANGenerator(**shared, latent_dim=latent_dim)
    discs = build_discriminators("dvdgan", discriminators, shared, {"sampled_frames": sampled_frames})
    return VideoGAN(generator, discs, recipe=copy.deepcopy(RECIPE))
