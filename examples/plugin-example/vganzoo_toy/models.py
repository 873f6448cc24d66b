"""A toy video GAN registered through vganzoo's plugin entry points.

It follows the same protocols as the built-in families (vganzoo.models.base): the generator
draws its latents with ``sample_latents`` and maps them to (N, C, T, H, W) in [-1, 1]; the
discriminator takes a whole clip and returns ``DiscriminatorOutput``.
"""

from __future__ import annotations

import torch
from torch import nn

import vganzoo
from vganzoo.models.base import DiscriminatorOutput, VideoGAN, require


@vganzoo.register_component("generator", "toy/mlp")
class ToyGenerator(nn.Module):
    """z (latent_dim) + per-frame time code -> frames through one linear layer."""

    def __init__(
        self,
        *,
        resolution: int = 16,
        frames: int = 4,
        channels: int = 3,
        latent_dim: int = 8,
        num_classes: int = 0,
    ):
        super().__init__()
        require(resolution <= 32, f"toy/mlp: resolution must be at most 32, got {resolution}")
        self.resolution, self.frames, self.channels, self.num_classes = (
            resolution,
            frames,
            channels,
            num_classes,
        )
        self.latent_dim = latent_dim
        self.time_embedding = nn.Parameter(torch.randn(frames, latent_dim) * 0.1)
        self.to_frame = nn.Linear(latent_dim, channels * resolution * resolution)

    def sample_latents(self, n: int, *, generator: torch.Generator, labels=None) -> dict[str, torch.Tensor]:
        return {"z": torch.randn(n, self.latent_dim, generator=generator)}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        per_frame = z[:, None, :] + self.time_embedding[None]  # (N, T, latent)
        frames = self.to_frame(per_frame).tanh()  # (N, T, C*H*W)
        n = z.shape[0]
        return frames.view(n, self.frames, self.channels, self.resolution, self.resolution).transpose(1, 2)


@vganzoo.register_component("discriminator", "toy/frame-mean")
class ToyDiscriminator(nn.Module):
    """Scores the time-averaged frame with one linear layer.

    Every discriminator factory is called with the model's shared keywords (resolution, frames,
    channels, width, num_classes), so that it can be mixed into any model's ``discriminators`` list;
    it raises InvalidConfigError for settings it cannot handle. Its role (the key in
    ``model.discriminators`` and in the recipe) is ``role``; without one, names containing "image"
    are image discriminators, others video ones.
    """

    role = "video"

    def __init__(
        self,
        *,
        resolution: int = 16,
        frames: int = 4,
        channels: int = 3,
        width: float = 1.0,
        num_classes: int = 0,
    ):
        super().__init__()
        require(resolution <= 64, f"toy/frame-mean: resolution must be at most 64, got {resolution}")
        self.score = nn.Linear(channels * resolution * resolution, 1)

    def forward(self, video: torch.Tensor, labels=None) -> DiscriminatorOutput:
        return DiscriminatorOutput(self.score(video.mean(dim=2).flatten(1)))


@vganzoo.register_model(
    "toy-gan",
    family="toy",
    paper="(example plugin)",
    default_config={"resolution": 16, "frames": 4, "channels": 3, "latent_dim": 8},
    recipe={
        "adversarial_loss": "bce",
        "d_steps": 1,
        "optimizers": {
            "generator": {"name": "adam", "lr": 1e-3},
            "discriminators": {"name": "adam", "lr": 1e-3},
        },
    },
)
def toy_gan(*, resolution: int, frames: int, channels: int, latent_dim: int) -> VideoGAN:
    """Toy plugin model: an MLP frame generator and a frame-mean discriminator."""
    generator = ToyGenerator(resolution=resolution, frames=frames, channels=channels, latent_dim=latent_dim)
    discriminator = ToyDiscriminator(resolution=resolution, frames=frames, channels=channels)
    return VideoGAN(generator, {"video": discriminator})
