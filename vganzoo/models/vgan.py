"""VGAN: the two-stream video GAN of Vondrick, Pirsiavash and Torralba (NeurIPS 2016).

Layer facts from the authors' Torch code (cvondrick/videogan, ``main.lua``); our code is our own.

Generator ``vgan/generator``, from one code ``z ~ N(0, I)^100``:
    * background (static) stream, 2-D: ConvT 100->512 k4 (4x4), then ConvT k4 s2 p1
      512->256->128->64 with BN + ReLU, then ConvT 64->C k4 s2 p1 + tanh: one image ``b``,
      replicated over every frame;
    * foreground stream, 3-D (:class:`~vganzoo.nn.STConvTranspose3d`, BN + ReLU fused): ConvT
      100->512 kernel (T/16, 4, 4), then 512->256->128->64 k4 s2 p1 (doubling T, H and W), and two
      heads k4 s2 p1: the video ``f`` (64->C, tanh) and the mask ``m`` (64->1, sigmoid);
    * output ``m * f + (1 - m) * b``. ``forward(z, return_aux=True)`` also returns
      ``{"mask": m (N, 1, T, H, W), "foreground": f, "background": b (N, C, H, W)}`` so that the
      trainer can apply the recipe's ``mask_l1`` penalty (0.1 * mean |m|, the original's L1Penalty).

Discriminator ``vgan/video`` (role ``"video"``): Conv3d k4 s2 p1 C->64 + LeakyReLU(0.2), then
64->128->256->512 with BN (eps 1e-3) + LeakyReLU(0.2), then Conv3d 512->2 with kernel
(T/16, 4, 4). The original trains those 2 outputs with a 2-way softmax cross-entropy (index 0 =
real, 1 = fake); a 2-way softmax is a sigmoid of the difference of its logits, so the single
real/fake logit returned is ``out[:, 0] - out[:, 1]`` and BCE-with-logits on it is exactly the
original loss. The 2-output layer is kept so that the weight layout matches the original.

Other resolutions drop (32) or add (128) one stride-2 stage at the coarse end; channels are
``64 * width * 2**k`` counted from the finest stage. Frames: the first foreground layer's and the
last D layer's temporal kernel is ``frames / 2**stages``, so ``frames`` must be a positive multiple
of 16 at 64x64 (the published 32 and 16 both work), of 8 at 32x32 and of 32 at 128x128.
Convs (all with bias) are initialised N(0, 0.01), BN scales N(1, 0.02), biases 0. Unconditional
only.

Recipes (``vganzoo info vgan``; ``vganzoo train --recipe NAME``): BCE, Adam lr 2e-4 betas
(0.5, 0.999) for both, batch 64, one D step per G step, mask L1 0.1.
    ``paper`` (the default) is ``main.lua``'s loop: D on a real batch, then on one fake batch;
    D updated; then G from that same fake batch and that D output (computed before the D update;
    no fresh sample). ``alternate``: vganzoo's loop before issue 20: the G step draws fresh fakes.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import torch
from einops import rearrange
from torch import nn

from ..nn import STConv3d, STConvTranspose3d
from ..registry import register_component, register_model
from .base import DiscriminatorOutput, VideoGAN, require
from .common import build_discriminators, check_shared_config, check_video, num_doublings, scaled_channels

__all__ = ["VGANDiscriminator", "VGANGenerator", "vgan"]

LATENT_DIM = 100
SUPPORTED_RESOLUTIONS = (32, 64, 128)
INITIAL_SIZE = 4  # the first transposed convolution makes 4x4 maps
KERNEL = 4
STRIDE = 2
PADDING = 1
FINEST_CHANNELS = 64  # channels of the last hidden generator stage and the first D stage at width 1
LEAKY_SLOPE = 0.2
D_BN_EPS = 1e-3
CONV_INIT_STD = 0.01
BN_SCALE_INIT_STD = 0.02


def _check(name: str, resolution: int, frames: int, channels: int, width: float, num_classes: int) -> int:
    """Validate the shared keywords and VGAN's own rules; returns the temporal kernel ``frames /
    2**stages``."""
    check_shared_config(
        name,
        resolution=resolution,
        frames=frames,
        channels=channels,
        width=width,
        num_classes=num_classes,
        resolutions=SUPPORTED_RESOLUTIONS,
    )
    require(num_classes == 0, f"{name}: VGAN is unconditional; num_classes must be 0, got {num_classes!r}")
    multiple = 2 ** num_doublings(resolution, INITIAL_SIZE)
    require(
        frames % multiple == 0,
        f"{name}: at resolution {resolution} frames must be a positive multiple of {multiple} "
        f"(e.g. {multiple}, {2 * multiple}), got {frames!r}",
    )
    return frames // multiple


def _stage_channels(resolution: int, width: float) -> list[int]:
    """Channels of the hidden stages from coarse to fine, e.g. [512, 256, 128, 64] at 64x64."""
    n = num_doublings(resolution, INITIAL_SIZE)  # stride-2 stages between the 4x4 maps and the output
    return [scaled_channels(FINEST_CHANNELS * 2 ** (n - 1 - i), width) for i in range(n)]


def init_vgan_weights_(module: nn.Module) -> nn.Module:
    """The original init: conv weights N(0, 0.01), BN scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if any(p.is_meta for p in m.parameters(recurse=False)):
            continue  # meta tensors (parameter counting) hold no values to initialise
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, STConv3d, STConvTranspose3d)):
            nn.init.normal_(m.weight, 0.0, CONV_INIT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.normal_(m.weight, 1.0, BN_SCALE_INIT_STD)
            nn.init.zeros_(m.bias)
    return module


@register_component("generator", "vgan/generator")
class VGANGenerator(nn.Module):
    """Two-stream generator (see the module docstring).

    Latent codes (``forward`` keywords, drawn by :meth:`sample_latents`):
        z: ``(N, latent_dim)`` float, ``N(0, I)``; one code drives both streams.

    Output: ``(N, channels, frames, resolution, resolution)`` in [-1, 1], or ``(video, aux)`` with
    ``return_aux=True``.
    """

    def __init__(
        self,
        *,
        resolution: int = 64,
        frames: int = 32,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 0,
        latent_dim: int = LATENT_DIM,
    ) -> None:
        super().__init__()
        time_kernel = _check("vgan/generator", resolution, frames, channels, width, num_classes)
        require(
            isinstance(latent_dim, int) and latent_dim >= 1,
            f"vgan/generator: latent_dim must be a positive int, got {latent_dim!r}",
        )
        self.resolution, self.frames, self.channels, self.num_classes = resolution, frames, channels, 0
        self.latent_dim = latent_dim
        widths = _stage_channels(resolution, width)

        background: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, widths[0], KERNEL),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        ]
        for c_in, c_out in pairwise(widths):
            background += [
                nn.ConvTranspose2d(c_in, c_out, KERNEL, STRIDE, PADDING),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        background += [nn.ConvTranspose2d(widths[-1], channels, KERNEL, STRIDE, PADDING), nn.Tanh()]
        self.background = nn.Sequential(*background)

        foreground: list[nn.Module] = [
            STConvTranspose3d(
                latent_dim, widths[0], (time_kernel, KERNEL, KERNEL), norm="batch", activation="relu"
            )
        ]
        for c_in, c_out in pairwise(widths):
            foreground.append(
                STConvTranspose3d(c_in, c_out, KERNEL, STRIDE, PADDING, norm="batch", activation="relu")
            )
        self.foreground = nn.Sequential(*foreground)
        self.video_head = STConvTranspose3d(widths[-1], channels, KERNEL, STRIDE, PADDING, activation="tanh")
        self.mask_head = STConvTranspose3d(widths[-1], 1, KERNEL, STRIDE, PADDING, activation="sigmoid")
        init_vgan_weights_(self)

    def sample_latents(
        self, n: int, *, generator: torch.Generator, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Draw ``{"z": (n, latent_dim)}`` from N(0, I) on the CPU."""
        if labels is not None:
            raise ValueError("labels: vgan/generator is unconditional (num_classes=0); give no labels")
        return {"z": torch.randn(n, self.latent_dim, generator=generator)}

    def forward(
        self, z: torch.Tensor, return_aux: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """z: (N, latent_dim) -> video (N, C, T, H, W) [, {"mask", "foreground", "background"}]."""
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.latent_dim:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"vgan/generator: z must have shape (N, {self.latent_dim}), got {shape}")
        background = self.background(rearrange(z, "n d -> n d 1 1"))  # (N, C, H, W)
        features = self.foreground(rearrange(z, "n d -> n d 1 1 1"))
        foreground = self.video_head(features)  # (N, C, T, H, W)
        mask = self.mask_head(features)  # (N, 1, T, H, W)
        video = mask * foreground + (1.0 - mask) * rearrange(background, "n c h w -> n c 1 h w")
        if return_aux:
            return video, {"mask": mask, "foreground": foreground, "background": background}
        return video


@register_component("discriminator", "vgan/video")
class VGANDiscriminator(nn.Module):
    """The VGAN 3-D discriminator (see the module docstring).

    ``forward(video (N, C, T, H, W), labels=None) -> DiscriminatorOutput(logits (N,))`` with
    ``T == frames``; the logit is ``out[:, real] - out[:, fake]`` of the original 2-way output.
    """

    role = "video"
    REAL, FAKE = 0, 1  # output indices of the original (Torch labels 1 = real, 2 = fake)

    def __init__(
        self,
        *,
        resolution: int = 64,
        frames: int = 32,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        time_kernel = _check("vgan/video", resolution, frames, channels, width, num_classes)
        self.resolution, self.frames, self.channels, self.num_classes = resolution, frames, channels, 0
        widths = _stage_channels(resolution, width)[::-1]  # fine to coarse: 64, 128, 256, 512
        layers: list[nn.Module] = [
            STConv3d(
                channels,
                widths[0],
                KERNEL,
                STRIDE,
                PADDING,
                activation="leaky_relu",
                negative_slope=LEAKY_SLOPE,
            )
        ]
        for c_in, c_out in pairwise(widths):
            layers.append(
                STConv3d(
                    c_in,
                    c_out,
                    KERNEL,
                    STRIDE,
                    PADDING,
                    norm="batch",
                    norm_eps=D_BN_EPS,
                    activation="leaky_relu",
                    negative_slope=LEAKY_SLOPE,
                )
            )
        layers.append(STConv3d(widths[-1], 2, (time_kernel, KERNEL, KERNEL)))
        self.main = nn.Sequential(*layers)
        init_vgan_weights_(self)

    def forward(self, video: torch.Tensor, labels: torch.Tensor | None = None) -> DiscriminatorOutput:
        check_video(
            video, name="vgan/video", channels=self.channels, resolution=self.resolution, frames=self.frames
        )
        if labels is not None:
            raise ValueError("vgan/video: labels must be None (VGAN is unconditional)")
        out = self.main(video).flatten(1)  # (N, 2)
        return DiscriminatorOutput(out[:, self.REAL] - out[:, self.FAKE])


DEFAULT_CONFIG: dict[str, Any] = {
    "resolution": 64,
    "frames": 32,
    "channels": 3,
    "width": 1.0,
    "num_classes": 0,
    "latent_dim": LATENT_DIM,
    "discriminators": ["vgan/video"],
}

_BASE_RECIPE: dict[str, Any] = {
    "adversarial_loss": "bce",
    "d_steps": 1,
    "batch_size": 64,
    "optimizers": {
        "generator": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 0.0},
        "discriminators": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 0.0},
    },
    "regularizers": [{"name": "mask_l1", "weight": 0.1}],
    "ema": None,
    "frame_stride": 1,
}
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {**copy.deepcopy(_BASE_RECIPE), "name": "paper", "loop": "d-first-reuse-fakes"},
    "alternate": {**copy.deepcopy(_BASE_RECIPE), "name": "alternate", "loop": "alternate"},
}
RECIPE = RECIPES["paper"]


@register_model(
    "vgan",
    family="vgan",
    paper="Vondrick, Pirsiavash, Torralba: Generating Videos with Scene Dynamics (NeurIPS 2016)",
    default_config=DEFAULT_CONFIG,
    recipes=RECIPES,
)
def vgan(
    *,
    resolution: int,
    frames: int,
    channels: int,
    width: float,
    num_classes: int,
    latent_dim: int,
    discriminators: Sequence[str],
) -> VideoGAN:
    """VGAN: two-stream (static background + 3-D masked foreground) generator and a 3-D discriminator."""
    shared = {
        "resolution": resolution,
        "frames": frames,
        "channels": channels,
        "width": width,
        "num_classes": num_classes,
    }
    generator = VGANGenerator(**shared, latent_dim=latent_dim)
    discs = build_discriminators("vgan", discriminators, shared)
    return VideoGAN(generator, discs, recipe=copy.deepcopy(RECIPE))
