"""What every subcommand's options share: a parser whose errors are one line naming the option, and
the argparse types that check a value before anything runs (bounded numbers, seeds, paths, devices).

A type raises ``argparse.ArgumentTypeError``; argparse then reports ``argument --n: <why>`` through
:meth:`Parser.error`, which prints that one line and exits with code 2 (no usage block). Paths are
checked for what the command will do with them: an input must exist, an output file's folder must
exist (a command creates only what the user named), an output folder may be new.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from ..resources import as_device

__all__ = [
    "MAX_SEED",
    "Parser",
    "UsageError",
    "device_arg",
    "existing_path",
    "float_in",
    "int_in",
    "nonempty",
    "out_dir",
    "out_file",
    "random_weights_arg",
    "repo_id_arg",
    "resolve_device",
    "seed_arg",
    "url_arg",
]

# The largest --seed: commands derive further seeds from it (seed + 1 for a latent walk, seed + batch
# index in eval) and torch, Python and NumPy must all take them.
MAX_SEED = 2**62


class UsageError(Exception):
    """A command line that does not parse; :func:`vganzoo.cli.main` prints it as one line, exit 2."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: error: {message}")


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line (``PROG: error: ...``, no usage block),
    raised as :class:`UsageError` for the caller to print (``--help`` and ``--version`` still exit 0)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, " ".join(str(message).split()))  # argparse's own messages may wrap


def _fail(message: str) -> NoReturn:
    raise argparse.ArgumentTypeError(message)


def _shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters (a pasted megabyte stays one line)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer from ``low`` to ``high`` (inclusive; None: no upper bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            _fail(f"expected an integer, got {_shown(text)}")
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            _fail(f"expected an integer {bound}, got {_shown(text)}")
        return value

    parse.__name__ = "int"
    return parse


def float_in(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_open``); NaN and inf are refused."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            _fail(f"expected a number, got {_shown(text)}")
        below = value <= low if low_open else value < low
        if not math.isfinite(value) or below or value > high:
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
            _fail(f"expected a finite number in {interval}, got {_shown(text)}")
        return value

    parse.__name__ = "float"
    return parse


def seed_arg(text: str) -> int:
    """A seed: an integer from 0 to :data:`MAX_SEED`."""
    return int_in(0, MAX_SEED)(text)


def nonempty(text: str) -> str:
    """A string with something in it (an empty ``--data ''`` would otherwise mean the current folder)."""
    if not text.strip():
        _fail("must not be empty")
    if "\x00" in text:
        _fail(f"contains a NUL character: {_shown(text)}")
    return text


def existing_path(text: str) -> str:
    """A file or folder that exists (an input)."""
    nonempty(text)
    if not os.path.exists(os.path.expanduser(text)):
        _fail(f"{_shown(text)} does not exist")
    return text


def out_dir(text: str) -> str:
    """A folder to write (created with its parents when new); an existing file is refused."""
    nonempty(text)
    path = os.path.expanduser(text)
    if os.path.exists(path) and not os.path.isdir(path):
        _fail(f"{_shown(text)} is a file; give a folder (new or existing)")
    return text


def out_file(extensions: Iterable[str]) -> Callable[[str], str]:
    """A file to write, ending in one of ``extensions``, in a folder that exists (nothing else is
    created: ``/nonexistent_dir/x.gif`` is refused, not made)."""
    extensions = tuple(extensions)

    def parse(text: str) -> str:
        nonempty(text)
        path = os.path.expanduser(text)
        if extensions and not path.lower().endswith(extensions):
            _fail(f"must end in one of {', '.join(extensions)}, got {_shown(text)}")
        if os.path.isdir(path):
            _fail(f"{_shown(text)} is a folder; give a file name inside it")
        folder = os.path.dirname(path) or "."
        if not os.path.isdir(folder):
            what = "is a file" if os.path.exists(folder) else "does not exist"
            _fail(f"the folder {_shown(folder)} {what}; create it first or write elsewhere")
        if not os.access(folder, os.W_OK | os.X_OK):
            _fail(f"no permission to write into {_shown(folder)}")
        return text

    parse.__name__ = "path"
    return parse


def url_arg(text: str) -> str:
    """An http(s) URL (a Hub endpoint)."""
    if not re.match(r"^https?://[^\s/]+", text.strip()):
        _fail(f"expected an http(s) URL such as https://huggingface.co, got {_shown(text)}")
    return text.strip().rstrip("/")


def repo_id_arg(text: str) -> str:
    """A Hub repo id, ``org/name``."""
    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", text.strip()):
        _fail(f"expected a Hub repo id 'org/name', got {_shown(text)}")
    return text.strip()


def device_arg(text: str) -> str:
    """A device this machine has: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``xpu[:N]``.

    Returns the canonical name (``cpu:0`` is ``cpu``; ``auto`` stays ``auto``). What is missing is
    said in command-line terms: a CPU-only PyTorch, no visible GPU, an index past the last GPU.
    """
    text = text.strip().lower()
    if text == "auto":
        return text
    try:
        resolve_device(text)
    except ValueError as exc:
        _fail(str(exc))
    return "cpu" if text.startswith("cpu") else text


def resolve_device(text: str | None) -> Any:
    """The ``torch.device`` of a ``--device`` value (None or ``auto``: CUDA when available, else the
    CPU); ValueError saying why it cannot be used here (the library's one check,
    :func:`vganzoo.resources.as_device`)."""
    return as_device("auto" if text is None else text, "")


def random_weights_arg(p: argparse.ArgumentParser, verb: str) -> None:
    """``--random-weights``: the architecture with random weights even where the name has weight sets
    (an architecture name with weight sets otherwise means its default weight set)."""
    p.add_argument(
        "--random-weights",
        action="store_true",
        help=f"{verb} the architecture with random weights (vganzoo.create), even for a name that has "
        "pretrained weights (mocogan-rnn, mocogan-rnn.digits)",
    )


def fixed_by_weights_hint(message: str) -> str:
    """``message`` with the option that lifts it, when it refuses settings because weights fix them."""
    from ..hub.loading import FIXED_BY_WEIGHTS

    if FIXED_BY_WEIGHTS not in message:
        return message
    return f"{message}; add --random-weights for the architecture with random weights"
