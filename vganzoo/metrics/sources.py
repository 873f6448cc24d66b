"""Where :func:`~vganzoo.metrics.evaluate` gets its clips: generated batches drawn from a model (or cut
from a tensor) and real batches (with their labels, when the data has them) from a dataset name, a
folder, a Dataset or a tensor."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from typing import Any

import torch

from .. import registry
from .preprocess import check_videos, select_frames

__all__ = [
    "BUILTIN_EVAL_SPLIT",
    "FOLDER_EVAL_SPLIT",
    "generated_batches",
    "is_stats_file",
    "real_batches",
    "real_dataset",
]

BUILTIN_EVAL_SPLIT = "test"
FOLDER_EVAL_SPLIT = "train"
STATS_SUFFIX = ".safetensors"


def generated_batches(
    model: Any, n: int, batch_size: int, seed: int, device: torch.device
) -> Iterator[torch.Tensor]:
    if isinstance(model, torch.Tensor):
        check_videos(model, "generated videos")
        if model.shape[0] < n:
            raise ValueError(f"n={n} but only {model.shape[0]} generated videos were given")
        for start in range(0, n, batch_size):
            yield model[start : start + batch_size].to(device)
        return
    if not hasattr(model, "sample"):
        raise TypeError(
            f"model must be a VideoGAN (with .sample) or a tensor of videos, got {type(model).__name__}"
        )
    for index, start in enumerate(range(0, n, batch_size)):
        videos = model.sample(min(batch_size, n - start), seed=seed + index, device=device)
        yield check_videos(videos, "generated videos")


def is_stats_file(data: Any) -> bool:
    return (
        isinstance(data, (str, os.PathLike))
        and os.fspath(data).endswith(STATS_SUFFIX)
        and os.path.isfile(data)
    )


def real_dataset(
    data: Any, *, resolution: int, frames: int, stride: int, seed: int, split: str | None, length: int
) -> tuple[Any, str, str | None]:
    """(indexable of videos or dataset, description, split used)."""
    if isinstance(data, torch.Tensor):
        check_videos(data, "real videos")
        return data, f"tensor {tuple(data.shape)}", None
    if isinstance(data, (str, os.PathLike)):
        named = isinstance(data, str) and data in registry.list_components("dataset")
        named = named and data != registry.FOLDER_DATASET
        split = split or (BUILTIN_EVAL_SPLIT if named else FOLDER_EVAL_SPLIT)
        extra = {}
        if named and "length" in inspect.signature(registry.get_component("dataset", data)).parameters:
            extra["length"] = length  # a synthetic stream: as many clips as the protocol needs
        dataset = registry.create_dataset(
            data, resolution=resolution, frames=frames, frame_stride=stride, split=split, seed=seed, **extra
        )
        return dataset, os.fspath(data), split
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        return data, type(data).__name__, split
    raise TypeError(
        "data must be a dataset name, a folder, a statistics file, a Dataset or a tensor of videos, got "
        f"{type(data).__name__}"
    )


def real_batches(
    source: Any, start: int, count: int, batch_size: int, frames: int, stride: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """(videos, their labels or None when the source has none)."""
    if len(source) < start + count:
        raise ValueError(
            f"the real data has {len(source)} clips but {start + count} are needed (n_real={count}); lower "
            "--n"
        )
    for first in range(start, start + count, batch_size):
        indices = range(first, min(first + batch_size, start + count))
        labels = None
        if isinstance(source, torch.Tensor):
            videos = source[first : indices[-1] + 1]
        else:
            items = [source[i] for i in indices]
            videos = torch.stack([item["video"] if isinstance(item, dict) else item for item in items])
            if all(isinstance(item, dict) and "label" in item for item in items):
                labels = torch.as_tensor([int(item["label"]) for item in items])
            # a dataset built for `frames` at `stride` already subsampled; a tensor or foreign dataset may not
            # have
        check_videos(videos, "real videos")
        if videos.shape[2] != frames:
            videos = select_frames(videos, frames, stride)
        yield videos.to(device), labels
