"""The ``vganzoo`` command line: a thin layer over the Python API.

Each subcommand lives in its own module of this package, which defines ``add_parser(subparsers)``
registering the subcommand with ``func=run`` (``run(args) -> int``). User errors (bad names,
arguments, files) end with a one-line message on stderr and exit code 2, never a traceback;
``VGANZOO_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence

from ..errors import VganzooError

# Subcommand modules, in the order --help lists them.
SUBCOMMAND_MODULES = (
    "list",
    "info",
    "sample",
    "train",
    "export",
    "eval",
    "data",
    "download",
    "push",
    "convert",
    "serve",
)

# Errors that are the user's doing: shown as one line, exit code 2. OSError covers the file system's
# answers to a path the user gave (missing, exists, not a folder, no permission, disk full).
USER_ERRORS: tuple[type[BaseException], ...] = (VganzooError, ValueError, TypeError, LookupError, OSError)


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="vganzoo",
        description="A model zoo of video GANs: list, inspect, sample, train and evaluate them.",
    )
    parser.add_argument("--version", action="version", version=f"vganzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in SUBCOMMAND_MODULES:
        importlib.import_module(f"{__name__}.{module}").add_parser(sub)
    return parser


def _format_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> str:
    """Warnings as people read them: one line, no file path or source line."""
    return f"warning: {message}\n"


@contextlib.contextmanager
def _user_output() -> Iterator[None]:
    """For one command: library log messages (INFO and up, ``vganzoo.*`` loggers) on stdout, and
    warnings formatted as one line each (which warnings show is Python's usual filter's choice)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("vganzoo")
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    old_format, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        yield
    finally:
        warnings.formatwarning = old_format
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _user_output():
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("vganzoo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `vganzoo list | head`: the reader is gone; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not complain again
        return 141  # 128 + SIGPIPE, as a shell reports it
    except USER_ERRORS as exc:
        if os.environ.get("VGANZOO_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"vganzoo {args.command}: error: {message}", file=sys.stderr)
        return 2
