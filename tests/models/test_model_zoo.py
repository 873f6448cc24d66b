"""Generic checks run on every registered model (built-in families and installed plugins).

Small widths keep the forward passes cheap; default-config checks only build the modules.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

import vganzoo
from vganzoo import registry
from vganzoo.errors import InvalidConfigError
from vganzoo.models.base import DiscriminatorOutput

# The families shipped in vganzoo.models (other test modules may register throw-away models).
MODELS = [
    n
    for n in vganzoo.list_models()
    if registry.get_model_spec(n).factory.__module__.startswith("vganzoo.models.")
]
SMALL_WIDTH = 0.25
SHARED_KEYS = ("resolution", "frames", "channels", "width", "num_classes")
# How far a float32 model's videos may be from the same model's in float64. StyleGAN-V's time embedding
# takes sines of angles of ~10^2 rad built from float32 matmuls: their rounding (~2e-4, the same in the
# authors' network) shows in its frames.
FLOAT32_ATOL = {"stylegan-v": 1e-3}


def small(name: str, **overrides):
    return vganzoo.create(name, width=SMALL_WIDTH, **overrides)


def small_conditional(name: str, num_classes: int = 3, **overrides):
    """The model with ``num_classes`` classes, or a skip for families without class conditioning."""
    try:
        return small(name, num_classes=num_classes, **overrides)
    except InvalidConfigError as exc:
        if "num_classes" not in str(exc):
            raise
        pytest.skip(f"{name} has no class-conditional variant: {exc}")


def test_every_builtin_family_registers_a_model():
    from vganzoo.models import BUILTIN_FAMILIES

    families = {vganzoo.registry.get_model_spec(n).family for n in MODELS}
    assert set(BUILTIN_FAMILIES) <= families
    assert "mocogan-rnn" in MODELS and "tgan" in MODELS


@pytest.mark.parametrize("name", MODELS)
def test_default_config_has_shared_keys_and_json_recipe(name):
    spec = vganzoo.registry.get_model_spec(name)
    for key in SHARED_KEYS:
        assert key in spec.default_config, f"{name} lacks the shared keyword {key!r}"
    recipe = json.loads(json.dumps(spec.recipe))
    assert recipe["adversarial_loss"] in ("bce", "hinge", "wasserstein")
    assert recipe["d_steps"] >= 1 and recipe["batch_size"] >= 1
    assert {"generator", "discriminators"} <= set(recipe["optimizers"])


@pytest.mark.parametrize("name", MODELS)
def test_default_config_builds_and_config_rebuilds_it(name):
    def build():
        model = vganzoo.create(name)
        config = dict(model.config)
        return model, vganzoo.create(config.pop("model"), **config)

    try:
        with torch.device("meta"):  # cheap: no memory, no init work
            model, rebuilt = build()
    except (RuntimeError, NotImplementedError):  # some initialisers (orthogonal, SVD) need real tensors
        model, rebuilt = build()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    assert len(model.discriminators) >= 1
    assert json.loads(json.dumps(model.recipe)) == model.recipe


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("name", MODELS)
def test_sample_shape_and_range(name, resolution):
    model = small(name, resolution=resolution)
    g = model.generator
    videos = model.sample(2, seed=0)
    assert videos.shape == (2, g.channels, g.frames, resolution, resolution)
    assert torch.isfinite(videos).all()
    assert videos.min() >= -1 and videos.max() <= 1


@pytest.mark.parametrize("name", MODELS)
def test_one_channel(name):
    model = small(name, resolution=32, channels=1)
    assert model.sample(1, seed=0).shape[1] == 1


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_videos(name):
    model = small(name, resolution=32)
    a = model.sample(2, seed=123)
    b = model.sample(2, seed=123)
    c = model.sample(2, seed=124)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", MODELS)
def test_empty_batch_and_seed_range(name):
    model = small(name, resolution=32)
    videos = model.sample(0, seed=0)
    assert videos.shape == (0, *model.sample(1, seed=0).shape[1:])
    with pytest.raises(ValueError, match=r"seed must be in \[-2\*\*63, 2\*\*64\)"):
        model.sample(1, seed=2**70)
    assert model.sample(1, seed=2**64 - 1).shape[0] == 1
    with pytest.raises(ValueError, match="device: 'meta' tensors hold no data"):
        model.sample(1, seed=0, device="meta")


@pytest.mark.parametrize("name", MODELS)
def test_sampling_in_the_models_dtype(name):
    """A model cast with .to(dtype) (or loaded with dtype=) samples in that dtype: the float32 latents
    follow it, and the videos equal the float32 model's up to the dtype's precision; its
    discriminators run in that dtype too (on the CPU as well)."""
    model = small(name, resolution=32)
    reference = model.sample(2, seed=5)
    double = copy.deepcopy(model).to(torch.float64).sample(2, seed=5)
    assert double.dtype == torch.float64
    torch.testing.assert_close(double, reference.double(), atol=FLOAT32_ATOL.get(name, 1e-4), rtol=0)
    for dtype in (torch.bfloat16, torch.float16):
        cast = copy.deepcopy(model).to(dtype)
        videos = cast.sample(2, seed=5)
        assert videos.dtype == dtype and videos.shape == reference.shape
        for role, disc in cast.discriminators.items():  # and the discriminators score them in that dtype
            out = disc(videos)
            assert out.logits.dtype == dtype and out.logits.shape[0] == 2, role


@pytest.mark.parametrize("name", MODELS)
def test_torch_export_of_a_conditional_generator_with_labels(name):
    """The label range check reads values, which torch.export cannot trace: skipped while tracing."""
    model = small_conditional(name, resolution=32).eval()
    latents = model.generator.sample_latents(2, generator=torch.Generator().manual_seed(0))
    assert "labels" in latents
    exported = torch.export.export(model.generator, (), kwargs=latents)
    torch.testing.assert_close(exported.module()(**latents), model.generator(**latents))
    with pytest.raises(ValueError, match="labels must be in"):  # eager still checks
        model.sample(1, seed=0, labels=[7])


@pytest.mark.parametrize("name", MODELS)
def test_returned_latents_reproduce_the_videos(name):
    model = small(name, resolution=32)
    videos, latents = model.sample(2, seed=5, return_latents=True)
    model.generator.eval()
    with torch.no_grad():
        again = model.generator(**latents)
    torch.testing.assert_close(again.clamp(-1, 1), videos)


@pytest.mark.parametrize("name", MODELS)
def test_batch_size_one_train_and_eval(name):
    model = small(name, resolution=32)
    assert model.sample(1, seed=0).shape[0] == 1
    model.train()
    latents = model.generator.sample_latents(1, generator=torch.Generator().manual_seed(0), labels=None)
    fake = model.generator(**latents)
    for disc in model.discriminators.values():
        out = disc(fake)
        assert isinstance(out, DiscriminatorOutput)
        assert out.logits.shape[0] == 1


@pytest.mark.parametrize("name", MODELS)
def test_discriminator_outputs(name):
    model = small(name, resolution=32).train()
    n = 3
    latents = model.generator.sample_latents(n, generator=torch.Generator().manual_seed(0), labels=None)
    fake = model.generator(**latents)
    for role, disc in model.discriminators.items():
        out = disc(fake)
        assert isinstance(out, DiscriminatorOutput), role
        assert out.logits.ndim >= 1 and out.logits.shape[0] == n, (
            role,
            out.logits.shape,
        )  # leading batch dim (protocol)
        assert torch.isfinite(out.logits).all()
        if out.class_logits is not None:
            assert out.class_logits.shape == (n, model.num_classes)


@pytest.mark.parametrize("name", MODELS)
def test_autocast_bfloat16_forward_and_backward(name):
    """Under torch.autocast (what `vganzoo train --amp` uses on the GPU) every 3-D layer runs in the
    autocast dtype, including ones fed by an autocast 2-D or linear layer's bfloat16 output, and the
    gradients reach the float32 parameters."""
    model = small(name, resolution=32).train()
    latents = model.generator.sample_latents(2, generator=torch.Generator().manual_seed(0), labels=None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = model.generator(**latents)
        scores = [disc(fake).logits for disc in model.discriminators.values()]
    assert fake.dtype == torch.bfloat16
    assert all(s.dtype == torch.bfloat16 and torch.isfinite(s).all() for s in scores)
    sum(s.float().mean() for s in scores).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("conditional", [False, True])
def test_gradients_reach_every_parameter(name, conditional):
    model = (
        small_conditional(name, resolution=32) if conditional else small(name, resolution=32, num_classes=0)
    ).train()
    latents = model.generator.sample_latents(2, generator=torch.Generator().manual_seed(0), labels=None)
    fake = model.generator(**latents)
    loss = fake.sum() * 0
    for disc in model.discriminators.values():
        out = disc(fake, latents.get("labels"))
        loss = loss + out.logits.sum()
        if out.class_logits is not None:
            loss = loss + out.class_logits.sum()
    loss.backward()
    missing = [k for k, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", MODELS)
def test_conditional_sampling_and_label_errors(name):
    model = small_conditional(name, resolution=32)
    assert model.num_classes == 3
    videos, latents = model.sample(3, seed=0, labels=[0, 1, 2], return_latents=True)
    assert videos.shape[0] == 3
    assert latents["labels"].tolist() == [0, 1, 2]
    assert model.sample(2, seed=0, labels=1).shape[0] == 2
    # the label changes the video
    a = model.sample(1, seed=0, labels=0)
    b = model.sample(1, seed=0, labels=2)
    assert not torch.equal(a, b)
    with pytest.raises(ValueError, match="labels"):
        model.sample(2, seed=0, labels=[0, 3])
    with pytest.raises(ValueError, match="labels"):
        model.sample(2, seed=0, labels=[0, 1, 2])
    with pytest.raises(ValueError, match="labels"):
        model.sample(2, seed=0, labels=-1)
    with pytest.raises(ValueError, match="labels"):
        model.generator(**{**latents, "labels": torch.tensor([0, 1, 7])})


@pytest.mark.parametrize("name", MODELS)
def test_labels_on_unconditional_model_raise(name):
    model = small(name, resolution=32, num_classes=0)
    with pytest.raises(ValueError, match="labels"):
        model.sample(1, seed=0, labels=0)


@pytest.mark.parametrize(
    "overrides",
    [
        {"resolution": 48},
        {"resolution": 16},
        {"channels": 2},
        {"width": 0},
        {"num_classes": -1},
        {"frames": 0},
        {"no_such_option": 1},
    ],
)
@pytest.mark.parametrize("name", MODELS)
def test_unsupported_configs_raise(name, overrides):
    with pytest.raises(InvalidConfigError), torch.device("meta"):
        vganzoo.create(name, **overrides)


@pytest.mark.cuda
@pytest.mark.parametrize("name", MODELS)
def test_cuda_extension_matches_reference_ops(name, monkeypatch, no_tf32):
    """On the GPU every model computes the same videos, scores and gradients with the fused CUDA ops
    (`impl` "ext") as with the plain-PyTorch reference ops (float32, TF32 off)."""
    from vganzoo import ops
    from vganzoo.ops import fused

    if not ops.extension_available("cuda"):
        pytest.fail("vganzoo._C has no CUDA kernels: build it on this machine first")
    torch.manual_seed(0)
    original = small(name, resolution=32)
    results = {}
    for impl in ("ext", "ref"):
        monkeypatch.setenv(fused.ENV_VAR, impl)
        model = copy.deepcopy(original).to("cuda").eval()  # train-mode forwards move BN statistics

        videos = model.sample(3, seed=5)
        model.train()
        model.zero_grad(set_to_none=True)
        latents = model.generator.sample_latents(3, generator=torch.Generator().manual_seed(1), labels=None)
        latents = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in latents.items()}
        torch.manual_seed(2)  # instance noise, frame choice: the same draws for both implementations
        fake = model.generator(**latents)
        scores = [disc(fake).logits for disc in model.discriminators.values()]
        sum(s.float().mean() for s in scores).backward()
        grads = {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}
        results[impl] = (videos, scores, grads)
    (v_ext, s_ext, g_ext), (v_ref, s_ref, g_ref) = results["ext"], results["ref"]
    assert v_ext.is_cuda and torch.isfinite(v_ext).all()
    torch.testing.assert_close(v_ext, v_ref, atol=1e-3, rtol=1e-3)
    for a, b in zip(s_ext, s_ref):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)
    assert g_ext.keys() == g_ref.keys() and g_ext
    for key in g_ext:
        torch.testing.assert_close(g_ext[key], g_ref[key], atol=1e-3, rtol=1e-2, msg=key)
