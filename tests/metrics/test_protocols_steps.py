"""The protocols' steps one by one: each test fails if its step (uint8 quantisation, clip sampling,
frame subsampling, resizing) is skipped or reordered, and shows that the alternative differs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from protocol_fixtures import (
    ProbeI3DScript,
    TinyC3DScript,
    TinyI3DScript,
    save_script,
    tiny_model,
    write_frame_folder,
)

from vganzoo.metrics import evaluate_protocol
from vganzoo.metrics import protocol_math as pm
from vganzoo.metrics.c3d import preprocess_tgan2_c3d
from vganzoo.metrics.detectors import Detector
from vganzoo.metrics.protocols import PROTOCOLS
from vganzoo.metrics.realclips import list_real_videos, sample_clips

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def detector_inputs(monkeypatch):
    """Every batch the protocol hands its detector, in order."""
    seen: list[torch.Tensor] = []
    original = Detector.__call__

    def spy(self, batch):
        seen.append(batch.detach().cpu().clone())
        return original(self, batch)

    monkeypatch.setattr(Detector, "__call__", spy)
    return seen


@pytest.fixture
def probe(tmp_path):
    return save_script(ProbeI3DScript(), tmp_path / "probe.pt")


# ---------------------------------------------------------------- quantisation


def test_stylegan_v_quantisation_truncates_before_the_detector(tmp_path, probe, detector_inputs):
    values = torch.tensor([-1.0, -0.999, -0.5, 0.0, 0.00863, 0.5, 1.0])  # * 127.5 + 128: 0.5 ... 255.5
    videos = values.repeat(4 * 3 * 16 * 4 * 4 // len(values) + 1)[: 4 * 3 * 16 * 4 * 4].view(4, 3, 16, 4, 4)
    root = write_frame_folder(tmp_path / "data", [16] * 4, size=4)
    evaluate_protocol(
        videos,
        root,
        "stylegan-v-fvd16",
        detector=probe,
        n_generated=4,
        n_real=4,
        batch_size=4,
        real_cache="off",
    )
    fed = detector_inputs[0]
    expected = (videos * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    assert fed.dtype == torch.uint8 and torch.equal(fed, expected)
    assert expected.flatten()[:7].tolist() == [0, 0, 64, 128, 129, 191, 255]
    truncated = pm.quantise_videogpt(videos)  # (x + 1) / 2 * 255 truncated: 0, 0, 63, 127, 128, 191, 255
    assert not torch.equal(fed, truncated)


def test_videogpt_quantisation_truncates():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.003, 0.5, 1.0]).view(1, 1, 6, 1, 1)
    q = pm.quantise_videogpt(x)
    assert q.flatten().tolist() == [0, 63, 127, 127, 191, 255]  # (x + 1) / 2 * 255 truncated
    assert pm.quantise_stylegan_v(x).flatten().tolist() == [0, 64, 128, 128, 191, 255]  # another formula


def test_gray_models_are_quantised_then_repeated_to_rgb(tmp_path, probe, detector_inputs):
    model = tiny_model(channels=1, resolution=4)
    root = write_frame_folder(tmp_path / "data", [16] * 3, size=4, channels=1)
    evaluate_protocol(
        model,
        root,
        "stylegan-v-fvd16",
        detector=probe,
        n_generated=3,
        n_real=3,
        batch_size=3,
        real_cache="off",
    )
    generated, real = detector_inputs
    expected = pm.quantise_stylegan_v(model.sample(3, seed=0))
    assert generated.shape[1] == 3 and torch.equal(generated, expected.repeat(1, 3, 1, 1, 1))
    assert real.shape[1] == 3 and torch.equal(real[:, 0], real[:, 2])  # gray frames read 1-channel, repeated


# ---------------------------------------------------------------- generated clips: start and subsampling


def test_generated_frames_start_at_zero_and_are_subsampled(tmp_path, probe, detector_inputs):
    frames = 130
    t = torch.arange(frames, dtype=torch.float32)
    videos = ((t / 127.5) - 1).view(1, 1, frames, 1, 1).expand(2, 3, frames, 4, 4).clone()  # quantised: t
    videos = videos.clamp(-1, 1)
    root = write_frame_folder(tmp_path / "data", [128, 129], size=4)
    evaluate_protocol(
        videos,
        root,
        "stylegan-v-fvd128-subsample8f",
        detector=probe,
        n_generated=2,
        n_real=2,
        batch_size=2,
        real_cache="off",
    )
    fed = detector_inputs[0]
    assert fed.shape[2] == 16
    assert fed[0, 0, :, 0, 0].tolist() == list(range(0, 128, 8))  # t = 0, 8, ..., 120


def test_a_model_with_too_few_frames_is_refused(tmp_path):
    root = write_frame_folder(tmp_path / "data", [130, 130], size=4)
    detector = save_script(TinyI3DScript(), tmp_path / "i3d.pt")
    with pytest.raises(
        ValueError, match=r"stylegan-v-fvd128 needs generated clips of at least 128 frames .* makes 16"
    ):
        evaluate_protocol(
            tiny_model(resolution=4), root, "stylegan-v-fvd128", detector=detector, n_generated=2, n_real=2
        )


# ---------------------------------------------------------------- real clips: order, dropping, offsets


def _numbered_folder(root, lengths: dict[str, int]):
    """Frames f1.png, f2.png, ... (unpadded: string order differs from natural order); red = frame
    number, green = the video's number."""
    for name, length in lengths.items():
        (root / name).mkdir(parents=True)
        for t in range(1, length + 1):
            pixels = np.zeros((4, 4, 3), dtype=np.uint8)
            pixels[..., 0], pixels[..., 1] = t, int(name[1:])
            Image.fromarray(pixels).save(root / name / f"f{t}.png")
    return root


