"""What is checked in weights that come from files (weight sets, checkpoints, converted originals)
before they become a model: the size a config would build, and each tensor's dtype and values.

A config file goes to the model's factory; a ``"width": 40`` in a shared folder would otherwise
allocate gigabytes before anything fails. :func:`check_config_size` builds the model on the meta
device first (no memory) and refuses a config whose components are far larger than the files that
hold their weights, or larger than memory allows. :func:`check_tensors` refuses tensors that are not
floating point where the model has floats, and NaN or infinite values, naming the tensor.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from .. import registry
from ..errors import ResourceLimitError
from ..resources import check_memory, format_bytes
from .errors import WeightsError

__all__ = [
    "SIZE_FACTOR",
    "OversizedConfigError",
    "UnsafeTensorError",
    "check_config_size",
    "check_model_memory",
    "check_tensors",
]

# A component may be at most this many times the bytes of the file holding it: files store float32,
# float16 or bfloat16, so an honest component is at most twice its file; beyond four times the config
# does not belong to the weights.
SIZE_FACTOR = 4
SIZE_SLACK = 1 << 20  # headers, counters and small buffers a file may leave out


class OversizedConfigError(WeightsError, ResourceLimitError):
    """A config from a file that would build a model far larger than its weights, or than memory."""


class UnsafeTensorError(WeightsError, ValueError):
    """A tensor in a weights file with a dtype the model cannot take, or NaN / infinite values."""


def describe_config(config: Mapping[str, Any]) -> str:
    """``mocogan-rnn (width=40, resolution=64)``: the model and the keys that differ from its defaults."""
    name = str(config.get("model"))
    try:
        defaults = registry.get_model_spec(name).default_config
    except Exception:
        defaults = {}
    changed = [f"{k}={v!r}" for k, v in config.items() if k != "model" and defaults.get(k, object()) != v]
    shown = ", ".join(changed[:6]) + (", ..." if len(changed) > 6 else "")
    return f"{name} ({shown})" if shown else name


def check_config_size(
    config: Mapping[str, Any], source: str, file_bytes: Mapping[str, int] | None = None
) -> None:
    """Refuse ``config`` (``{"model": name, **keywords}``, read from ``source``) before it is built
    when it would build a component far larger than the file holding its weights, or a model
    larger than memory allows.

    Args:
        file_bytes: component (``generator``, ``generator_ema``, ``discriminator.<role>``, or
            ``"model"`` for one file holding every component, such as a checkpoint) -> the size of
            the file or tensors holding its weights. Components not listed are bounded by memory only.
    """
    keywords = dict(config)
    name = keywords.pop("model", None)
    if not isinstance(name, str):
        raise WeightsError(f'{source}: the config has no "model" name')
    size = registry.estimate_model(name, **keywords)
    if size is None:  # cannot be built on the meta device (a plugin): nothing more is known
        return
    what = f"{source}: its config builds {describe_config(config)}"
    for component, stored in (file_bytes or {}).items():
        built = size.total if component == "model" else size.components.get(component)
        if built is not None and built > SIZE_FACTOR * stored + SIZE_SLACK:
            raise OversizedConfigError(
                f"{what}, whose {component} would allocate {format_bytes(built)} while its weights hold "
                f"{format_bytes(stored)}; refusing to build it (the config does not belong to these weights)"
            )
    try:
        check_memory(size.total, what, advice="refusing to build it (is the config meant for this model?)")
    except ResourceLimitError as exc:
        raise OversizedConfigError(str(exc)) from None


def check_model_memory(name: str, overrides: Mapping[str, Any], advice: str) -> None:
    """Refuse to build model ``name`` with ``overrides`` (settings a user chose) when it cannot fit in
    memory; estimated on the meta device."""
    size = registry.estimate_model(name, **overrides)
    if size is not None:
        check_memory(size.total, f"building {describe_config({'model': name, **overrides})}", advice=advice)


def check_tensors(tensors: Mapping[str, Any], expected: Mapping[str, Any], what: str) -> None:
    """Refuse file ``tensors`` that the model's ``expected`` state cannot take as they are: a
    non-float dtype (int64, bool...) where the model has floats, a float where it has integers, and
    NaN or infinite values; float64 is accepted with a warning (it is cast to the model's dtype).
    Keys the model does not have are left to the caller's key check."""
    import torch

    wide = []
    for key, tensor in tensors.items():
        target = expected.get(key)
        if not isinstance(tensor, torch.Tensor) or not isinstance(target, torch.Tensor):
            continue
        if target.is_floating_point() and not tensor.is_floating_point():
            raise UnsafeTensorError(
                f"{what}: tensor {key!r} is {_dtype(tensor)}, but the model's is {_dtype(target)}; weights "
                "must be stored as float32, float16 or bfloat16"
            )
        if not target.is_floating_point() and (
            tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool
        ):
            raise UnsafeTensorError(
                f"{what}: tensor {key!r} is {_dtype(tensor)}, but the model's is {_dtype(target)}"
            )
        if tensor.is_floating_point():
            if tensor.dtype == torch.float64:
                wide.append(key)
            if tensor.numel() and not bool(torch.isfinite(tensor).all()):
                bad = int((~torch.isfinite(tensor)).sum())
                raise UnsafeTensorError(
                    f"{what}: tensor {key!r} holds {bad} NaN or infinite value(s) of {tensor.numel()}; "
                    "the weights are damaged (or diverged in training)"
                )
    if wide:
        shown = ", ".join(repr(k) for k in wide[:3]) + (f" and {len(wide) - 3} more" if len(wide) > 3 else "")
        warnings.warn(
            f"{what}: {len(wide)} tensor(s) stored as float64 ({shown}) are cast to the model's dtype",
            stacklevel=3,
        )


def _dtype(tensor: Any) -> str:
    return str(tensor.dtype).removeprefix("torch.")
