"""Cached real-data features for the pinned protocols, keyed so a stale cache is never reused.

A cache file (safetensors) holds the real clips' detector outputs, one float32 ``(N, D)`` tensor per
draw seed (``features.<seed>``), and in its metadata the identity they were made under: the protocol
(name and definition digest), the detector's sha256, the data root, the split, the listing's
fingerprint (every file's name, size and modification time), the number of clips and, where the
protocol resizes real clips first, the resolution. The automatic cache
(``$VGANZOO_CACHE/real-features`` or ``~/.cache/vganzoo/real-features``) names files by the digest of
that identity, so other data or another detector simply gets another file. A file named by the user
(``real_cache=PATH``) must match: one that does not is an error naming what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..files import (
    atomic_write_bytes,
    check_safetensors_file,
    loads_json,
    safetensors_bytes,
    safetensors_errors,
)

__all__ = ["CACHE_FORMAT", "RealCache", "default_cache_dir"]

CACHE_FORMAT = "vganzoo-real-features/1"
CACHE_ENV = "VGANZOO_CACHE"
FEATURES_PREFIX = "features."
OFF = ("off", "none", "false", "no")


def default_cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "vganzoo")
    return Path(base) / "real-features"


class RealCache:
    """Read and write the real features of one (protocol, detector, data, split, count) identity.

    Args:
        setting: None (the automatic cache), ``"off"`` (no cache), or a ``.safetensors`` path (a named
            cache: read when it exists and matches, an error when it does not match, written otherwise).
        identity: the JSON-able components the features depend on (besides the draw seed).
    """

    def __init__(self, setting: Any, identity: dict[str, Any]) -> None:
        self.identity = identity
        self.key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        self.named = False
        if setting is False or (isinstance(setting, str) and setting.lower() in OFF):
            self.path: Path | None = None
        elif setting is None or setting is True:
            self.path = default_cache_dir() / f"{identity['protocol']}-{self.key[:24]}.safetensors"
        elif isinstance(setting, (str, os.PathLike)):
            self.path, self.named = Path(setting), True
            if not str(self.path).endswith(".safetensors"):
                raise ValueError(
                    f"real_cache: expected a .safetensors file, 'off' or None, got {str(setting)!r}"
                )
        else:
            raise TypeError(
                f"real_cache: expected a .safetensors path, 'off' or None, got {type(setting).__name__}"
            )
        self.features: dict[int, np.ndarray] = {}
        self.hits: list[int] = []

    def load(self) -> dict[int, np.ndarray]:
        """Features by seed from the file (empty when there is none); raises for a named file that does
        not match this identity."""
        if self.path is None or not self.path.exists():
            return {}
        from safetensors import safe_open
        from safetensors.numpy import load_file

        check_safetensors_file(self.path, what="real features cache")
        with (
            safetensors_errors(self.path, "real features cache"),
            safe_open(str(self.path), framework="numpy") as f,
        ):
            metadata = f.metadata() or {}
        stored = (
            loads_json(metadata.get("identity", "{}"), f"{self.path}: identity")
            if metadata.get("format") == CACHE_FORMAT
            else None
        )
        if stored != self.identity:
            if not self.named:
                return {}  # a digest collision or a foreign file under our name: recompute, overwrite
            raise ValueError(
                f"real cache {self.path} was made {self._difference(stored)}; delete it or name another"
            )
        with safetensors_errors(self.path, "real features cache"):
            tensors = load_file(str(self.path))
        self.features = {
            int(k[len(FEATURES_PREFIX) :]): v.astype(np.float32)
            for k, v in tensors.items()
            if k.startswith(FEATURES_PREFIX)
        }
        return dict(self.features)

    def get(self, seed: int) -> np.ndarray | None:
        """The cached features of draw ``seed`` (recorded as reused), or None."""
        found = self.features.get(int(seed))
        if found is not None:
            self.hits.append(int(seed))
        return found

    def _difference(self, stored: dict[str, Any] | None) -> str:
        if stored is None:
            return "by something else (not a vganzoo real-features cache)"
        labels = {"fingerprint": "from other data files (names, sizes or modification times differ)"}
        diffs = [
            labels.get(k, f"with another {k} ({stored.get(k)!r}, now {self.identity.get(k)!r})")
            for k in sorted(set(stored) | set(self.identity))
            if stored.get(k) != self.identity.get(k)
        ]
        return "; ".join(diffs[:3])

    def store(self, seed: int, features: np.ndarray) -> None:
        """Add one draw's features and rewrite the file (atomically)."""
        self.features[int(seed)] = np.ascontiguousarray(features, dtype=np.float32)
        if self.path is None:
            return
        tensors = {f"{FEATURES_PREFIX}{s}": f for s, f in sorted(self.features.items())}
        metadata = {"format": CACHE_FORMAT, "identity": json.dumps(self.identity, sort_keys=True)}
        atomic_write_bytes(self.path, safetensors_bytes(tensors, metadata))

    def describe(self) -> dict[str, Any]:
        return {
            "path": None if self.path is None else str(self.path),
            "named": self.named,
            "key": self.key,
            "reused_seeds": sorted(set(self.hits)),
        }
