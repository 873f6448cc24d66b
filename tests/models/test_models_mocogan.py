"""MoCoGAN: the original's layouts and parameter counts, the latent decomposition, its discriminators."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import vganzoo
from vganzoo.errors import InvalidConfigError, UnknownComponentError
from vganzoo.models.mocogan import (
    CategoricalVideoDiscriminator,
    ImageDiscriminator,
    MoCoGANGenerator,
    PatchImageDiscriminator,
    PatchVideoDiscriminator,
    VideoDiscriminator,
)
from vganzoo.nn import InstanceNoise

# The original VideoGenerator's state_dict at the paper's config (3 channels, 50 + 6 + 10, ngf 64).
ORIGINAL_GENERATOR_LAYOUT = {
    "recurrent.weight_ih": (30, 10),
    "recurrent.weight_hh": (30, 10),
    "recurrent.bias_ih": (30,),
    "recurrent.bias_hh": (30,),
    "main.0.weight": (66, 512, 4, 4),
    "main.3.weight": (512, 256, 4, 4),
    "main.6.weight": (256, 128, 4, 4),
    "main.9.weight": (128, 64, 4, 4),
    "main.12.weight": (64, 3, 4, 4),
}
for _i, _c in ((1, 512), (4, 256), (7, 128), (10, 64)):
    for _k in ("weight", "bias", "running_mean", "running_var"):
        ORIGINAL_GENERATOR_LAYOUT[f"main.{_i}.{_k}"] = (_c,)
    ORIGINAL_GENERATOR_LAYOUT[f"main.{_i}.num_batches_tracked"] = ()

TINY = {"width": 0.125}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def on_meta(factory, **kwargs):
    with torch.device("meta"):
        return factory(**kwargs)


def test_parameter_counts_at_the_paper_config():
    assert count(on_meta(MoCoGANGenerator)) == 3_298_836
    assert count(on_meta(PatchImageDiscriminator)) == 663_296
    assert count(on_meta(PatchVideoDiscriminator)) == 2_650_880
    assert count(on_meta(CategoricalVideoDiscriminator, num_classes=6)) == 11_253_504


def test_default_model_is_the_paper_config():
    with torch.device("meta"):
        model = vganzoo.create("mocogan-rnn")
    assert count(model.generator) == 3_298_836
    assert set(model.discriminators) == {"image", "video"}
    assert isinstance(model.discriminators["image"], PatchImageDiscriminator)
    assert isinstance(model.discriminators["video"], CategoricalVideoDiscriminator)
    assert count(model.discriminators["video"]) == 11_253_504
    assert model.num_classes == 6


def test_generator_state_dict_is_the_originals():
    layout = {k: tuple(v.shape) for k, v in on_meta(MoCoGANGenerator).state_dict().items()}
    assert layout == ORIGINAL_GENERATOR_LAYOUT


def test_frame_code_order_is_content_category_motion():
    torch.manual_seed(0)
    g = MoCoGANGenerator(resolution=32, num_classes=4, **TINY).eval()
    lat = g.sample_latents(2, generator=torch.Generator().manual_seed(1), frames=3)
    with torch.no_grad():
        video = g(**lat)
        h, codes = lat["motion_h0"], []
        for t in range(3):
            h = g.recurrent(lat["motion_noise"][:, t], h)  # the motion code is the GRU state itself
            codes.append(h)
        one_hot = F.one_hot(lat["labels"], 4).float()
        frames = [
            g.main(torch.cat([lat["z_content"], one_hot, codes[t]], 1)[:, :, None, None]) for t in range(3)
        ]
    torch.testing.assert_close(video, torch.stack(frames, dim=2))


def test_h0_and_motion_noise_matter_and_content_is_shared():
    g = MoCoGANGenerator(resolution=32, num_classes=0, **TINY).eval()
    lat = g.sample_latents(1, generator=torch.Generator().manual_seed(0), frames=4)
    with torch.no_grad():
        base = g(**lat)
        other_h0 = g(**{**lat, "motion_h0": lat["motion_h0"] + 1})
        other_noise = g(**{**lat, "motion_noise": lat["motion_noise"].flip(1)})
    assert not torch.allclose(base, other_h0)
    assert not torch.allclose(base, other_noise)


@pytest.mark.parametrize("resolution", [32, 64, 128])
@pytest.mark.parametrize("frames", [1, 5, 16])
def test_generator_resolutions_and_frame_counts(resolution, frames):
    g = MoCoGANGenerator(resolution=resolution, frames=frames, **TINY).eval()
    lat = g.sample_latents(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        video = g(**lat)
    assert video.shape == (2, 3, frames, resolution, resolution)
    assert video.abs().max() <= 1


def test_soft_category_codes_and_label_errors():
    g = MoCoGANGenerator(resolution=32, num_classes=3, **TINY).eval()
    lat = g.sample_latents(2, generator=torch.Generator().manual_seed(0), frames=2)
    labels = lat.pop("labels")
    with torch.no_grad():
        hard = g(**lat, labels=labels)
        same = g(**lat, z_category=F.one_hot(labels, 3).float())
        soft = g(**lat, z_category=torch.full((2, 3), 1 / 3))
    torch.testing.assert_close(hard, same)
    assert soft.shape == hard.shape
    with pytest.raises(ValueError, match="exactly one"):
        g(**lat)
    with pytest.raises(ValueError, match="exactly one"):
        g(**lat, labels=labels, z_category=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="z_category"):
        g(**lat, z_category=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="labels"):
        g(**lat, labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="labels"):
        g(**lat, labels=torch.tensor([[0, 1]]))
    with pytest.raises(TypeError, match="labels"):
        g(**lat, labels=torch.tensor([0.0, 1.0]))


def test_latent_shape_errors_name_the_argument():
    g = MoCoGANGenerator(resolution=32, num_classes=0, **TINY)
    lat = g.sample_latents(2, generator=torch.Generator().manual_seed(0), frames=2)
    with pytest.raises(ValueError, match="z_content"):
        g(**{**lat, "z_content": torch.zeros(2, 49)})
    with pytest.raises(ValueError, match="motion_noise"):
        g(**{**lat, "motion_noise": torch.zeros(3, 2, 10)})
    with pytest.raises(ValueError, match="motion_noise"):
        g(**{**lat, "motion_noise": torch.zeros(2, 0, 10)})
    with pytest.raises(ValueError, match="motion_h0"):
        g(**{**lat, "motion_h0": torch.zeros(2, 11)})
    with pytest.raises(TypeError, match="z_content"):
        g(**{**lat, "z_content": torch.zeros(2, 50, dtype=torch.long)})


@pytest.mark.parametrize(("cls", "logits"), [(PatchImageDiscriminator, 16), (ImageDiscriminator, 1)])
def test_image_discriminators_score_one_frame_per_video(cls, logits):
    d = cls(resolution=32, **TINY).eval()
    video = torch.randn(3, 3, 5, 32, 32)
    torch.manual_seed(0)
    with torch.no_grad():
        out = d(video).logits
        per_frame = torch.stack(
            [d.main(video[:, :, t]).flatten(1) for t in range(5)], dim=1
        )  # (N, T, logits)
    assert out.shape == (3, logits)
    for i in range(3):
        assert any(torch.allclose(out[i], per_frame[i, t]) for t in range(5))


def test_image_discriminator_sees_the_whole_frame():
    # the original code's non-patch ImageDiscriminator at 64x64, 3 channels, ndf 64, counted layer by layer:
    # convs 3*64*16 + 64*128*16 + 128*256*16 + 256*512*16, BN 2*(128+256+512), head 512*16
    assert count(on_meta(ImageDiscriminator)) == 3072 + 131072 + 524288 + 2097152 + 1792 + 8192
    d = ImageDiscriminator(resolution=32, **TINY).eval()
    frame = torch.zeros(1, 3, 1, 32, 32)
    corner = frame.clone()
    corner[..., 0, 0] = 1.0  # a change in a corner moves the one logit (receptive field = whole frame)
    with torch.no_grad():
        assert not torch.allclose(d(frame).logits, d(corner).logits)
    model = vganzoo.create("mocogan-rnn", resolution=32, discriminators=["mocogan/image"], **TINY)
    assert isinstance(model.discriminators["image"], ImageDiscriminator)


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_discriminator_output_shapes(resolution):
    video = torch.randn(2, 3, 16, resolution, resolution)
    with torch.no_grad():
        assert PatchImageDiscriminator(resolution=resolution, **TINY)(video).logits.shape == (2, 16)
        assert ImageDiscriminator(resolution=resolution, **TINY)(video).logits.shape == (2, 1)
        blocks = {32: 3, 64: 4, 128: 5}[resolution]
        patch = PatchVideoDiscriminator(resolution=resolution, **TINY)(video).logits
        assert patch.shape == (2, (16 - 3 * blocks) * 16)
        out = VideoDiscriminator(resolution=resolution, num_classes=5, **TINY)(video)
        assert out.logits.shape == (2, 1) and out.class_logits is None
        out = CategoricalVideoDiscriminator(resolution=resolution, num_classes=5, **TINY)(video)
        assert out.logits.shape == (2, 1) and out.class_logits.shape == (2, 5)
        out = CategoricalVideoDiscriminator(resolution=resolution, num_classes=0, **TINY)(video)
        assert out.class_logits is None


def test_patch_video_output_at_the_paper_config_is_4x4x4():
    d = PatchVideoDiscriminator(**TINY).eval()
    with torch.no_grad():
        assert d(torch.randn(1, 3, 16, 64, 64)).logits.shape == (1, 4 * 4 * 4)


def test_frame_limits_of_the_video_discriminators():
    for cls in (VideoDiscriminator, CategoricalVideoDiscriminator):
        with pytest.raises(InvalidConfigError, match="16 frames"):
            cls(frames=8)
        d = cls(resolution=32, **TINY)
        with pytest.raises(ValueError, match=r"\(N, 3, 16, 32, 32\)"):
            d(torch.randn(1, 3, 15, 32, 32))
    with pytest.raises(InvalidConfigError, match="at least 13 frames"):
        PatchVideoDiscriminator(frames=12)
    PatchVideoDiscriminator(frames=13, **TINY)
    d = PatchVideoDiscriminator(resolution=32, frames=10, **TINY)
    with pytest.raises(ValueError, match="at least 10 frames"):
        d(torch.randn(1, 3, 9, 32, 32))


def test_discriminators_reject_bad_videos():
    d = PatchImageDiscriminator(resolution=32, **TINY)
    with pytest.raises(ValueError, match="shape"):
        d(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="shape"):
        d(torch.randn(1, 1, 2, 32, 32))
    with pytest.raises(ValueError, match="shape"):
        d(torch.randn(1, 3, 2, 64, 64))
    with pytest.raises(TypeError, match="floating"):
        d(torch.zeros(1, 3, 2, 32, 32, dtype=torch.uint8))


def test_instance_noise_is_active_in_eval_mode():
    video = torch.randn(2, 3, 16, 32, 32)
    noisy = PatchVideoDiscriminator(resolution=32, noise_sigma=0.5, **TINY).eval()
    clean = PatchVideoDiscriminator(resolution=32, noise_sigma=0.0, **TINY).eval()
    with torch.no_grad():
        assert not torch.equal(noisy(video).logits, noisy(video).logits)
        assert torch.equal(clean(video).logits, clean(video).logits)
    assert sum(isinstance(m, InstanceNoise) for m in noisy.modules()) == 3  # a slot before each conv
    with pytest.raises(ValueError, match="sigma"):
        InstanceNoise(-1.0)
    model = vganzoo.create("mocogan-rnn", resolution=32, noise_sigma=0.1, noise_layout="every-conv", **TINY)
    assert {m.sigma for m in model.discriminators.modules() if isinstance(m, InstanceNoise)} == {0.1}


def _head_noise(model) -> dict[str, float]:
    """role -> sigma of the noise layer before the head conv (the last layer of ``main``)."""
    return {role: d.main[-2].sigma for role, d in model.discriminators.items()}


def _body_noise(model) -> set[float]:
    return {
        m.sigma for d in model.discriminators.values() for m in d.main[:-2] if isinstance(m, InstanceNoise)
    }


@pytest.mark.parametrize(
    "discriminators",
    [["mocogan/patch-image", "mocogan/categorical-video"], ["mocogan/image", "mocogan/patch-video"]],
)
def test_noise_layout_paper_has_head_noise_only_in_the_patch_image_discriminator(discriminators):
    kw = {"resolution": 32, "noise_sigma": 0.1, "discriminators": discriminators, **TINY}
    paper = vganzoo.create("mocogan-rnn", **kw)
    assert paper.config["noise_layout"] == "paper"
    expected = {
        role: (0.1 if name == "mocogan/patch-image" else 0.0)
        for role, name in zip(("image", "video"), discriminators)
    }
    assert _head_noise(paper) == expected and _body_noise(paper) == {0.1}
    old = vganzoo.create("mocogan-rnn", **kw, noise_layout="every-conv")
    assert set(_head_noise(old).values()) == {0.1}
    # the same parameters and buffers: weights of one layout load into the other
    assert paper.state_dict().keys() == old.state_dict().keys()
    with pytest.raises(InvalidConfigError, match="noise_layout"):
        vganzoo.create("mocogan-rnn", **kw, noise_layout="heads")


def test_a_config_saved_without_noise_layout_rebuilds_the_old_layout():
    """mocogan-rnn.digits's config.json predates the key: it loads as it was trained (noise before
    every head), while a new model gets the paper's layout."""
    model = vganzoo.load("mocogan-rnn.digits", components="all")
    assert model.config["noise_layout"] == "every-conv"
    assert set(_head_noise(model).values()) == {0.1}
    saved = {"model": "mocogan-rnn", "resolution": 32}
    assert vganzoo.registry.complete_saved_config(saved)["noise_layout"] == "every-conv"
    assert (
        vganzoo.registry.complete_saved_config({**saved, "noise_layout": "paper"})["noise_layout"] == "paper"
    )


