"""Singular value clipping (TGAN, Saito et al. 2017): keep a critic 1-Lipschitz by projection.

After a discriminator update the trainer calls :func:`singular_value_clip_` (TGAN: every 5
iterations). Every weight with 4 or more dimensions (2-D and 3-D convolutions, transposed or not)
is reshaped to ``(shape[0], -1)``, decomposed by SVD, its singular values clipped to
``max_value`` and rebuilt. Every batch norm scale ``gamma`` is clipped to
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
    matrix = weight.reshape(weight.shape[0], -1)
    # SVD in float64 on the CPU-or-device copy: float32 SVD of a 512 x 8192 matrix loses ~1e-4.
    u, s, vh = torch.linalg.svd(matrix.double(), full_matrices=False)
    if float(s.max()) <= max_value:
        return False
    clipped = (u * s.clamp(max=max_value)) @ vh
    weight.copy_(clipped.reshape(weight.shape).to(weight.dtype))
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
