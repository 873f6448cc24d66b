"""Helpers shared by the built-in families: config and input checks, channel widths, discriminator mixing.

Mixing: a model's discriminators are built from registered component names, so families can be mixed.

A model whose config has a ``discriminators`` list (e.g. ``mocogan-rnn``) builds each entry with
:func:`build_discriminators`::

    vganzoo.create("mocogan-rnn", discriminators=["mocogan/patch-image", "tgan/video"])

Each factory gets the model's shared keywords (``resolution``, ``frames``, ``channels``,
``width``, ``num_classes``) plus any family extras it accepts (e.g. ``noise_sigma``). The role
(the key in ``VideoGAN.discriminators`` and in the recipe's per-role settings) is the module's
``role`` attribute when it has one, else ``"image"`` when the name contains ``image``, else
``"video"``; a repeated role gets a numeric suffix (``video``, ``video_2``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import InvalidConfigError
from ..registry import BUILTIN_SOURCE, build_component, get_component_spec
from .base import require

__all__ = [
    "build_discriminators",
    "check_latent",
    "check_positive_ints",
    "check_shared_config",
    "check_video",
    "is_int",
    "is_number",
    "num_doublings",
    "role_of",
    "scaled_channels",
]

SHARED_KEYS = ("resolution", "frames", "channels", "width", "num_classes")


def role_of(name: str, module: nn.Module) -> str:
    """The role of discriminator ``module`` registered as ``name`` (see the module docstring)."""
    role = getattr(module, "role", None)
    if isinstance(role, str) and role:
        return role
    return "image" if "image" in name.rpartition("/")[2] else "video"


def _accepted(factory: Any, extras: Mapping[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(extras)
    return {k: v for k, v in extras.items() if k in params}


def build_discriminators(
    model: str,
    names: Sequence[str],
    shared: Mapping[str, Any],
    extras: Mapping[str, Any] | None = None,
) -> dict[str, nn.Module]:
    """Build discriminators ``names`` for ``model`` (used in error messages); returns role -> module.

    Raises:
        InvalidConfigError: ``names`` is not a list of strings, or a component cannot be built
            with the model's resolution / frames / channels (the message names both).
    """
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise InvalidConfigError(f"{model}: discriminators must be a list of component names, got {names!r}")
    out: dict[str, nn.Module] = {}
    kwargs = {k: shared[k] for k in SHARED_KEYS}
    for name in names:
        if not isinstance(name, str):
            raise InvalidConfigError(
                f"{model}: discriminators must contain component names (str), got {name!r}"
            )
        spec = get_component_spec("discriminator", name)
        try:
            module = build_component("discriminator", name, **kwargs, **_accepted(spec.factory, extras or {}))
        except InvalidConfigError as exc:
            setting = ", ".join(f"{k}={v}" for k, v in kwargs.items())
            where = "" if spec.source == BUILTIN_SOURCE else f" (from plugin {spec.source!r})"
            raise InvalidConfigError(
                f"{model}: discriminator {name!r}{where} does not fit this model ({setting}): {exc}"
            ) from None
        role = role_of(name, module)
        key, i = role, 2
        while key in out:
            key, i = f"{role}_{i}", i + 1
        out[key] = module
    return out


def scaled_channels(base: int, width: float) -> int:
    """``base`` channels scaled by the width multiplier (at least 1)."""
    return max(1, round(base * width))


def num_doublings(size: int, start: int) -> int:
    """How many 2x steps lead from ``start`` to ``size`` (both powers of two, size >= start)."""
    return (size // start).bit_length() - 1


def is_int(value: Any) -> bool:
    """An int that is not a bool (config values come from JSON and the command line)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_positive_ints(component: str, **values: Any) -> None:
    """Raise InvalidConfigError naming ``component`` and the keyword unless every value is an int >= 1."""
    for key, value in values.items():
        require(is_int(value) and value >= 1, f"{component}: {key} must be a positive int, got {value!r}")


def check_shared_config(
    component: str,
    *,
    resolution: Any,
    frames: Any,
    channels: Any,
    width: Any,
    num_classes: Any,
    resolutions: Sequence[int],
) -> None:
    """Raise InvalidConfigError naming ``component`` for a bad shared keyword."""
    require(
        is_int(resolution) and resolution in resolutions,
        f"{component}: resolution must be one of {tuple(resolutions)}, got {resolution!r}",
    )
    require(is_int(frames) and frames >= 1, f"{component}: frames must be a positive int, got {frames!r}")
    require(
        is_int(channels) and channels in (1, 3), f"{component}: channels must be 1 or 3, got {channels!r}"
    )
    require(
        isinstance(width, (int, float)) and not isinstance(width, bool) and width > 0,
        f"{component}: width must be a positive number, got {width!r}",
    )
    require(
        is_int(num_classes) and num_classes >= 0,
        f"{component}: num_classes must be a non-negative int (0 = unconditional), got {num_classes!r}",
    )


def check_video(video: Any, *, name: str, channels: int, resolution: int, frames: int | None = None) -> None:
    """Raise ValueError/TypeError unless ``video`` is a float (N, channels, T, resolution, resolution) tensor.

    ``frames``: the exact T required, or None for any T >= 1.
    """
    if not isinstance(video, torch.Tensor):
        raise TypeError(f"{name}: video must be a torch.Tensor, got {type(video).__name__}")
    if not video.is_floating_point():
        raise TypeError(f"{name}: video must be a floating-point tensor, got dtype {video.dtype}")
    t_expected = "T" if frames is None else str(frames)
    expected = f"(N, {channels}, {t_expected}, {resolution}, {resolution})"
    if video.ndim != 5:
        raise ValueError(f"{name}: video must have shape {expected}, got {tuple(video.shape)}")
    _, c, t, h, w = video.shape
    if c != channels or h != resolution or w != resolution or t < 1 or (frames is not None and t != frames):
        raise ValueError(f"{name}: video must have shape {expected}, got {tuple(video.shape)}")


def check_latent(value: Any, name: str, shape: tuple[int | str, ...]) -> torch.Tensor:
    """Raise a clear error unless ``value`` is a float tensor of ``shape`` (str entries: any size)."""
    text = "(" + ", ".join(str(s) for s in shape) + ")"
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        got = f"dtype {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise TypeError(f"{name} must be a floating-point tensor of shape {text}, got {got}")
    if value.ndim != len(shape) or any(
        not isinstance(s, str) and value.shape[i] != s for i, s in enumerate(shape)
    ):
        raise ValueError(f"{name} must have shape {text}, got {tuple(value.shape)}")
    return value
