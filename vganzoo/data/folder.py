"""``VideoFolder``: clips from a folder of video files or frame folders (UCF-101's layout too)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch.utils.data import Dataset

from .. import videoio as vio

__all__ = ["VideoFolder", "resize_center_crop", "scaled_size", "to_model_range"]

# ITU-R BT.601 luma weights for RGB -> gray
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
UINT8_MAX = 255.0
# Widest frames a folder may hold (long side / short side): 21:9 cinema is 2.33. Scaling a 1x20000
# frame's short side to the resolution would make frames of gigabytes; such files are skipped.
MAX_ASPECT_RATIO = 4.0


class _Item(NamedTuple):
    path: Path
    label: int  # -1 when the item is not inside a class folder


def scaled_size(height: int, width: int, resolution: int) -> tuple[int, int]:
    """(height, width) with the shorter side scaled to ``resolution``, aspect ratio kept."""
    scale = resolution / min(height, width)
    return max(resolution, round(height * scale)), max(resolution, round(width * scale))


def resize_center_crop(video: torch.Tensor, resolution: int) -> torch.Tensor:
    """Scale so the shorter side is ``resolution`` (antialiased bilinear), then centre-crop.

    video: (C, T, H, W) float -> (C, T, resolution, resolution). Frames already at
    :func:`scaled_size` are only cropped.
    """
    h, w = video.shape[-2:]
    scale = resolution / min(h, w)
    new_h, new_w = scaled_size(h, w, resolution)
    if (new_h, new_w) != (h, w):
        frames = rearrange(video, "c t h w -> t c h w")
        frames = F.interpolate(
            frames, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=scale < 1
        )
        video = rearrange(frames, "t c h w -> c t h w")
    top, left = (new_h - resolution) // 2, (new_w - resolution) // 2
    return video[:, :, top : top + resolution, left : left + resolution]


def to_model_range(frames: torch.Tensor, channels: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB -> (channels, T, H, W) float32 in [-1, 1] (gray when channels=1)."""
    video = rearrange(frames, "t h w c -> c t h w").float()
    if channels == 1:
        weights = torch.tensor(LUMA_WEIGHTS, dtype=video.dtype).view(3, 1, 1, 1)
        video = (video * weights).sum(dim=0, keepdim=True)
    return video.mul_(2 / UINT8_MAX).sub_(1)