def test_recipe():
    model = vganzoo.create("mocogan-rnn", resolution=32, **TINY)
    r = model.recipe
    assert r["adversarial_loss"] == "bce" and r["d_steps"] == 1
    assert r["optimizers"]["generator"] == {
        "name": "adam",
        "lr": 2e-4,
        "betas": [0.5, 0.999],
        "weight_decay": 1e-5,
    }
    assert r["optimizers"]["discriminators"] == r["optimizers"]["generator"]
    assert r["discriminator_batch_size"] == {"image": 10, "video": 3}
    assert r["frame_stride"] == 2 and r["category_loss_weight"] == 1.0
    # the original trainers.py loop (tests/train/test_loops.py pins the order it runs in)
    assert (r["name"], r["loop"], r["g_fake_batches"], r["d_category_loss"]) == (
        "paper",
        "alternate",
        "per-discriminator",
        "real",
    )
    assert (
        vganzoo.create("mocogan-rnn", resolution=32, num_classes=0, **TINY).recipe["category_loss_weight"]
        == 0.0
    )
    # a model's recipe is its own copy
    r["optimizers"]["generator"]["lr"] = 1.0
    assert (
        vganzoo.create("mocogan-rnn", resolution=32, **TINY).recipe["optimizers"]["generator"]["lr"] == 2e-4
    )


