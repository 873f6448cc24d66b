"""Read the network pickles of stylegan2-ada-pytorch's persistence format safely: nothing from the file runs.

The format (``torch_utils/persistence.py`` of stylegan2-ada-pytorch, as in universome/stylegan-v,
and the training loop's ``pickle.dump(snapshot_data)``):

* the file is one plain pickle of a dict: ``G``, ``D``, ``G_ema`` (the networks, copied to the CPU),
  and in training snapshots also ``augment_pipe``, ``G_opt`` / ``D_opt`` (Adam optimisers whose
  state tensors were never moved off the GPU), ``vis``, ``stats`` and ``training_set_kwargs``;
* every network class is "persistent": its instances pickle as a call of
  ``torch_utils.persistence._reconstruct_persistent_obj(meta)``, ``meta = {"type": "class",
  "version": 6, "module_src": <the source text of the class's module>, "class_name": ...,
  "state": <the module's __dict__>}``. Loading it the authors' way executes ``module_src``;
* modules that are not persistent (``nn.Embedding``, ``nn.Sequential``, the discriminator's
  ``TemporalDifferenceEncoder``, the OmegaConf configs in ``cfg``) pickle by class reference;
* tensors pickle as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` (and
  parameters through ``_rebuild_parameter``), each storage as
  ``torch.storage._load_from_bytes(<a torch.save of the storage in the legacy format>)``, which
  names the device it was on (``"cuda:0"`` for the optimiser states).

This reader (:func:`read_snapshot`) executes nothing from the file. Its unpickler resolves only
torch's tensor and storage rebuild functions (re-implemented here: storages are read from their bytes
on the CPU whatever device they name), plain containers, and inert stand-ins for the network,
optimiser, config and NumPy classes that record their state; a persistent object becomes a record of
its class name and state (its ``module_src`` is kept as text, never run). Any other global
(``os.system``, ``builtins.eval``, ...) is refused with :class:`UnsafeCheckpointError`.

Then :func:`flatten_network` turns a network record into its named tensors and each module's plain
attributes, and :func:`plain` / :func:`lookup` read the config containers recorded with it.
The converters that map these records onto a family's modules (:mod:`vganzoo.convert.stylegan_v`)
build on this reader.
"""

from __future__ import annotations

import builtins
import collections
import contextvars
import io
import math
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import VganzooError, short_repr
from .mocogan import UnsafeCheckpointError

__all__ = [
    "PersistentObject",
    "SnapshotError",
    "StandIn",
    "UnsafeCheckpointError",
    "flatten_network",
    "lookup",
    "plain",
    "read_snapshot",
]

PERSISTENCE_MODULES = ("torch_utils.persistence", "src.torch_utils.persistence")
PERSISTENCE_VERSION = 6
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization's legacy-format magic number
LEGACY_PROTOCOL = 1001
# Classes whose instances may appear in a snapshot: recorded by inert stand-ins, never imported.
STAND_IN_MODULES = (
    "training.",
    "src.training.",
    "torch_utils.",
    "src.torch_utils.",
    "dnnlib",
    "src.dnnlib",
    "torch.nn.modules.",
    "torch.nn.parameter",
    "torch.optim.",
    "omegaconf",
    "numpy",
    "typing",
)
# Builtins a pickle may call or name: constructors of plain values and containers only, called
# through :func:`_bounded_call` (no ``bytes(10**9)``, no copies beyond the file's size).
SAFE_BUILTINS = {
    name: getattr(builtins, name)
    for name in [
        "set",
        "frozenset",
        "list",
        "dict",
        "tuple",
        "bytearray",
        "bytes",
        "int",
        "float",
        "complex",
        "bool",
        "str",
        "object",
    ]
}
STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}


# What a file of N bytes may make while it is read: storages, tensor copies and containers built by
# constructor calls, in bytes. A real snapshot needs about N (each storage once, each tensor a copy of
# its own storage); a pickle that reuses one blob or container many times through its memo is refused.
BUDGET_FILE_MULTIPLE = 4
BUDGET_SLACK_BYTES = 1 << 20
MAX_NETWORK_DEPTH = 64  # nested submodules; the authors' networks are under 10 deep
_POINTER_BYTES = 8


