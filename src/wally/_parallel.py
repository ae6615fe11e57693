"""Threads for the chunked kernels (convolution, pooling): chunks, not GEMMs, run in parallel.

A convolution works through its batch a chunk at a time (see :class:`wally._windows.ColumnPlan`).
With several threads, each thread pulls chunks from one shared queue and runs them with a
single-threaded BLAS, so the copies that build the columns run in parallel too (NumPy releases
the GIL in them), and a thread that the OS holds back on a busy machine just takes fewer
chunks instead of stalling every GEMM at a barrier.  On a loaded two-core machine this made a
LeNet layer several times faster than letting OpenBLAS thread each chunk's small GEMM
(measured in ``benchmarks``).

Limiting BLAS needs ``threadpoolctl``; without it chunks run one after another on the calling
thread and BLAS threads each GEMM as it sees fit.  The limit is process-wide while a kernel
runs, so BLAS calls made at the same time from other threads run single-threaded too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from wally.backend import ndarray, xp

__all__ = [
    "get_num_threads",
    "set_num_threads",
    "run_chunks",
    "workspace",
    "matmul",
    "allocate",
    "available_memory",
]

T = TypeVar("T")
R = TypeVar("R")


def _default_threads() -> int:
    for name in ("WALLY_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.strip().isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_state: dict[str, Any] = {"threads": _default_threads(), "pool": None, "blas": None}
_lock = threading.Lock()
if hasattr(os, "register_at_fork"):
    # A forked child (a data-loader worker) has none of the pool's threads: start a new pool.
    os.register_at_fork(after_in_child=lambda: _state.update(pool=None))


def set_num_threads(threads: int) -> None:
    """Use ``threads`` threads for chunked kernels, as ``torch.set_num_threads`` does."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {threads!r}")
    with _lock:
        _state["threads"] = threads
        pool = _state["pool"]
        _state["pool"] = None
    if pool is not None:
        pool.shutdown(wait=False)


def get_num_threads() -> int:
    """The number of threads chunked kernels use (default: the CPUs this process may use, or
    ``WALLY_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` where set)."""
    return int(_state["threads"])


def _blas() -> Any:
    """threadpoolctl's handle on NumPy's BLAS, or ``False`` where it isn't installed."""
    if _state["blas"] is None:
        try:
            from threadpoolctl import ThreadpoolController

            _state["blas"] = ThreadpoolController().select(user_api="blas")
        except ImportError:
            _state["blas"] = False
    return _state["blas"]


class _Shared(Iterator[T]):
    """One iterator that several threads pull from."""

    def __init__(self, items: Iterable[T]) -> None:
        self._items = iter(items)
        self._lock = threading.Lock()

    def __next__(self) -> T:
        with self._lock:
            return next(self._items)


def run_chunks(work: Callable[[Iterator[T]], R], chunks: Sequence[T]) -> list[R]:
    """Call ``work(chunks)`` on up to :func:`get_num_threads` threads, the caller included.

    Every call gets the same shared iterator and takes chunks from it until none are left, so
    each chunk is handled once; returns every call's result (one per thread used).
    """
    workers = min(get_num_threads(), len(chunks))
    blas: Any = _blas() if workers > 1 else False
    if not blas:
        return [work(iter(chunks))]
    with _lock:
        pool = _state["pool"]
        if pool is None or pool._max_workers < workers - 1:
            from concurrent.futures import ThreadPoolExecutor  # not at import: it costs ~10 ms

            pool = _state["pool"] = ThreadPoolExecutor(
                max(1, get_num_threads() - 1), thread_name_prefix="wally"
            )
    shared = _Shared(chunks)
    with blas.limit(limits=1):
        futures = [pool.submit(work, shared) for _ in range(workers - 1)]
        results = [work(shared)]
        results += [future.result() for future in futures]
    return results


# ----- per-thread scratch buffers ---------------------------------------------------------------
_local = threading.local()
# A fresh multi-MiB buffer costs a page fault per 4 KiB page on every call (about a third of a
# LeNet layer's time at batch 256, measured); buffers up to this size are kept per thread.
_WORKSPACE_BYTES = 32 << 20


