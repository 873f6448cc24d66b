"""TGAN: layouts, BN without shift, frame/resolution support, conditioning and singular value clipping."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import vganzoo
from vganzoo.errors import InvalidConfigError
from vganzoo.models.tgan import TGANDiscriminator, TGANGenerator, batch_norm_without_shift_
from vganzoo.nn import singular_value_clip_

TINY = {"width": 0.125}


def test_generator_layout_follows_the_chainer_names():
    with torch.device("meta"):
        g = TGANGenerator()
    shapes = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    assert shapes["temporal.dc0.weight"] == (100, 512, 1)
    assert shapes["temporal.dc4.weight"] == (128, 100, 4)
    assert [shapes[f"temporal.bn{i}.weight"] for i in range(4)] == [(512,), (256,), (128,), (128,)]
    assert not any(k.startswith("temporal.bn") and k.endswith(".bias") for k in shapes)  # no shift
    assert shapes["image.l0s.weight"] == (4096, 100) and shapes["image.l0f.weight"] == (4096, 100)
    assert "image.l0s.bias" not in shapes
    assert shapes["image.bn0s.bias"] == (4096,)  # G1's BNs keep their shift
    assert [shapes[f"image.dc{i}.weight"] for i in range(1, 5)] == [
        (512, 256, 4, 4),
        (256, 128, 4, 4),
        (128, 64, 4, 4),
        (64, 32, 4, 4),
    ]
    assert "image.dc1.bias" not in shapes
    assert shapes["image.dc5.weight"] == (32, 3, 3, 3) and shapes["image.dc5.bias"] == (3,)


def test_discriminator_layout():
    with torch.device("meta"):
        d = TGANDiscriminator()
    shapes = {k: tuple(v.shape) for k, v in d.state_dict().items()}
    assert shapes["c0.weight"] == (64, 3, 4, 4, 4) and shapes["c0.bias"] == (64,)
    assert shapes["c3.weight"] == (512, 256, 4, 4, 4)
    assert shapes["c4.weight"] == (1, 512, 4, 4) and shapes["c4.bias"] == (1,)
    assert "c0.norm.weight" not in shapes and shapes["c1.norm.weight"] == (128,)
    assert not any(k.endswith("norm.bias") for k in shapes)
    assert abs(d.c1.norm.eps - 2e-5) < 1e-12


def test_bn_without_shift_has_a_zero_buffer_and_no_parameter():
    bn = batch_norm_without_shift_(nn.BatchNorm3d(4))
    assert [n for n, _ in bn.named_parameters()] == ["weight"]
    assert torch.equal(bn.bias, torch.zeros(4)) and "bias" not in bn.state_dict()
    x = torch.randn(2, 4, 3, 3, 3) * 3 + 5
    y = bn.train()(x)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3, 4)), torch.zeros(4), atol=1e-5, rtol=0)


def test_weights_start_uniform():
    g = TGANGenerator(resolution=32, **TINY)
    for name, p in g.named_parameters():
        if name.endswith("weight") and p.ndim >= 2:
            assert p.abs().max() <= 0.01, name
    d = TGANDiscriminator(resolution=32, **TINY)
    assert d.c0.weight.abs().max() <= 0.01 and torch.equal(d.c0.bias, torch.zeros_like(d.c0.bias))


def test_default_init_variant_follows_the_no_beta_configs():
    """init="default": G0 and the critic with Chainer's LeCun normal (std sqrt(1/fan_in)), G1 uniform."""
    torch.manual_seed(0)
    model = vganzoo.create("tgan", resolution=32, init="default", **TINY)
    g, d = model.generator, model.discriminators["video"]
    w = g.temporal.dc1.weight  # (in, out, k): fan_in = out * k, as Chainer counts it
    assert w.abs().max() > 0.01
    torch.testing.assert_close(w.std().item(), (1.0 / (w.shape[1] * w.shape[2])) ** 0.5, rtol=0.1, atol=0)
    c = d.c1.weight
    torch.testing.assert_close(c.std().item(), (1.0 / c[0].numel()) ** 0.5, rtol=0.1, atol=0)
    assert g.image.dc1.weight.abs().max() <= 0.01  # VideoGeneratorInitUniform in those configs
    assert vganzoo.create("tgan", resolution=32, **TINY).config["init"] == "uniform-all"
    with pytest.raises(InvalidConfigError, match="init"):
        vganzoo.create("tgan", resolution=32, init="xavier", **TINY)