class SnapshotError(VganzooError, ValueError):
    """The file is not a StyleGAN-V checkpoint this converter can read (the message says why)."""


class _Budget:
    """Bytes that reading one file may still allocate (see ``BUDGET_FILE_MULTIPLE``)."""

    def __init__(self, file_bytes: int) -> None:
        self.file_bytes = file_bytes
        self.left = BUDGET_FILE_MULTIPLE * file_bytes + BUDGET_SLACK_BYTES

    def charge(self, nbytes: int, what: str) -> None:
        if nbytes > self.left:
            raise SnapshotError(
                f"{what} would take {nbytes:,} bytes, more than a file of {self.file_bytes:,} bytes can "
                "hold (a crafted pickle, refused before allocating)"
            )
        self.left -= nbytes


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("snapshot_budget", default=None)


def _charge(nbytes: int, what: str) -> None:
    budget = _BUDGET.get()
    if budget is None:  # called outside read_snapshot: nothing to bound against
        return
    budget.charge(nbytes, what)


_CONSTRUCTOR_ARGS = (str, bytes, bytearray, list, tuple, dict, set, frozenset, int, float, complex, bool)


def _bounded_call(name: str) -> Callable[..., Any]:
    """The builtin ``name`` for a pickle to call: only with plain values, never ``bytes(n)`` /
    ``bytearray(n)`` (n zero bytes), and charged for the container it builds."""
    constructor = SAFE_BUILTINS[name]

    def call(*args: Any) -> Any:
        for arg in args:
            if arg is not None and not isinstance(arg, _CONSTRUCTOR_ARGS):
                raise SnapshotError(f"the pickle calls {name}() on a {type(arg).__name__}")
        if name in ("bytes", "bytearray") and args and isinstance(args[0], int):
            raise SnapshotError(f"the pickle calls {name}({short_repr(args[0])}); a checkpoint never does")
        size = len(args[0]) if args and hasattr(args[0], "__len__") else 0
        unit = 1 if args and isinstance(args[0], (str, bytes, bytearray)) else _POINTER_BYTES
        _charge(size * unit, f"{name}() of {size:,} items")
        return constructor(*args)

    call.__name__ = name
    return call


# ------------------------------------------------------------------------------------------------
# inert records of what the pickle describes
# ------------------------------------------------------------------------------------------------
class StandIn:
    """An object of a class named in the file (``module`` / ``name``), rebuilt as a record: the
    arguments it was created with, its state, and its dict or list items. Nothing of the class runs."""

    module = ""
    name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> StandIn:
        obj = super().__new__(cls)  # pickle's NEWOBJ calls __new__ only
        obj.args, obj.kwargs, obj.state, obj.dict_items, obj.list_items = args, kwargs, None, {}, []
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.dict_items[key] = value

    def append(self, value: Any) -> None:
        self.list_items.append(value)

    def extend(self, values: Any) -> None:
        self.list_items.extend(values)

    def __repr__(self) -> str:
        return f"<stand-in {self.module}.{self.name}>"


class PersistentObject:
    """A persistent network object of the authors' code: its class name and ``__dict__``; the
    source text of its module is kept (``module_src``) but never run."""

    def __init__(self, class_name: str, module_src: str, state: dict[str, Any]) -> None:
        self.class_name, self.module_src, self.state = class_name, module_src, state

    def __repr__(self) -> str:
        return f"<persistent {self.class_name}>"


class _Storage:
    """A storage read from its legacy-format bytes: a flat CPU tensor."""

    def __init__(self, data: torch.Tensor, location: str) -> None:
        self.data, self.location = data, location


