"""Fused conv ops: extension vs reference vs torch.nn.functional, autograd, opcheck, compile, errors."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vganzoo import ops
from vganzoo.ops import _ext, fused

HAS_EXT = ops.extension_available("cpu")
needs_ext = pytest.mark.skipif(not HAS_EXT, reason="vganzoo._C not built")
ACTS = ops.ACTIVATIONS
CL = torch.channels_last_3d
SLOPE = 0.2


def _act(y, activation):
    return ops.apply_activation(y, activation, SLOPE)


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "channels_last":
        return x.contiguous(memory_format=CL)
    if layout == "noncontig":  # a strided view: every other element along W of a wider tensor
        wide = torch.repeat_interleave(x, 2, dim=-1).clone()
        wide[..., 1::2] = float("nan")
        return wide[..., ::2]
    return x.contiguous()


conv_cfg = st.fixed_dictionaries(
    {
        "n": st.integers(1, 2),
        "groups": st.sampled_from([1, 2]),
        "cin_per_g": st.integers(1, 3),
        "cout_per_g": st.integers(1, 3),
        "size": st.tuples(st.integers(1, 5), st.integers(3, 7), st.integers(3, 7)),
        "k": st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
        "stride": st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 3)),
        "padding": st.tuples(st.integers(0, 1), st.integers(0, 2), st.integers(0, 1)),
        "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 1)),
        "bias": st.booleans(),
        "activation": st.sampled_from(ACTS),
        "layout": st.sampled_from(["contiguous", "channels_last", "noncontig"]),
        "dtype": st.sampled_from([torch.float64, torch.float32]),
        "seed": st.integers(0, 2**16),
    }
)

FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def _conv_inputs(c, transposed):
    g = torch.Generator().manual_seed(c["seed"])
    cin, cout = c["cin_per_g"] * c["groups"], c["cout_per_g"] * c["groups"]
    x = torch.randn(c["n"], cin, *c["size"], generator=g, dtype=c["dtype"])
    wshape = (cin, c["cout_per_g"]) if transposed else (cout, c["cin_per_g"])
    w = torch.randn(*wshape, *c["k"], generator=g, dtype=c["dtype"]) * 0.3
    b = torch.randn(cout, generator=g, dtype=c["dtype"]) if c["bias"] else None
    return _layout(x, c["layout"]), w, b


def _tol(dtype):
    return dict(atol=1e-10, rtol=1e-10) if dtype == torch.float64 else dict(atol=2e-5, rtol=2e-5)


@needs_ext
@FAST
@given(c=conv_cfg)
def test_conv3d_matches_functional(c):
    span_ok = all(
        (k - 1) * d + 1 <= s + 2 * p for k, d, s, p in zip(c["k"], c["dilation"], c["size"], c["padding"])
    )
    if not span_ok:
        return
    x, w, b = _conv_inputs(c, transposed=False)
    args = (c["stride"], c["padding"], c["dilation"], c["groups"], c["activation"], SLOPE)
    y = ops.conv3d_bias_act(x, w, b, *args, impl="ext")
    expected = _act(F.conv3d(x, w, b, c["stride"], c["padding"], c["dilation"], c["groups"]), c["activation"])
    torch.testing.assert_close(y, expected, **_tol(c["dtype"]))
    torch.testing.assert_close(ops.conv3d_bias_act(x, w, b, *args, impl="ref"), expected, **_tol(c["dtype"]))
    want_cl = c["layout"] == "channels_last" and not x.is_contiguous()
    assert y.is_contiguous(memory_format=CL if want_cl else torch.contiguous_format)


@needs_ext
@pytest.mark.parametrize("strategy", ["aten", "onednn", "onednn_cl", "gemm", "direct"])
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
@given(c=conv_cfg, transposed=st.booleans())
def test_every_forced_cpu_path_matches_functional(strategy, c, transposed, monkeypatch):
    """Each CPU path, forced with VGANZOO_CPU_STRATEGY (a path that does not apply falls back to the
    automatic choice), computes the same function in the input's memory format."""
    monkeypatch.setenv("VGANZOO_CPU_STRATEGY", strategy)
    x, w, b = _conv_inputs(c, transposed=transposed)
    s, p, d, groups = c["stride"], c["padding"], c["dilation"], c["groups"]
    if transposed:
        out_pad = tuple(min(1, max(si, di) - 1) for si, di in zip(s, d))
        try:
            expected = F.conv_transpose3d(x, w, b, s, p, out_pad, groups, d)
        except RuntimeError:
            return
        if min(expected.shape[2:]) < 1:
            return
        y = ops.conv_transpose3d_bias_act(
            x, w, b, s, p, out_pad, d, groups, c["activation"], SLOPE, impl="ext"
        )
    else:
        if not all((k - 1) * di + 1 <= si + 2 * pi for k, di, si, pi in zip(c["k"], d, c["size"], p)):
            return
        expected = F.conv3d(x, w, b, s, p, d, groups)
        y = ops.conv3d_bias_act(x, w, b, s, p, d, groups, c["activation"], SLOPE, impl="ext")
    torch.testing.assert_close(y, _act(expected, c["activation"]), **_tol(c["dtype"]))
    want_cl = c["layout"] == "channels_last" and not x.is_contiguous()
    assert y.is_contiguous(memory_format=CL if want_cl else torch.contiguous_format)


