"""Video files: read clips, lay batches out as a grid, write GIF, MP4, WebM and AVI atomically.

    >>> from vganzoo.videoio import save_video, read_video
    >>> save_video(videos, "samples.gif", fps=8)      # videos: (N, C, T, H, W) in [-1, 1]
    >>> clip = read_video("clip.mp4", frames=16, stride=2)   # (16, H, W, 3) uint8

Decoding and MP4/WebM/AVI encoding go through PyAV (FFmpeg); GIFs are written with Pillow. Both are
imported on first use, so ``import vganzoo.videoio`` works without the ``video`` extra; a function that
needs them then raises :class:`MissingDependencyError` saying what to install.

Known limits: GIF stores a 256-colour palette per frame (grayscale round-trips exactly, colour
approximately) and Pillow folds identical consecutive frames into one longer frame, so a video
that does not move reads back with fewer frames. MP4 (H.264, else MPEG-4 part 2), WebM (VP9, else
VP8) and AVI (MPEG-4 part 2) are lossy and need even frame sizes: an odd-sized grid is padded by one
pixel with the padding value.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from .errors import VganzooError
from .files import atomic_path

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "WRITABLE_EXTENSIONS",
    "MissingDependencyError",
    "VideoInfo",
    "VideoReadError",
    "atomic_path",
    "labelled_rows",
    "make_grid",
    "probe_video",
    "read_video",
    "save_video",
    "to_uint8",
]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".gif", ".mkv", ".mov")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
WRITABLE_EXTENSIONS = (".gif", ".mp4", ".webm", ".avi")
UINT8_MAX = 255
# Float videos may overshoot [-1, 1] by rounding error; anything further out is a caller's bug.
RANGE_TOLERANCE = 1e-3
GIF_TIME_UNIT_MS = 10  # GIF frame delays are stored in hundredths of a second
MIN_FPS, MAX_FPS = 0.01, 1000.0  # a GIF delay holds at most 655.35 s; past 100 fps GIF delays stay 10 ms
GIF_COLOURS = 256  # palette size per frame
MAX_LABEL_CHARS = 60  # labelled_rows: a row label's length
LABEL_MARGIN = 6  # labelled_rows: pixels around the labels
# extension -> (FFmpeg container, encoders in order of preference, encoder options); PyAV's
# bundled FFmpeg ships all of these encoders
FFMPEG_FORMATS: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    ".mp4": ("mp4", ("libx264", "mpeg4"), {"crf": "18"}),  # crf 18: visually near-lossless
    # b=0: constant quality; realtime/cpu-used 8: ~6x faster than the default, same size here
    ".webm": (
        "webm",
        ("libvpx-vp9", "libvpx"),
        {"crf": "20", "b": "0", "deadline": "realtime", "cpu-used": "8"},
    ),
    ".avi": ("avi", ("mpeg4",), {}),
}
MPEG4_QSCALE = 3  # MPEG-4 part 2 fixed quantiser (1 best .. 31 worst)


class MissingDependencyError(VganzooError, ImportError):
    """An optional dependency (the ``video`` extra: av, pillow) is not installed."""


class VideoReadError(VganzooError, ValueError):
    """A file that exists but cannot be decoded as a video (corrupt, empty, unknown format)."""


class VideoInfo(NamedTuple):
    """What :func:`probe_video` learns about a file without decoding all of it."""

    frames: int  # exact for frame folders; from container metadata for video files (0 if unknown)
    height: int
    width: int
    fps: float


def import_av() -> Any:
    try:
        import av
    except ImportError:
        raise MissingDependencyError(
            "reading videos and writing MP4/WebM/AVI needs PyAV: pip install 'vganzoo[video]' (or pip "
            "install av)"
        ) from None
    return av


def import_pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependencyError(
            "writing GIFs and reading image frames needs Pillow: pip install 'vganzoo[video]' (or pip "
            "install pillow)"
        ) from None
    return Image


# ----------------------------------------------------------------------------------------------
# Tensors
# ----------------------------------------------------------------------------------------------
def _as_tensor(videos: Any, name: str = "videos") -> torch.Tensor:
    if isinstance(videos, np.ndarray):
        videos = torch.from_numpy(np.ascontiguousarray(videos))
    if not isinstance(videos, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(videos).__name__}")
    return videos.detach().cpu()


def _as_batch(videos: Any, name: str = "videos") -> torch.Tensor:
    """(N, C, T, H, W) or (C, T, H, W) -> (N, C, T, H, W), checking shape and dtype."""
    videos = _as_tensor(videos, name)
    if videos.ndim == 4:
        videos = videos[None]
    if videos.ndim != 5:
        raise ValueError(f"{name} must have shape (N, C, T, H, W) or (C, T, H, W), got {tuple(videos.shape)}")
    n, c, t, h, w = videos.shape
    if c not in (1, 3):
        raise ValueError(
            f"{name} must have 1 or 3 channels in dim 1 (layout N, C, T, H, W), got shape "
            f"{tuple(videos.shape)}"
        )
    if min(n, t, h, w) == 0:
        raise ValueError(f"{name} is empty: shape {tuple(videos.shape)}")
    if not (videos.dtype == torch.uint8 or videos.dtype.is_floating_point):
        raise TypeError(f"{name} must be float in [-1, 1] or uint8, got dtype {videos.dtype}")
    return videos


def to_uint8(videos: Any) -> torch.Tensor:
    """Float videos in [-1, 1] (any shape) -> uint8 in [0, 255]; uint8 passes through.

    Raises ValueError on NaN/inf or values outside [-1, 1] (beyond rounding error), since those
    mean the caller passed data in another range (e.g. [0, 1] or [0, 255] as float).
    """
    videos = _as_tensor(videos)
    if videos.dtype == torch.uint8:
        return videos
    if not videos.dtype.is_floating_point:
        raise TypeError(f"videos must be float in [-1, 1] or uint8, got dtype {videos.dtype}")
    videos = videos.float()
    if videos.numel():
        if not torch.isfinite(videos).all():
            raise ValueError("videos contain NaN or inf values")
        lo, hi = float(videos.min()), float(videos.max())
        if lo < -1 - RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
            raise ValueError(f"float videos must be in [-1, 1], got values from {lo:.4g} to {hi:.4g}")
    return ((videos.clamp(-1, 1) + 1) * (UINT8_MAX / 2)).round().to(torch.uint8)


def make_grid(
    videos: Any, nrow: int | None = None, padding: int = 2, pad_value: float | None = None
) -> torch.Tensor:
    """Tile a batch of videos into one video.

    Args:
        videos: (N, C, T, H, W) or (C, T, H, W), float or uint8.
        nrow: videos per grid row (default: ceil(sqrt(N)), a near-square grid).
        padding: pixels between videos and around the grid.
        pad_value: colour of the padding in the input's units (default: the brightest value,
            1.0 for float and 255 for uint8).

    Returns:
        (C, T, rows * (H + padding) + padding, nrow * (W + padding) + padding), same dtype.
    """
    videos = _as_batch(videos)
    n, c, t, h, w = videos.shape
    if nrow is None:
        nrow = math.ceil(math.sqrt(n))
    if not isinstance(nrow, int) or isinstance(nrow, bool) or nrow < 1:
        raise ValueError(f"nrow must be a positive int, got {nrow!r}")
    if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    if pad_value is None:
        pad_value = UINT8_MAX if videos.dtype == torch.uint8 else 1.0
    ncol = min(nrow, n)
    nrows = math.ceil(n / ncol)
    cell_h, cell_w = h + padding, w + padding
    grid = torch.full(
        (c, t, nrows * cell_h + padding, ncol * cell_w + padding), pad_value, dtype=videos.dtype
    )
    for i in range(n):
        row, col = divmod(i, ncol)
        top, left = padding + row * cell_h, padding + col * cell_w
        grid[:, :, top : top + h, left : left + w] = videos[i]
    return grid


def labelled_rows(rows: Sequence[tuple[str, Any]], padding: int = 2) -> torch.Tensor:
    """One video with a row per ``(label, videos)`` pair, the label written left of its row.

    Each ``videos`` is (N, C, T, H, W), float in [-1, 1] or uint8, 1 or 3 channels. Rows are made
    alike: gray rows become RGB when another row is RGB, smaller clips are scaled up (nearest) to the
    largest height and width, and every row is cut to the shortest clip's length. Labels are written
    black on the white padding with Pillow's built-in font (at most :data:`MAX_LABEL_CHARS` characters).

    Returns:
        (C, T, H, W) uint8, for :func:`save_video`.
    """
    if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)) or not rows:
        raise ValueError("rows must be a non-empty list of (label, videos) pairs")
    if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    labels, batches = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, tuple) or len(row) != 2 or not isinstance(row[0], str):
            raise ValueError(f"rows[{i}] must be a (label, videos) pair with a str label")
        labels.append(row[0].replace("\n", " ")[:MAX_LABEL_CHARS])
        batches.append(to_uint8(_as_batch(row[1], f"rows[{i}] videos")))
    channels = max(b.shape[1] for b in batches)
    frames = min(b.shape[2] for b in batches)
    height, width = max(b.shape[3] for b in batches), max(b.shape[4] for b in batches)
    grids = []
    for b in batches:
        b = b[:, :, :frames]
        if b.shape[1] != channels:
            b = b.expand(-1, channels, -1, -1, -1)
        if b.shape[3:] != (height, width):
            n, c = b.shape[:2]
            scaled = F.interpolate(
                b.reshape(n, c * frames, *b.shape[3:]), size=(height, width), mode="nearest"
            )
            b = scaled.reshape(n, c, frames, height, width)
        grids.append(make_grid(b, nrow=b.shape[0], padding=padding))
    grid_width = max(g.shape[-1] for g in grids)
    body = torch.full(
        (channels, frames, sum(g.shape[2] - padding for g in grids) + padding, grid_width), UINT8_MAX
    )
    top = 0
    for g in grids:
        body[:, :, top : top + g.shape[2], : g.shape[3]] = g
        top += g.shape[2] - padding
    column = _label_column(labels, [g.shape[2] - padding for g in grids], body.shape[2], padding)
    column = column.to(torch.uint8)[None, None].expand(channels, frames, -1, -1)
    return torch.cat([column, body.to(torch.uint8)], dim=-1)


def _label_column(labels: list[str], heights: list[int], total: int, padding: int) -> torch.Tensor:
    """(total, width) uint8: white, each label in black, centred on its row's height."""
    image_mod = import_pil()
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default()
    measure = ImageDraw.Draw(image_mod.new("L", (1, 1)))
    boxes = [measure.textbbox((0, 0), label, font=font) for label in labels]
    width = max(box[2] - box[0] for box in boxes) + 2 * LABEL_MARGIN
    image = image_mod.new("L", (width, total), UINT8_MAX)
    draw = ImageDraw.Draw(image)
    top = padding
    for label, box, height in zip(labels, boxes, heights):
        y = top + (height - padding - (box[3] - box[1])) // 2 - box[1]
        draw.text((LABEL_MARGIN - box[0], y), label, fill=0, font=font)
        top += height
    return torch.from_numpy(np.asarray(image).copy())


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def save_video(
    videos: Any,
    path: str | os.PathLike[str],
    *,
    fps: float = 8,
    nrow: int | None = None,
    padding: int = 2,
    pad_value: float | None = None,
) -> Path:
    """Write one video or a grid of videos to ``path`` (``.gif``, ``.mp4``, ``.webm``, ``.avi``), atomically.

    Args:
        videos: (N, C, T, H, W) or (C, T, H, W); float in [-1, 1] or uint8 in [0, 255]; 1 or 3
            channels (1 is written as gray). A torch tensor (any device) or numpy array.
        path: output file; its extension picks the format. Missing parent folders are created.
        fps: frames per second, 0.01 to 1000 (GIF delays are rounded to 10 ms).
        nrow, padding, pad_value: grid layout, see :func:`make_grid`. A single video
            (C, T, H, W) is written without padding.

    Returns:
        The path written. Nothing is left at ``path`` (or beside it) when writing fails.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITABLE_EXTENSIONS:
        raise ValueError(
            f"path: unknown video extension {path.suffix!r} in {str(path)!r}; use one of "
            f"{', '.join(WRITABLE_EXTENSIONS)}"
        )
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not MIN_FPS <= float(fps) <= MAX_FPS:
        raise ValueError(f"fps must be a number from {MIN_FPS} to {MAX_FPS}, got {fps!r}")
    if path.is_dir():
        raise IsADirectoryError(
            f"path: {str(path)!r} is a folder; give a file name, e.g. {str(path / ('video' + ext))!r}"
        )
    single = _as_tensor(videos).ndim == 4
    batch = _as_batch(videos)
    if (
        pad_value is not None
        and batch.dtype == torch.uint8
        and not (float(pad_value).is_integer() and 0 <= pad_value <= UINT8_MAX)
    ):
        raise ValueError("pad_value must be an integer in [0, 255] for uint8 videos")
    if pad_value is not None and batch.dtype != torch.uint8:
        pad_value = float(pad_value)
        if not -1 <= pad_value <= 1:
            raise ValueError(f"pad_value must be in [-1, 1] for float videos, got {pad_value}")
        pad_value = round((pad_value + 1) * UINT8_MAX / 2)
    frames = to_uint8(batch)
    grid = frames[0] if single else make_grid(frames, nrow=nrow, padding=padding, pad_value=pad_value)
    if grid.shape[0] == 1:
        grid = grid.expand(3, *grid.shape[1:]) if ext != ".gif" else grid
    thwc = rearrange(grid, "c t h w -> t h w c").contiguous().numpy()
    pad_fill = UINT8_MAX if pad_value is None else int(pad_value)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if ext == ".gif":
            _write_gif(thwc, tmp, fps=float(fps))
        else:
            _write_ffmpeg(thwc, tmp, fps=float(fps), pad_fill=pad_fill, ext=ext)
    return path


def _write_gif(frames: np.ndarray, path: Path, *, fps: float) -> None:
    """frames: (T, H, W, C) uint8, C in {1, 3}."""
    image_mod = import_pil()
    if frames.shape[-1] == 1:
        images = [image_mod.fromarray(f[..., 0], mode="L") for f in frames]
    else:
        # Pillow's default RGB -> palette conversion (median cut) takes seconds per frame on
        # noisy content such as an untrained generator's samples; fast octree takes milliseconds
        octree = image_mod.Quantize.FASTOCTREE
        images = [image_mod.fromarray(f, mode="RGB").quantize(GIF_COLOURS, method=octree) for f in frames]
    delay_ms = max(GIF_TIME_UNIT_MS, round(1000 / fps / GIF_TIME_UNIT_MS) * GIF_TIME_UNIT_MS)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=delay_ms, loop=0)


def _pick_encoder(av: Any, names: tuple[str, ...], ext: str) -> str:
    for name in names:
        try:
            av.codec.Codec(name, "w")
        except Exception:
            continue
        return name
    raise MissingDependencyError(f"this PyAV build has none of the {ext} encoders {names}")


def _write_ffmpeg(frames: np.ndarray, path: Path, *, fps: float, pad_fill: int, ext: str) -> None:
    """frames: (T, H, W, 3) uint8. yuv420p needs even sizes: pad one pixel where odd."""
    av = import_av()
    from fractions import Fraction

    h, w = frames.shape[1:3]
    pad_h, pad_w = h % 2, w % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), constant_values=pad_fill)
    container_format, encoders, options = FFMPEG_FORMATS[ext]
    codec = _pick_encoder(av, encoders, ext)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, options=options if codec == encoders[0] else {})
        if codec == "mpeg4":
            stream.codec_context.qscale = MPEG4_QSCALE
        stream.width, stream.height = w + pad_w, h + pad_h
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (frame2 before frame10)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: _natural_key(p.name))


def _check_clip_args(frames: int | None, start: int, stride: int) -> None:
    if frames is not None and (not isinstance(frames, int) or isinstance(frames, bool) or frames < 1):
        raise ValueError(f"frames must be a positive int or None, got {frames!r}")
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise ValueError(f"start must be a non-negative int, got {start!r}")
    if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride must be a positive int, got {stride!r}")


def _wanted(index: int, frames: int | None, start: int, stride: int) -> bool:
    if index < start or (index - start) % stride:
        return False
    return frames is None or (index - start) // stride < frames


def read_video(
    path: str | os.PathLike[str],
    *,
    frames: int | None = None,
    start: int = 0,
    stride: int = 1,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Decode frames ``start, start + stride, ...`` of a video file or frame folder.

    Args:
        path: a video file (anything FFmpeg reads: mp4, avi, webm, gif, ...) or a folder of
            image frames (png/jpg/..., natural order).
        frames: how many frames to return (None: all from ``start`` on). Decoding stops as soon
            as they are read; a clip with fewer frames raises :class:`VideoReadError`.
        start: index of the first frame; stride: step between frames.
        size: (height, width) to scale every frame to while decoding (area averaging when
            shrinking, so no aliasing; much cheaper than resizing the decoded clip). None keeps
            the stored size.

    Returns:
        (T, H, W, 3) uint8 RGB.
    """
    _check_clip_args(frames, start, stride)
    if size is not None:
        if (
            not isinstance(size, (tuple, list))
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            raise ValueError(f"size must be a (height, width) pair of positive ints or None, got {size!r}")
        size = (int(size[0]), int(size[1]))
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such video file or frame folder: {str(path)!r}")
    reader = _read_frame_folder if path.is_dir() else _read_video_file
    out = reader(path, frames, start, stride, size)
    if not out or (frames is not None and len(out) < frames):
        need = f"{frames} frames" if frames is not None else "a frame"
        raise VideoReadError(
            f"{str(path)!r} is too short: wanted {need} from frame {start} with stride {stride}, got "
            f"{len(out)}"
        )
    return torch.from_numpy(np.stack(out))


def _read_frame_folder(
    folder: Path, frames: int | None, start: int, stride: int, size: tuple[int, int] | None
) -> list[np.ndarray]:
    image_mod = import_pil()
    files = list_frame_files(folder)
    out = []
    first_size = None
    for index, file in enumerate(files):
        if not _wanted(index, frames, start, stride):
            continue
        try:
            with image_mod.open(file) as im:
                im = im.convert("RGB")
                if first_size is not None and im.size != first_size:
                    raise VideoReadError(
                        f"frame {str(file)!r} has size {im.size}, the folder's first frame {first_size} "
                        "(width, height)"
                    )
                first_size = im.size
                if size is not None and (im.height, im.width) != size:
                    shrink = size[0] < im.height and size[1] < im.width
                    resample = image_mod.Resampling.BOX if shrink else image_mod.Resampling.BILINEAR
                    im = im.resize((size[1], size[0]), resample)
                arr = np.asarray(im)
        except VideoReadError:
            raise
        except Exception as exc:
            raise VideoReadError(f"cannot read frame {str(file)!r}: {exc}") from None
        out.append(arr)
        if frames is not None and len(out) == frames:
            break
    return out


def _read_video_file(
    path: Path, frames: int | None, start: int, stride: int, size: tuple[int, int] | None
) -> list[np.ndarray]:
    av = import_av()
    out: list[np.ndarray] = []
    scale: dict[str, Any] = {}
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise VideoReadError(f"{str(path)!r} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                if _wanted(index, frames, start, stride):
                    if size is not None and not scale and (frame.height, frame.width) != size:
                        shrink = size[0] < frame.height and size[1] < frame.width
                        scale = {
                            "height": size[0],
                            "width": size[1],
                            "interpolation": "AREA" if shrink else "BILINEAR",
                        }
                    out.append(frame.to_ndarray(format="rgb24", **scale))
                    if frames is not None and len(out) == frames:
                        break
    except VideoReadError:
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise VideoReadError(f"cannot decode {str(path)!r}: {exc}") from None
    return out


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame count, size and frame rate of a video file or frame folder, decoding little.

    For video files the count comes from the container (or duration x rate); when the container
    does not say (some GIF/WebM files), every frame is decoded once to count them.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such video file or frame folder: {str(path)!r}")
    if path.is_dir():
        image_mod = import_pil()
        files = list_frame_files(path)
        if not files:
            raise VideoReadError(f"{str(path)!r} holds no image frames ({', '.join(IMAGE_EXTENSIONS)})")
        try:
            with image_mod.open(files[0]) as im:
                width, height = im.size
        except Exception as exc:
            raise VideoReadError(f"cannot read frame {str(files[0])!r}: {exc}") from None
        return VideoInfo(len(files), height, width, 0.0)
    av = import_av()
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise VideoReadError(f"{str(path)!r} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            count = int(stream.frames or 0)
            height, width = int(stream.codec_context.height), int(stream.codec_context.width)
            if count <= 0:
                count = sum(1 for _ in container.decode(stream))
            if count <= 0 or height <= 0 or width <= 0:
                raise VideoReadError(f"{str(path)!r} holds no decodable frames")
    except VideoReadError:
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise VideoReadError(f"cannot decode {str(path)!r}: {exc}") from None
    return VideoInfo(count, height, width, fps)
