"""``vganzoo eval``: score a model with FVD, video IS or the offline digits check; a thin layer over
:func:`vganzoo.metrics.evaluate`."""

from __future__ import annotations

import argparse
import json
import os
import sys

# Kept literal so that building the parser does not import torch; tests check they match
# vganzoo.metrics.evaluation.METRICS / DEFAULT_N / DEFAULT_FRAMES.
METRICS = ("fvd", "is", "fvd-digits", "consistency")
DEFAULT_N = 2048
DEFAULT_FRAMES = 16


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model (fvd, is, fvd-digits, consistency)",
        description=(
            "Score MODEL_OR_DIR (a pretrained name like mocogan-rnn.digits, a save_pretrained folder, or a "
            "model "
            "name with --random-weights) against real clips. The JSON output holds the scores, the real "
            "data's "
            "own scores and the full protocol."
        ),
    )
    p.add_argument(
        "model",
        metavar="MODEL_OR_DIR",
        help="pretrained name (arch.tag), save_pretrained folder, or model name with --random-weights",
    )
    p.add_argument(
        "--data",
        help="moving-digits, moving-shapes, a video folder, or a real-statistics .safetensors file (fvd)",
    )
    p.add_argument(
        "--metric", default="fvd", help=f"one or more of {', '.join(METRICS)}, comma-separated (default: fvd)"
    )
    _add_protocol_arguments(p)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="evaluate vganzoo.create(MODEL) with random weights (a baseline)",
    )
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --random-weights: override a model config value (JSON value), repeatable",
    )
    p.add_argument("--out", help="write the JSON result here (default: print it)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def _add_protocol_arguments(p: argparse.ArgumentParser) -> None:
    """The options that define the numbers (all recorded in the result's protocol)."""
    p.add_argument(
        "--n", type=int, default=DEFAULT_N, help=f"generated clips (default {DEFAULT_N}, the FVD convention)"
    )
    p.add_argument("--n-real", type=int, default=None, help="real clips (default: --n)")
    p.add_argument(
        "--frames", type=int, default=DEFAULT_FRAMES, help=f"frames per clip (default {DEFAULT_FRAMES})"
    )
    p.add_argument("--stride", type=int, default=1, help="take every k-th frame (default 1)")
    p.add_argument(
        "--real-stride",
        type=int,
        default=None,
        help="real clips' own frame step before --stride (default: the model's training frame_stride)",
    )
    p.add_argument(
        "--resolution", type=int, default=None, help="real-data resolution (default: the generated clips')"
    )
    p.add_argument(
        "--extractor",
        help="fvd: I3D weights, is: C3D weights (PATH.safetensors or hf-hub:org/repo[/file][@rev])",
    )
    p.add_argument(
        "--digits-classifier", help="folder of digits-classifier weights (default: the bundled one)"
    )
    p.add_argument(
        "--real-stats", help="fvd: cache of the real statistics (.safetensors): read if present, else written"
    )
    p.add_argument(
        "--split", default=None, help="real-data split (default: test for built-in data, train for folders)"
    )
    p.add_argument("--splits", type=int, default=10, help="Inception Score splits (default 10)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="clips per generator call (default 32). Part of the protocol, like --seed: batch i is "
        "model.sample(batch, seed=SEED + i), so another batch size draws other clips (at N=1024 "
        "FVD-digits moved by ~4%% between 32 and 64)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the first generated batch and of the real clips (default 0)",
    )


def _summary(result: dict) -> str:
    lines = []
    real = result["real_scores"]
    for key, value in result["scores"].items():
        if isinstance(value, float):
            beside = f"   (real data: {real[key]:.4f})" if isinstance(real.get(key), float) else ""
            lines.append(f"{key:<22} {value:.4f}{beside}")
    proto = result["protocol"]
    lines.append(
        f"N generated {proto['n_generated']}, N real {proto['n_real']}, {proto['frames']} frames (stride "
        f"{proto['stride']}, real data every {proto['real_frame_step']}), {proto['resolution']} px, seed "
        f"{proto['seed']}"
    )
    return "\n".join(lines)


def _parse_config(pairs: list[str]) -> dict:
    config = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--config expects KEY=VALUE, got {pair!r}")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    return config


def run(args: argparse.Namespace) -> int:
    from ..files import atomic_write_json
    from ..hub import load_or_create
    from ..metrics.evaluation import evaluate

    if args.out:  # checked before the (long) evaluation, not after it
        parent = os.path.dirname(args.out) or "."
        if os.path.isdir(args.out):
            raise IsADirectoryError(
                f"--out: {args.out!r} is a folder; give a file name such as "
                f"{os.path.join(args.out, 'scores.json')!r}"
            )
        if os.path.exists(parent) and not os.path.isdir(parent):
            raise NotADirectoryError(f"--out: {parent!r} is a file, not a folder")
    model, _pretrained = load_or_create(
        args.model,
        random_weights=args.random_weights,
        overrides=_parse_config(args.config),
        require_weights=True,
    )
    result = evaluate(
        model,
        args.data,
        metric=args.metric,
        n=args.n,
        n_real=args.n_real,
        frames=args.frames,
        stride=args.stride,
        real_stride=args.real_stride,
        extractor=args.extractor,
        digits_classifier=args.digits_classifier,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        resolution=args.resolution,
        split=args.split,
        splits=args.splits,
        real_stats=args.real_stats,
        progress=not args.no_progress,
    )
    result["protocol"]["model"]["requested"] = args.model
    result["protocol"]["model"]["random_weights"] = bool(args.random_weights)
    if args.out:
        atomic_write_json(args.out, result)
        print(_summary(result))
        print(f"wrote {args.out}")
    else:
        json.dump(result, sys.stdout, indent=2)
        print()
    return 0