class _StorageRef:
    """A storage named by a legacy-format pickle before its bytes are read."""

    def __init__(self, key: str, dtype: torch.dtype, location: str, numel: int, view: Any) -> None:
        self.key, self.dtype, self.location, self.numel, self.view = key, dtype, location, numel, view


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise SnapshotError("a persistent object's metadata is not {'type': 'class', ...}")
    class_name, module_src, state = meta.get("class_name"), meta.get("module_src"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(module_src, str) or not isinstance(state, dict):
        raise SnapshotError("a persistent object lacks its class name, module source or state dict")
    if meta.get("version") != PERSISTENCE_VERSION:
        raise SnapshotError(
            f"persistence version {meta.get('version')!r} of {class_name}; this converter reads "
            f"version {PERSISTENCE_VERSION} (stylegan2-ada-pytorch / stylegan-v)"
        )
    return PersistentObject(class_name, module_src, state)


def _tensor_from_storage(
    storage: Any, offset: Any, size: Any, stride: Any, dtype: torch.dtype | None = None
) -> torch.Tensor:
    if not isinstance(storage, _Storage):
        raise SnapshotError("a tensor is rebuilt from something that is not a storage")
    size, stride = tuple(size), tuple(stride)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (offset, *size, *stride)):
        raise SnapshotError("a tensor's offset, size or stride is not made of ints")
    data = storage.data if dtype is None or dtype == storage.data.dtype else storage.data.view(dtype)
    if len(size) != len(stride) or offset < 0 or min(size + stride, default=0) < 0:
        raise SnapshotError(
            f"a tensor has an invalid layout: size {short_repr(size)}, stride {short_repr(stride)}, "
            f"offset {offset}"
        )
    numel = math.prod(size)
    if numel and any(s > 1 and st == 0 for s, st in zip(size, stride)):
        # a stride of 0 repeats one element: a tiny storage would expand into a huge copy
        raise SnapshotError(f"a tensor of size {short_repr(size)} has a zero stride {short_repr(stride)}")
    if numel > data.numel():  # overlapping strides: more elements than the storage holds
        raise SnapshotError(
            f"a tensor of size {short_repr(size)} has more elements than its storage of {data.numel()}"
        )
    if numel and offset + sum((s - 1) * st for s, st in zip(size, stride)) >= data.numel():
        raise SnapshotError(
            f"a tensor of size {short_repr(size)} reaches past its storage of {data.numel()} elements"
        )
    _charge(numel * data.element_size(), f"a tensor of size {short_repr(size)}")
    return torch.as_strided(data, size, stride, offset).clone()


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> torch.Tensor:
    return _tensor_from_storage(storage, offset, size, stride)


def _rebuild_tensor_v3(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any, dtype: Any, *_: Any
) -> torch.Tensor:
    if not isinstance(dtype, torch.dtype):
        raise SnapshotError("a tensor names no dtype")
    return _tensor_from_storage(storage, offset, size, stride, dtype)


