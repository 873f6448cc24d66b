"""Training checkpoints: one safetensors file each, written atomically, never a pickle.

A checkpoint ``checkpoints/ckpt-00000050.safetensors`` holds every tensor (model weights with the
EMA, optimiser moments, RNG states as uint8 tensors) under dotted names, and everything else
(step, data position, optimiser hyperparameters, scaler state, configs) as JSON in the safetensors
metadata header. It is written to a temporary file in the same folder, flushed, fsync'ed and
renamed over the final name, so a process killed mid-save leaves the previous checkpoint intact;
leftover temporary files are ignored and cleaned up.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load

from ..errors import VganzooError
from ..files import atomic_write_bytes, loads_json, remove_stale_temp_files, safetensors_bytes

__all__ = [
    "FORMAT",
    "CheckpointError",
    "atomic_write_bytes",
    "checkpoint_path",
    "flatten_optimizer_state",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "remove_stale_temp_files",
    "resume_checkpoint",
    "save_checkpoint",
    "unflatten_optimizer_state",
]

FORMAT = "vganzoo-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{8,})\.safetensors$")
# Bounds of the counters a checkpoint records: far past any real run, so that a tampered file's
# step=1e18 or epoch=-1 is refused instead of silently trusted.
MAX_STEP = 10**12
MAX_WORLD_SIZE = 1_000_000
OBJECT_FIELDS = ("optimizers", "scalers", "rng", "model_config", "recipe", "train_config")


class CheckpointError(VganzooError, ValueError):
    """A checkpoint file that is missing, truncated or not a vganzoo checkpoint."""


def checkpoint_path(directory: str | os.PathLike[str], step: int) -> Path:
    return Path(directory) / f"ckpt-{step:08d}.safetensors"


def list_checkpoints(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint file in ``directory``, oldest first (temp files ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _NAME.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def _clean(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies that share no storage (safetensors refuses aliases)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}


def save_checkpoint(
    path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]
) -> Path:
    """Write one checkpoint atomically: ``tensors`` as safetensors, ``state`` (JSON-able) in the header."""
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "state": json.dumps(state)}
    data = safetensors_bytes(_clean(tensors), metadata)
    atomic_write_bytes(path, data)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint; raises :class:`CheckpointError` when it is missing or damaged."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist") from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read: {exc}") from None
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        metadata = header.get("__metadata__") or {}
    except (SafetensorError, ValueError, json.JSONDecodeError, OSError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged or not a safetensors file: {detail}"
        ) from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is a safetensors file but not a vganzoo training checkpoint")
    version = metadata.get("format_version", "0")
    if not isinstance(version, str) or not version.isdigit():
        raise CheckpointError(f"checkpoint {str(path)!r}: field format_version is {version!r}, not a number")
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {version}, newer than this vganzoo reads "
            f"({FORMAT_VERSION})"
        )
    source = f"checkpoint {str(path)!r}"
    if not isinstance(metadata.get("state"), str):
        raise CheckpointError(f"{source} has no 'state' field (not a complete vganzoo training checkpoint)")
    state = loads_json(metadata["state"], f"{source}: field state", error=CheckpointError)
    check_state(state, source)
    return tensors, state


def _int_field(value: Any, field: str, source: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = repr(value) if len(repr(value)) < 40 else repr(value)[:40] + "..."
        raise CheckpointError(f"{source}: field {field} is {shown}, expected an int from {low} to {high:,}")
    return value


def require_field(state: Mapping[str, Any], field: str, source: str) -> Any:
    """``state[field]``, or a :class:`CheckpointError` saying the checkpoint lacks it."""
    if field not in state:
        raise CheckpointError(f"{source} has no {field!r} field (not a complete vganzoo training checkpoint)")
    return state[field]


def check_state(state: Any, source: str) -> None:
    """Refuse a checkpoint state whose counters or sections have the wrong type or range (a tampered
    or damaged file), naming the field: the trainer would otherwise trust them silently."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: field state is a JSON {type(state).__name__}, expected an object")
    _int_field(require_field(state, "step", source), "step", source, 0, MAX_STEP)
    if "world_size" in state:
        _int_field(state["world_size"], "world_size", source, 1, MAX_WORLD_SIZE)
    if "data_position" in state:
        position = state["data_position"]
        if not isinstance(position, dict):
            raise CheckpointError(f"{source}: field data_position is not an object")
        for key in ("epoch", "offset"):
            _int_field(require_field(position, key, source), f"data_position.{key}", source, 0, MAX_STEP)
    for field in OBJECT_FIELDS:
        if field in state and not isinstance(state[field], dict):
            raise CheckpointError(
                f"{source}: field {field} is a JSON {type(state[field]).__name__}, expected an object"
            )


