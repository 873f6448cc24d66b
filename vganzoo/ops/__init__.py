"""Fused spatio-temporal operators (convolution + bias + activation).

Interface-first version: only the plain-PyTorch reference exists yet; the compiled extension
(`vganzoo._C`) and the implementation switch arrive with the fused-op issue.
"""

from __future__ import annotations

from .reference import ACTIVATIONS, conv3d_bias_act_ref, conv_transpose3d_bias_act_ref

conv3d_bias_act = conv3d_bias_act_ref
conv_transpose3d_bias_act = conv_transpose3d_bias_act_ref

__all__ = ["ACTIVATIONS", "conv3d_bias_act", "conv_transpose3d_bias_act"]