def test_latents_and_z_fast():
    g = TGANGenerator(resolution=32, **TINY).eval()
    lat = g.sample_latents(3, generator=torch.Generator().manual_seed(0))
    assert set(lat) == {"z_slow"} and lat["z_slow"].shape == (3, 100)
    assert lat["z_slow"].min() >= -1 and lat["z_slow"].max() <= 1 and lat["z_slow"].min() < 0
    with torch.no_grad():
        z_fast = g.temporal(lat["z_slow"])
    assert z_fast.shape == (3, 100, 16) and z_fast.abs().max() <= 1


@pytest.mark.parametrize("frames", [2, 8, 16, 32])
def test_generator_frame_counts(frames):
    g = TGANGenerator(resolution=32, frames=frames, **TINY).eval()
    with torch.no_grad():
        video = g(**g.sample_latents(2, generator=torch.Generator().manual_seed(0)))
    assert video.shape == (2, 3, frames, 32, 32)


@pytest.mark.parametrize("frames", [1, 12, 24])
def test_generator_rejects_non_power_of_two_frames(frames):
    with pytest.raises(InvalidConfigError, match="power of two"):
        TGANGenerator(frames=frames)


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_resolutions(resolution):
    g = TGANGenerator(resolution=resolution, **TINY).eval()
    d = TGANDiscriminator(resolution=resolution, **TINY).eval()
    with torch.no_grad():
        video = g(**g.sample_latents(2, generator=torch.Generator().manual_seed(0)))
        assert video.shape == (2, 3, 16, resolution, resolution)
        assert d(video).logits.shape == (2, 1)
    assert d.c4.weight.shape[-1] == resolution // 16


def test_discriminator_is_16_frames_only():
    with pytest.raises(InvalidConfigError, match="16 frames"):
        TGANDiscriminator(frames=8)
    with pytest.raises(InvalidConfigError, match="16 frames"):
        vganzoo.create("tgan", frames=8)
    d = TGANDiscriminator(resolution=32, **TINY)
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 32, 32\)"):
        d(torch.randn(1, 3, 8, 32, 32))


def test_conditional_generator_and_projection_discriminator():
    model = vganzoo.create("tgan", resolution=32, num_classes=4, **TINY)
    g, d = model.generator, model.discriminators["video"]
    lat = g.sample_latents(2, generator=torch.Generator().manual_seed(0), labels=torch.tensor([1, 3]))
    assert lat["labels"].tolist() == [1, 3]
    with pytest.raises(ValueError, match="labels"):
        g(z_slow=lat["z_slow"])
    with pytest.raises(ValueError, match="labels"):
        g(z_slow=lat["z_slow"], labels=torch.tensor([1, 4]))
    d.eval()
    with torch.no_grad():
        video = g.eval()(**lat)
        plain = d(video).logits
        a = d(video, torch.tensor([0, 0])).logits
        b = d(video, torch.tensor([1, 2])).logits
    assert not torch.equal(a, b) and not torch.equal(plain, a)
    with pytest.raises(ValueError, match="labels"):
        d(video, torch.tensor([0, 9]))
    unconditional = TGANDiscriminator(resolution=32, **TINY)
    with pytest.raises(ValueError, match="unconditional"):
        unconditional(video, torch.tensor([0, 0]))


def test_z_slow_errors():
    g = TGANGenerator(resolution=32, **TINY)
    with pytest.raises(ValueError, match="z_slow"):
        g(z_slow=torch.zeros(2, 99))
    with pytest.raises(ValueError, match="z_slow"):
        g(z_slow=torch.zeros(2, 100, dtype=torch.long))
    with pytest.raises(ValueError, match="unconditional"):
        g(z_slow=torch.zeros(2, 100), labels=torch.tensor([0, 0]))


