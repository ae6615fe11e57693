"""``DistributedSampler``: each rank's share of a dataset, ``torch.utils.data.DistributedSampler``'s
semantics on NumPy."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

from wally.backend import xp
from wally.data.sampler import Sampler

__all__ = ["DistributedSampler"]


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, xp.integer)):
        raise TypeError(f"DistributedSampler: {name} must be an integer, got {value!r}")
    return int(value)


class DistributedSampler(Sampler[int]):
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` visits this epoch.

    Every rank draws the same permutation of ``0 .. N-1`` (seeded by ``seed`` and the epoch,
    the same on every rank), makes its length a multiple of ``num_replicas`` and takes every
    ``num_replicas``-th index from position ``rank``:

        indices = permutation[rank : total_size : num_replicas],
        num_samples = ceil(N / num_replicas),  total_size = num_samples * num_replicas.

    The permutation is lengthened by repeating it from its start (so a few samples are seen
    twice per epoch), or with ``drop_last=True`` cut to the largest multiple of
    ``num_replicas`` (``num_samples = ceil((N - num_replicas) / num_replicas)``, PyTorch's
    formula). Either way every rank has ``num_samples`` indices and so, with the same batch size,
    the same number of batches: no rank waits at a gradient average that another never joins.

    Call :meth:`set_epoch` at the start of every epoch: the order depends on ``(seed, epoch)``
    only, so without it every epoch repeats the same order (as in PyTorch). The permutation comes
    from ``numpy.random.default_rng`` and so differs from PyTorch's ``randperm``; everything else
    (sharding, padding, lengths) is PyTorch's, index for index, with ``shuffle=False``.

    Args:
        dataset: a sized dataset (only ``len`` is used).
        num_replicas: how many ranks share it (default :func:`wally.distributed.world_size`).
        rank: this rank (default :func:`wally.distributed.rank`).
        shuffle: permute the indices every epoch; else ``0, 1, ..., N-1``.
        seed: the same on every rank.
        drop_last: drop the tail instead of padding.

    >>> sampler = DistributedSampler(range(10), num_replicas=4, rank=1, shuffle=False)
    >>> list(sampler)          # 10 padded to 12: 0..9, 0, 1
    [1, 5, 9]
    >>> loader = DataLoader(dataset, batch_size=64, sampler=DistributedSampler(dataset))
    >>> for epoch in range(epochs):
    ...     loader.sampler.set_epoch(epoch)
    ...     for inputs, targets in loader: ...
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        from wally.distributed import comm

        if num_replicas is None:
            num_replicas = comm.world_size()
        if rank is None:
            rank = comm.rank()
        num_replicas = _check_int(num_replicas, "num_replicas")
        rank = _check_int(rank, "rank")
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be at least 1, got "
                             f"{num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank}, rank should be in the "
                             f"interval [0, {num_replicas - 1}]")
        if not isinstance(shuffle, bool) or not isinstance(drop_last, bool):
            raise TypeError(f"DistributedSampler: shuffle and drop_last must be bools, got "
                            f"{shuffle!r} and {drop_last!r}")
        if not isinstance(dataset, Sized):
            raise TypeError(f"DistributedSampler: the dataset must have a len(), got "
                            f"{type(dataset).__name__}")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.seed = _check_int(seed, "seed")
        size = len(dataset)
        if drop_last and size % num_replicas != 0:
            self.num_samples = math.ceil((size - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(size / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        size = len(self.dataset)
        if self.shuffle:
            # (seed, epoch) as two words of entropy: unlike seed + epoch, seed 0 epoch 1 and
            # seed 1 epoch 0 give different orders.
            words = [self.seed % 2**64, self.epoch % 2**64]
            indices = xp.random.default_rng(words).permutation(size)
        else:
            indices = xp.arange(size)
        if self.drop_last:
            indices = indices[:self.total_size]
        elif size:
            indices = xp.resize(indices, self.total_size)  # repeats from the start, as PyTorch
        shard = indices[self.rank:self.total_size:self.num_replicas]
        assert len(shard) == self.num_samples
        return iter(shard.tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s order from the next ``iter()`` on (the same on every rank)."""
        self.epoch = _check_int(epoch, "epoch")

    def __repr__(self) -> str:
        return (f"DistributedSampler(num_replicas={self.num_replicas}, rank={self.rank}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, "
                f"epoch={self.epoch})")
