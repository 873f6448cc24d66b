"""``vganzoo sample``: generate a grid video (GIF or MP4) from a model."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from .options import (
    device_arg,
    fixed_by_weights_hint,
    float_in,
    int_in,
    nonempty,
    out_file,
    random_weights_arg,
    resolve_device,
    seed_arg,
)

DEFAULT_N = 16
DEFAULT_ROW_N = 8  # videos per row when several models are sampled side by side
MAX_ROWS = 64  # models in one side-by-side file
DEFAULT_FPS = 8.0
MAX_N = 1_000_000  # a parse-time bound; what memory allows is checked once the model is known
MAX_SIZE = 4096  # --resolution / --frames: no model here comes near; memory is checked as well
WRITABLE = (".gif", ".mp4", ".webm", ".avi")  # vganzoo.videoio.WRITABLE_EXTENSIONS (no torch import)
MIN_FPS, MAX_FPS = 0.01, 1000.0  # vganzoo.videoio's bounds
# Bytes per video element (C*T*H*W) that holding and writing the grid needs at least: the float32
# videos (4), to_uint8's float temporaries (4), the uint8 copy, the grid and its frames (1 each).
WRITE_BYTES_PER_ELEMENT = 11
PADDING = 2  # the grid's padding (vganzoo.videoio.make_grid's default)
MAX_GRID_SIDE = {".gif": 65_535}  # a GIF's size is 16 bits per side
MAX_VIDEO_SIDE = 16_384  # what H.264 / VP9 / MPEG-4 encoders take


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="generate videos from a model into a GIF/MP4 grid",
        description="Generate videos from a model and write them as one grid video. NAME with pretrained "
        "weights (arch.tag, hf-hub:..., local-dir:... or a plain folder path, or an arch that has weight "
        "sets) is loaded, unless --random-weights; any other registered name is built with random "
        "weights (and says so).",
    )
    p.add_argument(
        "names",
        metavar="NAME",
        nargs="+",
        type=nonempty,
        help="model name (e.g. mocogan-rnn or mocogan-rnn.digits) or a save_pretrained folder; several "
        f"NAMEs: one labelled row of --n videos (default {DEFAULT_ROW_N}) per model, side by side",
    )
    p.add_argument(
        "--n",
        type=int_in(1, MAX_N),
        default=None,
        help=f"number of videos (default {DEFAULT_N}; with --interpolate: pairs to walk, default 1)",
    )
    p.add_argument(
        "--seed",
        type=seed_arg,
        default=0,
        help="random seed (default 0); --interpolate walks from SEED to SEED+1",
    )
    p.add_argument(
        "--label", type=int_in(0), default=None, help="class label for every video (conditional models)"
    )
    p.add_argument(
        "--interpolate",
        type=int_in(2, MAX_N),
        default=None,
        metavar="STEPS",
        help="walk the content latents between two seeds with the motion fixed, and the reverse, in STEPS "
        "steps; with --n N, N pairs: pair i walks from video i of SEED's batch to video i of SEED+1's "
        "(the seeds are the same for every pair, the videos are not)",
    )
    p.add_argument(
        "--device",
        type=device_arg,
        default="auto",
        help="cpu, cuda, cuda:1, ... (default: cuda when available)",
    )
    p.add_argument(
        "--fps",
        type=float_in(MIN_FPS, MAX_FPS),
        default=None,
        help=f"frames per second of the file (default: the model's frame rate, else {DEFAULT_FPS:g}); models "
        "that render at any frame rate (stylegan-v) also sample at it",
    )
    p.add_argument(
        "--out",
        type=out_file(WRITABLE),
        default="samples.gif",
        help="output .gif, .mp4, .webm or .avi in an existing folder (default samples.gif)",
    )
    p.add_argument(
        "--nrow",
        type=int_in(1, MAX_N),
        default=None,
        help="videos per grid row (default: square grid, or STEPS)",
    )
    random_weights_arg(p, "sample")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even when an EMA copy exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="replay the generator from a CUDA graph recorded at the first batch (CUDA only; the same "
        "videos, fewer kernel launches; not used for stylegan-v clips at a chosen --frames / --fps)",
    )
    p.add_argument(
        "--resolution",
        type=int_in(1, MAX_SIZE),
        default=None,
        help="config override for random weights (see --random-weights)",
    )
    p.add_argument(
        "--frames",
        type=int_in(1, MAX_SIZE),
        default=None,
        help="clip length: models that draw clips of any length (stylegan-v, mocogan) sample this many "
        "frames with any weights; for the others a config override for random weights",
    )
    p.set_defaults(func=run)


def _check_label(model: Any, label: int | None, name: str) -> None:
    if label is None:
        return
    classes = int(getattr(model, "num_classes", 0) or 0)
    if classes == 0:
        raise ValueError(f"--label: {name} is unconditional (it has no classes); leave --label out")
    if label >= classes:
        raise ValueError(
            f"--label: {name} has {classes} classes, so --label is 0 to {classes - 1}; got {label}"
        )


def _walks(model: Any, use_ema: bool) -> int:
    """Rows a latent walk makes per pair: content and motion walks, or one walk over all latents."""
    generator = model.generator_ema if use_ema and model.generator_ema is not None else model.generator
    named = getattr(generator, "content_latents", None) and getattr(generator, "motion_latents", None)
    return 2 if named else 1


def _check_size(
    model: Any, count: int, nrow: int, ext: str, options: str, lower: str, frames: int | None = None
) -> None:
    """Refuse before sampling when ``count`` videos cannot be held and written (memory), or their
    grid is larger than the format allows; ``options`` are the values given, ``lower`` what to change."""
    from ..resources import check_memory

    generator = model.generator
    sizes = [getattr(generator, key, None) for key in ("channels", "frames", "resolution")]
    if not all(isinstance(v, int) and v > 0 for v in sizes):
        return  # a plugin generator that does not say: nothing to estimate from
    channels, model_frames, resolution = sizes
    frames = frames or model_frames  # a model that renders any length: the length asked for
    elements = count * channels * frames * resolution * resolution
    check_memory(
        elements * WRITE_BYTES_PER_ELEMENT,
        f"{options}: writing {count} videos of (C, T, H, W) = {(channels, frames, resolution, resolution)}",
        advice=f"lower {lower}",
    )
    columns = min(nrow, count)
    width = columns * (resolution + PADDING) + PADDING
    height = math.ceil(count / columns) * (resolution + PADDING) + PADDING
    limit = MAX_GRID_SIDE.get(ext, MAX_VIDEO_SIDE)
    if max(width, height) > limit:
        raise ValueError(
            f"{options}: the grid would be {width} x {height} pixels, beyond the {limit} a {ext} file "
            f"takes; lower {lower} or set --nrow"
        )


def _progress(total: int, enabled: bool) -> Any:
    """A progress bar over ``total`` videos, shown once the work has taken a second (stderr)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="video", delay=1.0, disable=not enabled, dynamic_ncols=True, leave=False)


