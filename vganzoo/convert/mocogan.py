"""Convert MoCoGAN's original generator checkpoints (``generator_NNNNN.pytorch``).

The authors' trainer pickled the whole ``models.VideoGenerator`` module with ``torch.save``
(Python 2, PyTorch 0.2/0.3, the pre-zip "legacy" format). Reading one means unpickling, which can
run arbitrary code; this converter does it only when asked, through an unpickler that resolves
nothing but an allow-list of globals:

* ``models.VideoGenerator`` and ``models.Noise``: replaced by inert stand-ins defined here;
* the torch.nn module classes such a generator contains (GRUCell, Sequential, ConvTranspose2d,
  BatchNorm2d, ReLU, Tanh): also replaced by inert stand-ins, restored from their attributes the way
  ``torch.save`` pickles modules; a pickle that calls a constructor is refused, so its arguments
  allocate nothing;
* ``torch.nn.Parameter`` (around a tensor only) and torch's tensor rebuild functions (storages are
  resolved by ``torch.load`` itself, each declared size checked first: together they may not exceed
  the file's own size);
* ``collections.OrderedDict``, ``set``, and PyTorch 0.3's module backend hook (replaced by a stub).

Anything else raises :class:`UnsafeCheckpointError` naming the refused global. Python 2 strings
are decoded as latin1. The batch-norm counters PyTorch 0.3 did not have (``num_batches_tracked``)
are filled in, and the result loads into :class:`vganzoo.models.mocogan.MoCoGANGenerator` with
``strict=True`` before anything is written.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import types
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import VganzooError, short_repr
from ..files import describe_file
from ..models.mocogan import BASE_CHANNELS, BOTTOM_SIZE, DEFAULT_CONFIG, VIDEO_D_FRAMES, MoCoGANGenerator
from .folder import write_weight_folder

__all__ = ["ALLOWED_GLOBALS", "UnsafeCheckpointError", "convert_mocogan", "load_mocogan_generator"]

MODEL_NAME = "mocogan-rnn"


class UnsafeCheckpointError(VganzooError, pickle.UnpicklingError):
    """The checkpoint references a global outside the converter's allow-list, calls a module's
    constructor, or declares more tensor data than the file holds."""


class _SavedModule(nn.Module):
    """A module restored from a pickle: its attributes only. ``torch.save`` pickles a module as
    "an object of this class with these attributes" (``__new__`` then ``__setstate__``), never as a
    constructor call, so a pickle that calls one (``GRUCell(12000, 12000)`` allocates 3.6 GB) is
    refused before anything is allocated."""

    saved_as = "a module"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        shown = ", ".join([*map(short_repr, args), *(f"{k}={short_repr(v)}" for k, v in kwargs.items())])
        raise UnsafeCheckpointError(
            f"the pickle calls {self.saved_as}({shown}); a saved module is restored from its attributes, "
            "never built by calling its constructor, so this file is not a checkpoint torch.save wrote"
        )

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never called
        raise RuntimeError("an unpickled stand-in module; convert it instead of calling it")


class OriginalVideoGenerator(_SavedModule):
    """Inert stand-in for the original ``models.VideoGenerator``: holds the unpickled attributes only."""

    saved_as = "models.VideoGenerator"


class OriginalNoise(_SavedModule):
    """Inert stand-in for the original ``models.Noise`` layer."""

    saved_as = "models.Noise"


def _stand_in(module: str, cls: type) -> type:
    """An inert :class:`_SavedModule` subclass standing for torch module class ``cls``."""
    return type(f"Saved{cls.__name__}", (_SavedModule,), {"saved_as": f"{module}.{cls.__name__}"})


def _no_backend() -> None:
    """Stand-in for PyTorch 0.3's ``torch.nn.backends.thnn._get_thnn_function_backend``."""
    return


def _parameter(data: Any = None, requires_grad: bool = True, *rest: Any) -> nn.Parameter:
    """``torch.nn.Parameter`` as a pickle may call it: around a tensor the file already holds."""
    if not isinstance(data, torch.Tensor) or rest:
        raise UnsafeCheckpointError(
            "the pickle builds a torch.nn.Parameter from something other than a tensor"
        )
    return nn.Parameter(data, requires_grad=bool(requires_grad))


