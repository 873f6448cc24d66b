"""Video files: read clips, lay batches out as a grid, write GIF and MP4 atomically.

    >>> from vganzoo.io import save_video, read_video
    >>> save_video(videos, "samples.gif", fps=8)      # videos: (N, C, T, H, W) in [-1, 1]
    >>> clip = read_video("clip.mp4", frames=16, stride=2)   # (16, H, W, 3) uint8

Decoding and MP4 encoding go through PyAV (FFmpeg); GIFs are written with Pillow. Both are
imported on first use, so ``import vganzoo.io`` works without the ``video`` extra; a function that
needs them then raises :class:`MissingDependencyError` saying what to install.

Known limits: GIF stores a 256-colour palette per frame (grayscale round-trips exactly, colour
approximately) and Pillow folds identical consecutive frames into one longer frame, so a video
that does not move reads back with fewer frames. MP4 (H.264 or MPEG-4 part 2) is lossy and needs
even frame sizes: an odd-sized grid is padded by one pixel with the padding value.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from einops import rearrange

from .errors import VganzooError

__all__ = [
    "MissingDependencyError",
    "VideoReadError",
    "VideoInfo",
    "VIDEO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "WRITABLE_EXTENSIONS",
    "make_grid",
    "to_uint8",
    "save_video",
    "read_video",
    "probe_video",
    "atomic_path",
]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".gif", ".mkv", ".mov")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
WRITABLE_EXTENSIONS = (".gif", ".mp4")
UINT8_MAX = 255
# Float videos may overshoot [-1, 1] by rounding error; anything further out is a caller's bug.
RANGE_TOLERANCE = 1e-3
GIF_TIME_UNIT_MS = 10  # GIF frame delays are stored in hundredths of a second
MP4_CODECS = ("libx264", "mpeg4")  # preferred first; both ship with PyAV's bundled FFmpeg
H264_CRF = "18"  # visually near-lossless; sample grids are small


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


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise MissingDependencyError(
            "reading videos and writing MP4 needs PyAV: pip install 'vganzoo[video]' (or pip install av)"
        ) from None
    return av


def _import_pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependencyError(
            "writing GIFs and reading image frames needs Pillow: pip install 'vganzoo[video]' (or pip install pillow)"
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
        raise ValueError(f"{name} must have 1 or 3 channels in dim 1 (layout N, C, T, H, W), got shape {tuple(videos.shape)}")
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


def make_grid(videos: Any, nrow: int | None = None, padding: int = 2, pad_value: float | None = None) -> torch.Tensor:
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
    grid = torch.full((c, t, nrows * cell_h + padding, ncol * cell_w + padding), pad_value, dtype=videos.dtype)
    for i in range(n):
        row, col = divmod(i, ncol)
        top, left = padding + row * cell_h, padding + col * cell_w
        grid[:, :, top : top + h, left : left + w] = videos[i]
    return grid


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and move it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    # O_EXCL on a random name (not mkstemp) so the file gets the usual umask-based permissions
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def save_video(
    videos: Any,
    path: str | os.PathLike[str],
    *,
    fps: float = 8,
    nrow: int | None = None,
    padding: int = 2,
    pad_value: float | None = None,
) -> Path:
    """Write one video or a grid of videos to ``path`` (``.gif`` or ``.mp4``), atomically.

    Args:
        videos: (N, C, T, H, W) or (C, T, H, W); float in [-1, 1] or uint8 in [0, 255]; 1 or 3
            channels (1 is written as gray). A torch tensor (any device) or numpy array.
        path: output file; its extension picks the format. Missing parent folders are created.
        fps: frames per second (GIF delays are rounded to 10 ms).
        nrow, padding, pad_value: grid layout, see :func:`make_grid`. A single video
            (C, T, H, W) is written without padding.

    Returns:
        The path written. Nothing is left at ``path`` (or beside it) when writing fails.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITABLE_EXTENSIONS:
        raise ValueError(f"path: unknown video extension {path.suffix!r} in {str(path)!r}; use one of {', '.join(WRITABLE_EXTENSIONS)}")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    single = _as_tensor(videos).ndim == 4
    batch = _as_batch(videos)
    if pad_value is not None and batch.dtype == torch.uint8 and not float(pad_value).is_integer():
        raise ValueError("pad_value must be an integer in [0, 255] for uint8 videos")
    if pad_value is not None and batch.dtype != torch.uint8:
        pad_value = float(pad_value)
        if not -1 <= pad_value <= 1:
            raise ValueError(f"pad_value must be in [-1, 1] for float videos, got {pad_value}")
        pad_value = round((pad_value + 1) * UINT8_MAX / 2)
    frames = to_uint8(batch)
    grid = frames[0] if single else make_grid(frames, nrow=nrow, padding=padding, pad_value=pad_value)
    if grid.shape[0] == 1:
        grid = grid.expand(3, *grid.shape[1:]) if ext == ".mp4" else grid
    thwc = rearrange(grid, "c t h w -> t h w c").contiguous().numpy()
    encoders = {".gif": _write_gif, ".mp4": _write_mp4}
    pad_fill = UINT8_MAX if pad_value is None else int(pad_value)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        encoders[ext](thwc, tmp, fps=float(fps), pad_fill=pad_fill)
    return path


