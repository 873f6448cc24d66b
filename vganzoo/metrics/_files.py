"""Small file helpers for the metrics package: atomic writes, hashing, safetensors sniffing."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Any

from .._files import atomic_write_bytes

__all__ = ["atomic_write_bytes", "atomic_write_json", "check_safetensors_file", "sha256_file"]

_HASH_CHUNK = 1 << 20
# a safetensors header length above this is not a safetensors file (the format caps it at 100 MB)
_MAX_HEADER_BYTES = 100_000_000
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL_OPCODE = 0x80


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def sha256_file(path: str | os.PathLike) -> str:
    """Lower-case hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_safetensors_file(path: str | os.PathLike, *, what: str = "weights") -> None:
    """Raise a clear error unless ``path`` is a readable safetensors file.

    A legacy PyTorch checkpoint (zip or pickle) is refused with a pointer to the explicit converter;
    nothing is ever unpickled here.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what}: {path} is a folder; give the .safetensors file inside it")
    with open(path, "rb") as f:
        head = f.read(9)
    if head.startswith(_ZIP_MAGIC) or (head[:1] and head[0] == _PICKLE_PROTOCOL_OPCODE):
        raise ValueError(
            f"{what}: {path} is a legacy PyTorch checkpoint (pickle), which vganzoo never loads directly; "
            f"convert it once with `python -m vganzoo.metrics.convert i3d|c3d {path} OUT.safetensors`"
        )
    if len(head) < 9:
        raise ValueError(f"{what}: {path} is not a safetensors file (only {len(head)} bytes)")
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > _MAX_HEADER_BYTES or header_len > os.path.getsize(path) - 8 or head[8:9] != b"{":
        raise ValueError(
            f"{what}: {path} is not a safetensors file (bad header); vganzoo reads weights as safetensors "
            "only"
        )
