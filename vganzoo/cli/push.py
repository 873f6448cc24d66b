"""``vganzoo push DIR REPO_ID``: upload a save_pretrained folder to the Hub (prints the commit to pin)."""

from __future__ import annotations

import argparse

from .options import existing_path, nonempty, repo_id_arg, url_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "push",
        help="upload a save_pretrained folder to the Hugging Face Hub",
        description="Verify a folder written by vganzoo.save_pretrained against its weights.json and upload "
        "it "
        "in one commit; prints the commit to pin.",
    )
    p.add_argument("directory", type=existing_path, help="folder written by vganzoo.save_pretrained")
    p.add_argument("repo_id", type=repo_id_arg, help="org/name on the Hub (created if needed)")
    p.add_argument("--revision", type=nonempty, help="branch to commit to (created if needed; default main)")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument(
        "--create-pr", action="store_true", help="open a pull request instead of committing to main"
    )
    p.add_argument("--message", help="commit message")
    p.add_argument("--endpoint", type=url_arg, help="Hub URL (default: VGANZOO_ENDPOINT, then HF_ENDPOINT)")
    p.add_argument("--token", help="Hub token (default: the stored login)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
