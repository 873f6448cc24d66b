"""MoCoGAN (Tulyakov et al., CVPR 2018): content / motion decomposition with a recurrent motion code.

Generator (``mocogan/rnn``)
    One content code per video, an optional one-hot category, and a motion code per frame from a
    GRUCell whose initial state is random; each frame is ``concat(z_content, z_category, z_motion)``
    through a DCGAN-style image generator. Its state_dict keys and shapes are the original's
    (``recurrent.*``, ``main.0.weight``, ``main.1.*``, ...), so a converted original checkpoint
    (see :mod:`vganzoo.convert.mocogan`) loads with ``strict=True``.

Discriminators
    ``mocogan/patch-image`` (one random frame per video -> 4x4 patch logits),
    ``mocogan/image`` (one random frame per video -> one logit; the original code's ImageDiscriminator),
    ``mocogan/categorical-image`` (the same plus class logits for that frame: a frame-level category loss),
    ``mocogan/patch-video`` (3-D, patch logits), ``mocogan/video`` and
    ``mocogan/categorical-video`` (3-D, one logit, plus class logits for the categorical one;
    16 frames only). An instance-noise layer (``noise_sigma``) precedes every body conv, and the
    head conv of the patch image discriminator only, as in the original code (``noise_layout:
    "paper"``); ``"every-conv"`` puts one before every head as well: the layout vganzoo built before
    issue 20, which configs saved without the key (``mocogan-rnn.digits``) rebuild. The head's layer
    is an identity slot in the paper layout, so both layouts have the same state_dict keys.

Recipes (``vganzoo info mocogan-rnn``; ``vganzoo train --recipe NAME``)
    ``paper`` (the default) is the authors' ``trainers.py`` loop: the image D updated on a real
    image batch and fresh fakes, then the video D on a real video batch and fresh fakes with the
    category cross-entropy on the *real* clips' labels only, then G on a fresh fake batch for the
    image D and a separate fresh fake batch for the video D (BCE with target real on both, plus the
    InfoGAN cross-entropy of the video D's class logits on the fakes' drawn labels).
    ``fake-category-loss``: the D step's category cross-entropy also on the fakes' drawn labels.
    ``shared-fake-batch``: one fake batch in the G step, cut to each discriminator's batch size.
    ``zoo-v1``: both differences: the loop every vganzoo recipe followed before issue 20 (recipes
    saved without the loop keys, such as ``mocogan-rnn.digits``'s, still mean it).
    One difference remains in every recipe: the original's ``sample_images`` renders only the frames
    it shows the image D (so G's batch norm sees statistics of those 10 frames), while here G renders
    whole clips and the image D scores one random frame of each.

Resolutions 32, 64 (the paper's) and 128: the number of 2x up/down-sampling blocks follows the
resolution, the channel ladder keeps the paper's pattern (``ngf * 2**k``).

The model ``mocogan-rnn`` builds the generator and the discriminators listed in its config's
``discriminators`` key (any registered discriminator names, see :mod:`vganzoo.models.common`).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from einops import rearrange, repeat
from torch import nn

from ..nn import InstanceNoise, STConv3d
from ..registry import PretrainedSpec, register_component, register_model
from .base import DiscriminatorOutput, VideoGAN, check_labels, draw_labels, one_hot, require
from .common import (
    build_discriminators,
    check_latent,
    check_positive_ints,
    check_shared_config,
    check_video,
    num_doublings,
    scaled_channels,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DIGITS_WEIGHTS",
    "RECIPE",
    "RECIPES",
    "CategoricalVideoDiscriminator",
    "ImageDiscriminator",
    "MoCoGANGenerator",
    "PatchImageDiscriminator",
    "PatchVideoDiscriminator",
    "VideoDiscriminator",
]

PAPER = "MoCoGAN: Decomposing Motion and Content for Video Generation (Tulyakov et al., CVPR 2018)"
RESOLUTIONS = (32, 64, 128)
BASE_CHANNELS = 64  # ngf / ndf at width 1.0
BOTTOM_SIZE = 4  # spatial size of the first generator feature map and of the patch logits
KERNEL = 4
LEAKY_SLOPE = 0.2
VIDEO_D_FRAMES = 16  # the (categorical) video discriminator's head covers exactly this many frames
TIME_KERNEL_SHRINK = KERNEL - 1  # each unpadded temporal conv (kernel 4, stride 1) removes 3 frames

DEFAULT_CONFIG: dict[str, Any] = {
    "resolution": 64,
    "frames": 16,
    "channels": 3,
    "width": 1.0,
    "num_classes": 6,  # dim_z_category of the paper's code; 0 = no categorical code
    "dim_z_content": 50,
    "dim_z_motion": 10,
    "noise_sigma": 0.0,  # instance noise before discriminator convs (0 = off)
    "noise_layout": "paper",  # or "every-conv": noise before every head conv too (see the docstring)
    "discriminators": ["mocogan/patch-image", "mocogan/categorical-video"],
}
NOISE_LAYOUTS = ("paper", "every-conv")
# configs saved before "noise_layout" existed were built with noise before every head conv
SAVED_CONFIG_DEFAULTS = {"noise_layout": "every-conv"}

_ADAM = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 1e-5}
_BASE_RECIPE: dict[str, Any] = {
    "adversarial_loss": "bce",
    "d_steps": 1,
    "batch_size": 3,
    "optimizers": {"generator": dict(_ADAM), "discriminators": dict(_ADAM)},
    "discriminator_batch_size": {"image": 10, "video": 3},
    "regularizers": [],
    "category_loss_weight": 1.0,
    "ema": None,
    "frame_stride": 2,
    "loop": "alternate",
}
# name -> (fake batches of the G step, category loss of the D step); see the module docstring
_LOOP_VARIANTS = {
    "paper": ("per-discriminator", "real"),
    "fake-category-loss": ("per-discriminator", "real-and-fake"),
    "shared-fake-batch": ("shared", "real"),
    "zoo-v1": ("shared", "real-and-fake"),
}
RECIPES: dict[str, dict[str, Any]] = {
    name: {**copy.deepcopy(_BASE_RECIPE), "name": name, "g_fake_batches": g_fakes, "d_category_loss": d_cat}
    for name, (g_fakes, d_cat) in _LOOP_VARIANTS.items()
}
RECIPE = RECIPES["paper"]


@register_component("generator", "mocogan/rnn")
class MoCoGANGenerator(nn.Module):
    """MoCoGAN's video generator.

    Args:
        resolution: 32, 64 or 128.
        frames: default number of frames drawn by :meth:`sample_latents` (any T >= 1 works in forward).
        channels: 1 or 3.
        width: channel multiplier (``ngf = round(64 * width)``).
        num_classes: size of the one-hot categorical code (``dim_z_category``); 0 = none.
        dim_z_content: content code size (50).
        dim_z_motion: motion code size (10), also the GRU's input noise size.
    """

    # latent names for content/motion walks (vganzoo.sampling.latent_walk, `vganzoo sample --interpolate`)
    content_latents = ("z_content",)
    motion_latents = ("motion_noise", "motion_h0")

    def __init__(
        self,
        *,
        resolution: int = 64,
        frames: int = 16,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 6,
        dim_z_content: int = 50,
        dim_z_motion: int = 10,
    ) -> None:
        super().__init__()
        check_shared_config(
            "mocogan/rnn",
            resolution=resolution,
            frames=frames,
            channels=channels,
            width=width,
            num_classes=num_classes,
            resolutions=RESOLUTIONS,
        )
        check_positive_ints("mocogan/rnn", dim_z_content=dim_z_content, dim_z_motion=dim_z_motion)
        self.resolution, self.frames, self.channels = resolution, frames, channels
        self.num_classes, self.dim_z_content, self.dim_z_motion = num_classes, dim_z_content, dim_z_motion
        self.dim_z = dim_z_content + num_classes + dim_z_motion

        self.recurrent = nn.GRUCell(dim_z_motion, dim_z_motion)
        ngf = scaled_channels(BASE_CHANNELS, width)
        blocks = num_doublings(resolution, BOTTOM_SIZE)  # BN+ReLU blocks; the last 2x step is the output conv
        layers: list[nn.Module] = []
        in_ch = self.dim_z
        for i in range(blocks):
            out_ch = ngf * 2 ** (blocks - 1 - i)
            stride, padding = (1, 0) if i == 0 else (2, 1)  # 1x1 -> 4x4, then 2x per block
            layers += [
                nn.ConvTranspose2d(in_ch, out_ch, KERNEL, stride, padding, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
            ]
            in_ch = out_ch
        layers += [nn.ConvTranspose2d(in_ch, channels, KERNEL, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    # -- latents ---------------------------------------------------------------------------------
    def sample_latents(
        self,
        n: int,
        *,
        generator: torch.Generator,
        labels: torch.Tensor | None = None,
        frames: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Draw every random input on the CPU from ``generator``.

        Returns ``z_content (n, dim_z_content)``, ``motion_h0 (n, dim_z_motion)``, ``motion_noise
        (n, T, dim_z_motion)`` (all N(0, I)) and, when conditional, ``labels (n,)`` (uniform when not given).
        """
        frames = self.frames if frames is None else frames
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
            raise ValueError(f"frames must be a positive int, got {frames!r}")
        latents = {
            "z_content": torch.randn(n, self.dim_z_content, generator=generator),
            "motion_h0": torch.randn(n, self.dim_z_motion, generator=generator),
            "motion_noise": torch.randn(n, frames, self.dim_z_motion, generator=generator),
        }
        labels = draw_labels(n, self.num_classes, labels, generator)
        if labels is not None:
            latents["labels"] = labels
        return latents

    def motion_codes(self, motion_noise: torch.Tensor, motion_h0: torch.Tensor) -> torch.Tensor:
        """Unroll the GRU: ``h_t = GRU(e_t, h_{t-1})``; returns ``(N, T, dim_z_motion)`` = h_1..h_T."""
        h = motion_h0
        codes = []
        for e_t in motion_noise.unbind(dim=1):
            h = self.recurrent(e_t, h)
            codes.append(h)
        return torch.stack(codes, dim=1)

    def category_code(
        self, n: int, labels: Any, z_category: torch.Tensor | None, device: torch.device
    ) -> torch.Tensor | None:
        """``(n, num_classes)`` one-hot (from ``labels``) or the given ``z_category``; None when
        unconditional."""
        if self.num_classes == 0:
            if labels is not None or z_category is not None:
                raise ValueError("labels / z_category: this generator is unconditional (num_classes=0)")
            return None
        if (labels is None) == (z_category is None):
            raise ValueError(
                f"pass exactly one of labels (N,) ints in [0, {self.num_classes - 1}] or z_category (N, "
                f"{self.num_classes})"
            )
        if z_category is not None:
            return check_latent(z_category, "z_category", (n, self.num_classes))
        labels = check_labels(labels, n, self.num_classes)
        return one_hot(labels, self.num_classes).to(device)

    # -- forward ---------------------------------------------------------------------------------
    def forward(
        self,
        z_content: torch.Tensor,
        motion_noise: torch.Tensor,
        motion_h0: torch.Tensor,
        labels: Any = None,
        z_category: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Generate videos from explicit codes.

        Args:
            z_content: (N, dim_z_content), one content code per video.
            motion_noise: (N, T, dim_z_motion), the GRU's input e_t per frame (T >= 1).
            motion_h0: (N, dim_z_motion), the GRU's initial state.
            labels: (N,) class indices (conditional only), or
            z_category: (N, num_classes) category codes (one-hot, or soft for interpolation).

        Returns:
            (N, channels, T, resolution, resolution) in [-1, 1].
        """
        check_latent(z_content, "z_content", ("N", self.dim_z_content))
        n = z_content.shape[0]
        check_latent(motion_noise, "motion_noise", (n, "T", self.dim_z_motion))
        check_latent(motion_h0, "motion_h0", (n, self.dim_z_motion))
        frames = motion_noise.shape[1]
        if frames < 1:
            raise ValueError("motion_noise must have at least one frame (shape (N, T>=1, dim_z_motion))")
        category = self.category_code(n, labels, z_category, z_content.device)

        motion = self.motion_codes(motion_noise, motion_h0)  # (N, T, dm)
        parts = [repeat(z_content, "n d -> n t d", t=frames)]
        if category is not None:
            parts.append(repeat(category.to(z_content.dtype), "n k -> n t k", t=frames))
        parts.append(motion)
        z = rearrange(torch.cat(parts, dim=2), "n t d -> (n t) d 1 1")
        images = self.main(z)  # (N*T, C, H, W)
        return rearrange(images, "(n t) c h w -> n c t h w", t=frames)  # t, not n: n may be 0


# ------------------------------------------------------------------------------------------------
# Discriminators
# ------------------------------------------------------------------------------------------------
def _image_layers(channels: int, ndf: int, count: int, noise_sigma: float) -> tuple[list[nn.Module], int]:
    """``count`` 2-D blocks: conv k4 s2 p1, BN (not the first), LeakyReLU(0.2); returns (layers, channels)."""
    layers: list[nn.Module] = []
    in_ch = channels
    for i in range(count):
        out_ch = ndf * 2**i
        layers += [InstanceNoise(noise_sigma), nn.Conv2d(in_ch, out_ch, KERNEL, 2, 1, bias=False)]
        if i > 0:
            layers.append(nn.BatchNorm2d(out_ch))
        layers.append(nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
        in_ch = out_ch
    return layers, in_ch


def _head_sigma(noise_sigma: float, head_noise: bool | None, *, paper: bool) -> float:
    """The noise before a head conv: ``noise_sigma`` where ``head_noise`` (None: where the original
    has a layer there, ``paper``), else 0 (the layer stays as an identity, keeping the state_dict keys)."""
    return noise_sigma if (paper if head_noise is None else head_noise) else 0.0


class _FrameDiscriminator(nn.Module):
    """Scores one randomly chosen frame per video (training randomness: torch's global RNG)."""

    role = "image"
    component = ""

    def __init__(
        self, *, resolution: int, frames: int, channels: int, width: float, num_classes: int
    ) -> None:
        super().__init__()
        check_shared_config(
            self.component,
            resolution=resolution,
            frames=frames,
            channels=channels,
            width=width,
            num_classes=num_classes,
            resolutions=RESOLUTIONS,
        )
        self.resolution, self.channels = resolution, channels

    def scored_frames(self, video: torch.Tensor) -> torch.Tensor:
        """One random frame of each checked video: (N, C, T, H, W) -> (N, C, H, W)."""
        check_video(video, name=self.component, channels=self.channels, resolution=self.resolution)
        n, _, t = video.shape[:3]
        index = torch.randint(0, t, (n,), device=video.device)
        return video[torch.arange(n, device=video.device), :, index]

    def forward(self, video: torch.Tensor, labels: Any = None) -> DiscriminatorOutput:
        return DiscriminatorOutput(self.main(self.scored_frames(video)).flatten(1))


@register_component("discriminator", "mocogan/patch-image")
class PatchImageDiscriminator(_FrameDiscriminator):
    """Scores one randomly chosen frame per video with 4x4 patch logits.

    forward(video (N, C, T, H, W), labels=None) -> logits (N, 16); labels are ignored.
    """

    component = "mocogan/patch-image"

    def __init__(
        self,
        *,
        resolution: int = 64,
        frames: int = 16,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 0,
        noise_sigma: float = 0.0,
        head_noise: bool | None = None,
    ) -> None:
        super().__init__(
            resolution=resolution, frames=frames, channels=channels, width=width, num_classes=num_classes
        )
        convs = num_doublings(resolution, BOTTOM_SIZE)  # the last one is the head
        layers, in_ch = _image_layers(channels, scaled_channels(BASE_CHANNELS, width), convs - 1, noise_sigma)
        head_sigma = _head_sigma(noise_sigma, head_noise, paper=True)
        layers += [InstanceNoise(head_sigma), nn.Conv2d(in_ch, 1, KERNEL, 2, 1, bias=False)]
        self.main = nn.Sequential(*layers)


@register_component("discriminator", "mocogan/image")
class ImageDiscriminator(_FrameDiscriminator):
    """Scores one randomly chosen frame per video with one logit for the whole frame.

    The original code's non-patch ``ImageDiscriminator``: strided blocks down to 4x4, then a 4x4
    convolution to one logit. Its receptive field is the whole frame, so it can tell one object from
    several (the patch discriminator judges 4x4 local patches independently, which lets a generator
    scatter pieces of small objects, e.g. digits at 32x32, over the frame).

    forward(video (N, C, T, H, W), labels=None) -> logits (N, 1); labels are ignored.
    """

    component = "mocogan/image"

    def __init__(
        self,
        *,
        resolution: int = 64,
        frames: int = 16,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 0,
        noise_sigma: float = 0.0,
        head_noise: bool | None = None,
    ) -> None:
        super().__init__(
            resolution=resolution, frames=frames, channels=channels, width=width, num_classes=num_classes
        )
        blocks = num_doublings(resolution, BOTTOM_SIZE)
        layers, in_ch = _image_layers(channels, scaled_channels(BASE_CHANNELS, width), blocks, noise_sigma)
        head_sigma = _head_sigma(noise_sigma, head_noise, paper=False)
        layers += [InstanceNoise(head_sigma), nn.Conv2d(in_ch, 1, KERNEL, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)


@register_component("discriminator", "mocogan/categorical-image")
class CategoricalImageDiscriminator(ImageDiscriminator):
    """The whole-frame image discriminator plus ``num_classes`` class logits for the frame it scores.

    A frame-level category loss: every generated frame must show its clip's category (real frames
    are trained on their video's label), so the generator is pushed to keep one identity through a
    clip, which a clip-level categorical video D checks only as a whole. The class head is a second
    4x4 convolution on the same features, so the body and real/fake head have exactly
    ``mocogan/image``'s parameters (its weights load into this discriminator, e.g. for fine-tuning).

    forward(video (N, C, T, H, W), labels=None) -> DiscriminatorOutput(logits (N, 1),
    class_logits (N, num_classes), or None when num_classes is 0); labels are ignored.
    """

    component = "mocogan/categorical-image"

    def __init__(
        self,
        *,
        resolution: int = 64,
        frames: int = 16,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 6,
        noise_sigma: float = 0.0,
        head_noise: bool | None = None,
    ) -> None:
        super().__init__(
            resolution=resolution,
            frames=frames,
            channels=channels,
            width=width,
            num_classes=num_classes,
            noise_sigma=noise_sigma,
            head_noise=head_noise,
        )
        self.categories = num_classes
        head = self.main[-1]
        self.class_head = (
            nn.Conv2d(head.in_channels, num_classes, KERNEL, 1, 0, bias=True) if num_classes else None
        )

    def forward(self, video: torch.Tensor, labels: Any = None) -> DiscriminatorOutput:
        features = self.main[:-1](self.scored_frames(video))  # the body and the head's instance noise
        logits = self.main[-1](features).flatten(1)
        if self.class_head is None:
            return DiscriminatorOutput(logits)
        return DiscriminatorOutput(logits, self.class_head(features).flatten(1))


def _video_blocks(channels: int, ndf: int, count: int, noise_sigma: float) -> tuple[list[nn.Module], int]:
    """``count`` 3-D blocks: conv k4, stride (1,2,2), padding (0,1,1), BN (not the first), LeakyReLU."""
    layers: list[nn.Module] = []
    in_ch = channels
    for i in range(count):
        out_ch = ndf * 2**i
        layers += [
            InstanceNoise(noise_sigma),
            STConv3d(
                in_ch,
                out_ch,
                KERNEL,
                stride=(1, 2, 2),
                padding=(0, 1, 1),
                bias=False,
                activation="leaky_relu",
                negative_slope=LEAKY_SLOPE,
                norm="batch" if i > 0 else None,
            ),
        ]
        in_ch = out_ch
    return layers, in_ch


@register_component("discriminator", "mocogan/patch-video")
class PatchVideoDiscriminator(nn.Module):
    """3-D patch discriminator: forward(video (N, C, T, H, W)) -> logits (N, (T-12) * 4 * 4) at 64 px.

    Each conv removes 3 frames, so ``frames`` must be at least ``3 * convs + 1`` (13 at 64x64).
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
        noise_sigma: float = 0.0,
        head_noise: bool | None = None,
    ) -> None:
        super().__init__()
        check_shared_config(
            "mocogan/patch-video",
            resolution=resolution,
            frames=frames,
            channels=channels,
            width=width,
            num_classes=num_classes,
            resolutions=RESOLUTIONS,
        )
        convs = num_doublings(resolution, BOTTOM_SIZE)
        min_frames = TIME_KERNEL_SHRINK * convs + 1
        require(
            frames >= min_frames,
            f"mocogan/patch-video: needs at least {min_frames} frames at resolution {resolution}, got "
            f"frames={frames}",
        )
        self.resolution, self.channels = resolution, channels
        layers, in_ch = _video_blocks(channels, scaled_channels(BASE_CHANNELS, width), convs - 1, noise_sigma)
        layers += [
            InstanceNoise(_head_sigma(noise_sigma, head_noise, paper=False)),
            STConv3d(in_ch, 1, KERNEL, stride=(1, 2, 2), padding=(0, 1, 1), bias=False),
        ]
        self.main = nn.Sequential(*layers)
        self.min_frames = min_frames

    def forward(self, video: torch.Tensor, labels: Any = None) -> DiscriminatorOutput:
        check_video(video, name="mocogan/patch-video", channels=self.channels, resolution=self.resolution)
        if video.shape[2] < self.min_frames:
            raise ValueError(
                f"mocogan/patch-video: video needs at least {self.min_frames} frames, got {video.shape[2]}"
            )
        return DiscriminatorOutput(self.main(video).flatten(1))


def _other_length_advice(frames: int, resolution: int) -> str:
    """Which discriminators fit a clip of ``frames`` at ``resolution`` (only advice that works)."""
    needs = {r: TIME_KERNEL_SHRINK * num_doublings(r, BOTTOM_SIZE) + 1 for r in RESOLUTIONS}
    if frames >= needs.get(resolution, frames + 1):
        return "use the discriminator mocogan/patch-video for other lengths"
    fits = [r for r in RESOLUTIONS if frames >= needs[r]]
    where = (
        f" (or resolution {', '.join(map(str, fits))}, where mocogan/patch-video fits)"
        if fits
        else f" (mocogan/patch-video needs at least {min(needs.values())} frames)"
    )
    return f"for {frames} frames use the image discriminator mocogan/patch-image alone{where}"


class _WholeVideoDiscriminator(nn.Module):
    """Shared body of the video and categorical video discriminators (16 frames only)."""

    role = "video"
    component = "mocogan/video"

    def __init__(
        self,
        *,
        resolution: int,
        frames: int,
        channels: int,
        width: float,
        num_classes: int,
        noise_sigma: float,
        categories: int,
        head_noise: bool | None,
    ) -> None:
        super().__init__()
        check_shared_config(
            self.component,
            resolution=resolution,
            frames=frames,
            channels=channels,
            width=width,
            num_classes=num_classes,
            resolutions=RESOLUTIONS,
        )
        require(
            frames == VIDEO_D_FRAMES,
            f"{self.component}: only valid for {VIDEO_D_FRAMES} frames (its last conv covers the whole "
            f"clip), got frames={frames}; {_other_length_advice(frames, resolution)}",
        )
        self.resolution, self.channels, self.frames, self.categories = (
            resolution,
            channels,
            frames,
            categories,
        )
        blocks = num_doublings(resolution, BOTTOM_SIZE)
        layers, in_ch = _video_blocks(channels, scaled_channels(BASE_CHANNELS, width), blocks, noise_sigma)
        head_time = frames - TIME_KERNEL_SHRINK * blocks  # the head spans every remaining frame (4 at 64x64)
        layers += [
            InstanceNoise(_head_sigma(noise_sigma, head_noise, paper=False)),
            STConv3d(in_ch, 1 + categories, (head_time, KERNEL, KERNEL), stride=1, padding=0, bias=False),
        ]
        self.main = nn.Sequential(*layers)

    def forward(self, video: torch.Tensor, labels: Any = None) -> DiscriminatorOutput:
        check_video(
            video, name=self.component, channels=self.channels, resolution=self.resolution, frames=self.frames
        )
        out = self.main(video).flatten(1)  # (N, 1 + categories); flatten, never squeeze (batch size 1)
        return DiscriminatorOutput(out[:, :1], out[:, 1:] if self.categories else None)


@register_component("discriminator", "mocogan/video")
class VideoDiscriminator(_WholeVideoDiscriminator):
    """Whole-clip 3-D discriminator: forward(video (N, C, 16, H, W)) -> logits (N, 1). Ignores num_classes."""

    component = "mocogan/video"

    def __init__(
        self,
        *,
        resolution: int = 64,
        frames: int = 16,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 0,
        noise_sigma: float = 0.0,
        head_noise: bool | None = None,
    ) -> None:
        super().__init__(
            resolution=resolution,
            frames=frames,
            channels=channels,
            width=width,
            num_classes=num_classes,
            noise_sigma=noise_sigma,
            categories=0,
            head_noise=head_noise,
        )


@register_component("discriminator", "mocogan/categorical-video")
class CategoricalVideoDiscriminator(_WholeVideoDiscriminator):
    """Video discriminator with ``num_classes`` extra class logits (InfoGAN-style category loss).

    forward(video (N, C, 16, H, W)) -> DiscriminatorOutput(logits (N, 1), class_logits (N, num_classes)
    or None when num_classes is 0).
    """

    component = "mocogan/categorical-video"

    def __init__(
        self,
        *,
        resolution: int = 64,
        frames: int = 16,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 6,
        noise_sigma: float = 0.0,
        head_noise: bool | None = None,
    ) -> None:
        super().__init__(
            resolution=resolution,
            frames=frames,
            channels=channels,
            width=width,
            num_classes=num_classes,
            noise_sigma=noise_sigma,
            categories=num_classes,
            head_noise=head_noise,
        )


# ------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------
# Bundled weights (vganzoo/weights/mocogan-rnn.digits, a save_pretrained folder; its README.md is the card
# with the training command and the evaluation). The sha256 pins are checked on every load; a change to
# the folder must update them (tests/hub/test_bundled_weights.py compares).
DIGITS_WEIGHTS = PretrainedSpec(
    tag="digits",
    bundled="weights/mocogan-rnn.digits",
    files={
        "generator": "generator.safetensors",
        "discriminator.image": "discriminator.image.safetensors",
        "discriminator.video": "discriminator.video.safetensors",
    },
    sha256={
        "config.json": "a9f31096920f3df94014a26b0c3badc34b9c1fca5f8d355ebc59a640bb9c859a",
        "generator.safetensors": "9cf3582d5c5ca1ff505c8db990f78f7e51da3cd75b14a9da1ec2d716f6b7df9d",
        "discriminator.image.safetensors": "2677877480dd4ecbe5f3b30fdf444ebbd4fdaf88f1dd30e9854f12e6fc1ebcf1",
        "discriminator.video.safetensors": "3f55ae23a1f1e6f6cca193f0c725cebffcf9afaf232422d5ac44295228efaf34",
        # weights.json too: the training recipe in it is read only because this pins it
        "weights.json": "b84de062ff04df09e0ff5efe1bb616b244a5ab7c882a15306504692633afecaf",
    },
    metadata={
        "dataset": "moving-digits",
        "resolution": 32,
        "frames": 16,
        "channels": 1,
        "num_classes": 10,
        "labels": "the digit (0-9)",
        "license": "Apache-2.0",
    },
)


@register_model(
    "mocogan-rnn",
    family="mocogan",
    paper=PAPER,
    default_config=DEFAULT_CONFIG,
    recipes=RECIPES,
    saved_config_defaults=SAVED_CONFIG_DEFAULTS,
    pretrained=[DIGITS_WEIGHTS],
)
def mocogan_rnn(
    *,
    resolution: int,
    frames: int,
    channels: int,
    width: float,
    num_classes: int,
    dim_z_content: int,
    dim_z_motion: int,
    noise_sigma: float,
    noise_layout: str,
    discriminators: list[str],
) -> VideoGAN:
    """MoCoGAN with a GRU motion code, a patch image D and a categorical video D (CVPR 2018)."""
    shared = {
        "resolution": resolution,
        "frames": frames,
        "channels": channels,
        "width": width,
        "num_classes": num_classes,
    }
    generator = MoCoGANGenerator(**shared, dim_z_content=dim_z_content, dim_z_motion=dim_z_motion)
    require(
        isinstance(noise_sigma, (int, float)) and not isinstance(noise_sigma, bool) and noise_sigma >= 0,
        f"mocogan-rnn: noise_sigma must be a non-negative number, got {noise_sigma!r}",
    )
    require(
        noise_layout in NOISE_LAYOUTS,
        f"mocogan-rnn: noise_layout must be one of {', '.join(NOISE_LAYOUTS)}, got {noise_layout!r}",
    )
    extras = {"noise_sigma": noise_sigma, "head_noise": True if noise_layout == "every-conv" else None}
    discs = build_discriminators("mocogan-rnn", discriminators, shared, extras)
    recipe = copy.deepcopy(RECIPE)
    if num_classes == 0:
        recipe["category_loss_weight"] = 0.0  # no categorical code to recover
    return VideoGAN(generator, discs, recipe=recipe)