def _sample_parameters(model: Any) -> Any:
    import inspect

    return inspect.signature(model.sample).parameters


def _clip_options(model: Any, frames: int | None, fps: float | None) -> dict[str, Any]:
    """``frames`` / ``fps`` for a model whose ``sample()`` takes them (clips of any length and rate)."""
    options = {"frames": frames, "fps": fps}
    return {k: v for k, v in options.items() if k in _sample_parameters(model) and v is not None}


def _draws_any_length(model: Any) -> bool:
    """Whether the generator draws latents for clips of any length (``sample_latents(frames=)``)."""
    import inspect

    return "frames" in inspect.signature(model.generator.sample_latents).parameters


def _load(name: str, resolution: int | None, frames: int | None, random_weights: bool) -> tuple[Any, bool]:
    """The model and whether its weights are pretrained. ``frames`` is sampled by models that render
    or draw any length; for the others it is a config override, for random weights only."""
    from .. import registry
    from ..errors import InvalidConfigError
    from ..hub import load_or_create
    from ..hub.loading import FIXED_BY_WEIGHTS

    model, pretrained = load_or_create(
        name, random_weights=random_weights, overrides={"resolution": resolution}
    )
    if frames is None or "frames" in _sample_parameters(model) or _draws_any_length(model):
        return model, pretrained
    if pretrained:
        raise InvalidConfigError(
            f"frames: {name} {FIXED_BY_WEIGHTS}; --frames applies to random weights only"
        )
    config = dict(model.config)
    return registry.create(config.pop("model"), **{**config, "frames": frames}), False


