"""``vganzoo data preview``: look at a dataset's clips as a grid video."""

from __future__ import annotations

import argparse

from .options import float_in, int_in, nonempty, out_file, seed_arg
from .sample import MAX_FPS, MAX_SIZE, MIN_FPS, WRITABLE

MAX_CLIPS = 100_000


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="inspect datasets",
        description="Inspect datasets (built-in synthetic ones or folders of videos).",
    )
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True
    q = data_sub.add_parser(
        "preview",
        help="write a grid of a dataset's clips",
        description="Write the first N clips of a dataset as one grid GIF/MP4.",
    )
    q.add_argument(
        "name", metavar="NAME", type=nonempty, help="moving-digits, moving-shapes or a folder of videos"
    )
    q.add_argument(
        "--out",
        type=out_file(WRITABLE),
        default="preview.gif",
        help="output .gif, .mp4, .webm or .avi in an existing folder (default preview.gif)",
    )
    q.add_argument("--n", type=int_in(1, MAX_CLIPS), default=8, help="number of clips (default 8)")
    q.add_argument("--resolution", type=int_in(1, MAX_SIZE), default=64, help="frame size (default 64)")
    q.add_argument("--frames", type=int_in(1, MAX_SIZE), default=16, help="frames per clip (default 16)")
    q.add_argument(
        "--frame-stride", type=int_in(1, MAX_SIZE), default=1, help="take every k-th frame (default 1)"
    )
    q.add_argument(
        "--channels", type=int, default=None, choices=(1, 3), help="1 or 3 (default: the dataset's)"
    )
    q.add_argument(
        "--split",
        default="train",
        choices=("train", "val", "test"),
        help="train, val or test (default train)",
    )
    q.add_argument("--seed", type=seed_arg, default=0, help="dataset seed (default 0)")
    q.add_argument("--fps", type=float_in(MIN_FPS, MAX_FPS), default=8, help="frames per second (default 8)")
    q.add_argument(
        "--nrow", type=int_in(1, MAX_CLIPS), default=None, help="clips per grid row (default: square grid)"
    )
    q.set_defaults(func=run_preview)


def run_preview(args: argparse.Namespace) -> int:
    import torch

    from .. import videoio as vio
    from ..data import build_dataset
    from ..resources import check_memory
    from .sample import WRITE_BYTES_PER_ELEMENT

    channels = args.channels or 3
    elements = args.n * channels * args.frames * args.resolution**2
    check_memory(
        elements * WRITE_BYTES_PER_ELEMENT,
        f"--n {args.n} --resolution {args.resolution} --frames {args.frames}: writing {args.n} clips",
        advice="lower --n, --resolution or --frames",
    )
    dataset = build_dataset(
        args.name,
        resolution=args.resolution,
        frames=args.frames,
        frame_stride=args.frame_stride,
        channels=args.channels,
        split=args.split,
        seed=args.seed,
    )
    count = min(args.n, len(dataset))
    items = [dataset[i] for i in range(count)]
    videos = torch.stack([item["video"] for item in items])
    labels = [int(item["label"]) for item in items]
    path = vio.save_video(videos, args.out, fps=args.fps, nrow=args.nrow)
    print(
        f"wrote {path}: {count} clips of {args.name} ({type(dataset).__name__}, {len(dataset)} items, "
        f"{dataset.num_classes} classes), videos {tuple(videos.shape)} (N, C, T, H, W), labels {labels}"
    )
    skipped = getattr(dataset, "skipped", 0)
    if skipped:
        print(f"  skipped {skipped} unreadable or too-short files")
    return 0
