"""``vganzoo train MODEL --data SPEC ...``: a thin layer over :func:`vganzoo.train.train`.

Several processes: ``torchrun --nproc_per_node K -m vganzoo train MODEL ...``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from ..files import json_or_text
from .options import (
    device_arg,
    existing_path,
    float_in,
    int_in,
    nonempty,
    out_dir,
    resolve_device,
    seed_arg,
)

# Kept literal so that building the parser does not import torch; a test checks they match
# vganzoo.train.config.MAX_STEPS / MAX_GRAD_ACCUM.
MAX_STEPS = 10**9
MAX_GRAD_ACCUM = 4096
MAX_BATCH = 1_000_000  # a parse-time bound; what memory allows is checked once the model is built
MAX_SIZE = 4096  # --resolution / --frames
MAX_WIDTH = 64.0  # channel multiplier
MAX_CLASSES = 100_000
MAX_WORKERS = 256


def _model_arg(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json_or_text(raw, f"--model-arg {key.strip()}")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return key.strip(), value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on a dataset",
        description=(
            "Train MODEL with its family's recipe. The run folder (--out) gets config.json, checkpoints/, "
            "samples/, logs/metrics.jsonl and, at the end, model/ (a save_pretrained folder). "
            "Use torchrun --nproc_per_node K -m vganzoo train ... for several processes."
        ),
    )
    p.add_argument("model", type=nonempty, help="model name, e.g. mocogan-rnn (see `vganzoo list`)")
    p.add_argument(
        "--data",
        type=nonempty,
        default=None,
        help="moving-digits, moving-shapes or a folder of videos (required; --resume takes the run's)",
    )
    p.add_argument("--out", type=out_dir, default=None, help="run folder (default: runs/MODEL-TIME)")
    p.add_argument(
        "--steps",
        type=int_in(0, MAX_STEPS),
        default=None,
        help="training iterations in all (default: 1000; --resume keeps the run's)",
    )
    p.add_argument(
        "--batch-size",
        type=int_in(1, MAX_BATCH),
        default=None,
        help="batch size for every discriminator (default: the recipe's)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        type=existing_path,
        metavar="CHECKPOINT",
        help="continue the newest checkpoint in --out (or the given checkpoint file; put --resume after "
        "MODEL)",
    )
    p.add_argument(
        "--init-from",
        type=nonempty,
        default=None,
        metavar="WEIGHTS",
        help="fine-tune: start from these pretrained weights (arch.tag, hf-hub:org/repo, or a weight-set "
        "folder) "
        "instead of random ones; built with their config (model overrides on top), loaded where the tensors "
        "fit",
    )
    _add_run_arguments(p)
    _add_model_arguments(p)
    p.set_defaults(func=run)


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Device, precision, seed, checkpointing, logging and data loading."""
    p.add_argument(
        "--device", type=device_arg, default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)"
    )
    p.add_argument("--amp", action="store_true", help="mixed precision (bf16; CUDA only)")
    p.add_argument("--compile", action="store_true", help="torch.compile the generator and discriminators")
    p.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="record the generator's and discriminators' forward and backward passes in CUDA graphs and "
        "replay them (CUDA only, refused on the CPU; one process; the first iterations record and are slow; "
        "with --compile: torch.compile's reduce-overhead mode)",
    )
    p.add_argument(
        "--seed", type=seed_arg, default=None, help="random seed (default: 0, or the resumed run's)"
    )
    p.add_argument(
        "--grad-accum",
        type=int_in(1, MAX_GRAD_ACCUM),
        default=None,
        help="micro-batches per optimiser step (default: 1, or the resumed run's)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int_in(0, MAX_STEPS),
        default=500,
        help="iterations between checkpoints (0: only at the end)",
    )
    p.add_argument(
        "--sample-every",
        type=int_in(0, MAX_STEPS),
        default=500,
        help="iterations between sample grids (0: only at the end)",
    )
    p.add_argument(
        "--log-every", type=int_in(0, MAX_STEPS), default=10, help="iterations between metric log lines"
    )
    p.add_argument(
        "--keep-checkpoints", type=int_in(1, 100_000), default=3, help="how many recent checkpoints to keep"
    )
    p.add_argument("--num-samples", type=int_in(0, 1024), default=16, help="videos per sample grid")
    p.add_argument("--workers", type=int_in(0, MAX_WORKERS), default=0, help="DataLoader worker processes")
    p.add_argument(
        "--max-time",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="stop cleanly (checkpoint, exit 0) once this wall time has passed: 90, 90s, 20m, 1.5h, 1h30m",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Overrides of the model's config (and mixing in other discriminators)."""
    model = p.add_argument_group("model overrides (passed to vganzoo.create)")
    model.add_argument("--resolution", type=int_in(1, MAX_SIZE), default=None)
    model.add_argument("--frames", type=int_in(1, MAX_SIZE), default=None)
    model.add_argument(
        "--channels", type=int, choices=(1, 3), default=None, help="1 or 3 (default: the data's)"
    )
    model.add_argument(
        "--width",
        type=float_in(0.0, MAX_WIDTH, low_open=True),
        default=None,
        help="channel multiplier (1.0 = paper)",
    )
    model.add_argument(
        "--num-classes",
        type=int_in(0, MAX_CLASSES),
        default=None,
        help="0 = unconditional (default: the data's)",
    )
    model.add_argument(
        "--model-arg",
        action="append",
        type=_model_arg,
        default=[],
        metavar="KEY=VALUE",
        help="any other model config keyword (repeatable)",
    )
    p.add_argument(
        "--recipe",
        type=nonempty,
        default=None,
        metavar="NAME",
        help="a named recipe of MODEL (default: its paper recipe, the original training loop; "
        "`vganzoo info MODEL` lists them and how they differ); --set applies on top",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe override, e.g. optimizers.generator.lr=1e-4, d_steps=2, ema.decay=0.999, ema=null "
        "(repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    from ..train import train

    if args.data is None and not args.resume:
        raise ValueError("--data is required (moving-digits, moving-shapes or a folder of videos)")
    if args.cuda_graphs:  # before anything is built or written
        from ..nn.graphs import require_cuda

        require_cuda(resolve_device(args.device), "--cuda-graphs")

    model_overrides: dict[str, Any] = {
        "resolution": args.resolution,
        "frames": args.frames,
        "channels": args.channels,
        "width": args.width,
        "num_classes": args.num_classes,
    }
    model_overrides.update(dict(args.model_arg))
    result = train(
        args.model,
        data=args.data,
        out=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        model_overrides=model_overrides,
        recipe_overrides=args.overrides,
        recipe=args.recipe,
        resume=args.resume,
        init_from=args.init_from,
        device=None if args.device == "auto" else args.device,  # None: CUDA when available
        amp=args.amp,
        compile=args.compile,
        cuda_graphs=args.cuda_graphs,
        seed=args.seed,
        grad_accum=args.grad_accum,
        checkpoint_every=args.checkpoint_every,
        sample_every=args.sample_every,
        log_every=args.log_every,
        keep_checkpoints=args.keep_checkpoints,
        num_samples=args.num_samples,
        num_workers=args.workers,
        progress=not args.no_progress,
        max_time=args.max_time,
        command=" ".join(["vganzoo", *map(shlex.quote, sys.argv[1:])])
        if sys.argv[1:2] == ["train"]
        else None,
    )
    main_process = int(os.environ.get("RANK", "0")) == 0
    if result.status == "interrupted":
        if main_process:
            print(f"interrupted at iteration {result.step}; continue with: {_resume_command(args, result)}")
        return 130
    if result.status == "time_limit":
        if main_process:
            print(
                f"--max-time reached at iteration {result.step} of {result.steps}; "
                f"continue with: {_resume_command(args, result)}"
            )
        return 0
    if main_process:
        print(_completed(result, result.steps))
    return 0


def _resume_command(args: argparse.Namespace, result) -> str:
    """The command that continues this run, as it can be pasted (the run keeps its data and total)."""
    return shlex.join(["vganzoo", "train", args.model, "--resume", "--out", str(result.run_dir)])


def _completed(result, steps: int) -> str:
    """What a completed run did: the iterations this call ran (none when resumed at the end)."""
    ran = result.step - result.start_step
    if ran == 0:
        return f"already at step {result.step} of {steps}; nothing to train (model in {result.export_dir})"
    resumed = f" (resumed at {result.start_step})" if result.start_step else ""
    return f"trained {ran} iteration{'s' if ran != 1 else ''}{resumed}; model saved to {result.export_dir}"


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in "90", "90s", "20m", "1.5h" or "1h30m" (argparse type; ArgumentTypeError when malformed)."""
    import re

    spec = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", spec):
        seconds = float(spec)
    elif re.fullmatch(r"(\d+(\.\d+)?[smh])+", spec):
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)([smh])", spec))
    else:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 90, 90s, 20m, 1.5h or 1h30m, got {text!r}"
        )
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"the duration must be > 0, got {text!r}")
    return seconds
