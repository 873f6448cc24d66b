"""Spectral normalisation (Miyato et al. 2018) as a ``torch.nn.utils.parametrize`` parametrization.

Same maths and state-dict layout as ``torch.nn.utils.parametrizations.spectral_norm``
(``parametrizations.weight.original`` plus the power-iteration vectors ``..._u`` / ``..._v``), with
one difference that matters for a model zoo: on the ``meta`` device (used to count parameters
without allocating them) no power iteration runs at all (the weight passes through unchanged)
instead of being traced through PyTorch's slow meta kernels (seconds per layer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["SpectralNorm", "spectral_norm"]

WARMUP_ITERATIONS = 15


class SpectralNorm(nn.Module):
    """Parametrization ``W -> W / sigma(W)``, ``sigma`` estimated by power iteration.

    ``W`` is viewed as a matrix ``(W.shape[dim], -1)``. One power iteration runs per forward in
    training mode; in eval mode the stored vectors are used as they are.
    """

    def __init__(
        self, weight: torch.Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12
    ) -> None:
        super().__init__()
        if weight.ndim < 2:
            raise ValueError(
                f"spectral norm needs a weight with at least 2 dims, got shape {tuple(weight.shape)}"
            )
        if n_power_iterations < 1:
            raise ValueError(f"n_power_iterations must be positive, got {n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + weight.ndim
        self.n_power_iterations, self.eps = n_power_iterations, eps
        matrix = self._matrix(weight)
        h, w = matrix.shape
        if weight.is_meta:  # no values: shapes only
            self.register_buffer("_u", weight.new_empty(h))
            self.register_buffer("_v", weight.new_empty(w))
            return
        self.register_buffer("_u", F.normalize(weight.new_empty(h).normal_(0, 1), dim=0, eps=eps))
        self.register_buffer("_v", F.normalize(weight.new_empty(w).normal_(0, 1), dim=0, eps=eps))
        self._power_method(matrix.detach(), WARMUP_ITERATIONS)

    def _matrix(self, weight: torch.Tensor) -> torch.Tensor:
        if self.dim != 0:
            weight = weight.movedim(self.dim, 0)
        return weight.flatten(1)

    @torch.no_grad()
    def _power_method(self, matrix: torch.Tensor, iterations: int) -> None:
        for _ in range(iterations):
            self._u = F.normalize(torch.mv(matrix, self._v), dim=0, eps=self.eps, out=self._u)
            self._v = F.normalize(torch.mv(matrix.H, self._u), dim=0, eps=self.eps, out=self._v)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if weight.is_meta:
            return weight.clone()
        matrix = self._matrix(weight)
        if self.training:
            self._power_method(matrix.detach(), self.n_power_iterations)
        # clones: the in-place power iteration of the next forward must not touch saved tensors
        u = self._u.clone(memory_format=torch.contiguous_format)
        v = self._v.clone(memory_format=torch.contiguous_format)
        sigma = torch.vdot(u, torch.mv(matrix, v))
        return weight / sigma

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value  # the stored original is the unnormalised weight


def spectral_norm(
    module: nn.Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> nn.Module:
    """Register :class:`SpectralNorm` on ``module.<name>`` (in place) and return the module.

    ``dim`` defaults to 1 for transposed convolutions (their output channels) and 0 otherwise.
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"module {type(module).__name__} has no tensor parameter {name!r}")
    if dim is None:
        transposed = (
            isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
            or getattr(module, "transposed", False) is True
        )
        dim = 1 if transposed else 0
    parametrize.register_parametrization(module, name, SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
