"""``vganzoo download NAME`` and ``vganzoo push DIR REPO_ID``: thin layers over :mod:`vganzoo.hub`."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "download",
        help="fetch and verify a pretrained weight set into the cache",
        description="Fetch the files of a weight set (arch, arch.tag, hf-hub:org/repo[@rev]) into the "
        "Hugging Face "
        "cache and check their sha256, so that vganzoo.load works offline later.",
    )
    p.add_argument("name", help="e.g. mocogan-rnn.digits or hf-hub:org/repo@revision")
    p.add_argument(
        "--components",
        nargs="+",
        default=["all"],
        metavar="C",
        help="generator, generator_ema, discriminators, discriminator.<role> or all (default)",
    )
    p.add_argument("--revision", help="branch, tag or commit (hf-hub: names only)")
    p.add_argument("--cache-dir", help="Hugging Face cache folder (default: HF_HUB_CACHE)")
    p.add_argument("--endpoint", help="Hub URL (default: VGANZOO_ENDPOINT, then HF_ENDPOINT)")
    p.add_argument("--token", help="Hub token for private repos (default: the stored login)")
    p.set_defaults(func=run_download)

    p = sub.add_parser(
        "push",
        help="upload a save_pretrained folder to the Hugging Face Hub",
        description="Verify a folder written by vganzoo.save_pretrained against its weights.json and upload "
        "it "
        "in one commit; prints the commit to pin.",
    )
    p.add_argument("directory", help="folder written by vganzoo.save_pretrained")
    p.add_argument("repo_id", help="org/name on the Hub (created if needed)")
    p.add_argument("--revision", help="branch to commit to (created if needed; default main)")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument(
        "--create-pr", action="store_true", help="open a pull request instead of committing to main"
    )
    p.add_argument("--message", help="commit message")
    p.add_argument("--endpoint", help="Hub URL (default: VGANZOO_ENDPOINT, then HF_ENDPOINT)")
    p.add_argument("--token", help="Hub token (default: the stored login)")
    p.set_defaults(func=run_push)


def run_download(args: argparse.Namespace) -> int:
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


def run_push(args: argparse.Namespace) -> int:
    from .. import hub

    hub.push_to_hub(
        args.directory,
        args.repo_id,
        revision=args.revision,
        private=args.private,
        create_pr=args.create_pr,
        token=args.token,
        endpoint=args.endpoint,
        commit_message=args.message,
    )
    return 0
