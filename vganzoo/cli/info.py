"""``vganzoo info NAME``: a model's or weight set's family, paper, config, parameter counts and tags."""

from __future__ import annotations

import argparse
import json

from .options import nonempty


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show a model's config, parameter counts and weights",
        description="Show a model's family, paper, config, parameter counts and pretrained tags.",
    )
    p.add_argument("name", type=nonempty, help="model name, e.g. mocogan-rnn")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub import model_info

    info = model_info(args.name)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"{info['name']}  ({info['family']}, from {info['source']})")
    if info["paper"]:
        print(f"paper: {info['paper']}")
    if info["description"]:
        print(info["description"])
    print("\nparameters:")
    for comp, count in info["parameters"].items():
        print(f"  {comp:<28} {count:>12,}")
    print(f"\nconfig of the {info['weights']} weights:" if info["weights"] else "\ndefault config:")
    for key, value in info["config"].items():
        print(f"  {key:<28} {value!r}")
    print("\npretrained:", ", ".join(info["pretrained"]) or "none")
    for tag, spec in info["pretrained"].items():
        print(f"  {info['name']}.{tag}: {spec['repo_id'] or 'bundled'}@{(spec['revision'] or '-')[:12]}")
        for key, value in spec["metadata"].items():  # every field, one per line (--json for the raw form)
            print(f"    {key}: {value if isinstance(value, str) else json.dumps(value)}")
    return 0
