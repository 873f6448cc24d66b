"""CUDA-graph replay of a module's fixed-shape inference forward (sampling), and the device check
that the trainer's ``cuda_graphs`` option shares.

At batch 16 the zoo's models are host-bound on a big GPU: one generator forward is dozens of small
kernels, each launched from Python. :class:`GraphedInference` records the forward once per input
signature (shapes, dtypes, devices and the non-tensor arguments) into a ``torch.cuda.CUDAGraph`` and
afterwards replays it with one launch: the new inputs are copied into the recorded buffers, the graph
runs, and the caller gets a fresh copy of the output (later replays overwrite the recorded output).

What it assumes and what it does when that does not hold:

- The forward is a function of its arguments (the zoo's generators draw nothing of their own at
  sampling: every random number is in the latents), so a replay gives what an eager call gives.
- A forward that cannot be recorded (a host sync such as ``.item()``, a CPU tensor, an op that
  refuses capture) is run eagerly from then on for that signature, with one warning that says why.
- At most ``max_graphs`` signatures are recorded (each keeps its buffers on the GPU); further
  signatures run eagerly.

Training graphs are not recorded here: :func:`require_cuda` is the trainer's check, and the trainer
compiles its modules with torch.compile's CUDA-graph backend (cudagraph trees, which also record the
backward pass); see :class:`vganzoo.train.TrainConfig`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["GraphedInference", "require_cuda"]

log = logging.getLogger(__name__)

_SCALARS = (bool, int, float, str, type(None))


def require_cuda(device: torch.device | str, what: str = "cuda_graphs") -> torch.device:
    """``device`` as a torch.device when it is a CUDA device and CUDA can run here; otherwise a
    ValueError naming ``what``."""
    device = torch.device(device)
    if device.type != "cuda":
        raise ValueError(f"{what}: CUDA graphs need a CUDA device, got {str(device)!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"{what}: CUDA graphs need a CUDA device, and this torch sees none")
    return device


def _signature(kwargs: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """A hashable key for the recorded graph that these arguments can replay, or None when an argument
    is neither a CUDA tensor nor a plain scalar (such calls always run eagerly)."""
    key = []
    for name in sorted(kwargs):
        value = kwargs[name]
        if isinstance(value, torch.Tensor):
            if value.device.type != "cuda" or value.requires_grad:
                return None
            key.append((name, "tensor", tuple(value.shape), value.dtype, value.device, value.stride()))
        elif isinstance(value, _SCALARS):
            key.append((name, "value", type(value).__name__, value))
        else:
            return None
    return tuple(key)


class _Graph:
    __slots__ = ("graph", "inputs", "output")

    def __init__(self, graph: torch.cuda.CUDAGraph, inputs: dict[str, torch.Tensor], output: torch.Tensor):
        self.graph, self.inputs, self.output = graph, inputs, output


class GraphedInference:
    """``GraphedInference(module)(**kwargs)`` = ``module(**kwargs)`` under ``torch.no_grad()``, replayed
    from a CUDA graph recorded at the first call with each input signature.

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
        for name, value, low in (("max_graphs", max_graphs, 1), ("warmup", warmup, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
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
    def __call__(self, **kwargs: Any) -> torch.Tensor:
        key = _signature(kwargs)
        with self._lock:
            if key is None or key in self._eager:
                return self.module(**kwargs)
            entry = self._graphs.get(key)
            if entry is None:
                if len(self._graphs) >= self.max_graphs:
                    return self.module(**kwargs)
                entry = self._record(key, kwargs)
                if entry is None:
                    return self.module(**kwargs)
            for name, buffer in entry.inputs.items():
                buffer.copy_(kwargs[name])
            entry.graph.replay()
            self.replays += 1
            return entry.output.clone()

    def _record(self, key: tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Graph | None:
        device = next(v.device for v in kwargs.values() if isinstance(v, torch.Tensor))
        inputs = {k: v.clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
        call = {**kwargs, **inputs}
        current = torch.cuda.current_stream(device)
        side = torch.cuda.Stream(device)
        try:
            side.wait_stream(current)
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self.module(**call)
            current.wait_stream(side)
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                output = self.module(**call)
        except Exception as exc:  # any failure to record means: run this signature eagerly
            with contextlib.suppress(RuntimeError):  # an aborted capture leaves no work queued
                torch.cuda.synchronize(device)
            self._eager.add(key)
            log.warning(
                "cuda graphs: %s's forward could not be recorded (%s: %s); running it eagerly",
                type(self.module).__name__,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
            return None
        if not isinstance(output, torch.Tensor):
            self._eager.add(key)
            log.warning(
                "cuda graphs: %s's forward returns %s, not one tensor; running it eagerly",
                type(self.module).__name__,
                type(output).__name__,
            )
            return None
        entry = _Graph(graph, inputs, output)
        self._graphs[key] = entry
        return entry