def workspace(tag: str, size: int, dtype: Any) -> ndarray:
    """A flat array of ``size`` elements for this thread's scratch work, reused across calls.

    Its contents are whatever the last user left: fill what you read.  It must not escape the
    call that asked for it, nor be asked for again (same ``tag``) while still in use.
    """
    buffers: dict[tuple[str, Any], ndarray] = _local.__dict__.setdefault("buffers", {})
    key = (tag, xp.dtype(dtype))
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = xp.empty(size, dtype=dtype)
        if buffer.nbytes <= _WORKSPACE_BYTES:
            buffers[key] = buffer
    return buffer[:size]


# ----- large allocations, refused up front -------------------------------------------------------
# Allocations from this size on are checked against the memory the system has left: Linux hands
# out address space it may not be able to back (overcommit), so an array that cannot fit would
# not fail at ``empty`` but kill the process when its pages are touched.  Smaller ones are not
# checked (reading /proc/meminfo costs ~30 µs, more than a small layer).
_CHECKED_BYTES = 64 << 20


def available_memory() -> int | None:
    """Bytes the system can still hand out: ``MemAvailable`` from ``/proc/meminfo``, or the
    room left under this process's cgroup (v2) limit where that is less; ``None`` where
    neither can be read (not Linux)."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
            current = int(f.read().strip())
        if limit != "max":
            room = max(0, int(limit) - current)
            available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    return available


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


def allocate(
    op: str, what: str, shape: Sequence[int], dtype: Any, *, zeros: bool = False,
    extra: int = 0,
) -> ndarray:
    """``xp.empty(shape, dtype)`` (``xp.zeros`` with ``zeros``) for ``op``'s ``what`` (its
    output, an input gradient), refused up front with a ``MemoryError`` naming ``op``, the
    shape and the bytes when it (plus ``extra`` bytes of workspace the op still needs) cannot
    fit in :func:`available_memory`; NumPy's own ``MemoryError`` is given the same message."""
    dtype = xp.dtype(dtype)
    count = 1
    for n in shape:
        count *= int(n)
    nbytes = count * dtype.itemsize
    if nbytes + extra >= _CHECKED_BYTES:
        available = available_memory()
        if available is not None and nbytes + extra > available:
            raise MemoryError(_refusal(op, what, shape, dtype, nbytes, extra, available))
    try:
        return xp.zeros(shape, dtype=dtype) if zeros else xp.empty(shape, dtype=dtype)
    except MemoryError:
        raise MemoryError(_refusal(op, what, shape, dtype, nbytes, extra, None)) from None


def _refusal(
    op: str, what: str, shape: Sequence[int], dtype: Any, nbytes: int, extra: int,
    available: int | None,
) -> str:
    needs = f"{nbytes} bytes ({_size(nbytes)})"
    if extra:
        needs += f" plus {_size(extra)} of workspace"
    if available is None:
        where = "the system could not allocate it"
    else:
        where = f"only {available} bytes ({_size(available)}) of memory are available"
    return (
        f"{op}: the {what} of shape {tuple(int(n) for n in shape)} ({dtype}) needs {needs}, "
        f"but {where}; use a smaller input (fewer images, a smaller image) or more memory"
    )


# ----- GEMMs split by rows ----------------------------------------------------------------------
# Below this many multiply-adds a GEMM runs on the calling thread alone: splitting costs more.
_SPLIT_MACS = 1 << 20


def matmul(a: ndarray, b: ndarray) -> ndarray:
    """``a @ b`` for 2-D arrays, its rows split among the chunked kernels' threads.

    Each thread multiplies a block of ``a``'s rows with a single-threaded BLAS.  For the
    mid-sized GEMMs of a small network (LeNet's linear layers at batch 256) this is much
    steadier than OpenBLAS's own threads on a busy machine, where a GEMM waits at a barrier
    for a thread the OS has not yet run (measured: LeNet's linear backward took longer than
    its convolutions).
    """
    rows = a.shape[0]
    if rows * a.shape[1] * b.shape[1] < _SPLIT_MACS:  # checked first: batch-1 layers end here
        return a @ b
    threads = min(get_num_threads(), rows)
    if threads <= 1 or not _blas():
        return a @ b
    out = xp.empty((rows, b.shape[1]), dtype=xp.result_type(a, b))
    step = -(-rows // (2 * threads))  # two blocks per thread, so a late thread takes fewer

    def work(blocks: Iterator[slice]) -> None:
        for block in blocks:
            xp.matmul(a[block], b, out=out[block])

    run_chunks(work, [slice(r, min(r + step, rows)) for r in range(0, rows, step)])
    return out
