"""The few calls a training loop makes to train data-parallel, each a no-op in a world of one.

``wally.train.fit`` and ``wally train`` use them so that the same command trains alone or, under
``mpiexec -n K``, on K ranks::

    train_loader = distributed_loader(train_set, batch_size=256, seed=0)   # 256 / K per rank
    broadcast_parameters(model)
    for epoch in range(1, epochs + 1):
        set_epoch(train_loader, epoch)
        for inputs, targets in train_loader:
            ...; loss.backward(); after_backward(model); optimizer.step()
        if is_main_process():
            save_checkpoint(...); print(...)

Only rank 0 (:func:`is_main_process`) should print and write files: every rank holds the same
weights, so one checkpoint describes them all.
"""

from __future__ import annotations

from typing import Any

from wally.distributed import comm
from wally.distributed.parallel import average_gradients

__all__ = [
    "after_backward", "any_process", "distributed_loader", "is_main_process",
    "per_rank_batch_size", "set_epoch",
]


def is_main_process() -> bool:
    """Whether this process is rank 0, the one that prints and writes checkpoints."""
    return comm.rank() == 0


def per_rank_batch_size(batch_size: int) -> int:
    """``batch_size / world_size()``, the share of a global batch each rank trains on.

    Raises:
        ValueError: the global batch does not split evenly (the average of the ranks' mean losses
            would then weigh samples unequally).
    """
    size = comm.world_size()
    if batch_size % size:
        raise ValueError(f"the batch size {batch_size} does not split evenly over {size} ranks; "
                         f"give a multiple of {size}")
    return batch_size // size


def distributed_loader(dataset: Any, batch_size: int, *, seed: int, shuffle: bool = True,
                       drop_last: bool = False, **loader_kwargs: Any) -> Any:
    """A DataLoader over this rank's shard of ``dataset``, in batches of ``batch_size / K``.

    ``batch_size`` is the global batch: the K ranks together train on ``batch_size`` samples per
    step, so the learning rate that suits it alone suits it on K ranks. In a world of one this is
    exactly ``DataLoader(dataset, batch_size, shuffle=shuffle, generator=seed, ...)``, so a run
    without MPI is unchanged; on K ranks the order comes from a :class:`DistributedSampler`
    seeded with ``seed`` (call :func:`set_epoch` every epoch), and ``generator=seed`` still
    drives random transforms.
    """
    from wally.data import DataLoader
    from wally.distributed.sampler import DistributedSampler

    if comm.world_size() == 1:
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                          generator=seed, **loader_kwargs)
    sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    return DataLoader(dataset, batch_size=per_rank_batch_size(batch_size), sampler=sampler,
                      drop_last=drop_last, generator=seed, **loader_kwargs)


def set_epoch(loader: Any, epoch: int) -> None:
    """Tell ``loader``'s sampler which epoch starts, if it is one that cares (a
    :class:`DistributedSampler`); otherwise do nothing."""
    method = getattr(getattr(loader, "sampler", None), "set_epoch", None)
    if callable(method):
        method(epoch)


def after_backward(model: Any) -> None:
    """Average the gradients over the ranks (:func:`average_gradients`); nothing alone."""
    if comm.world_size() > 1:
        average_gradients(model)


def any_process(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank: for decisions every rank must take together, such
    as stopping early, which would otherwise leave the others waiting at the next step."""
    if comm.world_size() == 1:
        return bool(flag)
    return comm.all_reduce_sum([1.0 if flag else 0.0])[0] > 0
