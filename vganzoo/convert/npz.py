"""Read untrusted NumPy ``.npz`` archives (Chainer snapshots) with a bound on what they may allocate.

``numpy.load`` trusts each member's ``.npy`` header: a few kilobytes of deflated zeros can declare
(and decompress into) gigabytes. Here every member's name and header (dtype, shape) are read first,
without decompressing its data; the archive is refused when the arrays it declares add up to more
than ``max_bytes`` (what the converter expects for its network, with room to spare), or when a member
is not a plain ``.npy`` array. Only then is each array's data read, exactly the bytes its header
declares.
"""

from __future__ import annotations

import math
import os
import zipfile
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from ..errors import short_repr

__all__ = ["read_npz"]

_NPY_SUFFIX = ".npy"
_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}


def _format_bytes(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def read_npz(path: str | os.PathLike[str], what: str, *, max_bytes: int) -> dict[str, np.ndarray]:
    """``{key: array}`` of the ``.npz`` at ``path`` (``what`` names it in errors), refusing archives
    whose arrays would take more than ``max_bytes`` before any is decompressed."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path!r}")
    try:
        with zipfile.ZipFile(path) as archive:
            members = _headers(archive, path, what, max_bytes)
            return {key: _read_data(archive, path, key, *member) for key, member in members.items()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, KeyError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(repr(path)):
            raise
        detail = short_repr(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise ValueError(f"{path!r}: not a numpy .npz of plain arrays ({detail})") from None


def _headers(
    archive: zipfile.ZipFile, path: str, what: str, max_bytes: int
) -> dict[str, tuple[zipfile.ZipInfo, np.dtype, tuple[int, ...], bool]]:
    members: dict[str, tuple[zipfile.ZipInfo, np.dtype, tuple[int, ...], bool]] = {}
    total = 0
    for info in archive.infolist():
        if info.is_dir() or not info.filename.endswith(_NPY_SUFFIX):
            raise ValueError(f"{path!r}: member {short_repr(info.filename)} is not a .npy array")
        key = info.filename[: -len(_NPY_SUFFIX)]
        if key in members:
            raise ValueError(f"{path!r}: member {short_repr(info.filename)} appears twice")
        with archive.open(info) as member:
            version = npy_format.read_magic(member)
            reader = _HEADER_READERS.get(version)
            if reader is None:
                raise ValueError(f"{path!r}: {short_repr(key)} has .npy format version {version}")
            shape, fortran_order, dtype = reader(member, max_header_size=10_000)
        if dtype.hasobject or dtype.kind not in "biuf":
            raise ValueError(
                f"{path!r}: not a numpy .npz of plain arrays ({short_repr(key)} holds {dtype} values)"
            )
        total += math.prod(shape) * dtype.itemsize
        if total > max_bytes:
            raise ValueError(
                f"{path!r}: its arrays declare more than {_format_bytes(max_bytes)} (the most {what} "
                "needs); refused before decompressing"
            )
        members[key] = (info, dtype, tuple(shape), bool(fortran_order))
    return members


def _read_data(
    archive: zipfile.ZipFile,
    path: str,
    key: str,
    info: zipfile.ZipInfo,
    dtype: Any,
    shape: Any,
    fortran: bool,
) -> np.ndarray:
    nbytes = math.prod(shape) * dtype.itemsize
    with archive.open(info) as member:
        version = npy_format.read_magic(member)
        _HEADER_READERS[version](member, max_header_size=10_000)
        data = member.read(nbytes)
    if len(data) != nbytes:
        raise ValueError(f"{path!r}: {short_repr(key)} ends early (truncated file)")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return array.copy()  # writable, owned
