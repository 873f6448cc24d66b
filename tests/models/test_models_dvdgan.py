"""Tests of the dvdgan family (attention GAN after DVD-GAN); tiny widths keep them fast on CPU."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import vganzoo
from vganzoo.errors import InvalidConfigError
from vganzoo.models.dvdgan import (
    WEIGHT_LAYERS,
    DVDGANGenerator,
    SpatialDiscriminator,
    TemporalDiscriminator,
)
from vganzoo.nn import ConditionalBatchNorm

TINY = 0.0625  # width: ch = 2

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def small():
    return vganzoo.create("dvdgan", resolution=32, frames=4, width=TINY)


@pytest.fixture(scope="module")
def conditional():
    return vganzoo.create("dvdgan", resolution=32, frames=4, width=TINY, num_classes=3)


def _open_attention(module, gamma=0.5):
    for m in module.modules():
        if hasattr(m, "gamma"):
            with torch.no_grad():
                m.gamma.fill_(gamma)


@pytest.mark.parametrize("resolution,frames", [(32, 4), (32, 8), (64, 16), (128, 4)])
def test_sample_shape_and_range(resolution, frames):
    model = vganzoo.create("dvdgan", resolution=resolution, frames=frames, width=TINY)
    videos = model.sample(2, seed=0)
    assert videos.shape == (2, 3, frames, resolution, resolution)
    assert videos.min() >= -1 and videos.max() <= 1
    assert videos.std() > 0
    for role, disc in model.discriminators.items():
        out = disc(videos)
        assert out.logits.shape == (2,), role


def test_default_config_and_recipe():
    spec = vganzoo.model_info("dvdgan")
    cfg = spec["default_config"]
    assert (cfg["resolution"], cfg["frames"], cfg["width"], cfg["num_classes"]) == (64, 16, 1.0, 0)
    assert cfg["latent_dim"] == 120 and cfg["sampled_frames"] == 8
    recipe = spec["recipe"]
    assert recipe["adversarial_loss"] == "hinge" and recipe["d_steps"] == 2
    assert recipe["ema"] == {"decay": 0.9999}
    assert recipe["optimizers"]["generator"]["lr"] == 1e-4
    assert recipe["optimizers"]["generator"]["betas"] == [0.0, 0.999]
    assert set(spec["parameters"]) == {"generator", "discriminator.image", "discriminator.video", "total"}


def test_default_generator_channels():
    with torch.device("meta"):  # shapes only, no orthogonal init
        gen = DVDGANGenerator()
    assert gen.group_channels == (256, 256, 128, 64, 32)  # ch 32 * (8, 8, 4, 2, 1)
    assert len(gen.groups) == 4


def test_same_seed_same_videos(small):
    a = small.sample(2, seed=3)
    b = small.sample(2, seed=3)
    c = small.sample(2, seed=4)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, c)


def test_latents_are_documented_and_frames_differ(small):
    videos, latents = small.sample(3, seed=0, return_latents=True)
    assert set(latents) == {"z"} and latents["z"].shape == (3, 120)
    torch.testing.assert_close(small.generator.eval()(**latents), videos)
    assert not torch.allclose(videos[:, :, 0], videos[:, :, 1])  # the ConvGRU makes frames differ


def test_generator_bn_statistics_are_per_frame(small):
    norms = [m for m in small.generator.modules() if isinstance(m, ConditionalBatchNorm)]
    assert norms and all(m.norm.frames == 4 for m in norms)
    assert small.generator.out_norm.frames == 4


def test_every_weight_layer_is_spectrally_normalised(small):
    for part in (small.generator, *small.discriminators.values()):
        layers = [m for m in part.modules() if isinstance(m, WEIGHT_LAYERS)]
        assert layers
        for layer in layers:
            assert parametrize.is_parametrized(layer, "weight"), layer
    # orthogonal init: the stored (unnormalised) affine weight has orthonormal columns
    affine = small.generator.affine.parametrizations.weight.original
    gram = affine.T @ affine
    torch.testing.assert_close(gram, torch.eye(gram.shape[0]), atol=1e-4, rtol=0)


def test_discriminator_output_shapes_batch_one_and_three(small):
    for n in (1, 3):
        video = torch.rand(n, 3, 4, 32, 32) * 2 - 1
        for disc in small.discriminators.values():
            for mode in (True, False):
                disc.train(mode)
                out = disc(video)
                assert out.logits.shape == (n,) and out.class_logits is None


def test_gradients_reach_every_parameter():
    # Seeded: at the 2-channel test width a few random inits (3 of 300 seeds) leave one bias with an
    # exactly-zero gradient (a dead ReLU, or a bias the next batch norm cancels) - not a wiring fault.
    torch.manual_seed(0)
    model = vganzoo.create("dvdgan", resolution=32, frames=4, width=TINY, num_classes=2)
    _open_attention(model.generator)  # gamma starts at 0, which blocks the projections' gradient
    gen = model.generator.train()
    latents = gen.sample_latents(2, generator=torch.Generator().manual_seed(0), labels=None)
    video = gen(**latents)
    loss = sum(d.train()(video, latents["labels"]).logits.sum() for d in model.discriminators.values())
    loss.backward()
    for part in (gen, *model.discriminators.values()):
        for name, p in part.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_batch_size_one_training_step(small):
    gen = small.generator.train()
    latents = gen.sample_latents(1, generator=torch.Generator().manual_seed(0))
    video = gen(**latents)
    assert video.shape == (1, 3, 4, 32, 32)
    loss = sum(torch.relu(1 - d.train()(video).logits).mean() for d in small.discriminators.values())
    loss.backward()
    assert torch.isfinite(loss)
    gen.zero_grad(set_to_none=True)
    assert small.sample(1, seed=0).shape == (1, 3, 4, 32, 32)


def test_single_channel():
    model = vganzoo.create("dvdgan", resolution=32, frames=4, width=TINY, channels=1)
    videos = model.sample(2, seed=0)
    assert videos.shape == (2, 1, 4, 32, 32)
    assert model.discriminator("video")(videos).logits.shape == (2,)


def test_conditional_sampling(conditional):
    videos, latents = conditional.sample(3, seed=0, labels=[0, 1, 2], return_latents=True)
    assert videos.shape == (3, 3, 4, 32, 32)
    assert latents["labels"].tolist() == [0, 1, 2]
    same_z_other_class = conditional.sample(3, seed=0, labels=[1, 2, 0])
    assert not torch.allclose(videos, same_z_other_class)  # the class embedding changes the video
    drawn = conditional.sample(16, seed=1, return_latents=True)[1]["labels"]
    assert drawn.min() >= 0 and drawn.max() < 3
    for disc in conditional.discriminators.values():
        disc.eval()
        a = disc(videos, torch.tensor([0, 1, 2])).logits
        b = disc(videos, torch.tensor([2, 0, 1])).logits
        assert a.shape == (3,) and not torch.allclose(a, b)  # projection uses the labels


def test_label_errors(conditional, small):
    with pytest.raises(ValueError, match="labels"):
        conditional.sample(2, seed=0, labels=[0, 3])
    with pytest.raises(ValueError, match="labels"):
        conditional.sample(2, seed=0, labels=[0, 1, 2])
    with pytest.raises(ValueError, match="labels"):
        small.sample(2, seed=0, labels=[0, 0])
    gen = conditional.generator
    z = torch.randn(2, 120)
    with pytest.raises(ValueError, match="labels are required"):
        gen(z)
    with pytest.raises(TypeError, match="integer"):
        gen(z, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        gen(z, torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        gen(z, torch.tensor([0, -1]))
    video = torch.zeros(2, 3, 4, 32, 32)
    for disc in conditional.discriminators.values():
        with pytest.raises(ValueError, match="labels are required"):
            disc(video)
        with pytest.raises(ValueError, match="labels"):
            disc(video, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="unconditional"):
        small.discriminator("image")(video, torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="z must have shape"):
        small.generator(torch.randn(2, 7))


def test_spatial_discriminator_frame_choice():
    disc = SpatialDiscriminator(resolution=32, frames=16, width=TINY)
    disc.train()
    index = disc.frame_indices(5, 16, torch.device("cpu"))
    assert index.shape == (5, 8)
    for row in index:
        assert len(set(row.tolist())) == 8 and row.max() < 16  # k distinct frames per clip
    disc.eval()
    assert disc.frame_indices(2, 16, torch.device("cpu")).tolist() == [[0, 2, 4, 6, 9, 11, 13, 15]] * 2
    assert disc.frame_indices(1, 3, torch.device("cpu")).shape == (1, 3)  # k capped by the clip length
    video = torch.rand(2, 3, 3, 32, 32)
    assert disc(video).logits.shape == (2,)
    # in eval mode the frames not chosen do not matter, a chosen one does
    sixteen = torch.rand(2, 3, 16, 32, 32)
    unchosen = sixteen.clone()
    unchosen[:, :, 1] = 0.5
    torch.testing.assert_close(disc(unchosen).logits, disc(sixteen).logits)
    chosen = sixteen.clone()
    chosen[:, :, 2] = 0.5
    assert not torch.allclose(disc(chosen).logits, disc(sixteen).logits)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"resolution": 48}, "resolution"),
        ({"resolution": 16}, "resolution"),
        ({"frames": 6}, "multiple of 4"),
        ({"frames": 0}, "frames"),
        ({"channels": 2}, "channels"),
        ({"width": 0}, "width"),
        ({"num_classes": -1}, "num_classes"),
        ({"sampled_frames": 0}, "sampled_frames"),
    ],
)
def test_config_errors(overrides, match):
    with pytest.raises(InvalidConfigError, match=match):
        vganzoo.create("dvdgan", **{"resolution": 32, "frames": 4, "width": TINY, **overrides})


def test_unknown_keyword_and_component():
    with pytest.raises(InvalidConfigError, match="unknown keyword"):
        vganzoo.create("dvdgan", depth=3)
    with pytest.raises(LookupError, match="unknown discriminator"):
        vganzoo.create("dvdgan", resolution=32, frames=4, width=TINY, discriminators=["nope/none"])


def test_discriminators_can_be_mixed():
    model = vganzoo.create(
        "dvdgan", resolution=32, frames=16, width=TINY, discriminators=["dvdgan/spatial", "vgan/video"]
    )
    assert set(model.discriminators) == {"image", "video"}
    # two discriminators of one role both stay, the second under a suffixed role (models/common.py)
    both = vganzoo.create(
        "dvdgan", resolution=32, frames=16, width=TINY, discriminators=["dvdgan/temporal", "vgan/video"]
    )
    assert set(both.discriminators) == {"video", "video_2"}
    # an empty list builds a generator-only model (for sampling)
    assert (
        len(vganzoo.create("dvdgan", resolution=32, frames=4, width=TINY, discriminators=[]).discriminators)
        == 0
    )
    videos = model.sample(1, seed=0)
    assert model.discriminator("video")(videos).logits.shape == (1,)
    with pytest.raises(InvalidConfigError, match="vgan/video"):  # VGAN's D is unconditional
        vganzoo.create(
            "dvdgan",
            resolution=32,
            frames=16,
            width=TINY,
            num_classes=2,
            discriminators=["dvdgan/spatial", "vgan/video"],
        )
    with pytest.raises(InvalidConfigError, match="multiple of 8"):  # VGAN's D at 32x32 needs 8k frames
        vganzoo.create("dvdgan", resolution=32, frames=4, width=TINY, discriminators=["vgan/video"])


def test_discriminator_input_errors(small):
    for disc in small.discriminators.values():
        with pytest.raises(ValueError, match="video must have shape"):
            disc(torch.zeros(1, 3, 4, 64, 64))
        with pytest.raises(ValueError, match="video must have shape"):
            disc(torch.zeros(3, 4, 32, 32))
    with pytest.raises(ValueError, match="multiple of 4"):
        small.discriminator("video")(torch.zeros(1, 3, 6, 32, 32))


def test_components_are_registered_and_standalone():
    assert {"dvdgan/spatial", "dvdgan/temporal"} <= set(vganzoo.list_components("discriminator"))
    assert "dvdgan/generator" in vganzoo.list_components("generator")
    disc = vganzoo.get_component("discriminator", "dvdgan/temporal")(
        resolution=32, frames=8, channels=3, width=TINY, num_classes=0
    )
    assert isinstance(disc, TemporalDiscriminator)
    assert disc(torch.zeros(2, 3, 8, 32, 32)).logits.shape == (2,)


def test_ema_copy_samples_like_the_generator(small):
    model = vganzoo.create("dvdgan", resolution=32, frames=4, width=TINY)
    ema = model.add_ema()
    assert isinstance(ema, nn.Module) and ema is not model.generator
    torch.testing.assert_close(model.sample(2, seed=0), model.sample(2, seed=0, use_ema=False))


def test_state_dict_round_trip_through_safetensors(tmp_path, conditional):
    from safetensors.torch import load_file, save_file

    for name, part in [("generator", conditional.generator), *conditional.discriminators.items()]:
        save_file(part.state_dict(), str(tmp_path / f"{name}.safetensors"))
    fresh = vganzoo.create("dvdgan", resolution=32, frames=4, width=TINY, num_classes=3)
    fresh.generator.load_state_dict(load_file(str(tmp_path / "generator.safetensors")), strict=True)
    for name, part in fresh.discriminators.items():
        part.load_state_dict(load_file(str(tmp_path / f"{name}.safetensors")), strict=True)
    torch.testing.assert_close(
        fresh.sample(2, seed=0, labels=[0, 2]), conditional.sample(2, seed=0, labels=[0, 2])
    )
    video = torch.rand(2, 3, 4, 32, 32)
    labels = torch.tensor([1, 2])
    for name, part in fresh.discriminators.items():
        other = conditional.discriminator(name)
        torch.testing.assert_close(part.eval()(video, labels).logits, other.eval()(video, labels).logits)


def test_generator_normalises_each_weight_once_per_forward(small):
    """The ConvGRU reuses its weights at every frame; spectral norm must still run once per forward."""
    gen = small.generator.train()
    gru = gen.groups[0].recurrent
    calls = []
    handle = gru.gates.parametrizations.weight[0].register_forward_hook(lambda *args: calls.append(1))
    try:
        gen(**gen.sample_latents(1, generator=torch.Generator().manual_seed(0)))
    finally:
        handle.remove()
    assert len(calls) == 1


def test_empty_batch(conditional):
    assert conditional.sample(0, seed=0).shape == (0, 3, 4, 32, 32)
    empty = torch.zeros(0, 3, 4, 32, 32)
    for disc in conditional.discriminators.values():
        assert disc.eval()(empty, torch.zeros(0, dtype=torch.long)).logits.shape == (0,)


def test_spatial_d_ignores_frame_order_temporal_d_does_not(small):
    """D_S sums per-frame scores (all 4 frames are scored when k >= T); D_T sees motion."""
    video = torch.rand(2, 3, 4, 32, 32) * 2 - 1
    shuffled = video[:, :, [2, 0, 3, 1]]
    spatial = small.discriminator("image").eval()
    temporal = small.discriminator("video").eval()
    torch.testing.assert_close(spatial(shuffled).logits, spatial(video).logits)
    assert not torch.allclose(temporal(shuffled).logits, temporal(video).logits)
