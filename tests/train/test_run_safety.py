"""What a run writes when things go wrong: nothing when it fails before starting, a message that names
the file, the last checkpoint and the resume command when the disk fills, no stale temporaries, one
permission policy; and what it takes from the data when the user did not say."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat

import pytest
import torch
import train_helpers as h

import vganzoo
from vganzoo import files
from vganzoo.cli import main
from vganzoo.train import TrainConfig, Trainer, train
from vganzoo.train import checkpoint as ckpt
from vganzoo.train.run import RunStoppedError

pytestmark = pytest.mark.usefixtures("one_thread")

QUIET = {"progress": False, "log_every": 1, "sample_every": 0, "tensorboard": False}
TOY = ["--resolution", "8", "--frames", "3", "--batch-size", "2", "--no-progress", "--num-samples", "0"]


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _fit(out, steps, **cfg):
    torch.manual_seed(0)
    model = vganzoo.create("tiny-cond-gan")
    data = h.SyntheticVideos(10, channels=3, frames=4, resolution=8)
    return Trainer(model, data, TrainConfig(steps=steps, out_dir=str(out), **{**QUIET, **cfg})).fit()


# ----------------------------------------------------------------------------------------------
# nothing is written when a run fails before it starts
# ----------------------------------------------------------------------------------------------
def test_a_missing_resume_file_creates_nothing(tmp_path, fake_data, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "toy-gan", "--data", "moving-digits", "--out", "run", "--resume", "missing", *TOY])
    assert code == 2 and "--resume" in capsys.readouterr().err
    with pytest.raises(ckpt.CheckpointError, match="'missing' is not a checkpoint file"):
        train("toy-gan", data="moving-digits", out="run", resume="missing")
    assert _tree(tmp_path) == []


def test_a_damaged_resume_file_creates_no_run_folder(tmp_path):
    bad = tmp_path / "ckpt-00000001.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="damaged"):
        _fit(tmp_path / "run", 1, resume=str(bad))
    assert not (tmp_path / "run").exists()


def test_resume_with_only_damaged_checkpoints_refuses_and_keeps_them(tmp_path):
    """Not "no checkpoint; starting from scratch" (which then rotated the damaged files away)."""
    _fit(tmp_path / "run", 2, checkpoint_every=1)
    folder = tmp_path / "run" / "checkpoints"
    for path in folder.iterdir():
        path.write_bytes(path.read_bytes()[:1000])
    before = sorted((p.name, p.read_bytes()) for p in folder.iterdir())
    with (
        pytest.warns(UserWarning, match="skipping damaged"),
        pytest.raises(
            ckpt.CheckpointError, match=r"^resume: none of the 2 checkpoint\(s\) in .* can be read"
        ),
    ):
        _fit(tmp_path / "run", 4, resume=True, checkpoint_every=1, keep_checkpoints=1)
    assert sorted((p.name, p.read_bytes()) for p in folder.iterdir()) == before


@pytest.mark.parametrize("key", ["out", "data"])
def test_an_empty_out_or_data_is_refused(tmp_path, monkeypatch, key):
    """'' would be the current folder: as the run folder, or read as a dataset."""
    monkeypatch.chdir(tmp_path)
    kwargs = {"data": "moving-digits", "out": "run", key: ""}
    with pytest.raises(ValueError, match=f"{key}: expected"):
        train("toy-gan", **kwargs)
    assert _tree(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# a full disk
# ----------------------------------------------------------------------------------------------
def test_a_full_disk_names_the_file_the_last_checkpoint_and_the_resume_command(tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_write = files._write_all
    writes = {"checkpoints": 0}

    def write_all(handle, data):
        name = os.path.basename(handle.name)
        if ".tmp-ckpt-" in name:
            writes["checkpoints"] += 1
            if writes["checkpoints"] == 3:  # the third checkpoint finds the disk full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(handle, data)

    monkeypatch.setattr(files, "_write_all", write_all)
    data = h.SyntheticVideos(10, channels=3, frames=4, resolution=8)
    command = "vganzoo train tiny-cond-gan --data x --steps 5"
    with pytest.raises(RunStoppedError) as info:
        train(
            "tiny-cond-gan",
            dataset=data,
            out=str(out),
            steps=5,
            checkpoint_every=1,
            command=command,
            **QUIET,
        )
    message = str(info.value)
    second = out / "checkpoints" / "ckpt-00000002.safetensors"
    assert (
        f"No space left on device while writing {out / 'checkpoints' / 'ckpt-00000003.safetensors'}"
        in message
    )
    assert f"the last good checkpoint is {second}" in message.lower()
    assert f"{command} --out {out} --resume" in message
    assert [p.name for _, p in ckpt.list_checkpoints(out / "checkpoints")] == [
        "ckpt-00000001.safetensors",
        "ckpt-00000002.safetensors",
    ]
    for sub in ("checkpoints", "samples"):
        assert not [p for p in (out / sub).iterdir() if p.name.startswith(".")]
    ckpt.load_checkpoint(second)  # intact


# ----------------------------------------------------------------------------------------------
# stale temporaries and permissions
# ----------------------------------------------------------------------------------------------
def test_stale_export_folders_are_cleaned_like_checkpoint_temps(tmp_path):
    out = tmp_path / "run"
    _fit(out, 1)
    stale = [
        out / ".model.tmp-abc123",
        out / ".model.old-x9",
        out / ".tmp-model.5f3e",
        out / ".tmp-model.old.77",
    ]
    for folder in stale:
        folder.mkdir()
        (folder / "generator.safetensors").write_bytes(b"half")
    (out / "checkpoints" / ".tmp-ckpt-00000009.safetensors.ab.safetensors").write_bytes(b"half")
    (out / "samples" / ".tmp-step_00000020.gif.54e028b330ac.gif").write_bytes(b"half")  # a killed sample grid
    keep = out / ".hidden-notes"  # not a temporary of ours
    keep.mkdir()
    _fit(out, 2, resume=True)
    assert [p for p in stale if p.exists()] == [] and keep.is_dir()
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_checkpoints_and_exports_follow_one_permission_policy(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        result = _fit(tmp_path / "run", 1)
    finally:
        os.umask(old)
    written = [*(result.run_dir / "checkpoints").iterdir(), *result.export_dir.iterdir()]
    written.append(result.run_dir / "config.json")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in written}
    assert set(modes.values()) == {mode}, modes
    assert stat.S_IMODE(result.export_dir.stat().st_mode) == (0o777 & ~umask)


# ----------------------------------------------------------------------------------------------
# what the run takes from the data, and says
# ----------------------------------------------------------------------------------------------
def test_channels_and_classes_come_from_the_data_when_not_given(tmp_path, caplog):
    """The README's line (`train MODEL --data moving-digits`) builds a grey, 10-class model, and says so."""
    with caplog.at_level(logging.INFO, logger="vganzoo"):
        result = train(
            "tiny-cond-gan",
            data="moving-digits",
            out=str(tmp_path / "a"),
            steps=1,
            batch_size=2,
            model_overrides={"resolution": 16},
            **QUIET,
        )
    config = json.loads((result.run_dir / "config.json").read_text())["model"]
    assert (config["channels"], config["num_classes"]) == (1, 10)
    assert "channels 1, num classes 10; building tiny-cond-gan with channels=1, num_classes=10" in caplog.text
    given = train(
        "tiny-cond-gan",
        data="moving-digits",
        out=str(tmp_path / "b"),
        steps=1,
        batch_size=2,
        model_overrides={"resolution": 16, "channels": 3, "num_classes": 0},
        **QUIET,
    )
    config = json.loads((given.run_dir / "config.json").read_text())["model"]
    assert (config["channels"], config["num_classes"]) == (3, 0)  # what the user set wins


def test_resume_says_from_which_step(tmp_path, caplog):
    _fit(tmp_path / "run", 2)
    with caplog.at_level(logging.INFO, logger="vganzoo"):
        _fit(tmp_path / "run", 3, resume=True)  # progress bar off: it is said all the same
    assert "ckpt-00000002.safetensors at iteration 2 of 3" in caplog.text
