"""Synthetic video datasets that need no download: bouncing digits and moving shapes.

Every item is a pure function of ``(seed, split, index)``: any index can be generated on its
own, in any worker, in any order, and gives the same clip every time.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
from einops import repeat
from torch.utils.data import Dataset

__all__ = ["SPLITS", "MovingDigits", "MovingShapes", "render_digit"]

# Distinct random streams per split, so "test" never repeats "train" clips.
SPLITS = {"train": 0, "val": 1, "validation": 1, "test": 2}
_DIGITS_STREAM = 0x6D64  # salts keep datasets with the same seed independent of each other
_SHAPES_STREAM = 0x6D73

# ---- digit glyphs -------------------------------------------------------------------------------
GLYPH_RENDER_SIZE = 64  # font size the glyphs are drawn at before being scaled down
# Stroke thickening (pixels at GLYPH_RENDER_SIZE) and rotation (degrees): the style jitter that
# makes the digits vary like handwriting does, a little.
STROKE_WIDTHS = (2, 3, 4)
ROTATIONS = (-10, -5, 0, 5, 10)
# Digit glyph height as a fraction of the frame side: Moving MNIST's digits are ~20 px of 64.
DIGIT_HEIGHT_RANGE = (0.30, 0.40)
MAX_SPEED = 4  # pixels per frame at 32x32; scaled with the resolution
REFERENCE_RESOLUTION = 32


def _rng(*entropy: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(e) for e in entropy])))


def _check_split(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return SPLITS[split]


def _check_int(name: str, value: Any, low: int, allowed: tuple[int, ...] | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if allowed is not None and value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


@functools.cache
def _font() -> tuple[Any, bool]:
    """Pillow's bundled font: the scalable one (Pillow >= 10.1 with FreeType) or the bitmap one."""
    from ..videoio import import_pil

    import_pil()
    from PIL import ImageFont

    try:
        font = ImageFont.load_default(size=GLYPH_RENDER_SIZE)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1: no size argument
        font = ImageFont.load_default()
    # without FreeType, Pillow hands back its small bitmap font whatever the size asked
    if isinstance(font, ImageFont.FreeTypeFont):
        return font.font_variant(size=GLYPH_RENDER_SIZE), True
    return font, False


