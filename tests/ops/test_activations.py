"""The one activation table (vganzoo.ops.activations): C++, CUDA kernels and Python layers follow it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vganzoo import nn as vnn
from vganzoo import ops
from vganzoo.ops import reference

CSRC = Path(__file__).resolve().parents[2] / "csrc"
needs_ext = pytest.mark.skipif(not ops.extension_available("cpu"), reason="vganzoo._C not built")


def _enum(text: str, pattern: str) -> dict[str, int]:
    """``{enumerator: value}`` of the enum body matched by ``pattern`` (explicit values only)."""
    match = re.search(pattern, text)
    assert match, f"no enum matching {pattern!r}"
    return {name: int(value) for name, value in re.findall(r"(\w+)\s*=\s*(\d+)", match.group(1))}


def test_the_table_is_well_formed():
    assert tuple(row.name for row in ops.ACTIVATION_TABLE) == ops.ACTIVATIONS
    assert [row.code for row in ops.ACTIVATION_TABLE] == list(range(len(ops.ACTIVATION_TABLE)))
    assert [row.name for row in ops.ACTIVATION_TABLE if row.uses_slope] == ["leaky_relu"]


def test_cpp_enum_matches_the_table():
    """csrc/common.h's ``enum class Act`` (the codes the C++ and the CUDA kernels switch on)."""
    enum = _enum((CSRC / "common.h").read_text(), r"enum\s+class\s+Act\s*:\s*int\s*\{([^}]*)\}")
    assert enum == {row.cpp_name: row.code for row in ops.ACTIVATION_TABLE}


def test_cuda_kernel_codes_match_the_table():
    """The torch-free CUDA kernels carry the codes as ``kAct<Name>`` constants."""
    kernels = "\n".join(p.read_text() for p in sorted((CSRC / "cuda" / "kernels").glob("*.cuh")))
    enum = _enum(kernels, r"enum\s+ActCode\s*:\s*int\s*\{([^}]*)\}")
    assert enum == {f"kAct{row.cpp_name}": row.code for row in ops.ACTIVATION_TABLE}


def test_cutlass_epilogue_codes_match_the_table():
    """The CUTLASS kernels' epilogue (csrc/cuda/cutlass/) reads the code at run time: same ``kAct<Name>``."""
    epilogue = (CSRC / "cuda" / "cutlass" / "conv3d_cutlass.cuh").read_text()
    enum = _enum(epilogue, r"enum\s+RuntimeActCode\s*:\s*int\s*\{([^}]*)\}")
    assert enum == {f"kAct{row.cpp_name}": row.code for row in ops.ACTIVATION_TABLE}


def _raw_op(activation: str, negative_slope: float = ops.DEFAULT_NEGATIVE_SLOPE) -> torch.Tensor:
    """The compiled operator called directly (no Python checks in front of its C++ parser)."""
    x, w = torch.randn(1, 2, 3, 4, 4), torch.randn(3, 2, 1, 3, 3)
    ones, zeros = [1, 1, 1], [0, 0, 0]
    return torch.ops.vganzoo.conv3d_bias_act(x, w, None, ones, zeros, ones, 1, activation, negative_slope)


@needs_ext
def test_compiled_parser_matches_the_table():
    """The C++ parser lists the names it knows in code order: they are the table's, code for code."""
    with pytest.raises(ValueError, match="activation must be one of") as info:
        _raw_op("gelu")
    listed = re.findall(r"'(\w+)'", str(info.value).split("got")[0])
    assert listed == [row.name for row in sorted(ops.ACTIVATION_TABLE, key=lambda r: r.code)]
    for row in ops.ACTIVATION_TABLE:
        _raw_op(row.name)  # accepted
        if row.uses_slope:
            with pytest.raises(ValueError, match="negative_slope must be >= 0"):
                _raw_op(row.name, -0.1)
        else:
            _raw_op(row.name, -0.1)  # the slope is ignored


@pytest.mark.parametrize("row", ops.ACTIVATION_TABLE, ids=lambda r: r.name)
def test_reference_and_in_place_forms_agree(row):
    x = torch.randn(64, dtype=torch.float64)
    expected = {
        "none": x,
        "relu": F.relu(x),
        "leaky_relu": F.leaky_relu(x, 0.3),
        "tanh": torch.tanh(x),
        "sigmoid": torch.sigmoid(x),
    }[row.name]
    torch.testing.assert_close(ops.apply_activation(x, row.name, 0.3), expected)
    torch.testing.assert_close(ops.apply_activation_(x.clone(), row.name, 0.3), expected)


def test_in_place_leaky_relu_with_slope_zero_is_differentiable():
    x = torch.randn(8, requires_grad=True)
    y = ops.apply_activation_(x * 1.0, "leaky_relu", 0.0)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (x > 0).float())


def test_every_default_slope_is_the_tables():
    functions = [
        ops.conv3d_bias_act,
        ops.conv_transpose3d_bias_act,
        ops.explain,
        ops.apply_activation,
        ops.apply_activation_,
        reference.conv3d_bias_act_ref,
        reference.conv_transpose3d_bias_act_ref,
        vnn.STConv3d.__init__,
        vnn.STConvTranspose3d.__init__,
    ]
    for fn in functions:
        default = inspect.signature(fn).parameters["negative_slope"].default
        assert default == ops.DEFAULT_NEGATIVE_SLOPE, fn.__qualname__


def test_explain_checks_the_slope_as_the_call_does():
    x, w = torch.randn(1, 2, 3, 4, 4), torch.randn(3, 2, 1, 3, 3)
    with pytest.raises(ValueError, match="negative_slope must be >= 0"):
        ops.explain(x, w, None, activation="leaky_relu", negative_slope=-1.0)
    assert ops.explain(x, w, None, activation="relu", negative_slope=-1.0)  # ignored, as by the call
