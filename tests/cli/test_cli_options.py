"""The options every command shares: devices, sizes bounded by memory, chunked sampling with progress,
the thread count, and messages in command-line terms."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

import vganzoo
from vganzoo import cli
from vganzoo.cli import main, options
from vganzoo.sampling import sample_videos


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ----------------------------------------------------------------------------------------------
# devices: one parser for sample, train and eval
# ----------------------------------------------------------------------------------------------
def test_cpu_with_an_index_is_the_cpu():
    assert options.device_arg("cpu:0") == "cpu" and options.resolve_device("cpu:0") == torch.device("cpu")
    assert options.device_arg("auto") == "auto"


def test_cuda_on_a_cpu_only_torch_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    cpu_only = r"^'cuda', but this PyTorch .* is a CPU-only build; use 'cpu'$"
    with pytest.raises(argparse.ArgumentTypeError, match=cpu_only):
        options.device_arg("cuda")
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    with pytest.raises(argparse.ArgumentTypeError, match="no CUDA GPU is visible"):
        options.device_arg("cuda:1")


@pytest.mark.parametrize("device", ["meta", "mps", "xpu", "hpu", "potato"])
@pytest.mark.parametrize("command", ["sample", "train", "eval"])
def test_unusable_devices_are_one_line_in_every_command(command, device, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = {"sample": ["sample", "tgan"], "train": ["train", "tgan", "--data", "x"], "eval": ["eval", "tgan"]}
    assert main([*argv[command], "--device", device]) == 2
    assert one_error_line(capsys).startswith(f"vganzoo {command}: error: argument --device: ")


def test_sample_runs_on_cpu_0(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sample", "mocogan-rnn.digits", "--n", "2", "--device", "cpu:0", "--out", "a.gif"]) == 0
    assert "device cpu" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# sizes checked against memory before the work starts
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra,named",
    [(["--n", "20000"], "--n 20000"), (["--n", "2", "--interpolate", "50000"], "--interpolate 50000")],
)
def test_sampling_more_than_memory_allows_is_refused_first(extra, named, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VGANZOO_MEMORY_LIMIT", "2G")
    called = []
    monkeypatch.setattr(vganzoo.models.base.VideoGAN, "sample", lambda *a, **k: called.append(a))
    assert main(["sample", "mocogan-rnn.digits", *extra, "--out", "a.gif"]) == 2
    line = one_error_line(capsys)
    assert named in line and "needs at least" in line and "2.1 GB is available" in line
    assert called == [] and list(tmp_path.iterdir()) == []


def test_a_grid_too_large_for_the_format_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sample", "mocogan-rnn.digits", "--n", "3000", "--nrow", "3000", "--out", "a.gif"]) == 2
    assert "beyond the 65535 a .gif file takes" in one_error_line(capsys)


def test_train_batch_beyond_memory_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VGANZOO_MEMORY_LIMIT", "1G")
    code = main(["train", "tgan", "--data", "moving-digits", "--batch-size", "100000", "--out", "run"])
    assert code == 2
    line = one_error_line(capsys)
    assert "--batch-size 100000" in line and "needs at least" in line
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# chunked sampling with progress
# ----------------------------------------------------------------------------------------------
def test_chunked_sampling_matches_one_batch_and_reports_progress():
    model = vganzoo.load("mocogan-rnn.digits")
    done = []
    videos, latents = sample_videos(model, 20, seed=3, chunk=16, on_progress=done.append)
    assert done == [16, 4] and videos.shape == (20, 1, 16, 32, 32)
    torch.testing.assert_close(videos, model.sample(20, seed=3), atol=1e-5, rtol=1e-5)
    small, _ = sample_videos(model, 5, seed=3)
    assert torch.equal(small, model.sample(5, seed=3))  # up to one chunk: exactly model.sample
    assert latents["labels"].tolist() == model.sample(20, seed=3, return_latents=True)[1]["labels"].tolist()


# ----------------------------------------------------------------------------------------------
# threads
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cores,load,expected", [(2, 9.8, 1), (2, 0.1, 2), (16, 4.2, 12), (16, 30.0, 1)])
def test_threads_are_the_idle_cores(cores, load, expected, monkeypatch):
    for var in cli.THREAD_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(cli.os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(cli.os, "getloadavg", lambda: (load, load, load))
    assert cli.choose_threads() == expected


def test_threads_set_by_the_user_are_left_alone(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cli.choose_threads() is None


# ----------------------------------------------------------------------------------------------
# messages in command-line terms
# ----------------------------------------------------------------------------------------------
def test_info_prints_every_metadata_field(capsys):
    assert main(["info", "mocogan-rnn.digits"]) == 0
    out = capsys.readouterr().out
    meta = vganzoo.model_info("mocogan-rnn.digits")["pretrained"]["digits"]["metadata"]
    for key, value in meta.items():
        shown = value if isinstance(value, str) else json.dumps(value)
        assert f"    {key}: {shown}" in out


def test_a_label_for_an_unconditional_model_is_said_in_option_terms(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sample", "tgan", "--label", "3", "--n", "1", "--out", "a.gif"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--label: tgan is unconditional" in line and "labels=None" not in line
    assert main(["sample", "mocogan-rnn.digits", "--label", "10", "--out", "a.gif"]) == 2
    assert "--label is 0 to 9" in one_error_line(capsys)


def test_convert_errors_name_options_not_keywords(tmp_path, capsys):
    import numpy as np

    np.savez(tmp_path / "gen_iter_1.npz", **{"dc0/W": np.zeros((1, 1), dtype=np.float32)})
    assert main(["convert", "tgan", str(tmp_path / "gen_iter_1.npz"), str(tmp_path / "out")]) == 2
    line = one_error_line(capsys)
    assert "--image-generator" in line and "image_generator=" not in line
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "weights.json").write_text("{}")  # a weight set: --force replaces it
    assert main(["convert", "tgan", str(tmp_path / "gen_iter_1.npz"), str(tmp_path / "full")]) == 2
    line = one_error_line(capsys)
    assert "--force" in line and "overwrite=True" not in line


def test_the_literal_bounds_match_the_library():
    """Kept literal so that building the parser imports no torch; they must follow vganzoo.videoio."""
    from vganzoo import videoio
    from vganzoo.cli import sample

    assert sample.WRITABLE == videoio.WRITABLE_EXTENSIONS
    assert (sample.MIN_FPS, sample.MAX_FPS) == (videoio.MIN_FPS, videoio.MAX_FPS)
