"""CUDA fused ops against the plain-PyTorch reference (run by benchmarks/gpu_check.sh; skipped without a GPU).

float32 with TF32 off (tight tolerance), float16 / bfloat16 (about 2e-2); fresh random inputs per seed, odd
sizes, strides, paddings, dilations, groups, channels_last_3d and non-contiguous inputs; outputs are
poisoned (NaN-filled caching allocator blocks) before every run so an unwritten element shows.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vganzoo import ops

pytestmark = pytest.mark.cuda
CL = torch.channels_last_3d
TOL = {torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 2e-2}


@pytest.fixture(autouse=True)
def _exact_fp32(no_tf32):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")


def _poison():
    """Fill freed allocator blocks with NaN so outputs that reuse them show unwritten elements."""
    junk = torch.full((64 * 1024 * 1024,), float("nan"), device="cuda")
    del junk


CONFIGS = [
    # (c_in, c_out, size (T, H, W), kernel, stride, padding, dilation, groups)
    (3, 64, (16, 64, 64), 4, (1, 2, 2), (0, 1, 1), 1, 1),  # MoCoGAN first layer (3-channel padding)
    (64, 128, (13, 32, 32), 4, (1, 2, 2), (0, 1, 1), 1, 1),
    (3, 64, (16, 64, 64), 4, 2, 1, 1, 1),  # TGAN / VGAN first layer
    (5, 7, (5, 9, 11), 3, (1, 2, 3), (1, 0, 2), (2, 1, 1), 1),  # odd everything
    (8, 12, (4, 7, 7), (1, 3, 3), 1, (0, 1, 1), 1, 4),  # groups -> fallback path
    (512, 2, (2, 4, 4), (2, 4, 4), 1, 0, 1, 1),  # VGAN D head
    (16, 24, (5, 9, 11), 3, (1, 2, 3), (1, 0, 2), (2, 1, 1), 1),  # 16-byte vector loads in both kernels
    (32, 70, (3, 7, 9), (2, 3, 3), 1, 1, 1, 1),  # vector loads, two output-channel tiles
    (12, 5, (4, 6, 5), 3, 2, 1, 1, 1),  # float32 vector loads, 16-bit scalar ones
]


def _inputs(cfg, dtype, layout, seed):
    c_in, c_out, size, k, _stride, _padding, _dilation, groups = cfg
    g = torch.Generator(device="cuda").manual_seed(seed)
    kk = (k,) * 3 if isinstance(k, int) else k
    x = torch.randn(2, c_in, *size, device="cuda", generator=g).to(dtype)
    w = (torch.randn(c_out, c_in // groups, *kk, device="cuda", generator=g) / (c_in * 8) ** 0.5).to(dtype)
    b = torch.randn(c_out, device="cuda", generator=g).to(dtype)
    if layout == "channels_last":  # the weight too: the kernel then reads it in place
        x, w = x.contiguous(memory_format=CL), w.contiguous(memory_format=CL)
    elif layout == "noncontig":
        x = torch.cat([x, x], dim=-1)[..., : x.shape[-1]]
        w = torch.cat([w, w], dim=-1)[..., : w.shape[-1]]
    return x, w, b


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("strategy", ["igemm", "aten", "auto"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontig"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"cfg{i}" for i in range(len(CONFIGS))])
def test_conv3d_cuda_matches_reference(cfg, dtype, layout, strategy, seed, monkeypatch):
    """Each CUDA path (our kernel, cuDNN + our epilogue, and the autotuned choice) against float64."""
    monkeypatch.setenv("VGANZOO_CUDA_STRATEGY", strategy)
    x, w, b = _inputs(cfg, dtype, layout, seed)
    _, _, _, _, stride, padding, dilation, groups = cfg
    for act in ("leaky_relu", "tanh", "none"):
        _poison()
        y = ops.conv3d_bias_act(x, w, b, stride, padding, dilation, groups, act, impl="ext")
        ref = ops.conv3d_bias_act_ref(
            x.double(), w.double(), b.double(), stride, padding, dilation, groups, act
        )
        assert torch.isfinite(y).all(), (
            f"unwritten / non-finite output ({ops.explain(x, w, b, stride, padding, dilation, groups, act)})"
        )
        torch.testing.assert_close(y.double(), ref, atol=TOL[dtype], rtol=TOL[dtype])
        want = CL if (layout == "channels_last") else torch.contiguous_format
        assert y.is_contiguous(memory_format=want)


@pytest.mark.parametrize("strategy", ["igemm", "auto"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontig"])
@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c[-1] == 1], ids=lambda c: f"{c[0]}to{c[1]}")
def test_tf32_kernel_where_torch_allows_tf32(cfg, layout, strategy, monkeypatch):
    """float32 with torch.backends.cudnn.allow_tf32 (torch's default) and VGANZOO_CUDA_TF32=1: our kernel runs
    on TF32 tensor cores (explain: igemm_tf32), at TF32 accuracy against float64; with TF32 off it is the
    exact FMA kernel."""
    monkeypatch.setenv("VGANZOO_CUDA_STRATEGY", strategy)
    monkeypatch.setenv("VGANZOO_CUDA_TF32", "1")  # opt-in until this test has passed on a GPU
    x, w, b = _inputs(cfg, torch.float32, layout, seed=3)
    _, _, _, _, stride, padding, dilation, groups = cfg
    torch.backends.cudnn.allow_tf32 = True  # the no_tf32 fixture restores it
    path = ops.explain(x, w, b, stride, padding, dilation, groups, "leaky_relu")
    if strategy == "igemm":
        assert "igemm_tf32" in path, path
    for act in ("leaky_relu", "tanh"):
        _poison()
        y = ops.conv3d_bias_act(x, w, b, stride, padding, dilation, groups, act, impl="ext")
        ref = ops.conv3d_bias_act_ref(
            x.double(), w.double(), b.double(), stride, padding, dilation, groups, act
        )
        assert torch.isfinite(y).all(), path
        # TF32 keeps 10 mantissa bits (bf16: 7, passing at 2e-2 on the same layers); an indexing bug is O(1)
        torch.testing.assert_close(y.double(), ref, atol=1e-2, rtol=1e-2, msg=path)
    torch.backends.cudnn.allow_tf32 = False
    assert (
        "igemm_fp32" in ops.explain(x, w, b, stride, padding, dilation, groups, "leaky_relu")
        or strategy == "auto"
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_misaligned_channels_last_input(dtype):
    """A channels_last_3d view that starts one element into its storage cannot take the kernels'
    16-byte loads: the op must notice and still compute the right thing."""
    torch.manual_seed(3)
    shape = (2, 16, 4, 6, 6)
    storage = torch.randn(1 + torch.Size(shape).numel(), device="cuda", dtype=dtype)
    _n, c, t, h, w_ = shape
    x = storage.as_strided(shape, (c * t * h * w_, 1, h * w_ * c, w_ * c, c), storage_offset=1)
    assert x.is_contiguous(memory_format=CL) and x.data_ptr() % 16 != 0
    w = (torch.randn(8, 16, 3, 3, 3, device="cuda") / 12).to(dtype)
    b = torch.randn(8, device="cuda", dtype=dtype)
    _poison()
    y = ops.conv3d_bias_act(x, w, b, 1, 1, activation="leaky_relu", impl="ext")
    ref = ops.conv3d_bias_act_ref(x.double(), w.double(), b.double(), 1, 1, activation="leaky_relu")
    torch.testing.assert_close(y.double(), ref, atol=TOL[dtype], rtol=TOL[dtype])


@pytest.mark.parametrize("strategy", ["auto", "igemm", "aten"])
@pytest.mark.parametrize("transposed", [False, True])
def test_strided_weight_and_bias_views_cuda(strategy, transposed, monkeypatch):
    """Strided weight / bias views compute what contiguous copies do on every CUDA path (the CPU
    oneDNN path once read a strided bias at the wrong offsets)."""
    monkeypatch.setenv("VGANZOO_CUDA_STRATEGY", strategy)
    torch.manual_seed(0)
    x = torch.randn(2, 16, 4, 8, 8, device="cuda").contiguous(memory_format=torch.channels_last_3d)
    shape = (16, 32, 3, 3, 3) if transposed else (32, 16, 3, 3, 3)
    w = torch.randn(*shape[:-1], 2 * shape[-1], device="cuda")[..., ::2] * 0.1
    b = torch.randn(32, 3, device="cuda")[:, 1]
    op, ref = (
        (ops.conv_transpose3d_bias_act, F.conv_transpose3d) if transposed else (ops.conv3d_bias_act, F.conv3d)
    )
    y = op(x, w, b, 1, 1, activation="relu", impl="ext")
    expected = torch.relu(ref(x.double(), w.contiguous().double(), b.contiguous().double(), 1, 1))
    torch.testing.assert_close(y.double(), expected, atol=TOL[torch.float32], rtol=TOL[torch.float32])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_conv_transpose3d_cuda_matches_reference(dtype):
    torch.manual_seed(0)
    x = torch.randn(2, 64, 8, 16, 16, device="cuda", dtype=dtype)
    w = torch.randn(64, 3, 4, 4, 4, device="cuda", dtype=dtype) * 0.05
    b = torch.randn(3, device="cuda", dtype=dtype)
    _poison()
    y = ops.conv_transpose3d_bias_act(x, w, b, 2, 1, activation="tanh", impl="ext")
    ref = ops.conv_transpose3d_bias_act_ref(x.double(), w.double(), b.double(), 2, 1, activation="tanh")
    torch.testing.assert_close(y.double(), ref, atol=TOL[dtype], rtol=TOL[dtype])


def test_repeatable_and_backward():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 8, 16, 16, device="cuda", requires_grad=True)
    w = torch.randn(16, 3, 4, 4, 4, device="cuda", requires_grad=True)
    b = torch.randn(16, device="cuda", requires_grad=True)
    y1 = ops.conv3d_bias_act(x, w, b, (1, 2, 2), (0, 1, 1), activation="leaky_relu", impl="ext")
    y2 = ops.conv3d_bias_act(x, w, b, (1, 2, 2), (0, 1, 1), activation="leaky_relu", impl="ext")
    assert torch.equal(y1, y2), "result changes from run to run: a race"
    y1.square().sum().backward()
    grads = [t.grad.clone() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    ops.conv3d_bias_act_ref(x, w, b, (1, 2, 2), (0, 1, 1), activation="leaky_relu").square().sum().backward()
    for got, t in zip(grads, (x, w, b)):
        torch.testing.assert_close(got, t.grad, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("transposed", [False, True])
def test_autocast_cuda(dtype, transposed, monkeypatch):
    """Inside torch.autocast("cuda") the ops run in the autocast dtype (csrc/autocast.cpp), like F.conv3d,
    on our kernels (explain names the tensor-core path), with float32 gradients for float32 weights."""
    monkeypatch.setenv("VGANZOO_CUDA_STRATEGY", "igemm")  # autotuning could pick cuDNN for this shape
    torch.manual_seed(3)
    x = torch.randn(2, 16, 5, 12, 12, device="cuda")
    shape = (16, 24, 3, 3, 3) if transposed else (24, 16, 3, 3, 3)
    w = (torch.randn(*shape, device="cuda") / (16 * 8) ** 0.5).requires_grad_()
    b = torch.randn(24, device="cuda", requires_grad=True)
    op = ops.conv_transpose3d_bias_act if transposed else ops.conv3d_bias_act
    with torch.autocast("cuda", dtype=dtype):
        y = op(x, w, b, 1, 1, activation="leaky_relu", impl="ext")
        y_low_in = op(x.to(dtype), w, b, 1, 1, activation="leaky_relu", impl="ext")
        if not transposed:
            assert "igemm_tensor_core" in ops.explain(x, w, b, 1, 1, activation="leaky_relu")
    assert y.dtype == dtype and y_low_in.dtype == dtype
    torch.testing.assert_close(y, y_low_in)
    ref_fn = ops.conv_transpose3d_bias_act_ref if transposed else ops.conv3d_bias_act_ref
    # the reference from the inputs as autocast rounded them (what is left: accumulation and output rounding)
    ref = ref_fn(*(t.detach().to(dtype).double() for t in (x, w, b)), 1, 1, activation="leaky_relu")
    torch.testing.assert_close(y.double(), ref, atol=TOL[dtype], rtol=TOL[dtype])
    y.float().square().mean().backward()
    assert w.grad.dtype == torch.float32 and torch.isfinite(w.grad).all() and torch.isfinite(b.grad).all()


def test_deterministic_algorithms_skip_autotuning():
    """Autotuning times both paths, so two processes may choose differently; under
    torch.use_deterministic_algorithms(True) the choice is fixed (our kernel) and the result repeatable."""
    torch.manual_seed(4)
    x = torch.randn(2, 16, 6, 20, 20, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(24, 16, 3, 3, 3, device="cuda", dtype=torch.bfloat16) * 0.05
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        path = ops.explain(x, w, None, 1, 1)
        assert "ext/cuda:igemm_tensor_core" in path and "deterministic" in path, path
        first = ops.conv3d_bias_act(x, w, None, 1, 1, activation="relu", impl="ext")
        assert torch.equal(first, ops.conv3d_bias_act(x, w, None, 1, 1, activation="relu", impl="ext"))
    finally:
        torch.use_deterministic_algorithms(before)
    ref = ops.conv3d_bias_act_ref(x.double(), w.double(), None, 1, 1, activation="relu")
    torch.testing.assert_close(first.double(), ref, atol=2e-2, rtol=2e-2)


def test_explain_cuda_paths():
    x = torch.randn(1, 3, 4, 8, 8, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(8, 3, 3, 3, 3, device="cuda", dtype=torch.bfloat16)
    assert "igemm_tensor_core" in ops.explain(x, w, None, 1, 1)
    assert "igemm_fp32" in ops.explain(x.float(), w.float(), None, 1, 1)
    w9 = torch.randn(9, 1, 3, 3, 3, device="cuda")
    assert "aten" in ops.explain(x.float(), w9, None, 1, 1, groups=3)


def test_autotuning_picks_a_path_once_per_configuration(monkeypatch):
    """Unforced, the first call of a configuration times our kernel against cuDNN + epilogue and keeps
    the faster; explain() says so. The override variable is checked."""
    monkeypatch.delenv("VGANZOO_CUDA_STRATEGY", raising=False)
    torch.manual_seed(4)
    x = torch.randn(2, 16, 5, 9, 9, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(24, 16, 3, 3, 3, device="cuda", dtype=torch.bfloat16) / 20
    b = torch.randn(24, device="cuda", dtype=torch.bfloat16)
    before = ops.explain(x, w, b, 1, 1, activation="relu")
    assert "igemm_tensor_core" in before and "not tuned yet" in before
    y = ops.conv3d_bias_act(x, w, b, 1, 1, activation="relu", impl="ext")
    after = ops.explain(x, w, b, 1, 1, activation="relu")
    assert "autotuned for this configuration" in after, after
    chosen = after.split("(")[0]  # "ext/cuda:<path> "
    assert sum(name in chosen for name in ("igemm_tensor_core", "aten", "cutlass")) == 1, after
    ref = ops.conv3d_bias_act_ref(x.double(), w.double(), b.double(), 1, 1, activation="relu")
    torch.testing.assert_close(y.double(), ref, atol=2e-2, rtol=2e-2)
    assert "not tuned yet" in ops.explain(x[:1], w, b, 1, 1, activation="relu")  # another batch size
    monkeypatch.setenv("VGANZOO_CUDA_STRATEGY", "igemm")
    assert "forced by VGANZOO_CUDA_STRATEGY=igemm" in ops.explain(x, w, b, 1, 1, activation="relu")
    monkeypatch.setenv("VGANZOO_CUDA_STRATEGY", "fastest")
    with pytest.raises(
        RuntimeError, match="VGANZOO_CUDA_STRATEGY must be 'auto', 'igemm', 'aten', 'cutlass' or 'no-cutlass'"
    ):
        ops.conv3d_bias_act(x, w, b, 1, 1, impl="ext")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_full_window_layers_cuda(dtype, transposed, layout, monkeypatch):
    """A layer whose whole input is one window (score heads; a 1x1x1 input transposed onto one kernel) is
    one matrix product on the GPU too, with or without bias, every activation, both memory formats."""
    monkeypatch.delenv("VGANZOO_CUDA_STRATEGY", raising=False)
    torch.manual_seed(6)
    if transposed:
        x = torch.randn(3, 40, 1, 1, 1, device="cuda").to(dtype)
        w = (torch.randn(40, 24, 2, 4, 4, device="cuda") / 40**0.5).to(dtype)
    else:
        x = torch.randn(3, 64, 2, 4, 4, device="cuda").to(dtype)
        w = (torch.randn(2, 64, 2, 4, 4, device="cuda") / 2048**0.5).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=CL)
    b = torch.randn(w.shape[1] if transposed else w.shape[0], device="cuda").to(dtype)
    op = ops.conv_transpose3d_bias_act if transposed else ops.conv3d_bias_act
    ref = ops.conv_transpose3d_bias_act_ref if transposed else ops.conv3d_bias_act_ref
    for act in ops.ACTIVATIONS:
        for bias in (b, None):
            _poison()
            y = op(x, w, bias, activation=act, impl="ext")
            expected = ref(x.double(), w.double(), None if bias is None else bias.double(), activation=act)
            torch.testing.assert_close(y.double(), expected, atol=TOL[dtype], rtol=TOL[dtype])
    assert "full_window_gemm" in ops.explain(x, w, b, transposed=transposed)
    # Gradients: two matrix products (not cuDNN's convolution backward), against the float64 reference.
    leaves = [t.detach().clone().requires_grad_() for t in (x, w, b)]
    leaves64 = [t.detach().double().requires_grad_() for t in (x, w, b)]
    grad_out = torch.randn_like(op(x, w, b, activation="tanh", impl="ext"))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        got = torch.autograd.grad(op(*leaves, activation="tanh", impl="ext"), leaves, grad_out)
    names = {e.name for e in prof.events()}
    assert "aten::mm" in names and "aten::convolution_backward" not in names, sorted(names)
    expected = torch.autograd.grad(ref(*leaves64, activation="tanh"), leaves64, grad_out.double())
    for g, e in zip(got, expected):
        scale = e.abs().max().item() + 1.0
        torch.testing.assert_close(g.double() / scale, e / scale, atol=TOL[dtype], rtol=TOL[dtype])
    monkeypatch.setenv("VGANZOO_CUDA_STRATEGY", "aten")
    assert "full_window" not in ops.explain(x, w, b, transposed=transposed)
