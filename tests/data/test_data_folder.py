"""VideoFolder on real files written with vganzoo.videoio: layouts, clip sampling, bad files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from vganzoo import videoio as vio
from vganzoo.data import VideoFolder, build_dataset, resize_center_crop

LEVEL_STEP = 8
RES = 16


def ramp(frames: int, height: int = RES, width: int = RES, first: int = 16) -> torch.Tensor:
    """(3, T, H, W) uint8 gray video whose frame t is the flat level first + LEVEL_STEP * t."""
    levels = first + LEVEL_STEP * torch.arange(frames, dtype=torch.uint8)
    return levels.view(1, frames, 1, 1).expand(3, frames, height, width).contiguous()


def write_frame_folder(folder, video: torch.Tensor) -> None:
    folder.mkdir(parents=True)
    for t in range(video.shape[1]):
        Image.fromarray(video[:, t].permute(1, 2, 0).numpy()).save(folder / f"img{t}.png")


@pytest.fixture()
def ucf_like(tmp_path):
    """root/<class>/<video>: 5 good clips (gif, mp4, frames, webm, avi), one corrupt, one too short."""
    root = tmp_path / "videos"
    vio.save_video(ramp(12), root / "a" / "v1.gif")
    vio.save_video(ramp(12, first=40), root / "a" / "v2.mp4")
    (root / "a" / "v3_corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    write_frame_folder(root / "b" / "clip1", ramp(10, first=24))
    vio.save_video(ramp(3), root / "b" / "v4_short.gif")
    vio.save_video(ramp(9, first=32), root / "b" / "v5.webm")
    vio.save_video(ramp(9, first=48), root / "b" / "v6.avi")
    (root / "b" / "readme.txt").write_text("not a video")
    # stray thumbnails beside videos / frame folders: the folders stay class folders
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(root / "a" / "thumb.jpg")
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(root / "b" / "cover.png")
    (root / "empty_class").mkdir()
    return root


def test_layout_classes_and_every_item_is_a_valid_clip(ucf_like):
    ds = VideoFolder(ucf_like, frames=8, resolution=RES, seed=0)
    assert ds.class_names == ["a", "b"] and ds.num_classes == 2 and ds.channels == 3
    names = [item.path.name for item in ds.items]
    assert names == ["v1.gif", "v2.mp4", "v3_corrupt.mp4", "clip1", "v4_short.gif", "v5.webm", "v6.avi"]
    with pytest.warns(RuntimeWarning, match="skipping") as record:
        items = [ds[i] for i in range(len(ds))]
    assert len(record) == 2 and ds.skipped == 2
    assert sorted(ds.skipped_files) == sorted(
        str(ucf_like / p) for p in ("a/v3_corrupt.mp4", "b/v4_short.gif")
    )
    assert "too short" in ds.skipped_files[str(ucf_like / "b" / "v4_short.gif")]
    for item in items:
        assert item["video"].shape == (3, 8, RES, RES) and item["video"].dtype == torch.float32
        assert item["video"].min() >= -1 and item["video"].max() <= 1
        assert item["label"].dtype == torch.int64 and item["label"].ndim == 0
    assert [int(item["label"]) for item in items] == [0, 0, 1, 1, 1, 1, 1]
    # a bad item is replaced by the next good one, deterministically
    assert torch.equal(items[2]["video"], items[3]["video"])
    assert torch.equal(items[4]["video"], items[5]["video"])
    # the decoded content is each file's own: its flat gray level is on the file's ramp
    firsts = {"v1.gif": 16, "v2.mp4": 40, "clip1": 24, "v5.webm": 32, "v6.avi": 48}
    for index, name in enumerate(names):
        if name in firsts:
            level = (items[index]["video"][:, 0].mean().item() + 1) / 2 * 255
            offset = (level - firsts[name]) / LEVEL_STEP
            assert -0.5 < offset < 12, (name, level)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # each bad file warns once
        assert torch.equal(ds[2]["video"], items[3]["video"]) and ds.skipped == 2


def test_scan_drops_bad_files_up_front(ucf_like):
    with pytest.warns(RuntimeWarning):
        ds = VideoFolder(ucf_like, frames=8, resolution=RES, scan=True)
    assert len(ds) == 5 and ds.skipped == 2
    assert [item.path.name for item in ds.items] == ["v1.gif", "v2.mp4", "clip1", "v5.webm", "v6.avi"]


def test_fixed_start_stride_and_gray_values(tmp_path):
    vio.save_video(ramp(20), tmp_path / "ramp.gif")
    ds = VideoFolder(tmp_path, frames=4, frame_stride=3, resolution=8, random_start=False, channels=1)
    assert ds.num_classes == 0
    item = ds[0]
    assert int(item["label"]) == -1 and item["video"].shape == (1, 4, 8, 8)
    span = (4 - 1) * 3 + 1
    start = (20 - span) // 2  # the middle of the video
    expected = (
        torch.tensor([16 + LEVEL_STEP * (start + 3 * k) for k in range(4)], dtype=torch.float32) / 255 * 2 - 1
    )
    assert torch.allclose(item["video"][0, :, 0, 0], expected, atol=1e-5)
    assert torch.allclose(item["video"], item["video"][:, :, :1, :1].expand_as(item["video"]))


def test_random_start_depends_on_seed_epoch_and_index_only(tmp_path):
    vio.save_video(ramp(30), tmp_path / "long.gif")
    first_level = lambda ds: round((float(ds[0]["video"][0, 0, 0, 0]) + 1) / 2 * 255)
    ds = VideoFolder(tmp_path, frames=2, resolution=8, seed=7)
    again = VideoFolder(tmp_path, frames=2, resolution=8, seed=7)
    assert first_level(ds) == first_level(again)
    starts = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        level = first_level(ds)
        assert (level - 16) % LEVEL_STEP == 0 and 0 <= (level - 16) // LEVEL_STEP <= 28
        starts.add(level)
    assert len(starts) > 1
    ds.set_epoch(3)
    again.set_epoch(3)
    assert first_level(ds) == first_level(again)


def test_resize_center_crop_keeps_the_middle():
    # 20x40 frame: the middle 20 columns are bright, the side bands dark
    video = -torch.ones(1, 2, 20, 40)
    video[..., 10:30] = 1
    out = resize_center_crop(video, 10)  # -> 10x20, middle 10 columns kept
    assert out.shape == (1, 2, 10, 10)
    assert torch.allclose(out[..., 1:-1], torch.ones(1, 2, 10, 8), atol=1e-5)
    up = resize_center_crop(torch.zeros(3, 1, 4, 6), 8)
    assert up.shape == (3, 1, 8, 8)


def test_non_square_videos_are_cropped(tmp_path):
    vio.save_video(ramp(9, height=12, width=24), tmp_path / "wide.mp4")
    ds = VideoFolder(tmp_path, frames=9, resolution=8)
    assert ds[0]["video"].shape == (3, 9, 8, 8)


def test_every_file_bad_raises_clearly(tmp_path):
    vio.save_video(ramp(2), tmp_path / "short.gif")
    ds = VideoFolder(tmp_path, frames=8, resolution=8)
    with (
        pytest.warns(RuntimeWarning),
        pytest.raises(ValueError, match="no file .* clip of 8 frames .*fewer --frames"),
    ):
        ds[0]
    strided = VideoFolder(tmp_path, frames=8, frame_stride=2, resolution=8)
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="clip of 15 frames .*frame_stride=1"):
        strided[0]


def test_train_on_a_folder_without_a_usable_clip_fails_before_writing(tmp_path, capsys):
    """A user error (exit 2, one line) raised before the run folder exists."""
    from vganzoo.cli import main

    vio.save_video(ramp(2), tmp_path / "data" / "short.gif")
    out = tmp_path / "run"
    args = [
        "train",
        "mocogan-rnn",
        "--data",
        str(tmp_path / "data"),
        "--resolution",
        "32",
        "--width",
        "0.125",
        "--out",
        str(out),
        "--no-progress",
        "--steps",
        "1",
    ]
    with pytest.warns(RuntimeWarning):
        assert main(args) == 2
    assert "no file" in capsys.readouterr().err
    assert not out.exists()


def test_bad_roots_and_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        VideoFolder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no videos"):
        VideoFolder(tmp_path)
    vio.save_video(ramp(4), tmp_path / "x.gif")
    with pytest.raises(ValueError, match="channels"):
        VideoFolder(tmp_path, channels=2)
    with pytest.raises(ValueError, match="frames"):
        VideoFolder(tmp_path, frames=0)
    with pytest.raises(FileNotFoundError, match="no videos"):
        VideoFolder(tmp_path, extensions=("mp4",))


def test_build_dataset_uses_the_split_subfolder(tmp_path):
    vio.save_video(ramp(8), tmp_path / "train" / "walk" / "t.gif")
    vio.save_video(ramp(8), tmp_path / "test" / "run" / "u.gif")
    train = build_dataset(str(tmp_path), resolution=8, frames=4, channels=1)
    test = build_dataset(tmp_path, resolution=8, frames=4, split="test", random_start=False)
    assert isinstance(train, VideoFolder) and train.class_names == ["walk"] and train.channels == 1
    assert test.class_names == ["run"] and test.channels == 3 and not test.random_start
    assert train[0]["video"].shape == (1, 4, 8, 8)


def test_frames_of_extreme_aspect_ratio_are_skipped_before_resizing(tmp_path, monkeypatch):
    """A 1x2000 frame scaled so its short side is the resolution would be 16x32000 per frame (a
    1x20000 one, gigabytes per clip): such files are skipped, as unreadable ones are."""
    from vganzoo.data import folder

    root = tmp_path / "videos"
    write_frame_folder(root / "thin", ramp(8, height=1, width=2000))
    write_frame_folder(root / "ok", ramp(8, height=RES, width=RES * 4))  # at the limit: kept
    ds = VideoFolder(root, frames=4, resolution=RES, seed=0)
    resized = []
    monkeypatch.setattr(folder, "resize_center_crop", lambda v, r: resized.append(v.shape) or v[..., :r, :r])
    with pytest.warns(RuntimeWarning, match=r"2000x1 are wider than 4:1"):
        items = [ds[i] for i in range(len(ds))]
    assert ds.skipped == 1 and all(item["video"].shape == (3, 4, RES, RES) for item in items)
    assert all(shape[-1] <= 4 * RES for shape in resized)