def _load_named(args: argparse.Namespace, name: str) -> tuple[Any, bool]:
    """:func:`_load` for ``name`` with the command's options; errors name the options, not keywords."""
    from ..errors import InvalidConfigError, ResourceLimitError

    overrides = {"resolution": args.resolution, "frames": args.frames}
    try:
        model, pretrained = _load(name, args.resolution, args.frames, args.random_weights)
    except (InvalidConfigError, ResourceLimitError) as exc:  # say which options, not which keywords
        given = [
            f"--{key} {value}" for key, value in overrides.items() if value is not None and key in str(exc)
        ]
        if not given:
            raise
        raise type(exc)(fixed_by_weights_hint(f"{' '.join(given)}: {exc}")) from None
    _check_label(model, args.label, name)
    return model, pretrained


def _clip_settings(model: Any, args: argparse.Namespace) -> tuple[dict[str, Any], int | None]:
    """``sample()`` options of a model that renders any length / frame rate, and the length a
    generator that draws latents for any length (MoCoGAN's motion RNN) samples directly."""
    clip_options = _clip_options(model, args.frames, args.fps)
    drawn_frames = args.frames if "frames" not in clip_options and _draws_any_length(model) else None
    return clip_options, drawn_frames


def _draw(model: Any, args: argparse.Namespace, n: int, device: Any, bar: Any) -> tuple[Any, dict[str, Any]]:
    """``n`` videos of ``model`` with the command's seed, label, EMA and clip options (on the CPU)."""
    from ..sampling import sample_videos

    clip_options, drawn_frames = _clip_settings(model, args)
    if clip_options:  # a model that renders any length / frame rate samples through its own sample()
        if args.cuda_graphs:
            print(
                "note: --cuda-graphs is not used for clips rendered at a chosen --frames / --fps",
                file=sys.stderr,
            )
        videos, latents = model.sample(
            n,
            seed=args.seed,
            labels=args.label,
            device=device,
            use_ema=not args.no_ema,
            return_latents=True,
            **clip_options,
        )
        bar.update(n)
        return videos.cpu(), latents
    return sample_videos(
        model,
        n,
        seed=args.seed,
        labels=args.label,
        device=device,
        use_ema=not args.no_ema,
        on_progress=bar.update,
        frames=drawn_frames,
        cuda_graphs=args.cuda_graphs,
    )


def _shown_name(model: Any, pretrained: bool) -> str:
    """The name a user knows the model by (``mocogan-rnn.digits``), and whether its weights are random."""
    shown = (getattr(model, "pretrained", None) or {}).get("name") or model.name
    return shown if pretrained else f"{shown} (random weights)"


def run(args: argparse.Namespace) -> int:
    from ..nn.graphs import require_cuda

    device = resolve_device(args.device)
    if args.cuda_graphs:
        require_cuda(device, "--cuda-graphs")
    ext = "." + args.out.rpartition(".")[2].lower()
    if len(args.names) > 1:
        return _run_rows(args, device, ext)
    return _run_one(args, args.names[0], device, ext)


