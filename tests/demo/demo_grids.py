"""Reading the demo's grid videos back: decode, then cut out each clip (nearest-neighbour downscale)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vganzoo.videoio import read_video


def decode(path: str | Path) -> torch.Tensor:
    """(T, H, W) uint8 gray frames of a video file (the demo's clips are gray or RGB; gray here)."""
    return read_video(path).float().mean(-1).round().to(torch.uint8)


def cells(frames: torch.Tensor, details: dict[str, Any]) -> torch.Tensor:
    """(rows, columns, T, h, w): each clip of the grid ``frames`` (T, H, W), at its own resolution.

    ``details`` is what the demo returns beside the video (rows, columns, clip_size, padding, scale).
    """
    h, w = details["clip_size"]
    pad, scale = details["padding"], details["scale"]
    out = torch.empty(details["rows"], details["columns"], frames.shape[0], h, w, dtype=frames.dtype)
    centre = scale // 2
    for r in range(details["rows"]):
        for c in range(details["columns"]):
            top = (pad + r * (h + pad)) * scale + centre
            left = (pad + c * (w + pad)) * scale + centre
            out[r, c] = frames[:, top : top + h * scale : scale, left : left + w * scale : scale]
    return out


def to_gray_uint8(videos: torch.Tensor) -> torch.Tensor:
    """(N, 1, T, H, W) in [-1, 1] -> (N, T, H, W) uint8, as the demo writes them."""
    from vganzoo.videoio import to_uint8

    return to_uint8(videos)[:, 0]
