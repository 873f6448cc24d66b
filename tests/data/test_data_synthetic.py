"""Synthetic datasets: moving digits and moving shapes, and build_dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vganzoo.data import MOTIONS, SHAPES, MovingDigits, MovingShapes, build_dataset, render_digit
from vganzoo.data.synthetic import MAX_SPEED, ROTATIONS, STROKE_WIDTHS


# ---- moving digits ----------------------------------------------------------------------------
@pytest.mark.parametrize("num_digits,resolution,channels", [(1, 64, 1), (2, 32, 1), (1, 32, 3)])
def test_digits_shapes_ranges_and_labels(num_digits, resolution, channels):
    ds = MovingDigits(num_digits=num_digits, resolution=resolution, frames=8, length=20, channels=channels)
    assert len(ds) == 20 and ds.channels == channels and ds.num_classes == 10**num_digits
    for i in range(5):
        item = ds[i]
        video, label = item["video"], item["label"]
        assert video.shape == (channels, 8, resolution, resolution) and video.dtype == torch.float32
        assert video.min() >= -1 and video.max() <= 1 and video.max() > 0.9  # a digit is drawn
        assert label.dtype == torch.int64 and label.ndim == 0 and 0 <= int(label) < ds.num_classes
        digits = ds.describe(i)["digits"]
        assert int(label) == (digits[0] if num_digits == 1 else 10 * digits[0] + digits[1])
        if channels == 3:
            assert torch.equal(video[0], video[1]) and torch.equal(video[1], video[2])


def test_digits_are_deterministic_by_seed_and_index():
    a = MovingDigits(resolution=32, frames=6, seed=3)
    b = MovingDigits(resolution=32, frames=6, seed=3)
    # any index on its own, in any order, gives the same clip
    assert torch.equal(a[7]["video"], b[7]["video"])
    _ = [b[i] for i in range(5)]
    assert torch.equal(a[2]["video"], b[2]["video"]) and int(a[2]["label"]) == int(b[2]["label"])
    other_seed = MovingDigits(resolution=32, frames=6, seed=4)
    other_split = MovingDigits(resolution=32, frames=6, seed=3, split="test")
    assert not torch.equal(a[7]["video"], other_seed[7]["video"])
    assert not torch.equal(a[7]["video"], other_split[7]["video"])
    assert not torch.equal(a[7]["video"], a[8]["video"])
    assert torch.equal(a[-1]["video"], a[len(a) - 1]["video"])


def test_digit_drawn_at_frame_zero_is_the_glyph_of_its_label():
    """Nearest-template classification of the ink at frame 0 against every digit's glyph."""
    ds = MovingDigits(num_digits=1, resolution=64, frames=1, length=60, seed=11)
    for i in range(len(ds)):
        info = ds.describe(i)
        frame = (ds[i]["video"][0, 0].numpy() + 1) / 2
        (top, left) = info["positions"][0, 0]
        best, best_err = None, np.inf
        for digit in range(10):
            for stroke in STROKE_WIDTHS:
                for rotation in ROTATIONS:
                    glyph = render_digit(digit, info["heights"][0], stroke, rotation)
                    h, w = glyph.shape
                    if top + h > 64 or left + w > 64:
                        continue
                    err = (
                        np.abs(frame[top : top + h, left : left + w] - glyph).sum()
                        + frame.sum()
                        - glyph.sum()
                    )
                    if err < best_err:
                        best, best_err = digit, err
        assert best == int(ds[i]["label"]), f"item {i}: looks like {best}, labelled {int(ds[i]['label'])}"
        assert best_err < 1e-3


def test_every_digit_occurs_and_glyphs_differ():
    labels = [int(MovingDigits(resolution=32, frames=1, length=200)[i]["label"]) for i in range(200)]
    assert set(labels) == set(range(10))
    glyphs = [render_digit(d, 20) for d in range(10)]
    for a in range(10):
        for b in range(a + 1, 10):
            if glyphs[a].shape == glyphs[b].shape:
                assert np.abs(glyphs[a] - glyphs[b]).mean() > 0.05, (a, b)


