"""One demo request, from the page's values to video files: checks, limits, sampling, writing.

Everything a user (or an API client) sends is checked here before any sampling: a value of the
wrong type, a negative seed, a count or length past :class:`Limits`, a class label out of range, or
a request whose estimated time or output size is over the limits is refused with a
:class:`~vganzoo.demo.catalog.DemoError` that says what is allowed. Results are written as one grid
video, MP4 (played in the page) and GIF, upscaled (nearest neighbour) so small clips stay crisp.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from einops import repeat

from ..models.base import check_labels, make_generator
from ..sampling import generate_from_latents, latent_walk
from ..videoio import make_grid, save_video, to_uint8
from .catalog import DemoError, LoadedModel

__all__ = ["Limits", "Result", "generate", "interpolate", "new_request_folder"]

RANDOM_LABEL = "random"
PADDING = 2  # pixels between clips in a grid (before upscaling)
PAD_GRAY = 40  # padding colour (uint8): a dark frame around clips, which are mostly dark
MAX_SCALE = 8  # upscaling factor at most
KEEP_SECONDS = 3600  # request folders older than this are removed when a new request comes
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_ROW_LABEL = re.compile(r"\(label (\d+)\)")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. ``max_seconds`` bounds the estimated sampling time (the
    loaded model's measured seconds per frame times clips times frames), ``max_values`` the size of
    the sampled batch (clips x channels x frames x height x width), which bounds memory."""

    max_clips: int = 16
    max_frames: int = 64
    max_steps: int = 10
    max_seconds: float = 60.0
    max_values: int = 1 << 25  # 32 Mi float32 values: 128 MiB for the batch
    max_seed: int = 2**32 - 1
    min_fps: float = 1.0
    max_fps: float = 60.0
    display_width: int = 512  # grids are upscaled to about this width


@dataclass(frozen=True)
class Result:
    """The files of one request and what they show (``details`` is JSON-able)."""

    mp4: Path
    gif: Path
    caption: str
    details: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------
