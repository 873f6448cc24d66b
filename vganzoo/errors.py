"""Exception types shared by every layer of vganzoo.

Each error says what was wrong and, where there is one, what to do next. They subclass the
built-in exception a caller would naturally catch (``LookupError`` for names, ``ValueError`` for
bad arguments), so generic handlers keep working.
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = [
    "AmbiguousNameError",
    "InvalidConfigError",
    "PluginError",
    "ResourceLimitError",
    "UnknownComponentError",
    "UnknownModelError",
    "VganzooError",
    "short_repr",
]


class VganzooError(Exception):
    """Base class of every error raised by vganzoo on purpose."""


class UnknownModelError(VganzooError, LookupError):
    """A model name (or ``arch.tag``) that no built-in or plugin registers."""

    def __str__(self) -> str:  # LookupError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class UnknownComponentError(UnknownModelError):
    """A generator / discriminator / loss name that is not registered."""


class AmbiguousNameError(VganzooError, LookupError):
    """Two plugins register the same name; use ``dist::name`` to choose one."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidConfigError(VganzooError, ValueError):
    """A configuration override that the model does not accept, or a bad value for one."""


class PluginError(VganzooError, ImportError):
    """A third-party plugin failed to import or to register what its entry point promised."""


class ResourceLimitError(VganzooError, ValueError):
    """Work that would need more memory than this machine has (or far more than its input justifies);
    refused before anything is allocated."""


SHORT_REPR_CHARS = 40  # how much of an untrusted value an error message shows


class _ShortRepr(reprlib.Repr):
    """reprlib with bytes cut before they are shown (reprlib would repr them whole first)."""

    def repr_bytes(self, value: bytes, level: int) -> str:
        text = repr(value[: self.maxstring])
        return text if len(value) <= self.maxstring else text + "..."

    repr_bytearray = repr_bytes


_SHORT = _ShortRepr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, SHORT_REPR_CHARS, SHORT_REPR_CHARS


def short_repr(value: Any) -> str:
    """At most about 40 characters of ``repr(value)`` for messages about untrusted values: never the
    whole of a huge or deeply nested value (which could take gigabytes, or overflow the stack)."""
    try:
        text = _SHORT.repr(value)
    except Exception:  # a value whose repr fails still gets a message
        text = f"<{type(value).__name__}>"
    return text if len(text) <= SHORT_REPR_CHARS else text[:SHORT_REPR_CHARS] + "..."
