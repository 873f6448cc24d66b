"""Every loss against a value computed by hand from its formula."""

import math

import pytest
import torch
from torch import nn

import vganzoo
from vganzoo import losses
from vganzoo.errors import InvalidConfigError


def sp(x: float) -> float:  # softplus
    return math.log1p(math.exp(x))


REAL = torch.tensor([[2.0], [-1.0]])
FAKE = torch.tensor([[0.5], [-3.0]])


def test_bce_matches_hand_computed():
    expected_d = (sp(-2.0) + sp(1.0)) / 2 + (sp(0.5) + sp(-3.0)) / 2
    assert losses.d_loss_bce(REAL, FAKE).item() == pytest.approx(expected_d, rel=1e-6)
    expected_g = (sp(-0.5) + sp(3.0)) / 2
    assert losses.g_loss_bce(FAKE).item() == pytest.approx(expected_g, rel=1e-6)
    # same as -log(sigmoid) written out
    assert losses.g_loss_bce(torch.tensor([0.0])).item() == pytest.approx(math.log(2.0), rel=1e-6)


def test_hinge_matches_hand_computed():
    # relu(1-2)=0, relu(1+1)=2 -> 1 ; relu(1+0.5)=1.5, relu(1-3)=0 -> 0.75
    assert losses.d_loss_hinge(REAL, FAKE).item() == pytest.approx(1.75)
    assert losses.g_loss_hinge(FAKE).item() == pytest.approx(1.25)


def test_wasserstein_matches_hand_computed():
    # mean(fake) = -1.25, mean(real) = 0.5
    assert losses.d_loss_wasserstein(REAL, FAKE).item() == pytest.approx(-1.75)
    assert losses.g_loss_wasserstein(FAKE).item() == pytest.approx(1.25)


def test_patch_logits_are_averaged_over_every_element():
    logits = torch.tensor([[[1.0, 3.0]], [[5.0, 7.0]]])  # (2, 1, 2) patch map
    assert losses.g_loss_wasserstein(logits).item() == pytest.approx(-4.0)


