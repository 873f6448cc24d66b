"""Loading of the compiled extension ``vganzoo._C`` (never compiles anything).

If the extension is missing (pure-Python install, or a build without a compiler), ops fall back to
the plain-PyTorch reference and a single warning says so on first use.
"""

from __future__ import annotations

import functools
import warnings

import torch

OPS = ("conv3d_bias_act", "conv_transpose3d_bias_act", "explain")


@functools.lru_cache(maxsize=None)
def load_error() -> str | None:
    """None if ``vganzoo._C`` loaded (its operators registered), else the reason it did not."""
    try:
        from .. import _C  # noqa: F401  (importing registers torch.ops.vganzoo.*)
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    if not hasattr(torch.ops.vganzoo, "conv3d_bias_act"):
        return "vganzoo._C imported but registered no operators"
    return None


def available() -> bool:
    """True if the compiled operators are registered."""
    return load_error() is None


@functools.lru_cache(maxsize=None)
def has_kernel(device_type: str) -> bool:
    """True if the extension has a kernel for `device_type` ("cpu", "cuda")."""
    if not available():
        return False
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(device_type)
    if key is None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key("vganzoo::conv3d_bias_act", key)


_warned: set[str] = set()


def warn_fallback_once(device_type: str) -> None:
    """Warn (once per device type) that the reference implementation is used instead of the extension."""
    if device_type in _warned:
        return
    _warned.add(device_type)
    reason = load_error() or f"the extension was built without {device_type} support"
    warnings.warn(f"vganzoo: fused ops for {device_type} are not available ({reason}); using the plain-PyTorch "
                  "reference implementation", RuntimeWarning, stacklevel=3)
