"""Tests of the vgan family (two-stream VGAN); tiny widths keep them fast on CPU."""

import pytest
import torch
import torch.nn.functional as F

import vganzoo
from vganzoo.errors import InvalidConfigError
from vganzoo.models.vgan import VGANDiscriminator, VGANGenerator
from vganzoo.nn import STConv3d, STConvTranspose3d

TINY = 0.0625  # width: finest stage 4 channels

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def small():
    return vganzoo.create("vgan", frames=16, width=TINY)


@pytest.mark.parametrize("resolution,frames", [(64, 32), (64, 16), (32, 8), (32, 16), (128, 32)])
def test_sample_shape_and_range(resolution, frames):
    model = vganzoo.create("vgan", resolution=resolution, frames=frames, width=TINY)
    videos = model.sample(2, seed=0)
    assert videos.shape == (2, 3, frames, resolution, resolution)
    assert videos.min() >= -1 and videos.max() <= 1
    assert videos.abs().max() > 0
    assert model.discriminator("video")(videos).logits.shape == (2,)


def test_default_config_recipe_and_parameter_layout():
    info = vganzoo.model_info("vgan")
    cfg = info["default_config"]
    assert (cfg["resolution"], cfg["frames"], cfg["latent_dim"], cfg["num_classes"]) == (64, 32, 100, 0)
    recipe = info["recipe"]
    assert recipe["adversarial_loss"] == "bce" and recipe["batch_size"] == 64 and recipe["d_steps"] == 1
    assert recipe["optimizers"]["generator"] == {
        "name": "adam",
        "lr": 2e-4,
        "betas": [0.5, 0.999],
        "weight_decay": 0.0,
    }
    assert {"name": "mask_l1", "weight": 0.1} in recipe["regularizers"]

    # the original layout (main.lua, every conv with a bias, BN with scale and shift), layer by layer
    def conv(c_in, c_out, *kernel):
        return c_in * c_out * torch.Size(kernel).numel() + c_out

    def bn(c):
        return 2 * c

    background = (
        conv(100, 512, 4, 4)
        + bn(512)
        + conv(512, 256, 4, 4)
        + bn(256)
        + conv(256, 128, 4, 4)
        + bn(128)
        + conv(128, 64, 4, 4)
        + bn(64)
        + conv(64, 3, 4, 4)
    )
    foreground = (
        conv(100, 512, 2, 4, 4)
        + bn(512)
        + conv(512, 256, 4, 4, 4)
        + bn(256)
        + conv(256, 128, 4, 4, 4)
        + bn(128)
        + conv(128, 64, 4, 4, 4)
        + bn(64)
        + conv(64, 3, 4, 4, 4)
        + conv(64, 1, 4, 4, 4)
    )
    discriminator = (
        conv(3, 64, 4, 4, 4)
        + conv(64, 128, 4, 4, 4)
        + bn(128)
        + conv(128, 256, 4, 4, 4)
        + bn(256)
        + conv(256, 512, 4, 4, 4)
        + bn(512)
        + conv(512, 2, 2, 4, 4)
    )
    assert info["parameters"]["generator"] == background + foreground
    assert info["parameters"]["discriminator.video"] == discriminator


def test_generator_is_built_from_st_layers():
    gen = VGANGenerator(width=TINY)
    kinds = [type(m) for m in gen.foreground]
    assert kinds == [STConvTranspose3d] * 4
    assert gen.foreground[0].kernel_size == (2, 4, 4)  # 32 frames: 2 -> 4 -> 8 -> 16 -> 32
    assert all(m.norm is not None and m.activation == "relu" for m in gen.foreground)
    assert gen.video_head.activation == "tanh" and gen.mask_head.activation == "sigmoid"
    disc = VGANDiscriminator(width=TINY)
    assert all(isinstance(m, STConv3d) for m in disc.main)
    assert disc.main[0].norm is None and all(m.norm.eps == 1e-3 for m in list(disc.main)[1:-1])
    assert disc.main[-1].kernel_size == (2, 4, 4) and disc.main[-1].out_channels == 2


def test_init_follows_the_original():
    torch.manual_seed(0)
    gen = VGANGenerator()  # full width: enough weights for tight statistics
    w = gen.foreground[1].weight.detach()
    assert abs(float(w.std()) - 0.01) < 1e-3 and abs(float(w.mean())) < 1e-3
    assert torch.count_nonzero(gen.foreground[1].bias) == 0
    scale = gen.foreground[1].norm.weight.detach()
    assert abs(float(scale.mean()) - 1.0) < 0.01 and abs(float(scale.std()) - 0.02) < 0.01
    assert abs(float(gen.background[0].weight.detach().std()) - 0.01) < 1e-3


def test_aux_mask_and_composition(small):
    gen = small.generator.eval()
    z = gen.sample_latents(2, generator=torch.Generator().manual_seed(0))["z"]
    with torch.no_grad():
        video, aux = gen(z, return_aux=True)
        plain = gen(z)
    assert set(aux) == {"mask", "foreground", "background"}
    mask, fg, bg = aux["mask"], aux["foreground"], aux["background"]
    assert mask.shape == (2, 1, 16, 64, 64) and fg.shape == (2, 3, 16, 64, 64) and bg.shape == (2, 3, 64, 64)
    assert mask.min() >= 0 and mask.max() <= 1
    torch.testing.assert_close(video, mask * fg + (1 - mask) * bg[:, :, None])
    torch.testing.assert_close(video, plain)
    # with the mask closed (sigmoid -> 0) the video is the static background in every frame
    closed = vganzoo.create("vgan", frames=16, width=TINY).generator.eval()
    closed.load_state_dict(gen.state_dict())
    with torch.no_grad():
        closed.mask_head.weight.zero_()
        closed.mask_head.bias.fill_(-1e4)
        static = closed(z)
    torch.testing.assert_close(static, bg[:, :, None].expand_as(fg))