@pytest.mark.parametrize(
    ("protocol", "step"), [("stylegan-v-fvd16", 1), ("stylegan-v-fvd128-subsample8f", 8)]
)
def test_real_clips_follow_stylegan_v_sampling(tmp_path, probe, detector_inputs, protocol, step):
    span = 16 * step
    lengths = {"v1": span + 4, "v10": span + 9, "v2": span - 1, "v3": span + 2}  # v2 is too short
    root = _numbered_folder(tmp_path / "data", lengths)
    seed = 7
    evaluate_protocol(
        tiny_model(resolution=4, frames=121 if step > 1 else 16),
        root,
        protocol,
        detector=probe,
        n_generated=3,
        n_real=3,
        batch_size=3,
        seed=seed,
        real_cache="off",
    )
    real = detector_inputs[1]
    rng = np.random.default_rng([seed, 1])
    for clip, name in zip(real, ["v1", "v10", "v3"]):  # string order, the short v2 dropped
        length = lengths[name]
        order = sorted(f"f{t}.png" for t in range(1, length + 1))  # f1, f10, f11, ..., f2, ...
        offset = int(rng.integers(0, length - span + step))
        expected = [int(order[offset + k * step][1:-4]) for k in range(16)]
        assert clip[1, 0, 0, 0].item() == int(name[1:])
        assert clip[0, :, 0, 0].tolist() == expected


def test_windows_cover_every_clip_once():
    from vganzoo.metrics.realclips import RealListing, RealVideo

    videos = [RealVideo("a", None, 5, None), RealVideo("b", None, 3, None), RealVideo("c", None, 1, None)]
    listing = RealListing(None, None, videos, "x")
    draw = sample_clips(listing, mode="windows", frames=2, subsample=1, n=6, seed=0, protocol="videogpt-fvd")
    assert sorted((v.name, s) for v, s in draw.clips) == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("a", 3),
        ("b", 0),
        ("b", 1),
    ]
    assert draw.dropped == 1
    with pytest.raises(ValueError, match="gives 6 windows of 2 frames.*needs 7 real clips"):
        sample_clips(listing, mode="windows", frames=2, subsample=1, n=7, seed=0, protocol="videogpt-fvd")


def test_listing_layouts_and_order(tmp_path):
    root = tmp_path / "ucf"
    _numbered_folder(root / "train" / "ClassB", {"v3": 3})
    _numbered_folder(root / "train" / "ClassA", {"v10": 2, "v9": 2})
    _numbered_folder(root / "test", {"v2": 2})
    (root / "train" / ".hidden").mkdir()
    (root / "train" / "notes.json").write_text("{}")
    listing = list_real_videos(root, "train")
    assert [v.name for v in listing.videos] == ["ClassA/v10", "ClassA/v9", "ClassB/v3"]
    both = list_real_videos(root, "train+test")
    assert [v.name for v in both.videos] == ["ClassA/v10", "ClassA/v9", "ClassB/v3", "v2"]
    assert [p.name for p in listing.videos[-1].frames] == ["f1.png", "f2.png", "f3.png"]
    with pytest.raises(FileNotFoundError, match="split 'val': no folder"):
        list_real_videos(root, "val")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "test" / "loose.png")
    with pytest.raises(ValueError, match="holds image files directly"):
        list_real_videos(root, "test")


