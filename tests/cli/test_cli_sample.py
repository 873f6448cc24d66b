"""`vganzoo sample`, `vganzoo data preview` and the latent walk behind --interpolate."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from plugin_utils import registry_state_restored
from torch import nn

import vganzoo
from vganzoo import hub
from vganzoo import videoio as vio
from vganzoo.cli import main
from vganzoo.models.base import VideoGAN
from vganzoo.registry import PretrainedSpec
from vganzoo.sampling import interpolate, latent_walk

REPO = Path(__file__).resolve().parents[2]
TOY_PLUGIN = REPO / "examples" / "plugin-example"
RES, FRAMES = 8, 3


class ContentMotionGenerator(nn.Module):
    """Deterministic (no random weights) generator with named content and motion latents.

    Frame t of sample i is flat gray tanh(content mean + motion[t]); it records every call.
    """

    content_latents = ("content",)
    motion_latents = ("motion",)

    def __init__(
        self, *, resolution: int = RES, frames: int = FRAMES, channels: int = 1, num_classes: int = 3
    ):
        super().__init__()
        self.resolution, self.frames, self.channels, self.num_classes = (
            resolution,
            frames,
            channels,
            num_classes,
        )
        self.gain = nn.Parameter(torch.ones(()))
        self.calls: list[dict[str, torch.Tensor]] = []

    def sample_latents(self, n, *, generator, labels=None):
        if labels is None:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator)
        return {
            "content": torch.randn(n, 4, generator=generator),
            "motion": torch.randn(n, self.frames, generator=generator),
            "labels": labels,
        }

    def forward(self, content, motion, labels):
        self.calls.append({"content": content.clone(), "motion": motion.clone(), "labels": labels.clone()})
        level = torch.tanh(
            self.gain * (content.mean(1, keepdim=True) + motion + 0.1 * labels[:, None])
        )  # (N, T)
        return (
            level[:, None, :, None, None]
            .expand(-1, self.channels, -1, self.resolution, self.resolution)
            .contiguous()
        )


@pytest.fixture(scope="module", autouse=True)
def test_models():
    """Register the toy plugin model (imported directly) and two test models; undo it afterwards
    (registrations, plugin state, sys.path, modules), whether the example plugin is installed or not."""
    with registry_state_restored("vganzoo_toy"):
        sys.path.insert(0, str(TOY_PLUGIN))
        importlib.import_module("vganzoo_toy.models")  # registers "toy-gan"

        @vganzoo.register_model(
            "test-content-motion", family="test", default_config={"resolution": RES, "frames": FRAMES}
        )
        def content_motion(*, resolution, frames):
            return VideoGAN(ContentMotionGenerator(resolution=resolution, frames=frames))

        @vganzoo.register_model(
            "test-with-weights", family="test", default_config={}, pretrained=[PretrainedSpec("demo")]
        )
        def with_weights():
            return VideoGAN(ContentMotionGenerator())

        yield


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- latent walk ------------------------------------------------------------------------------
def test_interpolate_endpoints_and_norm():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 5, 7, generator=gen), torch.randn(2, 5, 7, generator=gen)
    for method in ("slerp", "lerp"):
        assert torch.allclose(interpolate(a, b, 0.0, method), a, atol=1e-6)
        assert torch.allclose(interpolate(a, b, 1.0, method), b, atol=1e-6)
    mid = interpolate(a, b, 0.5)
    expected_norm = (a.flatten(1).norm(dim=1) + b.flatten(1).norm(dim=1)) / 2
    assert torch.all(mid.flatten(1).norm(dim=1) > interpolate(a, b, 0.5, "lerp").flatten(1).norm(dim=1))
    assert torch.allclose(mid.flatten(1).norm(dim=1), expected_norm, rtol=0.1)
    assert torch.allclose(interpolate(a, a, 0.3), a, atol=1e-6)  # parallel vectors do not divide by zero
    with pytest.raises(ValueError, match="method"):
        interpolate(a, b, 0.5, "cubic")


def test_latent_walk_moves_content_then_motion():
    model = vganzoo.create("test-content-motion")
    gen = model.generator
    start = gen.sample_latents(1, generator=vganzoo.models.base.make_generator(5), labels=torch.tensor([2]))
    end = gen.sample_latents(1, generator=vganzoo.models.base.make_generator(6), labels=torch.tensor([2]))
    gen.calls.clear()
    videos, rows = latent_walk(model, 4, seed=5, labels=2)
    assert videos.shape == (8, 1, FRAMES, RES, RES) and rows == [
        "pair 0 (label 2): content walk, motion fixed",
        "pair 0 (label 2): motion walk, content fixed",
    ]
    (call,) = gen.calls
    content, motion = call["content"], call["motion"]
    assert torch.all(call["labels"] == 2)
    # row 0: content from seed 5 to seed 6, motion of seed 5 throughout
    assert torch.allclose(content[0], start["content"][0]) and torch.allclose(
        content[3], end["content"][0], atol=1e-6
    )
    assert all(torch.equal(motion[i], start["motion"][0]) for i in range(4))
    assert len({tuple(c.tolist()) for c in content[:4]}) == 4
    # row 1: motion walks, content fixed
    assert all(torch.equal(content[i], start["content"][0]) for i in range(4, 8))
    assert torch.allclose(motion[4], start["motion"][0]) and torch.allclose(
        motion[7], end["motion"][0], atol=1e-6
    )
    with pytest.raises(ValueError, match="steps"):
        latent_walk(model, 1)


def test_latent_walk_restores_mode_and_falls_back_to_all_latents():
    model = vganzoo.create("toy-gan", resolution=8, frames=2)
    model.generator.train()
    videos, rows = latent_walk(model, 3, seed=0, n=2)
    assert videos.shape == (6, 3, 2, 8, 8) and rows == [
        "pair 0: walk over all latents",
        "pair 1: walk over all latents",
    ]
    assert model.generator.training
    own = model.sample(2, seed=0)  # step 0 of each row is that pair's own sample
    assert torch.allclose(videos[0], own[0], atol=1e-6) and torch.allclose(videos[3], own[1], atol=1e-6)


# ---- vganzoo sample ---------------------------------------------------------------------------
def test_sample_writes_the_models_samples(tmp_path, capsys):
    out = tmp_path / "s.gif"
    with pytest.warns(UserWarning, match="no pretrained weights; using random weights"):  # the warning
        code, stdout, _ = run_cli(
            capsys,
            "sample",
            "test-content-motion",
            "--n",
            "4",
            "--seed",
            "3",
            "--out",
            str(out),
            "--device",
            "cpu",
        )
    assert code == 0 and out.exists()
    assert (
        str(out) in stdout
        and "random weights" in stdout
        and "(4, 1, 3, 8, 8)" in stdout
        and "seed 3" in stdout
    )
    expected, latents = vganzoo.create("test-content-motion").sample(4, seed=3, return_latents=True)
    assert str(latents["labels"].tolist()) in stdout
    back = vio.read_video(out)
    grid = vio.to_uint8(vio.make_grid(expected))
    assert back.shape == (FRAMES, grid.shape[2], grid.shape[3], 3)
    assert (back[..., 0].int() - grid[0].int()).abs().max() <= 1


def test_sample_label_mp4_and_interpolate(tmp_path, capsys):
    code, stdout, _ = run_cli(
        capsys, "sample", "test-content-motion", "--n", "2", "--label", "1", "--out", str(tmp_path / "l.mp4")
    )
    assert code == 0 and "labels [1, 1]" in stdout and vio.read_video(tmp_path / "l.mp4").shape[0] == FRAMES
    code, stdout, _ = run_cli(
        capsys, "sample", "test-content-motion", "--interpolate", "3", "--out", str(tmp_path / "i.gif")
    )
    assert code == 0 and "content walk" in stdout and "motion walk" in stdout
    assert vio.read_video(tmp_path / "i.gif").shape == (FRAMES, 2 * (RES + 2) + 2, 3 * (RES + 2) + 2, 3)
    assert "from seed 0 to 1;" in stdout  # one pair
    code, stdout, _ = run_cli(
        capsys, "sample", "test-content-motion", "--interpolate", "2", "--n", "3", "--seed", "4",
        "--out", str(tmp_path / "p.gif"),
    )  # fmt: skip
    # several pairs share the two seeds but not the videos: the summary says which video each walks
    assert code == 0 and "of 3 pairs, pair i from video i of seed 4's batch to video i of seed 5's" in stdout
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    assert "pair i walks from video i of SEED's batch" in " ".join(capsys.readouterr().out.split())


def test_sample_toy_plugin_model(tmp_path, capsys):
    code, stdout, _ = run_cli(
        capsys, "sample", "toy-gan", "--n", "3", "--resolution", "8", "--out", str(tmp_path / "toy.gif")
    )
    assert code == 0 and "(3, 3, 4, 8, 8)" in stdout and "labels none" in stdout


def test_names_with_weights_are_loaded_not_created(tmp_path, capsys, monkeypatch):
    loaded = []

    def fake_load(name, **kwargs):
        loaded.append(name)
        return vganzoo.create("test-content-motion")

    monkeypatch.setattr(hub.loading, "load", fake_load)
    for name in ("test-with-weights", "test-content-motion.digits", "local-dir:/some/folder"):
        code, stdout, stderr = run_cli(capsys, "sample", name, "--n", "1", "--out", str(tmp_path / "w.gif"))
        assert code == 0 and "pretrained weights" in stdout and "random weights" not in stdout + stderr
    assert loaded == ["test-with-weights", "test-content-motion.digits", "local-dir:/some/folder"]


def test_a_plain_folder_path_is_loaded_as_local_dir(tmp_path, capsys, monkeypatch):
    loaded = []
    monkeypatch.setattr(
        hub.loading, "load", lambda name, **kw: loaded.append(name) or vganzoo.create("test-content-motion")
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.run").mkdir()
    (tmp_path / "test-content-motion").mkdir()  # a folder named like a registered model: the model wins
    code, stdout, _ = run_cli(capsys, "sample", "my.run", "--n", "1", "--out", "a.gif")
    assert code == 0 and loaded == ["local-dir:my.run"] and "pretrained weights" in stdout
    code, stdout, _stderr = run_cli(capsys, "sample", "test-content-motion", "--n", "1", "--out", "b.gif")
    assert code == 0 and loaded == ["local-dir:my.run"] and "random weights" in stdout


def test_a_training_run_folder_points_at_its_model(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(hub.WeightsNotFoundError, match=r"training run.*local-dir:.*model.*vganzoo export"):
        vganzoo.load(f"local-dir:{run}")
    with pytest.raises(hub.WeightsNotFoundError, match="save_pretrained"):
        vganzoo.load(f"local-dir:{tmp_path}")


@pytest.mark.parametrize(
    "argv,message",
    [
        (["sample", "no-such-model"], "unknown model"),
        (["sample", "test-content-motion", "--out", "x.png"], "--out"),
        (["sample", "toy-gan", "--label", "1"], "unconditional"),
        (["sample", "test-content-motion", "--interpolate", "1"], "--interpolate"),
        (["sample", "test-content-motion", "--n", "0"], "--n"),
        (["sample", "test-with-weights"], "pretrained"),  # vganzoo.load is not implemented yet
        (["data", "preview", "no-such-data", "--out", "p.gif"], "unknown dataset"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    if argv[1] == "test-with-weights":
        monkeypatch.setattr(
            hub.loading, "load", lambda name, **kw: (_ for _ in ()).throw(NotImplementedError("not yet"))
        )
    code, _, stderr = run_cli(capsys, *argv)
    lines = [line for line in stderr.splitlines() if not line.startswith("warning:")]
    assert (
        code == 2
        and len(lines) == 1
        and lines[0].startswith(f"vganzoo {argv[0]}: error:")
        and message in lines[0]
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_command_line_process_exit_code(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "vganzoo", "sample", "no-such-model", "--out", str(tmp_path / "x.gif")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert (
        proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    )


# ---- vganzoo data preview ---------------------------------------------------------------------
def test_data_preview_writes_a_grid(tmp_path, capsys):
    out = tmp_path / "p.gif"
    code, stdout, _ = run_cli(
        capsys,
        "data",
        "preview",
        "moving-digits",
        "--out",
        str(out),
        "--n",
        "4",
        "--resolution",
        "32",
        "--frames",
        "6",
    )
    assert code == 0 and str(out) in stdout and "(4, 1, 6, 32, 32)" in stdout
    back = vio.read_video(out)
    assert back.shape == (6, 2 * 34 + 2, 2 * 34 + 2, 3)
    first = vganzoo.data.MovingDigits(resolution=32, frames=6)[0]["video"]
    assert torch.equal(back[:, 2 : 2 + 32, 2 : 2 + 32, 0], vio.to_uint8(first)[0])
    code, stdout, _ = run_cli(
        capsys,
        "data",
        "preview",
        "moving-shapes",
        "--out",
        str(tmp_path / "s.mp4"),
        "--n",
        "2",
        "--resolution",
        "16",
        "--frames",
        "4",
    )
    assert code == 0 and "(2, 3, 4, 16, 16)" in stdout


# ---- weights: pretrained by default, --random-weights on request; any length for MoCoGAN ----------
def test_random_weights_builds_the_architecture_of_a_name_with_weights(tmp_path, capsys):
    out = str(tmp_path / "s.gif")
    code, _, err = run_cli(capsys, "sample", "mocogan-rnn", "--resolution", "32", "--out", out)
    assert code == 2 and "--random-weights" in err  # the refusal names the way out
    code, stdout, _ = run_cli(
        capsys, "sample", "mocogan-rnn", "--random-weights", "--resolution", "32", "--n", "1", "--out", out
    )
    assert code == 0 and "(random weights)" in stdout and "(1, 3, 16, 32, 32)" in stdout


def test_pretrained_mocogan_samples_any_clip_length(tmp_path, capsys):
    """MoCoGAN's motion RNN runs any number of steps with the same weights: --frames is sampled."""
    out = str(tmp_path / "s.gif")
    code, stdout, _ = run_cli(
        capsys, "sample", "mocogan-rnn.digits", "--frames", "32", "--n", "1", "--out", out
    )
    assert code == 0 and "(pretrained weights)" in stdout and "(1, 1, 32, 32, 32)" in stdout
    assert vio.read_video(out).shape[0] == 32  # (T, H, W, 3): the file holds 32 frames
    code, _, err = run_cli(
        capsys, "sample", "mocogan-rnn.digits", "--frames", "8", "--interpolate", "3", "--out", out
    )
    assert code == 2 and "--interpolate" in err


