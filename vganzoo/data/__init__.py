"""Datasets: built-in synthetic videos (no download) and folders of real videos.

    >>> from vganzoo.data import build_dataset
    >>> ds = build_dataset("moving-digits", resolution=32, frames=16)
    >>> item = ds[0]     # {"video": (1, 16, 32, 32) float32 in [-1, 1], "label": tensor(7)}

Every dataset yields ``{"video": (C, T, H, W) float32 in [-1, 1], "label": int64 scalar}``
(label -1 when unlabelled) and has ``num_classes`` (0 when unlabelled) and ``channels``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..registry import FOLDER_DATASET, create_dataset, register_component
from .folder import VideoFolder, resize_center_crop, to_model_range
from .synthetic import MOTIONS, SHAPES, MovingDigits, MovingShapes, render_digit

__all__ = [
    "BUILTIN_DATASETS",
    "MOTIONS",
    "SHAPES",
    "MovingDigits",
    "MovingShapes",
    "VideoFolder",
    "build_dataset",
    "render_digit",
    "resize_center_crop",
    "to_model_range",
]

BUILTIN_DATASETS = {"moving-digits": MovingDigits, "moving-shapes": MovingShapes}


def _folder_dataset(spec: str | os.PathLike[str], *, split: str = "train", **kwargs: Any) -> VideoFolder:
    """The ``folder`` dataset: ``<spec>/<split>`` when it exists (``ucf101/train``), else ``spec``."""
    root = Path(spec)
    if not root.is_dir():
        raise FileNotFoundError(
            f"unknown dataset {str(spec)!r}: not a built-in ({', '.join(BUILTIN_DATASETS)}) nor an existing "
            "folder"
        )
    if (root / split).is_dir():
        root = root / split
    return VideoFolder(root, **kwargs)


for _name, _cls in BUILTIN_DATASETS.items():
    register_component("dataset", _name)(_cls)
register_component("dataset", FOLDER_DATASET)(_folder_dataset)


def build_dataset(
    spec: str | os.PathLike[str],
    *,
    resolution: int,
    frames: int,
    frame_stride: int = 1,
    channels: int | None = None,
    split: str = "train",
    seed: int = 0,
    **kw: Any,
) -> Dataset:
    """A dataset by registered name (``moving-digits``, ``moving-shapes``, a plugin's) or folder path.

    Args:
        spec: a registered dataset name or a folder. For a folder, ``<folder>/<split>`` is used when it
            exists (e.g. ``ucf101/train``), else the folder itself.
        resolution, frames, frame_stride: clip size and the step between its frames.
        channels: 1 or 3; None keeps the dataset's default (digits 1, shapes 3, folders 3).
        split: "train", "val" or "test" (synthetic sets draw a separate stream per split).
        seed: makes the synthetic clips and a folder's random clip starts reproducible.
        **kw: passed on, e.g. ``num_digits=2, length=1000`` (digits), ``label="shape"``
            (shapes), ``random_start=False, extensions=(".mp4",)`` (folders).
    """
    common: dict[str, Any] = {
        "resolution": resolution,
        "frames": frames,
        "frame_stride": frame_stride,
        "seed": seed,
        "split": split,
        **kw,
    }
    if channels is not None:
        common["channels"] = channels
    return create_dataset(spec, **common)
