"""Write converted weights as a loadable weight set (through ``vganzoo.save_pretrained``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

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
    """Write converted weights as a weight set that ``vganzoo.load`` (and sample, eval, push) reads.

    The model ``config["model"]`` is built from ``config``, each component's state dict is loaded
    into it strictly, the discriminators without weights are left out, and the folder is written
    by :func:`vganzoo.save_pretrained` (weights.json with sha256 pins, model card, atomic).

    Args:
        out_dir: the folder to write; an existing weight set there is replaced only with ``overwrite``;
            a non-empty folder that is not a weight set is refused.
        config: JSON-able, with ``"model"``.
        components: ``"generator"``, ``"generator_ema"``, ``"discriminator.<role>"`` -> state dict.
        metadata: provenance (source file, format, converter) for the model card.
    """
    from .. import registry
    from ..errors import InvalidConfigError
    from ..hub import check_config_size, check_replaceable, component_module, save_pretrained

    if "model" not in config:
        raise ValueError("config must name the model under 'model'")
    config = dict(config)
    name = config.pop("model")
    folder = Path(out_dir)
    try:  # a folder that is not a weight set is never replaced (its other files would be lost)
        check_replaceable(folder, overwrite, "out_dir", "overwrite=True (--force)")
    except FileExistsError as exc:
        raise FolderExistsError(str(exc)) from None
    stored = {
        stem: sum(t.numel() * t.element_size() for t in state.values()) for stem, state in components.items()
    }
    check_config_size({"model": name, **config}, f"the converted {name}", stored)
    try:
        model = registry.create(name, **config)
    except InvalidConfigError:
        if "discriminators" in config or any(c.startswith("discriminator.") for c in components):
            raise
        # the architecture's default discriminators may not fit this generator (e.g. another clip
        # length); only the generator was converted, so the weight set has none
        model = registry.create(name, **config, discriminators=[])
    for role in list(model.discriminators):
        if f"discriminator.{role}" not in components:
            del model.discriminators[role]
    for stem, state in components.items():
        component_module(model, stem).load_state_dict(
            {k: v.detach().to("cpu") for k, v in state.items()}, strict=True
        )
    card = {"converted_from": dict(metadata or {})} if metadata else {}
    return save_pretrained(model, str(folder), metadata=card, overwrite=overwrite)