_MODULE_CLASSES = {
    ("torch.nn.modules.rnn", "GRUCell"): nn.GRUCell,
    ("torch.nn.modules.container", "Sequential"): nn.Sequential,
    ("torch.nn.modules.conv", "ConvTranspose2d"): nn.ConvTranspose2d,
    ("torch.nn.modules.batchnorm", "BatchNorm2d"): nn.BatchNorm2d,
    ("torch.nn.modules.activation", "ReLU"): nn.ReLU,
    ("torch.nn.modules.activation", "Tanh"): nn.Tanh,
}


def _allowed() -> dict[tuple[str, str], Any]:
    from torch import _utils

    table: dict[tuple[str, str], Any] = {
        ("models", "VideoGenerator"): OriginalVideoGenerator,
        ("models", "Noise"): OriginalNoise,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("__builtin__", "set"): set,
        ("torch.nn.backends.thnn", "_get_thnn_function_backend"): _no_backend,
        ("torch.nn.parameter", "Parameter"): _parameter,
    }
    table.update({key: _stand_in(key[0], cls) for key, cls in _MODULE_CLASSES.items()})
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter"):
        if hasattr(_utils, name):
            table[("torch._utils", name)] = getattr(_utils, name)
    return table


ALLOWED_GLOBALS: tuple[str, ...] = tuple(f"{m}.{n}" for m, n in _allowed())
_STORAGE_NUMEL = 4  # position of the element count in a ('storage', type, key, location, numel, ...) id


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED_GLOBALS`, and lets the tensor data a file declares (through
    torch's storage ids) add up to no more than the file's own size (``data_limit`` bytes)."""

    data_limit: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._torch_persistent_load: Any = None
        self._declared: dict[Any, int] = {}
        super().__init__(*args, **kwargs)

    def find_class(self, module: str, name: str) -> Any:
        found = _allowed().get((module, name))
        if found is None:
            raise UnsafeCheckpointError(
                f"refused to unpickle {module}.{name}: a MoCoGAN generator checkpoint needs only "
                f"{', '.join(ALLOWED_GLOBALS)} (and torch storages)"
            )
        return found

    # torch.load assigns its storage loader here after construction; the C unpickler took the bound
    # method below at construction, which checks each storage before torch allocates it
    @property  # type: ignore[override]
    def persistent_load(self) -> Any:
        return self._bounded_persistent_load

    @persistent_load.setter
    def persistent_load(self, function: Any) -> None:
        self._torch_persistent_load = function

    def _bounded_persistent_load(self, saved_id: Any) -> Any:
        if self._torch_persistent_load is None:
            raise UnsafeCheckpointError("the pickle refers to external data but is not a torch checkpoint")
        if isinstance(saved_id, tuple) and len(saved_id) > _STORAGE_NUMEL and saved_id[0] == "storage":
            self._declare(saved_id)
        return self._torch_persistent_load(saved_id)

    def _declare(self, saved_id: tuple) -> None:
        from torch._utils import _element_size

        storage_type, key, numel = saved_id[1], saved_id[2], saved_id[_STORAGE_NUMEL]
        dtype = getattr(storage_type, "dtype", None)
        if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0 or dtype is None:
            raise UnsafeCheckpointError(f"the pickle declares a malformed tensor storage {saved_id[:5]!r}")
        self._declared[key] = numel * _element_size(dtype)
        total = sum(self._declared.values())
        if self.data_limit is not None and total > self.data_limit:
            raise UnsafeCheckpointError(
                f"the pickle declares {total:,} bytes of tensor data but the file holds only "
                f"{self.data_limit:,} bytes; refusing to allocate them"
            )


def _restricted_pickle_module(data_limit: int) -> types.ModuleType:
    """What ``torch.load(pickle_module=...)`` needs: ``Unpickler`` and ``load`` (both restricted)."""
    unpickler = type("BoundedUnpickler", (_RestrictedUnpickler,), {"data_limit": data_limit})
    module = types.ModuleType("vganzoo_restricted_pickle")
    module.Unpickler = unpickler  # type: ignore[attr-defined]
    module.load = lambda f, **kwargs: unpickler(f, **kwargs).load()  # type: ignore[attr-defined]
    return module


MAX_MODULE_DEPTH = 64  # nested submodules; MoCoGAN's generator is 3 deep


def _check_layout(tensor: torch.Tensor, name: str) -> None:
    """Refuse a tensor that reads more elements than its storage holds (zero or overlapping strides):
    converting it would copy one stored value into gigabytes."""
    zero_stride = any(size > 1 and stride == 0 for size, stride in zip(tensor.shape, tensor.stride()))
    if tensor.numel() and (
        zero_stride or tensor.numel() * tensor.element_size() > tensor.untyped_storage().nbytes()
    ):
        raise UnsafeCheckpointError(
            f"{name}: a tensor of size {tuple(tensor.shape)} reads more elements than its storage holds "
            "(zero or overlapping strides)"
        )


def _flatten(module: Any, prefix: str = "", _parents: tuple[int, ...] = ()) -> dict[str, torch.Tensor]:
    """Parameters and buffers of an unpickled module tree, read from its dicts (no method calls)."""
    if not isinstance(module, nn.Module):
        raise ValueError(f"expected a module at {prefix or 'the top level'}, got {type(module).__name__}")
    if id(module) in _parents or len(_parents) > MAX_MODULE_DEPTH:
        raise ValueError(f"{prefix or 'the top level'}: submodules nest in a cycle or too deeply")
    state = vars(module)
    out: dict[str, torch.Tensor] = {}
    for table in ("_parameters", "_buffers"):
        for name, value in state.get(table, {}).items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"{prefix}{name} is a {type(value).__name__}, not a tensor")
            _check_layout(value, prefix + name)
            out[prefix + name] = value.detach()
    for name, child in state.get("_modules", {}).items():
        if child is not None:
            out.update(_flatten(child, f"{prefix}{name}.", (*_parents, id(module))))
    return out


def _read(path: Path) -> Any:
    with open(path, "rb") as fh:
        data = fh.read()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # source-change warnings about the stand-in classes
        return torch.load(
            io.BytesIO(data),
            map_location="cpu",
            pickle_module=_restricted_pickle_module(len(data)),
            weights_only=False,
            encoding="latin1",
        )


def _infer_config(state: Mapping[str, torch.Tensor], attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The mocogan-rnn config of an original generator, from its attributes and weight shapes."""
    try:
        dim_z_motion = int(state["recurrent.weight_ih"].shape[1])
        dim_z = int(state["main.0.weight"].shape[0])
        first_channels = int(state["main.0.weight"].shape[1])
    except KeyError as exc:
        raise ValueError(f"not a MoCoGAN VideoGenerator: missing {exc.args[0]!r}") from None
    conv_indices = sorted(
        int(k.split(".")[1])
        for k in state
        if k.startswith("main.") and k.endswith(".weight") and state[k].ndim == 4
    )
    blocks = len(conv_indices) - 1
    last = state[f"main.{conv_indices[-1]}.weight"]
    resolution = BOTTOM_SIZE * 2**blocks
    dim_z_content = int(attrs.get("dim_z_content", DEFAULT_CONFIG["dim_z_content"]))
    dim_z_category = int(attrs.get("dim_z_category", dim_z - dim_z_content - dim_z_motion))
    if "dim_z_content" not in attrs:
        dim_z_content = dim_z - dim_z_category - dim_z_motion
    if dim_z_content + dim_z_category + dim_z_motion != dim_z or dim_z_content < 1 or dim_z_category < 0:
        raise ValueError(
            f"inconsistent latent sizes: content {dim_z_content} + category {dim_z_category} + motion "
            f"{dim_z_motion} != {dim_z} inputs of main.0"
        )
    width = first_channels / (BASE_CHANNELS * 2 ** (blocks - 1))
    frames = attrs.get("video_length", DEFAULT_CONFIG["frames"])
    frames = (
        frames
        if isinstance(frames, int) and not isinstance(frames, bool) and frames >= 1
        else DEFAULT_CONFIG["frames"]
    )
    # The categorical video D covers exactly 16 frames; other clip lengths get the image D only.
    discriminators = (
        list(DEFAULT_CONFIG["discriminators"]) if frames == VIDEO_D_FRAMES else ["mocogan/patch-image"]
    )
    return {
        **DEFAULT_CONFIG,
        "discriminators": discriminators,
        "resolution": resolution,
        "frames": frames,
        "channels": int(last.shape[1]),
        "width": float(width),
        "num_classes": dim_z_category,
        "dim_z_content": dim_z_content,
        "dim_z_motion": dim_z_motion,
    }


def load_mocogan_generator(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read an original generator checkpoint; returns ``(config, state_dict)`` checked against our generator.

    The file may hold the pickled module (the trainer's format) or a plain state dict.

    Raises:
        UnsafeCheckpointError: the pickle references a global outside the allow-list.
        ValueError: the file is not a MoCoGAN generator (the message says what does not fit).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint file: {str(path)!r}")
    try:
        obj = _read(path)
    except UnsafeCheckpointError as exc:
        raise UnsafeCheckpointError(f"{str(path)!r} ({describe_file(path)}): {exc}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        RuntimeError,
        AttributeError,
        TypeError,
        ValueError,
        KeyError,
        IndexError,
        OverflowError,
        UnicodeDecodeError,
    ) as exc:  # what unpickling arbitrary bytes raises
        raise ValueError(
            f"{str(path)!r} is not a readable MoCoGAN checkpoint: it is {describe_file(path)} ({exc})"
        ) from None
    try:
        if isinstance(obj, nn.Module):
            attrs = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
            state = _flatten(obj)
        elif isinstance(obj, Mapping) and all(isinstance(v, torch.Tensor) for v in obj.values()):
            attrs, state = {}, {str(k): v.detach() for k, v in obj.items()}
            for key, value in state.items():
                _check_layout(value, short_repr(key))
        else:
            raise ValueError(f"holds a {type(obj).__name__}, not a generator module or state dict")
    except (UnsafeCheckpointError, ValueError) as exc:
        raise type(exc)(f"{str(path)!r}: {exc}") from None
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    config = _infer_config(state, attrs)
    for key in [k for k in state if k.endswith(".running_mean")]:
        state[key.removesuffix("running_mean") + "num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    shared = {
        k: config[k]
        for k in ("resolution", "frames", "channels", "width", "num_classes", "dim_z_content", "dim_z_motion")
    }
    try:
        with torch.device("meta"):
            ours = MoCoGANGenerator(**shared)
        expected = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    except VganzooError as exc:
        raise ValueError(f"{str(path)!r}: unsupported generator configuration: {exc}") from None
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        raise ValueError(
            f"{str(path)!r} does not match mocogan-rnn {shared}: missing {missing}, unexpected {extra}, "
            f"wrong shapes {[(k, got[k], expected[k]) for k in wrong]}"
        )
    state = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()}
    return config, state


def convert_mocogan(
    src: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Convert ``generator_NNNNN.pytorch`` at ``src`` into a weight folder at ``out_dir``.

    Writes ``generator.safetensors`` and ``config.json`` (``{"model": "mocogan-rnn", ...}``);
    the discriminators were never saved by the original trainer. Returns the folder.
    """
    config, state = load_mocogan_generator(src)
    # Prove the weights load strictly before writing anything.
    generator = MoCoGANGenerator(
        **{
            k: config[k]
            for k in (
                "resolution",
                "frames",
                "channels",
                "width",
                "num_classes",
                "dim_z_content",
                "dim_z_motion",
            )
        }
    )
    generator.load_state_dict(state, strict=True)
    metadata = {
        "source": Path(src).name,
        "format": "mocogan-original-pickle",
        "converter": "vganzoo.convert.mocogan",
    }
    return write_weight_folder(
        out_dir, {"model": MODEL_NAME, **config}, {"generator": state}, metadata=metadata, overwrite=overwrite
    )
