"""``vganzoo export CHECKPOINT OUT``: a training checkpoint (or a run's newest) as a weight-set folder."""

from __future__ import annotations

import argparse

from ..files import read_json_file
from .options import existing_path, int_in, out_dir


def add_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "export",
        help="write a training checkpoint as a weight-set folder",
        description=(
            "Write CHECKPOINT (a ckpt-*.safetensors file, or a run folder: its newest checkpoint) as a "
            "save_pretrained folder OUT that vganzoo.load('local-dir:OUT') reads and `vganzoo push` "
            "publishes."
        ),
    )
    e.add_argument(
        "checkpoint", metavar="CHECKPOINT", type=existing_path, help="checkpoint file or run folder"
    )
    e.add_argument("out", metavar="OUT", type=out_dir, help="weight-set folder to write")
    e.add_argument(
        "--step", type=int_in(0), default=None, help="with a run folder: the checkpoint of this iteration"
    )
    e.add_argument(
        "--generator",
        choices=("both", "ema", "raw"),
        default="both",
        help="both: generator and EMA as trained; ema: the EMA weights as the only generator (runs trained "
        "with an EMA, e.g. --set ema.decay=0.999); raw: no EMA (default: both)",
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
        type=existing_path,
        default=None,
        help="model-card fields (steps, metrics, machine, wall_time...)",
    )
    e.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the weight set in OUT (never a folder that is not one)",
    )
    e.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub import check_replaceable
    from ..train.export import export_checkpoint

    check_replaceable(args.out, args.overwrite, "OUT", "--overwrite")

    metadata = None
    if args.metadata:
        try:
            metadata = read_json_file(args.metadata, f"--metadata: {args.metadata!r}")
        except OSError as exc:
            raise ValueError(f"--metadata: cannot read {args.metadata!r}: {exc.strerror or exc}") from None
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
