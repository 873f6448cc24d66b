"""``vganzoo eval``: score a model with FVD, video IS or the offline digits check; a thin layer over
:func:`vganzoo.metrics.evaluate`, and, with ``--protocol``, over :func:`vganzoo.metrics.evaluate_protocol`
(the literature's pinned FVD / IS definitions)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..files import json_or_text
from .options import device_arg, int_in, random_weights_arg, resolve_device

# Kept literal so that building the parser does not import torch; tests check they match
# vganzoo.metrics.evaluation.METRICS / DEFAULT_N / DEFAULT_FRAMES and vganzoo.metrics.protocols.PROTOCOLS.
MAX_EVAL_N = 1_000_000  # clips per side, far above the literature's counts (2,048-50,000)
METRICS = ("fvd", "is", "fvd-digits", "consistency", "label-accuracy")
DEFAULT_N = 2048
DEFAULT_FRAMES = 16
PROTOCOLS = (
    "stylegan-v-fvd16",
    "stylegan-v-fvd128",
    "stylegan-v-fvd128-subsample8f",
    "videogpt-fvd",
    "tats-fvd",
    "stylegan-v-is",
    "tgan2-is",
)
# vganzoo's own definitions' options (default None here, so that --protocol can tell they were given)
OWN_DEFAULTS = {
    "metric": "fvd",
    "n": DEFAULT_N,
    "frames": DEFAULT_FRAMES,
    "stride": 1,
    "splits": 10,
    "batch_size": 32,
}
OWN_ONLY = (
    "metric",
    "frames",
    "stride",
    "real_stride",
    "resolution",
    "extractor",
    "digits_classifier",
    "real_stats",
    "splits",
)
PROTOCOL_ONLY = ("detector", "num_runs", "real_cache", "workers")
PROTOCOL_BATCH = 16


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model (fvd, is, fvd-digits, consistency, label-accuracy)",
        description=(
            "Score MODEL_OR_DIR (a pretrained name like mocogan-rnn.digits, a save_pretrained folder, or a "
            "model name with --random-weights) against real clips. The JSON output holds the scores, the "
            "real data's own scores and the full protocol. --protocol NAME scores under a literature "
            f"protocol ({', '.join(PROTOCOLS)}) with its detector file (--detector), see docs/metrics.md."
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
        "--metric",
        default=None,
        help=f"one or more of {', '.join(METRICS)}, comma-separated (default: fvd; fvd-digits for "
        "--data moving-digits without --extractor)",
    )
    _add_protocol_arguments(p)
    _add_named_protocol_arguments(p)
    p.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    random_weights_arg(p, "evaluate")
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
        "--n",
        type=int_in(1, MAX_EVAL_N),
        default=None,
        help=f"generated clips (default {DEFAULT_N}, the FVD convention; with --protocol: its count)",
    )
    p.add_argument(
        "--n-real",
        type=int_in(1, MAX_EVAL_N),
        default=None,
        help="real clips (default: --n; with --protocol: its count)",
    )
    p.add_argument("--frames", type=int, default=None, help=f"frames per clip (default {DEFAULT_FRAMES})")
    p.add_argument("--stride", type=int, default=None, help="take every k-th frame (default 1)")
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
        "--split",
        default=None,
        help="real-data split (default: test for built-in data, train for folders; with --protocol: the "
        "split its original code reads). 'train+test' merges two; '.' is the folder itself",
    )
    p.add_argument("--splits", type=int, default=None, help="Inception Score splits (default 10)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="clips per generator call (default 32, with --protocol 16). Part of the protocol, like --seed: "
        "batch i is "
        "model.sample(batch, seed=SEED + i), so another batch size draws other clips (at N=1024 "
        "FVD-digits moved by ~4%% between 32 and 64)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the first generated batch and of the real clips (default 0)",
    )


def _add_named_protocol_arguments(p: argparse.ArgumentParser) -> None:
    """The literature's pinned protocols (vganzoo.metrics.protocols)."""
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="score under a pinned literature protocol (detector, preprocessing, clip sampling, counts and "
        "arithmetic fixed; see docs/metrics.md) instead of --metric",
    )
    p.add_argument(
        "--detector",
        help="with --protocol: its detector file, PATH or hf-hub:org/repo/file@commit (StyleGAN-V's "
        "i3d_torchscript.pt / c3d_ucf101.pt as they are; pytorch-i3d and tgan2's C3D after "
        "`vganzoo convert`)",
    )
    p.add_argument(
        "--num-runs", type=int, default=None, help="with --protocol: independent draws (mean, std)"
    )
    p.add_argument(
        "--real-cache",
        default=None,
        help="with --protocol: real-feature cache, a .safetensors file (reused only when it matches the data "
        "files, split, detector and protocol) or 'off' (default: automatic, under $VGANZOO_CACHE)",
    )
    p.add_argument("--workers", type=int, default=None, help="with --protocol: threads reading real frames")


