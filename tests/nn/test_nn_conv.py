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
ACT = {
    "none": nn.Identity(),
    "relu": nn.ReLU(),
    "leaky_relu": nn.LeakyReLU(0.2),
    "tanh": nn.Tanh(),
    "sigmoid": nn.Sigmoid(),
}


def _reference(layer) -> nn.Sequential:
    """The unfused equivalent of an ST layer, sharing copies of its parameters."""
    if layer.transposed:
        conv = nn.ConvTranspose3d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.output_padding,
            layer.groups,
            layer.bias is not None,
            layer.dilation,
        )
    else:
        conv = nn.Conv3d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.dilation,
            layer.groups,
            layer.bias is not None,
        )
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
    layer = cls(
        4,
        6,
        (2, 3, 3),
        stride=(1, 2, 2),
        padding=(0, 1, 1),
        groups=groups,
        bias=True,
        activation=activation,
        norm="batch",
        impl=impl,
    ).eval()
    _randomise_norm(layer, 1)
    ref = _reference(layer).eval()
    x = torch.randn(2, 4, 3, 6, 6)
    torch.testing.assert_close(layer(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("transposed", [False, True])
def test_train_mode_matches_unfused_with_grads(impl, transposed):
    torch.manual_seed(2)
    cls = STConvTranspose3d if transposed else STConv3d
    layer = cls(
        3, 4, 3, stride=(1, 2, 2), padding=1, bias=False, activation="leaky_relu", norm="batch", impl=impl
    )
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
    assert bn.bias is None and set(bn.state_dict()) == {
        "weight",
        "norm.running_mean",
        "norm.running_var",
        "norm.num_batches_tracked",
    }


def test_channels_last_kept():
    layer = STConv3d(3, 4, 3, padding=1, activation="relu").eval()
    x = torch.randn(2, 3, 4, 6, 6).contiguous(memory_format=torch.channels_last_3d)
    assert layer(x).is_contiguous(memory_format=torch.channels_last_3d)


PADDINGS = [
    dict(padding="same"),
    dict(padding="valid"),
    dict(padding="same", kernel_size=4),  # odd total padding: torch puts the extra zero at the end
    dict(padding="same", kernel_size=(2, 3, 4), dilation=(1, 2, 1)),
    dict(padding=1, padding_mode="reflect"),
    dict(padding=(1, 2, 0), padding_mode="replicate"),
    dict(padding=2, padding_mode="circular", stride=2),
    dict(padding="same", padding_mode="reflect", kernel_size=4),
]


@pytest.mark.filterwarnings(
    "ignore:Using padding='same' with even kernel lengths"
)  # torch's own conv (the reference)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("kw", PADDINGS, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_string_padding_and_padding_modes_match_conv3d(kw, layout, impl):
    kw = {"kernel_size": 3, **kw}
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Conv3d(2, 3, **kw), nn.LeakyReLU(0.2))
    layer = STConv3d(2, 3, activation="leaky_relu", impl=impl, **kw)
    layer.load_state_dict(reference[0].state_dict())
    x = torch.randn(2, 2, 5, 8, 9, requires_grad=True)
    xl = x.contiguous(memory_format=torch.channels_last_3d) if layout == "channels_last" else x
    y = layer(xl)
    expected = reference(x)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last_3d)
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), x)
    torch.testing.assert_close(grad, expected_grad, atol=1e-4, rtol=1e-4)
    assert layer.padding == reference[0].padding and layer.padding_mode == reference[0].padding_mode


@pytest.mark.parametrize("transposed", [False, True])
def test_factory_kwargs_and_reset_parameters_as_torch(transposed):
    cls, torch_cls = (STConvTranspose3d, nn.ConvTranspose3d) if transposed else (STConv3d, nn.Conv3d)
    layer = cls(4, 6, 3, norm="batch", dtype=torch.float64, device="cpu")
    assert layer.weight.dtype == layer.bias.dtype == layer.norm.weight.dtype == torch.float64
    assert layer(torch.randn(2, 4, 3, 5, 5, dtype=torch.float64)).dtype == torch.float64
    theirs = torch_cls(4, 6, 3, dtype=torch.float64)
    with torch.no_grad():
        layer.norm.running_mean.fill_(3.0)
    torch.manual_seed(7)
    layer.reset_parameters()
    torch.manual_seed(7)
    theirs.reset_parameters()
    torch.testing.assert_close(layer.weight, theirs.weight, atol=0, rtol=0)
    torch.testing.assert_close(layer.bias, theirs.bias, atol=0, rtol=0)
    assert torch.equal(layer.norm.running_mean, torch.zeros(6, dtype=torch.float64))


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (STConv3d, {"activation": "gelu"}, "activation"),
        (STConv3d, {"norm": "instance"}, "norm"),
        (STConv3d, {"impl": "fast"}, "impl"),
        (STConv3d, {"padding": "full"}, "padding"),
        (STConv3d, {"padding": "same", "stride": 2}, "strided"),
        (STConv3d, {"padding_mode": "mirror"}, "padding_mode"),
        (STConvTranspose3d, {"padding": "same"}, "transposed"),
        (STConvTranspose3d, {"padding_mode": "reflect"}, "zeros"),
    ],
)
def test_bad_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(3, 4, 3, **kwargs)


@pytest.mark.parametrize("impl", ["ref", "auto"])
@pytest.mark.parametrize("norm", [None, "batch"])
def test_transposed_output_size_as_conv_transpose3d(impl, norm):
    """forward(x, output_size=...) picks the output padding per call, as nn.ConvTranspose3d does."""
    torch.manual_seed(0)
    layer = STConvTranspose3d(3, 4, (3, 4, 4), stride=(1, 2, 2), padding=1, norm=norm, impl=impl).eval()
    ref = nn.ConvTranspose3d(3, 4, (3, 4, 4), stride=(1, 2, 2), padding=1, bias=True).eval()
    ref.load_state_dict({k: v for k, v in layer.state_dict().items() if k in ("weight", "bias")})
    x = torch.randn(2, 3, 4, 5, 5)
    for size in [(4, 10, 10), (4, 11, 11), (4, 10, 11), (2, 4, 4, 11, 10)]:
        y = layer(x, output_size=size)
        assert y.shape[2:] == tuple(size[-3:])
        if norm is None:
            torch.testing.assert_close(y, ref(x, output_size=list(size)))
    assert layer(x).shape[2:] == (4, 10, 10)  # the layer's own output_padding is unchanged afterwards
    with pytest.raises(ValueError, match="requested an output size of"):
        layer(x, output_size=(4, 13, 13))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("cls", [STConv3d, STConvTranspose3d])
def test_torchscript_says_what_to_use_instead(cls):
    with pytest.raises(TypeError, match="TorchScript is not supported.*torch.compile"):
        torch.jit.script(nn.Sequential(cls(2, 3, 3)))