@needs_ext
@pytest.mark.parametrize("strategy", ["auto", "aten", "onednn", "onednn_cl", "gemm", "direct"])
@pytest.mark.parametrize("transposed", [False, True])
def test_strided_weight_and_bias_views(strategy, transposed, monkeypatch):
    """Weight and bias given as strided views (a bias that is a column of a bigger tensor, a weight
    sliced out of a wider one) compute what contiguous copies do, on every CPU path. (oneDNN read a
    strided bias at the wrong offsets: a silently wrong result.)"""
    monkeypatch.setenv("VGANZOO_CPU_STRATEGY", strategy)
    torch.manual_seed(0)
    x = torch.randn(2, 4, 4, 6, 6)
    shape = (4, 8, 3, 3, 3) if transposed else (8, 4, 3, 3, 3)
    w = torch.randn(*shape[:-1], 2 * shape[-1])[..., ::2]  # last-dim stride 2
    b = torch.randn(8, 3)[:, 1]  # stride 3
    assert not w.is_contiguous() and not b.is_contiguous()
    for act in ("none", "leaky_relu"):
        for layout in ("contiguous", "channels_last"):
            xi = _layout(x, layout)
            if transposed:
                y = ops.conv_transpose3d_bias_act(
                    xi, w, b, 2, 1, 1, activation=act, negative_slope=SLOPE, impl="ext"
                )
                expected = F.conv_transpose3d(xi, w.contiguous(), b.contiguous(), 2, 1, 1)
            else:
                y = ops.conv3d_bias_act(xi, w, b, 1, 1, activation=act, negative_slope=SLOPE, impl="ext")
                expected = F.conv3d(xi, w.contiguous(), b.contiguous(), 1, 1)
            torch.testing.assert_close(y, _act(expected, act), **_tol(torch.float32), msg=f"{act} {layout}")


@needs_ext
@FAST
@given(c=conv_cfg, out_pad=st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 1)))
def test_conv_transpose3d_matches_functional(c, out_pad):
    out_pad = tuple(min(o, max(s, d) - 1) for o, s, d in zip(out_pad, c["stride"], c["dilation"]))
    sizes = [
        (i - 1) * s - 2 * p + d * (k - 1) + o + 1
        for i, s, p, d, k, o in zip(c["size"], c["stride"], c["padding"], c["dilation"], c["k"], out_pad)
    ]
    if min(sizes) < 1:
        return
    x, w, b = _conv_inputs(c, transposed=True)
    y = ops.conv_transpose3d_bias_act(
        x,
        w,
        b,
        c["stride"],
        c["padding"],
        out_pad,
        c["dilation"],
        c["groups"],
        c["activation"],
        SLOPE,
        impl="ext",
    )
    expected = _act(
        F.conv_transpose3d(x, w, b, c["stride"], c["padding"], out_pad, c["groups"], c["dilation"]),
        c["activation"],
    )
    torch.testing.assert_close(y, expected, **_tol(c["dtype"]))


@needs_ext
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("cin,cout,size", [(3, 8, (5, 12, 12)), (8, 1, (4, 6, 6)), (6, 4, (1, 1, 1))])
def test_zoo_like_layers_and_paths(transposed, cin, cout, size):
    """Shapes that hit every CPU path (3-channel input, single output channel, 1x1x1 transposed input)."""
    torch.manual_seed(0)
    x = torch.randn(2, cin, *size)
    w = torch.randn(*((cin, cout) if transposed else (cout, cin)), 2, 3, 3) * 0.2
    b = torch.randn(cout)
    pad = (0, 1, 1) if size != (1, 1, 1) else (0 if transposed else 1)
    for act in ACTS:
        for layout in ("contiguous", "channels_last"):
            xi = _layout(x, layout)
            if transposed:
                y = ops.conv_transpose3d_bias_act(xi, w, b, (1, 2, 2), pad, activation=act, impl="ext")
                ref = _act(F.conv_transpose3d(xi, w, b, (1, 2, 2), pad), act)
            else:
                y = ops.conv3d_bias_act(xi, w, b, (1, 2, 2), pad, activation=act, impl="ext")
                ref = _act(F.conv3d(xi, w, b, (1, 2, 2), pad), act)
            torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
            path = ops.explain(xi, w, b, (1, 2, 2), pad, activation=act, transposed=transposed, impl="ext")
            assert path.startswith("ext: ext/cpu:"), path


