"""The bundled digits classifier and the offline quality check built on it."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

import vganzoo
from vganzoo.data import MovingDigits
from vganzoo.metrics import evaluate
from vganzoo.metrics.digits import (
    BUNDLED_DIR,
    NO_DIGIT,
    NUM_CLASSES,
    DigitScores,
    load_digits_classifier,
    trajectory_statistics,
)
from vganzoo.metrics.frechet import frechet_distance

# the shipped weights must stay small (the issue allows a few hundred KB)
REPO = Path(__file__).resolve().parents[2]
MAX_WEIGHTS_BYTES = 400_000
EVAL_SEED = 123  # clips the classifier never saw (it trained on seed 0, split train)


@pytest.fixture(scope="module")
def scorer():
    return load_digits_classifier()


def real_clips(resolution, count=40, channels=1):
    ds = MovingDigits(
        num_digits=1,
        resolution=resolution,
        frames=16,
        length=count,
        seed=EVAL_SEED,
        channels=channels,
        split="test",
    )
    items = [ds[i] for i in range(count)]
    return torch.stack([it["video"] for it in items]), torch.stack([it["label"] for it in items])


def test_bundled_weights_are_small_pinned_and_documented(scorer):
    weights = BUNDLED_DIR / "model.safetensors"
    assert weights.stat().st_size <= MAX_WEIGHTS_BYTES
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    card = json.loads((BUNDLED_DIR / "config.json").read_text())
    assert scorer.sha256 == digest == card["weights_sha256"]
    assert f"{digest}  model.safetensors" in (BUNDLED_DIR / "SHA256SUMS").read_text()
    assert card["training"]["command"].startswith("python -m vganzoo.metrics.train_digits_classifier")
    assert card["training"]["wall_time_s"] > 0 and card["test_accuracy"] >= 0.95


@pytest.mark.parametrize("resolution", [32, 64])
def test_classifier_reads_real_digits(scorer, resolution):
    videos, labels = real_clips(resolution)
    features, probs = scorer(videos)
    assert features.shape == (40, 16, 64) and probs.shape == (40, 16, NUM_CLASSES)
    accuracy = (probs.argmax(-1) == labels[:, None]).float().mean()
    assert accuracy >= 0.95
    scores = DigitScores()
    scores.update(features, probs)
    result = scores.result()
    assert (
        result["frame_score"] >= 0.9
        and result["identity_consistency"] >= 0.85
        and result["digit_frame_rate"] >= 0.95
    )
    assert (
        result["identity_agreement"] >= result["identity_consistency"]
        and result["identity_agreement"] >= 0.95
    )


def test_rgb_input_is_averaged_to_gray(scorer):
    gray, _ = real_clips(32, count=6)
    rgb, _ = real_clips(32, count=6, channels=3)
    torch.testing.assert_close(scorer(rgb)[1], scorer(gray)[1])


def test_noise_is_not_called_a_digit(scorer):
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(20, 1, 16, 32, 32, generator=gen) * 2 - 1
    blank = -torch.ones(4, 1, 16, 32, 32)
    for videos in (noise, blank):
        scores = DigitScores()
        scores.update(*scorer(videos))
        result = scores.result()
        assert result["frame_score"] < 0.5 and result["digit_frame_rate"] < 0.2


def test_digit_scores_by_hand():
    # 2 clips x 3 frames: clip 0 always digit 3 (consistent), clip 1 flips 3 -> 5 and one "no digit" frame
    probs = torch.zeros(2, 3, NUM_CLASSES)
    probs[0, :, 3] = 0.8
    probs[0, :, NO_DIGIT] = 0.2
    probs[1, 0, 3] = 1.0
    probs[1, 1, 5] = 0.6
    probs[1, 1, 3] = 0.4
    probs[1, 2, NO_DIGIT] = 0.7
    probs[1, 2, 5] = 0.3
    scores = DigitScores()
    scores.update(torch.randn(2, 3, 4), probs)
    result = scores.result()
    assert result["frame_score"] == pytest.approx((0.8 * 3 + 1.0 + 0.6 + 0.3) / 6)
    assert result["identity_consistency"] == 0.5
    # clip 1's digits over 0-9 are 3, 5, 5 (the "no digit" frame still ranks 5 first): majority 5, 2 of 3
    assert result["identity_agreement"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert result["digit_frame_rate"] == pytest.approx(5 / 6)
    assert result["digit_histogram"][3] == 0.5 and result["digit_histogram"][5] == 0.5


def test_trajectory_statistics_known_values():
    frames = 5
    video = -torch.ones(1, 1, frames, 32, 32)
    for t in range(frames):
        video[0, 0, t, 10, 3 + t] = 1.0  # one bright pixel moving right by 1 px per frame
    speed, accel, spread = trajectory_statistics(video)[0].tolist()
    assert speed == pytest.approx(1.0, abs=1e-4) and accel == pytest.approx(0.0, abs=1e-4)
    assert spread == pytest.approx(((frames**2 - 1) / 12) ** 0.5, abs=1e-4)
    bounce = video.clone()
    bounce[0, 0, 3:] = video[0, 0, 0:2].flip(0)  # x = 3 4 5 4 3: velocity 1 1 -1 -1, acceleration 0 -2 0
    assert trajectory_statistics(bounce)[0, 1].item() == pytest.approx((4 / 3) ** 0.5, abs=1e-4)


def test_fvd_digits_sees_motion(scorer):
    videos, _ = real_clips(32, count=64)
    reference, _ = real_clips(32, count=128)
    reference = reference[64:]

    def stats(x):
        scores = DigitScores()
        scores.update(*scorer(x), scorer.motion(x))
        return scores.stats

    ref = stats(reference)
    floor = frechet_distance(stats(videos), ref)
    static = frechet_distance(stats(videos[:, :, :1].expand_as(videos)), ref)
    shuffled = frechet_distance(
        stats(videos[:, :, torch.randperm(16, generator=torch.Generator().manual_seed(0))]), ref
    )
    assert static > 5 * floor and shuffled > 5 * floor


def test_tampered_weights_are_refused(tmp_path):
    folder = tmp_path / "dc"
    shutil.copytree(BUNDLED_DIR, folder)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match"):
        load_digits_classifier(folder)
    with pytest.raises(FileNotFoundError, match="train_digits_classifier"):
        load_digits_classifier(tmp_path / "empty")


def test_digits_metrics_end_to_end():
    from test_metrics_eval import TEST_MODEL  # registers the tiny test model

    torch.manual_seed(0)
    model = vganzoo.create(TEST_MODEL, resolution=32, frames=16)
    result = evaluate(model, "moving-digits", ["fvd-digits", "consistency"], n=12, frames=16, batch_size=6)
    scores, real = result["scores"], result["real_scores"]
    assert set(scores) >= {
        "fvd_digits",
        "frame_score",
        "identity_consistency",
        "identity_agreement",
        "digit_frame_rate",
        "digit_histogram",
    }
    # a random generator makes noise: far from real clips, which are close to each other
    assert scores["fvd_digits"] > 4 * real["fvd_digits"]
    assert real["frame_score"] > 0.9 > scores["frame_score"]
    proto = result["protocol"]
    assert proto["digits_classifier"]["sha256"] == load_digits_classifier().sha256
    assert (proto["n_generated"], proto["n_real"], proto["data_split"]) == (12, 12, "test")


def test_training_script_smoke(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from train_digits_classifier import main

    out = tmp_path / "dc"
    threads = torch.get_num_threads()  # the script sets its own thread count
    try:
        assert (
            main(
                [
                    "--out",
                    str(out),
                    "--steps",
                    "2",
                    "--train-clips",
                    "3",
                    "--frames-per-clip",
                    "2",
                    "--test-clips",
                    "2",
                    "--test-negatives",
                    "8",
                    "--batch-size",
                    "8",
                ]
            )
            == 0
        )
    finally:
        torch.set_num_threads(threads)
    card = json.loads((out / "config.json").read_text())
    assert card["training"]["steps"] == 2 and "--steps 2" in card["training"]["command"]
    assert load_digits_classifier(out).sha256 == card["weights_sha256"]
