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
from safetensors.torch import save as st_save

from ..errors import VganzooError
from ..files import atomic_write_bytes, remove_stale_temp_files

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
    data = st_save(_clean(tensors), metadata=metadata)
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
    except (SafetensorError, ValueError, json.JSONDecodeError, OSError) as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged or not a safetensors file: {exc}"
        ) from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is a safetensors file but not a vganzoo training checkpoint")
    if int(metadata.get("format_version", "0")) > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {metadata['format_version']}, newer than this "
            f"vganzoo reads ({FORMAT_VERSION})"
        )
    return tensors, json.loads(metadata["state"])


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
    """The newest checkpoint in ``directory`` that loads; damaged newer ones are skipped with a warning."""
    for _step, path in reversed(list_checkpoints(directory)):
        try:
            tensors, state = load_checkpoint(path)
        except CheckpointError as exc:
            warnings.warn(f"skipping damaged checkpoint: {exc}", stacklevel=2)
            continue
        return path, tensors, state
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
