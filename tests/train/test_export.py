"""Exporting training checkpoints as weight-set folders (vganzoo.train.export, `vganzoo export`)."""

from __future__ import annotations

import json

import pytest
import torch
import train_helpers as h

import vganzoo
from vganzoo.cli import main
from vganzoo.train import TrainConfig, Trainer, export_checkpoint, model_from_checkpoint
from vganzoo.train import checkpoint as ckpt

QUIET = {"progress": False, "log_every": 1, "sample_every": 0, "tensorboard": False}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 3-iteration run of a model with an EMA generator, checkpoints at 2 and 3."""
    out = tmp_path_factory.mktemp("export") / "run"
    torch.manual_seed(0)
    model = vganzoo.create("tiny-mask-gan")
    g = model.generator
    data = h.SyntheticVideos(8, channels=g.channels, frames=g.frames, resolution=g.resolution)
    trainer = Trainer(
        model,
        data,
        TrainConfig(steps=3, out_dir=str(out), checkpoint_every=2, keep_checkpoints=5, **QUIET),
        run_info={"data": "synthetic", "command": "vganzoo train tiny-mask-gan --steps 3"},
    )
    trainer.fit()
    return out, trainer.model


def _same_module(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)


def test_model_from_checkpoint_restores_every_part(run):
    out, trained = run
    model, info = model_from_checkpoint(out)
    assert info["step"] == 3 and info["checkpoint"].endswith("ckpt-00000003.safetensors")
    assert info["run_config"]["command"].startswith("vganzoo train")
    assert _same_module(model.generator, trained.generator)
    assert _same_module(model.generator_ema, trained.generator_ema)
    assert all(
        _same_module(model.discriminators[r], trained.discriminators[r]) for r in trained.discriminators
    )
    assert not model.training
    older, info2 = model_from_checkpoint(out, step=2)
    assert info2["step"] == 2 and not _same_module(older.generator, trained.generator)
    via_file, info3 = model_from_checkpoint(out / "checkpoints" / "ckpt-00000002.safetensors")
    assert info3["run_dir"] == str(out) and _same_module(via_file.generator, older.generator)


@pytest.mark.parametrize("which", ["both", "ema", "raw"])
def test_export_round_trips_through_load(run, tmp_path, which):
    out, trained = run
    folder = export_checkpoint(out, tmp_path / "w", generator=which, metadata={"machine": "test box"})
    index = json.loads((folder / "weights.json").read_text())
    assert ("generator_ema" in index["files"]) == (which == "both")
    assert index["metadata"]["steps"] == 3 and index["metadata"]["machine"] == "test box"
    assert index["metadata"]["training_command"] == "vganzoo train tiny-mask-gan --steps 3"
    assert "vganzoo train tiny-mask-gan --steps 3" in (folder / "README.md").read_text()
    loaded = vganzoo.load(f"local-dir:{folder}", components="all")
    expected = trained.generator_ema if which == "ema" else trained.generator
    assert _same_module(loaded.generator, expected)
    assert set(loaded.discriminators) == set(trained.discriminators)
    reference = trained.generator_ema if which in ("both", "ema") else trained.generator
    assert torch.equal(
        loaded.sample(2, seed=5), vganzoo.models.base.VideoGAN(reference, {}).sample(2, seed=5)
    )


def test_export_float16_generator_only_is_small_and_loads(run, tmp_path):
    out, trained = run
    full = export_checkpoint(out, tmp_path / "full")
    small = export_checkpoint(out, tmp_path / "small", generator="ema", discriminators=False, dtype="float16")
    size = lambda d: sum(p.stat().st_size for p in d.glob("*.safetensors"))
    assert size(small) < size(full) / 2
    index = json.loads((small / "weights.json").read_text())
    assert sorted(index["files"]) == ["config", "generator"]
    loaded = vganzoo.load(f"local-dir:{small}")
    assert loaded.generator.to_video.weight.dtype == torch.float32  # cast back on load
    torch.testing.assert_close(
        loaded.generator.to_video.weight, trained.generator_ema.to_video.weight, atol=1e-3, rtol=1e-3
    )


def test_export_errors_name_the_argument(run, tmp_path):
    out, _ = run
    with pytest.raises(ValueError, match="generator must be one of"):
        export_checkpoint(out, tmp_path / "a", generator="best")
    with pytest.raises(ckpt.CheckpointError, match="step: no checkpoint for step 7"):
        export_checkpoint(out, tmp_path / "a", step=7)
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        export_checkpoint(tmp_path / "missing.safetensors", tmp_path / "a")
    with pytest.raises(ckpt.CheckpointError, match="no checkpoints"):
        export_checkpoint(tmp_path, tmp_path / "a")
    export_checkpoint(out, tmp_path / "a")
    with pytest.raises(FileExistsError, match="overwrite"):
        export_checkpoint(out, tmp_path / "a")
    export_checkpoint(out, tmp_path / "a", overwrite=True, step=2)
    assert json.loads((tmp_path / "a" / "weights.json").read_text())["metadata"]["steps"] == 2


def test_export_without_an_ema_refuses_generator_ema(tmp_path):
    torch.manual_seed(0)
    model = vganzoo.create("toy-gan")
    model.recipe = {**model.recipe, "batch_size": 4}
    g = model.generator
    data = h.SyntheticVideos(8, channels=g.channels, frames=g.frames, resolution=g.resolution)
    Trainer(model, data, TrainConfig(steps=1, out_dir=str(tmp_path / "run"), **QUIET)).fit()
    with pytest.raises(ValueError, match="without an EMA"):
        export_checkpoint(tmp_path / "run", tmp_path / "w", generator="ema")


def test_cli_export(run, tmp_path, capsys):
    out, _ = run
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"wall_time": "1 s"}))
    assert (
        main(
            [
                "export",
                str(out),
                str(tmp_path / "w"),
                "--generator",
                "raw",
                "--dtype",
                "float16",
                "--metadata",
                str(meta),
            ]
        )
        == 0
    )
    assert f"wrote {tmp_path / 'w'}" in capsys.readouterr().out
    assert json.loads((tmp_path / "w" / "weights.json").read_text())["metadata"]["wall_time"] == "1 s"
    meta.write_text("[1, 2]")
    assert main(["export", str(out), str(tmp_path / "x"), "--metadata", str(meta)]) == 2
    assert "--metadata" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    # file-system refusals are user errors too: one line, exit 2, no traceback
    assert main(["export", str(out), str(tmp_path / "w")]) == 2  # exists (no --overwrite)
    err = capsys.readouterr().err
    assert "pass --overwrite to replace the weight set" in err and len(err.strip().splitlines()) == 1
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "notes.txt").write_text("keep")
    assert main(["export", str(out), str(victim), "--overwrite"]) == 2  # not a weight set: kept
    err = capsys.readouterr().err
    assert "is not a weight set" in err and len(err.strip().splitlines()) == 1
    assert (victim / "notes.txt").read_text() == "keep" and (victim / "sub").is_dir()
    (tmp_path / "afile").write_text("x")
    assert main(["export", str(out), str(tmp_path / "afile" / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vganzoo export: error:") and "Traceback" not in err


def test_a_damaged_newest_checkpoint_is_skipped(run, tmp_path):
    import shutil

    out, _ = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    newest = copy / "checkpoints" / "ckpt-00000003.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match="skipping damaged checkpoint"):
        _model, info = model_from_checkpoint(copy)
    assert info["step"] == 2
    with pytest.raises(ckpt.CheckpointError, match="damaged"):
        model_from_checkpoint(newest)  # asked for by name: an error, not a silent fallback


def test_cli_generator_choices_match_the_api():
    from vganzoo.cli import build_parser
    from vganzoo.train.export import GENERATOR_CHOICES

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    export = sub.choices["export"]
    generator = next(a for a in export._actions if a.dest == "generator")
    assert tuple(generator.choices) == GENERATOR_CHOICES  # kept literal so the parser does not import torch
