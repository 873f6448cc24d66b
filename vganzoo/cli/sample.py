"""``vganzoo sample``: generate a grid video (GIF or MP4) from a model."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_N = 16
DEFAULT_FPS = 8.0


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
    p.add_argument(
        "--fps",
        type=float,
        default=None,
        help=f"frames per second of the file (default: the model's frame rate, else {DEFAULT_FPS:g}); models "
        "that render at any frame rate (stylegan-v) also sample at it",
    )
    p.add_argument(
        "--nrow", type=int, default=None, help="videos per grid row (default: square grid, or STEPS)"
    )
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even when an EMA copy exists")
    p.add_argument("--resolution", type=int, default=None, help="config override for random-weight models")
    p.add_argument(
        "--frames",
        type=int,
        default=None,
        help="clip length: config override for random-weight models; models that render clips of any "
        "length (stylegan-v) sample this many frames",
    )
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


def _sample_parameters(model: Any) -> Any:
    import inspect

    return inspect.signature(model.sample).parameters


def _clip_options(model: Any, frames: int | None, fps: float | None) -> dict[str, Any]:
    """``frames`` / ``fps`` for a model whose ``sample()`` takes them (clips of any length and rate)."""
    options = {"frames": frames, "fps": fps}
    return {k: v for k, v in options.items() if k in _sample_parameters(model) and v is not None}


def _load(name: str, resolution: int | None, frames: int | None) -> tuple[Any, bool]:
    """The model and whether its weights are pretrained. ``frames`` is sampled by models that render
    any length; for the others it is a config override, for random weights only."""
    from .. import registry
    from ..errors import InvalidConfigError
    from ..hub import load_or_create

    model, pretrained = load_or_create(name, overrides={"resolution": resolution})
    if frames is None or "frames" in _sample_parameters(model):
        return model, pretrained
    if pretrained:
        raise InvalidConfigError(
            f"frames: {name} has pretrained weights, which fix the architecture; --frames applies to random "
            "weights only"
        )
    config = dict(model.config)
    return registry.create(config.pop("model"), **{**config, "frames": frames}), False


def run(args: argparse.Namespace) -> int:
    from .. import videoio as vio
    from ..sampling import latent_walk

    n = args.n if args.n is not None else (1 if args.interpolate is not None else DEFAULT_N)
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    if args.interpolate is not None and args.interpolate < 2:
        raise ValueError(f"--interpolate needs at least 2 steps, got {args.interpolate}")
    if not args.out.lower().endswith(vio.WRITABLE_EXTENSIONS):
        raise ValueError(f"--out must end in one of {', '.join(vio.WRITABLE_EXTENSIONS)}, got {args.out!r}")
    device = _device(args.device)
    model, pretrained = _load(args.name, args.resolution, args.frames)
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
            n,
            seed=args.seed,
            labels=args.label,
            device=device,
            use_ema=use_ema,
            return_latents=True,
            **_clip_options(model, args.frames, args.fps),
        )
        videos = videos.cpu()
        nrow = args.nrow
        drawn = latents.get("labels")
        labels = drawn.tolist() if drawn is not None else None
        what = f"{n} samples with seed {args.seed}"
    fps = args.fps if args.fps is not None else float(getattr(model.generator, "fps", DEFAULT_FPS))
    path = vio.save_video(videos, args.out, fps=fps, nrow=nrow)
    weights = "pretrained weights" if pretrained else "random weights"
    shown = (getattr(model, "pretrained", None) or {}).get("name") or model.name  # e.g. mocogan-rnn.digits
    print(f"wrote {path}: {shown} ({weights}) {what}")
    print(
        f"  videos {tuple(videos.shape)} (N, C, T, H, W), labels {labels if labels is not None else 'none'}, "
        f"device {device}"
    )
    return 0