few_cout_cfg = st.fixed_dictionaries(
    {
        "n": st.integers(1, 3),
        "cin": st.sampled_from([1, 3, 16, 19, 32, 40]),  # whole 16-vectors, tails, tails only
        "cout": st.integers(1, 4),
        "size": st.tuples(st.integers(1, 5), st.integers(2, 7), st.integers(2, 7)),
        "k": st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3)),
        "stride": st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 3)),
        "padding": st.tuples(st.integers(0, 1), st.integers(0, 2), st.integers(0, 1)),
        "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 1)),
        "bias": st.booleans(),
        "activation": st.sampled_from(ACTS),
        "layout": st.sampled_from(["contiguous", "channels_last", "noncontig"]),
        "dtype": st.sampled_from([torch.float64, torch.float32]),
        "transposed": st.booleans(),
        "seed": st.integers(0, 2**16),
    }
)


@needs_ext
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
@given(c=few_cout_cfg)
def test_direct_few_output_channels_kernel(c, monkeypatch):
    """The direct kernel (forced for every call it can take) against torch.nn.functional."""
    monkeypatch.setenv("VGANZOO_CPU_STRATEGY", "direct")
    g = torch.Generator().manual_seed(c["seed"])
    x = torch.randn(c["n"], c["cin"], *c["size"], generator=g, dtype=c["dtype"])
    wshape = (c["cin"], c["cout"]) if c["transposed"] else (c["cout"], c["cin"])
    w = torch.randn(*wshape, *c["k"], generator=g, dtype=c["dtype"]) * 0.3
    b = torch.randn(c["cout"], generator=g, dtype=c["dtype"]) if c["bias"] else None
    x = _layout(x, c["layout"])
    s, p, d = c["stride"], c["padding"], c["dilation"]
    if c["transposed"]:
        try:
            expected = F.conv_transpose3d(x, w, b, s, p, 0, 1, d)
        except RuntimeError:
            return  # padding larger than the dilated kernel: not a valid transposed convolution
        if min(expected.shape[2:]) < 1:
            return  # an empty output dimension: the op rejects it (tested elsewhere)
        y = ops.conv_transpose3d_bias_act(
            x, w, b, s, p, 0, d, activation=c["activation"], negative_slope=SLOPE, impl="ext"
        )
        path = ops.explain(x, w, b, s, p, d, activation=c["activation"], transposed=True, impl="ext")
    else:
        padded = [c["size"][i] + 2 * p[i] - d[i] * (c["k"][i] - 1) for i in range(3)]
        if min(padded) < 1:
            return  # kernel larger than the padded input (an error case, tested elsewhere)
        expected = F.conv3d(x, w, b, s, p, d)
        y = ops.conv3d_bias_act(
            x, w, b, s, p, d, activation=c["activation"], negative_slope=SLOPE, impl="ext"
        )
        path = ops.explain(x, w, b, s, p, d, activation=c["activation"], impl="ext")
    assert "direct_small_cout" in path, path
    expected = _act(expected, c["activation"])
    channels_last_in = x.is_contiguous(memory_format=CL) and not x.is_contiguous()  # the op's format rule
    assert y.is_contiguous(memory_format=CL if channels_last_in else torch.contiguous_format)
    torch.testing.assert_close(y, expected, **_tol(c["dtype"]))


@needs_ext
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontig"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("cin,cout,size", [(512, 1, (4, 4, 4)), (64, 2, (2, 4, 4)), (5, 7, (1, 3, 2))])
def test_full_window_and_score_heads(layout, dtype, cin, cout, size):
    """A kernel as large as its unpadded input is one matrix product; the zoo's score heads take it or the
    direct kernel automatically (explain says which), and agree with F.conv3d in every layout."""
    torch.manual_seed(3)
    x = _layout(torch.randn(3, cin, *size, dtype=dtype), layout)
    w = torch.randn(cout, cin, *size, dtype=dtype) * 0.05
    b = torch.randn(cout, dtype=dtype)
    for act in ACTS:
        y = ops.conv3d_bias_act(x, w, b, activation=act, negative_slope=SLOPE, impl="ext")
        assert y.shape == (3, cout, 1, 1, 1)
        torch.testing.assert_close(y, _act(F.conv3d(x, w, b), act), **_tol(dtype))
        assert "full_window_gemm" in ops.explain(x, w, b, activation=act, impl="ext")
    # Padding or a smaller kernel is no longer one window: the general paths take it, same results.
    y = ops.conv3d_bias_act(x, w, b, padding=1, impl="ext")
    torch.testing.assert_close(y, F.conv3d(x, w, b, padding=1), **_tol(dtype))
    assert "full_window" not in ops.explain(x, w, b, padding=1, impl="ext")
    # MoCoGAN's patch video head (256 -> 1, k4, stride (1, 2, 2)) takes the direct kernel by itself.
    xp = torch.randn(2, 256, 7, 8, 8, dtype=dtype)
    wp = torch.randn(1, 256, 4, 4, 4, dtype=dtype) * 0.05
    assert "direct_small_cout" in ops.explain(xp, wp, None, (1, 2, 2), (0, 1, 1), impl="ext")
    torch.testing.assert_close(
        ops.conv3d_bias_act(xp, wp, None, (1, 2, 2), (0, 1, 1), impl="ext"),
        F.conv3d(xp, wp, None, (1, 2, 2), (0, 1, 1)),
        **_tol(dtype),
    )


