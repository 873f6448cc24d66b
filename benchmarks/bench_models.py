"""Per-model throughput: sampling (videos/s) and one training iteration of the model's recipe.

Every registered model is built at its default config (random weights) and measured twice, each
time in a fresh subprocess: with the default ops implementation and with ``VGANZOO_OPS_IMPL=ref``
(the plain-PyTorch reference ops). The table shows both and their ratio (ref time / default time,
> 1 means the default path is faster), all measured in the same run on the same machine.

One training iteration = ``d_steps`` x (one update of every discriminator on a real and a fake
batch) + one generator update, with the recipe's adversarial loss, optimisers and the category
cross-entropy when a discriminator returns class logits. Singular value clipping (when the recipe
has it) is timed separately (column ``svc``), since it runs every few iterations only. This is a
self-contained step for timing, not the trainer.

    python benchmarks/bench_models.py                 # all models, CPU, batch 4
    python benchmarks/bench_models.py --models 'mocogan*' --repeat 5 --device cuda
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import statistics
import subprocess
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


def _timed(fn, device, repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
        return F.binary_cross_entropy_with_logits(real, real.new_ones(real.shape)) + \
            F.binary_cross_entropy_with_logits(fake, fake.new_zeros(fake.shape))
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


def measure(name: str, batch: int, repeat: int, device_name: str) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    import vganzoo
    from vganzoo.nn import singular_value_clip_

    device = torch.device(device_name)
    torch.manual_seed(0)
    model = vganzoo.create(name).to(device)
    recipe = model.recipe
    g = model.generator
    out: dict[str, Any] = {"model": name, "batch": batch, "device": device_name}

    # sampling
    model.eval()
    out["sample_s"] = _timed(lambda: model.sample(batch, seed=0), device, repeat)
    out["videos_per_s"] = batch / out["sample_s"]

    # one training iteration
    model.train()
    loss_kind = recipe.get("adversarial_loss", "bce")
    opts = recipe.get("optimizers", {})
    g_opt = _optimizer(g.parameters(), opts.get("generator", {"name": "adam"}))
    d_opts = {role: _optimizer(d.parameters(), opts.get(f"discriminator.{role}", opts.get("discriminators", {"name": "adam"})))
              for role, d in model.discriminators.items()}
    category_weight = float(recipe.get("category_loss_weight", 0.0) or 0.0)
    wants_mask = any(r.get("name") == "mask_l1" for r in recipe.get("regularizers", []))
    gen = torch.Generator().manual_seed(1)
    real = (torch.rand(batch, g.channels, g.frames, g.resolution, g.resolution, generator=gen) * 2 - 1).to(device)

    def fake_batch():
        latents = g.sample_latents(batch, generator=gen, labels=None)
        labels = latents.get("labels")
        latents = {k: v.to(device) for k, v in latents.items()}
        if wants_mask:
            video, aux = g(**latents, return_aux=True)
            return video, labels, aux
        return g(**latents), labels, {}

    def iteration() -> None:
        for _ in range(int(recipe.get("d_steps", 1))):
            with torch.no_grad():
                fake, labels, _ = fake_batch()
            lab = labels.to(device) if labels is not None else None
            for role, d in model.discriminators.items():
                d_opts[role].zero_grad(set_to_none=True)
                out_real, out_fake = d(real, None), d(fake, lab)
                loss = _d_loss(loss_kind, out_real.logits, out_fake.logits)
                if category_weight and out_fake.class_logits is not None and lab is not None:
                    loss = loss + category_weight * F.cross_entropy(out_fake.class_logits, lab)
                loss.backward()
                d_opts[role].step()
        g_opt.zero_grad(set_to_none=True)
        fake, labels, aux = fake_batch()
        lab = labels.to(device) if labels is not None else None
        loss = fake.new_zeros(())
        for d in model.discriminators.values():
            o = d(fake, lab)
            loss = loss + _g_loss(loss_kind, o.logits)
            if category_weight and o.class_logits is not None and lab is not None:
                loss = loss + category_weight * F.cross_entropy(o.class_logits, lab)
        if "mask" in aux:
            loss = loss + aux["mask"].abs().mean()
        loss.backward()
        g_opt.step()

    out["train_iter_s"] = _timed(iteration, device, repeat)
    if any(r.get("name") == "singular_value_clipping" for r in recipe.get("regularizers", [])):
        out["svc_s"] = _timed(lambda: [singular_value_clip_(d) for d in model.discriminators.values()], device, repeat)
    ops = __import__("vganzoo.ops", fromlist=["*"])
    out["ops_impl"] = os.environ.get(IMPL_ENV, "default")
    out["ops_has_switch"] = hasattr(ops, "resolve_impl")  # impl= argument and VGANZOO_OPS_IMPL
    return out


# ------------------------------------------------------------------------------------------------
# Parent: run the children, print the table
# ------------------------------------------------------------------------------------------------
def _run_child(name: str, impl: str | None, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop(IMPL_ENV, None)
    if impl is not None:
        env[IMPL_ENV] = impl
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    cmd = [sys.executable, __file__, "--child", name, "--batch", str(args.batch), "--repeat", str(args.repeat), "--device", args.device]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"model": name, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-key median of the numeric fields of several child results (other fields from the first)."""
    out = dict(results[0])
    for key, value in results[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = statistics.median(r[key] for r in results)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="*", help="shell-style filter over vganzoo.list_models()")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (median reported)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating default/ref subprocess pairs per model (median over rounds), so machine noise hits both")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(measure(args.child, args.batch, args.repeat, args.device)))
        return 0

    sys.path.insert(0, str(ROOT))
    import torch

    import vganzoo

    names = [n for n in vganzoo.list_models() if fnmatch.fnmatch(n, args.models)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, batch {args.batch}, "
          f"median of {args.repeat} per run, median over {args.rounds} interleaved rounds")
    header = f"{'model':<14} {'sample v/s':>10} {'ref v/s':>9} {'ratio':>6} | {'train s/it':>10} {'ref s/it':>9} {'ratio':>6} | {'svc s':>6}"
    print(header)
    print("-" * len(header))
    switch_seen = False
    for name in names:
        runs: dict[str, list[dict[str, Any]]] = {"default": [], "ref": []}
        for _ in range(max(1, args.rounds)):  # interleaved: default, ref, default, ref, ...
            runs["default"].append(_run_child(name, None, args))
            runs["ref"].append(_run_child(name, "ref", args))
        failed = [r["error"] for rs in runs.values() for r in rs if "error" in r]
        if failed:
            print(f"{name:<14} error: {failed[0]}")
            continue
        default, ref = _median_run(runs["default"]), _median_run(runs["ref"])
        switch_seen |= bool(default["ops_has_switch"])
        svc = f"{default['svc_s']:.3f}" if "svc_s" in default else "-"
        print(f"{name:<14} {default['videos_per_s']:>10.2f} {ref['videos_per_s']:>9.2f} "
              f"{ref['sample_s'] / default['sample_s']:>6.2f} | {default['train_iter_s']:>10.3f} {ref['train_iter_s']:>9.3f} "
              f"{ref['train_iter_s'] / default['train_iter_s']:>6.2f} | {svc:>6}")
    if not switch_seen:
        print(f"note: vganzoo.ops has no implementation switch yet; both columns ran the same (reference) path, "
              f"so the ratios show run-to-run noise only ({IMPL_ENV} had no effect).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
