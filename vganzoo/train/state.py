"""What a training checkpoint holds, captured from and restored into the live training objects.

:mod:`vganzoo.train.checkpoint` reads and writes the file (tensors + a JSON header); this module
decides what goes in: the model's weights, each optimiser's state (hyperparameters are the recipe's on
restore), the mixed-precision scalers, and the RNG states (torch, CUDA, Python and the latent
generator), which every iteration reseeds from ``(seed, rank, iteration)``.
:func:`capture_state` and :func:`restore_state` (behind ``Trainer.state_tensors_and_meta`` and
``Trainer.load_state``) put the pieces together.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import checkpoint as ckpt

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = [
    "capture_optimizers",
    "capture_rng",
    "capture_scalers",
    "capture_state",
    "check_model_config",
    "derive_seed",
    "reseed",
    "restore_optimizers",
    "restore_rng",
    "restore_scalers",
    "restore_state",
]

OPTIM_PREFIX = "optim"
MODEL_PREFIX = "model."


def capture_state(trainer: Trainer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Everything a checkpoint of ``trainer`` holds: (tensors, JSON-able state)."""
    tensors = {f"{MODEL_PREFIX}{k}": v for k, v in trainer.model.state_dict().items()}
    optim_tensors, optim_meta = capture_optimizers(trainer.optimizers())
    rng_tensors, rng_meta = capture_rng(trainer.latent_generator, trainer.device)
    meta = {
        "step": trainer.step,
        "data_position": trainer.stream.state(),
        "world_size": trainer.world_size,
        "use_labels": trainer.use_labels,
        "optimizers": optim_meta,
        "scalers": capture_scalers(trainer.scalers),
        "model_config": getattr(trainer.model, "config", {}),
        "recipe": trainer.recipe,
        "train_config": trainer.config.to_dict(),
        "rng": rng_meta,
    }
    return {**tensors, **optim_tensors, **rng_tensors}, meta


def restore_state(
    trainer: Trainer, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any], *, source: str
) -> None:
    """Put ``trainer`` back where :func:`capture_state` found it (``source`` names the checkpoint in
    errors). The optimisers keep the hyperparameters of the recipe in effect now."""
    current_config = getattr(trainer.model, "config", {}) or {}
    ckpt.check_state(meta, source)  # types and ranges, also of a state not read by load_checkpoint
    check_model_config(meta.get("model_config") or {}, current_config, source=source)
    ckpt.load_model_state(trainer.model, tensors, source)
    optimizers = ckpt.require_field(meta, "optimizers", source)
    position = ckpt.require_field(meta, "data_position", source)
    restore_optimizers(trainer.optimizers(), tensors, optimizers, source=source)
    try:
        restore_scalers(trainer.scalers, meta.get("scalers", {}))
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise ckpt.CheckpointError(f"{source}: field scalers is malformed ({str(exc)[:100]})") from None
    restore_rng(tensors, meta.get("rng", {}), trainer.latent_generator, trainer.device, source=source)
    saved_world = int(meta.get("world_size", trainer.world_size))
    if saved_world != trainer.world_size and trainer.is_main:
        warnings.warn(
            f"resuming a run saved with {saved_world} processes on {trainer.world_size}: the data "
            "order differs from an uninterrupted run",
            stacklevel=4,
        )
    trainer.stream.load_state(position)
    trainer.step = int(meta["step"])
    if trainer.use_labels and meta.get("use_labels") is False:  # the run had stopped using labels
        trainer.use_labels = False


