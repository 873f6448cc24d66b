"""Write a weight folder (one safetensors file per component + config.json) atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .._files import atomic_path, atomic_write_bytes
from ..errors import VganzooError

__all__ = ["FolderExistsError", "write_weight_folder"]

CONFIG_FILE = "config.json"


class FolderExistsError(VganzooError, FileExistsError):
    """The output folder already holds a weight set (pass overwrite=True / --force)."""


def write_weight_folder(
    out_dir: str | os.PathLike[str],
    config: Mapping[str, Any],
    components: Mapping[str, Mapping[str, torch.Tensor]],
    *,
    metadata: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``<component>.safetensors`` for each entry of ``components`` and then ``config.json``.

    Every file goes to a temporary name in ``out_dir``, is fsynced and renamed into place;
    config.json comes last, so a folder with a config.json is complete. Refuses to replace an
    existing config.json unless ``overwrite``.

    Args:
        out_dir: the folder (created if missing).
        config: JSON-able, with ``"model"``.
        components: file stem (``"generator"``, ``"discriminator.video"``) -> state dict.
        metadata: string key/values stored in every safetensors header (provenance).
    """
    if "model" not in config:
        raise ValueError("config must name the model under 'model'")
    text = json.dumps(dict(config), indent=2, sort_keys=False) + "\n"  # fails early if not JSON-able
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"out_dir {str(folder)!r} exists and is not a folder")
    if (folder / CONFIG_FILE).exists() and not overwrite:
        raise FolderExistsError(f"{str(folder / CONFIG_FILE)!r} already exists; pass overwrite=True (--force) to replace the folder's weights")
    folder.mkdir(parents=True, exist_ok=True)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    for stem, state in components.items():
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
        with atomic_path(folder / f"{stem}.safetensors") as tmp:
            save_file(tensors, tmp, metadata=meta)
    atomic_write_bytes(folder / CONFIG_FILE, text.encode("utf-8"))
    return folder
