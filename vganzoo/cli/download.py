"""``vganzoo download NAME``: fetch and verify a weight set into the cache, for offline use later."""

from __future__ import annotations

import argparse

from .options import nonempty, out_dir, url_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "download",
        help="fetch and verify a pretrained weight set into the cache",
        description="Fetch the files of a weight set (arch, arch.tag, hf-hub:org/repo[@rev]) into the "
        "Hugging Face "
        "cache and check their sha256, so that vganzoo.load works offline later.",
    )
    p.add_argument("name", type=nonempty, help="e.g. mocogan-rnn.digits or hf-hub:org/repo@revision")
    p.add_argument(
        "--components",
        nargs="+",
        type=nonempty,
        default=["all"],
        metavar="C",
        help="generator, generator_ema, discriminators, discriminator.<role> or all (default)",
    )
    p.add_argument("--revision", type=nonempty, help="branch, tag or commit (hf-hub: names only)")
    p.add_argument("--cache-dir", type=out_dir, help="Hugging Face cache folder (default: HF_HUB_CACHE)")
    p.add_argument("--endpoint", type=url_arg, help="Hub URL (default: VGANZOO_ENDPOINT, then HF_ENDPOINT)")
    p.add_argument("--token", help="Hub token for private repos (default: the stored login)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import hub

    components = "all" if args.components == ["all"] else args.components
    paths = hub.download(
        args.name,
        components=components,
        revision=args.revision,
        cache_dir=args.cache_dir,
        endpoint=args.endpoint,
        token=args.token,
    )
    print(f"{args.name}: {len(paths)} file(s) verified")
    for component, path in paths.items():
        print(f"  {component:<28} {path}")
    return 0
