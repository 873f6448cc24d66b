"""Benchmark the fused 3-D conv ops against eager PyTorch (and torch.compile) on the zoo's real layers.

    PYTHONPATH=. python benchmarks/bench_ops.py                   # CPU, batch 8, float32
    PYTHONPATH=. python benchmarks/bench_ops.py --compile         # also time torch.compile(eager)
    PYTHONPATH=. python benchmarks/bench_ops.py --device cuda --batch 16 64 --dtype float32 bfloat16 --model
    PYTHONPATH=. python benchmarks/bench_ops.py --strategies aten onednn onednn_cl gemm direct   # CPU path
    tuning
    PYTHONPATH=. python benchmarks/bench_ops.py --device cuda --strategies igemm aten cutlass  # CUDA paths
    PYTHONPATH=. python benchmarks/bench_ops.py --device cuda --dtype bfloat16 --backward  # fwd + bwd per layer
    PYTHONPATH=. python benchmarks/bench_ops.py --device cuda --dtype tf32   # float32, TF32 allowed (torch's
    default)

Eager baseline = F.conv3d / F.conv_transpose3d with the bias, then the activation, same dtype and
memory format (contiguous in, contiguous out). Runs are interleaved (ours, eager, compiled, ours, ...)
and the median is reported; "ratio" = eager time / ours (> 1: ours is faster). On CUDA "float32" is exact
float32 on both sides (TF32 off for cuDNN and matmuls); "tf32" is float32 tensors with TF32 allowed on
both sides, torch's default for convolutions. With --backward every timing is forward + backward (x, weight
and bias gradients: the extension's dgrad + wgrad against cuDNN's convolution backward) and GFLOP/s counts
the three GEMMs. Prints a markdown table
(shape, ours, eager, compiled, ratio, GFLOP/s, GB/s) and the geometric mean; with --out the table is
also written to that file. Also prints the `import vganzoo` overhead over `import torch`.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vganzoo import ops

S122, P011 = (1, 2, 2), (0, 1, 1)


@dataclass(frozen=True)
class Layer:
    name: str
    c_in: int
    c_out: int
    size: tuple[int, int, int]  # input (T, H, W)
    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]
    padding: tuple[int, int, int]
    activation: str
    transposed: bool = False


def _k(v):
    return (v, v, v) if isinstance(v, int) else tuple(v)


def zoo_layers() -> list[Layer]:
    """Every 3-D conv layer shape of the zoo's models (shared/ARCHITECTURES.md)."""
    L = []
    # MoCoGAN VideoDiscriminator / PatchVideoDiscriminator: k4, stride (1,2,2), padding (0,1,1), 16x64x64.
    for i, (ci, co, sz) in enumerate(
        [(3, 64, (16, 64, 64)), (64, 128, (13, 32, 32)), (128, 256, (10, 16, 16)), (256, 512, (7, 8, 8))]
    ):
        L.append(Layer(f"mocogan.video_d.{i}", ci, co, sz, _k(4), S122, P011, "leaky_relu"))
    L.append(Layer("mocogan.video_d.head", 512, 1, (4, 4, 4), _k(4), _k(1), _k(0), "none"))
    L.append(Layer("mocogan.patch_video_d.head", 256, 1, (7, 8, 8), _k(4), S122, P011, "none"))
    # TGAN discriminator: k4 s2 p1 on 16x64x64.
    for i, (ci, co, sz) in enumerate(
        [(3, 64, (16, 64, 64)), (64, 128, (8, 32, 32)), (128, 256, (4, 16, 16)), (256, 512, (2, 8, 8))]
    ):
        L.append(Layer(f"tgan.d.{i}", ci, co, sz, _k(4), _k(2), _k(1), "leaky_relu"))
    # VGAN discriminator: k4 s2 p1 on 32x64x64, head 512->2 kernel (2,4,4).
    for i, (ci, co, sz) in enumerate(
        [(3, 64, (32, 64, 64)), (64, 128, (16, 32, 32)), (128, 256, (8, 16, 16)), (256, 512, (4, 8, 8))]
    ):
        L.append(Layer(f"vgan.d.{i}", ci, co, sz, _k(4), _k(2), _k(1), "leaky_relu"))
    L.append(Layer("vgan.d.head", 512, 2, (2, 4, 4), (2, 4, 4), _k(1), _k(0), "none"))
    # VGAN foreground generator: ConvT3d 100->512 (2,4,4), then k4 s2 p1 512->256->128->64, heads 64->3 /
    # 64->1.
    L.append(Layer("vgan.g.0", 100, 512, (1, 1, 1), (2, 4, 4), _k(1), _k(0), "relu", True))
    for i, (ci, co, sz) in enumerate([(512, 256, (2, 4, 4)), (256, 128, (4, 8, 8)), (128, 64, (8, 16, 16))]):
        L.append(Layer(f"vgan.g.{i + 1}", ci, co, sz, _k(4), _k(2), _k(1), "relu", True))
    L.append(Layer("vgan.g.video", 64, 3, (16, 32, 32), _k(4), _k(2), _k(1), "tanh", True))
    L.append(Layer("vgan.g.mask", 64, 1, (16, 32, 32), _k(4), _k(2), _k(1), "sigmoid", True))
    return L