def _refuse_out_over_inputs(args: argparse.Namespace) -> None:
    """--out must not replace a file the evaluation reads: the model folder's files, the detector, the
    real statistics or data, the classifier."""
    out = os.path.realpath(args.out)
    for flag in ("model", "data", "extractor", "real_stats", "detector", "digits_classifier", "real_cache"):
        value = getattr(args, flag, None)
        if not isinstance(value, str) or not value:
            continue
        path = os.path.realpath(value)
        if out == path or (os.path.isdir(path) and out.startswith(path.rstrip(os.sep) + os.sep)):
            shown = "MODEL_OR_DIR" if flag == "model" else "--" + flag.replace("_", "-")
            raise ValueError(f"--out: {args.out!r} is (inside) {shown} {value!r}, which the evaluation reads")


def _check_option_families(args: argparse.Namespace) -> None:
    """--protocol fixes vganzoo's own options; the protocol options need --protocol."""
    flag = lambda name: "--" + name.replace("_", "-")
    if args.protocol:
        given = [flag(k) for k in OWN_ONLY if getattr(args, k) is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: fixed by --protocol {args.protocol}; leave them out")
    else:
        given = [flag(k) for k in PROTOCOL_ONLY if getattr(args, k) is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: only with --protocol NAME")


def _protocol_summary(result: dict) -> str:
    proto, scores = result["protocol"], result["scores"]
    runs = scores["num_runs"]
    if "fvd" in scores:
        head = f"{proto['name']}  fvd {scores['fvd']:.4f} ± {scores['fvd_std']:.4f} (std over {runs} run(s))"
        values = [r["fvd"] for r in result["runs"]]
    else:
        spread = f"± {scores['is_std']:.4f} (std over {scores['is_std_over']})"
        head = f"{proto['name']}  is {scores['is_mean']:.4f} {spread}"
        values = [r["is_mean"] for r in result["runs"]]
    lines = [head]
    if runs > 1:
        lines.append("runs: " + ", ".join(f"{v:.4f}" for v in values))
    counts = proto["counts"]
    published = "the published counts" if counts["published"] else "NOT the published counts"
    lines.append(
        f"N generated {counts['n_generated']}, N real {counts['n_real']}, {counts['num_runs']} run(s): "
        f"{published}; detector sha256 {proto['detector']['sha256']}"
    )
    return "\n".join(lines)


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
        config[key] = json_or_text(value, f"--config {key}")
    return config


def run(args: argparse.Namespace) -> int:
    from ..files import atomic_write_json
    from ..hub import load_or_create

    if args.out:  # checked before the (long) evaluation, not after it
        parent = os.path.dirname(args.out) or "."
        if os.path.isdir(args.out):
            raise IsADirectoryError(
                f"--out: {args.out!r} is a folder; give a file name such as "
                f"{os.path.join(args.out, 'scores.json')!r}"
            )
        if os.path.exists(parent) and not os.path.isdir(parent):
            raise NotADirectoryError(f"--out: {parent!r} is a file, not a folder")
        _refuse_out_over_inputs(args)
    _check_option_families(args)
    model, _pretrained = load_or_create(
        args.model,
        random_weights=args.random_weights,
        overrides=_parse_config(args.config),
        require_weights=True,
    )
    result = _run_protocol(args, model) if args.protocol else _run_own(args, model)
    described = result["protocol"]["generated"]["model"] if args.protocol else result["protocol"]["model"]
    described["requested"] = args.model
    described["random_weights"] = bool(args.random_weights)
    summary = _protocol_summary(result) if args.protocol else _summary(result)
    if args.out:
        atomic_write_json(args.out, result)
        print(summary)
        print(f"wrote {args.out}")
    else:
        json.dump(result, sys.stdout, indent=2)
        print()
    return 0


def _run_protocol(args: argparse.Namespace, model) -> dict:
    from ..metrics.protocol_eval import DEFAULT_SPLIT, evaluate_protocol

    split = DEFAULT_SPLIT if args.split is None else ("" if args.split == "." else args.split)
    return evaluate_protocol(
        model,
        args.data,
        args.protocol,
        detector=args.detector,
        num_runs=args.num_runs,
        seed=args.seed,
        batch_size=args.batch_size or PROTOCOL_BATCH,
        device=str(resolve_device(args.device)),
        split=split,
        n_generated=args.n,
        n_real=args.n_real,
        real_cache=args.real_cache,
        workers=args.workers,
        progress=not args.no_progress,
    )


def _run_own(args: argparse.Namespace, model) -> dict:
    from ..metrics.evaluation import evaluate

    own = {k: OWN_DEFAULTS[k] if getattr(args, k) is None else getattr(args, k) for k in OWN_DEFAULTS}
    if args.metric is None and args.data == "moving-digits" and not args.extractor:
        own["metric"] = "fvd-digits"  # offline, with the bundled classifier (fvd needs an I3D file)
    return evaluate(
        model,
        args.data,
        metric=own["metric"],
        n=own["n"],
        n_real=args.n_real,
        frames=own["frames"],
        stride=own["stride"],
        real_stride=args.real_stride,
        extractor=args.extractor,
        digits_classifier=args.digits_classifier,
        batch_size=own["batch_size"],
        seed=args.seed,
        device=str(resolve_device(args.device)),
        resolution=args.resolution,
        split=args.split,
        splits=own["splits"],
        real_stats=args.real_stats,
        progress=not args.no_progress,
    )