def test_mixing_discriminators_by_name():
    model = vganzoo.create(
        "mocogan-rnn", resolution=32, discriminators=["mocogan/patch-image", "tgan/video"], **TINY
    )
    assert set(model.discriminators) == {"image", "video"}
    assert type(model.discriminators["video"]).__name__ == "TGANDiscriminator"
    fake = model.sample(2, seed=0)
    assert model.discriminators["video"](fake).logits.shape == (2, 1)
    two = vganzoo.create(
        "mocogan-rnn", resolution=32, discriminators=["mocogan/patch-video", "mocogan/video"], **TINY
    )
    assert set(two.discriminators) == {"video", "video_2"}
    only_g = vganzoo.create("mocogan-rnn", resolution=32, discriminators=[], **TINY)
    assert len(only_g.discriminators) == 0


def test_mixing_errors_name_the_component_and_the_setting():
    with pytest.raises(InvalidConfigError, match=r"'tgan/video'.*frames=8.*16 frames"):
        vganzoo.create("mocogan-rnn", frames=8, discriminators=["tgan/video"])
    with pytest.raises(InvalidConfigError, match=r"'mocogan/categorical-video'.*frames=12"):
        vganzoo.create("mocogan-rnn", frames=12)
    with pytest.raises(UnknownComponentError, match="no-such"):
        vganzoo.create("mocogan-rnn", discriminators=["no-such/disc"])
    with pytest.raises(InvalidConfigError, match="list"):
        vganzoo.create("mocogan-rnn", discriminators="mocogan/video")
    with pytest.raises(InvalidConfigError, match="noise_sigma"):
        vganzoo.create("mocogan-rnn", noise_sigma=-1.0)


