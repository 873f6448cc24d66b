"""``vganzoo serve``: the demo page (Gradio) over the registered weight sets and the folders named."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .options import device_arg, int_in, nonempty


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="a demo page in the browser: pick a weight set, sample, interpolate (needs vganzoo[demo])",
        description="Serve a demo page (Gradio) that lists every registered weight set matching --models "
        "(bundled, plugins', Hub-hosted) and the weight-set FOLDERs named, and samples clips, walks "
        "between two seeds and shows the model card and scores. Works offline; Ctrl-C stops it. "
        "Needs the demo extra: pip install 'vganzoo[demo]'.",
    )
    p.add_argument(
        "folders",
        nargs="*",
        metavar="FOLDER",
        help="weight-set folders (written by vganzoo.save_pretrained or vganzoo export) to offer too",
    )
    p.add_argument(
        "--host", type=nonempty, default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    p.add_argument("--port", type=int_in(1, 65535), default=7860, help="port, 1 to 65535 (default 7860)")
    p.add_argument(
        "--models",
        type=nonempty,
        default="*",
        metavar="PATTERN",
        help="shell-style filter on the arch.tag names listed (default '*'; folders are always listed)",
    )
    p.add_argument(
        "--share",
        choices=("no", "yes"),
        default="no",
        help="'yes' asks Gradio for a public gradio.live link (needs the network; default no)",
    )
    p.add_argument(
        "--device",
        type=device_arg,
        default="auto",
        help="cpu, cuda, cuda:1, ... (default: cuda when available)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._version import __version__
    from ..demo import serve

    def ready(url: str, catalog: Any) -> None:
        names = ", ".join(entry.label for entry in catalog.entries.values())
        print(f"vganzoo {__version__} demo: serving {url} ({names}); Ctrl-C stops it", flush=True)

    serve(
        args.models,
        args.folders,
        host=args.host,
        port=args.port,
        share=args.share == "yes",
        device=args.device,
        ready=ready,
    )
    print("vganzoo serve: stopped", file=sys.stderr)
    return 0
