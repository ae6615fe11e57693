"""Keeping replicas of one model in step: the same weights at the start, the same gradients at
every step.

Data parallelism in two collective calls. Every rank holds a full copy of the model and trains on
its own shard of each global batch. :func:`broadcast_parameters` makes the copies equal once;
:func:`average_gradients`, called between ``loss.backward()`` and ``optimizer.step()``, gives
every rank the mean of all ranks' gradients,

    g = (1 / K) * sum_{r=0}^{K-1} g_r,

which, when every rank's loss is the mean over an equal share of the global batch, is the
gradient of the mean loss over the whole global batch. Every rank then takes the same optimizer
step and the copies stay equal without further communication.

Batch normalisation is *not* synchronised, as in PyTorch's ``DistributedDataParallel`` without
``SyncBatchNorm``: in training mode each rank normalises with the mean and variance of its own
shard of the batch (``B / K`` samples, not ``B``), and each rank's running mean and variance
follow its own shards. Rank 0's running statistics are the ones that checkpoints keep and that
evaluation on rank 0 uses. :func:`broadcast_parameters` copies buffers too, so calling it again
makes every rank use rank 0's statistics.
"""

from __future__ import annotations

import hashlib
from typing import Any

from wally.backend import ndarray, xp
from wally.distributed import comm
from wally.tensor import Tensor

__all__ = ["average_gradients", "broadcast_parameters"]


def _state_tensors(model: Any, where: str) -> list[tuple[str, Tensor]]:
    from wally.nn.parameter import is_lazy

    tensors = list(model.named_parameters()) + list(model.named_buffers())
    lazy = [name for name, tensor in tensors if is_lazy(tensor)]
    if lazy:
        raise ValueError(f"{where}: {', '.join(lazy)} not materialised yet (lazy layers); run "
                         f"one forward pass on every rank first")
    return tensors


def _signature(tensors: list[tuple[str, Tensor]]) -> ndarray:
    """A digest of the names, shapes and dtypes, as 32 bytes."""
    text = ";".join(f"{name}:{tuple(t.array.shape)}:{t.array.dtype.str}" for name, t in tensors)
    return xp.frombuffer(hashlib.sha256(text.encode("utf-8")).digest(), dtype=xp.uint8).copy()


def broadcast_parameters(model: Any, root: int = 0) -> None:
    """Copy rank ``root``'s parameters *and* buffers into every other rank's ``model``.

    Call it once after building (or loading) the model and before the first step. All tensors
    travel in one buffer of bytes, so parameters and buffers of any dtype go in one ``Ibcast``.
    First every rank checks that its model has the same names, shapes and dtypes as the
    others'; if any differs, every rank raises the same error. A no-op in a world of one.

    >>> model = wally.models.lenet()
    >>> wally.distributed.broadcast_parameters(model)   # every rank now holds rank 0's weights

    Raises:
        ValueError: ``root`` is not a rank, a lazy layer has not seen an input yet, or the ranks'
            models differ.
    """
    size = comm.world_size()
    if isinstance(root, bool) or not isinstance(root, int) or not 0 <= root < size:
        raise ValueError(f"broadcast_parameters: root must be a rank in [0, {size - 1}], "
                         f"got {root!r}")
    if size == 1:
        return
    tensors = _state_tensors(model, "broadcast_parameters")
    signatures = comm.allgather(_signature(tensors), "broadcast_parameters (model check)")
    differ = [r for r in range(size) if not xp.array_equal(signatures[r], signatures[root])]
    if differ:
        raise ValueError(
            f"broadcast_parameters: the model on rank(s) {', '.join(map(str, differ))} has other "
            f"parameter or buffer names, shapes or dtypes than rank {root}'s; every rank must "
            f"build the same model"
        )
    total = sum(t.array.nbytes for _, t in tensors)
    buffer = xp.empty(total, dtype=xp.uint8)
    is_root = comm.rank() == root
    if is_root:
        offset = 0
        for _, t in tensors:
            n = t.array.nbytes
            buffer[offset:offset + n] = xp.ascontiguousarray(t.array).reshape(-1).view(xp.uint8)
            offset += n
    comm.broadcast_in_place(buffer, root, "broadcast_parameters")
    if is_root:
        return
    offset = 0
    for _, t in tensors:
        n = t.array.nbytes
        values = buffer[offset:offset + n].view(t.array.dtype).reshape(t.array.shape)
        if t.array.flags.writeable:
            xp.copyto(t.array, values)
        else:
            t.array = values.copy()
        t._bump_version()
        offset += n


def average_gradients(model: Any) -> None:
    """Replace every parameter's gradient by its mean over all ranks. A no-op in a world of one.

    Call it after ``loss.backward()`` and before gradient clipping and ``optimizer.step()``.
    The gradients of all parameters that require one are packed into ONE flat buffer, float32
    for a float32 model (float64 only when a parameter is float64, so nothing is downcast),
    summed over the ranks by a single ``Allreduce(IN_PLACE)``, divided by the world size and
    unpacked into new ``.grad`` tensors. A parameter without a gradient on a rank (a layer that
    rank did not use) contributes zeros there, so its mean counts that rank as zero; the buffer
    ends with one flag per parameter counting the ranks that had a gradient, and a parameter no
    rank had a gradient for keeps ``grad = None``, so the optimizer skips it as it would alone.

    >>> loss_fn(model(inputs), targets).backward()
    >>> wally.distributed.average_gradients(model)
    >>> optimizer.step()
    """
    size = comm.world_size()
    if size == 1:
        return
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return
    dtype = xp.result_type(xp.float32, *(p.array.dtype for p in params))
    total = sum(p.array.size for p in params)
    buffer = xp.zeros(total + len(params), dtype=dtype)
    offset = 0
    for index, p in enumerate(params):
        n = p.array.size
        if p.grad is not None:
            buffer[offset:offset + n] = p.grad.array.reshape(-1)
            buffer[total + index] = 1
        offset += n
    comm.allreduce_in_place(buffer, "average_gradients")
    grads = buffer[:total]
    grads /= size
    offset = 0
    for index, p in enumerate(params):
        n = p.array.size
        if buffer[total + index] > 0:
            grad = grads[offset:offset + n].reshape(p.array.shape)
            p.grad = Tensor(grad.astype(p.array.dtype, copy=False))
        offset += n
