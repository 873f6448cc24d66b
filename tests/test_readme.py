"""The README's examples say what the code does: the listing comments of its Python API block, and
every `vganzoo ...` line of its command-line block names options the command has, its required ones
included."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

import vganzoo
from vganzoo import registry
from vganzoo.cli import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _section_block(heading: str) -> str:
    section = README.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```[a-z]*\n(.*?)```", section, flags=re.S).group(1)


def _ours(spec: registry.ModelSpec) -> bool:
    """A family vganzoo ships (not a plugin's, nor a model another test registered)."""
    return spec.source == registry.BUILTIN_SOURCE and spec.factory.__module__.startswith("vganzoo.")


LISTING = re.compile(r"^(vganzoo\.list_models\(.*?\))\s+#\s+(\[.*?\])", re.M)


def test_the_readmes_listing_comments_are_what_list_models_returns():
    claims = LISTING.findall(_section_block("Python API"))
    assert len(claims) >= 2  # "*gan*" and pretrained=True
    for call, shown in claims:
        got = eval(call, {"vganzoo": vganzoo})  # the README's own line
        builtin = [n for n in got if _ours(registry.get_model_spec(n))]
        assert ast.literal_eval(shown) == builtin, call  # plugins' names come on top ("+ plugins")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _command_lines() -> list[str]:
    lines = []
    for line in _section_block("Command line").splitlines():
        line = line.partition("  #")[0].strip()
        if line.startswith("vganzoo "):
            lines += ["vganzoo " + part.strip() for part in line[len("vganzoo ") :].split(" / vganzoo ")]
    return lines


def _commands(line: str) -> list[tuple[str, argparse.ArgumentParser]]:
    """The (sub)commands a README line shows: `convert mocogan|tgan SRC` is two of them."""
    found = [("vganzoo", build_parser())]
    for word in line.split()[1:]:
        choices = [(f"{name} {alt}", _subparsers(p).get(alt)) for name, p in found for alt in word.split("|")]
        if not choices or any(p is None for _, p in choices):
            break
        found = choices
    return found


@pytest.mark.parametrize("line", _command_lines())
def test_each_readme_command_line_uses_options_the_command_has(line):
    for name, parser in _commands(line):
        assert name != "vganzoo", f"{line!r} names no command"
        known = set(parser._option_string_actions)
        used = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", line))
        assert used <= known, f"{name}: the README shows {sorted(used - known)}, which it does not take"
        required = {a.option_strings[0] for a in parser._actions if a.required and a.option_strings}
        assert required <= used, f"{name}: the README omits required {sorted(required - used)}"


def _families() -> set[str]:
    specs = [registry.get_model_spec(n) for n in registry.list_models()]
    return {s.family for s in specs if _ours(s)}


def _mentions(text: str) -> set[str]:
    flat = re.sub(r"[^a-z]", "", text.lower())
    return {f for f in _families() if re.sub(r"[^a-z]", "", f) in flat}


def test_the_package_and_space_descriptions_name_every_family():
    root = Path(__file__).resolve().parents[1]
    description = re.search(r'^description = "(.*)"', (root / "pyproject.toml").read_text(), re.M).group(1)
    space = (root / "examples" / "spaces" / "README.md").read_text()
    short = re.search(r"^short_description: (.*)$", space, re.M).group(1)
    assert len(short) <= 60  # what a Hugging Face Space accepts
    assert _mentions(description) == _mentions(short) == _families()
