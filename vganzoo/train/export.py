"""From training to a weight set: export a model or a training checkpoint as a ``save_pretrained`` folder.

    >>> from vganzoo.train import export_checkpoint
    >>> export_checkpoint("runs/digits", "weights/mocogan-rnn.digits", generator="ema", dtype="float16")

or ``vganzoo export runs/digits weights/mocogan-rnn.digits --generator ema --dtype float16``. The
folder loads with ``vganzoo.load("local-dir:...")``, publishes with ``vganzoo push`` and can be
bundled inside a package (see ``vganzoo.hub.spec_from_folder``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..files import read_json_file
from . import checkpoint as ckpt

GENERATOR_CHOICES = ("both", "ema", "raw")

__all__ = ["GENERATOR_CHOICES", "export_checkpoint", "export_model", "model_from_checkpoint"]


def export_model(
    model: nn.Module,
    directory: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    dtype: Any = None,
) -> Path:
    """``vganzoo.save_pretrained(model, directory, metadata=..., overwrite=True)``: the end-of-run export.

    ``metadata`` is what the model card records (``steps``, ``dataset``, ``training_command``...).
    An existing folder is replaced (a resumed run that trained further re-exports its model).
    """
    from ..hub import save_pretrained

    save_pretrained(model, str(directory), metadata=dict(metadata or {}), overwrite=True, dtype=dtype)
    return Path(directory)


def _load(source: str | os.PathLike[str], step: int | None) -> tuple[Path, Path | None, Any, dict[str, Any]]:
    """(checkpoint file, run folder or None, tensors, state) for a checkpoint file or a run folder."""
    path = Path(source).expanduser()
    if path.is_dir():
        ckpt_dir = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        run_dir = path if ckpt_dir != path else path.parent
        found = ckpt.list_checkpoints(ckpt_dir)
        if not found:
            raise ckpt.CheckpointError(
                f"checkpoint: no checkpoints in {str(ckpt_dir)!r} (expected ckpt-NNNNNNNN.safetensors files)"
            )
        if step is None:  # the newest that loads (damaged newer ones are skipped with a warning)
            latest = ckpt.latest_checkpoint(ckpt_dir)
            if latest is None:
                raise ckpt.CheckpointError(f"checkpoint: every checkpoint in {str(ckpt_dir)!r} is damaged")
            return latest[0], run_dir, latest[1], latest[2]
        chosen = [p for s, p in found if s == step]
        if not chosen:
            have = ", ".join(str(s) for s, _ in found[-8:])
            raise ckpt.CheckpointError(
                f"step: no checkpoint for step {step} in {str(ckpt_dir)!r} (have: {have})"
            )
        path = chosen[0]
    elif not path.exists():
        raise ckpt.CheckpointError(
            f"checkpoint: {str(path)!r} does not exist (expected a checkpoint file or a run folder)"
        )
    elif step is not None:
        raise ValueError("step: only applies when the checkpoint argument is a run folder")
    else:
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else None
    return (path, run_dir, *ckpt.load_checkpoint(path))


def model_from_checkpoint(
    checkpoint: str | os.PathLike[str], *, step: int | None = None
) -> tuple[Any, dict[str, Any]]:
    """Rebuild the model a training checkpoint holds.

    Args:
        checkpoint: a ``ckpt-*.safetensors`` file, or a run folder (its newest checkpoint, or
            the one of ``step``).

    Returns ``(model, info)``: the :class:`~vganzoo.models.base.VideoGAN` with the checkpoint's
    generator, EMA generator (when trained with one) and discriminators, in eval mode, and a dict
    with ``step``, ``checkpoint``, ``run_dir`` and the run's ``config.json`` (``run_config``) when found.
    Nothing is unpickled: checkpoints are safetensors with JSON metadata.
    """
    from ..registry import complete_saved_config, create

    path, run_dir, tensors, state = _load(checkpoint, step)
    config = dict(state.get("model_config") or {})
    name = config.pop("model", None)
    if not isinstance(name, str):
        raise ckpt.CheckpointError(
            f"checkpoint {str(path)!r} does not record its model config; cannot rebuild the model"
        )
    from ..hub import check_config_size

    stored = sum(v.numel() * v.element_size() for k, v in tensors.items() if k.startswith("model."))
    check_config_size({"model": name, **config}, f"checkpoint {str(path)!r}", {"model": stored})
    config = complete_saved_config({"model": name, **config})  # saved before a key existed: as it was
    model = create(config.pop("model"), **config)
    if state.get("recipe"):
        model.recipe = dict(state["recipe"])
    if any(k.startswith("model.generator_ema.") for k in tensors):
        model.add_ema()
    ckpt.load_model_state(model, tensors, f"checkpoint {str(path)!r} ({name})")
    model.eval()
    run_config: dict[str, Any] = {}
    if run_dir is not None and (run_dir / "config.json").is_file():
        try:
            run_config = read_json_file(run_dir / "config.json")
        except (OSError, ValueError):
            run_config = {}
    info = {
        "step": int(state.get("step", 0)),
        "checkpoint": str(path),
        "run_dir": str(run_dir) if run_dir else None,
        "run_config": run_config,
    }
    return model, info


def run_card_fields(run_config: Mapping[str, Any]) -> dict[str, str]:
    """What a run's config.json gives its model card: ``dataset``, and ``training_command``: the
    command that started the run, then each resume's command line."""
    card: dict[str, str] = {}
    if "data" in run_config:
        card["dataset"] = str(run_config["data"])
    if "command" in run_config:
        resumes = run_config.get("resume_commands")
        lines = [str(run_config["command"])]
        if isinstance(resumes, list) and resumes:
            lines += ["# resumed with:", *map(str, resumes)]
        card["training_command"] = "\n".join(lines)
    return card


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    step: int | None = None,
    generator: str = "both",
    discriminators: bool = True,
    dtype: Any = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a training checkpoint as a ``save_pretrained`` folder and return its path.

    Args:
        checkpoint: a checkpoint file or a run folder (see :func:`model_from_checkpoint`).
        directory: the weight-set folder to write (atomically; see ``vganzoo.save_pretrained``).
        step: with a run folder, the checkpoint of this step instead of the newest.
        generator: ``"both"`` keeps the generator and its EMA as trained; ``"ema"`` ships the EMA
            weights as the (only) generator; ``"raw"`` ships the trained generator without the EMA.
            One generator halves the size of what is bundled or downloaded.
        discriminators: False ships the generator only (enough for sampling; fine-tuning needs them).
        dtype: storage dtype for floating-point tensors (``"float16"`` halves the size).
        metadata: model-card fields; ``steps``, ``dataset`` and ``training_command`` are filled in
            from the checkpoint and the run's config.json unless given.
        overwrite: replace an existing non-empty folder.
    """
    from ..hub import save_pretrained

    if generator not in GENERATOR_CHOICES:
        raise ValueError(f"generator must be one of {', '.join(GENERATOR_CHOICES)}, got {generator!r}")
    model, info = model_from_checkpoint(checkpoint, step=step)
    if generator == "ema":
        if model.generator_ema is None:
            raise ValueError(
                f"generator='ema': the checkpoint {info['checkpoint']!r} was trained without an EMA "
                "generator (the recipe's ema is null); export the generator as trained (both or raw), or "
                "train with an EMA (--set ema.decay=0.999)"
            )
        model.generator = model.generator_ema
        model.generator_ema = None
    elif generator == "raw":
        model.generator_ema = None
    if not discriminators:
        model.discriminators = nn.ModuleDict()
    card: dict[str, Any] = {"steps": info["step"], **run_card_fields(info["run_config"])}
    if generator != "both":
        card["generator_weights"] = generator
    card.update(dict(metadata or {}))
    return save_pretrained(model, directory, metadata=card, overwrite=overwrite, dtype=dtype)