def _rebuild_parameter(data: Any, *_: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise SnapshotError("a parameter holds no tensor")
    return data


_TENSOR_REBUILDERS: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> torch.Tensor:
    """A tensor subclass: rebuilt as a plain tensor, through one of the allowed rebuild functions."""
    if func not in _TENSOR_REBUILDERS.values() or not isinstance(args, tuple):
        raise SnapshotError("a tensor subclass is rebuilt by something other than a tensor rebuild function")
    return func(*args)


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """copyreg._reconstructor for stand-ins only."""
    if isinstance(cls, type) and issubclass(cls, StandIn):
        return cls()
    raise SnapshotError(f"copyreg._reconstructor called on {short_repr(cls)}")


def _encode(text: Any, encoding: str = "latin1") -> bytes:
    """_codecs.encode as protocol-2 pickles use it for bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise SnapshotError("_codecs.encode is used for something other than latin1 bytes")
    return text.encode("latin1")


def _device(*args: Any) -> str:
    return ":".join(str(a) for a in args)


class _Unpickler(pickle.Unpickler):
    """Resolves the allow-list above; ``inner`` is for the storages' legacy-format pickles."""

    def __init__(self, file: Any, *, source: str, inner: bool = False) -> None:
        super().__init__(file)
        self.source, self.inner = source, inner
        self.stand_ins: dict[tuple[str, str], type[StandIn]] = {}
        self.refs: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        if self.inner and module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        if (module, name) in _TENSOR_REBUILDERS:
            return _TENSOR_REBUILDERS[(module, name)]
        if module in PERSISTENCE_MODULES and name == "_reconstruct_persistent_obj":
            return _reconstruct_persistent_obj
        if (module, name) in _FIXED_GLOBALS:
            return _FIXED_GLOBALS[(module, name)]
        if module in ("builtins", "__builtin__") and SAFE_BUILTINS.get(name) is not None:
            return _bounded_call(name)
        if module == "torch" and isinstance(vars(torch).get(name), torch.dtype):  # no lazy imports
            return vars(torch)[name]
        if not self.inner and module.startswith(STAND_IN_MODULES):
            key = (module, name)
            if key not in self.stand_ins:
                self.stand_ins[key] = type(name, (StandIn,), {"module": module, "name": name})
            return self.stand_ins[key]
        raise UnsafeCheckpointError(
            f"{self.source}: refused to unpickle {module}.{name}: a StyleGAN-V checkpoint holds only "
            "tensors, containers and network classes (nothing from the file was run)"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not self.inner:
            raise UnsafeCheckpointError(
                f"{self.source}: unexpected persistent id {short_repr(pid)} in the pickle"
            )
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise SnapshotError(f"a storage's pickle has an unknown persistent id {short_repr(pid)}")
        _, dtype, key, location, numel, view = pid
        if not isinstance(dtype, torch.dtype) or not isinstance(key, str) or not isinstance(numel, int):
            raise SnapshotError(f"a storage's pickle has a malformed persistent id {short_repr(pid)}")
        ref = self.refs.setdefault(key, _StorageRef(key, dtype, str(location), numel, None))
        if view is not None:
            return _StorageRef(key, dtype, str(location), numel, view)
        return ref


def _load_storage(blob: Any) -> _Storage:
    """A storage from ``torch.save(storage, _use_new_zipfile_serialization=False)`` bytes, on the CPU."""
    if not isinstance(blob, (bytes, bytearray)):
        raise SnapshotError("a storage is not stored as bytes")
    f = io.BytesIO(blob)

    def load() -> Any:
        return _Unpickler(f, source="a storage", inner=True).load()

    if load() != LEGACY_MAGIC or load() != LEGACY_PROTOCOL:
        raise SnapshotError("a storage is not in torch's legacy serialization format")
    sys_info = load()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise SnapshotError("a storage was written on a big-endian machine (not supported)")
    unpickler = _Unpickler(f, source="a storage", inner=True)
    ref = unpickler.load()
    keys = load()
    if not isinstance(ref, _StorageRef) or not isinstance(keys, list):
        raise SnapshotError("a storage's pickle does not hold one storage")
    data: dict[str, torch.Tensor] = {}
    for key in keys:
        root = unpickler.refs.get(key)
        if root is None:
            raise SnapshotError(f"a storage's data names an unknown key {short_repr(key)}")
        head = f.read(8)
        if len(head) != 8:
            raise SnapshotError("a storage's data ends early (truncated file)")
        numel = int.from_bytes(head, "little", signed=True)
        nbytes = numel * torch.empty((), dtype=root.dtype).element_size()
        raw = f.read(nbytes) if 0 <= nbytes <= len(blob) else b""
        if numel < 0 or len(raw) != nbytes:
            raise SnapshotError("a storage's data ends early (truncated file)")
        _charge(2 * nbytes, f"a storage of {nbytes:,} bytes")  # read, then copied into a tensor
        data[key] = (
            torch.frombuffer(bytearray(raw), dtype=root.dtype) if nbytes else torch.empty(0, dtype=root.dtype)
        )
    flat = data.get(ref.key)
    if flat is None:
        raise SnapshotError("a storage's bytes are missing")
    if ref.view is not None:  # a view of another storage (PyTorch < 1.0)
        _view_key, offset, size = ref.view
        flat = flat[offset : offset + size]
    return _Storage(flat, ref.location)


def _new_dict(*_: Any) -> dict:
    """collections.defaultdict(factory): the optimiser state; read as a plain dict (no factory runs)."""
    return {}


_FIXED_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): _new_dict,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _encode,
    ("torch", "device"): _device,
    ("torch", "Size"): tuple,
}


