"""Loading of the compiled extension ``vganzoo._C`` (never compiles anything).

If the extension is missing (pure-Python install, or a build without a compiler), ops fall back to
the plain-PyTorch reference and a single warning says so on first use.
"""

from __future__ import annotations

import warnings

import torch

OPS = ("conv3d_bias_act", "conv_transpose3d_bias_act", "explain")


def _load() -> str | None:
    try:
        from .. import _C  # noqa: F401  (importing registers torch.ops.vganzoo.*)
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    if not hasattr(torch.ops.vganzoo, "conv3d_bias_act"):
        return "vganzoo._C imported but registered no operators"
    return None


# Resolved once at import (loading a shared object compiles nothing) so that torch.compile sees
# plain constants rather than tracing the lookups.
LOAD_ERROR: str | None = _load()
KERNELS: dict[str, bool] = {
    dev: LOAD_ERROR is None
    and torch._C._dispatch_has_kernel_for_dispatch_key("vganzoo::conv3d_bias_act", key)
    for dev, key in (("cpu", "CPU"), ("cuda", "CUDA"))
}


def load_error() -> str | None:
    """None if ``vganzoo._C`` loaded (its operators registered), else the reason it did not."""
    return LOAD_ERROR


def available() -> bool:
    """True if the compiled operators are registered."""
    return LOAD_ERROR is None


def has_kernel(device_type: str) -> bool:
    """True if the extension has a kernel for `device_type` ("cpu", "cuda")."""
    return KERNELS.get(device_type, False)


_warned: set[str] = set()


def warn_fallback_once(device_type: str) -> None:
    """Warn (once per device type) that the reference implementation is used instead of the extension."""
    if device_type in _warned:
        return
    _warned.add(device_type)
    reason = load_error() or f"the extension was built without {device_type} support"
    warnings.warn(
        f"vganzoo: fused ops for {device_type} are not available ({reason}); using the plain-PyTorch "
        "reference implementation",
        RuntimeWarning,
        stacklevel=4,
    )