@needs_ext
@pytest.mark.parametrize("size,padding", [((2, 3, 3), 1), ((2, 3, 3), 0)])
def test_gradcheck_direct_and_full_window_paths(size, padding):
    """float64 gradcheck through the two few-channel forward paths (padding 1: direct kernel; no padding
    with a kernel as large as the input: one matrix product)."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, *size, dtype=torch.float64, requires_grad=True)
    w = (torch.randn(2, 16, *size, dtype=torch.float64) * 0.2).requires_grad_()
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    path = ops.explain(x, w, b, 1, padding, activation="tanh", impl="ext")
    assert ("direct_small_cout" if padding else "full_window_gemm") in path, path
    assert torch.autograd.gradcheck(
        lambda *t: ops.conv3d_bias_act(*t, 1, padding, activation="tanh", impl="ext"), (x, w, b)
    )


@needs_ext
def test_channels_last_round_trip_in_chunks(monkeypatch):
    """Forced channels-last round trip on a contiguous input: oneDNN on a channels-last copy, the output
    transposed back per chunk of samples (8 MB per sample here: three chunks); contiguous out, same values."""
    monkeypatch.setenv("VGANZOO_CPU_STRATEGY", "onednn_cl")
    torch.manual_seed(5)
    x = torch.randn(3, 3, 8, 64, 64)
    w, b = torch.randn(64, 3, 3, 3, 3) * 0.2, torch.randn(64)
    assert "onednn_fused_channels_last" in ops.explain(x, w, b, 1, 1, activation="leaky_relu", impl="ext")
    y = ops.conv3d_bias_act(x, w, b, 1, 1, activation="leaky_relu", negative_slope=SLOPE, impl="ext")
    assert y.is_contiguous()
    torch.testing.assert_close(y, F.leaky_relu(F.conv3d(x, w, b, 1, 1), SLOPE), atol=1e-4, rtol=1e-4)


@needs_ext
@pytest.mark.parametrize("transposed", [False, True])
def test_full_window_backward_double_backward_and_opcheck(transposed):
    """The full-window layers' gradients are matrix products (not ATen's convolution backward): gradcheck,
    gradgradcheck (R1 penalties) and opcheck on both directions."""
    torch.manual_seed(1)
    if transposed:  # a 1x1x1 input spread over one (2, 3, 2) output
        x = torch.randn(3, 4, 1, 1, 1, dtype=torch.float64, requires_grad=True)
        w = (torch.randn(4, 5, 2, 3, 2, dtype=torch.float64) * 0.3).requires_grad_()
    else:  # a kernel as large as its input
        x = torch.randn(3, 4, 2, 3, 2, dtype=torch.float64, requires_grad=True)
        w = (torch.randn(5, 4, 2, 3, 2, dtype=torch.float64) * 0.3).requires_grad_()
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    op = ops.conv_transpose3d_bias_act if transposed else ops.conv3d_bias_act
    assert "full_window_gemm" in ops.explain(
        x, w, b, activation="leaky_relu", transposed=transposed, impl="ext"
    )
    fn = lambda *t: op(*t, activation="leaky_relu", negative_slope=SLOPE, impl="ext")
    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b))
    # The same gradients as torch.nn.functional's in float32, incl. without bias.
    xf, wf = x.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    ref_fn = F.conv_transpose3d if transposed else F.conv3d
    loss = op(xf, wf, impl="ext").square().sum()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        (ga, gb) = torch.autograd.grad(loss, (xf, wf))
    names = {e.name for e in prof.events()}
    assert "aten::mm" in names and "aten::convolution_backward" not in names, sorted(names)
    (gc, gd) = torch.autograd.grad(ref_fn(xf, wf).square().sum(), (xf, wf))
    torch.testing.assert_close(ga, gc, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gb, gd, atol=1e-5, rtol=1e-5)
    target = torch.ops.vganzoo.conv_transpose3d_bias_act if transposed else torch.ops.vganzoo.conv3d_bias_act
    args = (
        (x, w, b, [1, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1], 1, "leaky_relu", SLOPE)
        if transposed
        else (x, w, b, [1, 1, 1], [0, 0, 0], [1, 1, 1], 1, "leaky_relu", SLOPE)
    )
    torch.library.opcheck(target, args)


@needs_ext
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck_direct_kernel(layout):
    """Schema, fake-tensor strides, autograd registration and AOT dispatch for the direct kernel's path."""
    torch.manual_seed(2)
    x = _layout(torch.randn(2, 32, 5, 8, 8, dtype=torch.float64), layout).requires_grad_()
    w = torch.randn(2, 32, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert "direct_small_cout" in ops.explain(x, w, b, (1, 2, 2), 1, activation="leaky_relu", impl="ext")
    torch.library.opcheck(
        torch.ops.vganzoo.conv3d_bias_act, (x, w, b, [1, 2, 2], [1, 1, 1], [1, 1, 1], 1, "leaky_relu", SLOPE)
    )


@needs_ext
@pytest.mark.parametrize("transposed", [False, True])
def test_backward_op_is_atens_convolution_backward(transposed):
    """vganzoo::conv3d_bias_act_backward (what a CUDA backward dispatches through, for the CUTLASS kernels) is
    ATen's convolution_backward on every other device: each gradient the mask asks for, none it does not."""
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 4, 5, 6, 7, generator=g, dtype=torch.float64)
    w_shape = (4, 3, 3, 2, 3) if transposed else (3, 4, 3, 2, 3)
    w = torch.randn(*w_shape, generator=g, dtype=torch.float64)
    stride, padding, dilation = [1, 2, 2], [1, 0, 1], [1, 1, 2]
    output_padding = [0, 1, 1] if transposed else [0, 0, 0]
    if transposed:
        y = F.conv_transpose3d(x, w, None, stride, padding, output_padding, 1, dilation)
    else:
        y = F.conv3d(x, w, None, stride, padding, dilation)
    grad = torch.randn(y.shape, generator=g, dtype=torch.float64)
    c_out = w.shape[1] if transposed else w.shape[0]
    for mask in itertools.product([False, True], repeat=3):
        got = torch.ops.vganzoo.conv3d_bias_act_backward(
            grad, x, w, stride, padding, output_padding, dilation, 1, transposed, list(mask)
        )
        want = torch.ops.aten.convolution_backward(
            grad, x, w, [c_out], stride, padding, dilation, transposed, output_padding, 1, list(mask)
        )
        for asked, a, b in zip(mask, got, want):
            if asked:
                torch.testing.assert_close(a, b)
            else:
                assert a is None and b is None