def test_components_are_registered():
    names = vganzoo.list_components("discriminator")
    for name in (
        "mocogan/patch-image",
        "mocogan/image",
        "mocogan/categorical-image",
        "mocogan/patch-video",
        "mocogan/video",
        "mocogan/categorical-video",
    ):
        assert name in names
    assert vganzoo.get_component("generator", "mocogan/rnn") is MoCoGANGenerator


def test_categorical_image_discriminator():
    """Image D + per-frame class logits; its body and real/fake head are mocogan/image's exactly."""
    model = vganzoo.create(
        "mocogan-rnn",
        resolution=32,
        num_classes=4,
        discriminators=["mocogan/categorical-image", "mocogan/categorical-video"],
        **TINY,
    )
    d = model.discriminators["image"]
    plain = vganzoo.get_component("discriminator", "mocogan/image")(resolution=32, num_classes=4, **TINY)
    extra = set(d.state_dict()) - set(plain.state_dict())
    assert extra == {"class_head.weight", "class_head.bias"}
    plain.load_state_dict({k: v for k, v in d.state_dict().items() if k not in extra})
    video = model.sample(3, seed=0)
    d.eval(), plain.eval()
    torch.manual_seed(0)
    out = d(video)
    torch.manual_seed(0)
    torch.testing.assert_close(out.logits, plain(video).logits)  # same frame, same real/fake logit
    assert out.logits.shape == (3, 1) and out.class_logits.shape == (3, 4)
    # the class logits are those of the scored frame: one frame repeated gives the same for every index
    still = video[:, :, :1].expand_as(video).contiguous()
    a = d(still).class_logits
    torch.testing.assert_close(d(still).class_logits, a)
    unconditional = vganzoo.get_component("discriminator", "mocogan/categorical-image")(
        resolution=32, num_classes=0, **TINY
    )
    assert unconditional.class_head is None and unconditional(video).class_logits is None


def test_one_frame_clip_for_the_image_discriminator_and_generator():
    model = vganzoo.create(
        "mocogan-rnn", resolution=32, frames=1, discriminators=["mocogan/patch-image"], **TINY
    )
    video = model.sample(2, seed=0)
    assert video.shape == (2, 3, 1, 32, 32)
    assert model.discriminators["image"](video).logits.shape == (2, 16)
