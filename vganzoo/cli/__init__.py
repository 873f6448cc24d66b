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
import re
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


# Commands that compute with torch: their CPU thread count is chosen before they start.
COMPUTE_COMMANDS = {"sample", "train", "eval", "export", "convert", "data"}
THREAD_ENV_VARS = ("VGANZOO_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def choose_threads() -> int | None:
    """The CPU threads for a command: ``VGANZOO_NUM_THREADS`` / ``OMP_NUM_THREADS`` /
    ``MKL_NUM_THREADS`` when set (None: leave torch as configured), else the cores that are idle.

    The zoo's models are small (batches of 16 clips at 32-64 px): intra-op threads help only when
    they get a core of their own, and on a busy machine a thread waiting for a core stalls every
    operation at its barrier. Measured on the 2-core test box while other work ran (load ~10):
    ``model.sample(4)`` took 2.1 s (mocogan-rnn), 3.1 s (tgan), 2.6 s (vgan) with one thread against
    3.1, 3.6 and 2.9 s with two. So: the usable cores minus the 1-minute load average, at least 1,
    at most torch's own default (the physical cores).
    """
    if any(os.environ.get(v, "").strip() for v in THREAD_ENV_VARS):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return max(1, min(cores, int(cores - load + 0.5)))


def _set_threads() -> None:
    import torch

    wanted = os.environ.get("VGANZOO_NUM_THREADS", "").strip()
    if wanted.isdigit() and int(wanted) > 0:
        torch.set_num_threads(int(wanted))
        return
    threads = choose_threads()
    if threads is not None:
        torch.set_num_threads(min(threads, torch.get_num_threads()))


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__
    from .options import Parser

    parser = Parser(
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


def _for_the_command_line(message: str) -> str:
    """A library message's pointers to Python calls, as the command that does the same."""
    from ..registry.core import LIST_MODELS_HINT

    message = message.replace(LIST_MODELS_HINT, "(`vganzoo list` lists them all)")
    return re.sub(
        r"build it with random weights with vganzoo\.create\('[^']*'\)",
        "sample or evaluate it with --random-weights",
        message,
    )


def main(argv: Sequence[str] | None = None) -> int:
    from .options import UsageError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        with _user_output():
            if args.command in COMPUTE_COMMANDS:
                _set_threads()
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
        print(f"vganzoo {args.command}: error: {_for_the_command_line(message)}", file=sys.stderr)
        return 2
