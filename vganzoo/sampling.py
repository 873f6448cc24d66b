"""Latent walks: the content/motion interpolation demo, for any generator that follows the protocol.

A generator may name its latent keys by role with two attributes::

    content_latents = ("z_content",)        # what the video shows (appearance, identity)
    motion_latents = ("z_motion", "noise")  # how it moves

:func:`latent_walk` then walks the content latents between two seeds while the motion latents stay
fixed, and the reverse. A generator without these attributes gets one walk over all its float
latents. Integer latents (labels) always stay those of the first seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from .models.base import check_labels, make_generator, sampling_generator
from .nn.graphs import GraphedInference, require_cuda

__all__ = ["generate_from_latents", "interpolate", "latent_roles", "latent_walk", "sample_videos"]

PARALLEL_EPS = 1e-6  # below this angle slerp is numerically lerp
DEFAULT_CHUNK = 16


def latent_roles(generator: torch.nn.Module, latents: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """``{"content": keys, "motion": keys}`` from the generator's attributes, or ``{"all": keys}``.

    Only float tensor latents are walked; keys the generator names but did not draw are ignored.
    """
    floats = tuple(k for k, v in latents.items() if isinstance(v, torch.Tensor) and v.dtype.is_floating_point)
    content = tuple(k for k in getattr(generator, "content_latents", ()) or () if k in floats)
    motion = tuple(k for k in getattr(generator, "motion_latents", ()) or () if k in floats)
    if content and motion:
        return {"content": content, "motion": motion}
    return {"all": floats}


def interpolate(a: torch.Tensor, b: torch.Tensor, weight: float, method: str = "slerp") -> torch.Tensor:
    """Between ``a`` (weight 0) and ``b`` (weight 1), per sample (dim 0), same shape as ``a``.

    ``slerp`` follows the great circle between the flattened per-sample vectors (keeping the
    norm typical of Gaussian latents); ``lerp`` is the straight line.
    """
    if method == "lerp":
        return torch.lerp(a, b, weight)
    if method != "slerp":
        raise ValueError(f"method must be 'slerp' or 'lerp', got {method!r}")
    flat_a, flat_b = a.reshape(a.shape[0], -1).double(), b.reshape(b.shape[0], -1).double()
    cos = (flat_a * flat_b).sum(1) / (flat_a.norm(dim=1) * flat_b.norm(dim=1)).clamp_min(1e-12)
    omega = cos.clamp(-1, 1).acos()
    sin = omega.sin()
    straight = sin.abs() < PARALLEL_EPS
    safe_sin = torch.where(straight, torch.ones_like(sin), sin)
    wa = torch.where(straight, torch.full_like(sin, 1 - weight), ((1 - weight) * omega).sin() / safe_sin)
    wb = torch.where(straight, torch.full_like(sin, weight), (weight * omega).sin() / safe_sin)
    out = wa[:, None] * flat_a + wb[:, None] * flat_b
    return out.to(a.dtype).reshape(a.shape)


def _concat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for key, value in parts[0].items():
        out[key] = (
            torch.cat([p[key] for p in parts]) if isinstance(value, torch.Tensor) and value.ndim else value
        )
    return out


def _run_device(generator: torch.nn.Module, device: torch.device | str | None) -> torch.device:
    """``device``, or where the generator's parameters are (the CPU for one without any)."""
    if device is not None:
        return torch.device(device)
    param = next(generator.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _check_cuda_graphs(
    cuda_graphs: Any, generator: torch.nn.Module, device: torch.device | str | None
) -> bool:
    """``cuda_graphs`` checked (a bool; True needs the run's device to be CUDA); returns it."""
    if not isinstance(cuda_graphs, bool):
        raise TypeError(f"cuda_graphs must be True or False, got {cuda_graphs!r}")
    if cuda_graphs:
        require_cuda(_run_device(generator, device), "cuda_graphs")
    return cuda_graphs


@torch.no_grad()
def generate_from_latents(
    generator: torch.nn.Module,
    latents: Mapping[str, Any],
    *,
    device: torch.device | str | None = None,
    chunk: int = DEFAULT_CHUNK,
    on_progress: Callable[[int], None] | None = None,
    cuda_graphs: bool = False,
) -> torch.Tensor:
    """Run ``generator(**latents)`` in eval mode, ``chunk`` samples at a time; returns (N, C, T, H, W) on the
    CPU. ``on_progress(k)`` is called after each chunk with the number of videos it made.
    ``cuda_graphs``: replay each chunk's forward from a CUDA graph recorded at the first chunk of that
    size (:class:`vganzoo.nn.graphs.GraphedInference`; CUDA devices only): one launch per chunk instead
    of one per kernel, the same videos."""
    device = _run_device(generator, device)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise ValueError(f"chunk must be a positive int (videos per forward pass), got {chunk!r}")
    sizes = {v.shape[0] for v in latents.values() if isinstance(v, torch.Tensor) and v.ndim}
    if len(sizes) != 1:
        raise ValueError(f"latents must share one batch size (dim 0), got sizes {sorted(sizes)}")
    (n,) = sizes
    run: Callable[..., torch.Tensor] = generator
    if _check_cuda_graphs(cuda_graphs, generator, device):
        run = GraphedInference(generator, max_graphs=2)  # the chunk size, and the last chunk's
    was_training = generator.training
    generator.eval()
    outs = []
    try:
        for lo in range(0, n, chunk):
            part = {
                k: (v[lo : lo + chunk].to(device) if isinstance(v, torch.Tensor) and v.ndim else v)
                for k, v in latents.items()
            }
            outs.append(run(**part).clamp(-1, 1).cpu())
            if on_progress is not None:
                on_progress(outs[-1].shape[0])
    finally:
        generator.train(was_training)
    return torch.cat(outs)


@torch.no_grad()
def latent_walk(
    model: Any,
    steps: int,
    *,
    seed: int = 0,
    end_seed: int | None = None,
    n: int = 1,
    labels: Any = None,
    device: torch.device | str | None = None,
    use_ema: bool = True,
    method: str = "slerp",
    on_progress: Callable[[int], None] | None = None,
    clip_options: Mapping[str, Any] | None = None,
    cuda_graphs: bool = False,
) -> tuple[torch.Tensor, list[str]]:
    """Walk between the latents of ``seed`` and ``end_seed`` (default ``seed + 1``) in ``steps`` steps.

    ``clip_options`` (``frames``, ``fps``): the clip for a generator that renders any length and
    frame rate (StyleGAN-V), as its ``sample()`` takes them; refused for other generators.

    For each of ``n`` pairs of samples and each walk (content with motion fixed, then motion with
    content fixed; or one walk over all latents) one row of ``steps`` videos is made.

    Returns:
        videos (rows * steps, C, T, H, W) in [-1, 1] on the CPU, row-major (use ``nrow=steps``
        for a grid), and one description per row, e.g. ``"pair 0 (label 3): content walk, motion fixed"``.
        ``on_progress`` and ``cuda_graphs`` as for :func:`generate_from_latents` (rows * steps videos in all).
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise ValueError(f"steps must be an int >= 2, got {steps!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if end_seed is None:
        end_seed = seed + 1
    elif not isinstance(end_seed, int) or isinstance(end_seed, bool):
        raise TypeError(f"end_seed must be an int or None, got {type(end_seed).__name__}")
    generator = sampling_generator(model, use_ema)
    labels = check_labels(labels, n, int(getattr(generator, "num_classes", 0) or 0))
    options = _clip_options(generator, clip_options)
    start = generator.sample_latents(n, generator=make_generator(seed), labels=labels, **options)
    end = generator.sample_latents(n, generator=make_generator(end_seed), labels=labels, **options)
    roles = latent_roles(generator, start)
    if not any(roles.values()):
        raise ValueError(f"{type(generator).__name__} draws no float latents to interpolate")
    walks = (
        [("content walk, motion fixed", roles["content"]), ("motion walk, content fixed", roles["motion"])]
        if "content" in roles
        else [("walk over all latents", roles["all"])]
    )
    weights = [i / (steps - 1) for i in range(steps)]
    rows: list[dict[str, Any]] = []
    descriptions = []
    drawn_labels = start.get("labels")
    for pair in range(n):
        label = f" (label {int(drawn_labels[pair])})" if isinstance(drawn_labels, torch.Tensor) else ""
        for text, keys in walks:
            descriptions.append(f"pair {pair}{label}: {text}")
            for w in weights:
                latents = {}
                for key, value in start.items():
                    if isinstance(value, torch.Tensor) and value.ndim:
                        value = value[pair : pair + 1]
                        if key in keys:
                            value = interpolate(value, end[key][pair : pair + 1], w, method)
                    latents[key] = value
                rows.append(latents)
    videos = generate_from_latents(
        generator, _concat(rows), device=device, on_progress=on_progress, cuda_graphs=cuda_graphs
    )
    assert videos.shape[0] == len(descriptions) * steps, "generator returned a wrong batch size"
    return videos, descriptions


def _clip_options(generator: Any, clip_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``clip_options`` without None values, checked against what ``generator.sample_latents`` takes."""
    import inspect

    if clip_options is None:
        return {}
    if not isinstance(clip_options, Mapping):
        raise TypeError(f"clip_options must be a dict of frames / fps, got {type(clip_options).__name__}")
    options = {k: v for k, v in clip_options.items() if v is not None}
    accepted = inspect.signature(generator.sample_latents).parameters
    unknown = sorted(k for k in options if k not in ("frames", "fps") or k not in accepted)
    if unknown:
        raise ValueError(
            f"clip_options: {type(generator).__name__} renders clips of a fixed length and rate; it takes "
            f"no {', '.join(map(repr, unknown))}"
        )
    return options


@torch.no_grad()
def sample_videos(
    model: Any,
    n: int,
    *,
    seed: int = 0,
    labels: Any = None,
    device: torch.device | str | None = None,
    use_ema: bool = True,
    chunk: int = DEFAULT_CHUNK,
    on_progress: Callable[[int], None] | None = None,
    frames: int | None = None,
    cuda_graphs: bool = False,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """``model.sample(n, seed=..., return_latents=True)`` in chunks of ``chunk`` videos, so that the
    generator's working memory stays that of one chunk whatever ``n`` is; the latents are drawn as
    one batch, so up to ``chunk`` videos are exactly those of ``model.sample`` and any ``n`` is the
    same for the same seed. Returns the videos (N, C, T, H, W) on the CPU and the CPU latents.
    ``frames``: clips of that length, for a generator whose ``sample_latents`` takes ``frames``
    (MoCoGAN's motion RNN runs any number of steps with the same weights).
    ``cuda_graphs``: see :func:`generate_from_latents`.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    generator = sampling_generator(model, use_ema)
    _check_cuda_graphs(cuda_graphs, generator, device)  # for every n, n = 0 included
    labels = check_labels(labels, n, int(getattr(generator, "num_classes", 0) or 0))
    length = {} if frames is None else {"frames": frames}
    latents = generator.sample_latents(n, generator=make_generator(seed), labels=labels, **length)
    param = next(generator.parameters(), None)
    if param is not None and param.is_floating_point():  # a model cast to float16 gets float16 latents
        latents = {
            k: v.to(param.dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
            for k, v in latents.items()
        }
    if n == 0:
        return model.sample(0, seed=seed, device=device, use_ema=use_ema), latents
    videos = generate_from_latents(
        generator, latents, device=device, chunk=chunk, on_progress=on_progress, cuda_graphs=cuda_graphs
    )
    return videos, latents
