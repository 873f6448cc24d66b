"""What this machine has and allows: the devices work may run on (:func:`as_device`, the library's
one device check) and the memory a piece of work may use, checked before it is allocated.

Estimates passed here are lower bounds (what the work needs at least), so a refusal means the work
cannot fit, never that it merely might not. ``VGANZOO_MEMORY_LIMIT`` (bytes, or with a K/M/G/T suffix)
caps what vganzoo assumes it may use, below what the machine reports.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ResourceLimitError, short_repr

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEVICE_TYPES",
    "MEMORY_LIMIT_ENV",
    "as_device",
    "available_memory",
    "check_memory",
    "device_choices",
    "format_bytes",
    "parse_bytes",
]

# Devices vganzoo runs on (torch knows more, e.g. hpu or xla, that nothing here has been tried on).
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")

MEMORY_LIMIT_ENV = "VGANZOO_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_CGROUP = Path("/sys/fs/cgroup")


def parse_bytes(text: str) -> int:
    """``"512M"``, ``"2G"``, ``"1.5T"`` or a plain number of bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"{MEMORY_LIMIT_ENV}: expected a size such as 4G or 512M, got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def format_bytes(count: float) -> str:
    """``13.1 GB``: powers of 1000, as people read file and memory sizes."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def available_memory() -> int | None:
    """Bytes this process may still allocate: the system's available memory, a container's (cgroup v2)
    remaining limit and ``VGANZOO_MEMORY_LIMIT``, whichever is least; None when none is known."""
    candidates = [_meminfo_available()]
    limit, current = _read_int(_CGROUP / "memory.max"), _read_int(_CGROUP / "memory.current")
    if limit is not None and current is not None:
        candidates.append(max(0, limit - current))
    configured = os.environ.get(MEMORY_LIMIT_ENV)
    if configured:
        candidates.append(parse_bytes(configured))
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def check_memory(needed: int, what: str, *, advice: str) -> None:
    """Raise :class:`ResourceLimitError` when ``needed`` bytes (a lower bound for ``what``) exceed
    what is available; the message says how much, and ``advice`` what to change."""
    available = available_memory()
    if available is not None and needed > available:
        raise ResourceLimitError(
            f"{what} needs at least {format_bytes(needed)} of memory but {format_bytes(available)} is "
            f"available; {advice}"
        )


def as_device(device: Any, what: str = "device") -> torch.device | None:
    """``device`` as a torch.device this machine has, or a one-line ValueError / TypeError starting
    with ``what`` (no prefix when empty) that says why and what to use instead.

    Takes a name (``"cpu"``, ``"cuda:1"``, ``"mps"``, ``"xpu"``; ``"auto"``: CUDA when available,
    else the CPU), a ``torch.device`` or None (returned as None: the caller's default). ``cpu:0`` is
    ``cpu``; ``meta`` (no data) and device types vganzoo does not run on are refused, and so is an
    index past the last device or an accelerator this PyTorch cannot use (not torch's assertion
    "Torch not compiled with CUDA enabled" at the first tensor moved).
    """
    import torch

    prefix = f"{what}: " if what else ""
    if device is None:
        return None
    if isinstance(device, bool) or not isinstance(device, (str, torch.device, int)):
        raise TypeError(
            f"{prefix}expected a device name such as 'cpu' or 'cuda:0', got {type(device).__name__}"
        )
    if isinstance(device, int):
        raise ValueError(f"{prefix}give a device name such as 'cuda:{device}', not the number {device}")
    if isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shown = short_repr(str(device))
    try:
        parsed = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, ValueError):
        raise ValueError(f"{prefix}{shown} is not a device; use {device_choices()}") from None
    if parsed.type == "meta":
        raise ValueError(
            f"{prefix}'meta' tensors hold no data, so nothing can run there; use {device_choices()}"
        )
    if parsed.type not in DEVICE_TYPES:
        raise ValueError(f"{prefix}{parsed.type!r} devices are not supported; use {device_choices()}")
    if parsed.type == "cpu":
        if parsed.index not in (None, 0):
            raise ValueError(f"{prefix}there is one CPU device, 'cpu' (got {shown})")
        return torch.device("cpu")
    count = _accelerator_count(parsed.type, f"{prefix}{shown}")
    if parsed.index is not None and parsed.index >= count:
        raise ValueError(
            f"{prefix}{shown}, but this machine has {count} {parsed.type} device(s), "
            f"{parsed.type}:0 to {parsed.type}:{count - 1}"
        )
    return parsed


def _accelerator_count(kind: str, named: str) -> int:
    """How many ``kind`` devices this PyTorch can use; ValueError (starting with ``named``) for none."""
    import torch

    if kind == "cuda":
        if not torch.cuda.is_available():
            if torch.version.cuda is None:
                why = f"this PyTorch ({torch.__version__}) is a CPU-only build"
            else:
                why = "no CUDA GPU is visible (see CUDA_VISIBLE_DEVICES and the driver)"
            raise ValueError(f"{named}, but {why}; use {device_choices()}")
        return torch.cuda.device_count()
    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{named}, but MPS (Apple GPUs) is not available here; use {device_choices()}")
        return 1
    xpu = getattr(torch, "xpu", None)
    if xpu is None or not xpu.is_available():
        raise ValueError(f"{named}, but no Intel XPU is available here; use {device_choices()}")
    return xpu.device_count()


def device_choices() -> str:
    """The devices to suggest in messages: what this machine has."""
    import torch

    choices = ["'cpu'"]
    if torch.cuda.is_available():
        choices += ["'cuda'", "'cuda:N'"]
    if torch.backends.mps.is_available():
        choices.append("'mps'")
    if getattr(torch, "xpu", None) is not None and torch.xpu.is_available():
        choices.append("'xpu'")
    return " or ".join([", ".join(choices[:-1]), choices[-1]]) if len(choices) > 1 else choices[0]
