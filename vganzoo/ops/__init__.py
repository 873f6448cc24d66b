"""Fused spatio-temporal operators: 3-D (transposed) convolution + bias + activation in one op.

    >>> from vganzoo import ops
    >>> y = ops.conv3d_bias_act(x, w, b, stride=(1, 2, 2), padding=(0, 1, 1), activation="leaky_relu")
    >>> ops.explain(x, w, b, stride=(1, 2, 2), padding=(0, 1, 1))   # which code path that call takes

Shapes: x (N, C_in, T, H, W); conv weight (C_out, C_in/groups, kT, kH, kW); transposed-conv weight
(C_in, C_out/groups, kT, kH, kW); bias (C_out,). float32 / float16 / bfloat16 / float64; contiguous or
channels_last_3d (the output keeps the input's memory format); N = 0 works.

Activations: ``ACTIVATIONS`` ("none", "relu", "leaky_relu", "tanh", "sigmoid"), one table that the checks,
the reference, the layers and the compiled extension follow (:mod:`vganzoo.ops.activations`);
``negative_slope`` (leaky_relu only) defaults to ``DEFAULT_NEGATIVE_SLOPE`` = 0.2 everywhere.

Implementations (``impl=`` argument, else the environment variable ``VGANZOO_OPS_IMPL``, else "auto"):
  "ext"  the compiled extension ``vganzoo._C`` (error if it has no kernel for the tensor's device);
  "ref"  the plain-PyTorch reference (vganzoo.ops.reference);
  "auto" the extension where it is built for that device, else the reference (warns once); inside
         torch.func transforms (grad, vjp, jacrev, vmap, ...) the reference, as those cannot run the
         extension's C++ autograd function (impl="ext" there raises torch's error).
Both are differentiable, twice (the extension's backward is a C++ autograd function, csrc/autograd.cpp), and
work under ``torch.compile(fullgraph=True)`` (fake kernels through ``torch.library.register_fake``).
Inside ``torch.autocast`` both run in the autocast dtype, as F.conv3d / F.conv_transpose3d do (float32
x, weight and bias are cast; float64 is left alone), so STConv3d stays a drop-in for nn.Conv3d under AMP.

On CUDA the extension autotunes: the first call of each configuration (shape, dtype, memory format,
strides...) times the candidates that can run it and keeps the fastest for the process: our implicit-GEMM
kernel, cuDNN + our fused bias/activation epilogue, and, where the build has CUTLASS (see setup.py), the
CUTLASS implicit-GEMM kernels (fprop for convolutions, dgrad for transposed ones, bias + activation fused in
their epilogue; bfloat16 / float16, float32 as TF32 only where torch allows TF32 for convolutions; groups 1,
dilation 1, channels multiples of 8, or 4 for TF32). Not under ``torch.use_deterministic_algorithms(True)``:
then our kernel, untimed, so runs repeat bit for bit. The first-order backward is tuned the same way
(CUTLASS dgrad + wgrad against cuDNN's convolution backward); a double backward takes ATen's ops.
``VGANZOO_CUDA_STRATEGY`` (read at every call) overrides the choice:

  "auto"        (or unset) autotuned as above;
  "igemm"       our kernel wherever it covers the call (backward: cuDNN);
  "aten"        cuDNN + fused epilogue everywhere (backward: cuDNN);
  "cutlass"     the CUTLASS kernels wherever they can run the call, forward and backward (the rest as auto);
  "no-cutlass"  autotuned without CUTLASS.

``explain`` reports the choice with every candidate's timing.
"""

from __future__ import annotations

from ._checks import output_memory_format, triple
from .activations import (
    ACTIVATION_TABLE,
    ACTIVATIONS,
    DEFAULT_NEGATIVE_SLOPE,
    Activation,
    apply_activation,
    apply_activation_,
    check_activation,
)
from .fused import (
    IMPLS,
    conv3d_bias_act,
    conv_transpose3d_bias_act,
    explain,
    extension_available,
    resolve_impl,
)
from .reference import conv3d_bias_act_ref, conv_transpose3d_bias_act_ref

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_TABLE",
    "DEFAULT_NEGATIVE_SLOPE",
    "IMPLS",
    "Activation",
    "apply_activation",
    "apply_activation_",
    "check_activation",
    "conv3d_bias_act",
    "conv3d_bias_act_ref",
    "conv_transpose3d_bias_act",
    "conv_transpose3d_bias_act_ref",
    "explain",
    "extension_available",
    "output_memory_format",
    "resolve_impl",
    "triple",
]
