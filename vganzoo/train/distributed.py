"""torch.distributed helpers: start from torchrun's environment, rank queries, metric reduction.

``torchrun --nproc_per_node K -m vganzoo train ...`` sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; :func:`init_from_env` then starts a process group (NCCL on CUDA,
gloo on CPU). Without those variables everything runs as a single process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..resources import as_device

__all__ = [
    "all_reduce_any",
    "all_reduce_mean",
    "barrier",
    "broadcast_buffers",
    "init_from_env",
    "is_distributed",
    "is_main",
    "local_rank",
    "no_sync",
    "rank",
    "run_on_main",
    "shutdown",
    "world_size",
    "wrap",
]

_STARTED_HERE = False
_TIMEOUT = timedelta(minutes=30)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(device: str | None = None) -> torch.device:
    """Start the process group when launched by torchrun; return the device this rank uses.

    ``device`` None picks ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU.
    """
    global _STARTED_HERE
    if device is None:
        device = f"cuda:{local_rank()}" if torch.cuda.is_available() else "cpu"
    dev = as_device(device, "device")  # the library's one check: a device this machine has
    if dev.type == "meta":
        raise ValueError("device: 'meta' tensors hold no data, so nothing can be trained there")
    if dev.type == "cuda" and dev.index is None:
        dev = as_device(torch.device("cuda", local_rank()), "device")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if launched_by_torchrun() and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend=backend, timeout=_TIMEOUT, **kwargs)
        _STARTED_HERE = True
    return dev


def shutdown() -> None:
    """Destroy the process group if :func:`init_from_env` created it."""
    global _STARTED_HERE
    if _STARTED_HERE and dist.is_initialized():
        dist.destroy_process_group()
    _STARTED_HERE = False


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_mean(values: Mapping[str, float], device: torch.device) -> dict[str, float]:
    """Average scalar metrics over ranks (every rank must call it with the same keys)."""
    keys = sorted(values)
    if not is_distributed() or not keys:
        return {k: float(values[k]) for k in keys}
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    tensor /= world_size()
    return dict(zip(keys, tensor.tolist()))


def all_reduce_any(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any rank."""
    if not is_distributed():
        return bool(flag)
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def run_on_main(what: str, fn: Callable[[], object], device: torch.device) -> None:
    """Run ``fn`` on rank 0 only; if it fails there, every rank raises (none waits forever).

    ``what`` names the task in the error the other ranks raise ("saving a checkpoint").
    """
    error: BaseException | None = None
    if is_main():
        try:
            fn()
        except Exception as exc:
            error = exc
    if all_reduce_any(error is not None, device):
        if error is not None:
            raise error
        raise RuntimeError(f"{what} failed on rank 0; see its error")


def wrap(module: nn.Module, device: torch.device, *, find_unused_parameters: bool) -> nn.Module:
    """``module`` in DistributedDataParallel when running distributed, else itself."""
    if not is_distributed():
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters)


def no_sync(module: nn.Module, *, last: bool) -> contextlib.AbstractContextManager[Any]:
    """DDP's ``no_sync`` (no gradient all-reduce) for every micro-batch but the ``last``; a no-op for a
    module that is not wrapped (``module`` may be a torch.compile wrapper around DDP)."""
    inner = getattr(module, "_orig_mod", module)
    if not last and hasattr(inner, "no_sync"):
        return inner.no_sync()
    return contextlib.nullcontext()


@torch.no_grad()
def broadcast_buffers(modules: Iterable[nn.Module]) -> None:
    """Rank 0's buffers (BN statistics) to every rank, as DDP does before each forward."""
    for module in modules:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)
