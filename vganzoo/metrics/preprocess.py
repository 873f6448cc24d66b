"""Video tensor helpers shared by the extractors: checks, frame selection, channels, resizing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

__all__ = ["centre_crop", "check_videos", "resize_frames", "select_frames", "to_channels"]

RGB_CHANNELS = 3
GRAY_CHANNELS = 1
RANGE_SLACK = 1e-3  # generators clamp to [-1, 1]; resampling can overshoot by rounding
_CORNER_MODES = ("linear", "bilinear", "bicubic", "trilinear")


def check_videos(videos: torch.Tensor, name: str = "videos") -> torch.Tensor:
    """Validate ``videos: (N, C, T, H, W)`` floating point with C in {1, 3}; returns it unchanged."""
    if not isinstance(videos, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (N, C, T, H, W), got {type(videos).__name__}")
    if videos.ndim != 5:
        raise ValueError(f"{name} must have shape (N, C, T, H, W), got {tuple(videos.shape)}")
    if not videos.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating point tensor in [-1, 1], got dtype {videos.dtype}")
    if videos.shape[1] not in (GRAY_CHANNELS, RGB_CHANNELS):
        raise ValueError(f"{name} must have 1 or 3 channels (dim 1), got shape {tuple(videos.shape)}")
    if videos.numel():
        low, high = float(videos.amin()), float(videos.amax())
        if low < -1 - RANGE_SLACK or high > 1 + RANGE_SLACK:  # NaN compares False: its own check reports it
            raise ValueError(
                f"{name} must be in [-1, 1], got values in [{low:.4g}, {high:.4g}] "
                "(for 0..255 or 0..1 videos use x / 127.5 - 1 or 2 * x - 1)"
            )
    return videos


def select_frames(videos: torch.Tensor, frames: int, stride: int = 1) -> torch.Tensor:
    """The first ``frames`` frames taken every ``stride``-th: (N, C, T, H, W) -> (N, C, frames, H, W)."""
    needed = (frames - 1) * stride + 1
    if videos.shape[2] < needed:
        raise ValueError(
            f"need clips of at least {needed} frames for frames={frames}, stride={stride}; got "
            f"{videos.shape[2]}"
        )
    return videos[:, :, :needed:stride]


def to_channels(videos: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert between gray and RGB: 1 -> 3 repeats the channel, 3 -> 1 averages them."""
    have = videos.shape[1]
    if have == channels:
        return videos
    if have == GRAY_CHANNELS and channels == RGB_CHANNELS:
        return videos.expand(-1, RGB_CHANNELS, -1, -1, -1)
    if have == RGB_CHANNELS and channels == GRAY_CHANNELS:
        return videos.mean(dim=1, keepdim=True)
    raise ValueError(f"cannot convert {have}-channel videos to {channels} channels")


def resize_frames(
    videos: torch.Tensor,
    size: tuple[int, int],
    *,
    mode: str = "bilinear",
    antialias: bool = False,
    align_corners: bool = False,
) -> torch.Tensor:
    """Resize every frame: (N, C, T, H, W) -> (N, C, T, size[0], size[1]); no-op when already that size.

    ``align_corners=True`` maps the corner pixels' centres onto each other (Chainer's
    ``resize_images``); False is PyTorch's and TensorFlow 2's half-pixel convention.
    """
    t = videos.shape[2]  # split by t, not n: n may be 0
    if tuple(videos.shape[-2:]) == tuple(size):
        return videos
    frames = rearrange(videos, "n c t h w -> (n t) c h w")
    corners = align_corners if mode in _CORNER_MODES else None  # nearest takes no align_corners
    frames = F.interpolate(frames, size=size, mode=mode, align_corners=corners, antialias=antialias)
    return rearrange(frames, "(n t) c h w -> n c t h w", t=t)


def centre_crop(videos: torch.Tensor, size: int) -> torch.Tensor:
    """Centre ``size x size`` crop of every frame."""
    h, w = videos.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot centre-crop {size}x{size} from {h}x{w} frames")
    top, left = (h - size) // 2, (w - size) // 2
    return videos[..., top : top + size, left : left + size]