def test_fingerprint_sees_any_change_to_the_files(tmp_path):
    root = write_frame_folder(tmp_path / "data", [3, 3], size=4)
    first = list_real_videos(root, None).fingerprint
    assert list_real_videos(root, None).fingerprint == first
    frame = root / "video_01" / "frame_002.png"
    stat = frame.stat()
    import os

    os.utime(frame, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert list_real_videos(root, None).fingerprint != first


# ---------------------------------------------------------------- resizing


def test_videogpt_input_resizes_the_short_side_then_crops():
    clip = torch.randint(
        0, 256, (1, 3, 2, 6, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    out = pm.videogpt_input(clip)
    frames = clip[0].permute(1, 0, 2, 3).float() / 255.0  # (T, C, H, W)
    width = math.ceil(10 * 224 / 6)  # 374
    resized = F.interpolate(frames, size=(224, width), mode="bilinear", align_corners=False)
    left = (width - 224) // 2
    expected = resized[:, :, :, left : left + 224] - 0.5
    assert out.shape == (1, 3, 2, 224, 224)
    torch.testing.assert_close(out[0].permute(1, 0, 2, 3), expected, rtol=0, atol=0)
    crop_first = (
        F.interpolate(frames[:, :, :, 2:8], size=(224, 224), mode="bilinear", align_corners=False) - 0.5
    )
    assert (out[0].permute(1, 0, 2, 3) - crop_first).abs().max() > 1e-3  # the order matters
    squash = pm.tats_input(clip)  # TATS: no crop, aspect ratio not kept, [-1, 1]
    expected_tats = (
        2.0 * F.interpolate(clip[0].permute(1, 0, 2, 3).float(), size=(224, 224), mode="bilinear") / 255.0 - 1
    )
    torch.testing.assert_close(squash[0].permute(1, 0, 2, 3), expected_tats, rtol=0, atol=0)


def test_videogpt_real_clips_go_to_the_model_resolution_first():
    clip = torch.randint(
        0, 256, (3, 2, 12, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    small = pm.videogpt_real_uint8(clip, 8)
    frames = clip.permute(1, 0, 2, 3).float() / 255.0
    resized = F.interpolate(frames, size=(8, math.ceil(16 * 8 / 12)), mode="bilinear", align_corners=False)
    expected = (((resized[:, :, :, 1:9] - 0.5) + 0.5) * 255).to(torch.uint8).permute(1, 0, 2, 3)
    assert small.dtype == torch.uint8 and torch.equal(small, expected)
    direct = pm.videogpt_input(clip[None])  # skipping the resize to the model's resolution
    assert (pm.videogpt_input(small[None]) - direct).abs().max() > 1e-2


def test_tgan2_resizes_with_aligned_corners():
    videos = torch.rand(1, 3, 16, 9, 13, generator=torch.Generator().manual_seed(2)) * 2 - 1
    mean = torch.full((3, 16, 112, 112), 100.0)
    out = preprocess_tgan2_c3d(videos, mean)
    frames = videos[0].permute(1, 0, 2, 3) * 128
    aligned = F.interpolate(frames, size=(112, 112), mode="bilinear", align_corners=True) + 28
    torch.testing.assert_close(out[0].permute(1, 0, 2, 3), aligned, rtol=0, atol=1e-4)
    half_pixel = F.interpolate(frames, size=(112, 112), mode="bilinear", align_corners=False) + 28
    assert (out[0].permute(1, 0, 2, 3) - half_pixel).abs().max() > 1.0


# ---------------------------------------------------------------- runs, seeds, caches


def test_runs_give_mean_and_std_with_their_seeds(tmp_path):
    detector = save_script(TinyC3DScript(), tmp_path / "c3d.pt")
    model = tiny_model(resolution=6)
    result = evaluate_protocol(
        model, None, "stylegan-v-is", detector=detector, n_generated=10, num_runs=3, seed=5
    )
    seeds = [r["seed"] for r in result["runs"]]
    assert seeds == [5, 1_000_005, 2_000_005] and result["protocol"]["generated"]["run_seeds"] == seeds
    alone = [
        evaluate_protocol(model, None, "stylegan-v-is", detector=detector, n_generated=10, num_runs=1, seed=s)
        for s in seeds
    ]
    means = [a["scores"]["is_mean"] for a in alone]
    assert [r["is_mean"] for r in result["runs"]] == means
    assert result["scores"]["is_mean"] == pytest.approx(np.mean(means), rel=1e-12)
    assert result["scores"]["is_std"] == pytest.approx(np.std(means), rel=1e-12)
    assert result["scores"]["is_std_over"] == "runs" and not result["protocol"]["counts"]["published"]


def test_stylegan_v_reuses_one_real_draw_across_runs(tmp_path):
    root = write_frame_folder(tmp_path / "data", [16, 17, 18], size=4)
    detector = save_script(TinyI3DScript(), tmp_path / "i3d.pt")
    result = evaluate_protocol(
        tiny_model(resolution=4),
        root,
        "stylegan-v-fvd16",
        detector=detector,
        n_generated=3,
        n_real=3,
        num_runs=2,
        real_cache="off",
    )
    data = result["protocol"]["data"]
    assert data["real_seeds"] == [0] and [r["real_seed"] for r in result["runs"]] == [0, 0]
    assert data["cache"]["reused_seeds"] == [0]  # the second run's real features are the first's
    assert result["runs"][0]["fvd"] != result["runs"][1]["fvd"]
    assert PROTOCOLS["videogpt-fvd"].real_per_run and not PROTOCOLS["stylegan-v-fvd16"].real_per_run


def test_automatic_cache_is_reused_and_never_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("VGANZOO_CACHE", str(tmp_path / "cache"))
    root = write_frame_folder(tmp_path / "data", [16, 17, 18], size=4)
    detector = save_script(TinyI3DScript(), tmp_path / "i3d.pt")
    model = tiny_model(resolution=4)
    run = lambda: evaluate_protocol(
        model, root, "stylegan-v-fvd16", detector=detector, n_generated=3, n_real=3
    )
    first, second = run(), run()
    assert second["scores"] == first["scores"]
    assert first["protocol"]["data"]["cache"]["reused_seeds"] == []
    assert second["protocol"]["data"]["cache"]["reused_seeds"] == [0]
    assert second["protocol"]["data"]["cache"]["path"].startswith(str(tmp_path / "cache"))
    write_frame_folder(tmp_path / "other", [16], size=4, seed=5)
    (tmp_path / "other" / "video_00" / "frame_003.png").replace(root / "video_01" / "frame_003.png")
    third = run()  # one frame changed: another key, computed afresh
    assert third["protocol"]["data"]["cache"]["reused_seeds"] == []
    assert third["scores"]["fvd"] != first["scores"]["fvd"]


def test_a_named_cache_that_does_not_match_is_an_error(tmp_path):
    root = write_frame_folder(tmp_path / "data", [16, 17, 18], size=4)
    detector = save_script(TinyI3DScript(), tmp_path / "i3d.pt")
    other = save_script(TinyI3DScript(seed=1), tmp_path / "other.pt")
    cache = tmp_path / "ucf-real.safetensors"
    common = dict(n_generated=3, n_real=3, real_cache=str(cache))
    model = tiny_model(resolution=4)
    evaluate_protocol(model, root, "stylegan-v-fvd16", detector=detector, **common)
    again = evaluate_protocol(model, root, "stylegan-v-fvd16", detector=detector, **common)
    assert again["protocol"]["data"]["cache"]["reused_seeds"] == [0]
    with pytest.raises(ValueError, match="was made with another detector_sha256"):
        evaluate_protocol(model, root, "stylegan-v-fvd16", detector=other, **common)
    (root / "video_02" / "frame_017.png").unlink()  # still long enough: only the fingerprint changes
    with pytest.raises(ValueError, match=r"ucf-real.safetensors was made from other data files"):
        evaluate_protocol(model, root, "stylegan-v-fvd16", detector=detector, **common)
