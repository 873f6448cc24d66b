"""Per-model throughput: sampling (videos/s) and one training iteration of the model's recipe.

Every registered model is built once at its default config (random weights) and timed with the
default ops implementation and with ``VGANZOO_OPS_IMPL=ref`` (the plain-PyTorch reference ops),
alternating call by call in the same process (the switch is read at every call), so machine noise
and process placement hit both alike. The table shows both and their ratio (ref time / default
time, > 1 means the default path is faster); each figure is the median over ``--repeat`` calls.

One training iteration = ``d_steps`` x (one update of every discriminator on a real and a fake
batch) + one generator update, with the recipe's adversarial loss, optimisers and the category
cross-entropy when a discriminator returns class logits. Singular value clipping (when the recipe
has it) is timed separately (column ``svc``), since it runs every few iterations only. This is a
self-contained step for timing, not the trainer.

``--amp`` runs sampling and the iteration under bf16 autocast (CUDA only), as ``vganzoo train --amp``.
A model that fails is reported in its row and makes the exit status 1.
``--cuda-graphs`` (CUDA) adds two columns measured with the default ops: sampling replayed from a CUDA
graph (``vganzoo.nn.graphs.GraphedInference``, as ``vganzoo sample --cuda-graphs``) and the iteration with
the generator and discriminators compiled with torch.compile's ``cudagraphs`` backend (as ``vganzoo train
--cuda-graphs``), each as a ratio to the eager default-ops time (> 1: the graphs are faster).

    python benchmarks/bench_models.py                 # all models, CPU, batch 4
    python benchmarks/bench_models.py --models 'mocogan*' --repeat 7 --device cuda
    python benchmarks/bench_models.py --models 'mocogan-rnn' --device cuda --batch 16 --amp --cuda-graphs
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMPL_ENV = "VGANZOO_OPS_IMPL"


# ------------------------------------------------------------------------------------------------
# Child: measure one model with whatever ops implementation the environment selects
# ------------------------------------------------------------------------------------------------
def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _set_impl(impl: str | None) -> None:
    if impl is None:
        os.environ.pop(IMPL_ENV, None)
    else:
        os.environ[IMPL_ENV] = impl


def _timed_pair(fn, device, repeat: int) -> tuple[float, float, tuple[float, float]]:
    """Median seconds of ``fn`` with the default ops and with the reference ops, alternating calls, and the
    quartiles (25th, 75th percentile) of the per-pair ratios ref / default: the spread of the ratio itself,
    which says whether a median ratio near 1 is a difference or noise."""
    times: dict[str | None, list[float]] = {None: [], "ref": []}
    for impl in times:  # warm-up: first-call costs (oneDNN primitives, allocator) out of the timings
        _set_impl(impl)
        fn()
    for i in range(repeat):
        for impl in (None, "ref") if i % 2 == 0 else ("ref", None):
            _set_impl(impl)
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[impl].append(time.perf_counter() - start)
    _set_impl(None)
    ratios = sorted(r / d for d, r in zip(times[None], times["ref"]))
    quartiles = (ratios[0], ratios[-1]) if len(ratios) < 4 else tuple(statistics.quantiles(ratios, n=4)[::2])
    return statistics.median(times[None]), statistics.median(times["ref"]), quartiles


def _optimizer(params, spec: dict[str, Any]):
    import torch

    name = spec.get("name", "adam").lower()
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    if name == "adam":
        return torch.optim.Adam(params, **kwargs)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, **kwargs)
    if name == "sgd":
        return torch.optim.SGD(params, **kwargs)
    raise ValueError(f"unknown optimiser {name!r}")


def _d_loss(kind: str, real, fake):
    import torch.nn.functional as F

    if kind == "bce":
        return F.binary_cross_entropy_with_logits(
            real, real.new_ones(real.shape)
        ) + F.binary_cross_entropy_with_logits(fake, fake.new_zeros(fake.shape))
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wasserstein":
        return fake.mean() - real.mean()
    raise ValueError(f"unknown adversarial loss {kind!r}")


def _g_loss(kind: str, fake):
    import torch.nn.functional as F

    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake, fake.new_ones(fake.shape))
    return -fake.mean()  # hinge and wasserstein


def _timed(fn, device, repeat: int, warmup: int) -> float:
    """Median seconds of ``fn`` with the default ops, after ``warmup`` untimed calls."""
    _set_impl(None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    name: str, batch: int, repeat: int, device_name: str, *, amp: bool = False, cuda_graphs: bool = False
) -> dict[str, Any]:
    import contextlib

    import torch
    import torch.nn.functional as F

    import vganzoo
    from vganzoo.nn import singular_value_clip_
    from vganzoo.nn.graphs import GraphedInference

    device = torch.device(device_name)
    torch.manual_seed(0)
    model = vganzoo.create(name).to(device)
    recipe = model.recipe
    g = model.generator
    out: dict[str, Any] = {"model": name, "batch": batch, "device": device_name}

    def autocast():
        if not amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    # sampling
    model.eval()

    def sample_eager():
        with autocast():
            model.sample(batch, seed=0)

    out["sample_s"], out["ref_sample_s"], out["sample_ratio_iqr"] = _timed_pair(sample_eager, device, repeat)
    if cuda_graphs:  # the same work: latents drawn on the CPU, the generator replayed
        replay = GraphedInference(g)

        @torch.no_grad()
        def sample_graphed():
            latents = g.sample_latents(batch, generator=torch.Generator().manual_seed(0), labels=None)
            latents = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in latents.items()}
            with autocast():
                replay(**latents)

        out["graph_sample_s"] = _timed(sample_graphed, device, repeat, warmup=2)
        assert replay.replays > 0, "the sampling graph was not recorded"

    # one training iteration
    model.train()
    loss_kind = recipe.get("adversarial_loss", "bce")
    opts = recipe.get("optimizers", {})
    g_opt = _optimizer(g.parameters(), opts.get("generator", {"name": "adam"}))
    d_opts = {
        role: _optimizer(
            d.parameters(), opts.get(f"discriminator.{role}", opts.get("discriminators", {"name": "adam"}))
        )
        for role, d in model.discriminators.items()
    }
    category_weight = float(recipe.get("category_loss_weight", 0.0) or 0.0)
    wants_mask = any(r.get("name") == "mask_l1" for r in recipe.get("regularizers", []))
    gen = torch.Generator().manual_seed(1)
    real = (torch.rand(batch, g.channels, g.frames, g.resolution, g.resolution, generator=gen) * 2 - 1).to(
        device
    )

    def fake_batch(g_run):
        latents = g.sample_latents(batch, generator=gen, labels=None)
        labels = latents.get("labels")
        latents = {k: v.to(device) for k, v in latents.items()}
        if wants_mask:
            video, aux = g_run(**latents, return_aux=True)
            return video, labels, aux
        return g_run(**latents), labels, {}

    def iteration(g_run=g, d_run=None) -> None:
        d_run = dict(model.discriminators) if d_run is None else d_run
        for _ in range(int(recipe.get("d_steps", 1))):
            with torch.no_grad(), autocast():
                fake, labels, _ = fake_batch(g_run)
            lab = labels.to(device) if labels is not None else None
            for role, d in d_run.items():
                d_opts[role].zero_grad(set_to_none=True)
                with autocast():
                    out_real, out_fake = d(real, None), d(fake, lab)
                    loss = _d_loss(loss_kind, out_real.logits.float(), out_fake.logits.float())
                    if category_weight and out_fake.class_logits is not None and lab is not None:
                        loss = loss + category_weight * F.cross_entropy(out_fake.class_logits.float(), lab)
                loss.backward()
                d_opts[role].step()
        g_opt.zero_grad(set_to_none=True)
        with autocast():
            fake, labels, aux = fake_batch(g_run)
            lab = labels.to(device) if labels is not None else None
            loss = fake.new_zeros((), dtype=torch.float32)
            for d in d_run.values():
                o = d(fake, lab)
                loss = loss + _g_loss(loss_kind, o.logits.float())
                if category_weight and o.class_logits is not None and lab is not None:
                    loss = loss + category_weight * F.cross_entropy(o.class_logits.float(), lab)
            if "mask" in aux:
                loss = loss + aux["mask"].float().abs().mean()
        loss.backward()
        g_opt.step()

    out["train_iter_s"], out["ref_train_iter_s"], out["train_ratio_iqr"] = _timed_pair(
        iteration, device, repeat
    )
    if cuda_graphs:  # cudagraph trees, as the trainer's cuda_graphs option; the first calls record
        g_graphs = torch.compile(g, backend="cudagraphs")
        d_graphs = {role: torch.compile(d, backend="cudagraphs") for role, d in model.discriminators.items()}

        def iteration_graphed() -> None:
            torch.compiler.cudagraph_mark_step_begin()
            iteration(g_graphs, d_graphs)

        out["graph_train_iter_s"] = _timed(iteration_graphed, device, repeat, warmup=3)
    if any(r.get("name") == "singular_value_clipping" for r in recipe.get("regularizers", [])):
        out["svc_s"], _, _ = _timed_pair(
            lambda: [singular_value_clip_(d) for d in model.discriminators.values()], device, 1
        )
    return out


# ------------------------------------------------------------------------------------------------
# Main: every model in turn, one table
# ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", default="*", help="shell-style filters over vganzoo.list_models(), comma-separated"
    )
    parser.add_argument("--batch", type=int, default=4, help="videos per call (default 4)")
    parser.add_argument(
        "--repeat", type=int, default=5, help="timed calls per implementation, alternating (median reported)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast around sampling and the iteration")
    parser.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="also time sampling and the iteration replayed from CUDA graphs (CUDA only)",
    )
    args = parser.parse_args(argv)
    for name in ("batch", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: must be >= 1, got {getattr(args, name)}")

    sys.path.insert(0, str(ROOT))
    import torch

    import vganzoo
    from vganzoo import ops

    try:
        device_type = torch.device(args.device).type
    except (RuntimeError, ValueError):
        parser.error(f"--device {args.device!r}: not a device; use cpu, cuda or cuda:N")
    cuda = device_type == "cuda"
    if args.cuda_graphs and not cuda:
        parser.error("--cuda-graphs: CUDA graphs need --device cuda")
    if args.amp and not cuda:
        parser.error("--amp: mixed precision is CUDA-only, as in vganzoo train --amp; use --device cuda")
    if cuda and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this PyTorch ({torch.__version__}) sees no CUDA device")
    patterns = [p.strip() for p in args.models.split(",") if p.strip()]
    names = [n for n in vganzoo.list_models() if any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not names:
        parser.error(f"--models {args.models!r}: matches none of {', '.join(vganzoo.list_models())}")
    path = ops.resolve_impl(None, device_type)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, batch "
        f"{args.batch}, {'bf16 autocast, ' if args.amp else ''}"
        f"median of {args.repeat} alternating calls each; default ops = {path!r}, ref = {IMPL_ENV}=ref"
    )
    if args.cuda_graphs:
        print("graphs = eager default-ops time / CUDA-graph time (default ops both; > 1: graphs faster)")
    print(
        "ratio = ref time / default time (median of each); 'pairs' = 25th-75th percentile of the per-pair "
        "ratios"
    )
    header = (
        f"{'model':<14} {'sample v/s':>10} {'ref v/s':>9} {'ratio':>6} {'pairs':>11} | {'train s/it':>10} "
        f"{'ref s/it':>9} {'ratio':>6} {'pairs':>11} | {'svc s':>6}"
        + (f" | {'graph v/s':>9} {'graphs':>6} {'graph s/it':>10} {'graphs':>6}" if args.cuda_graphs else "")
    )
    print(header)
    print("-" * len(header))
    failed: list[str] = []
    for name in names:
        try:
            r = measure(
                name, args.batch, args.repeat, args.device, amp=args.amp, cuda_graphs=args.cuda_graphs
            )
        except Exception as exc:
            print(f"{name:<14} error: {type(exc).__name__}: {exc}", flush=True)
            failed.append(name)
            continue
        svc = f"{r['svc_s']:.3f}" if "svc_s" in r else "-"
        sq, tq = r["sample_ratio_iqr"], r["train_ratio_iqr"]
        print(
            f"{name:<14} {args.batch / r['sample_s']:>10.2f} {args.batch / r['ref_sample_s']:>9.2f} "
            f"{r['ref_sample_s'] / r['sample_s']:>6.2f} {f'{sq[0]:.2f}-{sq[1]:.2f}':>11} | "
            f"{r['train_iter_s']:>10.3f} "
            f"{r['ref_train_iter_s']:>9.3f} {r['ref_train_iter_s'] / r['train_iter_s']:>6.2f} "
            f"{f'{tq[0]:.2f}-{tq[1]:.2f}':>11} | {svc:>6}"
            + (
                f" | {args.batch / r['graph_sample_s']:>9.2f} {r['sample_s'] / r['graph_sample_s']:>6.2f} "
                f"{r['graph_train_iter_s']:>10.3f} {r['train_iter_s'] / r['graph_train_iter_s']:>6.2f}"
                if args.cuda_graphs
                else ""
            ),
            flush=True,
        )
    if path == "ref":
        print(
            f"note: the compiled ops are not available on {args.device}; both columns ran the reference path "
            "(noise only)."
        )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
