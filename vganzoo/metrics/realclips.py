"""Real clips for the pinned protocols: listing a video folder, drawing clips, reading their frames.

Layouts (the ones StyleGAN-V's, VideoGPT's and DIGAN's preprocessing scripts produce for UCF-101,
SkyTimelapse, FaceForensics and Taichi):

* frame folders: ``DATA/<video>/<frame>.png|jpg...`` (StyleGAN-V's ``VideoFramesFolderDataset``);
* video files: ``DATA/<video>.mp4|avi|webm|gif``;
* either one level down in class folders: ``DATA/<class>/<video>...`` (UCF-101's own layout);
* a split: ``DATA/<split>/...``; ``split="train+test"`` takes both, merged as if one folder.

Order (StyleGAN-V's): videos sorted by name with Python's string order (the path relative to the split
folder), frames of a frame folder sorted by file name the same way (``frame_10`` before ``frame_2``:
not natural order, exactly as StyleGAN-V sorts). Frames are read as stored: uint8, no resizing,
gray kept 1-channel (repeated to RGB later, as StyleGAN-V does).

A listing's fingerprint hashes every listed file's relative name, size and modification time, so a
cache made from other data never matches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import videoio

__all__ = ["RealListing", "RealVideo", "list_real_videos", "read_clip", "sample_clips"]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".gif", ".mkv", ".mov")
FRAME_EXTENSIONS = videoio.IMAGE_EXTENSIONS
REAL_STREAM = 1  # numpy.random.default_rng([seed, REAL_STREAM]) draws the real clips
SPLIT_JOIN = "+"


@dataclasses.dataclass(frozen=True)
class RealVideo:
    """One listed video: ``name`` (relative to its split folder), its path and frame count."""

    name: str
    path: Path
    length: int
    frames: tuple[Path, ...] | None  # a frame folder's frames in StyleGAN-V's order; None for a file


@dataclasses.dataclass
class RealListing:
    root: Path
    split: str | None
    videos: list[RealVideo]
    fingerprint: str

    def describe(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "split": self.split,
            "videos_listed": len(self.videos),
            "fingerprint": self.fingerprint,
        }


def _visible(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as it:
        return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)


def _frame_entries(entries: list[os.DirEntry]) -> list[os.DirEntry]:
    return [e for e in entries if e.is_file() and os.path.splitext(e.name)[1].lower() in FRAME_EXTENSIONS]


def _is_video_file(entry: os.DirEntry) -> bool:
    return entry.is_file() and os.path.splitext(entry.name)[1].lower() in VIDEO_EXTENSIONS


def _add_frame_folder(
    entry: os.DirEntry, name: str, frames: list[os.DirEntry], out: list, digest: Any
) -> None:
    for f in frames:
        stat = f.stat()
        digest.update(f"{name}/{f.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    out.append(RealVideo(name, Path(entry.path), len(frames), tuple(Path(f.path) for f in frames)))


def _add_video_file(entry: os.DirEntry, name: str, out: list, digest: Any) -> None:
    stat = entry.stat()
    digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    try:
        length = videoio.probe_video(entry.path).frames
    except (videoio.VideoReadError, OSError):
        length = 0  # unreadable: listed (so the fingerprint sees it), never drawn
    out.append(RealVideo(name, Path(entry.path), length, None))


def _list_folder(folder: Path, out: list[RealVideo], digest: Any) -> None:
    """Videos directly in ``folder`` or one level down in class folders, in name order."""
    entries = _visible(folder)
    if _frame_entries(entries):
        raise ValueError(
            f"data: {folder} holds image files directly; frames must be in one folder per video "
            "(DATA/<video>/<frame>.png, StyleGAN-V's layout)"
        )
    for entry in entries:
        if _is_video_file(entry):
            _add_video_file(entry, entry.name, out, digest)
        elif entry.is_dir():
            children = _visible(Path(entry.path))
            frames = _frame_entries(children)
            if frames and not any(c.is_dir() or _is_video_file(c) for c in children):
                _add_frame_folder(entry, entry.name, frames, out, digest)
                continue
            for child in children:  # a class folder
                name = f"{entry.name}/{child.name}"
                if _is_video_file(child):
                    _add_video_file(child, name, out, digest)
                elif child.is_dir():
                    grand = _frame_entries(_visible(Path(child.path)))
                    if grand:
                        _add_frame_folder(child, name, grand, out, digest)


def _split_folders(root: Path, split: str | None) -> list[Path]:
    if split is None or split == "":
        return [root]
    folders = [root / part for part in split.split(SPLIT_JOIN)]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise FileNotFoundError(
            f"split {split!r}: no folder {', '.join(missing)} (give split=None to read {root} itself)"
        )
    return folders


def _names_a_dataset(data: str | os.PathLike) -> bool:
    """Whether ``data`` is the name of a registered dataset (moving-digits), not a path."""
    from ..registry import FOLDER_DATASET, list_components

    return isinstance(data, str) and data != FOLDER_DATASET and data in list_components("dataset")


def list_real_videos(data: str | os.PathLike, split: str | None) -> RealListing:
    """List the videos of ``data`` (a folder) for ``split`` in StyleGAN-V's order, with a fingerprint."""
    if not isinstance(data, (str, os.PathLike)):
        raise TypeError(f"data: expected a video folder, got {type(data).__name__}")
    root = Path(data).expanduser().resolve()
    if not root.is_dir():
        if _names_a_dataset(data):
            raise ValueError(
                f"data: {os.fspath(data)!r} is a built-in dataset, but protocols read a folder of videos; "
                "built-in datasets are for vganzoo's own metrics (fvd-digits, consistency, ...), without a "
                "protocol"
            )
        raise FileNotFoundError(f"data: {root} is not a folder of videos")
    digest = hashlib.sha256()
    videos: list[RealVideo] = []
    for folder in _split_folders(root, split):
        _list_folder(folder, videos, digest)
    videos.sort(key=lambda v: v.name)  # a merged split reads as one folder; stable for equal names
    if not videos:
        raise FileNotFoundError(
            f"data: no videos in {root}{'/' + split if split else ''} (frame folders or "
            f"{', '.join(VIDEO_EXTENSIONS)} files)"
        )
    return RealListing(root, split, videos, digest.hexdigest())