class LinearCritic(nn.Module):
    """D(x) = <w, x> + b: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return (x.flatten(1) * self.w.flatten()).sum(dim=1, keepdim=True) + 0.3


def test_gradient_penalty_linear_critic():
    w = torch.tensor([3.0, 4.0, 0.0, 0.0]).view(1, 1, 2, 2)  # ||w|| = 5 -> (5-1)^2 = 16
    critic = LinearCritic(w)
    real = torch.randn(3, 1, 1, 2, 2)
    fake = torch.randn(3, 1, 1, 2, 2)
    gp = losses.gradient_penalty(critic, real, fake, weight=10.0, generator=torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx(160.0, rel=1e-5)
    gp.backward()  # d/dw 10*(||w||-1)^2 = 20*(||w||-1) * w/||w|| = 16 w
    assert torch.allclose(critic.w.grad, 16.0 * w, rtol=1e-4)


def test_gradient_penalty_uses_interpolates():
    # D(x) = sum(x^2): grad 2x; with eps = 1 the point is the real sample.
    critic = lambda x: x.pow(2).flatten(1).sum(1)
    real = torch.tensor([3.0, 0.0]).view(1, 2, 1, 1, 1)
    fake = torch.zeros(1, 2, 1, 1, 1)
    gp = losses.gradient_penalty(critic, real, fake, weight=1.0, epsilon=torch.tensor([1.0]))
    assert gp.item() == pytest.approx((6.0 - 1.0) ** 2, rel=1e-5)
    gp_half = losses.gradient_penalty(critic, real, fake, weight=1.0, epsilon=torch.tensor([0.5]))
    assert gp_half.item() == pytest.approx((3.0 - 1.0) ** 2, rel=1e-5)


def test_r1_linear_critic():
    w = torch.tensor([1.0, 2.0, 2.0]).view(1, 3, 1, 1, 1)  # ||w||^2 = 9
    critic = LinearCritic(w)
    r1 = losses.r1_penalty(critic, torch.randn(4, 3, 1, 1, 1), weight=2.0)
    assert r1.item() == pytest.approx(0.5 * 2.0 * 9.0, rel=1e-5)


def test_singular_value_clip_against_svd():
    torch.manual_seed(0)
    conv = nn.Conv3d(3, 4, 2)
    with torch.no_grad():
        conv.weight.mul_(10.0)
    bn = nn.BatchNorm3d(4)
    with torch.no_grad():
        bn.running_var.copy_(torch.tensor([4.0, 4.0, 4.0, 4.0]))
        bn.weight.copy_(torch.tensor([5.0, 0.001, 1.0, -1.0]))
    model = nn.Sequential(conv, bn)
    before = torch.linalg.svdvals(conv.weight.detach().reshape(4, -1))
    assert before.max() > 1.5
    losses.singular_value_clip_(model, max_value=1.0)
    after = torch.linalg.svdvals(conv.weight.detach().reshape(4, -1))
    expected = before.clamp(max=1.0)
    assert torch.allclose(after, expected, atol=1e-5)
    # gamma clipped to [0.01 * 2, 2]
    assert torch.allclose(bn.weight.detach(), torch.tensor([2.0, 0.02, 1.0, 0.02]))


def test_singular_value_clip_keeps_small_weights():
    w = torch.diag(torch.tensor([0.5, 0.25])).view(2, 2, 1, 1)
    conv = nn.Conv2d(2, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(w)
    losses.singular_value_clip_(conv)
    assert torch.allclose(conv.weight.detach(), w, atol=1e-6)


def test_content_l1_and_category_and_mask():
    a = torch.tensor([1.0, -1.0, 0.5, 0.0]).view(1, 1, 4, 1, 1)
    b = torch.tensor([0.0, 1.0, 0.5, -1.0]).view(1, 1, 4, 1, 1)
    assert losses.content_l1(a, b).item() == pytest.approx((1 + 2 + 0 + 1) / 4)
    with pytest.raises(ValueError, match="same shape"):
        losses.content_l1(a, b[:, :, :2])
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    # sample 0: p(label 1) = 3/4 ; sample 1: p(label 0) = 1/2
    expected = -(math.log(0.75) + math.log(0.5)) / 2
    assert losses.category_loss(logits, torch.tensor([1, 0])).item() == pytest.approx(expected, rel=1e-6)
    mask = torch.tensor([0.2, 0.6])
    assert losses.mask_l1(mask, weight=0.1).item() == pytest.approx(0.04)


def test_components_registered_and_built_from_recipe():
    for name in (
        "bce",
        "hinge",
        "wasserstein",
        "gradient_penalty",
        "r1",
        "singular_value_clipping",
        "mask_l1",
        "content_l1",
        "category",
    ):
        assert name in vganzoo.list_components("loss")
    assert isinstance(vganzoo.get_component("loss", "hinge")(), losses.HingeLoss)
    assert losses.adversarial_loss("wasserstein").d_loss(REAL, FAKE).item() == pytest.approx(-1.75)
    svc = losses.regularizer({"name": "singular_value_clipping", "every": 5})
    assert svc.stage == "d_after_step" and [i for i in range(12) if svc.active(i)] == [4, 9]
    gp = losses.regularizer({"name": "gradient_penalty", "weight": 10.0})
    assert gp.stage == "d_loss" and gp.weight == 10.0 and gp.active(0)
    with pytest.raises(InvalidConfigError, match="unknown regularizer"):
        losses.regularizer({"name": "nope"})
    with pytest.raises(InvalidConfigError, match="every"):
        losses.regularizer({"name": "r1", "every": 0})
    with pytest.raises(InvalidConfigError, match="bad settings"):
        losses.regularizer({"name": "r1", "wieght": 1.0})
    with pytest.raises(InvalidConfigError, match="unknown loss"):
        losses.adversarial_loss("lsgan")
