"""The one table of activations the fused ops apply after the bias, and the default leaky slope.

Every Python layer and both implementations follow it: the argument checks, the plain-PyTorch
reference, the fake kernels, :class:`vganzoo.nn.STConv3d` (its in-place activation after a batch
norm) and, through ``code``, the compiled extension. ``code`` is the value of ``vganzoo::Act`` in
csrc/common.h, which the C++ parser (csrc/cpu/checks.cpp), the C++ backward and the CUDA kernels
(``cuda_kernels::ActCode``) switch on; the codes are never renumbered. tests/ops/test_activations.py
checks that csrc/common.h, the CUDA kernels' codes and the compiled parser all match this table.

``negative_slope`` is used by "leaky_relu" only; it must be >= 0 there because the backward pass
derives the gradient from the saved output (out > 0 exactly where the pre-activation was > 0).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_TABLE",
    "DEFAULT_NEGATIVE_SLOPE",
    "Activation",
    "apply_activation",
    "apply_activation_",
    "check_activation",
]

DEFAULT_NEGATIVE_SLOPE = 0.2  # leaky_relu's slope where none is given (the GAN papers' usual 0.2)

ActivationFn = Callable[[torch.Tensor, float], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class Activation:
    """One row of the table.

    Attributes:
        name: what callers pass (``activation="leaky_relu"``).
        code: the ``vganzoo::Act`` value in csrc/common.h (``cpp_name`` is its enumerator).
        cpp_name: the enumerator's name (``Act::LeakyRelu``, ``cuda_kernels::kActLeakyRelu``).
        reference: ``fn(x, negative_slope)``, a new tensor: the ground truth.
        in_place: ``fn(y, negative_slope)`` overwriting ``y`` (autograd-safe: none of these needs
            its input for the backward pass).
        uses_slope: whether ``negative_slope`` matters (and must be >= 0).
    """

    name: str
    code: int
    cpp_name: str
    reference: ActivationFn
    in_place: ActivationFn
    uses_slope: bool = False


def _leaky_relu_(y: torch.Tensor, negative_slope: float) -> torch.Tensor:
    # in-place leaky_relu with slope 0 is relu: autograd refuses leaky_relu_'s backward at slope 0
    return F.leaky_relu_(y, negative_slope) if negative_slope > 0 else F.relu_(y)


ACTIVATION_TABLE: tuple[Activation, ...] = (
    Activation("none", 0, "None", lambda x, slope: x, lambda y, slope: y),
    Activation("relu", 1, "Relu", lambda x, slope: F.relu(x), lambda y, slope: F.relu_(y)),
    Activation(
        "leaky_relu", 2, "LeakyRelu", lambda x, slope: F.leaky_relu(x, slope), _leaky_relu_, uses_slope=True
    ),
    Activation("tanh", 3, "Tanh", lambda x, slope: torch.tanh(x), lambda y, slope: y.tanh_()),
    Activation("sigmoid", 4, "Sigmoid", lambda x, slope: torch.sigmoid(x), lambda y, slope: y.sigmoid_()),
)
_BY_NAME = {row.name: row for row in ACTIVATION_TABLE}
ACTIVATIONS: tuple[str, ...] = tuple(_BY_NAME)


def _row(activation: str) -> Activation:
    row = _BY_NAME.get(activation) if isinstance(activation, str) else None
    if row is None:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return row


def check_activation(activation: str, negative_slope: float) -> None:
    """Raise ValueError / TypeError (naming the argument) unless the pair is valid for the ops."""
    row = _row(activation)
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
        raise TypeError(f"negative_slope must be a number, got {negative_slope!r}")
    if row.uses_slope and not negative_slope >= 0:  # NaN fails too
        raise ValueError(
            f"negative_slope must be >= 0 for activation={activation!r} (the backward pass derives the "
            f"gradient from the saved output), got {negative_slope}"
        )


def apply_activation(
    x: torch.Tensor, activation: str, negative_slope: float = DEFAULT_NEGATIVE_SLOPE
) -> torch.Tensor:
    """``activation`` applied to ``x`` (a new tensor; "none" returns ``x`` itself)."""
    return _row(activation).reference(x, negative_slope)


def apply_activation_(
    y: torch.Tensor, activation: str, negative_slope: float = DEFAULT_NEGATIVE_SLOPE
) -> torch.Tensor:
    """``activation`` applied to ``y`` in place; returns ``y``."""
    return _row(activation).in_place(y, negative_slope)
