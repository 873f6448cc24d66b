"""``vganzoo list [FILTER] [--pretrained]``: the registered models, or the weight sets with the scores
their cards record (read from files already here: listing never downloads), as a table."""

from __future__ import annotations

import argparse
import json

from .. import registry


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help="list registered models",
        description="List registered models (shell-style FILTER, e.g. '*gan*').",
    )
    p.add_argument(
        "filter",
        nargs="?",
        default="*",
        help="shell-style wildcard such as '*gan*'; a word without wildcards matches names containing it "
        "(default: all)",
    )
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="list pretrained weight sets (arch.tag) with their recorded scores instead",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def run(args: argparse.Namespace) -> int:
    if not any(ch in args.filter for ch in "*?["):  # `vganzoo list gan`: a part of the name
        args.filter = f"*{args.filter}*"
    names = registry.list_models(args.filter, pretrained=args.pretrained)
    if args.json:
        print(json.dumps(names))
        return 0
    if not names:
        print(_nothing_matches(args.filter, args.pretrained))
        return 0
    if args.pretrained:
        print(
            _table(
                [_weight_set_row(name) for name in names],
                ["name", "data", "scores (real data, random weights)"],
            )
        )
        return 0
    rows = []
    for name in names:
        try:
            spec = registry.get_model_spec(name)
            _arch, tag = registry.split_tag(name)
            if tag:
                meta = spec.pretrained[tag].metadata
                desc = ", ".join(f"{k}={meta[k]}" for k in ("dataset", "resolution", "frames") if k in meta)
            else:
                desc = spec.description or spec.paper
            rows.append([name, spec.family, spec.source, ", ".join(spec.pretrained) or "-", desc])
        except Exception as exc:  # a broken plugin shows as such (its package and why), the rest still lists
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            rows.append([name, "?", "?", "-", f"unavailable: {reason}"])
    print(_table(rows, ["name", "family", "source", "pretrained", "description"]))
    return 0


def _nothing_matches(pattern: str | None, pretrained: bool) -> str:
    """Why the listing is empty: no model matches, or (--pretrained) the models that match have no
    weight sets (naming them, so that the filter is not taken for a typo)."""
    shown = repr(pattern) if pattern else "any name"
    if not pretrained:
        return f"no model matches {shown}"
    models = registry.list_models(pattern)
    if not models:
        return f"no weight set matches {shown} (and no model does)"
    which = "none has" if len(models) > 1 else "it has no"
    return (
        f"no weight set matches {shown} (models matching it: {', '.join(models)}; {which} pretrained weights)"
    )


def _weight_set_row(name: str) -> list[str]:
    """name, what it was trained on, and the scores its card records."""
    from ..hub import recorded_metrics

    try:
        spec = registry.get_model_spec(name)
        meta = spec.pretrained[registry.split_tag(name)[1]].metadata
    except Exception as exc:  # a broken plugin shows as such, the rest still lists
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [name, "?", f"unavailable: {reason}"]
    data = ", ".join(str(meta[k]) for k in ("dataset", "resolution", "frames") if k in meta)
    return [name, data or "-", format_scores(recorded_metrics(name)) or "none recorded (or not downloaded)"]


def format_scores(metrics: dict) -> str:
    """``fvd_digits 139.6 (0.87, 591.9); frame_score 0.790 (0.996, 0.000)``: each score of the weights
    with, where recorded, real data's and the random-weights model's under the same protocol."""

    def value(key: str) -> str | None:
        entry = metrics.get(key)
        number = entry.get("value") if isinstance(entry, dict) else entry
        return f"{number:.4g}" if isinstance(number, (int, float)) and not isinstance(number, bool) else None

    parts = []
    for key in metrics:
        if ", " in key or value(key) is None:
            continue
        beside = [v for v in (value(f"{key}, real data"), value(f"{key}, random weights")) if v is not None]
        parts.append(f"{key} {value(key)}" + (f" ({', '.join(beside)})" if beside else ""))
    return "; ".join(parts)