@pytest.mark.parametrize("resolution", [32, 64])
def test_digits_bounce_and_stay_inside(resolution):
    ds = MovingDigits(num_digits=1, resolution=resolution, frames=48, length=30, seed=5)
    scale = resolution // 32
    for i in range(len(ds)):
        video = (ds[i]["video"][0].numpy() + 1) / 2  # (T, H, W) in [0, 1]
        ink = video.sum(axis=(1, 2))
        # the whole glyph is visible in every frame: same amount of ink, never clipped by an edge
        assert np.allclose(ink, ink[0], rtol=1e-5), f"item {i} loses ink at an edge"
        info = ds.describe(i)
        pos = info["positions"][:, 0]
        h, w = info["sizes"][0]
        assert pos[:, 0].min() >= 0 and pos[:, 0].max() <= resolution - h
        assert pos[:, 1].min() >= 0 and pos[:, 1].max() <= resolution - w
        step = np.abs(np.diff(pos, axis=0))
        assert step.max() <= MAX_SPEED * scale and step.sum() > 0
        # constant speed per axis, so a move shorter than the speed means it hit a wall
        speed = np.abs(np.array(info["velocities"][0]))
        assert np.all(step <= speed)


def test_two_digits_combine_by_max():
    ds = MovingDigits(num_digits=2, resolution=32, frames=4, length=10, seed=2)
    for i in range(len(ds)):
        info = ds.describe(i)
        video = (ds[i]["video"][0] + 1) / 2
        expected = torch.zeros_like(video)
        for d in range(2):
            glyph = torch.from_numpy(
                render_digit(
                    info["digits"][d], info["heights"][d], info["strokes"][d], info["rotations"][d]
                ).copy()
            )
            h, w = info["sizes"][d]
            for t in range(4):
                top, left = info["positions"][t, d]
                region = expected[t, top : top + h, left : left + w]
                torch.maximum(region, glyph[:h, :w], out=region)
        assert torch.allclose(video, expected, atol=1e-6)


def test_frame_stride_takes_every_kth_position():
    dense = MovingDigits(resolution=32, frames=9, seed=1)
    sparse = MovingDigits(resolution=32, frames=3, frame_stride=4, seed=1)
    assert torch.equal(sparse[3]["video"], dense[3]["video"][:, ::4])


def test_digit_arguments_are_checked():
    with pytest.raises(ValueError, match="num_digits"):
        MovingDigits(num_digits=3)
    with pytest.raises(ValueError, match="channels"):
        MovingDigits(channels=2)
    with pytest.raises(ValueError, match="split"):
        MovingDigits(split="dev")
    with pytest.raises(IndexError):
        MovingDigits(length=5)[5]


# ---- moving shapes ----------------------------------------------------------------------------
def _centroids(video: torch.Tensor) -> np.ndarray:
    """(C, T, H, W) in [-1, 1] -> (T, 2) ink centroid (row, column)."""
    mass = ((video.numpy() + 1) / 2).sum(0)  # (T, H, W)
    rows, cols = np.meshgrid(np.arange(mass.shape[1]), np.arange(mass.shape[2]), indexing="ij")
    total = mass.sum(axis=(1, 2))
    return np.stack([(mass * rows).sum(axis=(1, 2)) / total, (mass * cols).sum(axis=(1, 2)) / total], axis=-1)


def test_shapes_motion_labels_match_the_motion_in_the_video():
    ds = MovingShapes(resolution=32, frames=16, length=60, seed=0)
    assert ds.num_classes == len(MOTIONS) == 5 and ds.channels == 3
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        assert (
            item["video"].shape == (3, 16, 32, 32) and item["video"].min() >= -1 and item["video"].max() <= 1
        )
        label = int(item["label"])
        seen.add(label)
        track = _centroids(item["video"])
        rows, cols = track[:, 0], track[:, 1]
        moved_r, moved_c = np.ptp(rows), np.ptp(cols)
        motion = MOTIONS[label]
        if motion == "horizontal":
            assert moved_r < 0.5 and moved_c > 2
        elif motion == "vertical":
            assert moved_c < 0.5 and moved_r > 2
        elif motion in ("diagonal", "anti-diagonal"):
            corr = np.corrcoef(rows, cols)[0, 1]
            assert (corr > 0.99) if motion == "diagonal" else (corr < -0.99), (i, motion, corr)
        else:  # circular: the track fits a circle (least squares) and is not a line
            assert moved_r > 2 and moved_c > 2
            assert abs(np.corrcoef(rows, cols)[0, 1]) < 0.99
            design = np.stack([rows, cols, np.ones_like(rows)], axis=1)
            coef, *_ = np.linalg.lstsq(design, rows**2 + cols**2, rcond=None)
            centre = coef[:2] / 2
            radii = np.linalg.norm(track - centre, axis=1)
            assert radii.std() < 0.2 and radii.mean() > 2, (i, radii)
    assert seen == set(range(5))


