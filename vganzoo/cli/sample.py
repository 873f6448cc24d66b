"""``vganzoo sample``: generate a grid video (GIF or MP4) from a model."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_N = 16


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="generate videos from a model into a GIF/MP4 grid",
        description="Generate videos from a model and write them as one grid video. NAME with pretrained "
        "weights (arch.tag, hf-hub:..., local-dir:... or a plain folder path, or an arch that has weight "
        "sets) is loaded; any "
        "other registered name is built with random weights (and says so).",
    )
    p.add_argument(
        "name",
        metavar="NAME",
        help="model name (e.g. mocogan-rnn or mocogan-rnn.digits) or a save_pretrained folder",
    )
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help=f"number of videos (default {DEFAULT_N}; with --interpolate: pairs, default 1)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="random seed (default 0); --interpolate walks from SEED to SEED+1"
    )
    p.add_argument("--label", type=int, default=None, help="class label for every video (conditional models)")
    p.add_argument(
        "--interpolate",
        type=int,
        default=None,
        metavar="STEPS",
        help="walk the content latents between two seeds with the motion fixed, and the reverse, in STEPS "
        "steps",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument(
        "--out", default="samples.gif", help="output .gif, .mp4, .webm or .avi (default samples.gif)"
    )
    p.add_argument("--fps", type=float, default=8, help="frames per second (default 8)")
    p.add_argument(
        "--nrow", type=int, default=None, help="videos per grid row (default: square grid, or STEPS)"
    )
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even when an EMA copy exists")
    p.add_argument("--resolution", type=int, default=None, help="config override for random-weight models")
    p.add_argument("--frames", type=int, default=None, help="config override for random-weight models")
    p.set_defaults(func=run)


def _device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: not a device: {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device: CUDA was requested but no CUDA GPU is available")
    return device


def run(args: argparse.Namespace) -> int:
    from .. import videoio as vio
    from ..hub import load_or_create
    from ..sampling import latent_walk

    n = args.n if args.n is not None else (1 if args.interpolate is not None else DEFAULT_N)
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    if args.interpolate is not None and args.interpolate < 2:
        raise ValueError(f"--interpolate needs at least 2 steps, got {args.interpolate}")
    if not args.out.lower().endswith(vio.WRITABLE_EXTENSIONS):
        raise ValueError(f"--out must end in one of {', '.join(vio.WRITABLE_EXTENSIONS)}, got {args.out!r}")
    device = _device(args.device)
    model, pretrained = load_or_create(
        args.name, overrides={"resolution": args.resolution, "frames": args.frames}
    )
    model = model.to(device).eval()
    use_ema = not args.no_ema
    if args.interpolate is not None:
        videos, rows = latent_walk(
            model, args.interpolate, seed=args.seed, n=n, labels=args.label, device=device, use_ema=use_ema
        )
        nrow = args.nrow or args.interpolate
        what = (
            f"latent walk in {args.interpolate} steps from seed {args.seed} to {args.seed + 1}; rows: "
            + "; ".join(rows)
        )
        if args.label is not None:
            labels = [args.label] * n
        else:
            labels = "drawn per pair (see rows)" if model.num_classes else None
    else:
        videos, latents = model.sample(
            n, seed=args.seed, labels=args.label, device=device, use_ema=use_ema, return_latents=True
        )
        videos = videos.cpu()
        nrow = args.nrow
        drawn = latents.get("labels")
        labels = drawn.tolist() if drawn is not None else None
        what = f"{n} samples with seed {args.seed}"
    path = vio.save_video(videos, args.out, fps=args.fps, nrow=nrow)
    weights = "pretrained weights" if pretrained else "random weights"
    shown = (getattr(model, "pretrained", None) or {}).get("name") or model.name  # e.g. mocogan-rnn.digits
    print(f"wrote {path}: {shown} ({weights}) {what}")
    print(
        f"  videos {tuple(videos.shape)} (N, C, T, H, W), labels {labels if labels is not None else 'none'}, "
        f"device {device}"
    )
    return 0