@needs_ext
def test_cpu_strategy_variable_is_checked(monkeypatch):
    x, w = torch.randn(1, 2, 3, 3, 3), torch.randn(2, 2, 1, 1, 1)
    monkeypatch.setenv("VGANZOO_CPU_STRATEGY", "fastest")
    with pytest.raises(RuntimeError, match="VGANZOO_CPU_STRATEGY must be one of"):
        ops.conv3d_bias_act(x, w, impl="ext")
    monkeypatch.setenv("VGANZOO_CPU_STRATEGY", "auto")
    torch.testing.assert_close(ops.conv3d_bias_act(x, w, impl="ext"), F.conv3d(x, w))


@needs_ext
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_cpu(dtype):
    torch.manual_seed(1)
    x, w, b = torch.randn(2, 4, 4, 6, 6), torch.randn(5, 4, 3, 3, 3) * 0.2, torch.randn(5)
    try:
        expected = F.leaky_relu(F.conv3d(x.to(dtype), w.to(dtype), b.to(dtype), 1, 1), SLOPE)
    except RuntimeError as exc:  # pragma: no cover - depends on the torch build
        pytest.skip(f"{dtype} conv3d unsupported on this CPU build: {exc}")
    y = ops.conv3d_bias_act(x.to(dtype), w.to(dtype), b.to(dtype), 1, 1, activation="leaky_relu", impl="ext")
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), expected.float(), atol=2e-2, rtol=2e-2)


# Autocast: conv3d / conv_transpose3d are on ATen's lower-precision autocast list; the fused ops follow it.
AUTOCAST_IMPLS = ["ref", pytest.param("ext", marks=needs_ext)]


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("impl", AUTOCAST_IMPLS)
def test_autocast_runs_in_the_autocast_dtype_like_functional(impl, transposed):
    torch.manual_seed(2)
    x = torch.randn(2, 4, 3, 6, 6)
    w = (torch.randn(4, 5, 3, 3, 3) if transposed else torch.randn(5, 4, 3, 3, 3)).mul_(0.2).requires_grad_()
    b = torch.randn(5, requires_grad=True)
    fused_op = ops.conv_transpose3d_bias_act if transposed else ops.conv3d_bias_act
    functional = F.conv_transpose3d if transposed else F.conv3d
    stride = (1, 2, 2)
    grads = {}
    for name, run in (
        (
            "ours",
            lambda xi: fused_op(
                xi, w, b, stride, 1, activation="leaky_relu", negative_slope=SLOPE, impl=impl
            ),
        ),
        ("torch", lambda xi: F.leaky_relu(functional(xi, w, b, stride, 1), SLOPE)),
    ):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = run(x)
            y_bf16_in = run(x.bfloat16())  # the output of an earlier autocast layer
        assert y.dtype == torch.bfloat16 and y_bf16_in.dtype == torch.bfloat16, name
        torch.testing.assert_close(y, y_bf16_in)
        y.float().square().mean().backward()
        assert (
            w.grad.dtype == torch.float32 and b.grad.dtype == torch.float32
        )  # back to the float32 parameters
        grads[name] = (y.detach(), w.grad.clone(), b.grad.clone())
        w.grad = b.grad = None
    for ours, expected in zip(grads["ours"], grads["torch"]):
        torch.testing.assert_close(ours.float(), expected.float(), atol=3e-2, rtol=3e-2)
    # outside autocast the dtypes must agree, as before; float64 is never cast
    with pytest.raises(TypeError, match="dtype"):
        fused_op(x.bfloat16(), w, b, stride, 1, impl=impl)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y64 = fused_op(x.double(), w.double(), b.double(), stride, 1, impl=impl)
    assert y64.dtype == torch.float64


