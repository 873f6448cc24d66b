"""Tiny models and a synthetic dataset for the training tests (also used by the DDP workers)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

import vganzoo
from vganzoo.models.base import DiscriminatorOutput, VideoGAN

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "examples" / "plugin-example"
if str(PLUGIN_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGIN_DIR))

import vganzoo_toy.models  # noqa: F401  (registers "toy-gan" like a plugin would)


class SyntheticVideos(torch.utils.data.Dataset):
    """``n`` clips (C, T, H, W) in [-1, 1]; item i depends only on (seed, i); label i % classes."""

    def __init__(
        self,
        n: int = 24,
        *,
        channels: int = 3,
        frames: int = 4,
        resolution: int = 8,
        num_classes: int = 3,
        seed: int = 0,
        with_labels: bool = True,
    ):
        self.n, self.shape, self.num_classes, self.seed, self.with_labels = (
            n,
            (channels, frames, resolution, resolution),
            num_classes,
            seed,
            with_labels,
        )

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        gen = torch.Generator().manual_seed(self.seed * 100003 + i)
        video = torch.randn(self.shape, generator=gen).mul(0.5).tanh()
        label = i % self.num_classes if self.with_labels else -1
        return {"video": video, "label": torch.tensor(label, dtype=torch.long)}


class TinyGenerator(nn.Module):
    """Linear latent -> video, with an optional class embedding and an optional mask output."""

    def __init__(
        self,
        *,
        resolution: int = 8,
        frames: int = 4,
        channels: int = 3,
        num_classes: int = 0,
        latent_dim: int = 6,
        with_mask: bool = False,
    ):
        super().__init__()
        self.resolution, self.frames, self.channels, self.num_classes = (
            resolution,
            frames,
            channels,
            num_classes,
        )
        self.latent_dim, self.with_mask = latent_dim, with_mask
        out = channels * frames * resolution * resolution
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.body = nn.Sequential(nn.Linear(latent_dim, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.to_video = nn.Linear(16, out)
        self.to_mask = nn.Linear(16, frames * resolution * resolution) if with_mask else None

    def sample_latents(self, n, *, generator, labels=None):
        latents = {"z": torch.randn(n, self.latent_dim, generator=generator)}
        if self.num_classes:
            latents["labels"] = (
                labels
                if labels is not None
                else torch.randint(0, self.num_classes, (n,), generator=generator)
            )
        return latents

    def forward(self, z, labels=None, return_aux=False):
        if self.embed is not None:
            z = z + self.embed(labels)
        h = self.body(z)
        n = z.shape[0]
        video = self.to_video(h).tanh().view(n, self.channels, self.frames, self.resolution, self.resolution)
        if not return_aux:
            return video
        mask = self.to_mask(h).sigmoid().view(n, 1, self.frames, self.resolution, self.resolution)
        return video, {"mask": mask}


class TinyDiscriminator(nn.Module):
    """Conv3d + BN -> logits; ``image=True`` scores one frame; ``num_classes`` adds class logits."""

    def __init__(self, *, channels: int = 3, num_classes: int = 0, image: bool = False):
        super().__init__()
        self.image = image
        self.conv = nn.Conv3d(channels, 4, kernel_size=(1, 3, 3), padding=(0, 1, 1))
        self.norm = nn.BatchNorm3d(4)
        self.head = nn.Linear(4, 1 + num_classes)
        self.num_classes = num_classes

    def forward(self, video, labels=None):
        if self.image:
            video = video[:, :, :1]
        h = torch.nn.functional.leaky_relu(self.norm(self.conv(video)), 0.2).mean(dim=(2, 3, 4))
        out = self.head(h)
        return DiscriminatorOutput(out[:, :1], out[:, 1:] if self.num_classes else None)


COND_RECIPE = {
    "adversarial_loss": "bce",
    "d_steps": 1,
    "batch_size": 4,
    "discriminator_batch_size": {"image": 5, "video": 3},
    "optimizers": {
        "generator": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]},
        "discriminators": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999], "weight_decay": 1e-5},
    },
    "category_loss_weight": 1.0,
}
COND_CONFIG = {"resolution": 8, "frames": 4, "channels": 3, "num_classes": 3}


@vganzoo.register_model("tiny-cond-gan", family="tiny", default_config=COND_CONFIG, recipe=COND_RECIPE)
def tiny_cond_gan(*, resolution, frames, channels, num_classes):
    """Tiny conditional GAN with an image D and a categorical video D (MoCoGAN-shaped)."""
    g = TinyGenerator(resolution=resolution, frames=frames, channels=channels, num_classes=num_classes)
    ds = {
        "image": TinyDiscriminator(channels=channels, image=True),
        "video": TinyDiscriminator(channels=channels, num_classes=num_classes),
    }
    return VideoGAN(g, ds)


# MoCoGAN's paper loop: a fake batch per discriminator in the G step, the D step's CE on real clips only
vganzoo.register_model(
    "tiny-cond-paper-gan",
    family="tiny",
    default_config=COND_CONFIG,
    recipe={**COND_RECIPE, "g_fake_batches": "per-discriminator", "d_category_loss": "real"},
)(tiny_cond_gan)


MASK_RECIPE = {
    "adversarial_loss": "wasserstein",
    "d_steps": 2,
    "batch_size": 4,
    "optimizers": {
        "generator": {"name": "rmsprop", "lr": 5e-4},
        "discriminators": {"name": "rmsprop", "lr": 5e-4},
    },
    "regularizers": [
        {"name": "singular_value_clipping", "every": 2},
        {"name": "gradient_penalty", "weight": 1.0},
        {"name": "mask_l1", "weight": 0.1},
    ],
    "ema": {"decay": 0.9},
}


@vganzoo.register_model(
    "tiny-mask-gan",
    family="tiny",
    default_config={"resolution": 8, "frames": 4, "channels": 3},
    recipe=MASK_RECIPE,
)
def tiny_mask_gan(*, resolution, frames, channels):
    """Tiny two-stream-like GAN: the generator also returns a mask (VGAN-shaped), WGAN losses."""
    g = TinyGenerator(resolution=resolution, frames=frames, channels=channels, with_mask=True)
    return VideoGAN(g, {"video": TinyDiscriminator(channels=channels)})


def _shared_forward_gan(loop: str):
    """tiny-mask-gan's networks and regularisers on one of the shared-forward loops (TGAN's, VGAN's)."""

    @vganzoo.register_model(
        f"tiny-{loop.split('-')[0]}-first-gan",
        family="tiny",
        default_config={"resolution": 8, "frames": 4, "channels": 3},
        recipe={**MASK_RECIPE, "loop": loop, "d_steps": 1},
    )
    def factory(*, resolution, frames, channels):
        """Tiny GAN on a shared-forward loop."""
        g = TinyGenerator(resolution=resolution, frames=frames, channels=channels, with_mask=True)
        return VideoGAN(g, {"video": TinyDiscriminator(channels=channels)})

    return factory


tiny_g_first_gan = _shared_forward_gan("g-first-shared-forward")  # "tiny-g-first-gan"
tiny_d_first_gan = _shared_forward_gan("d-first-reuse-fakes")  # "tiny-d-first-gan"


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"