def select_dtype(name: str, device: torch.device) -> torch.dtype:
    """The tensor dtype for a --dtype name; on CUDA also sets whether float32 convolutions and matmuls may
    use TF32 ("tf32": yes, for eager and ours alike; every other name: no)."""
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
    return torch.float32 if name == "tf32" else getattr(torch, name)


def make_inputs(layer: Layer, batch: int, dtype, device, memory_format):
    x = torch.randn(batch, layer.c_in, *layer.size, dtype=dtype, device=device).contiguous(
        memory_format=memory_format
    )
    wshape = (layer.c_in, layer.c_out) if layer.transposed else (layer.c_out, layer.c_in)
    fan_in = layer.c_in * math.prod(layer.kernel)
    w = torch.randn(*wshape, *layer.kernel, dtype=dtype, device=device) / math.sqrt(fan_in)
    b = torch.randn(layer.c_out, dtype=dtype, device=device) * 0.1
    return x, w, b


def eager_fn(layer: Layer):
    def fn(x, w, b):
        if layer.transposed:
            y = F.conv_transpose3d(x, w, b, layer.stride, layer.padding)
        else:
            y = F.conv3d(x, w, b, layer.stride, layer.padding)
        return ops.apply_activation(y, layer.activation, ops.DEFAULT_NEGATIVE_SLOPE)

    return fn


def ours_fn(layer: Layer):
    def fn(x, w, b):
        if layer.transposed:
            return ops.conv_transpose3d_bias_act(
                x, w, b, layer.stride, layer.padding, activation=layer.activation, impl="ext"
            )
        return ops.conv3d_bias_act(
            x, w, b, layer.stride, layer.padding, activation=layer.activation, impl="ext"
        )

    return fn


def flops_and_bytes(layer: Layer, x, w, y) -> tuple[float, float]:
    k = math.prod(layer.kernel)
    if layer.transposed:
        flops = 2.0 * x.numel() * layer.c_out * k
    else:
        flops = 2.0 * y.numel() * layer.c_in * k
    nbytes = (x.numel() + w.numel() + y.numel()) * x.element_size()
    return flops, nbytes


class Clock:
    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def time(self, fn, *args) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(*args)
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1e3
        t0 = time.perf_counter()
        fn(*args)
        return time.perf_counter() - t0


def bench_interleaved(fns: dict, args, clock: Clock, warmup: int, reps: int) -> dict[str, float]:
    for fn in fns.values():
        for _ in range(warmup):
            fn(*args)
    if clock.cuda:
        torch.cuda.synchronize()
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            times[k].append(clock.time(fn, *args))
    return {k: statistics.median(v) for k, v in times.items()}


def import_overhead() -> float:
    """Seconds `import vganzoo` adds over `import torch` (median of 3 fresh interpreters)."""
    code = (
        "import time, torch; t=time.perf_counter(); import vganzoo, vganzoo.nn; print(time.perf_counter()-t)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    vals = [
        float(
            subprocess.check_output([sys.executable, "-c", code], env=env, text=True).strip().splitlines()[-1]
        )
        for _ in range(3)
    ]
    return statistics.median(vals)