class VideoFolder(Dataset):
    """Fixed-length clips from a folder of videos.

    Layout: ``root`` holds video files (``extensions``) and/or frame folders (folders of
    png/jpg/... images, natural order), either directly or one level down in class folders
    (UCF-101: ``root/<class>/<video>``). Class folders are sorted by name and numbered from 0
    (``class_names``, ``num_classes``); items directly in ``root`` get label -1. A folder counts
    as a frame folder when it holds image files and neither videos nor sub-folders, otherwise as a
    class folder (where stray images are ignored).

    Clips: ``frames`` frames taken every ``frame_stride`` frames; the start is random
    (deterministic by ``(seed, epoch, index)``; call :meth:`set_epoch` each epoch, as with
    DistributedSampler) or the middle of the video with ``random_start=False``. Frames are
    resized so the short side is ``resolution``, centre-cropped to a square, converted to
    ``channels`` (3 RGB or 1 gray) and scaled to [-1, 1].

    Bad files: files are listed at construction; each is opened when first used. One that cannot
    be decoded or has fewer than ``(frames - 1) * frame_stride + 1`` frames is skipped with a
    warning and counted in ``skipped`` (per process: DataLoader workers count their own), and
    the item is replaced by the next good one (index + 1, + 2, ...), so an epoch never fails
    because of a bad file. ``scan=True`` checks every file up front instead, so ``len()`` and
    ``skipped`` are exact from the start (slow for large folders).

    Items: ``{"video": (C, T, H, W) float32 in [-1, 1], "label": int64 scalar}``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        frames: int = 16,
        frame_stride: int = 1,
        resolution: int = 64,
        *,
        random_start: bool = True,
        channels: int = 3,
        extensions: tuple[str, ...] = (".mp4", ".avi", ".webm", ".gif"),
        seed: int = 0,
        scan: bool = False,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"VideoFolder: root {str(self.root)!r} is not a folder")
        for name, value in (("frames", frames), ("frame_stride", frame_stride), ("resolution", resolution)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"VideoFolder: {name} must be a positive int, got {value!r}")
        if channels not in (1, 3):
            raise ValueError(f"VideoFolder: channels must be 1 or 3, got {channels!r}")
        if isinstance(extensions, str):
            extensions = (extensions,)
        self.extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
        self.frames, self.frame_stride, self.resolution = frames, frame_stride, resolution
        self.random_start, self.channels, self.seed = bool(random_start), channels, int(seed)
        self.epoch = 0
        self.span = (frames - 1) * frame_stride + 1  # source frames one clip covers
        self.class_names, self.items = self._find_items()
        self.num_classes = len(self.class_names)
        self.class_to_idx = {name: i for i, name in enumerate(self.class_names)}
        if not self.items:
            raise FileNotFoundError(
                f"VideoFolder: no videos ({', '.join(self.extensions)}) or frame folders found in "
                f"{str(self.root)!r}"
            )
        self._probed: dict[int, vio.VideoInfo] = {}  # item index -> frame count and size (probed once)
        self._bad: dict[int, str] = {}  # item index -> why it is skipped
        if scan:
            for index in range(len(self.items)):
                self._check(index)
            self.items = [item for i, item in enumerate(self.items) if i not in self._bad]
            self._probed = {}
            skipped, self._bad = len(self._bad), {}
            self._scanned_skips = skipped
            if not self.items:
                raise FileNotFoundError(
                    f"VideoFolder: every video in {str(self.root)!r} is unreadable or too short"
                )
        else:
            self._scanned_skips = 0

    # ---- discovery ----------------------------------------------------------------------------
    def _is_video(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() in self.extensions

    def _is_frame_folder(self, path: Path) -> bool:
        """Image files and neither videos nor sub-folders: a stray thumbnail in a class folder of videos
        (or of frame folders) does not turn that class into one 1-frame clip."""
        if not path.is_dir():
            return False
        has_images = False
        for p in path.iterdir():
            if p.name.startswith("."):
                continue
            if p.is_dir() or self._is_video(p):
                return False
            has_images = has_images or p.suffix.lower() in vio.IMAGE_EXTENSIONS
        return has_images

    def _find_items(self) -> tuple[list[str], list[_Item]]:
        key = lambda p: vio._natural_key(p.name)
        children = sorted((p for p in self.root.iterdir() if not p.name.startswith(".")), key=key)
        loose = [p for p in children if self._is_video(p) or self._is_frame_folder(p)]
        class_dirs = [p for p in children if p.is_dir() and p not in loose]
        items = [_Item(p, -1) for p in loose]
        class_names: list[str] = []
        for class_dir in class_dirs:
            members = sorted((p for p in class_dir.iterdir() if not p.name.startswith(".")), key=key)
            members = [p for p in members if self._is_video(p) or self._is_frame_folder(p)]
            if members:
                items.extend(_Item(p, len(class_names)) for p in members)
                class_names.append(class_dir.name)
        return class_names, items

    # ---- bookkeeping --------------------------------------------------------------------------
    @property
    def skipped(self) -> int:
        """Files found unreadable or too short so far (all of them after ``scan=True``)."""
        return self._scanned_skips + len(self._bad)

    @property
    def skipped_files(self) -> dict[str, str]:
        """Path -> reason, for the files skipped so far in this process (not those dropped by scan)."""
        return {str(self.items[i].path): why for i, why in self._bad.items()}

    def set_epoch(self, epoch: int) -> None:
        """Make random clip starts differ between epochs (and repeat for the same epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def _mark_bad(self, index: int, reason: str) -> None:
        if index in self._bad:
            return
        self._bad[index] = reason
        warnings.warn(
            f"VideoFolder: skipping {str(self.items[index].path)!r}: {reason}", RuntimeWarning, stacklevel=3
        )

    def _check(self, index: int) -> bool:
        """Probe item ``index`` once; False (and counted) when it cannot give a clip."""
        if index in self._bad:
            return False
        if index in self._probed:
            return True
        try:
            info = vio.probe_video(self.items[index].path)
        except (vio.VideoReadError, OSError) as exc:
            self._mark_bad(index, str(exc))
            return False
        if info.frames < self.span:
            self._mark_bad(index, f"too short: {info.frames} frames, a clip needs {self.span}")
            return False
        if max(info.height, info.width) > MAX_ASPECT_RATIO * min(info.height, info.width):
            self._mark_bad(
                index,
                f"frames of {info.width}x{info.height} are wider than {MAX_ASPECT_RATIO:g}:1 (scaled to the "
                "resolution they would take far more memory than a clip)",
            )
            return False
        self._probed[index] = info
        return True

    def _start(self, index: int) -> int:
        room = self._probed[index].frames - self.span
        if not self.random_start or room <= 0:
            return max(0, room // 2)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return int(rng.integers(0, room + 1))

    def _load(self, index: int) -> torch.Tensor | None:
        if not self._check(index):
            return None
        item, info = self.items[index], self._probed[index]
        size = scaled_size(info.height, info.width, self.resolution)  # the decoder scales, we crop
        try:
            frames = vio.read_video(
                item.path, frames=self.frames, start=self._start(index), stride=self.frame_stride, size=size
            )
        except (vio.VideoReadError, OSError) as exc:  # e.g. metadata promised more frames than decode
            self._mark_bad(index, str(exc))
            return None
        video = to_model_range(frames, self.channels)
        return resize_center_crop(video, self.resolution).contiguous()

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        n = len(self.items)
        index = int(index) + n if index < 0 else int(index)
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for VideoFolder of length {n}")
        for offset in range(n):  # the next good item stands in for a bad one
            candidate = (index + offset) % n
            video = self._load(candidate)
            if video is not None:
                return {"video": video, "label": torch.tensor(self.items[candidate].label, dtype=torch.long)}
        hint = (
            f" ({self.frames} frames taken every {self.frame_stride}: fewer --frames, or --set "
            "frame_stride=1, "
            "takes shorter clips)"
            if self.frame_stride > 1
            else " (fewer --frames takes shorter clips)"
        )
        raise ValueError(
            f"data: no file in {str(self.root)!r} gives a clip of {self.span} frames{hint}; "
            f"skipped {self.skipped}: {next(iter(self.skipped_files.values()), '')}"
        )

    def __repr__(self) -> str:
        return (
            f"VideoFolder(root={str(self.root)!r}, items={len(self)}, classes={self.num_classes}, "
            f"frames={self.frames}, "
            f"frame_stride={self.frame_stride}, resolution={self.resolution}, channels={self.channels})"
        )
