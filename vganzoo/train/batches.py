"""The trainer's view of a dataset: an endless, resumable stream of batches of any size.

Each epoch visits the dataset in the order a :class:`~torch.utils.data.DistributedSampler` gives
for ``(seed, epoch)`` (shuffled, split across ranks; one rank gets the whole permutation), so the
position ``(epoch, offset)`` saved in a checkpoint is all a resumed run needs to draw exactly the
batches an uninterrupted run would. Batches of different sizes (MoCoGAN's image and video
discriminators) are cut from the same stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

__all__ = ["BatchLoader", "IndexStream"]


class IndexStream:
    """Dataset indices for one rank, epoch after epoch, with a saveable position.

    Args:
        length: dataset size.
        seed: shuffling seed (the permutation of epoch ``e`` depends only on ``(seed, e)``).
        rank, world_size: this process's shard.
        shuffle: False visits indices in order (still split across ranks).
    """

    def __init__(
        self,
        length: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        epoch: int = 0,
        offset: int = 0,
    ) -> None:
        if length < 1:
            raise ValueError("data: the dataset is empty; it must hold at least one clip")
        self.length, self.seed, self.rank, self.world_size, self.shuffle = (
            length,
            seed,
            rank,
            world_size,
            shuffle,
        )
        self.epoch, self.offset = epoch, offset
        self._cache: tuple[int, list[int]] | None = None

    def epoch_indices(self, epoch: int) -> list[int]:
        if self._cache is None or self._cache[0] != epoch:
            sampler = DistributedSampler(
                range(self.length),
                num_replicas=self.world_size,
                rank=self.rank,
                shuffle=self.shuffle,
                seed=self.seed,
                drop_last=False,
            )
            sampler.set_epoch(epoch)
            self._cache = (epoch, list(sampler))
        return self._cache[1]

    def take(self, k: int) -> list[int]:
        """The next ``k`` indices (continuing into the next epoch when this one runs out)."""
        return [index for _epoch, index in self.take_keyed(k)]

    def take_keyed(self, k: int) -> list[tuple[int, int]]:
        """The next ``k`` ``(epoch, index)`` pairs."""
        out: list[tuple[int, int]] = []
        while len(out) < k:
            indices = self.epoch_indices(self.epoch)
            chunk = indices[self.offset : self.offset + (k - len(out))]
            out.extend((self.epoch, index) for index in chunk)
            self.offset += len(chunk)
            if self.offset >= len(indices):
                self.epoch, self.offset = self.epoch + 1, 0
        return out

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state(self, state: dict[str, int]) -> None:
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])

    def clone(self) -> IndexStream:
        return IndexStream(
            self.length,
            seed=self.seed,
            rank=self.rank,
            world_size=self.world_size,
            shuffle=self.shuffle,
            epoch=self.epoch,
            offset=self.offset,
        )


class _EpochAware(Dataset):
    """``dataset[(epoch, index)]``: calls ``dataset.set_epoch(epoch)`` first when it has one
    (VideoFolder draws random clip starts from ``(seed, epoch, index)``), so an item is the
    same whether it is loaded here or in a worker, before or after a resume."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.set_epoch = getattr(dataset, "set_epoch", None)
        self.epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if self.set_epoch is not None and epoch != self.epoch:
            self.set_epoch(epoch)
            self.epoch = epoch
        return self.dataset[index]


class _PlannedBatches:
    """Index lists in the order the trainer will ask for them (a DataLoader batch_sampler)."""

    def __init__(self, stream: IndexStream, sizes: Sequence[int]) -> None:
        self.stream, self.sizes = stream, list(sizes)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        while True:
            for size in self.sizes:
                yield self.stream.take_keyed(size)


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    batch = default_collate(items)
    if not isinstance(batch, dict) or "video" not in batch:
        raise TypeError(
            "data: every dataset item must be a dict with a 'video' tensor (C, T, H, W) and an optional "
            "'label'"
        )
    return batch


class BatchLoader:
    """Batches ``{"video": (B, C, T, H, W), "label": (B,)}`` of requested sizes from ``stream``.

    With ``num_workers > 0`` a DataLoader prefetches along ``plan`` (the cycle of batch sizes one
    iteration asks for, starting at an iteration boundary); asking out of plan is an error.
    """

    def __init__(
        self,
        dataset: Dataset,
        stream: IndexStream,
        *,
        plan: Sequence[int],
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        self.dataset, self.stream, self.plan = _EpochAware(dataset), stream, list(plan)
        self.num_workers = num_workers
        self._iterator: Iterator[dict[str, Any]] | None = None
        self._position = 0
        if num_workers > 0:
            loader = DataLoader(
                self.dataset,
                batch_sampler=_PlannedBatches(stream.clone(), self.plan),
                num_workers=num_workers,
                collate_fn=_collate,
                pin_memory=pin_memory,
                persistent_workers=False,
            )
            self._iterator = iter(loader)

    def next_batch(self, size: int) -> dict[str, Any]:
        if self._iterator is None:
            return _collate([self.dataset[key] for key in self.stream.take_keyed(size)])
        expected = self.plan[self._position % len(self.plan)]
        if size != expected:
            raise RuntimeError(f"BatchLoader: asked for a batch of {size}, the prefetch plan has {expected}")
        self._position += 1
        self.stream.take(size)  # keep the saveable position in step with what was consumed
        return next(self._iterator)

    def close(self) -> None:
        self._iterator = None
