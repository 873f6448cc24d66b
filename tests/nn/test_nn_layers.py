"""Unit tests of the shared layers: per-frame / conditional batch norm, ConvGRU, self-attention."""

import pytest
import torch
from torch.nn.utils.parametrizations import spectral_norm

from vganzoo.nn import (
    AxialSelfAttention,
    ConditionalBatchNorm,
    ConvGRU,
    FrameBatchNorm,
    SelfAttention,
    SeparableSelfAttention,
    STConv3d,
)
from vganzoo.nn import spectral_norm as vg_spectral_norm

pytestmark = pytest.mark.usefixtures("one_thread")


def _frames_with_different_scales(n=4, c=3, t=5, h=6, w=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    scale = torch.arange(1, t + 1, dtype=torch.float32).view(1, 1, t, 1, 1)
    return torch.randn(n, c, t, h, w, generator=gen) * scale + 3.0 * scale


# ------------------------------------------------------------------------------------------------
# FrameBatchNorm / ConditionalBatchNorm
# ------------------------------------------------------------------------------------------------
def test_frame_batch_norm_normalises_every_frame_on_its_own():
    x = _frames_with_different_scales()
    bn = FrameBatchNorm(3, frames=5, affine=False).train()
    y = bn(x)
    assert y.shape == x.shape
    per_frame_mean = y.mean(dim=(0, 3, 4))  # (C, T)
    per_frame_var = y.var(dim=(0, 3, 4), unbiased=False)
    torch.testing.assert_close(per_frame_mean, torch.zeros(3, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_frame_var, torch.ones(3, 5), atol=1e-3, rtol=0)
    assert bn.running_mean.shape == (15,)
    # frame-major layout: the running means grow with the frame index like the data
    means = bn.running_mean.view(5, 3).mean(dim=1)
    assert torch.all(means[1:] > means[:-1])


def test_pooled_batch_norm_keeps_differences_between_frames():
    x = _frames_with_different_scales()
    y = FrameBatchNorm(3, frames=None, affine=False).train()(x)
    per_frame_mean = y.mean(dim=(0, 1, 3, 4))
    assert per_frame_mean[-1] - per_frame_mean[0] > 0.5  # pooled stats do not remove the per-frame offset
    torch.testing.assert_close(y.mean(dim=(0, 2, 3, 4)), torch.zeros(3), atol=1e-5, rtol=0)


def test_frame_batch_norm_eval_uses_per_frame_running_stats():
    x = _frames_with_different_scales(n=8)
    bn = FrameBatchNorm(3, frames=5, momentum=1.0).train()
    bn(x)  # momentum 1: the running stats become this batch's (unbiased) stats
    bn.eval()
    y = bn(x)
    torch.testing.assert_close(y.mean(dim=(0, 3, 4)), torch.zeros(3, 5), atol=1e-4, rtol=0)


def test_frame_batch_norm_affine_and_errors():
    bn = FrameBatchNorm(2, frames=3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, 3.0]))
        bn.bias.copy_(torch.tensor([1.0, -1.0]))
    y = bn.train()(torch.randn(4, 2, 3, 5, 5))
    torch.testing.assert_close(y.mean(dim=(0, 2, 3, 4)), torch.tensor([1.0, -1.0]), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="frames"):
        bn(torch.randn(4, 2, 4, 5, 5))
    with pytest.raises(ValueError, match="shape"):
        bn(torch.randn(4, 3, 3, 5, 5))
    with pytest.raises(ValueError, match="frames"):
        FrameBatchNorm(2, frames=0)


def test_frame_batch_norm_batch_size_one():
    y = FrameBatchNorm(2, frames=3).train()(torch.randn(1, 2, 3, 4, 4))
    assert y.shape == (1, 2, 3, 4, 4) and torch.isfinite(y).all()


def test_conditional_batch_norm_uses_the_conditioning_vector():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm(4, cond_dim=6, frames=3).eval()
    x = torch.randn(1, 4, 3, 5, 5).expand(2, -1, -1, -1, -1).contiguous()  # two identical samples
    cond = torch.randn(2, 6)
    y = cbn(x, cond)
    assert y.shape == x.shape
    assert not torch.allclose(y[0], y[1])  # same features, different conditioning -> different output
    # the gain/bias are exactly 1 + W_g c and W_b c on top of the plain normalisation
    normalised = cbn.norm.normalize(x)
    gain = 1 + cbn.gain(cond)
    bias = cbn.bias(cond)
    torch.testing.assert_close(y, normalised * gain[:, :, None, None, None] + bias[:, :, None, None, None])
    with torch.no_grad():
        for p in (*cbn.gain.parameters(), *cbn.bias.parameters()):
            p.zero_()
    torch.testing.assert_close(cbn(x, cond), normalised)