def _integer(value: Any, what: str, low: int, high: int) -> int:
    """An int in [low, high] from an int, an integral float or a numeric string, else DemoError."""
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value.strip()) if value.strip() else None
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise DemoError(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    if not math.isfinite(number) or number != int(number):
        raise DemoError(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    number = int(number)
    if not low <= number <= high:
        raise DemoError(f"{what} must be from {low} to {high}, got {number}")
    return number


def check_seed(value: Any, limits: Limits, what: str = "seed") -> int:
    return _integer(value, what, 0, limits.max_seed)


def check_fps(value: Any, limits: Limits) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise DemoError(f"fps must be a number from {limits.min_fps:g} to {limits.max_fps:g}, got {value!r}")
    if not limits.min_fps <= float(value) <= limits.max_fps:
        raise DemoError(f"fps must be from {limits.min_fps:g} to {limits.max_fps:g}, got {value:g}")
    return float(value)


def check_label(value: Any, loaded: LoadedModel) -> int | None:
    """None (drawn per clip) for ``None``, ``""`` or ``"random"``; else a class index of the model."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", RANDOM_LABEL)):
        return None
    if not loaded.num_classes:
        raise DemoError(f"{loaded.entry.name} is unconditional: it takes no class label (use 'random')")
    about = f" ({loaded.class_names})" if loaded.class_names else ""
    return _integer(value, f"class label{about}", 0, loaded.num_classes - 1)


def check_frames(value: Any, loaded: LoadedModel, limits: Limits) -> int:
    if value is None:
        return loaded.frames
    frames = _integer(value, "frames", 1, limits.max_frames)
    if frames != loaded.frames and not loaded.variable_frames:
        raise DemoError(
            f"{loaded.entry.name} draws clips of {loaded.frames} frames only (its family fixes the length)"
        )
    return frames


def check_budget(loaded: LoadedModel, clips: int, frames: int, limits: Limits) -> float:
    """Refuse a request whose batch is too large or whose estimated time is too long; returns the
    estimate in seconds."""
    values = clips * loaded.channels * frames * loaded.resolution**2
    if values > limits.max_values:
        raise DemoError(
            f"too much memory: {clips} clips of {frames} frames at {loaded.resolution}x{loaded.resolution} "
            f"are {values:,} values; the limit is {limits.max_values:,} (ask for fewer clips or frames)"
        )
    estimate = loaded.seconds_per_frame * clips * frames
    if estimate > limits.max_seconds:
        raise DemoError(
            f"too long: {clips} clips of {frames} frames would take about {estimate:.0f} s here; the limit "
            f"is {limits.max_seconds:.0f} s (ask for fewer clips or frames)"
        )
    return estimate


# ----------------------------------------------------------------------------------------------
# Requests
# ----------------------------------------------------------------------------------------------
def generate(
    loaded: LoadedModel,
    *,
    seed: Any,
    clips: Any,
    label: Any = None,
    frames: Any = None,
    fps: Any = None,
    out_dir: str | Path,
    limits: Limits | None = None,
) -> Result:
    """``clips`` samples with ``seed`` (the same videos as ``vganzoo sample NAME --seed SEED --n
    CLIPS`` when ``frames`` is the model's own), as one grid."""
    limits = limits or Limits()
    seed = check_seed(seed, limits)
    n = _integer(clips, "number of clips", 1, limits.max_clips)
    label = check_label(label, loaded)
    frames = check_frames(frames, loaded, limits)
    fps = check_fps(loaded.fps if fps is None else fps, limits)
    check_budget(loaded, n, frames, limits)
    start = time.perf_counter()
    with _refuse_out_of_memory():
        if frames == loaded.frames:
            videos, latents = loaded.model.sample(
                n, seed=seed, labels=label, device=loaded.device, return_latents=True
            )
        else:  # a family that draws any length (sample_latents takes frames=)
            labels = check_labels(label, n, loaded.num_classes)
            latents = loaded.generator.sample_latents(
                n, generator=make_generator(seed), labels=labels, frames=frames
            )
            videos = generate_from_latents(loaded.generator, latents, device=loaded.device)
    seconds = time.perf_counter() - start
    drawn = latents.get("labels")
    labels_shown = [int(v) for v in drawn.tolist()] if isinstance(drawn, torch.Tensor) else None
    stem = f"{_file_stem(loaded)}_seed{seed}_{n}clips"
    nrow = math.ceil(math.sqrt(n))
    mp4, gif, layout = _write_grid(videos, Path(out_dir), stem, nrow=nrow, fps=fps, limits=limits)
    if labels_shown is None:
        about_labels = ""
    elif label is not None:
        about_labels = f", class {label}"
    else:
        about_labels = ", classes drawn at random: " + " ".join(map(str, labels_shown))
    caption = (
        f"**{n} clip{'s' if n > 1 else ''}** from `{loaded.entry.name}`, seed {seed}{about_labels}; "
        f"{frames} frames at {fps:g} fps, sampled in {seconds:.2f} s."
    )
    details = {
        "weights": loaded.entry.name,
        "kind": "samples",
        "seed": seed,
        "clips": n,
        "labels": labels_shown,
        "frames": frames,
        "fps": fps,
        "seconds": round(seconds, 3),
        **layout,
    }
    return Result(mp4=mp4, gif=gif, caption=caption, details=details)


def interpolate(
    loaded: LoadedModel,
    *,
    seed: Any,
    end_seed: Any,
    steps: Any,
    label: Any = None,
    fps: Any = None,
    out_dir: str | Path,
    limits: Limits | None = None,
) -> Result:
    """A latent walk from ``seed`` to ``end_seed`` in ``steps`` steps: for families that split content
    and motion, one row walks the content with the motion fixed and one the motion with the content
    fixed; for the others one row walks every latent."""
    limits = limits or Limits()
    seed = check_seed(seed, limits, "seed A")
    end_seed = check_seed(end_seed, limits, "seed B")
    steps = _integer(steps, "steps", 2, limits.max_steps)
    label = check_label(label, loaded)
    fps = check_fps(loaded.fps if fps is None else fps, limits)
    check_budget(loaded, steps * len(loaded.walks), loaded.frames, limits)
    start = time.perf_counter()
    with _refuse_out_of_memory():
        videos, rows = latent_walk(
            loaded.model, steps, seed=seed, end_seed=end_seed, labels=label, device=loaded.device
        )
    seconds = time.perf_counter() - start
    stem = f"{_file_stem(loaded)}_walk_seed{seed}-to-{end_seed}"
    mp4, gif, layout = _write_grid(videos, Path(out_dir), stem, nrow=steps, fps=fps, limits=limits)
    walks = [row.split(": ", 1)[-1] for row in rows]
    row_notes = "; ".join(f"row {i + 1}: {walk}" for i, walk in enumerate(walks))
    drawn = _ROW_LABEL.search(rows[0]) if rows else None  # "pair 0 (label 3): content walk, ..."
    caption = (
        f"**Seed {seed} → seed {end_seed}** in {steps} steps (left to right) from `{loaded.entry.name}`"
        f"{f', class {drawn.group(1)}' if drawn else ''}; {row_notes}. Sampled in {seconds:.2f} s."
    )
    details = {
        "weights": loaded.entry.name,
        "kind": "interpolation",
        "seed": seed,
        "end_seed": end_seed,
        "steps": steps,
        "walks": walks,
        "label": int(drawn.group(1)) if drawn else None,
        "frames": loaded.frames,
        "fps": fps,
        "seconds": round(seconds, 3),
        **layout,
    }
    return Result(mp4=mp4, gif=gif, caption=caption, details=details)


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------
REQUEST_PREFIX = "request-"


def new_request_folder(root: str | Path) -> Path:
    """A fresh folder under ``root`` for one request's files; request folders (``request-*``, made
    here) older than an hour are removed. Nothing else in ``root`` is touched: it may be a folder of
    the user's (``out_root``)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        try:
            if (
                old.name.startswith(REQUEST_PREFIX)
                and not old.is_symlink()
                and old.is_dir()
                and now - old.stat().st_mtime > KEEP_SECONDS
            ):
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # removed meanwhile by another request
            continue
    return Path(tempfile.mkdtemp(prefix=REQUEST_PREFIX, dir=root))


def _file_stem(loaded: LoadedModel) -> str:
    name = loaded.entry.name
    if loaded.entry.source == "folder":
        name = Path(name.partition(":")[2]).name
    return _UNSAFE_FILE_CHARS.sub("_", name).strip("._") or "clips"


def _write_grid(
    videos: torch.Tensor, out_dir: Path, stem: str, *, nrow: int, fps: float, limits: Limits
) -> tuple[Path, Path, dict[str, Any]]:
    """videos: (N, C, T, H, W) in [-1, 1] -> ``stem.mp4`` and ``stem.gif`` (one grid, upscaled)."""
    n, _c, t, h, w = videos.shape
    grid = make_grid(to_uint8(videos.cpu()), nrow=nrow, padding=PADDING, pad_value=PAD_GRAY)
    scale = max(1, min(MAX_SCALE, limits.display_width // grid.shape[-1]))
    grid = repeat(grid, "c t h w -> c t (h sh) (w sw)", sh=scale, sw=scale)
    out_dir.mkdir(parents=True, exist_ok=True)
    mp4 = save_video(grid, out_dir / f"{stem}.mp4", fps=fps, pad_value=PAD_GRAY)
    gif = save_video(grid, out_dir / f"{stem}.gif", fps=fps, pad_value=PAD_GRAY)
    columns = min(nrow, n)
    layout = {
        "rows": math.ceil(n / columns),
        "columns": columns,
        "clip_size": [h, w],
        "padding": PADDING,
        "scale": scale,
        "video_size": [int(grid.shape[-2]), int(grid.shape[-1])],  # before MP4's even-size padding
        "video_frames": t,
    }
    return mp4, gif, layout


@contextlib.contextmanager
def _refuse_out_of_memory() -> Iterator[None]:
    """Running out of memory while sampling becomes a DemoError (the server keeps running)."""
    try:
        yield
    except (MemoryError, torch.cuda.OutOfMemoryError) as exc:
        raise DemoError("out of memory while sampling: ask for fewer clips or frames") from exc
