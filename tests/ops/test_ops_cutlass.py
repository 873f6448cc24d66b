"""The CUTLASS path of the CUDA ops (csrc/cuda/cutlass/), forced with VGANZOO_CUDA_STRATEGY=cutlass, against
the float64 reference: forward (fprop; dgrad for transposed convolutions) with every activation, with and
without bias, and the first-order backward (dgrad / fprop + wgrad); bfloat16, float16, float32 as TF32, and
float32 with TF32 off (which CUTLASS must leave to the exact paths); odd sizes, strides, padding,
channels_last_3d and strided views; outputs poisoned before each run. Ineligible calls must fall back.

Run by benchmarks/gpu_check.sh; skipped without a GPU, and without CUTLASS in the build.
"""

from __future__ import annotations

import pytest
import torch

from vganzoo import ops

pytestmark = pytest.mark.cuda
CL = torch.channels_last_3d
# bf16 / fp16 keep 8 / 11 mantissa bits, TF32 11: an indexing or epilogue bug is O(1)
TOL = {torch.float16: 2e-2, torch.bfloat16: 2e-2, "tf32": 1e-2, torch.float32: 1e-4}
CUTLASS_PATH = "cutlass_implicit_gemm"

# (c_in, c_out, size (T, H, W), kernel, stride, padding): channel counts multiples of 8 (CUTLASS's 16-bit
# alignment, so TF32's 4 too), dilation 1.
CONFIGS = [
    (16, 24, (5, 9, 11), 3, (1, 2, 3), (1, 0, 2)),  # odd sizes, mixed strides (strided dgrad)
    (32, 40, (4, 7, 9), (2, 3, 3), 1, 1),  # unit stride (optimized dgrad), uneven kernel
    (64, 128, (7, 16, 16), 4, (1, 2, 2), (0, 1, 1)),  # a MoCoGAN discriminator layer, smaller
    (24, 16, (6, 10, 10), 4, 2, 1),  # TGAN / VGAN-style stride 2
    (8, 8, (3, 5, 5), 1, 1, 0),  # 1x1x1 kernel
]
IDS = [f"{c[0]}to{c[1]}" for c in CONFIGS]


@pytest.fixture(autouse=True)
def _cutlass_forced(no_tf32, monkeypatch):
    """A GPU, CUTLASS in the build, VGANZOO_CUDA_STRATEGY=cutlass, TF32 off unless a test turns it on."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    monkeypatch.setenv("VGANZOO_CUDA_STRATEGY", "cutlass")
    x = torch.randn(1, 8, 3, 4, 4, device="cuda", dtype=torch.bfloat16)
    path = ops.explain(x, torch.randn(8, 8, 1, 1, 1, device="cuda", dtype=torch.bfloat16))
    if "built without CUTLASS" in path:
        pytest.skip("vganzoo._C was built without CUTLASS (.ci/fetch_cutlass.sh, then rebuild)")


def _poison():
    """Fill freed allocator blocks with NaN so outputs that reuse them show unwritten elements."""
    junk = torch.full((64 * 1024 * 1024,), float("nan"), device="cuda")
    del junk


def _dtype(name):
    """The tensor dtype of a test's dtype name ("tf32": float32 with torch's TF32 switch on)."""
    if name == "tf32":
        torch.backends.cudnn.allow_tf32 = True  # the no_tf32 fixture restores it
        return torch.float32
    return name


def _layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "channels_last":
        return t.contiguous(memory_format=CL)
    if layout == "noncontig":  # every other element along W of a wider tensor
        return torch.cat([t, t], dim=-1)[..., : t.shape[-1]]
    return t


def _layer(cfg, dtype, layout, transposed, seed=0):
    """x, weight, bias, and the op's keyword arguments (output_padding for a strided transposed layer)."""
    c_in, c_out, size, k, stride, padding = cfg
    g = torch.Generator(device="cuda").manual_seed(seed)
    kk = (k,) * 3 if isinstance(k, int) else k
    stride3 = (stride,) * 3 if isinstance(stride, int) else stride
    x = torch.randn(2, c_in, *size, device="cuda", generator=g)
    w_shape = (c_in, c_out, *kk) if transposed else (c_out, c_in, *kk)
    w = torch.randn(*w_shape, device="cuda", generator=g) / (c_in * kk[0] * kk[1] * kk[2]) ** 0.5
    b = torch.randn(c_out, device="cuda", generator=g)
    kwargs = dict(stride=stride, padding=padding)
    if transposed:
        kwargs["output_padding"] = tuple(s - 1 for s in stride3)  # every output position written
    x, w, b = (t.to(dtype) for t in (x, w, b))
    return _layout(x, layout), _layout(w, layout), b, kwargs


def _ops(transposed):
    if transposed:
        return ops.conv_transpose3d_bias_act, ops.conv_transpose3d_bias_act_ref
    return ops.conv3d_bias_act, ops.conv3d_bias_act_ref


