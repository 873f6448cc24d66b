"""CUDA-graph replay of a module's fixed-shape inference forward (sampling), and the device check
that the ``cuda_graphs`` options share.

At batch 16 the zoo's models are host-bound on a big GPU: one generator forward is dozens of small
kernels, each launched from Python. :class:`GraphedInference` records the forward once per input
signature (shapes, strides, dtypes, devices, the non-tensor arguments and the autocast state) into a
``torch.cuda.CUDAGraph`` and afterwards replays it with one launch: the new inputs are copied into the
recorded buffers, the graph runs, and the caller gets a fresh copy of the output (later replays
overwrite the recorded output).

What it assumes and what it does when that does not hold:

- The forward is a function of its arguments (the zoo's generators draw nothing of their own at
  sampling: every random number is in the latents), so a replay gives what an eager call gives.
- A call that cannot be a graph (no CUDA tensor among the arguments, a CPU tensor or an argument
  that is neither a tensor nor a plain scalar) runs eagerly, silently: that is the module's own
  behaviour there.
- A forward that cannot be recorded (a host sync such as ``.item()``, an op that refuses capture,
  an output that is not one tensor) runs eagerly from then on for that signature, with one warning
  that says why.
- At most ``max_graphs`` signatures are recorded (each keeps its buffers on the GPU); further
  signatures run eagerly.

Training does not use this class: the trainer compiles its modules with torch.compile's CUDA-graph
backend (cudagraph trees, which also record the backward pass; see
:class:`vganzoo.train.TrainConfig`), and :func:`require_cuda` is the check both share.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import short_repr
from ..resources import as_device

__all__ = ["GraphedInference", "host_reads_allowed", "require_cuda"]

log = logging.getLogger(__name__)

_SCALARS = (bool, int, float, str, type(None))


def host_reads_allowed() -> bool:
    """False while torch.compile traces or a CUDA graph records: input checks that read tensor values
    on the host (``.item()``, ``bool(t)``) must be skipped then (the warm-up calls before a recording,
    and every eager call, still make them)."""
    if torch.compiler.is_compiling():
        return False
    return not (torch.cuda.is_initialized() and torch.cuda.is_current_stream_capturing())


def require_cuda(device: torch.device | str, what: str = "cuda_graphs") -> torch.device:
    """``device`` as a torch.device when it is a CUDA device this process can use; otherwise a one-line
    ValueError naming ``what`` and the way out (the device itself is checked by
    :func:`vganzoo.resources.as_device`)."""
    if device is None:  # as_device's "the caller's default" means nothing here
        raise TypeError(f"{what}: expected a device name such as 'cuda:0', got NoneType")
    try:
        parsed = as_device(device, what)
    except ValueError:
        if torch.cuda.is_available() or not str(device).strip().lower().startswith("cuda"):
            raise
        parsed = None  # a CUDA device on a machine without one: said below, with what to install
    if parsed is not None and parsed.type == "cuda":
        return parsed
    if torch.version.cuda is None:
        why = f"this PyTorch ({torch.__version__}) is a CPU-only build; install a CUDA build of torch"
    elif not torch.cuda.is_available():
        why = "this PyTorch sees no CUDA device"
    else:
        why = "choose 'cuda' or 'cuda:N'"
    raise ValueError(f"{what}: CUDA graphs need a CUDA device, got {short_repr(str(device))}; {why}")


def _signature(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """A hashable key for the recorded graph that these arguments can replay, or None when the call
    cannot be a graph: no CUDA tensor, a tensor elsewhere or needing grad, or an argument that is
    neither a tensor nor a plain scalar."""
    key: list[Any] = []
    cuda = False
    for slot, value in [*enumerate(args), *sorted(kwargs.items())]:
        if isinstance(value, torch.Tensor):
            if value.device.type != "cuda" or value.requires_grad:
                return None
            cuda = True
            key.append((slot, "tensor", tuple(value.shape), value.stride(), value.dtype, value.device))
        elif isinstance(value, _SCALARS):
            if isinstance(value, float) and value != value:  # NaN: never equal to itself, no key
                return None
            key.append((slot, "value", type(value).__name__, value))
        else:
            return None
    if not cuda:
        return None
    autocast = torch.is_autocast_enabled("cuda")
    key.append(("autocast", autocast, torch.get_autocast_dtype("cuda") if autocast else None))
    return tuple(key)


class _Graph:
    __slots__ = ("graph", "inputs", "output")

    def __init__(self, graph: torch.cuda.CUDAGraph, inputs: dict[Any, torch.Tensor], output: torch.Tensor):
        self.graph, self.inputs, self.output = graph, inputs, output


class GraphedInference:
    """``GraphedInference(module)(*args, **kwargs)`` = ``module(*args, **kwargs)`` under
    ``torch.no_grad()``, replayed from a CUDA graph recorded at the first call with each input
    signature (see the module docstring for what runs eagerly instead).

    Args:
        module: the module to run (its parameters must stay where they are: the graph reads them in
            place, so in-place weight updates are seen and a ``.to()`` elsewhere is not).
        max_graphs: how many signatures to record; later ones run eagerly.
        warmup: eager calls on a side stream before recording (lazy initialisation, autotuning).

    Returns a tensor the caller owns (a copy of the recorded output). Thread-safe: one call at a time.
    """

    def __init__(self, module: nn.Module, *, max_graphs: int = 4, warmup: int = 2) -> None:
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
        for name, value, low, high in (("max_graphs", max_graphs, 1, 64), ("warmup", warmup, 1, 100)):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")
        self.module = module
        self.max_graphs = max_graphs
        self.warmup = warmup
        self._graphs: dict[tuple[Any, ...], _Graph] = {}
        self._eager: set[tuple[Any, ...]] = set()  # signatures that could not be recorded
        self._pool: Any = None
        self._lock = threading.Lock()
        self.replays = 0  # calls served by a graph (for tests and benchmarks)

    @property
    def num_graphs(self) -> int:
        return len(self._graphs)

    @torch.no_grad()
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        key = _signature(args, kwargs)
        if key is not None:  # train / eval mode changes what the forward records (dropout, batch norm)
            key = (*key, ("training", self.module.training))
        with self._lock:
            if key is None or key in self._eager:
                return self.module(*args, **kwargs)
            entry = self._graphs.get(key)
            if entry is None:
                if len(self._graphs) >= self.max_graphs:
                    return self.module(*args, **kwargs)
                entry = self._record(key, args, kwargs)
                if entry is None:
                    return self.module(*args, **kwargs)
            for slot, buffer in entry.inputs.items():
                buffer.copy_(args[slot] if isinstance(slot, int) else kwargs[slot])
            entry.graph.replay()
            self.replays += 1
            return entry.output.clone()

    def _record(
        self, key: tuple[Any, ...], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> _Graph | None:
        inputs: dict[Any, torch.Tensor] = {
            slot: value.clone()
            for slot, value in [*enumerate(args), *kwargs.items()]
            if isinstance(value, torch.Tensor)
        }
        call_args = tuple(inputs.get(i, value) for i, value in enumerate(args))
        call_kwargs = {name: inputs.get(name, value) for name, value in kwargs.items()}
        device = next(iter(inputs.values())).device
        current = torch.cuda.current_stream(device)
        side = torch.cuda.Stream(device)
        try:
            side.wait_stream(current)
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self.module(*call_args, **call_kwargs)
            current.wait_stream(side)
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                output = self.module(*call_args, **call_kwargs)
        except Exception as exc:  # any failure to record means: run this signature eagerly
            with contextlib.suppress(RuntimeError):  # an aborted capture leaves no work queued
                torch.cuda.synchronize(device)
            return self._give_up(key, f"could not be recorded ({type(exc).__name__}: {_first_line(exc)})")
        if not isinstance(output, torch.Tensor):
            return self._give_up(key, f"returns {type(output).__name__}, not one tensor")
        entry = _Graph(graph, inputs, output)
        self._graphs[key] = entry
        return entry

    def _give_up(self, key: tuple[Any, ...], why: str) -> None:
        self._eager.add(key)
        log.warning("cuda graphs: %s's forward %s; running it eagerly", type(self.module).__name__, why)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
