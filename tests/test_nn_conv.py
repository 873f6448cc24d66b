"""STConv3d / STConvTranspose3d against nn.Conv3d / nn.ConvTranspose3d + BatchNorm3d + activation."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vganzoo import ops
from vganzoo.nn import STConv3d, STConvTranspose3d

IMPLS = ["ref"] + (["ext"] if ops.extension_available("cpu") else [])
ACT = {"none": nn.Identity(), "relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2), "tanh": nn.Tanh(),
       "sigmoid": nn.Sigmoid()}


def _reference(layer) -> nn.Sequential:
    """The unfused equivalent of an ST layer, sharing copies of its parameters."""
    if layer.transposed:
        conv = nn.ConvTranspose3d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                  layer.padding, layer.output_padding, layer.groups, layer.bias is not None,
                                  layer.dilation)
    else:
        conv = nn.Conv3d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                         layer.dilation, layer.groups, layer.bias is not None)
    conv.load_state_dict({k: v for k, v in layer.state_dict().items() if not k.startswith("norm.")})
    mods = [conv]
    if layer.norm is not None:
        mods.append(copy.deepcopy(layer.norm))
    mods.append(ACT[layer.activation])
    return nn.Sequential(*mods)


def _randomise_norm(layer, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.norm.weight.copy_(torch.rand(layer.out_channels, generator=g) + 0.5)
        layer.norm.bias.copy_(torch.randn(layer.out_channels, generator=g))
        layer.norm.running_mean.copy_(torch.randn(layer.out_channels, generator=g))
        layer.norm.running_var.copy_(torch.rand(layer.out_channels, generator=g) + 0.5)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("activation", ["leaky_relu", "relu", "tanh"])
def test_eval_folded_matches_unfused(impl, transposed, groups, activation):
    torch.manual_seed(0)
    cls = STConvTranspose3d if transposed else STConv3d
    layer = cls(4, 6, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), groups=groups, bias=True,
                activation=activation, norm="batch", impl=impl).eval()
    _randomise_norm(layer, 1)
    ref = _reference(layer).eval()
    x = torch.randn(2, 4, 3, 6, 6)
    torch.testing.assert_close(layer(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("transposed", [False, True])
def test_train_mode_matches_unfused_with_grads(impl, transposed):
    torch.manual_seed(2)
    cls = STConvTranspose3d if transposed else STConv3d
    layer = cls(3, 4, 3, stride=(1, 2, 2), padding=1, bias=False, activation="leaky_relu", norm="batch", impl=impl)
    ref = _reference(layer)
    x = torch.randn(2, 3, 3, 5, 5, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    y, y_ref = layer(x), ref(x2)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x2.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.weight.grad, ref[0].weight.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(layer.norm.running_mean, ref[1].running_mean)


@pytest.mark.parametrize("impl", IMPLS)
def test_no_norm_and_state_dict_layout(impl):
    torch.manual_seed(3)
    layer = STConv3d(3, 5, 4, stride=2, padding=1, activation="sigmoid", impl=impl)
    assert set(layer.state_dict()) == {"weight", "bias"}
    x = torch.randn(1, 3, 4, 8, 8)
    torch.testing.assert_close(layer(x), torch.sigmoid(F.conv3d(x, layer.weight, layer.bias, 2, 1)))
    bn = STConvTranspose3d(5, 3, 4, 2, 1, bias=False, norm="batch", norm_affine=False)
    assert bn.bias is None and set(bn.state_dict()) == {"weight", "norm.running_mean", "norm.running_var",
                                                        "norm.num_batches_tracked"}


def test_channels_last_kept():
    layer = STConv3d(3, 4, 3, padding=1, activation="relu").eval()
    x = torch.randn(2, 3, 4, 6, 6).contiguous(memory_format=torch.channels_last_3d)
    assert layer(x).is_contiguous(memory_format=torch.channels_last_3d)


def test_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        STConv3d(3, 4, 3, activation="gelu")
    with pytest.raises(ValueError, match="norm"):
        STConv3d(3, 4, 3, norm="instance")
    with pytest.raises(ValueError, match="impl"):
        STConv3d(3, 4, 3, impl="fast")