def test_conditional_batch_norm_checks_cond_shape():
    cbn = ConditionalBatchNorm(4, cond_dim=6)
    with pytest.raises(ValueError, match="cond"):
        cbn(torch.randn(2, 4, 3, 5, 5), torch.randn(3, 6))
    with pytest.raises(ValueError, match="cond"):
        cbn(torch.randn(2, 4, 3, 5, 5), torch.randn(2, 5))


def test_conditional_batch_norm_gradients_reach_the_linear_maps():
    cbn = ConditionalBatchNorm(4, cond_dim=6, frames=2).train()
    cond = torch.randn(3, 6, requires_grad=True)
    (cbn(torch.randn(3, 4, 2, 4, 4), cond) ** 2).sum().backward()
    for p in cbn.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert cond.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------
# ConvGRU
# ------------------------------------------------------------------------------------------------
def test_convgru_shapes_and_causality():
    torch.manual_seed(0)
    gru = ConvGRU(3, 5)
    x = torch.randn(2, 3, 6, 4, 4)
    out = gru(x)
    assert out.shape == (2, 5, 6, 4, 4)
    perturbed = x.clone()
    perturbed[:, :, 3] += 1.0
    out2 = gru(perturbed)
    torch.testing.assert_close(out2[:, :, :3], out[:, :, :3], atol=0, rtol=0)  # the past is untouched
    for t in range(3, 6):
        assert not torch.allclose(out2[:, :, t], out[:, :, t])  # the perturbation carries forward


def test_convgru_recurrence_matches_a_manual_step():
    torch.manual_seed(1)
    gru = ConvGRU(2, 3)
    x = torch.randn(1, 2, 2, 4, 4)
    h0 = torch.randn(1, 3, 4, 4)
    out = gru(x, h0)
    reset, update = torch.sigmoid(gru.gates(torch.cat([x[:, :, 0], h0], 1))).chunk(2, 1)
    cand = torch.tanh(gru.candidate(torch.cat([x[:, :, 0], reset * h0], 1)))
    torch.testing.assert_close(out[:, :, 0], update * h0 + (1 - update) * cand)
    # the state is carried: feeding frame 1 alone with h = out[:, :, 0] gives the same result
    torch.testing.assert_close(gru(x[:, :, 1:], out[:, :, 0])[:, :, 0], out[:, :, 1])


def test_convgru_errors():
    with pytest.raises(ValueError, match="odd"):
        ConvGRU(2, 3, kernel_size=2)
    gru = ConvGRU(2, 3)
    with pytest.raises(ValueError, match="x must"):
        gru(torch.randn(1, 3, 2, 4, 4))
    with pytest.raises(ValueError, match="h0"):
        gru(torch.randn(1, 2, 2, 4, 4), torch.randn(1, 3, 5, 5))


# ------------------------------------------------------------------------------------------------
# self-attention
# ------------------------------------------------------------------------------------------------
def _influence(module, shape=(1, 16, 3, 4, 5), where=(1, 2, 3)):
    """Which output positions change when one input position (t, h, w) is perturbed: (T, H, W) bool."""
    torch.manual_seed(0)
    x = torch.randn(*shape)
    bumped = x.clone()
    bumped[:, :, where[0], where[1], where[2]] += 3.0
    with torch.no_grad():
        delta = (module(bumped) - module(x)).abs().sum(dim=(0, 1))
    return delta > 1e-6


def _open(module, gamma=1.0):
    for m in module.modules():
        if hasattr(m, "gamma"):
            with torch.no_grad():
                m.gamma.fill_(gamma)
    return module


def test_attention_is_identity_at_init_and_keeps_shape():
    x = torch.randn(2, 16, 3, 4, 5)
    for module in (SelfAttention(16), AxialSelfAttention(16, "h"), SeparableSelfAttention(16)):
        out = module(x)
        assert out.shape == x.shape
        torch.testing.assert_close(out, x)


def test_full_attention_mixes_every_position():
    assert _influence(_open(SelfAttention(16))).all()


@pytest.mark.parametrize("axis", ["t", "h", "w"])
def test_axial_attention_mixes_only_along_its_axis(axis):
    t, h, w = 1, 2, 3
    changed = _influence(_open(AxialSelfAttention(16, axis)), where=(t, h, w))
    expected = torch.zeros(3, 4, 5, dtype=torch.bool)
    if axis == "t":
        expected[:, h, w] = True
    elif axis == "h":
        expected[t, :, w] = True
    else:
        expected[t, h, :] = True
    assert torch.equal(changed, expected)


