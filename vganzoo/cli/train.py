"""``vganzoo train MODEL --data SPEC ...``: a thin layer over :func:`vganzoo.train.train`.

Several processes: ``torchrun --nproc_per_node K -m vganzoo train MODEL ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from typing import Any


def _model_arg(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
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
    p.add_argument("model", help="model name, e.g. mocogan-rnn (see `vganzoo list`)")
    p.add_argument("--data", required=True, help="moving-digits, moving-shapes or a folder of videos")
    p.add_argument("--out", default=None, help="run folder (default: runs/MODEL-TIME)")
    p.add_argument("--steps", type=int, default=1000, help="training iterations (default: 1000)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="batch size for every discriminator (default: the recipe's)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue the newest checkpoint in --out (or the given checkpoint file; put --resume after "
        "MODEL)",
    )
    p.add_argument(
        "--init-from",
        default=None,
        metavar="WEIGHTS",
        help="fine-tune: start from these pretrained weights (arch.tag, hf-hub:org/repo, or a weight-set "
        "folder) "
        "instead of random ones; built with their config (model overrides on top), loaded where the tensors "
        "fit",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    p.add_argument("--amp", action="store_true", help="mixed precision (bf16; CUDA only)")
    p.add_argument("--compile", action="store_true", help="torch.compile the generator and discriminators")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: 0, or the resumed run's)")
    p.add_argument(
        "--grad-accum",
        type=int,
        default=None,
        help="micro-batches per optimiser step (default: 1, or the resumed run's)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=500,
        help="iterations between checkpoints (0: only at the end)",
    )
    p.add_argument(
        "--sample-every", type=int, default=500, help="iterations between sample grids (0: only at the end)"
    )
    p.add_argument("--log-every", type=int, default=10, help="iterations between metric log lines")
    p.add_argument("--keep-checkpoints", type=int, default=3, help="how many recent checkpoints to keep")
    p.add_argument("--num-samples", type=int, default=16, help="videos per sample grid")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument(
        "--max-time",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="stop cleanly (checkpoint, exit 0) once this wall time has passed: 90, 90s, 20m, 1.5h, 1h30m",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    model = p.add_argument_group("model overrides (passed to vganzoo.create)")
    model.add_argument("--resolution", type=int, default=None)
    model.add_argument("--frames", type=int, default=None)
    model.add_argument("--channels", type=int, default=None)
    model.add_argument("--width", type=float, default=None, help="channel multiplier (1.0 = paper)")
    model.add_argument("--num-classes", type=int, default=None)
    model.add_argument(
        "--model-arg",
        action="append",
        type=_model_arg,
        default=[],
        metavar="KEY=VALUE",
        help="any other model config keyword (repeatable)",
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
    p.set_defaults(func=run)

    e = sub.add_parser(
        "export",
        help="write a training checkpoint as a weight-set folder",
        description=(
            "Write CHECKPOINT (a ckpt-*.safetensors file, or a run folder: its newest checkpoint) as a "
            "save_pretrained folder OUT that vganzoo.load('local-dir:OUT') reads and `vganzoo push` "
            "publishes."
        ),
    )
    e.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file or run folder")
    e.add_argument("out", metavar="OUT", help="weight-set folder to write")
    e.add_argument(
        "--step", type=int, default=None, help="with a run folder: the checkpoint of this iteration"
    )
    e.add_argument(
        "--generator",
        choices=("both", "ema", "raw"),
        default="both",
        help="both: generator and EMA as trained; ema: the EMA weights as the only generator; raw: no EMA "
        "(default: both)",
    )
    e.add_argument("--no-discriminators", action="store_true", help="ship the generator only")
    e.add_argument(
        "--dtype",
        choices=("float32", "float16", "bfloat16"),
        default=None,
        help="storage dtype (default: as trained)",
    )
    e.add_argument(
        "--metadata",
        metavar="JSON_FILE",
        default=None,
        help="model-card fields (steps, metrics, machine, wall_time...)",
    )
    e.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    e.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    if os.path.isdir(args.out) and any(os.scandir(args.out)) and not args.overwrite:
        raise FileExistsError(f"OUT: {args.out!r} exists and is not empty; pass --overwrite to replace it")
    from ..train.export import export_checkpoint

    metadata = None
    if args.metadata:
        try:
            with open(args.metadata, encoding="utf-8") as handle:
                metadata = json.load(handle)
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"--metadata: cannot read {args.metadata!r} as JSON: {exc}") from None
        if not isinstance(metadata, dict):
            raise ValueError(f"--metadata: {args.metadata!r} must hold a JSON object")
    out = export_checkpoint(
        args.checkpoint,
        args.out,
        step=args.step,
        generator=args.generator,
        discriminators=not args.no_discriminators,
        dtype=args.dtype,
        metadata=metadata,
        overwrite=args.overwrite,
    )
    print(f"wrote {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..hub import cli_load_name
    from ..train import train

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
        resume=args.resume,
        init_from=None if args.init_from is None else cli_load_name(args.init_from),
        device=args.device,
        amp=args.amp,
        compile=args.compile,
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
            print(f"interrupted at iteration {result.step}; continue with --resume --out {result.run_dir}")
        return 130
    if result.status == "time_limit":
        if main_process:
            print(
                f"--max-time reached at iteration {result.step} of {args.steps}; "
                f"continue with --resume --out {result.run_dir}"
            )
        return 0
    if main_process:
        print(f"trained {result.step} iterations; model saved to {result.export_dir}")
    return 0


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
