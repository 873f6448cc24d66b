"""Exception types shared by every layer of vganzoo.

Each error says what was wrong and, where there is one, what to do next. They subclass the
built-in exception a caller would naturally catch (``LookupError`` for names, ``ValueError`` for
bad arguments), so generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousNameError",
    "InvalidConfigError",
    "PluginError",
    "ResourceLimitError",
    "UnknownComponentError",
    "UnknownModelError",
    "VganzooError",
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
