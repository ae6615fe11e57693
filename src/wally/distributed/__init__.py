"""Data-parallel training over MPI (through mpi4py), as ChainerMN and Horovod do it.

The same script runs alone (``python train.py``: a world of one, every call below a no-op, MPI
never initialised) or on K processes (``mpiexec -n K python train.py``)::

    import wally.distributed as dist

    model = wally.models.lenet()
    dist.broadcast_parameters(model)                   # rank 0's weights and buffers everywhere
    sampler = dist.DistributedSampler(train_set, seed=0)
    loader = DataLoader(train_set, batch_size=256 // dist.world_size(), sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)                       # a new order every epoch
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss_fn(model(inputs), targets).backward()
            dist.average_gradients(model)              # one Allreduce of one flat buffer
            optimizer.step()
    if dist.rank() == 0:                               # one copy of the (equal) weights
        wally.io.save_checkpoint("model.safetensors", model)

Every rank takes the same optimizer step, so the replicas stay equal. Batch-norm statistics are
kept per rank, as PyTorch does by default (see :mod:`wally.distributed.parallel`).

A rank that dies does not leave the others waiting: every collective call here waits with a
watchdog and aborts the whole job with a message naming the rank and the call; see
:mod:`wally.distributed.comm` for how.
"""

from wally.distributed.comm import (
    DEFAULT_TIMEOUT,
    all_reduce_sum,
    barrier,
    init,
    is_available,
    is_initialized,
    rank,
    world_size,
)
from wally.distributed.parallel import average_gradients, broadcast_parameters
from wally.distributed.sampler import DistributedSampler
from wally.distributed.training import (
    after_backward,
    any_process,
    distributed_loader,
    is_main_process,
    per_rank_batch_size,
    set_epoch,
)

__all__ = [
    "DEFAULT_TIMEOUT", "DistributedSampler", "after_backward", "all_reduce_sum", "any_process",
    "average_gradients", "barrier", "broadcast_parameters", "distributed_loader", "init",
    "is_available", "is_initialized", "is_main_process", "per_rank_batch_size", "rank",
    "set_epoch", "world_size",
]