def read_snapshot(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Unpickle a StyleGAN-V checkpoint with the restricted unpickler (see the module docstring).

    Returns the top-level dict; its networks are :class:`PersistentObject` records.

    Raises:
        UnsafeCheckpointError: the file references a global outside the allow-list.
        SnapshotError: the file is not a readable pickle of a dict (truncated, not a pickle, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint file: {str(path)!r}")
    source = repr(str(path))
    token = _BUDGET.set(_Budget(path.stat().st_size))
    with open(path, "rb") as fh:
        try:
            data = _Unpickler(fh, source=source).load()
        except (UnsafeCheckpointError, SnapshotError) as exc:
            raise type(exc)(str(exc) if str(exc).startswith(source) else f"{source}: {exc}") from None
        except EOFError:
            raise SnapshotError(f"{source} ends in the middle of its pickle: the file is truncated") from None
        except (
            pickle.UnpicklingError,
            AttributeError,
            TypeError,
            ValueError,
            KeyError,
            IndexError,
            OverflowError,
            RecursionError,
            UnicodeDecodeError,
            MemoryError,
            RuntimeError,
        ) as exc:  # what unpickling arbitrary bytes raises
            reason = "nested too deeply" if isinstance(exc, RecursionError) else short_repr(str(exc))
            raise SnapshotError(
                f"{source} is not a readable pickle: {type(exc).__name__}: {reason}"
            ) from None
        finally:
            _BUDGET.reset(token)
    if not isinstance(data, dict):
        raise SnapshotError(f"{source} holds a {type(data).__name__}, not a StyleGAN-V snapshot dict")
    return data


# ------------------------------------------------------------------------------------------------
# from records to named tensors
# ------------------------------------------------------------------------------------------------
def _module_state(obj: Any, where: str) -> dict[str, Any]:
    if isinstance(obj, PersistentObject):
        return obj.state
    if isinstance(obj, StandIn) and isinstance(obj.state, dict):
        return obj.state
    raise SnapshotError(f"{where} is not a network module ({short_repr(obj)})")


def flatten_network(
    obj: Any, prefix: str = "", _parents: tuple[int, ...] = ()
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, Any]]]:
    """Parameters and buffers (``name -> tensor``) and each module's plain attributes (``path -> dict``).

    A module that contains itself (a cycle) or submodules nested deeper than ``MAX_NETWORK_DEPTH``
    are refused: no network of the authors' is like that.
    """
    where = prefix.rstrip(".") or "the network"
    if id(obj) in _parents:
        raise SnapshotError(f"{short_repr(where)} contains itself (a cycle of submodules)")
    if len(_parents) > MAX_NETWORK_DEPTH:
        raise SnapshotError(f"the network nests submodules more than {MAX_NETWORK_DEPTH} deep")
    state = _module_state(obj, short_repr(where))
    tensors: dict[str, torch.Tensor] = {}
    attrs = {prefix.rstrip("."): {k: v for k, v in state.items() if not k.startswith("_")}}
    for table in ("_parameters", "_buffers"):
        for name, value in (state.get(table) or {}).items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise SnapshotError(
                    f"{short_repr(prefix + str(name))} is a {type(value).__name__}, not a tensor"
                )
            tensors[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            t, a = flatten_network(child, f"{prefix}{name}.", (*_parents, id(obj)))
            tensors.update(t)
            attrs.update(a)
    return tensors, attrs


def plain(value: Any, depth: int = 0) -> Any:
    """Stand-ins of config containers (OmegaConf DictConfig and its value nodes, EasyDict) as plain
    Python values, read from their recorded state."""
    if depth > 50:
        return None
    if isinstance(value, StandIn):
        if isinstance(value.state, dict) and "_content" in value.state:
            return plain(value.state["_content"], depth + 1)
        if isinstance(value.state, dict) and "_val" in value.state:
            return plain(value.state["_val"], depth + 1)
        if value.dict_items:
            return {k: plain(v, depth + 1) for k, v in value.dict_items.items()}
        return None
    if isinstance(value, dict):
        return {k: plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value]
    return value


def lookup(tree: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree
