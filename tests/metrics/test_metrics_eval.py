"""End-to-end evaluation on tiny data with a random extractor: evaluate() and `vganzoo eval`."""

import hashlib
import json

import pytest
import torch
from torch import nn

import vganzoo
from vganzoo.cli import main
from vganzoo.metrics import (
    FeatureStats,
    TinyVideoCNN,
    build_extractor,
    evaluate,
    frechet_distance,
    save_extractor,
)
from vganzoo.models.base import VideoGAN

TEST_MODEL = "metrics-test-gan"
LATENT = 8


class TinyGenerator(nn.Module):
    """z -> (N, C, T, H, W) through one linear layer and tanh."""

    def __init__(self, *, resolution: int, frames: int, channels: int, num_classes: int = 0) -> None:
        super().__init__()
        self.resolution, self.frames, self.channels, self.num_classes = (
            resolution,
            frames,
            channels,
            num_classes,
        )
        self.to_video = nn.Linear(LATENT, channels * frames * resolution * resolution)

    def sample_latents(self, n, *, generator, labels=None):
        return {"z": torch.randn(n, LATENT, generator=generator)}

    def forward(self, z):
        return (
            self.to_video(z)
            .tanh()
            .view(z.shape[0], self.channels, self.frames, self.resolution, self.resolution)
        )


@vganzoo.register_model(
    TEST_MODEL, family="test", default_config={"resolution": 16, "frames": 4, "channels": 1}, overwrite=True
)
def _build(*, resolution, frames, channels):
    return VideoGAN(TinyGenerator(resolution=resolution, frames=frames, channels=channels))


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return vganzoo.create(TEST_MODEL)


@pytest.fixture()
def real():
    gen = torch.Generator().manual_seed(1)
    return torch.rand(12, 1, 4, 16, 16, generator=gen) * 2 - 1


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return TinyVideoCNN(width=4, feature_dim=6).eval()


def test_fvd_matches_a_manual_computation(model, real, tiny):
    result = evaluate(model, real, "fvd", n=12, frames=4, extractor=tiny, batch_size=5, seed=3)
    # by hand: the same seeds per batch, the same extractor, one FeatureStats each
    gen_stats, real_stats = FeatureStats(), FeatureStats()
    with torch.no_grad():
        for index, size in enumerate([5, 5, 2]):
            gen_stats.update(tiny(model.sample(size, seed=3 + index).expand(-1, 3, -1, -1, -1)))
        real_stats.update(tiny(real.expand(-1, 3, -1, -1, -1)))
    assert result["scores"]["fvd"] == pytest.approx(frechet_distance(gen_stats, real_stats), rel=1e-9)
    proto = result["protocol"]
    assert (proto["n_generated"], proto["n_real"], proto["frames"], proto["stride"], proto["resolution"]) == (
        12,
        12,
        4,
        1,
        16,
    )
    assert proto["extractor"]["name"] == "TinyVideoCNN" and proto["seed"] == 3
    assert proto["vganzoo_version"] == vganzoo.__version__ and proto["model"]["name"] == TEST_MODEL
    json.dumps(result)  # JSON-able


def test_fvd_reproducible_and_zero_for_identical_sets(model, real, tiny):
    a = evaluate(model, real, "fvd", n=8, n_real=12, frames=4, extractor=tiny, seed=0)
    b = evaluate(model, real, "fvd", n=8, n_real=12, frames=4, extractor=tiny, seed=0)
    c = evaluate(model, real, "fvd", n=8, n_real=12, frames=4, extractor=tiny, seed=1)
    assert a["scores"] == b["scores"] and a["scores"] != c["scores"]
    same = evaluate(real, real, "fvd", n=12, frames=4, extractor=tiny)
    assert same["scores"]["fvd"] == pytest.approx(0.0, abs=1e-9)
    assert a["scores"]["fvd"] > 1e-6