@functools.cache
def _glyph_image(digit: int, stroke: int, rotation: int) -> Any:
    """The digit drawn white on black at high resolution, cropped to its ink: a PIL 'L' image."""
    from PIL import Image, ImageDraw

    font, scalable = _font()
    side = GLYPH_RENDER_SIZE * 2
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    if scalable:
        draw.text(
            (side // 4, side // 8), str(digit), fill=255, font=font, stroke_width=stroke, stroke_fill=255
        )
    else:  # bitmap font: draw small, blow up, then thicken with a max filter
        from PIL import ImageFilter

        small = Image.new("L", (side // 8, side // 8), 0)
        ImageDraw.Draw(small).text((2, 1), str(digit), fill=255, font=font)
        canvas = small.resize((side, side), Image.Resampling.BILINEAR).filter(
            ImageFilter.MaxFilter(stroke // 2 * 2 + 1)
        )
    canvas = canvas.rotate(rotation, resample=Image.Resampling.BILINEAR, expand=True)
    return canvas.crop(canvas.getbbox())


@functools.lru_cache(maxsize=4096)
def render_digit(digit: int, height: int, stroke: int = STROKE_WIDTHS[1], rotation: int = 0) -> np.ndarray:
    """Digit ``digit`` as a float32 (height, width) array in [0, 1], width following the glyph.

    Rendered once per (digit, height, stroke, rotation) from the font Pillow ships and cached.
    """
    from PIL import Image

    glyph = _glyph_image(digit, stroke, rotation)
    width = max(1, round(glyph.width * height / glyph.height))
    small = glyph.resize((width, height), Image.Resampling.LANCZOS)
    out = np.asarray(small, dtype=np.float32) / 255.0
    out.setflags(write=False)
    return out


def _bounce(position: int, velocity: int, high: int) -> tuple[int, int]:
    """One step of motion in [0, high], reflecting off both walls."""
    position += velocity
    while position < 0 or position > high:  # |velocity| may exceed the room on tiny frames
        if position < 0:
            position, velocity = -position, -velocity
        if position > high:
            position, velocity = 2 * high - position, -velocity
    return position, velocity


class MovingDigits(Dataset):
    """Bouncing digits, Moving-MNIST style, drawn from the font that Pillow ships.

    Each clip: ``num_digits`` digits (0-9, each with random size, stroke width and tilt) start at
    random positions with integer velocities in [-MAX_SPEED, MAX_SPEED] pixels per frame at
    32x32 (scaled by ``resolution // 32``, never both components zero), bounce off the frame's
    edges, and are combined by a pixel-wise max on a black background.

    Labels: with one digit, the digit (``num_classes = 10``); with two, ``10 * first + second``
    (``num_classes = 100``; the first digit is ``label // 10``). :meth:`describe` returns every
    random choice of an item (digits, sizes, positions per frame) for inspection and tests.

    Items: ``{"video": (C, T, H, W) float32 in [-1, 1], "label": int64 scalar}``; deterministic
    by ``(seed, split, index)``.
    """

    def __init__(
        self,
        num_digits: int = 1,
        resolution: int = 64,
        frames: int = 16,
        length: int = 10000,
        seed: int = 0,
        channels: int = 1,
        split: str = "train",
        frame_stride: int = 1,
    ) -> None:
        self.num_digits = _check_int("num_digits", num_digits, 1, (1, 2))
        self.resolution = _check_int("resolution", resolution, 16)
        self.frames = _check_int("frames", frames, 1)
        self.length = _check_int("length", length, 1)
        self.seed = _check_int("seed", seed, 0)
        self.channels = _check_int("channels", channels, 1, (1, 3))
        self.frame_stride = _check_int("frame_stride", frame_stride, 1)
        self.split = split
        self._split_id = _check_split(split)
        self.num_classes = 10**self.num_digits
        self.speed_scale = max(1, self.resolution // REFERENCE_RESOLUTION)

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """No-op: a synthetic dataset is a fixed set of clips (as Moving MNIST is); here so that
        a trainer can call ``set_epoch`` on any vganzoo dataset."""

    def _index(self, index: int) -> int:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        index = int(index)
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {self.length}")
        return index

    def describe(self, index: int) -> dict[str, Any]:
        """Every random choice behind item ``index``.

        Returns digits (num_digits,), strokes, rotations, heights (the glyph's render height),
        sizes (num_digits, 2) as (height, width) drawn, positions (T, num_digits, 2) as (top, left) of each
        glyph, velocities at frame
        0 (num_digits, 2) as (down, right) pixels per frame, and the label.
        """
        index = self._index(index)
        rng = _rng(_DIGITS_STREAM, self.seed, self._split_id, index)
        res = self.resolution
        digits, strokes, rotations, heights, sizes, velocities, start = [], [], [], [], [], [], []
        for _ in range(self.num_digits):
            digit = int(rng.integers(0, 10))
            stroke = int(rng.choice(STROKE_WIDTHS))
            rotation = int(rng.choice(ROTATIONS))
            height = round(res * rng.uniform(*DIGIT_HEIGHT_RANGE))
            glyph = render_digit(digit, height, stroke, rotation)
            h, w = min(glyph.shape[0], res), min(glyph.shape[1], res)  # a tilted glyph may be wide
            top, left = int(rng.integers(0, res - h + 1)), int(rng.integers(0, res - w + 1))
            while True:
                v = rng.integers(-MAX_SPEED, MAX_SPEED + 1, size=2)
                if v.any():
                    break
            digits.append(digit)
            strokes.append(stroke)
            rotations.append(rotation)
            heights.append(height)
            sizes.append((h, w))
            velocities.append((int(v[0]) * self.speed_scale, int(v[1]) * self.speed_scale))
            start.append((top, left))
        # positions at every source frame, then every frame_stride-th kept
        total = (self.frames - 1) * self.frame_stride + 1
        positions = np.zeros((total, self.num_digits, 2), dtype=np.int64)
        for d in range(self.num_digits):
            (top, left), (vy, vx), (h, w) = start[d], velocities[d], sizes[d]
            for t in range(total):
                positions[t, d] = (top, left)
                top, vy = _bounce(top, vy, res - h)
                left, vx = _bounce(left, vx, res - w)
        label = digits[0] if self.num_digits == 1 else 10 * digits[0] + digits[1]
        return {
            "digits": digits,
            "strokes": strokes,
            "rotations": rotations,
            "heights": heights,
            "sizes": sizes,
            "velocities": velocities,
            "positions": positions[:: self.frame_stride],
            "label": label,
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        info = self.describe(index)
        res = self.resolution
        canvas = np.zeros((self.frames, res, res), dtype=np.float32)
        for d, digit in enumerate(info["digits"]):
            glyph = render_digit(digit, info["heights"][d], info["strokes"][d], info["rotations"][d])
            h, w = info["sizes"][d]
            glyph = glyph[:h, :w]
            for t in range(self.frames):
                top, left = info["positions"][t, d]
                region = canvas[t, top : top + h, left : left + w]
                np.maximum(region, glyph, out=region)
        # elementwise work stays in numpy: tiny torch ops pay thread-pool overhead per call
        video = torch.from_numpy(
            np.ascontiguousarray(repeat(canvas * 2 - 1, "t h w -> c t h w", c=self.channels))
        )
        return {"video": video, "label": torch.tensor(info["label"], dtype=torch.long)}

    def __repr__(self) -> str:
        return (
            f"MovingDigits(num_digits={self.num_digits}, resolution={self.resolution}, frames={self.frames}, "
            f"length={self.length}, seed={self.seed}, channels={self.channels}, split={self.split!r})"
        )


# ---- moving shapes ------------------------------------------------------------------------------
SHAPES = ("circle", "square", "triangle")
MOTIONS = ("horizontal", "vertical", "diagonal", "anti-diagonal", "circular")
# Unit direction of each straight-line motion, as (down, right); image rows grow downwards,
# so "diagonal" runs top-left <-> bottom-right and "anti-diagonal" bottom-left <-> top-right.
_DIRECTIONS = {
    "horizontal": (0.0, 1.0),
    "vertical": (1.0, 0.0),
    "diagonal": (math.sqrt(0.5), math.sqrt(0.5)),
    "anti-diagonal": (-math.sqrt(0.5), math.sqrt(0.5)),
}
SHAPE_RADIUS_RANGE = (0.12, 0.18)  # fraction of the frame side
SPEED_RANGE = (0.06, 0.12)  # straight motions: fraction of the frame side per frame
ANGULAR_SPEED_RANGE = (0.25, 0.5)  # circular motion: radians per frame
MIN_INTENSITY = 0.5  # shapes are at least this bright (in [0, 1]) so they stand out from black


def _reflect(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fold x back into [low, high] as a ball bouncing between two walls would."""
    span = high - low
    if span <= 0:
        return np.full_like(x, low)
    u = np.mod(x - low, 2 * span)
    return low + np.where(u <= span, u, 2 * span - u)


class MovingShapes(Dataset):
    """MoCoGAN-style moving shapes: one circle, square or triangle moving in one of five ways.

    Motion classes (the labels, ``num_classes = 5``): 0 horizontal, 1 vertical, 2 diagonal
    (top-left <-> bottom-right), 3 anti-diagonal (bottom-left <-> top-right), each a
    back-and-forth bounce along its line, and 4 circular (either direction). ``label="shape"``
    labels by shape instead (0 circle, 1 square, 2 triangle). Shape, size, colour (gray level
    when ``channels=1``), speed and start are random. Edges are anti-aliased.

    Items: ``{"video": (C, T, H, W) float32 in [-1, 1], "label": int64 scalar}``; deterministic
    by ``(seed, split, index)``.
    """

    def __init__(
        self,
        resolution: int = 64,
        frames: int = 16,
        length: int = 10000,
        seed: int = 0,
        channels: int = 3,
        split: str = "train",
        frame_stride: int = 1,
        label: str = "motion",
    ) -> None:
        self.resolution = _check_int("resolution", resolution, 8)
        self.frames = _check_int("frames", frames, 1)
        self.length = _check_int("length", length, 1)
        self.seed = _check_int("seed", seed, 0)
        self.channels = _check_int("channels", channels, 1, (1, 3))
        self.frame_stride = _check_int("frame_stride", frame_stride, 1)
        if label not in ("motion", "shape"):
            raise ValueError(f"label must be 'motion' or 'shape', got {label!r}")
        self.label = label
        self.split = split
        self._split_id = _check_split(split)
        self.class_names = MOTIONS if label == "motion" else SHAPES
        self.num_classes = len(self.class_names)
        ys = np.arange(self.resolution, dtype=np.float32) + 0.5
        self._grid_y, self._grid_x = np.meshgrid(ys, ys, indexing="ij")

    __len__ = MovingDigits.__len__
    _index = MovingDigits._index
    set_epoch = MovingDigits.set_epoch

    def describe(self, index: int) -> dict[str, Any]:
        """Every random choice behind item ``index``: shape, motion, radius, colour (C,) in
        [0, 1], centres (T, 2) as (row, column) in pixels, and the label."""
        index = self._index(index)
        rng = _rng(_SHAPES_STREAM, self.seed, self._split_id, index)
        res = self.resolution
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        motion_id = int(rng.integers(len(MOTIONS)))
        motion = MOTIONS[motion_id]
        radius = res * rng.uniform(*SHAPE_RADIUS_RANGE)
        if self.channels == 3:
            colour = rng.uniform(0.0, 1.0, size=3)
            colour[rng.integers(3)] = 1.0  # one full channel keeps every colour bright
        else:
            colour = np.array([rng.uniform(MIN_INTENSITY, 1.0)])
        room = res / 2 - radius - 1  # how far the centre may move from the middle, per axis
        t = np.arange((self.frames - 1) * self.frame_stride + 1, dtype=np.float64)[:: self.frame_stride]
        if motion == "circular":
            orbit = room * rng.uniform(0.5, 0.9)
            centre = res / 2 + rng.uniform(-1, 1, size=2) * (room - orbit)
            omega = rng.uniform(*ANGULAR_SPEED_RANGE) * rng.choice((-1.0, 1.0))
            angle = rng.uniform(0, 2 * math.pi) + omega * t
            centres = centre + orbit * np.stack([np.sin(angle), np.cos(angle)], axis=-1)
        else:
            direction = np.array(_DIRECTIONS[motion])
            amplitude = room * rng.uniform(0.6, 1.0) / np.abs(direction).max()
            centre = res / 2 + rng.uniform(-1, 1, size=2) * (room - amplitude * np.abs(direction))
            speed = res * rng.uniform(*SPEED_RANGE) * rng.choice((-1.0, 1.0))
            along = _reflect(rng.uniform(-amplitude, amplitude) + speed * t, -amplitude, amplitude)
            centres = centre + along[:, None] * direction
        label = motion_id if self.label == "motion" else SHAPES.index(shape)
        return {
            "shape": shape,
            "motion": motion,
            "radius": float(radius),
            "colour": colour,
            "centres": centres,
            "label": label,
        }

    def _signed_distance(self, shape: str, radius: float, centres: np.ndarray) -> np.ndarray:
        """(T, H, W) distance in pixels to the shape's edge, negative inside."""
        dy = self._grid_y[None] - centres[:, 0, None, None]
        dx = self._grid_x[None] - centres[:, 1, None, None]
        if shape == "circle":
            return np.hypot(dx, dy) - radius
        if shape == "square":
            return np.maximum(np.abs(dx), np.abs(dy)) - radius * math.sqrt(0.5) * 1.2
        # equilateral triangle pointing up, circumradius `radius`: the max over its three
        # half-planes (exact inside, a slight overestimate near corners outside: fine for AA)
        inradius = radius / 2
        normals = [(1.0, 0.0)] + [(-0.5, s * math.sqrt(0.75)) for s in (-1, 1)]  # (down, right)
        return np.max(np.stack([ny * dy + nx * dx for ny, nx in normals]), axis=0) - inradius

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        info = self.describe(index)
        coverage = np.clip(0.5 - self._signed_distance(info["shape"], info["radius"], info["centres"]), 0, 1)
        video = coverage[None].astype(np.float32) * info["colour"].astype(np.float32)[:, None, None, None]
        video = torch.from_numpy(np.ascontiguousarray(video * 2 - 1))
        return {"video": video, "label": torch.tensor(info["label"], dtype=torch.long)}

    def __repr__(self) -> str:
        return (
            f"MovingShapes(resolution={self.resolution}, frames={self.frames}, length={self.length}, "
            f"seed={self.seed}, channels={self.channels}, split={self.split!r}, label={self.label!r})"
        )
