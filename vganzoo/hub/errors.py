"""The errors (and the one warning) of resolving, fetching and loading weight sets."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import UnknownModelError, VganzooError

__all__ = [
    "HashMismatchError",
    "NoPretrainedWeightsError",
    "NothingFitsError",
    "StateDictMismatchError",
    "UnpinnedWeightsWarning",
    "WeightsError",
    "WeightsNotFoundError",
    "short_list",
]

LIST_LIMIT = 10  # how many keys an error message lists per kind


class WeightsError(VganzooError):
    """Base class of the errors raised while resolving, fetching or loading weights."""


class HashMismatchError(WeightsError, ValueError):
    """A file's sha256 differs from the one its spec pins."""

    def __init__(self, filename: str, expected: str, actual: str, source: str, note: str = "") -> None:
        self.filename, self.expected, self.actual, self.source = filename, expected, actual, source
        message = f"{filename}: sha256 mismatch (expected {expected}, got {actual}) in {source}"
        super().__init__(message + (f"; {note}" if note else ""))


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """A weight file, revision or repo that does not exist or is not in the cache while offline."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NothingFitsError(WeightsError, ValueError):
    """A non-strict load where none of a file's tensors fit the module (another model or config)."""


class StateDictMismatchError(WeightsError, ValueError):
    """A safetensors file whose keys or shapes do not match the module it is loaded into."""

    def __init__(
        self, what: str, missing: Sequence[str], unexpected: Sequence[str], mismatched: Sequence[str]
    ) -> None:
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), list(mismatched)
        parts = [
            f"{label} ({len(keys)}): {short_list(keys)}"
            for label, keys in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", mismatched),
            )
            if keys
        ]
        super().__init__(
            f"{what} does not match the model: " + "; ".join(parts) + " (strict=False loads what matches)"
        )


class NoPretrainedWeightsError(WeightsError, UnknownModelError):
    """A model name without pretrained weights, or an unknown tag."""


class UnpinnedWeightsWarning(UserWarning):
    """Weights whose hashes come from the repo itself (``hf-hub:``), not from a pinned spec."""


def short_list(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:LIST_LIMIT])
    return shown + (f", ... ({len(keys) - LIST_LIMIT} more)" if len(keys) > LIST_LIMIT else "")
