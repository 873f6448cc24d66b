"""Files every layer writes and checks: atomic writes, hashing, safetensors sniffing.

A file is written to a temporary name beside its final path (``.tmp-<name>.<random><suffix>``),
fsynced, renamed into place, and the folder is fsynced so the rename itself survives a crash; on
any error the temporary file is removed and the final path is left as it was (an error names the
final path, not the temporary one). Folders are written the same way (``.tmp-<name>.<random>``, see
:func:`temp_folder`). A process killed while writing leaves only such temporaries, which
:func:`remove_stale_temp_files` deletes.

Permissions: every file and folder vganzoo writes (checkpoints, weight sets, videos, logs) gets those
of an ordinary new file, 0666 / 0777 less the process's umask (:func:`default_mode`): 0644 / 0755
under the usual umask 022, private under 077.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
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
    "default_mode",
    "describe_file",
    "fsync_dir",
    "json_or_text",
    "loads_json",
    "read_json_file",
    "remove_stale_temp_files",
    "safetensors_bytes",
    "safetensors_errors",
    "sha256_file",
    "temp_folder",
    "write_synced",
]

TEMP_PREFIX = ".tmp-"
_CHUNK_BYTES = 1 << 22  # written and hashed in chunks of this size
# a safetensors header length above this is not a safetensors file (the format caps it at 100 MB)
_MAX_HEADER_BYTES = 100_000_000
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL_OPCODE = 0x80
# torch.save's legacy (pre-1.6) format starts with this number, pickled at protocol 2
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_SNIFF_BYTES = 64
# JSON from files and arguments someone else wrote (weights.json, config.json, checkpoint metadata,
# --set values...): far larger or deeper than any vganzoo writes is refused, never a RecursionError.
MAX_JSON_BYTES = 64 * 2**20
MAX_JSON_DEPTH = 64


def _json_depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (without recursing)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def loads_json(
    text: str | bytes,
    what: str,
    *,
    error: type[Exception] = ValueError,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse untrusted JSON ``text``; anything wrong (not JSON, larger than ``max_bytes``, nested more
    than ``max_depth`` deep) raises ``error`` with one line that starts with ``what``."""
    if len(text) > max_bytes:
        raise error(f"{what}: {len(text):,} bytes of JSON, more than the {max_bytes:,} vganzoo reads")
    try:
        value = json.loads(text)
    except RecursionError:
        raise error(f"{what}: JSON nested more than {max_depth} deep") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise error(f"{what}: not valid JSON ({str(exc)[:200]})") from None
    if _json_depth(value) > max_depth:
        raise error(f"{what}: JSON nested more than {max_depth} deep")
    return value


def json_or_text(raw: str, what: str) -> Any:
    """A command-line value: JSON when it parses (``1e-4``, ``[1, 2]``, ``true``), else the text
    itself; JSON too large or too deeply nested is a ValueError naming ``what`` (``--set lr``)."""
    try:
        return loads_json(raw, what)
    except ValueError as exc:
        if "not valid JSON" in str(exc):
            return raw
        raise


def read_json_file(
    path: str | os.PathLike[str],
    what: str | None = None,
    *,
    error: type[Exception] = ValueError,
    **limits: Any,
) -> Any:
    """:func:`loads_json` of a file's text; a file larger than the limit is refused before reading.
    ``what`` defaults to the path. OSError (missing, unreadable) propagates."""
    what = what or str(path)
    max_bytes = limits.get("max_bytes", MAX_JSON_BYTES)
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    return loads_json(data, what, error=error, **limits)


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
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if exc.errno is not None and exc.filename in (None, str(tmp)):  # name the file the user knows
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def _umask() -> int:
    """The process's umask (read from /proc where it can be, without changing it)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode(*, folder: bool = False) -> int:
    """The permissions of an ordinary new file (0666) or folder (0777) under this process's umask."""
    return (0o777 if folder else 0o666) & ~_umask()


def temp_folder(target: str | os.PathLike[str]) -> Path:
    """A new empty folder beside ``target`` to write its contents into before renaming it into place
    (``.tmp-<name>.<random>``, what :func:`remove_stale_temp_files` recognises), with the mode of an
    ordinary new folder."""
    target = Path(target)
    folder = target.parent / f"{TEMP_PREFIX}{target.name}.{secrets.token_hex(6)}"
    folder.mkdir(mode=0o700)
    os.chmod(folder, default_mode(folder=True))
    return folder


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


# what earlier versions named the temporary folders of weight sets: ``.<name>.tmp-*`` / ``.<name>.old-*``
_OLD_TEMP_FOLDER = re.compile(r"^\..+\.(tmp|old)-[A-Za-z0-9_]+$")


def remove_stale_temp_files(directory: str | os.PathLike[str]) -> int:
    """Delete the temporary files and folders of writes that were killed half-way in ``directory``
    (not below it); returns how many. Only for folders one process writes at a time (a run folder):
    a write in progress elsewhere would lose its temporary."""
    directory = Path(directory)
    count = 0
    if directory.is_dir():
        for entry in directory.iterdir():
            if entry.is_symlink():
                continue
            if entry.name.startswith(TEMP_PREFIX) and entry.is_file():
                entry.unlink(missing_ok=True)
            elif entry.is_dir() and (
                entry.name.startswith(TEMP_PREFIX) or _OLD_TEMP_FOLDER.match(entry.name)
            ):
                shutil.rmtree(entry, ignore_errors=True)
            else:
                continue
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
    to 8 bytes as safetensors does. Every safetensors file vganzoo writes goes through here.
    ``tensors`` may hold torch tensors or numpy arrays.
    """
    import numpy as np
    import torch
    from safetensors.torch import save

    tensors = {
        k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
        for k, v in tensors.items()
    }
    data = save(tensors, metadata=dict(metadata) if metadata is not None else None)
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + size :]


@contextlib.contextmanager
def safetensors_errors(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Inside: reading safetensors file ``path``; its format errors (overlapping offsets, a header
    that does not parse) become one ValueError naming ``what`` and the file."""
    from safetensors import SafetensorError

    try:
        yield
    except SafetensorError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{what}: {os.fspath(path)} is damaged ({first[:200]})") from None


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


def describe_file(path: str | os.PathLike[str]) -> str:
    """What a file is, from its first bytes, for messages about files that could not be read:
    ``"a zip-format PyTorch checkpoint"``, ``"a pickle (protocol 2) that is not a PyTorch checkpoint"``,
    ``"a text file"``, ``"an empty file"``..."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if not head:
        return "an empty file"
    if head.startswith(_ZIP_MAGIC):
        return _describe_zip(path)
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return f"a legacy PyTorch checkpoint (torch.save before 1.6, {size:,} bytes)"
    if head[0] == _PICKLE_PROTOCOL_OPCODE and len(head) > 1:
        return f"a pickle (protocol {head[1]}, {size:,} bytes) that is not a PyTorch checkpoint"
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] <= size - 8:
        return f"a safetensors file ({size:,} bytes)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"binary data of {size:,} bytes starting {head[:8].hex(' ')}"
    if text.isprintable() or all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"a text file ({size:,} bytes, starting {text[:24]!r})"
    return f"binary data of {size:,} bytes starting {head[:8].hex(' ')}"


def _describe_zip(path: str | os.PathLike[str]) -> str:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "a damaged zip archive"
    if any(name.endswith("data.pkl") for name in names):
        return "a zip-format PyTorch checkpoint (torch.save since 1.6)"
    if names and all(name.endswith(".npy") for name in names):
        return "a NumPy .npz archive"
    return f"a zip archive of {len(names)} file(s)"
