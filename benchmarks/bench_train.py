"""Training throughput per model on this machine: iterations/s of vganzoo's Trainer.

Each model is built (optionally smaller: --resolution/--frames/--width), trained on an in-memory
random dataset for --warmup untimed and --steps timed iterations with its own recipe (d_steps,
per-role batch sizes, regularisers, EMA), and compared with a baseline measured in the same run on
copies of the same modules: a bare loop doing one BCE D step per discriminator and one G step per iteration
with the same batch sizes. "ratio" = Trainer it/s / bare it/s (below 1 when the recipe does more
work per iteration than the bare loop, e.g. 2 D steps or a gradient penalty, or from overhead).
The two are timed alternately, iteration by iteration, so both see the same load on a shared box.
The bare loop slices a pre-stacked tensor while the Trainer collates dataset items, so the ratio
also carries the data-batching cost (visible only for toy-sized models).

    PYTHONPATH=. python benchmarks/bench_train.py                    # every registered model
    PYTHONPATH=. python benchmarks/bench_train.py --models 'mocogan*' --resolution 32 --batch-size 4
    PYTHONPATH=. python benchmarks/bench_train.py --plugin-example   # include the toy plugin model
    PYTHONPATH=. python benchmarks/bench_train.py --models tgan --compare-recipes   # paper vs the others

With --compare-recipes each model's default (``paper``) recipe is timed against each of its other
named recipes instead of the bare loop, alternately in the same way ("ratio" = paper / other).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vganzoo
from vganzoo.train import TrainConfig, Trainer


class RandomClips(torch.utils.data.Dataset):
    """``n`` fixed random clips (C, T, H, W) in [-1, 1] held in memory (data loading is not timed)."""

    def __init__(self, n: int, shape: tuple[int, ...]) -> None:
        self.videos = torch.rand(n, *shape, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> dict:
        return {"video": self.videos[i], "label": torch.tensor(-1)}


def build(name: str, args: argparse.Namespace, recipe: str | None = None):
    """The model (with its named ``recipe``, default: its default one) and a random dataset for it."""
    overrides = {"resolution": args.resolution, "frames": args.frames, "width": args.width}
    spec_config = vganzoo.registry.get_model_spec(name).default_config
    torch.manual_seed(0)
    model = vganzoo.create(name, **{k: v for k, v in overrides.items() if k in spec_config})
    if recipe is not None:
        model.recipe = vganzoo.registry.get_recipe(name, recipe)
    if args.batch_size is not None:
        model.recipe = {**model.recipe, "batch_size": args.batch_size, "discriminator_batch_size": None}
    g = model.generator
    return model, RandomClips(args.dataset_size, (g.channels, g.frames, g.resolution, g.resolution))


def trainer_step(model, dataset, args, tmp: str):
    """A warmed-up Trainer; returns a function running its next iteration."""
    config = TrainConfig(
        steps=args.warmup,
        out_dir=tmp,
        progress=False,
        log_every=0,
        sample_every=0,
        checkpoint_every=0,
        tensorboard=False,
        num_samples=0,
        device=args.device,
    )
    trainer = Trainer(model, dataset, config)
    trainer.fit()  # warm-up iterations (and the end-of-run checkpoint and export, untimed)
    trainer._loader = trainer._make_loader()
    counter = iter(range(args.warmup, 1 << 62))
    return lambda: trainer._iteration(next(counter))


def bare_step(model, dataset, args):
    """A warmed-up bare loop: one BCE D step per role and one G step per iteration, written plainly."""
    from vganzoo.train.config import resolve_recipe

    recipe = resolve_recipe(model.recipe, roles=list(model.discriminators))
    sizes = {
        r: (recipe["discriminator_batch_size"] or {}).get(r, recipe["batch_size"])
        for r in model.discriminators
    }
    model.to(args.device)
    videos = dataset.videos.to(args.device)
    g, ds = model.generator, model.discriminators
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4)
    opt_d = {r: torch.optim.Adam(d.parameters(), lr=1e-4) for r, d in ds.items()}
    gen = torch.Generator().manual_seed(0)
    n_max = max(sizes.values())

    def fake(n: int) -> torch.Tensor:
        return g(**{k: v.to(args.device) for k, v in g.sample_latents(n, generator=gen).items()})

    def step() -> None:
        for role, d in ds.items():
            n = sizes[role]
            real = videos[:n]
            with torch.no_grad():
                f = fake(n)
            loss = F.softplus(-d(real).logits).mean() + F.softplus(d(f).logits).mean()
            opt_d[role].zero_grad(set_to_none=True)
            loss.backward()
            opt_d[role].step()
        f = fake(n_max)
        loss = sum(F.softplus(-d(f[: sizes[r]]).logits).mean() for r, d in ds.items())
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()

    for _ in range(args.warmup):
        step()
    return step


def interleaved_rates(first, second, steps: int, device: str = "cpu") -> tuple[float, float]:
    """Iterations/s of two step functions timed alternately, so both see the same machine load."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    spent = [0.0, 0.0]
    for _ in range(steps):
        for k, fn in enumerate((first, second)):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            spent[k] += time.perf_counter() - start
    return steps / spent[0], steps / spent[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="*", help="shell-style filter (default: all)")
    p.add_argument(
        "--plugin-example", action="store_true", help="also register examples/plugin-example's toy-gan"
    )
    p.add_argument("--steps", type=int, default=5, help="timed iterations")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    p.add_argument("--batch-size", type=int, default=None, help="override every role's batch size")
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--width", type=float, default=None)
    p.add_argument("--dataset-size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument(
        "--compare-recipes", action="store_true", help="time the paper recipe against each other named one"
    )
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.plugin_example:
        sys.path.insert(0, str(ROOT / "examples" / "plugin-example"))
        import vganzoo_toy.models  # noqa: F401

    if torch.device(args.device).type == "cuda":
        where = torch.cuda.get_device_name()
    else:
        where = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    names = vganzoo.list_models(args.models)
    if args.plugin_example and "toy-gan" not in names:
        names.append("toy-gan")
    print(f"# training throughput on {where}, torch {torch.__version__}")
    print(
        f"# timed {args.steps} iterations after {args.warmup} warm-up; overrides: "
        f"resolution={args.resolution} frames={args.frames} width={args.width} batch={args.batch_size}"
    )
    if args.compare_recipes:
        compare_recipes(names, args)
        return
    print("| model | batch (per role) | d_steps | Trainer it/s | bare loop it/s | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        try:
            model, dataset = build(name, args)
        except Exception as exc:
            print(f"| {name} | - | - | skipped: {type(exc).__name__}: {exc} | | |")
            continue
        from vganzoo.train.config import resolve_recipe

        recipe = resolve_recipe(model.recipe, roles=list(model.discriminators))
        batches = ", ".join(
            f"{r}={(recipe['discriminator_batch_size'] or {}).get(r, recipe['batch_size'])}"
            for r in model.discriminators
        )
        bare_model, bare_data = build(name, args)
        with tempfile.TemporaryDirectory() as tmp:
            rate, bare = interleaved_rates(
                trainer_step(model, dataset, args, tmp),
                bare_step(bare_model, bare_data, args),
                args.steps,
                args.device,
            )
        print(f"| {name} | {batches} | {recipe['d_steps']} | {rate:.2f} | {bare:.2f} | {rate / bare:.2f} |")


def compare_recipes(names: list[str], args: argparse.Namespace) -> None:
    """Each model's default recipe against each of its other named recipes, timed alternately."""
    print("| model | recipe | it/s | other recipe | it/s | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        spec = vganzoo.registry.get_model_spec(name)
        default = next(iter(spec.recipes), None)
        for other in list(spec.recipes)[1:]:
            with tempfile.TemporaryDirectory() as tmp_a, tempfile.TemporaryDirectory() as tmp_b:
                rate, other_rate = interleaved_rates(
                    trainer_step(*build(name, args, default), args, tmp_a),
                    trainer_step(*build(name, args, other), args, tmp_b),
                    args.steps,
                    args.device,
                )
            print(
                f"| {name} | {default} | {rate:.2f} | {other} | {other_rate:.2f} | {rate / other_rate:.2f} |"
            )


if __name__ == "__main__":
    main()
