"""What this machine allows: the memory a piece of work may use, checked before it is allocated.

Estimates passed here are lower bounds (what the work needs at least), so a refusal means the work
cannot fit, never that it merely might not. ``VGANZOO_MEMORY_LIMIT`` (bytes, or with a K/M/G/T suffix)
caps what vganzoo assumes it may use, below what the machine reports.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ResourceLimitError

__all__ = ["MEMORY_LIMIT_ENV", "available_memory", "check_memory", "format_bytes", "parse_bytes"]

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