@dataclasses.dataclass(frozen=True)
class ClipDraw:
    """The real clips of one draw: (video, first frame) pairs, the frame step, and the counts."""

    clips: list[tuple[RealVideo, int]]
    stride: int
    frames: int
    usable: int
    dropped: int

    def describe(self) -> dict[str, Any]:
        return {"clips": len(self.clips), "usable_videos": self.usable, "dropped_short": self.dropped}


def _too_few(
    listing: RealListing, what: str, have: int, need: int, protocol: str, dropped: int
) -> ValueError:
    where = f"{listing.root}{'/' + listing.split if listing.split else ''}"
    return ValueError(
        f"data: {where} gives {have} {what} ({len(listing.videos)} videos listed, {dropped} too short), but "
        f"{protocol} needs {need} real clips; pass n_real={have} (--n-real) to use what there is"
    )


def sample_clips(
    listing: RealListing, *, mode: str, frames: int, subsample: int, n: int, seed: int, protocol: str
) -> ClipDraw:
    """Draw ``n`` real clips.

    ``mode="stylegan-v"``: videos with at least ``frames * subsample`` frames, the first ``n`` of them in
    listing order, one clip each from ``offset = rng.integers(0, L - frames * subsample + subsample)``
    (StyleGAN-V's ``random.randint(0, L - n s + s - 1)``), drawn video by video.
    ``mode="windows"``: every window of ``frames`` consecutive frames of every video (VideoClips,
    step 1), ``n`` of them chosen without replacement with ``rng.choice``.
    ``rng = numpy.random.default_rng([seed, 1])``.
    """
    rng = np.random.default_rng([seed, REAL_STREAM])
    if mode == "stylegan-v":
        span = frames * subsample
        usable = [v for v in listing.videos if v.length >= span]
        dropped = len(listing.videos) - len(usable)
        if len(usable) < n:
            raise _too_few(listing, f"videos of at least {span} frames", len(usable), n, protocol, dropped)
        clips = [(v, int(rng.integers(0, v.length - span + subsample))) for v in usable[:n]]
        return ClipDraw(clips, subsample, frames, len(usable), dropped)
    if mode == "windows":
        counts = np.array([max(v.length - frames + 1, 0) for v in listing.videos], dtype=np.int64)
        dropped = int((counts == 0).sum())
        total = int(counts.sum())
        if total < n:
            raise _too_few(listing, f"windows of {frames} frames", total, n, protocol, dropped)
        chosen = rng.choice(total, size=n, replace=False)
        ends = np.cumsum(counts)
        owners = np.searchsorted(ends, chosen, side="right")
        starts = chosen - (ends[owners] - counts[owners])
        clips = [(listing.videos[int(o)], int(s)) for o, s in zip(owners, starts)]
        return ClipDraw(clips, 1, frames, int((counts > 0).sum()), dropped)
    raise ValueError(f"unknown real-clip mode {mode!r}")


def _read_frame(path: Path) -> np.ndarray:
    """One frame as StyleGAN-V loads it: ``np.array(PIL.Image.open(f))``, HW -> HW1."""
    image_mod = videoio.import_pil()
    try:
        with image_mod.open(path) as im:
            if im.mode not in ("RGB", "L"):
                raise videoio.VideoReadError(
                    f"frame {str(path)!r} is {im.mode}; StyleGAN-V's loader reads RGB or grayscale frames as "
                    "stored (convert the folder first)"
                )
            array = np.array(im)
    except videoio.VideoReadError:
        raise
    except Exception as exc:
        raise videoio.VideoReadError(f"cannot read frame {str(path)!r}: {exc}") from None
    return array[:, :, None] if array.ndim == 2 else array


def read_clip(video: RealVideo, start: int, frames: int, stride: int) -> torch.Tensor:
    """Frames ``start, start + stride, ...`` (``frames`` of them) as uint8 ``(C, T, H, W)``."""
    if video.frames is not None:
        picked: Sequence[Path] = video.frames[start : start + (frames - 1) * stride + 1 : stride]
        arrays = [_read_frame(p) for p in picked]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise videoio.VideoReadError(
                f"frames of {str(video.path)!r} differ in size or channels: {sorted(shapes)}"
            )
        clip = np.stack(arrays)
    else:
        clip = videoio.read_video(video.path, frames=frames, start=start, stride=stride).numpy()
    if clip.shape[0] != frames:
        raise videoio.VideoReadError(
            f"{str(video.path)!r}: got {clip.shape[0]} frames from {start}, wanted {frames}"
        )
    return torch.from_numpy(np.ascontiguousarray(clip)).permute(3, 0, 1, 2)