@needs_ext
def test_autocast_explain_and_compile():
    from vganzoo.nn import STConv3d, STConvTranspose3d

    torch.manual_seed(6)
    x, w = torch.randn(1, 4, 4, 6, 6), torch.randn(6, 4, 3, 3, 3)
    with pytest.raises(TypeError, match="dtype"):
        ops.explain(x.bfloat16(), w, impl="ext")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ops.explain(x.bfloat16(), w, impl="ext") == ops.explain(x.bfloat16(), w.bfloat16(), impl="ext")
    model = torch.nn.Sequential(
        STConv3d(3, 4, 3, stride=(1, 2, 2), padding=1, activation="leaky_relu"),
        STConvTranspose3d(4, 2, 4, stride=(1, 2, 2), padding=(1, 1, 1), activation="tanh"),
    )
    xm = torch.randn(2, 3, 4, 8, 8)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, got = model(xm), compiled(xm)
    assert got.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("impl", ["ext", "ref"])
def test_empty_batch(impl):
    if impl == "ext" and not HAS_EXT:
        pytest.skip("vganzoo._C not built")
    x = torch.randn(0, 3, 4, 8, 8, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, 3, requires_grad=True)
    y = ops.conv3d_bias_act(x, w, torch.zeros(4), 1, 1, activation="relu", impl=impl)
    assert y.shape == (0, 4, 4, 8, 8)
    y.sum().backward()
    assert x.grad.shape == x.shape and torch.count_nonzero(w.grad) == 0
    yt = ops.conv_transpose3d_bias_act(
        torch.randn(0, 4, 2, 3, 3), torch.randn(4, 2, 4, 4, 4), None, 2, 1, impl=impl
    )
    assert yt.shape == (0, 2, 4, 6, 6)