def _write_gif(frames: np.ndarray, path: Path, *, fps: float, pad_fill: int) -> None:
    """frames: (T, H, W, C) uint8, C in {1, 3}."""
    image_mod = _import_pil()
    if frames.shape[-1] == 1:
        images = [image_mod.fromarray(f[..., 0], mode="L") for f in frames]
    else:
        images = [image_mod.fromarray(f, mode="RGB") for f in frames]
    delay_ms = max(GIF_TIME_UNIT_MS, round(1000 / fps / GIF_TIME_UNIT_MS) * GIF_TIME_UNIT_MS)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=delay_ms, loop=0)


def _mp4_codec(av: Any) -> str:
    for name in MP4_CODECS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001 - absent encoders raise codec-specific errors
            continue
        return name
    raise MissingDependencyError(f"this PyAV build has none of the MP4 encoders {MP4_CODECS}")


def _write_mp4(frames: np.ndarray, path: Path, *, fps: float, pad_fill: int) -> None:
    """frames: (T, H, W, 3) uint8. yuv420p needs even sizes: pad one pixel where odd."""
    av = _import_av()
    from fractions import Fraction

    t, h, w, _ = frames.shape
    pad_h, pad_w = h % 2, w % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), constant_values=pad_fill)
    codec = _mp4_codec(av)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4") as container:
        options = {"crf": H264_CRF} if codec == "libx264" else {}
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height = w + pad_w, h + pad_h
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
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


def read_video(path: str | os.PathLike[str], *, frames: int | None = None, start: int = 0, stride: int = 1) -> torch.Tensor:
    """Decode frames ``start, start + stride, ...`` of a video file or frame folder.

    Args:
        path: a video file (anything FFmpeg reads: mp4, avi, webm, gif, ...) or a folder of
            image frames (png/jpg/..., natural order).
        frames: how many frames to return (None: all from ``start`` on). Decoding stops as soon
            as they are read; a clip with fewer frames raises :class:`VideoReadError`.
        start: index of the first frame; stride: step between frames.

    Returns:
        (T, H, W, 3) uint8 RGB.
    """
    _check_clip_args(frames, start, stride)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such video file or frame folder: {str(path)!r}")
    out = _read_frame_folder(path, frames, start, stride) if path.is_dir() else _read_video_file(path, frames, start, stride)
    if not out or (frames is not None and len(out) < frames):
        need = f"{frames} frames" if frames is not None else "a frame"
        raise VideoReadError(f"{str(path)!r} is too short: wanted {need} from frame {start} with stride {stride}, got {len(out)}")
    return torch.from_numpy(np.stack(out))


def _read_frame_folder(folder: Path, frames: int | None, start: int, stride: int) -> list[np.ndarray]:
    image_mod = _import_pil()
    files = list_frame_files(folder)
    out = []
    size = None
    for index, file in enumerate(files):
        if not _wanted(index, frames, start, stride):
            continue
        try:
            with image_mod.open(file) as im:
                arr = np.asarray(im.convert("RGB"))
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files
            raise VideoReadError(f"cannot read frame {str(file)!r}: {exc}") from None
        if size is not None and arr.shape != size:
            raise VideoReadError(f"frame {str(file)!r} has size {arr.shape[:2]}, the folder's first frame {size[:2]}")
        size = arr.shape
        out.append(arr)
        if frames is not None and len(out) == frames:
            break
    return out


def _read_video_file(path: Path, frames: int | None, start: int, stride: int) -> list[np.ndarray]:
    av = _import_av()
    out: list[np.ndarray] = []
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise VideoReadError(f"{str(path)!r} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                if _wanted(index, frames, start, stride):
                    out.append(frame.to_ndarray(format="rgb24"))
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
        image_mod = _import_pil()
        files = list_frame_files(path)
        if not files:
            raise VideoReadError(f"{str(path)!r} holds no image frames ({', '.join(IMAGE_EXTENSIONS)})")
        try:
            with image_mod.open(files[0]) as im:
                width, height = im.size
        except Exception as exc:  # noqa: BLE001
            raise VideoReadError(f"cannot read frame {str(files[0])!r}: {exc}") from None
        return VideoInfo(len(files), height, width, 0.0)
    av = _import_av()
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