def run_layers(args) -> list[str]:
    device = torch.device(args.device)
    clock = Clock(device)
    fmt = torch.channels_last_3d if args.channels_last else torch.contiguous_format
    lines = []
    header = "| layer | batch | dtype | ours ms | eager ms | compiled ms | ratio vs eager | ratio vs compiled | GFLOP/s | GB/s |"
    ncols = 10
    if args.strategies:
        header += " paths: ratio vs eager |"
        ncols += 1
    env_var = STRATEGY_ENV[device.type]
    for dtype_name in args.dtype:
        dtype = select_dtype(dtype_name, device)
        for batch in args.batch:
            if args.backward:
                lines.append(
                    f"forward + backward (x, weight and bias gradients), {dtype_name}, batch {batch}"
                )
            lines += [header, "|" + "---|" * ncols]
            ratios, cratios = [], []
            for layer in zoo_layers():
                if args.only and not any(s in layer.name for s in args.only):
                    continue
                x, w, b = make_inputs(layer, batch, dtype, device, fmt)
                fns = {"ours": ours_fn(layer)}
                for strategy in args.strategies or []:
                    fns[strategy] = _with_strategy(ours_fn(layer), env_var, strategy)
                fns["eager"] = eager_fn(layer)
                if args.compile and (not args.compile_batch or batch in args.compile_batch):
                    torch._dynamo.reset()  # one code object for every layer: never hit the recompile limit
                    fns["compiled"] = torch.compile(eager_fn(layer), fullgraph=True)
                y = fns["eager"](x, w, b)
                if args.backward:
                    x, w, b = (t.requires_grad_() for t in (x, w, b))
                    grad_out = torch.randn_like(y)
                    fns = {name: _forward_backward(fn, grad_out) for name, fn in fns.items()}
                want = fns["eager"](x, w, b)
                for name, fn in fns.items():
                    if name != "eager":
                        out = fn(x, w, b)
                        tol = 1e-3 if dtype_name == "float32" else 3e-2
                        _assert_close_scaled(out, want, tol)
                        assert args.backward or out.is_contiguous(memory_format=fmt), (
                            f"{layer.name}: {name} changed the memory format"
                        )
                t = bench_interleaved(fns, (x, w, b), clock, args.warmup, args.reps)
                flops, nbytes = flops_and_bytes(layer, x, w, y)
                if args.backward:  # dgrad and wgrad are one forward's GEMM each; every tensor read twice more
                    flops, nbytes = 3 * flops, 3 * nbytes
                ratio = t["eager"] / t["ours"]
                ratios.append(ratio)
                comp = "-"
                cratio = "-"
                if "compiled" in t:
                    comp = f"{t['compiled'] * 1e3:.2f}"
                    cratios.append(t["compiled"] / t["ours"])
                    cratio = f"{cratios[-1]:.2f}"
                lines.append(
                    f"| {layer.name} | {batch} | {dtype_name} | {t['ours'] * 1e3:.2f} | "
                    f"{t['eager'] * 1e3:.2f} "
                    f"| {comp} | {ratio:.2f} | {cratio} | {flops / t['ours'] / 1e9:.1f} "
                    f"| {nbytes / t['ours'] / 1e9:.2f} |"
                )
                if args.strategies:
                    lines[-1] += (
                        " " + " ".join(f"{s}={t['eager'] / t[s]:.2f}x" for s in args.strategies) + " |"
                    )
                print(lines[-1], flush=True)
            if ratios:
                geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
                lines.append(
                    f"\ngeomean ratio vs eager ({dtype_name}, batch {batch}): {geo:.3f}; "
                    f"min {min(ratios):.3f}"
                )
                if cratios:
                    cgeo = math.exp(sum(map(math.log, cratios)) / len(cratios))
                    lines.append(f"geomean ratio vs torch.compile: {cgeo:.3f}; min {min(cratios):.3f}")
                lines.append("")
                print("\n".join(lines[-3:]), flush=True)
    return lines


# The extension's developer overrides (read per call): CPU "aten" | "onednn" | "onednn_cl" | "gemm" |
# "direct";
# CUDA "igemm" (our kernel wherever it covers the call) | "aten" (cuDNN + our fused epilogue) | "cutlass"
# (the CUTLASS kernels where they can run the call, forward and backward) | "no-cutlass" (autotuned without).
STRATEGY_ENV = {"cpu": "VGANZOO_CPU_STRATEGY", "cuda": "VGANZOO_CUDA_STRATEGY"}


def _assert_close_scaled(got, want, tol: float) -> None:
    """got == want (a tensor or a tuple of gradients) within tol of the largest magnitude of each tensor
    (a weight gradient sums a whole batch: its small entries carry that sum's absolute error)."""
    for g, e in zip(got, want) if isinstance(want, tuple) else [(got, want)]:
        scale = e.detach().abs().max().item() + 1.0
        torch.testing.assert_close(g / scale, e / scale, atol=tol, rtol=tol)


def _forward_backward(fn, grad_out: torch.Tensor):
    """fn's forward and its x, weight and bias gradients for `grad_out` (a first-order backward)."""

    def step(x, w, b):
        return torch.autograd.grad(fn(x, w, b), (x, w, b), grad_out)

    return step


def _with_strategy(fn, env_var: str, strategy: str):
    def wrapped(*a):
        old = os.environ.get(env_var)
        os.environ[env_var] = strategy
        try:
            return fn(*a)
        finally:
            if old is None:
                os.environ.pop(env_var, None)
            else:
                os.environ[env_var] = old

    return wrapped


