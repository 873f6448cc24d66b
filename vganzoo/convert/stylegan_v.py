"""Convert the authors' StyleGAN-V checkpoints (``network-snapshot-NNNNNN.pkl``) into a weight set.

Their format (``torch_utils/persistence.py`` of stylegan2-ada-pytorch, as in universome/stylegan-v,
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

This reader executes nothing from the file. Its unpickler resolves only torch's tensor and storage
rebuild functions (re-implemented here: storages are read from their bytes on the CPU whatever
device they name), plain containers, and inert stand-ins for the network, optimiser, config and
NumPy classes that record their state; a persistent object becomes a record of its class name and
state (its ``module_src`` is kept as text, never run). Any other global (``os.system``,
``builtins.eval``, ...) is refused with :class:`UnsafeCheckpointError`.

Every parameter and buffer of ``G``, ``G_ema`` and ``D`` is then mapped to
:class:`~vganzoo.models.stylegan_v.StyleGANVGenerator` / ``StyleGANVDiscriminator`` names; the
architecture comes from the tensor shapes, the layers' own attributes and the generator's
``sampling_dict`` (plus ``motion_z_distance`` from its config), the fixed buffers (resampling
filters, time frequencies) are checked against ours, and anything left unmapped is an error naming
it. The result is written by :func:`vganzoo.save_pretrained` as a weight set
(``generator``, ``generator_ema``, ``discriminator.video``).
"""

from __future__ import annotations

import builtins
import collections
import io
import math
import os
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import VganzooError
from ..models.stylegan_v import DEFAULT_CONFIG, StyleGANVDiscriminator, StyleGANVGenerator, channel_ladder
from .folder import write_weight_folder
from .mocogan import UnsafeCheckpointError

__all__ = [
    "ConversionReport",
    "PersistentObject",
    "UnsafeCheckpointError",
    "convert_stylegan_v",
    "load_stylegan_v",
    "read_snapshot",
]

MODEL_NAME = "stylegan-v"
PERSISTENCE_MODULES = ("torch_utils.persistence", "src.torch_utils.persistence")
PERSISTENCE_VERSION = 6
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization's legacy-format magic number
LEGACY_PROTOCOL = 1001
NETWORK_KEYS = ("G", "G_ema", "D")
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
# Builtins a pickle may call or name: constructors of plain values and containers only.
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


class SnapshotError(VganzooError, ValueError):
    """The file is not a StyleGAN-V checkpoint this converter can read (the message says why)."""


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
        raise SnapshotError(f"a tensor has an invalid layout: size {size}, stride {stride}, offset {offset}")
    if math.prod(size) and offset + sum((s - 1) * st for s, st in zip(size, stride)) >= data.numel():
        raise SnapshotError(f"a tensor of size {size} reaches past its storage of {data.numel()} elements")
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
    raise SnapshotError(f"copyreg._reconstructor called on {cls!r}")


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
            return SAFE_BUILTINS[name]
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
            raise UnsafeCheckpointError(f"{self.source}: unexpected persistent id {pid!r} in the pickle")
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise SnapshotError(f"a storage's pickle has an unknown persistent id {pid!r}")
        _, dtype, key, location, numel, view = pid
        if not isinstance(dtype, torch.dtype) or not isinstance(key, str) or not isinstance(numel, int):
            raise SnapshotError(f"a storage's pickle has a malformed persistent id {pid!r}")
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
            raise SnapshotError(f"a storage's data names an unknown key {key!r}")
        head = f.read(8)
        if len(head) != 8:
            raise SnapshotError("a storage's data ends early (truncated file)")
        numel = int.from_bytes(head, "little", signed=True)
        nbytes = numel * torch.empty((), dtype=root.dtype).element_size()
        raw = f.read(nbytes) if 0 <= nbytes <= len(blob) else b""
        if numel < 0 or len(raw) != nbytes:
            raise SnapshotError("a storage's data ends early (truncated file)")
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
            raise SnapshotError(f"{source} is not a readable pickle: {type(exc).__name__}: {exc}") from None
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
    raise SnapshotError(f"{where} is not a network module ({obj!r})")


def _flatten(obj: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, dict[str, Any]]]:
    """Parameters and buffers (``name -> tensor``) and each module's plain attributes (``path -> dict``)."""
    state = _module_state(obj, prefix.rstrip(".") or "the network")
    tensors: dict[str, torch.Tensor] = {}
    attrs = {prefix.rstrip("."): {k: v for k, v in state.items() if not k.startswith("_")}}
    for table in ("_parameters", "_buffers"):
        for name, value in (state.get(table) or {}).items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise SnapshotError(f"{prefix}{name} is a {type(value).__name__}, not a tensor")
            tensors[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            t, a = _flatten(child, f"{prefix}{name}.")
            tensors.update(t)
            attrs.update(a)
    return tensors, attrs


def _plain(value: Any, depth: int = 0) -> Any:
    """Stand-ins of config containers (OmegaConf DictConfig and its value nodes, EasyDict) as plain
    Python values, read from their recorded state."""
    if depth > 50:
        return None
    if isinstance(value, StandIn):
        if isinstance(value.state, dict) and "_content" in value.state:
            return _plain(value.state["_content"], depth + 1)
        if isinstance(value.state, dict) and "_val" in value.state:
            return _plain(value.state["_val"], depth + 1)
        if value.dict_items:
            return {k: _plain(v, depth + 1) for k, v in value.dict_items.items()}
        return None
    if isinstance(value, dict):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return value


def _lookup(tree: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


# ------------------------------------------------------------------------------------------------
# architecture and names
# ------------------------------------------------------------------------------------------------
class ConversionReport:
    """What a conversion found: config, where each setting came from, mapped / checked / ignored."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.mapped: dict[str, int] = {}
        self.checked: list[str] = []
        self.ignored: list[str] = []
        self.unmapped: list[str] = []

    def summary(self) -> str:
        mapped = ", ".join(f"{k}: {v} tensors" for k, v in self.mapped.items())
        checked = f"{len(self.checked)} fixed buffers checked"
        ignored = ", ".join(self.ignored) or "nothing"
        return f"mapped {mapped}; {checked}; unmapped: none; snapshot entries ignored: {ignored}"


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise SnapshotError(f"{what} is {value!r}, not an int")
    return int(value)


def _nice(value: float) -> float | int:
    """A period read back from float32 frequencies: the int it was, when it was one."""
    return round(value) if abs(value - round(value)) < 1e-3 * max(1.0, abs(value)) else float(value)


def _infer_config(
    g: dict[str, torch.Tensor],
    g_attrs: dict[str, dict[str, Any]],
    d: dict[str, torch.Tensor] | None,
    d_attrs: dict[str, dict[str, Any]] | None,
    report: ConversionReport,
) -> dict[str, Any]:
    """Our config of the authors' networks, from their tensors and attributes."""
    try:
        return _infer(g, g_attrs, d, d_attrs, report)
    except KeyError as exc:
        raise SnapshotError(f"not a StyleGAN-V network: it has no {exc.args[0]!r}") from None


def _infer(g, g_attrs, d, d_attrs, report) -> dict[str, Any]:
    config = dict(DEFAULT_CONFIG)
    source = report.sources

    def put(key: str, value: Any, where: str) -> None:
        config[key], source[key] = value, where

    resolutions = sorted({int(m.group(1)) for k in g if (m := re.match(r"synthesis\.b(\d+)\.", k))})
    if not resolutions or resolutions[0] != 4:
        raise SnapshotError("not a StyleGAN-V generator: no synthesis.b4 block")
    put("resolution", resolutions[-1], "synthesis blocks")
    put("channels", g[f"synthesis.b{resolutions[-1]}.torgb.weight"].shape[0], "to-RGB weight")
    ladder = {r: g[f"synthesis.b{r}.conv1.weight"].shape[0] for r in resolutions}
    channel_max = ladder[4]
    top = resolutions[-1]
    channel_base = ladder[top] * top if ladder[top] < channel_max else channel_max * top
    synthesis_kwargs = _lookup(_plain(g_attrs[""].get("_init_kwargs")), "synthesis_kwargs") or {}
    if isinstance(synthesis_kwargs.get("channel_base"), int):
        channel_base = synthesis_kwargs["channel_base"]
    if channel_ladder(top, width=1.0, channel_base=channel_base, channel_max=channel_max) != ladder:
        raise SnapshotError(f"the generator's channels {ladder} do not follow min(base // res, max)")
    put("channel_base", channel_base, "channels per block")
    put("channel_max", channel_max, "channels per block")
    put("width", 1.0, "channels per block")

    mapping_layers = len([k for k in g if re.fullmatch(r"mapping\.fc\d+\.weight", k)])
    put("mapping_layers", mapping_layers, "mapping layers")
    c_dim = g["mapping.embed.weight"].shape[1] if "mapping.embed.weight" in g else 0
    embed = g["mapping.embed.weight"].shape[0] if c_dim else 0
    put("num_classes", c_dim, "mapping embedding")
    put("z_dim", g["mapping.fc0.weight"].shape[1] - embed, "mapping input")
    put("w_dim", g[f"mapping.fc{mapping_layers - 1}.weight"].shape[0], "mapping output")

    motion = "synthesis.motion_encoder."
    conv0, conv1 = g[motion + "conv.0.weight"], g[motion + "conv.1.weight"]
    put("motion_z_dim", conv0.shape[0], "motion conv")
    put("motion_v_dim", conv1.shape[0], "motion conv")
    put("motion_kernel_size", conv0.shape[2], "motion conv")
    if conv0.shape[1] != conv0.shape[0] + c_dim:
        raise SnapshotError("the motion network's input is not motion codes plus the class code")
    freqs = g[motion + "time_encoder.freqs"].double()
    put("time_dim", freqs.shape[1], "time frequencies")
    put("time_max_period", _nice(2 * math.pi / float(freqs[0, 0])), "time frequencies")
    put("time_min_period", _nice(2 * math.pi / float(freqs[0, -1])), "time frequencies")
    cfg = _plain(g_attrs[""].get("cfg"))
    distance = _lookup(cfg, "motion", "motion_z_distance")
    if isinstance(distance, (int, float)) and not isinstance(distance, bool):
        put("motion_z_distance", distance, "generator cfg.motion.motion_z_distance")
    else:
        put("motion_z_distance", config["time_min_period"], "= time_min_period (the authors' default)")
    layer = g_attrs.get("synthesis.b4.conv1", {})
    put("conv_clamp", layer.get("conv_clamp"), "synthesis layers")
    put("use_noise", any(k.endswith("noise_strength") for k in g), "noise strengths")

    sampling = g_attrs[""].get("sampling_dict") if isinstance(g_attrs[""].get("sampling_dict"), dict) else {}
    for key, ours in (
        ("fps", "fps"),
        ("max_num_frames", "max_frames"),
        ("num_frames_per_video", "sparse_frames"),
    ):
        if key in sampling:
            put(
                ours,
                float(sampling[key]) if ours == "fps" else _int(sampling[key], key),
                f"sampling_dict.{key}",
            )
    if "max_dist" in sampling:
        put("max_dist", _int(sampling["max_dist"], "max_dist"), "sampling_dict.max_dist")
    if sampling.get("type", "random") != "random":
        raise SnapshotError(f"frame sampling {sampling.get('type')!r} is not supported (only 'random')")

    if d is not None:
        table = d["time_encoder.const_embed.weight"]
        put("max_frames", table.shape[0], "D time-difference table")
        put("time_embed_dim", table.shape[1], "D time-difference table")
        d_res = sorted({int(m.group(1)) for k in d if (m := re.match(r"b(\d+)\.conv0\.", k))}, reverse=True)
        if not d_res or d_res[0] != top:
            raise SnapshotError("the discriminator's resolution is not the generator's")
        k = config["sparse_frames"]
        concat = [
            r for r in d_res[1:] if d[f"b{r}.conv0.weight"].shape[1] != d[f"b{r}.conv0.weight"].shape[0]
        ]
        if len(concat) != 1:
            raise SnapshotError("cannot find the discriminator's frame concatenation block")
        concat_res = concat[0]
        tmp = d[f"b{concat_res}.conv0.weight"].shape[0]
        per_frame = d[f"b{concat_res}.conv0.weight"].shape[1] // k
        put("concat_res", concat_res, "D block shapes")
        put("frames_div_factor", tmp // per_frame, "D block shapes")
        put(
            "d_mapping_layers", len([x for x in d if re.fullmatch(r"mapping\.fc\d+\.weight", x)]), "D mapping"
        )
        mbstd = (d_attrs or {}).get("b4.mbstd")
        if mbstd is None:
            put("mbstd_channels", 0, "D epilogue")
        else:
            put("mbstd_group_size", _int(mbstd.get("group_size"), "mbstd group_size"), "D epilogue")
            put("mbstd_channels", _int(mbstd.get("num_channels"), "mbstd num_channels"), "D epilogue")
        d_clamp = (d_attrs or {}).get(f"b{top}.conv0", {}).get("conv_clamp")
        if d_clamp != config["conv_clamp"]:
            raise SnapshotError(f"D clamps at {d_clamp} and G at {config['conv_clamp']}: not supported")
    frames = max(config["sparse_frames"], min(DEFAULT_CONFIG["frames"], config["max_frames"]))
    put("frames", frames, "default sample length")
    return {k: (int(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in config.items()}


_G_RULES: list[tuple[str, Callable[..., str] | None]] = [
    (r"mapping\.fc(\d+)\.(weight|bias)", lambda i, p: f"mapping.layers.{i}.{p}"),
    (r"mapping\.embed\.(weight|bias)", lambda p: f"mapping.embed.{p}"),
    (r"mapping\.w_avg", lambda: "mapping.w_avg"),
    (r"synthesis\.motion_encoder\.conv\.(\d+)\.(weight|bias)", lambda i, p: f"motion.layers.{i}.{p}"),
    (r"synthesis\.motion_encoder\.time_encoder\.periods_predictor\.weight", lambda: "motion.period.weight"),
    (r"synthesis\.motion_encoder\.time_encoder\.phase_predictor\.weight", lambda: "motion.phase.weight"),
    (r"synthesis\.motion_encoder\.time_encoder\.aligners_predictor\.weight", lambda: "motion.aligner.weight"),
    (r"synthesis\.motion_encoder\.time_encoder\.(freqs|phase_scales)", None),
    (r"synthesis\.b4\.input\.input\.const", lambda: "const"),
    (
        r"synthesis\.b(\d+)\.(conv0|conv1)\.(affine\.weight|affine\.bias|weight|bias|noise_strength|noise_const)",
        lambda r, c, p: f"blocks.{_block(int(r))}.{c}.{p}",
    ),
    (
        r"synthesis\.b(\d+)\.torgb\.(affine\.weight|affine\.bias|weight|bias)",
        lambda r, p: f"blocks.{_block(int(r))}.to_rgb.{p}",
    ),
    (r"synthesis\.b\d+\.(conv0\.|conv1\.)?resample_filter", None),
]


def _block(resolution: int) -> int:
    return int(math.log2(resolution)) - 2


def _d_rules(resolution: int) -> list[tuple[str, Callable[..., str] | None]]:
    def index(r: str) -> int:
        return int(math.log2(resolution)) - int(math.log2(int(r)))

    return [
        (r"b(\d+)\.fromrgb\.(weight|bias)", lambda r, p: f"blocks.{index(r)}.from_rgb.{p}"),
        (r"b(\d+)\.(conv0|conv1)\.(weight|bias)", lambda r, c, p: f"blocks.{index(r)}.{c}.{p}"),
        (r"b(\d+)\.skip\.weight", lambda r: f"blocks.{index(r)}.skip.weight"),
        (r"b4\.conv\.(weight|bias)", lambda p: f"epilogue.conv.{p}"),
        (r"b4\.(fc|out)\.(weight|bias)", lambda f, p: f"epilogue.{f}.{p}"),
        (r"time_encoder\.const_embed\.weight", lambda: "time_embedding.table"),
        (r"time_encoder\.time_encoder\.fourier_coefs", None),
        (r"mapping\.embed\.(weight|bias)", lambda p: f"mapping.embed.{p}"),
        (r"mapping\.fc(\d+)\.(weight|bias)", lambda i, p: f"mapping.layers.{i}.{p}"),
        (r"(b\d+\.)?(conv\d?\.|skip\.|fromrgb\.)?resample_filter", None),
    ]


def _fixed_buffers(module: torch.nn.Module, theirs: str) -> torch.Tensor:
    """Our value of one of the authors' fixed buffers, by its (their) name."""
    name = theirs.rsplit(".", 1)[1]
    if name == "resample_filter":
        return next(b for n, b in module.named_buffers() if n.endswith("resample_filter"))
    if name == "fourier_coefs":
        return module.time_embedding.fourier_coefs
    return getattr(module.motion, name)


def _map(
    tensors: Mapping[str, torch.Tensor],
    rules: list[tuple[str, Callable[..., str] | None]],
    module: torch.nn.Module,
    what: str,
    report: ConversionReport,
) -> dict[str, torch.Tensor]:
    """Their tensors under our names; fixed buffers checked; anything unmapped is an error."""
    ours: dict[str, torch.Tensor] = {}
    unmapped = []
    for name, tensor in tensors.items():
        for pattern, target in rules:
            match = re.fullmatch(pattern, name)
            if match is None:
                continue
            if target is None:
                expected = _fixed_buffers(module, name)
                if tuple(tensor.shape) != tuple(expected.shape) or not torch.allclose(
                    tensor.double(), expected.double(), rtol=1e-6, atol=1e-7
                ):
                    raise SnapshotError(f"{what}.{name} differs from this architecture's fixed value")
                report.checked.append(f"{what}.{name}")
            else:
                ours[target(*match.groups())] = tensor
            break
        else:
            unmapped.append(name)
    if unmapped:
        report.unmapped.extend(f"{what}.{n}" for n in unmapped)
        raise SnapshotError(f"{what}: tensors with no place in stylegan-v: {', '.join(sorted(unmapped))}")
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in ours.items()}
    if expected != got:
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        raise SnapshotError(
            f"{what} does not fit the inferred stylegan-v config: missing {missing}, unexpected {extra}, "
            f"wrong shapes {[(k, got[k], expected[k]) for k in wrong]}"
        )
    report.mapped[what] = len(ours)
    return {k: v.detach().to(torch.float32) if v.is_floating_point() else v for k, v in ours.items()}


def load_stylegan_v(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]], ConversionReport]:
    """Read a StyleGAN-V checkpoint; returns ``(config, state dicts by component, report)``.

    Components: ``generator`` (``G``, else ``G_ema``), ``generator_ema`` (``G_ema``, when both are
    there) and ``discriminator.video`` (``D``, when there).
    """
    data = read_snapshot(path)
    source = repr(str(path))
    nets = {key: data[key] for key in NETWORK_KEYS if data.get(key) is not None}
    if "G" not in nets and "G_ema" not in nets:
        keys = ", ".join(map(repr, list(data)[:8])) or "none"
        raise SnapshotError(f"{source} holds no StyleGAN-V generator ('G' or 'G_ema'); its entries: {keys}")
    report = ConversionReport()
    report.ignored = sorted(str(k) for k in data if k not in NETWORK_KEYS)
    flat = {}
    for key, net in nets.items():
        if not isinstance(net, PersistentObject):
            raise SnapshotError(f"{source}: {key} is {net!r}, not one of the authors' persistent networks")
        expected = "Discriminator" if key == "D" else "Generator"
        if net.class_name != expected:
            raise SnapshotError(f"{source}: {key} is a {net.class_name}, not a StyleGAN-V {expected}")
        flat[key] = _flatten(net)
    g_key = "G_ema" if "G_ema" in nets else "G"
    try:
        config = _infer_config(*flat[g_key], *(flat.get("D") or (None, None)), report)
        generator = StyleGANVGenerator(**{k: config[k] for k in StyleGANVGenerator.__init__.__kwdefaults__})
        disc = StyleGANVDiscriminator(
            **{k: config[k] for k in StyleGANVDiscriminator.__init__.__kwdefaults__}
        )
    except VganzooError as exc:
        if isinstance(exc, SnapshotError):
            raise SnapshotError(f"{source}: {exc}") from None
        raise SnapshotError(f"{source}: unsupported StyleGAN-V configuration: {exc}") from None
    report.config = config
    components: dict[str, dict[str, torch.Tensor]] = {}
    try:
        for key, component in (("G", "generator"), ("G_ema", "generator_ema")):
            if key in flat:
                components[component] = _map(flat[key][0], _G_RULES, generator, key, report)
        if "generator" not in components:
            components["generator"] = components.pop("generator_ema")
        if "D" in flat:
            components["discriminator.video"] = _map(
                flat["D"][0], _d_rules(config["resolution"]), disc, "D", report
            )
    except SnapshotError as exc:
        raise SnapshotError(f"{source}: {exc}") from None
    return config, components, report


def convert_stylegan_v(
    src: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, overwrite: bool = False
) -> tuple[Path, ConversionReport]:
    """Convert the checkpoint at ``src`` into a weight set at ``out_dir``; returns ``(folder, report)``."""
    config, components, report = load_stylegan_v(src)
    metadata = {
        "source": Path(src).name,
        "format": "stylegan-v-persistence-pickle",
        "converter": "vganzoo.convert.stylegan_v",
    }
    folder = write_weight_folder(
        out_dir, {"model": MODEL_NAME, **config}, components, metadata=metadata, overwrite=overwrite
    )
    return folder, report