def test_separable_attention_order_and_reach():
    module = _open(SeparableSelfAttention(16))
    assert [m.axis for m in module] == ["h", "w", "t"]
    assert _influence(module).all()  # h then w then t reaches every position
    # after h and w only, the perturbation stays within its frame
    changed = _influence(_open(torch.nn.Sequential(module[0], module[1])))
    assert changed[1].all() and not changed[0].any() and not changed[2].any()


def test_attention_small_channels_and_errors():
    out = _open(SelfAttention(2))(torch.randn(1, 2, 2, 2, 2))
    assert out.shape == (1, 2, 2, 2, 2)
    with pytest.raises(ValueError, match="axis"):
        AxialSelfAttention(8, "x")
    with pytest.raises(ValueError, match="permutation"):
        SeparableSelfAttention(8, order=("h", "h", "t"))
    with pytest.raises(ValueError, match="shape"):
        SelfAttention(8)(torch.randn(1, 4, 2, 2, 2))


def test_attention_gradients_reach_projections_once_gamma_is_nonzero():
    module = _open(SeparableSelfAttention(8), gamma=0.5)
    (module(torch.randn(2, 8, 3, 4, 4)) ** 2).sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_spectral_norm_applies_to_stconv3d():
    conv = spectral_norm(STConv3d(4, 6, 3, padding=1))
    conv.train()
    x = torch.randn(1, 4, 3, 5, 5)
    for _ in range(20):  # power iterations run in training forwards
        conv(x)
    with torch.no_grad():
        sigma = torch.linalg.matrix_norm(conv.weight.reshape(6, -1), ord=2)
    assert abs(float(sigma) - 1.0) < 1e-2
    assert conv(x).shape == (1, 6, 3, 5, 5)


# ------------------------------------------------------------------------------------------------
# spectral norm (vganzoo.nn.spectral_norm)
# ------------------------------------------------------------------------------------------------
def _sigma(weight, dim=0):
    with torch.no_grad():
        return float(torch.linalg.matrix_norm(weight.movedim(dim, 0).flatten(1), ord=2))


@pytest.mark.parametrize(
    "make,dim",
    [
        (lambda: torch.nn.Conv2d(4, 6, 3), 0),
        (lambda: torch.nn.Linear(7, 5), 0),
        (lambda: torch.nn.Embedding(4, 9), 0),
        (lambda: STConv3d(3, 5, 3, padding=1), 0),
        (lambda: torch.nn.ConvTranspose2d(4, 6, 3), 1),
    ],
)
def test_our_spectral_norm_normalises_the_largest_singular_value(make, dim):
    torch.manual_seed(0)
    module = vg_spectral_norm(make())
    assert module.parametrizations.weight[0].dim == dim
    module.train()
    with torch.no_grad():
        for _ in range(30):
            _ = module.weight  # each access in training mode runs one power iteration
    assert abs(_sigma(module.weight, dim) - 1.0) < 1e-2
    assert module.parametrizations.weight.original.shape == module.weight.shape


def test_our_spectral_norm_matches_torch_and_its_state_dict_layout():
    torch.manual_seed(0)
    ours = vg_spectral_norm(torch.nn.Conv2d(4, 6, 3))
    theirs = spectral_norm(torch.nn.Conv2d(4, 6, 3))
    assert set(ours.state_dict()) == {
        "bias",
        "parametrizations.weight.original",
        "parametrizations.weight.0._u",
        "parametrizations.weight.0._v",
    }
    assert set(ours.state_dict()) == set(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())  # same keys and shapes: loads both ways
    ours.eval()
    theirs.eval()
    torch.testing.assert_close(ours.weight, theirs.weight)
    ours.train()
    theirs.train()
    torch.testing.assert_close(ours.weight, theirs.weight)  # one power iteration each, same result


def test_our_spectral_norm_gradients_and_meta():
    conv = vg_spectral_norm(torch.nn.Conv2d(2, 3, 3, padding=1))
    conv(torch.randn(1, 2, 4, 4)).sum().backward()
    assert conv.parametrizations.weight.original.grad.abs().sum() > 0
    with torch.device("meta"):
        meta = vg_spectral_norm(torch.nn.Linear(8, 4))
    assert meta.weight.is_meta and meta.weight.shape == (4, 8)
    with pytest.raises(ValueError, match="at least 2 dims"):
        vg_spectral_norm(torch.nn.Linear(3, 3), name="bias")
