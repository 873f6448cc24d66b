"""vganzoo.videoio: grids, GIF/MP4 writing (atomic), reading clips and frame folders."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vganzoo import videoio as vio


def gray_ramp_video(frames: int, height: int = 12, width: int = 14, step: int = 10) -> torch.Tensor:
    """(1, T, H, W) uint8 whose frame t is a flat gray level 20 + step * t (every frame differs)."""
    levels = 20 + step * torch.arange(frames, dtype=torch.uint8)
    return levels.view(1, frames, 1, 1).expand(1, frames, height, width).contiguous()


def moving_noise(n: int, channels: int, frames: int, size: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, frames, size, size, generator=gen) * 2 - 1


def no_temp_files(folder) -> bool:
    return not [p for p in folder.iterdir() if ".tmp" in p.name]


# ---- tensors ---------------------------------------------------------------------------------
def test_to_uint8_maps_range_ends_and_rejects_other_ranges():
    out = vio.to_uint8(torch.tensor([-1.0, 0.0, 1.0, 1.0 + 1e-5]))
    assert out.dtype == torch.uint8 and out.tolist() == [0, 128, 255, 255]
    raw = torch.tensor([0, 7, 255], dtype=torch.uint8)
    assert torch.equal(vio.to_uint8(raw), raw)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        vio.to_uint8(torch.tensor([0.0, 255.0]))
    with pytest.raises(ValueError, match="NaN"):
        vio.to_uint8(torch.tensor([0.0, float("nan")]))
    with pytest.raises(TypeError, match="dtype"):
        vio.to_uint8(torch.tensor([1, 2], dtype=torch.int32))


def test_make_grid_places_each_video_in_its_cell_with_padding():
    n, c, t, h, w, pad = 5, 3, 2, 4, 6, 2
    videos = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1, 1).expand(n, c, t, h, w) / 10
    grid = vio.make_grid(videos, nrow=3, padding=pad, pad_value=-1.0)
    assert grid.shape == (c, t, 2 * (h + pad) + pad, 3 * (w + pad) + pad)
    for i in range(n):
        row, col = divmod(i, 3)
        top, left = pad + row * (h + pad), pad + col * (w + pad)
        assert torch.all(grid[:, :, top : top + h, left : left + w] == i / 10)
    assert torch.all(grid[:, :, :pad] == -1) and torch.all(grid[:, :, :, :pad] == -1)
    # the sixth cell is empty: padding colour
    assert torch.all(grid[:, :, pad + h + pad :, pad + 2 * (w + pad) :] == -1)


def test_make_grid_defaults_and_bad_arguments():
    videos = torch.zeros(4, 1, 2, 3, 3, dtype=torch.uint8)
    grid = vio.make_grid(videos)  # 2x2, white padding for uint8
    assert grid.shape == (1, 2, 2 * 5 + 2, 2 * 5 + 2) and int(grid[0, 0, 0, 0]) == 255
    assert vio.make_grid(videos, nrow=10).shape[-1] == 4 * 5 + 2  # never wider than N
    assert vio.make_grid(videos[0], padding=0).shape == (1, 2, 3, 3)  # (C, T, H, W) is one video
    with pytest.raises(ValueError, match="nrow"):
        vio.make_grid(videos, nrow=0)
    with pytest.raises(ValueError, match="N, C, T, H, W"):
        vio.make_grid(torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="channels"):
        vio.make_grid(torch.zeros(1, 16, 3, 3, 3))  # (N, T, C, H, W) by mistake


# ---- writing ---------------------------------------------------------------------------------
def test_gif_round_trip_is_exact_for_gray(tmp_path):
    gen = torch.Generator().manual_seed(1)
    videos = torch.randint(0, 256, (3, 1, 5, 8, 8), generator=gen, dtype=torch.uint8)
    path = vio.save_video(videos, tmp_path / "g.gif", nrow=3, padding=1)
    back = vio.read_video(path)
    expected = vio.make_grid(videos, nrow=3, padding=1)
    assert back.shape == (5, expected.shape[2], expected.shape[3], 3)
    for ch in range(3):
        assert torch.equal(back[..., ch], expected[0])


def test_gif_round_trip_is_close_for_colour(tmp_path):
    # smooth colour gradients moving over time: quantised to a 256-colour palette per frame
    t = torch.linspace(0, 1, 6).view(1, 1, 6, 1, 1)
    y = torch.linspace(-1, 1, 16).view(1, 1, 1, 16, 1)
    x = torch.linspace(-1, 1, 16).view(1, 1, 1, 1, 16)
    shape = (1, 1, 6, 16, 16)
    video = torch.cat([(x + t).clamp(-1, 1).expand(shape), y.expand(shape), (x * y - t).clamp(-1, 1)], dim=1)
    path = vio.save_video(video[0], tmp_path / "c.gif")
    back = vio.read_video(path).float()
    expected = vio.to_uint8(video[0]).permute(1, 2, 3, 0).float()
    assert back.shape == expected.shape
    assert (back - expected).abs().mean() < 4


@pytest.mark.parametrize("ext", [".mp4", ".webm", ".avi"])
def test_ffmpeg_round_trip_shape_and_content(tmp_path, ext):
    video = gray_ramp_video(8, height=16, width=16, step=25)
    path = vio.save_video(video, tmp_path / f"v{ext}", fps=np.float32(10))  # a numpy number is a number
    info = vio.probe_video(path)
    assert (info.frames, info.height, info.width) == (8, 16, 16) and info.fps == pytest.approx(10)
    back = vio.read_video(path)
    assert back.shape == (8, 16, 16, 3)
    levels = back.float().mean(dim=(1, 2, 3))
    assert torch.allclose(levels, 20 + 25 * torch.arange(8).float(), atol=4)


def test_mp4_pads_odd_grids_to_even_and_accepts_one_channel(tmp_path):
    videos = moving_noise(3, 1, 4, 7)  # grid 2x2 of 7px + padding 2 -> 20x20; padding 1 -> 17x17
    path = vio.save_video(videos, tmp_path / "odd.mp4", padding=1)
    assert vio.read_video(path).shape == (4, 18, 18, 3)


def test_save_video_rejects_bad_input_and_leaves_no_file(tmp_path):
    good = moving_noise(2, 3, 4, 8)
    cases = [
        (good, "x.png", ValueError, "extension"),
        (good.permute(0, 2, 1, 3, 4), "x.gif", ValueError, "channels"),
        (good[0, 0], "x.gif", ValueError, "N, C, T, H, W"),
        (good * 3, "x.gif", ValueError, r"\[-1, 1\]"),
        ("not a tensor", "x.gif", TypeError, "Tensor"),
    ]
    for videos, name, error, match in cases:
        with pytest.raises(error, match=match):
            vio.save_video(videos, tmp_path / name)
        assert not (tmp_path / name).exists()
    for fps in (0, 1e-4, 1e6, float("nan"), "8", True):
        with pytest.raises(ValueError, match="fps must be a number from 0.01 to 1000"):
            vio.save_video(good, tmp_path / "x.gif", fps=fps)
    (tmp_path / "folder.gif").mkdir()
    with pytest.raises(IsADirectoryError, match="path: .*folder.gif' is a folder"):
        vio.save_video(good, tmp_path / "folder.gif")
    (tmp_path / "folder.gif").rmdir()
    with pytest.raises(ValueError, match="pad_value"):
        vio.save_video(good, tmp_path / "x.gif", pad_value=2.0)
    with pytest.raises(ValueError, match="pad_value"):
        vio.save_video(vio.to_uint8(good), tmp_path / "x.gif", pad_value=300)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [".gif", ".mp4"])
def test_save_video_is_atomic_when_the_encoder_fails(tmp_path, monkeypatch, ext):
    target = tmp_path / f"out{ext}"
    target.write_bytes(b"previous good file")
    encoder = "_write_gif" if ext == ".gif" else "_write_ffmpeg"

    def half_written(frames, path, **kwargs):
        path.write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(vio, encoder, half_written)
    with pytest.raises(RuntimeError, match="disk full"):
        vio.save_video(moving_noise(1, 3, 2, 4), target)
    assert target.read_bytes() == b"previous good file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_save_video_accepts_numpy_single_video_and_creates_folders(tmp_path):
    video = (np.random.default_rng(0).random((3, 4, 6, 6)) * 2 - 1).astype(np.float32)
    path = vio.save_video(video, tmp_path / "a" / "b" / "one.gif")
    assert path.exists() and vio.read_video(path).shape == (4, 6, 6, 3)  # one video: no grid padding
    assert no_temp_files(path.parent)


# ---- reading ---------------------------------------------------------------------------------
def test_read_video_frames_start_stride(tmp_path):
    path = vio.save_video(gray_ramp_video(10), tmp_path / "ramp.gif")
    clip = vio.read_video(path, frames=3, start=2, stride=3)
    assert clip.shape == (3, 12, 14, 3) and clip.dtype == torch.uint8
    assert clip[:, 0, 0, 0].tolist() == [20 + 10 * 2, 20 + 10 * 5, 20 + 10 * 8]
    assert vio.read_video(path, start=7).shape[0] == 3  # frames=None: everything from start on
    with pytest.raises(vio.VideoReadError, match="too short"):
        vio.read_video(path, frames=5, start=2, stride=3)
    with pytest.raises(ValueError, match="stride"):
        vio.read_video(path, stride=0)


def test_read_video_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        vio.read_video(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(vio.VideoReadError, match="bad.mp4"):
        vio.read_video(bad)
    with pytest.raises(vio.VideoReadError):
        vio.probe_video(bad)


def test_read_frame_folder_in_natural_order(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for t in range(12):  # frame_2.png must come before frame_10.png
        Image.fromarray(np.full((5, 7, 3), 10 * t, dtype=np.uint8)).save(folder / f"frame_{t}.png")
    (folder / "notes.txt").write_text("not a frame")
    assert vio.probe_video(folder).frames == 12
    clip = vio.read_video(folder, frames=4, start=1, stride=3)
    assert clip.shape == (4, 5, 7, 3)
    assert clip[:, 0, 0, 0].tolist() == [10, 40, 70, 100]


def test_missing_video_extra_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(vio.MissingDependencyError, match=r"vganzoo\[video\]"):
        vio.save_video(moving_noise(1, 3, 2, 4), tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="pillow"):
        vio.save_video(moving_noise(1, 3, 2, 4), tmp_path / "x.gif")


def test_read_video_scales_while_decoding(tmp_path):
    # left half dark, right half bright: area averaging keeps the halves, shape follows size
    video = torch.zeros(3, 4, 16, 32, dtype=torch.uint8)
    video[..., 16:] = 200
    for target in (vio.save_video(video, tmp_path / "v.mp4"), tmp_path / "frames"):
        if target == tmp_path / "frames":
            target.mkdir()
            for t in range(4):
                Image.fromarray(video[:, t].permute(1, 2, 0).numpy()).save(target / f"{t}.png")
        small = vio.read_video(target, size=(8, 16))
        assert small.shape == (4, 8, 16, 3)
        assert small[:, :, :7].float().mean() < 12 and small[:, :, 9:].float().mean() > 188
        assert vio.read_video(target, frames=2, size=(20, 40)).shape == (2, 20, 40, 3)
    with pytest.raises(ValueError, match="size"):
        vio.read_video(tmp_path / "v.mp4", size=(8,))


def test_labelled_rows_make_rows_alike_and_write_each_label():
    gray = torch.full((3, 1, 16, 32, 32), -1.0)  # black gray clips, 16 frames
    rgb = torch.ones(2, 3, 12, 64, 64)  # white RGB clips, 12 frames
    out = vio.labelled_rows([("first", gray), ("second", rgb)], padding=2)
    assert out.dtype == torch.uint8 and out.shape[:2] == (3, 12)  # RGB, cut to the shortest clip
    assert out.shape[2] == 2 * (64 + 2) + 2  # both rows scaled up to 64 px
    column = out.shape[3] - (3 * (64 + 2) + 2)  # the widest row is 3 videos wide
    assert column > 0
    labels = out[0, 0, :, :column]
    top, bottom = labels[: 64 + 2], labels[64 + 2 :]
    assert (top < 128).any() and (bottom < 128).any()  # black text in each row's label cell
    assert not torch.equal(top[2:66], bottom[:64])  # two different labels
    body = out[:, :, :, column:]
    assert (body[:, :, 2:66, 2:66] == 0).all() and (body[:, :, 68:132, 2:66] == 255).all()
    with pytest.raises(ValueError, match="rows must be a non-empty list"):
        vio.labelled_rows([])
    with pytest.raises(ValueError, match=r"rows\[0\] must be a \(label, videos\) pair"):
        vio.labelled_rows([(1, gray)])
    with pytest.raises(ValueError, match="float videos must be in"):
        vio.labelled_rows([("x", gray * 3)])