def _run_rows(args: argparse.Namespace, device: Any, ext: str) -> int:
    """Several models side by side: one labelled row of ``--n`` videos each, same seed and options."""
    from .. import videoio as vio

    names = args.names
    if len(names) > MAX_ROWS:
        raise ValueError(f"NAME: at most {MAX_ROWS} models side by side, got {len(names)}")
    for flag, value in (("--interpolate", args.interpolate), ("--nrow", args.nrow)):
        if value is not None:
            raise ValueError(
                f"{flag}: with several models each row holds one model's --n videos; give one NAME"
            )
    n = args.n if args.n is not None else DEFAULT_ROW_N
    rows, rates = [], set()
    with _progress(n * len(names), not args.no_progress) as bar:
        for name in names:
            model, pretrained = _load_named(args, name)
            clip_options, drawn_frames = _clip_settings(model, args)
            _check_size(model, n, n, ext, f"--n {n}", "--n", clip_options.get("frames") or drawn_frames)
            model = model.to(device).eval()
            videos, _latents = _draw(model, args, n, device, bar)
            rows.append((_shown_name(model, pretrained), videos))
            rates.add(float(getattr(model.generator, "fps", DEFAULT_FPS)))
            del model
    grid = vio.labelled_rows(rows)
    limit = MAX_GRID_SIDE.get(ext, MAX_VIDEO_SIDE)
    if max(grid.shape[-2:]) > limit:
        raise ValueError(
            f"--n {n}: the rows would be {grid.shape[-1]} x {grid.shape[-2]} pixels, beyond the {limit} a "
            f"{ext} file takes; lower --n or give fewer NAMEs"
        )
    fps = args.fps if args.fps is not None else (rates.pop() if len(rates) == 1 else DEFAULT_FPS)
    path = vio.save_video(grid, args.out, fps=fps)
    print(f"wrote {path}: {len(names)} models side by side, {n} samples each with seed {args.seed}")
    for label, videos in rows:
        print(f"  {label}: videos {tuple(videos.shape)} (N, C, T, H, W)")
    print(f"  rows cut to {grid.shape[1]} frames, {grid.shape[0]} channels, device {device}")
    return 0


def _run_one(args: argparse.Namespace, name: str, device: Any, ext: str) -> int:
    from .. import videoio as vio
    from ..sampling import latent_walk

    n = args.n if args.n is not None else (1 if args.interpolate is not None else DEFAULT_N)
    model, pretrained = _load_named(args, name)
    use_ema = not args.no_ema
    clip_options, drawn_frames = _clip_settings(model, args)
    if args.interpolate is not None and drawn_frames not in (None, model.generator.frames):
        raise ValueError(
            f"--frames {args.frames}: --interpolate walks clips of the model's own length "
            f"({model.generator.frames} frames); leave --frames out"
        )
    if args.interpolate is not None:
        count = n * _walks(model, use_ema) * args.interpolate
        nrow = args.nrow or args.interpolate
        _check_size(
            model,
            count,
            nrow,
            ext,
            f"--n {n} --interpolate {args.interpolate}",
            "--interpolate or --n",
            clip_options.get("frames"),
        )
    else:
        count, nrow = n, args.nrow or math.ceil(math.sqrt(n))
        _check_size(model, count, nrow, ext, f"--n {n}", "--n", clip_options.get("frames") or drawn_frames)
    model = model.to(device).eval()
    with _progress(count, not args.no_progress) as bar:
        if args.interpolate is not None:
            videos, rows = latent_walk(
                model,
                args.interpolate,
                seed=args.seed,
                n=n,
                labels=args.label,
                device=device,
                use_ema=use_ema,
                on_progress=bar.update,
                clip_options=clip_options,  # StyleGAN-V: --frames / --fps apply to the walk too
                cuda_graphs=args.cuda_graphs,
            )
            ends = (
                f"from seed {args.seed} to {args.seed + 1}"
                if n == 1
                else f"of {n} pairs, pair i from video i of seed {args.seed}'s batch to video i of seed "
                f"{args.seed + 1}'s"
            )
            what = f"latent walk in {args.interpolate} steps {ends}; rows: " + "; ".join(rows)
            labels: Any = [args.label] * n if args.label is not None else None
            if labels is None and model.num_classes:
                labels = "drawn per pair (see rows)"
        else:
            videos, latents = _draw(model, args, n, device, bar)
            drawn = latents.get("labels")
            labels = drawn.tolist() if drawn is not None else None
            what = f"{n} samples with seed {args.seed}"
    fps = args.fps if args.fps is not None else float(getattr(model.generator, "fps", DEFAULT_FPS))
    path = vio.save_video(videos, args.out, fps=fps, nrow=nrow)
    shown = _shown_name(model, True)  # e.g. mocogan-rnn.digits
    weights = "pretrained weights" if pretrained else "random weights"
    print(f"wrote {path}: {shown} ({weights}) {what}")
    print(
        f"  videos {tuple(videos.shape)} (N, C, T, H, W), labels {labels if labels is not None else 'none'}, "
        f"device {device}"
    )
    return 0
