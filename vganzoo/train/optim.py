"""The recipe's optimisers, the mixed-precision settings around them, and the generator's EMA."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import InvalidConfigError

__all__ = ["OPTIMIZERS", "build_optimizer", "build_optimizers", "mixed_precision", "update_ema"]

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}


def build_optimizer(params: Any, spec: Mapping[str, Any], *, what: str) -> torch.optim.Optimizer:
    """``{"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], ...}`` -> optimiser over ``params``."""
    spec = dict(spec)
    name = str(spec.pop("name", "adam")).lower()
    if name not in OPTIMIZERS:
        raise InvalidConfigError(
            f"recipe optimizers[{what!r}]: unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)}"
        )
    if isinstance(spec.get("betas"), list):
        spec["betas"] = tuple(spec["betas"])
    try:
        return OPTIMIZERS[name](params, **spec)
    except (TypeError, ValueError) as exc:
        raise InvalidConfigError(f"recipe optimizers[{what!r}]: bad settings for {name}: {exc}") from None


def build_optimizers(
    model: nn.Module, specs: Mapping[str, Any], roles: Sequence[str]
) -> tuple[torch.optim.Optimizer, dict[str, torch.optim.Optimizer]]:
    """The generator's optimiser and one per discriminator role, from the recipe's ``optimizers``
    (``discriminator.<role>`` entries override the shared ``discriminators`` settings)."""
    opt_g = build_optimizer(model.generator.parameters(), specs["generator"], what="generator")
    opt_d = {}
    for role in roles:
        spec = {**specs["discriminators"], **specs.get(f"discriminator.{role}", {})}
        opt_d[role] = build_optimizer(
            model.discriminators[role].parameters(), spec, what=f"discriminator.{role}"
        )
    return opt_g, opt_d


def mixed_precision(
    amp: bool, device: torch.device, names: Sequence[str]
) -> tuple[torch.dtype | None, dict[str, torch.amp.GradScaler]]:
    """(autocast dtype or None, a gradient scaler per optimiser in ``names``).

    ``amp`` is CUDA-only: bf16 where supported, else fp16, whose scalers are the only enabled ones.
    """
    amp_dtype: torch.dtype | None = None
    if amp:
        if device.type != "cuda":
            warnings.warn("amp: mixed precision is CUDA-only; training in float32 on the CPU", stacklevel=3)
        else:
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    use_scaler = amp_dtype == torch.float16
    return amp_dtype, {name: torch.amp.GradScaler("cuda", enabled=use_scaler) for name in names}


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for the parameters; buffers are copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p.detach(), 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)