def run_model(args) -> list[str]:
    """Forward + backward of a whole MoCoGAN-style video discriminator (training mode, BN): STConv3d vs nn."""
    from torch import nn

    from vganzoo.nn import STConv3d

    device = torch.device(args.device)
    clock = Clock(device)
    lines = ["| model | batch | dtype | ours ms | eager ms | ratio |", "|---|---|---|---|---|---|"]
    if args.strategies:
        lines = [lines[0] + " paths: ratio vs eager |", lines[1] + "---|"]
    chans = [3, 64, 128, 256, 512]
    for dtype_name in args.dtype:
        dtype = select_dtype(dtype_name, device)
        for batch in args.batch:
            torch.manual_seed(0)
            ours = nn.Sequential(
                *[
                    STConv3d(
                        ci,
                        co,
                        4,
                        S122,
                        P011,
                        bias=False,
                        activation="leaky_relu",
                        norm=None if i == 0 else "batch",
                    )
                    for i, (ci, co) in enumerate(zip(chans[:-1], chans[1:]))
                ],
                STConv3d(512, 1, 4, bias=False),
            )
            eager = nn.Sequential()
            for i, (ci, co) in enumerate(zip(chans[:-1], chans[1:])):
                eager.append(nn.Conv3d(ci, co, 4, S122, P011, bias=False))
                if i:
                    eager.append(nn.BatchNorm3d(co))
                eager.append(nn.LeakyReLU(ops.DEFAULT_NEGATIVE_SLOPE))  # STConv3d's default
            eager.append(nn.Conv3d(512, 1, 4, bias=False))
            ours, eager = ours.to(device, dtype), eager.to(device, dtype)
            x = torch.randn(batch, 3, 16, 64, 64, device=device, dtype=dtype)

            def step(model):
                model.zero_grad(set_to_none=True)
                model(x).float().mean().backward()

            fns = {"ours": lambda: step(ours)}
            for strategy in args.strategies or []:
                fns[strategy] = _with_strategy(lambda: step(ours), STRATEGY_ENV[device.type], strategy)
            fns["eager"] = lambda: step(eager)
            t = bench_interleaved(fns, (), clock, args.warmup, max(3, args.reps // 2))
            lines.append(
                f"| mocogan.video_d fwd+bwd | {batch} | {dtype_name} | {t['ours'] * 1e3:.1f} | "
                f"{t['eager'] * 1e3:.1f} | {t['eager'] / t['ours']:.2f} |"
            )
            if args.strategies:
                lines[-1] += " " + " ".join(f"{s}={t['eager'] / t[s]:.2f}x" for s in args.strategies) + " |"
            print(lines[-1], flush=True)
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, nargs="+", default=[8])
    p.add_argument(
        "--dtype",
        nargs="+",
        default=["float32"],
        choices=["float32", "tf32", "bfloat16", "float16"],
        help="tf32: float32 tensors with TF32 allowed on both sides (CUDA; on the CPU the same as float32)",
    )
    p.add_argument(
        "--channels-last", action="store_true", help="feed channels_last_3d inputs (default contiguous)"
    )
    p.add_argument("--compile", action="store_true", help="also time torch.compile(eager)")
    p.add_argument("--model", action="store_true", help="also time fwd+bwd of a whole video discriminator")
    p.add_argument(
        "--backward",
        action="store_true",
        help="time forward + backward of each layer (not the forward alone)",
    )
    p.add_argument("--only", nargs="*", help="substrings of layer names to run")
    p.add_argument(
        "--compile-batch",
        type=int,
        nargs="*",
        help="with --compile: time torch.compile only at these batch sizes (compiling is slow)",
    )
    p.add_argument(
        "--strategies",
        nargs="*",
        help="also time the extension with each forced path (VGANZOO_CPU_STRATEGY / VGANZOO_CUDA_STRATEGY)",
    )
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=11)
    p.add_argument("--out", help="also write the markdown table to this file")
    args = p.parse_args(argv)
    info = (
        f"device={args.device} "
        f"({torch.cuda.get_device_name() if args.device == 'cuda' else f'{torch.get_num_threads()} threads'}), "
        f"torch {torch.__version__}, memory format "
        f"{'channels_last_3d' if args.channels_last else 'contiguous'}"
    )
    print(info)
    print(f"import vganzoo adds {import_overhead():.3f} s over import torch")
    lines = [info, "", *run_layers(args)]
    if args.model:
        lines += ["", *run_model(args)]
    table = "\n".join(lines)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")
    print("\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