def test_frames_and_stride_select_the_clip(real, tiny):
    long = torch.rand(6, 1, 9, 16, 16) * 2 - 1
    strided = evaluate(long, long, "fvd", n=6, frames=3, stride=4, extractor=tiny)
    assert strided["protocol"]["generated_shape"] == [1, 3, 16, 16]
    assert strided["scores"]["fvd"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 9 frames for frames=5, stride=2"):
        evaluate(real, real, "fvd", n=6, frames=5, stride=2, extractor=tiny)


def test_real_stride_matches_the_training_speed(model, tiny):
    real = torch.rand(6, 1, 8, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    generated = real[:, :, ::2].clone()  # a "model" trained on every 2nd frame
    matched = evaluate(generated, real, "fvd", n=6, frames=4, real_stride=2, extractor=tiny)
    assert matched["scores"]["fvd"] == pytest.approx(0.0, abs=1e-9)
    assert matched["protocol"]["real_stride"] == 2 and matched["protocol"]["real_frame_step"] == 2
    both = evaluate(generated, real, "fvd", n=6, frames=2, stride=2, real_stride=2, extractor=tiny)
    assert both["protocol"]["real_frame_step"] == 4  # real frames 0 and 4 = generated frames 0 and 2
    assert both["scores"]["fvd"] == pytest.approx(0.0, abs=1e-9)
    plain = evaluate(generated, real, "fvd", n=6, frames=4, extractor=tiny)
    assert plain["protocol"]["real_stride"] == 1 and plain["scores"]["fvd"] > 1e-6
    model.recipe = {"frame_stride": 2}  # the default follows the model's recipe
    assert evaluate(model, real, "fvd", n=6, frames=4, extractor=tiny)["protocol"]["real_stride"] == 2
    with pytest.raises(ValueError, match="real_stride"):
        evaluate(generated, real, "fvd", n=6, frames=4, real_stride=0, extractor=tiny)


def test_real_statistics_cache(tmp_path, model, real, tiny):
    cache = tmp_path / "real.safetensors"
    first = evaluate(model, real, "fvd", n=8, n_real=12, frames=4, extractor=tiny, real_stats=cache)
    assert cache.exists() and first["protocol"]["real_stats"]["written"]
    again = evaluate(model, None, "fvd", n=8, frames=4, extractor=tiny, real_stats=cache)
    assert again["scores"] == first["scores"] and again["protocol"]["n_real"] == 12
    as_data = evaluate(model, str(cache), "fvd", n=8, frames=4, extractor=tiny)
    assert as_data["scores"] == first["scores"]
    with pytest.raises(ValueError, match="another protocol.*frames"):
        evaluate(model, real, "fvd", n=8, frames=3, extractor=tiny, real_stats=cache)
    other = TinyVideoCNN(width=4, feature_dim=6)
    path = tmp_path / "other.safetensors"
    save_extractor(other, path, "tiny-3dcnn", {"width": 4, "feature_dim": 6})
    with pytest.raises(ValueError, match="extractor_sha256"):
        evaluate(model, real, "fvd", n=8, frames=4, extractor=str(path), real_stats=cache)


def test_real_statistics_cache_remembers_the_data(tmp_path, tiny):
    generated = torch.rand(8, 3, 4, 16, 16) * 2 - 1
    cache = tmp_path / "digits.safetensors"
    evaluate(generated, "moving-digits", "fvd", n=8, frames=4, extractor=tiny, real_stats=cache)
    with pytest.raises(
        ValueError, match="another protocol.*data: cached 'moving-digits' vs now 'moving-shapes'"
    ):
        evaluate(generated, "moving-shapes", "fvd", n=8, frames=4, extractor=tiny, real_stats=cache)


def test_videos_outside_minus_one_one_are_refused(real, tiny):
    generated = torch.rand(6, 3, 4, 16, 16) * 2 - 1
    with pytest.raises(
        ValueError, match=r"generated videos must be in \[-1, 1\], got values in \[0, 25\d\].*127.5"
    ):
        evaluate((generated + 1) * 127.5 // 1, real, "fvd", n=6, frames=4, extractor=tiny)
    with pytest.raises(ValueError, match=r"real videos must be in \[-1, 1\]"):
        evaluate(generated, real * 3, "fvd", n=6, frames=4, extractor=tiny)


def test_inception_score_pipeline(model, real, tiny):
    result = evaluate(model, real, "is", n=12, frames=4, extractor=tiny, splits=3)
    assert result["scores"]["is_mean"] >= 1.0 and result["scores"]["is_std"] >= 0
    assert result["real_scores"]["is_mean"] >= 1.0
    assert result["protocol"]["is_splits"] == 3
    assert "is_mean" in evaluate(model, None, "is", n=6, frames=4, extractor=tiny, splits=2)["scores"]


class ExplodingModel(nn.Module):
    def sample(self, *args, **kwargs):
        raise AssertionError("must not sample before the arguments are checked")


def test_bad_arguments_fail_before_sampling(real, tiny):
    bomb = ExplodingModel()
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        evaluate(bomb, real, "fvd", n=1, frames=4, extractor=tiny)
    with pytest.raises(ValueError, match="metric must be one or more of"):
        evaluate(bomb, real, "kid", n=4, frames=4, extractor=tiny)
    with pytest.raises(ValueError, match="--extractor"):
        evaluate(bomb, real, "fvd", n=4, frames=4)
    with pytest.raises(ValueError, match="data is required"):
        evaluate(bomb, None, "fvd", n=4, frames=4, extractor=tiny)
    i3d = build_extractor("i3d")
    with pytest.raises(ValueError, match="i3d needs at least 9 frames per clip, got frames=8"):
        evaluate(bomb, real, "fvd", n=4, frames=8, extractor=i3d)


def test_not_enough_real_clips(model, real, tiny):
    with pytest.raises(ValueError, match="real data has 12 clips but 20 are needed"):
        evaluate(model, real, "fvd", n=20, frames=4, extractor=tiny)


def test_resolution_mismatch_is_reported(model, tiny):
    real32 = torch.zeros(4, 1, 4, 32, 32)
    with pytest.raises(ValueError, match=r"real clips are \(32, 32\) but generated clips \(16, 16\)"):
        evaluate(model, real32, "fvd", n=4, frames=4, extractor=tiny)


# ---------------------------------------------------------------- the command line


@pytest.fixture()
def tiny_file(tmp_path, tiny):
    path = tmp_path / "tiny.safetensors"
    save_extractor(tiny, path, "tiny-3dcnn", {"width": 4, "feature_dim": 6})
    return path


def test_cli_eval_end_to_end(tmp_path, tiny_file, capsys):
    out = tmp_path / "scores.json"
    args = [
        "eval",
        TEST_MODEL,
        "--random-weights",
        "--data",
        "moving-digits",
        "--metric",
        "fvd",
        "--extractor",
        str(tiny_file),
        "--n",
        "6",
        "--frames",
        "4",
        "--batch-size",
        "3",
        "--seed",
        "5",
        "--out",
        str(out),
        "--no-progress",
        "--config",
        "frames=6",
    ]
    assert main(args) == 0
    result = json.loads(out.read_text())
    proto = result["protocol"]
    assert result["scores"]["fvd"] > 0
    assert proto["extractor"]["sha256"] == hashlib.sha256(tiny_file.read_bytes()).hexdigest()
    assert proto["extractor"]["source"] == str(tiny_file)
    assert (proto["data"], proto["data_split"], proto["n_real"], proto["seed"]) == (
        "moving-digits",
        "test",
        6,
        5,
    )
    assert proto["model"]["random_weights"] is True and proto["model"]["config"]["frames"] == 6
    assert "fvd" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, tiny_file, capsys):
    legacy = tmp_path / "i3d.pt"
    torch.save({"w": torch.zeros(1)}, legacy)
    base = [
        "eval",
        TEST_MODEL,
        "--random-weights",
        "--data",
        "moving-digits",
        "--n",
        "4",
        "--frames",
        "4",
        "--no-progress",
    ]
    assert main([*base, "--extractor", str(legacy)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "legacy PyTorch checkpoint" in err
    assert main([*base, "--extractor", str(tiny_file), "--n", "1"]) == 2
    assert "n must be an int >= 2" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                TEST_MODEL,
                "--data",
                "moving-digits",
                "--extractor",
                str(tiny_file),
                "--n",
                "4",
                "--no-progress",
            ]
        )
        == 2
    )
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main([*base, "--extractor", str(tiny_file), "--config", "frames"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    for out, what in [(tmp_path, "is a folder"), (tmp_path / "afile" / "s.json", "is a file, not a folder")]:
        assert main([*base, "--extractor", str(tiny_file), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "--out: " in err and what in err


def test_cli_constants_match_the_api():
    from vganzoo.cli import eval as cli_eval
    from vganzoo.metrics import evaluation as api

    assert cli_eval.METRICS == api.METRICS
    assert (cli_eval.DEFAULT_N, cli_eval.DEFAULT_FRAMES) == (api.DEFAULT_N, api.DEFAULT_FRAMES)


def test_cli_digits_check_prints_real_scores_beside(tmp_path, capsys):
    out = tmp_path / "digits.json"
    args = [
        "eval",
        TEST_MODEL,
        "--random-weights",
        "--config",
        "resolution=32",
        "--data",
        "moving-digits",
        "--metric",
        "fvd-digits,consistency",
        "--n",
        "6",
        "--frames",
        "4",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "fvd_digits" in printed and "frame_score" in printed and "(real data:" in printed
    result = json.loads(out.read_text())
    assert (
        result["protocol"]["metrics"] == ["fvd-digits", "consistency"]
        and result["protocol"]["resolution"] == 32
    )
    assert result["real_scores"]["frame_score"] > result["scores"]["frame_score"]


def test_random_weights_baseline_of_a_saved_folder(tmp_path):
    from vganzoo.hub import load_or_create

    torch.manual_seed(0)
    trained = vganzoo.create(TEST_MODEL, frames=6)
    folder = vganzoo.save_pretrained(trained, tmp_path / "w")
    for name in (f"local-dir:{folder}", str(folder)):
        baseline, pretrained = load_or_create(name, random_weights=True)
        assert not pretrained
        assert baseline.config == trained.config  # the saved architecture, not the default one
        assert not torch.equal(baseline.generator.to_video.weight, trained.generator.to_video.weight)


def test_argument_messages_name_what_the_user_passed(model, real, tiny):
    with pytest.raises(TypeError, match="extractor: expected a safetensors file.*got function"):
        evaluate(model, real, "fvd", n=4, frames=4, extractor=lambda v: v.flatten(1))
    with pytest.raises(ValueError, match=r"n \(n_real defaults to it\)"):
        evaluate(model, real, "consistency", n=1, frames=4)