@needs_ext
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("transposed", [False, True])
def test_gradcheck(activation, transposed):
    torch.manual_seed(2)
    x = torch.randn(1, 2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    w = (torch.randn(3, 2, 2, 2, 2, dtype=torch.float64) * 0.5).requires_grad_()
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    if transposed:
        w = (torch.randn(2, 3, 2, 2, 2, dtype=torch.float64) * 0.5).requires_grad_()
        b = torch.randn(6, dtype=torch.float64, requires_grad=True)

        def fn(x, w, b):
            return ops.conv_transpose3d_bias_act(
                x, w, b, (1, 2, 1), (0, 1, 1), (0, 1, 0), 1, 2, activation, SLOPE, impl="ext"
            )
    else:

        def fn(x, w, b):
            return ops.conv3d_bias_act(x, w, b, (1, 2, 1), (0, 1, 1), 1, 1, activation, SLOPE, impl="ext")

    assert torch.autograd.gradcheck(fn, (x, w, b), fast_mode=True)


@needs_ext
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("activation", ["none", "relu", "leaky_relu", "tanh", "sigmoid"])
def test_double_backward_for_gradient_penalty(activation, with_bias, transposed):
    """WGAN-GP / R1 differentiate the input gradient again: the op's backward must itself be
    differentiable."""
    torch.manual_seed(3)
    x = torch.randn(1, 1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    w = (
        torch.randn(*((1, 2) if transposed else (2, 1)), 1, 2, 2, dtype=torch.float64) * 0.5
    ).requires_grad_()
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    op = ops.conv_transpose3d_bias_act if transposed else ops.conv3d_bias_act

    def fn(x, w, b):
        return op(x, w, b if with_bias else None, 1, (0, 1, 1), activation=activation, impl="ext")

    assert torch.autograd.gradgradcheck(fn, (x, w, b), fast_mode=True)


@needs_ext
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck(layout):
    torch.manual_seed(4)
    x = _layout(torch.randn(2, 3, 4, 6, 6), layout).requires_grad_()
    w = torch.randn(4, 3, 3, 3, 3, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    torch.library.opcheck(
        torch.ops.vganzoo.conv3d_bias_act.default,
        (x, w, b, [1, 2, 2], [1, 1, 1], [1, 1, 1], 1, "leaky_relu", SLOPE),
    )
    wt = torch.randn(3, 2, 3, 3, 3, requires_grad=True)
    torch.library.opcheck(
        torch.ops.vganzoo.conv_transpose3d_bias_act.default,
        (x, wt, None, [2, 2, 2], [1, 1, 1], [1, 0, 1], [1, 1, 1], 1, "tanh", SLOPE),
    )


@needs_ext
def test_torch_compile_fullgraph():
    from vganzoo.nn import STConv3d, STConvTranspose3d

    torch.manual_seed(5)
    model = torch.nn.Sequential(
        STConv3d(3, 4, 3, stride=(1, 2, 2), padding=1, activation="leaky_relu"),
        STConvTranspose3d(4, 2, 4, stride=(1, 2, 2), padding=(1, 1, 1), activation="tanh"),
    )
    x = torch.randn(2, 3, 4, 8, 8)
    expected = model(x)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), expected)


# ------------------------------------------------------------------------------------------------
# Bad input: every case raises a clear error naming the argument, from Python and from C++.


def _base():
    return torch.randn(1, 4, 4, 6, 6), torch.randn(6, 4, 3, 3, 3), torch.randn(6)


BAD_CASES = [
    ("rank", lambda x, w, b: (x[0], w, b, {}), ValueError, "x must be 5-D"),
    ("weight rank", lambda x, w, b: (x, w[0], b, {}), ValueError, "weight must be 5-D"),
    ("channels", lambda x, w, b: (x[:, :3], w, b, {}), ValueError, "channels"),
    ("groups divide", lambda x, w, b: (x, w[:, :2], b, {"groups": 3}), ValueError, "groups"),
    ("groups zero", lambda x, w, b: (x, w, b, {"groups": 0}), ValueError, "groups"),
    ("stride zero", lambda x, w, b: (x, w, b, {"stride": (1, 0, 1)}), ValueError, "stride"),
    ("negative padding", lambda x, w, b: (x, w, b, {"padding": -1}), ValueError, "padding"),
    ("dilation zero", lambda x, w, b: (x, w, b, {"dilation": 0}), ValueError, "dilation"),
    ("kernel too large", lambda x, w, b: (x[:, :, :2], w, b, {}), ValueError, "larger than the padded input"),
    ("mixed dtypes", lambda x, w, b: (x, w.double(), b, {}), TypeError, "dtype"),
    ("bias dtype", lambda x, w, b: (x, w, b.double(), {}), TypeError, "bias dtype"),
    ("bias shape", lambda x, w, b: (x, w, b[:3], {}), ValueError, "bias must have shape"),
    ("integer tensors", lambda x, w, b: (x.long(), w.long(), b.long(), {}), TypeError, "floating"),
    (
        "activation",
        lambda x, w, b: (x, w, b, {"activation": "gelu"}),
        ValueError,
        "activation must be one of",
    ),
    (
        "negative slope",
        lambda x, w, b: (x, w, b, {"activation": "leaky_relu", "negative_slope": -0.1}),
        ValueError,
        "negative_slope",
    ),
    (
        "NaN slope",
        lambda x, w, b: (x, w, b, {"activation": "leaky_relu", "negative_slope": float("nan")}),
        ValueError,
        "negative_slope must be >= 0",
    ),
]


@pytest.mark.parametrize("impl", ["ref", "ext"])
@pytest.mark.parametrize("transposed", [False, True])
def test_argument_types_checked_the_same_on_both_paths(impl, transposed):
    """Python-level argument types (the dispatcher would turn groups=True into 1 on the ext path)."""
    if impl == "ext" and not HAS_EXT:
        pytest.skip("vganzoo._C not built")
    x, w, b = _base()
    op = ops.conv_transpose3d_bias_act if transposed else ops.conv3d_bias_act
    if transposed:
        w = w.transpose(0, 1).contiguous()
    with pytest.raises(TypeError, match="groups must be an int, got True"):
        op(x, w, b, groups=True, impl=impl)
    with pytest.raises(TypeError, match="negative_slope must be a number, got '0.2'"):
        op(x, w, b, activation="leaky_relu", negative_slope="0.2", impl=impl)


@pytest.mark.parametrize("impl", ["ref", "ext"])
@pytest.mark.parametrize("name,make,exc,match", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_python(impl, name, make, exc, match):
    if impl == "ext" and not HAS_EXT:
        pytest.skip("vganzoo._C not built")
    x, w, b, kw = make(*_base())
    with pytest.raises(exc, match=match):
        ops.conv3d_bias_act(x, w, b, impl=impl, **kw)


@needs_ext
@pytest.mark.parametrize("name,make,exc,match", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_cpp(name, make, exc, match):
    """Calling the registered op directly bypasses the Python checks: C++ TORCH_CHECKs must catch it."""
    x, w, b, kw = make(*_base())
    full = {
        "stride": 1,
        "padding": 0,
        "dilation": 1,
        "groups": 1,
        "activation": "none",
        "negative_slope": SLOPE,
    }
    full.update(kw)
    tri = {
        k: list(v) if isinstance(v, tuple) else [v] * 3
        for k, v in full.items()
        if k in ("stride", "padding", "dilation")
    }
    with pytest.raises(exc, match=match):
        torch.ops.vganzoo.conv3d_bias_act(
            x,
            w,
            b,
            tri["stride"],
            tri["padding"],
            tri["dilation"],
            full["groups"],
            full["activation"],
            full["negative_slope"],
        )


def test_bad_transposed_and_argument_types():
    x = torch.randn(1, 4, 2, 3, 3)
    with pytest.raises(ValueError, match="weight.shape\\[0\\]"):
        ops.conv_transpose3d_bias_act(x, torch.randn(3, 2, 3, 3, 3), impl="ref")
    with pytest.raises(ValueError, match="output_padding"):
        ops.conv_transpose3d_bias_act(x, torch.randn(4, 2, 3, 3, 3), None, 1, 0, output_padding=1, impl="ref")
    with pytest.raises(ValueError, match="stride must be an int or a sequence of 3"):
        ops.conv3d_bias_act(x, torch.randn(2, 4, 1, 1, 1), stride=(1, 2), impl="ref")
    with pytest.raises(TypeError, match="padding must"):
        ops.conv3d_bias_act(x, torch.randn(2, 4, 1, 1, 1), padding="same", impl="ref")
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        ops.conv3d_bias_act(x.numpy(), torch.randn(2, 4, 1, 1, 1), impl="ref")


@pytest.mark.cuda
def test_mixed_devices():  # pragma: no cover - GPU only
    x, w, b = _base()
    with pytest.raises(ValueError, match="weight is on"):
        ops.conv3d_bias_act(x, w.cuda(), b)


# ------------------------------------------------------------------------------------------------
# The implementation switch.


def test_impl_switch_and_env(monkeypatch):
    x, w, b = _base()
    with pytest.raises(ValueError, match="impl must be one of"):
        ops.conv3d_bias_act(x, w, b, impl="fast")
    monkeypatch.setenv(fused.ENV_VAR, "ref")
    assert ops.resolve_impl(None, "cpu") == "ref"
    assert ops.explain(x, w, b).startswith("ref: plain-PyTorch reference (requested)")
    monkeypatch.setenv(fused.ENV_VAR, "bogus")
    with pytest.raises(ValueError, match="VGANZOO_OPS_IMPL"):
        ops.conv3d_bias_act(x, w, b)
    monkeypatch.setenv(fused.ENV_VAR, "auto")
    assert ops.resolve_impl(None, "cpu") == ("ext" if HAS_EXT else "ref")


@needs_ext
@pytest.mark.parametrize("transposed", [False, True])
def test_torch_func_transforms_take_the_reference_under_auto(transposed, monkeypatch):
    """torch.func.grad / vjp / vmap cannot run a C++ autograd function: "auto" uses the reference inside them
    (same values as plain autograd on the extension), and explain says why."""
    from torch.func import grad, vmap

    monkeypatch.setenv(fused.ENV_VAR, "auto")
    torch.manual_seed(3)
    x = torch.randn(3, 2, 3, 5, 5)
    w = torch.randn(2, 3, 3, 3, 3) * 0.3 if transposed else torch.randn(3, 2, 3, 3, 3) * 0.3
    b = torch.randn(3)
    op = ops.conv_transpose3d_bias_act if transposed else ops.conv3d_bias_act

    def loss(weight, inp):
        return op(inp, weight, b, 1, 1, activation="tanh").square().sum()

    w_ext = w.clone().requires_grad_()
    loss(w_ext, x).backward()  # outside a transform: the extension's C++ autograd
    torch.testing.assert_close(grad(loss)(w, x), w_ext.grad)
    per_sample = vmap(grad(loss), in_dims=(None, 0))(w, x[:, None])
    torch.testing.assert_close(per_sample.sum(0), w_ext.grad, atol=1e-4, rtol=1e-4)
    seen = []
    vmap(lambda xi: seen.append(ops.explain(xi[None], w, b, 1, 1, transposed=transposed)) or xi.sum())(x)
    assert seen and "torch.func transform" in seen[0]
    with pytest.raises(RuntimeError, match="functorch"):  # explicit "ext": torch's own error
        grad(lambda weight: op(x, weight, b, 1, 1, impl="ext").sum())(w)


def test_auto_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(_ext, "has_kernel", lambda device_type: False)
    monkeypatch.setattr(_ext, "_warned", set())
    x, w, b = _base()
    with pytest.warns(RuntimeWarning, match="reference"):
        y = ops.conv3d_bias_act(x, w, b, activation="relu", impl="auto")
    torch.testing.assert_close(y, F.relu(F.conv3d(x, w, b)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ops.conv3d_bias_act(x, w, b, impl="auto")  # second call: no new warning
    with pytest.raises(RuntimeError, match="impl='ext'"):
        ops.conv3d_bias_act(x, w, b, impl="ext")
    assert ops.explain(x, w, b).startswith("ref:")