def _explain(x, w, b, kwargs, transposed, activation="none"):
    stride, padding = kwargs["stride"], kwargs["padding"]
    return ops.explain(
        x,
        w,
        b,
        stride,
        padding,
        output_padding=kwargs.get("output_padding", 0),
        transposed=transposed,
        activation=activation,
    )


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontig"])
@pytest.mark.parametrize("dtype_name", [torch.bfloat16, torch.float16, "tf32"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_cutlass_forward_matches_reference(cfg, dtype_name, layout, transposed):
    dtype = _dtype(dtype_name)
    x, w, b, kwargs = _layer(cfg, dtype, layout, transposed)
    op, ref = _ops(transposed)
    path = _explain(x, w, b, kwargs, transposed, "leaky_relu")
    assert CUTLASS_PATH in path, path
    tol = TOL[dtype_name]
    for activation in ops.ACTIVATIONS:
        for bias in (b, None):
            _poison()
            y = op(x, w, bias, activation=activation, negative_slope=0.1, impl="ext", **kwargs)
            expected = ref(
                x.double(),
                w.double(),
                None if bias is None else bias.double(),
                activation=activation,
                negative_slope=0.1,
                **kwargs,
            )
            assert torch.isfinite(y).all(), f"unwritten / non-finite output ({path}, {activation})"
            torch.testing.assert_close(y.double(), expected, atol=tol, rtol=tol, msg=f"{path}, {activation}")
    want = CL if layout == "channels_last" else torch.contiguous_format
    assert y.is_contiguous(memory_format=want)


def _grads(op, leaves, kwargs, grad_out, activation):
    out = op(*leaves, activation=activation, **kwargs)
    return torch.autograd.grad(out, leaves, grad_out)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontig"])
@pytest.mark.parametrize("dtype_name", [torch.bfloat16, torch.float16, "tf32"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_cutlass_backward_matches_reference(cfg, dtype_name, layout, transposed):
    """x, weight and bias gradients (CUTLASS dgrad + wgrad, or fprop + wgrad for a transposed layer; not
    cuDNN's convolution_backward) against float64, for every activation."""
    dtype = _dtype(dtype_name)
    x, w, b, kwargs = _layer(cfg, dtype, layout, transposed, seed=1)
    op, ref = _ops(transposed)
    tol = TOL[dtype_name]
    for activation in ops.ACTIVATIONS:
        leaves = [t.detach().requires_grad_() for t in (x, w, b)]
        leaves64 = [t.detach().double().requires_grad_() for t in (x, w, b)]
        grad_out = torch.randn_like(op(*leaves, activation=activation, impl="ext", **kwargs))
        _poison()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            got = _grads(lambda *a, **k: op(*a, impl="ext", **k), leaves, kwargs, grad_out, activation)
        names = {e.name for e in prof.events()}
        assert "aten::convolution_backward" not in names, sorted(names)
        expected = _grads(ref, leaves64, kwargs, grad_out.double(), activation)
        for name, g, e in zip(("x", "weight", "bias"), got, expected):
            assert torch.isfinite(g).all(), f"{name} gradient not finite ({activation})"
            assert g.shape == e.shape and g.dtype == dtype
            scale = e.abs().max().item() + 1.0
            torch.testing.assert_close(
                g.double() / scale, e / scale, atol=tol, rtol=tol, msg=f"{name} gradient, {activation}"
            )


@pytest.mark.parametrize("transposed", [False, True])
def test_exact_float32_never_takes_cutlass(transposed):
    """With TF32 disallowed for convolutions, float32 stays exact: forcing CUTLASS (TF32 only) falls back,
    forward and backward, and matches float64 at float32 accuracy."""
    x, w, b, kwargs = _layer(CONFIGS[0], torch.float32, "contiguous", transposed)
    path = _explain(x, w, b, kwargs, transposed)
    assert CUTLASS_PATH not in path and "TF32 disallowed" in path, path
    op, ref = _ops(transposed)
    leaves = [t.detach().requires_grad_() for t in (x, w, b)]
    leaves64 = [t.detach().double().requires_grad_() for t in (x, w, b)]
    y = op(*leaves, activation="tanh", impl="ext", **kwargs)
    expected = ref(*leaves64, activation="tanh", **kwargs)
    torch.testing.assert_close(y.double(), expected, atol=1e-4, rtol=1e-4)
    grad_out = torch.randn_like(y)
    got = torch.autograd.grad(y, leaves, grad_out)
    want = torch.autograd.grad(expected, leaves64, grad_out.double())
    for g, e in zip(got, want):
        scale = e.abs().max().item() + 1.0
        torch.testing.assert_close(g.double() / scale, e / scale, atol=1e-4, rtol=1e-4)


INELIGIBLE = [
    # (why, c_in, c_out, dtype, groups, dilation)
    ("channel counts not multiples of 8", 3, 16, torch.bfloat16, 1, 1),
    ("channel counts not multiples of 8", 16, 12, torch.float16, 1, 1),
    ("groups > 1", 16, 16, torch.bfloat16, 2, 1),
    ("dilation > 1", 16, 16, torch.bfloat16, 1, 2),
    ("float32-as-TF32 only", 16, 16, torch.float64, 1, 1),
]


@pytest.mark.parametrize("case", INELIGIBLE, ids=[f"{c[0]}-{c[3]}" for c in INELIGIBLE])
def test_ineligible_calls_fall_back(case):
    """Forced CUTLASS on a call it cannot run takes the usual path, says why, and computes the right thing."""
    why, c_in, c_out, dtype, groups, dilation = case
    torch.manual_seed(5)
    x = torch.randn(2, c_in, 5, 9, 9, device="cuda").to(dtype)
    w = (torch.randn(c_out, c_in // groups, 3, 3, 3, device="cuda") / (c_in * 27) ** 0.5).to(dtype)
    b = torch.randn(c_out, device="cuda").to(dtype)
    path = ops.explain(x, w, b, 1, dilation, dilation, groups, "relu")
    assert CUTLASS_PATH not in path and "but not CUTLASS" in path and why in path, path
    _poison()
    y = ops.conv3d_bias_act(x, w, b, 1, dilation, dilation, groups, "relu", impl="ext")
    x64, w64, b64 = x.double(), w.double(), b.double()
    expected = ops.conv3d_bias_act_ref(x64, w64, b64, 1, dilation, dilation, groups, "relu")
    tol = 1e-6 if dtype == torch.float64 else 2e-2
    torch.testing.assert_close(y.double(), expected, atol=tol, rtol=tol)


def test_autotuner_times_cutlass_and_no_cutlass_leaves_it_out(monkeypatch):
    """Unforced, CUTLASS is timed beside our kernel and cuDNN (explain shows its timing); "no-cutlass"
    leaves it out of the candidates."""
    monkeypatch.setenv("VGANZOO_CUDA_STRATEGY", "auto")
    torch.manual_seed(7)
    x = torch.randn(3, 16, 5, 10, 10, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(32, 16, 3, 3, 3, device="cuda", dtype=torch.bfloat16) / 20
    b = torch.randn(32, device="cuda", dtype=torch.bfloat16)
    before = ops.explain(x, w, b, 1, 1, activation="leaky_relu")
    assert "not tuned yet" in before and "CUTLASS" in before, before
    y = ops.conv3d_bias_act(x, w, b, 1, 1, activation="leaky_relu", impl="ext")
    after = ops.explain(x, w, b, 1, 1, activation="leaky_relu")
    assert "autotuned for this configuration" in after and "CUTLASS " in after, after
    expected = ops.conv3d_bias_act_ref(x.double(), w.double(), b.double(), 1, 1, activation="leaky_relu")
    torch.testing.assert_close(y.double(), expected, atol=2e-2, rtol=2e-2)
    monkeypatch.setenv("VGANZOO_CUDA_STRATEGY", "no-cutlass")
    excluded = ops.explain(x, w, b, 1, 1, activation="leaky_relu")
    assert CUTLASS_PATH not in excluded and "no-cutlass" in excluded, excluded


@pytest.mark.parametrize("transposed", [False, True])
def test_cutlass_is_cuda_graph_capturable(transposed):
    """Forward and backward (split-K workspace from the caching allocator) captured in a CUDA graph replay
    what eager computes on new inputs."""
    x, w, b, kwargs = _layer(CONFIGS[2], torch.bfloat16, "channels_last", transposed, seed=2)
    op, _ = _ops(transposed)
    leaves = [t.detach().clone().requires_grad_() for t in (x, w, b)]
    grad_out = torch.randn_like(op(*leaves, activation="leaky_relu", impl="ext", **kwargs))

    def step():
        out = op(*leaves, activation="leaky_relu", impl="ext", **kwargs)
        return (out, *torch.autograd.grad(out, leaves, grad_out))

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = step()
    with torch.no_grad():
        for t in leaves:
            t.copy_(torch.randn_like(t) * t.abs().mean())
    graph.replay()
    torch.cuda.synchronize()
    eager = step()
    for got, want in zip(captured, eager):
        torch.testing.assert_close(got, want, atol=2e-2, rtol=2e-2)


def test_double_backward_takes_differentiable_ops():
    """A gradient penalty (create_graph=True) works with CUTLASS forced: the backward it differentiates is
    ATen's, and matches the reference's."""
    x, w, b, kwargs = _layer(CONFIGS[0], torch.bfloat16, "contiguous", False, seed=3)
    leaves = [t.detach().float().requires_grad_() for t in (x, w, b)]
    penalties = []
    for fn in (lambda *a, **k: ops.conv3d_bias_act(*a, impl="ext", **k), ops.conv3d_bias_act_ref):
        xs = leaves[0].detach().requires_grad_()
        low = [t.to(torch.bfloat16) for t in (xs, *leaves[1:])]
        out = fn(*low, activation="tanh", **kwargs)
        (gx,) = torch.autograd.grad(out.float().sum(), xs, create_graph=True)
        penalty = gx.square().sum()
        penalties.append((penalty.detach(), torch.autograd.grad(penalty, leaves[1])[0]))
    (p_ext, gw_ext), (p_ref, gw_ref) = penalties
    torch.testing.assert_close(p_ext, p_ref, atol=5e-2, rtol=5e-2)
    scale = gw_ref.abs().max() + 1.0
    torch.testing.assert_close(gw_ext / scale, gw_ref / scale, atol=5e-2, rtol=5e-2)