def test_mask_l1_penalty_gets_gradients(small):
    gen = small.generator.train()
    z = gen.sample_latents(2, generator=torch.Generator().manual_seed(0))["z"]
    _, aux = gen(z, return_aux=True)
    (0.1 * aux["mask"].abs().mean()).backward()
    assert gen.mask_head.weight.grad.abs().sum() > 0
    assert gen.video_head.weight.grad is None or gen.video_head.weight.grad.abs().sum() == 0
    gen.zero_grad(set_to_none=True)


def test_same_seed_same_videos(small):
    a = small.sample(2, seed=5)
    torch.testing.assert_close(a, small.sample(2, seed=5), atol=0, rtol=0)
    assert not torch.allclose(a, small.sample(2, seed=6))
    _, latents = small.sample(2, seed=5, return_latents=True)
    assert set(latents) == {"z"} and latents["z"].shape == (2, 100)


def test_discriminator_logit_is_the_two_way_softmax_difference(small):
    disc = small.discriminator("video").eval()
    video = torch.rand(3, 3, 16, 64, 64) * 2 - 1
    out = disc(video)
    raw = disc.main(video).flatten(1)
    assert out.logits.shape == (3,) and out.class_logits is None
    torch.testing.assert_close(out.logits, raw[:, 0] - raw[:, 1])
    # BCE on the logit equals the original 2-way cross-entropy with class 0 = real
    real = torch.zeros(3, dtype=torch.long)
    torch.testing.assert_close(
        F.binary_cross_entropy_with_logits(out.logits, torch.ones(3)), F.cross_entropy(raw, real)
    )


def test_gradients_reach_every_parameter():
    model = vganzoo.create("vgan", resolution=32, frames=8, width=TINY)
    gen, disc = model.generator.train(), model.discriminator("video").train()
    z = gen.sample_latents(2, generator=torch.Generator().manual_seed(0))["z"]
    video, aux = gen(z, return_aux=True)
    loss = disc(video).logits.sum() + 0.1 * aux["mask"].mean()
    loss.backward()
    for part in (gen, disc):
        for name, p in part.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_batch_size_one(small):
    gen, disc = small.generator.train(), small.discriminator("video").train()
    z = gen.sample_latents(1, generator=torch.Generator().manual_seed(0))["z"]
    video = gen(z)
    assert video.shape == (1, 3, 16, 64, 64)
    out = disc(video)
    assert out.logits.shape == (1,)
    out.logits.sum().backward()
    gen.zero_grad(set_to_none=True)
    disc.zero_grad(set_to_none=True)
    assert small.sample(1, seed=0).shape == (1, 3, 16, 64, 64)


def test_single_channel():
    model = vganzoo.create("vgan", resolution=32, frames=8, width=TINY, channels=1)
    videos = model.sample(1, seed=0)
    assert videos.shape == (1, 1, 8, 32, 32)
    assert model.discriminator("video")(videos).logits.shape == (1,)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"frames": 24}, "multiple of 16"),
        ({"frames": 8}, "multiple of 16"),
        ({"resolution": 32, "frames": 12}, "multiple of 8"),
        ({"resolution": 128, "frames": 16}, "multiple of 32"),
        ({"resolution": 48}, "resolution"),
        ({"channels": 2}, "channels"),
        ({"width": -1.0}, "width"),
        ({"num_classes": 3}, "unconditional"),
        ({"discriminators": "vgan/video"}, "list"),
    ],
)
def test_config_errors(overrides, match):
    with pytest.raises(InvalidConfigError, match=match):
        vganzoo.create("vgan", **{"width": TINY, **overrides})


def test_input_errors(small):
    with pytest.raises(ValueError, match="labels"):
        small.sample(2, seed=0, labels=[0, 1])
    with pytest.raises(ValueError, match="z must have shape"):
        small.generator(torch.randn(2, 99))
    disc = small.discriminator("video")
    with pytest.raises(ValueError, match="video must have shape"):
        disc(torch.zeros(1, 3, 32, 64, 64))  # built for 16 frames
    with pytest.raises(ValueError, match="video must have shape"):
        disc(torch.zeros(1, 3, 16, 32, 32))
    with pytest.raises(ValueError, match="labels"):
        disc(torch.zeros(1, 3, 16, 64, 64), torch.tensor([0]))


def test_mixing_with_dvdgan_discriminators():
    model = vganzoo.create(
        "vgan", resolution=32, frames=8, width=TINY, discriminators=["vgan/video", "dvdgan/spatial"]
    )
    assert set(model.discriminators) == {"video", "image"}
    videos = model.sample(2, seed=0)
    assert model.discriminator("image")(videos).logits.shape == (2,)


def test_state_dict_round_trip_through_safetensors(tmp_path, small):
    from safetensors.torch import load_file, save_file

    save_file(small.generator.state_dict(), str(tmp_path / "generator.safetensors"))
    fresh = vganzoo.create("vgan", frames=16, width=TINY)
    fresh.generator.load_state_dict(load_file(str(tmp_path / "generator.safetensors")), strict=True)
    torch.testing.assert_close(fresh.sample(2, seed=0), small.sample(2, seed=0))


def test_empty_batch(small):
    videos = small.sample(0, seed=0)
    assert videos.shape == (0, 3, 16, 64, 64)
    assert small.discriminator("video").eval()(videos).logits.shape == (0,)