def test_shapes_deterministic_gray_and_shape_labels():
    a, b = MovingShapes(resolution=16, frames=4, seed=1), MovingShapes(resolution=16, frames=4, seed=1)
    assert torch.equal(a[9]["video"], b[9]["video"])
    assert not torch.equal(a[9]["video"], MovingShapes(resolution=16, frames=4, seed=2)[9]["video"])
    gray = MovingShapes(resolution=16, frames=4, channels=1)
    assert gray[0]["video"].shape == (1, 4, 16, 16)
    by_shape = MovingShapes(resolution=16, frames=4, label="shape", length=30)
    assert by_shape.num_classes == len(SHAPES)
    for i in range(30):
        assert SHAPES[int(by_shape[i]["label"])] == by_shape.describe(i)["shape"]
    with pytest.raises(ValueError, match="label"):
        MovingShapes(label="colour")


def test_shapes_stay_inside_the_frame():
    ds = MovingShapes(resolution=32, frames=24, length=40, seed=3)
    for i in range(len(ds)):
        video = ds[i]["video"]
        border = torch.cat([video[..., 0, :], video[..., -1, :], video[..., :, 0], video[..., :, -1]], dim=-1)
        assert border.max() <= -1 + 1e-6, f"item {i} touches the edge"


# ---- build_dataset ----------------------------------------------------------------------------
def test_build_dataset_by_name_with_overrides_and_loader():
    ds = build_dataset("moving-digits", resolution=32, frames=4, channels=3, seed=1, num_digits=2, length=8)
    assert isinstance(ds, MovingDigits) and ds.channels == 3 and ds.num_digits == 2 and len(ds) == 8
    assert build_dataset("moving-digits", resolution=32, frames=4).channels == 1
    shapes = build_dataset("moving-shapes", resolution=16, frames=4, frame_stride=2, split="test")
    assert isinstance(shapes, MovingShapes) and shapes.split == "test" and shapes.frame_stride == 2
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert (
        batch["video"].shape == (4, 3, 4, 32, 32)
        and batch["label"].shape == (4,)
        and batch["label"].dtype == torch.int64
    )


def test_build_dataset_unknown_name():
    with pytest.raises(FileNotFoundError, match="moving-digits"):
        build_dataset("moving-digitz", resolution=32, frames=4)
    with pytest.raises(TypeError, match="unexpected keyword"):
        build_dataset("moving-digits", resolution=32, frames=4, colour=True)


def test_bitmap_font_fallback_still_draws_distinct_digits(monkeypatch):
    """Pillow without FreeType (or older than 10.1) only has a small bitmap font."""
    from PIL import ImageFont

    from vganzoo.data import synthetic

    caches = (synthetic._font, synthetic._glyph_image, synthetic.render_digit)
    for cache in caches:
        cache.cache_clear()
    monkeypatch.setattr(ImageFont, "load_default", lambda size=None: ImageFont.load_default_imagefont())
    try:
        assert synthetic._font()[1] is False
        glyphs = [render_digit(d, 20) for d in range(10)]
        assert all(g.shape[0] == 20 and g.max() > 0.9 for g in glyphs)
        flat = [np.pad(g, ((0, 0), (0, 24 - g.shape[1]))) for g in glyphs]
        assert min(np.abs(a - b).mean() for i, a in enumerate(flat) for b in flat[i + 1 :]) > 0.03
    finally:
        for cache in caches:
            cache.cache_clear()
