"""Files every layer writes and checks: atomic writes, hashing, safetensors sniffing.

A file is written to a temporary name beside its final path (``.tmp-<name>.<random><suffix>``),
fsynced, renamed into place, and the folder is fsynced so the rename itself survives a crash; on
any error the temporary file is removed and the final path is left as it was. A process killed
while writing leaves only such a temporary file, which :func:`remove_stale_temp_files` deletes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "TEMP_PREFIX",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "check_safetensors_file",
    "fsync_dir",
    "remove_stale_temp_files",
    "safetensors_bytes",
    "sha256_file",
    "write_synced",
]

TEMP_PREFIX = ".tmp-"
_CHUNK_BYTES = 1 << 22  # written and hashed in chunks of this size
# a safetensors header length above this is not a safetensors file (the format caps it at 100 MB)
_MAX_HEADER_BYTES = 100_000_000
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL_OPCODE = 0x80


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a folder (makes renames in it durable); a no-op where the platform cannot."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_all(handle: Any, data: bytes | memoryview) -> None:
    """Write ``data`` in chunks (a separate function so tests can fail a write half-way)."""
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK_BYTES):
        handle.write(view[start : start + _CHUNK_BYTES])


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and move it onto ``path``.

    The temporary path keeps ``path``'s suffix (writers that pick a format from it still work).
    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    # O_EXCL on a random name (not mkstemp) so the file gets the usual umask-based permissions
    tmp = path.parent / f"{TEMP_PREFIX}{path.name}.{secrets.token_hex(6)}{path.suffix}"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_synced(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it (for files inside a temporary folder)."""
    with open(path, "wb") as handle:
        _write_all(handle, data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (parent folders are created)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        write_synced(tmp, data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """``obj`` as indented JSON (non-JSON values through ``str``), written atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def remove_stale_temp_files(directory: str | os.PathLike[str]) -> int:
    """Delete the temporary files of writes that were killed half-way; returns how many."""
    directory = Path(directory)
    count = 0
    if directory.is_dir():
        for entry in directory.iterdir():
            if entry.name.startswith(TEMP_PREFIX) and entry.is_file():
                entry.unlink(missing_ok=True)
                count += 1
    return count


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Lower-case hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def safetensors_bytes(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> bytes:
    """A safetensors file's bytes, the same for the same tensors and metadata.

    safetensors writes its header's ``__metadata__`` in hash-map order, so saving the same model
    twice could give different bytes (and sha256 pins that a re-export cannot reproduce). The header
    is written again here with sorted keys (readers do not depend on the order), padded with spaces
    to 8 bytes as safetensors does.
    """
    from safetensors.torch import save

    data = save(dict(tensors), metadata=dict(metadata) if metadata is not None else None)
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + size :]


def check_safetensors_file(path: str | os.PathLike[str], *, what: str = "weights") -> None:
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
            f"convert it once with `vganzoo convert i3d|c3d {path} OUT.safetensors`"
        )
    if len(head) < 9:
        raise ValueError(f"{what}: {path} is not a safetensors file (only {len(head)} bytes)")
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > _MAX_HEADER_BYTES or header_len > os.path.getsize(path) - 8 or head[8:9] != b"{":
        raise ValueError(
            f"{what}: {path} is not a safetensors file (bad header); vganzoo reads weights as safetensors "
            "only"
        )