def test_recipe_is_wgan_with_svc():
    model = vganzoo.create("tgan", resolution=32, **TINY)
    r = model.recipe
    assert r["adversarial_loss"] == "wasserstein" and r["d_steps"] == 1 and r["batch_size"] == 32
    assert r["optimizers"]["generator"] == {"name": "rmsprop", "lr": 5e-5, "alpha": 0.99, "eps": 1e-8}
    assert r["optimizers"]["discriminators"] == r["optimizers"]["generator"]
    assert r["regularizers"] == [{"name": "singular_value_clipping", "every": 5}]


def top_singular_value(w: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(w.detach().reshape(w.shape[0], -1).double(), ord=2))


def test_singular_value_clipping_bounds_every_weight_and_bn_scale():
    torch.manual_seed(0)
    d = TGANDiscriminator(resolution=32, **TINY)
    with torch.no_grad():
        for p in d.parameters():
            p.normal_(0, 1.0)
        d.c2.norm.running_var.uniform_(0.5, 2.0)
        d.c2.norm.weight[0] = 1e-6  # below the floor
    before = {k: v.clone() for k, v in d.state_dict().items()}
    assert max(top_singular_value(d.c1.weight), top_singular_value(d.c4.weight)) > 1.5
    changed = singular_value_clip_(d)
    assert changed >= 5
    for name, p in d.named_parameters():
        if p.ndim >= 4:
            assert top_singular_value(p) <= 1 + 1e-5, name
    for i in (1, 2, 3):
        bn = getattr(d, f"c{i}").norm
        sigma = bn.running_var.sqrt()
        assert (bn.weight <= sigma + 1e-6).all() and (bn.weight >= 0.01 * sigma - 1e-6).all()
    # biases and running statistics are untouched
    after = d.state_dict()
    for k, old in before.items():
        if k.endswith("bias") or "running" in k:
            assert torch.equal(old, after[k]), k


def test_singular_value_clipping_keeps_small_weights_and_handles_any_module():
    conv = nn.Conv2d(4, 4, 3)
    with torch.no_grad():
        conv.weight.mul_(0.01)
    w = conv.weight.clone()
    assert singular_value_clip_(conv) == 0 and torch.equal(conv.weight, w)
    lin = nn.Linear(8, 8)
    with torch.no_grad():
        lin.weight.mul_(100)
    assert singular_value_clip_(lin) == 0  # 2-D weights are not clipped (TGAN clips convs and BNs)
    convt = nn.ConvTranspose3d(3, 5, 2)
    with torch.no_grad():
        convt.weight.normal_(0, 10)
    assert singular_value_clip_(convt, max_value=0.5) == 1
    assert top_singular_value(convt.weight) <= 0.5 + 1e-5
    with pytest.raises(ValueError, match="max_value"):
        singular_value_clip_(conv, max_value=0)
    with pytest.raises(TypeError, match="module"):
        singular_value_clip_(torch.zeros(3))


def test_tgan_generator_with_mocogan_discriminators():
    model = vganzoo.create(
        "tgan", resolution=32, discriminators=["mocogan/patch-image", "mocogan/patch-video"], **TINY
    )
    assert set(model.discriminators) == {"image", "video"}
    video = model.sample(1, seed=0)
    assert model.discriminators["image"](video).logits.shape == (1, 16)


@pytest.mark.parametrize("shape", [(6, 2, 2, 2), (40, 3, 2, 2), (5, 7, 1, 1, 1)])
def test_singular_value_clipping_equals_svd_clip_and_rebuild(shape):
    torch.manual_seed(0)
    conv = nn.Module()
    weight = torch.randn(*shape, dtype=torch.float64)
    weight /= torch.linalg.svdvals(weight.reshape(shape[0], -1)).median()  # values on both sides of 1
    conv.weight = nn.Parameter(weight)
    matrix = conv.weight.detach().reshape(shape[0], -1)
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    assert (s > 1).any() and (s < 1).any()
    expected = (u * s.clamp(max=1.0)) @ vh
    singular_value_clip_(conv)
    torch.testing.assert_close(conv.weight.detach().reshape(shape[0], -1), expected, rtol=1e-9, atol=1e-9)
