"""Singular value clipping (TGAN, Saito et al. 2017): keep a critic 1-Lipschitz by projection.

After a discriminator update the trainer calls :func:`singular_value_clip_` (TGAN: every 5
iterations). Every weight with 4 or more dimensions (2-D and 3-D convolutions, transposed or not)
is reshaped to ``(shape[0], -1)`` and its singular values above ``max_value`` are set to
``max_value`` (the same result as SVD, clip and rebuild). Every batch norm scale ``gamma`` is clipped to
``[0.01 * sigma, sigma] * max_value`` with ``sigma = sqrt(running_var)``, which bounds the norm
layer's own gain ``gamma / sigma`` by ``max_value``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["singular_value_clip_"]

# A clipped BN scale never falls below this fraction of sqrt(running_var) (keeps it from dying).
BN_SCALE_FLOOR = 0.01
# Weights with at least this many dimensions are treated as (out, -1) matrices.
MIN_WEIGHT_DIMS = 4


@torch.no_grad()
def _clip_matrix_(weight: torch.Tensor, max_value: float) -> bool:
    """Clip the singular values of ``weight`` viewed as ``(shape[0], -1)``; True when it changed.

    Works on the small Gram matrix (``W W^T`` or ``W^T W``) in float64: its eigenvectors are the
    singular vectors, so only the components with ``s > max_value`` are shrunk, by
    ``W - U_k diag(1 - max_value / s_k) U_k^T W``. On the 2-core CPU box this took 2 s for a
    512 x 16384 weight where a full SVD took 48 s.
    """
    matrix = weight.reshape(weight.shape[0], -1).double()
    wide = matrix.shape[0] <= matrix.shape[1]
    gram = matrix @ matrix.T if wide else matrix.T @ matrix
    eigenvalues, vectors = torch.linalg.eigh(gram)
    singular = eigenvalues.clamp(min=0).sqrt()
    over = singular > max_value
    if not bool(over.any()):
        return False
    basis, shrink = vectors[:, over], 1 - max_value / singular[over]
    if wide:
        matrix = matrix - basis @ (shrink[:, None] * (basis.T @ matrix))
    else:
        matrix = matrix - ((matrix @ basis) * shrink) @ basis.T
    weight.copy_(matrix.reshape(weight.shape).to(weight.dtype))
    return True


@torch.no_grad()
def singular_value_clip_(module: nn.Module, max_value: float = 1.0) -> int:
    """Clip, in place, the singular values of every conv weight and every BN scale of ``module``.

    Args:
        module: any module (typically a discriminator); all of its submodules are visited.
        max_value: the largest singular value allowed (> 0).

    Returns:
        the number of tensors that were changed.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
    if not float(max_value) > 0.0:
        raise ValueError(f"max_value must be positive, got {max_value!r}")
    changed = 0
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            if sub.weight is None or sub.running_var is None:
                continue
            sigma = sub.running_var.clamp(min=0).sqrt() * max_value
            new = torch.minimum(torch.maximum(sub.weight, BN_SCALE_FLOOR * sigma), sigma)
            if not torch.equal(new, sub.weight):
                sub.weight.copy_(new)
                changed += 1
            continue
        weight = sub._parameters.get("weight")
        if weight is not None and weight.ndim >= MIN_WEIGHT_DIMS:
            changed += int(_clip_matrix_(weight, float(max_value)))
    return changed
