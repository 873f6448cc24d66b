"""``vganzoo info NAME``: a model's or weight set's family, paper, config, parameter counts, recipes
(each named recipe's loop, and how it and a weight set's recorded recipe differ from ``paper``) and tags."""

from __future__ import annotations

import argparse
import json
from typing import Any

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
    _print_recipes(info)
    print("\npretrained:", ", ".join(info["pretrained"]) or "none")
    for tag, spec in info["pretrained"].items():
        print(f"  {info['name']}.{tag}: {spec['repo_id'] or 'bundled'}@{(spec['revision'] or '-')[:12]}")
        for key, value in spec["metadata"].items():  # every field, one per line (--json for the raw form)
            print(f"    {key}: {value if isinstance(value, str) else json.dumps(value)}")
    return 0


def _loop_summary(recipe: dict[str, Any], categories: bool) -> str:
    """One line: the recipe's order of updates, which fake batches each step sees and (``categories``:
    for a family with class-logit discriminators) where the D step's category loss applies."""
    from ..train.config import LOOPS

    text = f"[loop {recipe['loop']}] {LOOPS[recipe['loop']]}"
    if recipe["loop"] == "alternate":
        per_d = recipe["g_fake_batches"] == "per-discriminator"
        batches = (
            "a separate fake batch per discriminator" if per_d else "one fake batch for all discriminators"
        )
        text += f" ({recipe['d_steps']} D step(s) per G step); G step: {batches}"
    if categories:
        on_fakes = (
            "real clips and fakes" if recipe["d_category_loss"] == "real-and-fake" else "real clips only"
        )
        text += f"; D category loss: {on_fakes}"
    return text


def _differences(recipe: dict[str, Any], paper: dict[str, Any]) -> str:
    keys = [k for k in recipe if k != "name" and recipe[k] != paper.get(k)]
    if not keys:
        return "the same as paper"
    return "differs from paper: " + ", ".join(
        f"{k}={json.dumps(recipe[k])} (paper: {json.dumps(paper.get(k))})" for k in keys
    )


def _print_recipes(info: dict[str, Any]) -> None:
    """Every named recipe (the first is the default) and the weight set's recorded one, each against
    the paper recipe (keys a recipe leaves out take the trainer's defaults: the loop of recipes
    saved before the loop keys existed)."""
    from ..errors import InvalidConfigError
    from ..train.config import resolve_recipe

    recipes = {}
    for name, raw in info["recipes"].items():
        try:
            recipes[name] = resolve_recipe(raw)
        except InvalidConfigError as exc:  # a plugin's recipe the trainer would refuse: say so, list the rest
            print(f"\nrecipe {name}: {exc}")
    if not recipes:
        return
    paper = recipes.get("paper", next(iter(recipes.values())))
    # the category loss's place matters where the family's recipes say where it goes (MoCoGAN)
    categories = any("d_category_loss" in r for r in info["recipes"].values())
    print("\nrecipes (vganzoo train --recipe NAME; the first is the default):")
    for name, recipe in recipes.items():
        print(f"  {name}: {_loop_summary(recipe, categories)}")
        if recipe is not paper:
            print(f"    {_differences(recipe, paper)}")
    if info.get("trained_with") is not None:
        try:
            trained = resolve_recipe(info["trained_with"])
        except InvalidConfigError as exc:
            print(f"\n{info['weights']} records a recipe the trainer refuses: {exc}")
            return
        print(f"\n{info['weights']} was trained with: {_loop_summary(trained, categories)}")
        print(f"  {_differences(trained, paper)}")
