"""Malformed command lines across every subcommand: each ends at once with exit code 2 and one line on
stderr that names the option, no traceback, and writes nothing.

The invocations run in-process (``vganzoo.cli.main``) under a per-case time limit; each runs in an
empty current folder whose tree is compared before and after, and paths point into it (or at a folder
that does not exist, which must stay so).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vganzoo.cli import main

REPO = Path(__file__).resolve().parents[2]
CASE_SECONDS = 20  # a case that takes longer has hung (they take milliseconds)
MISSING_ROOT = "/nonexistent_vganzoo_dir"

HUGE = "9" * 25
NUMBER_JUNK = ["abc", "nan", "inf", "-inf", "1e999", HUGE, "", "1.5", "½", " "]


def _numbers(command: list[str], option: str, bad: list[str]) -> list[tuple[list[str], str]]:
    return [([*command, option, value], option) for value in bad]


def _cases() -> list[tuple[list[str], str]]:
    sample = ["sample", "tgan"]
    train = ["train", "tgan", "--data", "moving-digits"]
    preview = ["data", "preview", "moving-digits"]
    cases: list[tuple[list[str], str]] = []
    # sample
    cases += _numbers(sample, "--n", ["0", "-1", "1000000000", *NUMBER_JUNK])
    cases += _numbers(sample, "--seed", ["-1", HUGE, "abc", "", "1e3"])
    cases += _numbers(sample, "--label", ["-1", "x", "nan"])
    cases += _numbers(sample, "--interpolate", ["1", "0", "abc", "100000000"])
    cases += _numbers(sample, "--fps", ["0", "-5", "nan", "inf", "abc", "1e9"])
    cases += _numbers(sample, "--nrow", ["0", "-1", "abc"])
    cases += _numbers(sample, "--resolution", ["0", "-8", "abc", "100000"])
    cases += _numbers(sample, "--frames", ["0", "100000", "nan"])
    cases += _numbers(sample, "--device", ["potato", "meta", "cuda:99", "mps", "xpu", "cpu:1", "hpu", ""])
    cases += _numbers(
        sample,
        "--out",
        [
            "x.png",
            "",
            f"{MISSING_ROOT}/x.gif",
            "no such folder/x.gif",
            "dossier été/vidéo ü.gif",
            ".",
            "samples",
        ],
    )
    cases += [(["sample", ""], "NAME"), (["sample"], "NAME"), (["sample", "tgan", "--bogus"], "--bogus")]
    # train
    cases += _numbers(train, "--steps", ["-1", "abc", "1e99", HUGE])
    cases += _numbers(train, "--batch-size", ["0", "-1", "100000000", "abc", "nan"])
    cases += _numbers(train, "--device", ["potato", "meta", "cuda", "mps", "xpu", "cpu:3"])
    cases += _numbers(train, "--seed", [HUGE, "-5"])
    cases += _numbers(train, "--width", ["inf", "nan", "-1", "0", "abc", "1e9"])
    cases += _numbers(train, "--resolution", ["0", "abc"])
    cases += _numbers(train, "--frames", ["0", "100000"])
    cases += _numbers(train, "--channels", ["2", "0", "abc"])
    cases += _numbers(train, "--num-classes", ["-1", "abc"])
    cases += _numbers(train, "--grad-accum", ["0", "-1"])
    for option in ("--checkpoint-every", "--sample-every", "--log-every"):
        cases += _numbers(train, option, ["-1"])
    cases += _numbers(train, "--keep-checkpoints", ["0"])
    cases += _numbers(train, "--num-samples", ["-1", "100000"])
    cases += _numbers(train, "--workers", ["-1", "100000"])
    cases += _numbers(train, "--max-time", ["0", "-5", "abc", "nan"])
    cases += _numbers(train, "--out", ["", " "])
    cases += _numbers(train, "--resume", ["missing-file.safetensors", ""])
    cases += _numbers(train, "--init-from", [""])
    cases += _numbers(train, "--model-arg", ["novalue", "=x"])
    cases += [
        (["train", "tgan", "--data", ""], "--data"),
        (["train", "tgan"], "--data"),
        (["train", "", "--data", "moving-digits"], "model"),
    ]
    # export
    cases += [
        (["export", "missing-run", "out"], "CHECKPOINT"),
        (["export", "", "out"], "CHECKPOINT"),
        (["export", ".", "a-file.txt"], "OUT"),
        (["export", ".", "out", "--step", "-1"], "--step"),
        (["export", ".", "out", "--step", "abc"], "--step"),
        (["export", ".", "out", "--generator", "bogus"], "--generator"),
        (["export", ".", "out", "--dtype", "int8"], "--dtype"),
        (["export", ".", "out", "--metadata", "missing.json"], "--metadata"),
    ]
    # eval (its numeric options are the metrics command's; the device is shared)
    cases += _numbers(["eval", "tgan"], "--device", ["potato", "meta", "cuda:99", "mps"])
    cases += _numbers(["eval", "tgan"], "--n", ["abc", "1.5"])
    cases += _numbers(["eval", "tgan"], "--seed", ["abc"])
    # data preview
    cases += _numbers(preview, "--n", ["0", "-1", "abc", "10000000"])
    cases += _numbers(preview, "--resolution", ["0", "abc"])
    cases += _numbers(preview, "--frames", ["0"])
    cases += _numbers(preview, "--frame-stride", ["0"])
    cases += _numbers(preview, "--channels", ["2"])
    cases += _numbers(preview, "--split", ["bogus"])
    cases += _numbers(preview, "--seed", ["-1"])
    cases += _numbers(preview, "--fps", ["nan"])
    cases += _numbers(preview, "--nrow", ["0"])
    cases += _numbers(preview, "--out", ["x.txt", f"{MISSING_ROOT}/p.gif"])
    cases += [(["data", "preview", ""], "NAME"), (["data", "bogus"], "ACTION")]
    # download / push / convert / info / list
    cases += [
        (["download", ""], "name"),
        (["download", "mocogan-rnn.digits", "--endpoint", "ftp://x"], "--endpoint"),
        (["download", "mocogan-rnn.digits", "--endpoint", "not a url"], "--endpoint"),
        (["download", "mocogan-rnn.digits", "--cache-dir", "a-file.txt"], "--cache-dir"),
        (["download", "mocogan-rnn.digits", "--components", ""], "--components"),
        (["push", "missing-folder", "org/repo"], "directory"),
        (["push", ".", "not a repo"], "repo_id"),
        (["push", ".", "a/b/c"], "repo_id"),
        (["push", ".", "org/repo", "--endpoint", "ftp://x"], "--endpoint"),
        (["convert", "mocogan", "missing.pytorch", "out"], "src"),
        (["convert", "mocogan", "a-file.txt", "a-file.txt"], "out_dir"),
        (["convert", "tgan", "missing.npz", "out"], "src"),
        (["convert", "tgan", "a-file.txt", "out", "--image-generator", "missing.npz"], "--image-generator"),
        (["convert", "i3d", "a-file.txt", "out.txt"], "dst"),
        (["convert", "c3d", "a-file.txt", "out.safetensors"], "--mean"),
        (["convert", "bogus"], "FORMAT"),
        (["info", ""], "name"),
        (["serve", "--port", "0"], "--port"),
        (["serve", "--port", "70000"], "--port"),
        (["serve", "--port", "http"], "--port"),
        (["serve", "--share", "maybe"], "--share"),
        (["serve", "--device", "potato"], "--device"),
        (["serve", "--device", "cuda:99"], "--device"),
        (["serve", "--models", ""], "--models"),
        (["serve", "--host", ""], "--host"),
        (["list", "--bogus"], "--bogus"),
        ([], "COMMAND"),
        (["bogus-command"], "COMMAND"),
    ]
    return cases


CASES = _cases()


def _tree(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*"))


@contextlib.contextmanager
def _time_limit(seconds: int):
    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_there_are_at_least_100_cases_over_every_subcommand():
    from vganzoo.cli import SUBCOMMAND_MODULES

    assert len(CASES) >= 100
    covered = {argv[0] for argv, _ in CASES if argv}
    assert set(SUBCOMMAND_MODULES) <= covered


@pytest.mark.parametrize("argv,option", CASES, ids=[" ".join(a)[:60] or "<none>" for a, _ in CASES])
def test_malformed_command_line(argv, option, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file.txt").write_text("x")
    before = _tree(tmp_path)
    with _time_limit(CASE_SECONDS):
        code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err and out == ""
    assert option.lstrip("-") in lines[0], lines[0]
    assert _tree(tmp_path) == before
    assert not os.path.exists(MISSING_ROOT)


def test_a_real_process_prints_one_line(tmp_path):
    """The same through ``python -m vganzoo``: exit status 2, one line, nothing written."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "vganzoo", "train", "tgan", "--data", "moving-digits", "--device", "potato"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "vganzoo train: error: argument --device: 'potato' is not a device; use 'cpu'"
    ]
    assert list(tmp_path.iterdir()) == []