def load_model_state(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Load the ``model.*`` entries of checkpoint ``tensors`` into ``model`` (strict); a mismatch, a
    tensor of a dtype the model cannot take or a NaN / infinite value is a :class:`CheckpointError`
    naming ``source`` and the tensor."""
    from ..hub.checks import UnsafeTensorError, check_tensors

    model_sd = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        check_tensors(model_sd, model.state_dict(), source)
    except UnsafeTensorError as exc:
        raise CheckpointError(str(exc)) from None
    try:
        model.load_state_dict(model_sd, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{source} does not match the model: {str(exc).splitlines()[0]}") from None


def latest_checkpoint(
    directory: str | os.PathLike[str],
) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]] | None:
    """The newest checkpoint in ``directory`` that loads; damaged newer ones are skipped with a warning.
    None when there is no checkpoint; CheckpointError when there are some and none loads (a run is
    never silently started over, which would also rotate the damaged files away)."""
    found = list_checkpoints(directory)
    first_error = None
    for _step, path in reversed(found):
        try:
            tensors, state = load_checkpoint(path)
        except CheckpointError as exc:
            warnings.warn(f"skipping damaged checkpoint: {exc}", stacklevel=2)
            first_error = first_error or exc
            continue
        return path, tensors, state
    if found:
        raise CheckpointError(
            f"resume: none of the {len(found)} checkpoint(s) in {str(directory)!r} can be read (newest: "
            f"{first_error}); nothing was changed: restore one, or move them away to start the run over"
        )
    return None


def resume_checkpoint(
    resume: bool | str | os.PathLike[str], directory: str | os.PathLike[str]
) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]] | None:
    """The checkpoint a run resumes from: ``resume`` names a checkpoint file, or is True for the
    newest valid one in ``directory`` (None when there is none)."""
    if isinstance(resume, (str, os.PathLike)) and not isinstance(resume, bool):
        path = Path(resume)
        return (path, *load_checkpoint(path))
    return latest_checkpoint(directory)


# ----------------------------------------------------------------------------------------------
# Optimiser state dicts <-> (tensors, JSON)
# ----------------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        raise TypeError("tensor in a JSON part of an optimiser state")
    return value


def flatten_optimizer_state(
    prefix: str, state_dict: Mapping[str, Any]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors named ``{prefix}.{param_id}.{key}`` and JSON."""
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    tensor_keys: dict[str, list[str]] = {}
    for param_id, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{param_id}.{key}"] = value
                tensor_keys.setdefault(str(param_id), []).append(key)
            else:
                plain.setdefault(str(param_id), {})[key] = _jsonable(value)
    meta = {"param_groups": _jsonable(state_dict["param_groups"]), "plain": plain, "tensor_keys": tensor_keys}
    return tensors, meta


def unflatten_optimizer_state(
    prefix: str, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer_state`."""
    state: dict[int, dict[str, Any]] = {}
    for param_id, keys in meta["tensor_keys"].items():
        for key in keys:
            name = f"{prefix}.{param_id}.{key}"
            if name not in tensors:
                raise CheckpointError(f"checkpoint lacks optimiser tensor {name!r}")
            state.setdefault(int(param_id), {})[key] = tensors[name]
    for param_id, entries in meta["plain"].items():
        state.setdefault(int(param_id), {}).update(entries)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):  # JSON turned the tuple into a list
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}