def capture_optimizers(
    optimizers: Mapping[str, torch.optim.Optimizer],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every optimiser's state: tensors named ``optim.<name>.<param>.<key>`` and JSON by name."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for name, opt in optimizers.items():
        flat, meta[name] = ckpt.flatten_optimizer_state(f"{OPTIM_PREFIX}.{name}", opt.state_dict())
        tensors.update(flat)
    return tensors, meta


def restore_optimizers(
    optimizers: Mapping[str, torch.optim.Optimizer],
    tensors: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    *,
    source: str,
) -> None:
    """Load each optimiser's saved state, keeping the hyperparameters it has now.

    The recipe in effect now sets lr, betas...: ``load_state_dict`` alone would silently bring back
    the saved ones and ignore a ``--set optimizers...`` given on resume.
    """
    for name, opt in optimizers.items():
        if name not in meta:
            raise ckpt.CheckpointError(f"{source} has no optimizer state for {name!r}")
        current = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
        try:
            saved = ckpt.unflatten_optimizer_state(f"{OPTIM_PREFIX}.{name}", tensors, meta[name])
            _check_optimizer_state(opt, saved["state"], f"{source}: optimizers.{name}")
            opt.load_state_dict(saved)
        except ckpt.CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
            raise ckpt.CheckpointError(
                f"{source}: field optimizers.{name} does not fit this optimiser ({type(exc).__name__}: "
                f"{str(exc)[:100]})"
            ) from None
        for group, settings in zip(opt.param_groups, current):
            group.update(settings)


def capture_scalers(scalers: Mapping[str, torch.amp.GradScaler]) -> dict[str, Any]:
    """The state of every enabled gradient scaler (float16 mixed precision), by name."""
    return {name: s.state_dict() for name, s in scalers.items() if s.is_enabled()}


def restore_scalers(scalers: Mapping[str, torch.amp.GradScaler], saved: Mapping[str, Any]) -> None:
    for name, scaler_state in saved.items():
        if name in scalers and scalers[name].is_enabled():
            scalers[name].load_state_dict(scaler_state)


def derive_seed(seed: int, *parts: int) -> int:
    """A 63-bit seed from ``seed`` and ``parts`` (rank, iteration...), stable across platforms."""
    text = ":".join(str(int(p)) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & ((1 << 63) - 1)


def reseed(
    seed: int, rank: int, iteration: int, latent_generator: torch.Generator, device: torch.device
) -> None:
    """Seed torch (and CUDA), Python, NumPy and the latent generator for ``iteration`` on ``rank``, so
    that a resumed run draws the same numbers as an uninterrupted one."""
    derived = derive_seed(seed, rank, iteration)
    # not torch.manual_seed: on a CPU-only run it queues a lazy CUDA seeding with a stack trace
    # every call, a few ms per iteration
    torch.default_generator.manual_seed(derived)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(derived)
    random.seed(derived)
    np.random.seed(derived % (1 << 32))
    latent_generator.manual_seed(derive_seed(seed, rank, iteration, 1))


def capture_rng(
    latent_generator: torch.Generator, device: torch.device
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The RNG states as tensors (torch, latent generator, every CUDA device) and JSON (Python's)."""
    tensors = {"rng.torch": torch.get_rng_state(), "rng.latent": latent_generator.get_state()}
    if device.type == "cuda":
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    version, internal, gauss = random.getstate()
    return tensors, {"python": [version, list(internal), gauss]}


def restore_rng(
    tensors: Mapping[str, torch.Tensor],
    saved: Mapping[str, Any],
    latent_generator: torch.Generator,
    device: torch.device,
    *,
    source: str = "the checkpoint",
) -> None:
    """Inverse of :func:`capture_rng`; states a checkpoint lacks are left as they are. A state of the
    wrong size or type is a :class:`CheckpointError` naming ``source`` and the field."""
    for name, target in (("rng.torch", torch.default_generator), ("rng.latent", latent_generator)):
        if name in tensors:
            state = tensors[name]
            if state.dtype != torch.uint8 or state.shape != target.get_state().shape:
                raise ckpt.CheckpointError(
                    f"{source}: tensor {name} is {state.dtype} of shape {tuple(state.shape)}, not the "
                    f"{tuple(target.get_state().shape)} bytes of a torch RNG state"
                )
            try:
                target.set_state(state)
            except RuntimeError as exc:
                raise ckpt.CheckpointError(f"{source}: tensor {name} is not an RNG state ({exc})") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        states = [tensors[f"rng.cuda.{i}"] for i in range(count) if f"rng.cuda.{i}" in tensors]
        if len(states) == count:
            torch.cuda.set_rng_state_all(states)
    python = saved.get("python")
    if python:
        try:
            random.setstate((python[0], tuple(python[1]), python[2]))
        except (TypeError, ValueError, IndexError, KeyError, OverflowError) as exc:
            raise ckpt.CheckpointError(
                f"{source}: field rng.python is not a Python RNG state ({exc})"
            ) from None


def check_model_config(saved: Mapping[str, Any], current: Mapping[str, Any], *, source: str) -> None:
    """A checkpoint written for another model config is refused (when both configs are known)."""
    if saved and current and saved != current:
        raise ckpt.CheckpointError(
            f"{source} was written for model config {saved}, but this model has {current}"
        )


def _check_optimizer_state(opt: torch.optim.Optimizer, state: Mapping[int, Any], where: str) -> None:
    """A checkpoint is untrusted: every per-parameter tensor must have its parameter's shape (or be a
    scalar, like Adam's step) and be finite, and every other value a finite number; otherwise the run
    would fail (or diverge) iterations later, far from the file that caused it."""
    params = [p for group in opt.param_groups for p in group["params"]]
    for index, entries in state.items():
        if not 0 <= index < len(params) or not isinstance(entries, Mapping):
            raise ckpt.CheckpointError(f"{where}: state {index} does not belong to this optimiser")
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                if value.ndim and value.shape != params[index].shape:
                    raise ckpt.CheckpointError(
                        f"{where}.{index}.{key}: shape {tuple(value.shape)}, but the parameter is "
                        f"{tuple(params[index].shape)}"
                    )
                if value.is_floating_point() and not torch.isfinite(value).all():
                    raise ckpt.CheckpointError(f"{where}.{index}.{key} holds NaN or inf values")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise ckpt.CheckpointError(f"{where}.{index}.{key}: expected a number or a tensor")