def test_several_names_are_sampled_side_by_side_one_labelled_row_each(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "zoo.gif"
    argv = ["sample", "mocogan-rnn.digits", "tgan", "--random-weights", "--resolution", "32", "--n", "3"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "2 models side by side, 3 samples each with seed 0" in text
    assert "mocogan-rnn (random weights): videos (3, 1, 16, 32, 32)" in text
    assert "tgan (random weights): videos (3, 3, 16, 32, 32)" in text
    image = Image.open(out)
    assert image.n_frames == 16 and image.height == 2 * (32 + 2) + 2 and image.width > 3 * (32 + 2) + 2
    first = vganzoo.videoio.to_uint8(vganzoo.create("tgan", resolution=32).sample(3, seed=0))  # row 2
    frame = torch.tensor(list(image.convert("RGB").getdata()), dtype=torch.uint8)
    frame = frame.reshape(image.height, image.width, 3).permute(2, 0, 1)
    column = image.width - (3 * (32 + 2) + 2)
    assert (frame[:, 36:68, column + 2 : column + 34].float() - first[0, :, 0].float()).abs().max() <= 40
    for flag in (["--interpolate", "3"], ["--nrow", "2"]):
        assert main([*argv, *flag, "--out", str(tmp_path / "bad.gif")]) == 2
        assert "give one NAME" in capsys.readouterr().err
    assert not (tmp_path / "bad.gif").exists()
