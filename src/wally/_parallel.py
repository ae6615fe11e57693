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

**BLAS stays on one thread while wally's threads work** (:func:`one_blas_thread` for the
GEMMs outside the chunks): after each threaded call OpenBLAS's idle threads keep spinning
(about 0.1 s, its ``THREAD_TIMEOUT``) on the core that the next kernel's second thread needs.
So a convolution whose columns fit one chunk is shared among the threads by images
(:func:`wally._windows.shared_step`); only a kernel left with one chunk (a batch of one, or
little work) leaves its GEMM to BLAS's own threads, as batch-1 inference wants.  At 2 threads a
ResNet-18 training step went 1.84 → 1.67 s and a 40-batch LeNet epoch 0.81 → 0.76 s
(``benchmarks/PROFILE.md``); a 64-channel Winograd layer, whose weight transform was one
threaded GEMM before its chunks, 49.9 → 29.7 ms.

**Same bits on every run.**  Which thread takes which chunk depends on timing, so nothing may
depend on it: chunks write disjoint parts of their result, and where chunks' partial results
are summed (weight gradients) :func:`sum_chunks` adds them in chunk order, whichever thread
finishes first, so the sum is the one a single thread would compute.  The chunks themselves
depend only on shapes, the memory budget and the thread count.
:func:`use_deterministic_algorithms` also keeps them (and the kernel each layer uses)
independent of the thread count; see that function.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from wally import backend
from wally.backend import ndarray, xp
from wally.backends import tuning

__all__ = [
    "get_num_threads",
    "split_threads",
    "set_num_threads",
    "use_deterministic_algorithms",
    "are_deterministic_algorithms_enabled",
    "run_chunks",
    "sum_chunks",
    "workspace",
    "matmul",
    "one_blas_thread",
    "elementwise",
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


_state: dict[str, Any] = {
    "threads": _default_threads(), "pool": None, "blas": None, "deterministic": False,
}
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


@contextlib.contextmanager
def num_threads(threads: int) -> Iterator[None]:
    """Within the block chunked kernels use ``threads`` threads; the count in force before is
    put back on leaving it, however it is left (the tests' one way to change it)."""
    previous = get_num_threads()
    set_num_threads(threads)
    try:
        yield
    finally:
        set_num_threads(previous)


def get_num_threads() -> int:
    """The number of threads chunked kernels use (default: the CPUs this process may use, or
    ``WALLY_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` where set)."""
    return int(_state["threads"])


def split_threads() -> int:
    """The threads a kernel shares its batch among when it plans its chunks: all of them, or
    one under :func:`use_deterministic_algorithms` (the chunks then do not depend on the
    thread count)."""
    return 1 if _state["deterministic"] else get_num_threads()


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Make every threaded kernel give the same bits at any :func:`set_num_threads` count, as
    ``torch.use_deterministic_algorithms`` does (for the count of threads, not for GPUs).

    Without it every op is already bit-identical from run to run at a fixed thread count.  With
    it, in addition, each layer's kernel and the chunks it splits its work into no longer depend
    on the thread count: a 3×3 layer that Winograd runs on one thread takes im2col as on two; a
    small memory budget (:func:`wally.functional.conv.set_memory_budget`) runs fewer threads
    instead of smaller chunks; the chunked kernels' GEMMs run on one BLAS thread each even
    when wally uses one thread; and :func:`matmul` (linear layers) splits rows into blocks of a
    fixed size.  BLAS calls outside the chunked kernels keep the BLAS library's own thread
    count, which :func:`set_num_threads` does not change: fix it too (``OPENBLAS_NUM_THREADS``
    or threadpoolctl), since OpenBLAS itself may give other bits at another thread count.
    Without threadpoolctl, chunks run on the calling thread at any count, so nothing changes.
    ``warn_only`` is accepted for PyTorch's signature; no wally op lacks a deterministic path.
    """
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms: expected a bool, got {mode!r}")
    if not isinstance(warn_only, bool):
        raise TypeError(
            f"use_deterministic_algorithms: expected a bool warn_only, got {warn_only!r}"
        )
    _state["deterministic"] = mode


def are_deterministic_algorithms_enabled() -> bool:
    """Whether :func:`use_deterministic_algorithms` is on (off by default)."""
    return bool(_state["deterministic"])


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


def run_chunks(
    work: Callable[[Iterator[T]], R], chunks: Sequence[T], *, workers: int | None = None
) -> list[R]:
    """Call ``work(chunks)`` on up to :func:`get_num_threads` threads (and at most ``workers``),
    the caller included.

    Every call gets the same shared iterator and takes chunks from it until none are left, so
    each chunk is handled once; returns every call's result (one per thread used).  Which
    thread takes which chunk depends on timing: ``work`` must give the same result whatever
    share it gets (write each chunk's own part of the output, or use :func:`sum_chunks`).
    """
    threads = get_num_threads() if workers is None else max(1, min(workers, get_num_threads()))
    threads = min(threads, len(chunks))
    deterministic = _state["deterministic"]
    blas: Any = _blas() if threads > 1 or deterministic else False
    if not blas:  # one chunk: its GEMMs may use BLAS's own threads (batch-1 inference)
        return [work(iter(chunks))]
    if threads <= 1:  # deterministic: one BLAS thread, as each thread's GEMMs get below
        with blas.limit(limits=1):
            return [work(iter(chunks))]
    with _lock:
        pool = _state["pool"]
        if pool is None or pool._max_workers < threads - 1:
            from concurrent.futures import ThreadPoolExecutor  # not at import: it costs ~10 ms

            pool = _state["pool"] = ThreadPoolExecutor(
                max(1, get_num_threads() - 1), thread_name_prefix="wally"
            )
    shared = _Shared(chunks)
    with blas.limit(limits=1):
        futures = [pool.submit(work, shared) for _ in range(threads - 1)]
        results = [work(shared)]
        results += [future.result() for future in futures]
    return results


class _Aborted(Exception):
    """Raised in the other threads of a :func:`sum_chunks` whose ``work`` failed."""


class _OrderedSum:
    """Partials folded into a total in chunk order, whichever thread hands them over first.

    :meth:`put` parks a partial until every chunk before it has been folded; the thread that
    hands over the next chunk in order folds it and every parked one that follows.  At most
    ``capacity`` partials wait at once: a thread whose partial finds no room waits for the
    chunks before it (a thread the OS holds back stalls the others only after that).
    """

    def __init__(self, fold: Callable[[Any], None], capacity: int) -> None:
        self._fold = fold
        self._capacity = max(1, capacity)
        self._next = 0
        self._parked: dict[int, Any] = {}
        self._folding = False
        self._failed = False
        self._waiting = 0
        self._cond = threading.Condition(threading.Lock())

    def put(self, index: int, value: Any) -> None:
        cond = self._cond
        with cond:
            while not self._failed and index != self._next and len(self._parked) >= self._capacity:
                self._waiting += 1
                cond.wait()
                self._waiting -= 1
            if self._failed:
                raise _Aborted
            self._parked[index] = value
            if self._folding:
                return  # the thread folding now takes it in its turn
            self._folding = True
            try:
                while self._next in self._parked and not self._failed:
                    item = self._parked.pop(self._next)
                    cond.release()
                    try:
                        self._fold(item)
                    finally:
                        cond.acquire()
                    self._next += 1
                    if self._waiting:
                        cond.notify_all()
            finally:
                self._folding = False

    def abort(self) -> None:
        with self._cond:
            self._failed = True
            self._parked.clear()
            self._cond.notify_all()

    @property
    def folded(self) -> int:
        return self._next


def sum_chunks(
    work: Callable[[Iterator[T], Callable[[int, Any], None]], None],
    jobs: Sequence[T],
    fold: Callable[[Any], None],
    parts: int,
    *,
    partial_bytes: int,
    workers: int | None = None,
) -> None:
    """Sum partial results in a fixed order on :func:`run_chunks`'s threads.

    ``work(jobs, put)`` takes jobs from the shared iterator ``jobs`` and hands over partials
    with ``put(index, partial)``: ``parts`` of them in all, numbered ``0 … parts − 1`` in the
    order of ``jobs`` (a job may hand over several, in order).  ``fold(partial)`` adds one into
    the caller's total; it is called once per partial, in index order, one call at a time,
    so the total is the one a single thread computes chunk after chunk, bit for bit, at any
    number of threads (the partials themselves must not depend on the thread computing them).
    Small partials (``parts × partial_bytes`` up to ``tuning.GATHERED_BYTES``) are kept, each in its
    own slot, and folded once every thread is done: no lock per chunk (that cost LeNet's first
    layer 5% at 2 threads, measured).  Larger ones are folded as they come: a partial handed
    over early waits for its turn, as many as ``tuning.PARKED_BYTES`` hold and at least one per
    thread.  A thread that finds no room waits for the partials before its own; there is room
    enough that a thread the OS holds back rarely stalls the others (room for two per thread
    stalled a 64-channel layer's weight gradient for a third of its time on a loaded two-core
    machine, measured).
    """
    threads = get_num_threads() if workers is None else max(1, min(workers, get_num_threads()))
    if min(threads, len(jobs)) <= 1 or not _blas():  # one thread: the partials come in order

        def in_order(index: int, partial: Any) -> None:
            fold(partial)

        run_chunks(lambda items: work(items, in_order), jobs, workers=workers)
        return
    if parts * partial_bytes <= tuning.GATHERED_BYTES:
        slots: list[Any] = [None] * parts

        def keep(index: int, partial: Any) -> None:
            slots[index] = partial

        run_chunks(lambda items: work(items, keep), jobs, workers=workers)
        for partial in slots:
            fold(partial)
        return
    room = max(threads, tuning.PARKED_BYTES // max(1, partial_bytes))
    total = _OrderedSum(fold, min(room, parts))

    def guarded(items: Iterator[T]) -> None:
        try:
            work(items, total.put)
        except _Aborted:
            return
        except BaseException:
            total.abort()
            raise

    run_chunks(guarded, jobs, workers=workers)
    if total.folded != parts:  # pragma: no cover - a work that skipped a partial
        raise RuntimeError(f"sum_chunks: {total.folded} of {parts} partials were summed")


# ----- per-thread scratch buffers ---------------------------------------------------------------
_local = threading.local()
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
        if buffer.nbytes <= tuning.WORKSPACE_BYTES:
            buffers[key] = buffer
    return buffer[:size]


# ----- large allocations, refused up front -------------------------------------------------------
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


def format_bytes(nbytes: int) -> str:
    """``nbytes`` in the largest binary unit it reaches: ``"1.5 MiB"``, ``"512 B"``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def allocate(
    op: str, what: str, shape: Sequence[int], dtype: Any, *, zeros: bool = False,
    extra: int = 0,
) -> ndarray:
    """``xp.empty(shape, dtype)`` (``xp.zeros`` with ``zeros``) for ``op``'s ``what`` (its
    output, an input gradient), refused up front with a ``MemoryError`` naming ``op``, the
    shape and the bytes when it (plus ``extra`` bytes of workspace the op still needs) cannot
    fit in :func:`available_memory`; NumPy's own ``MemoryError`` is given the same message."""
    dtype = xp.dtype(dtype)
    nbytes = math.prod(int(n) for n in shape) * dtype.itemsize
    if nbytes + extra >= tuning.CHECKED_BYTES:
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
    needs = f"{nbytes} bytes ({format_bytes(nbytes)})"
    if extra:
        needs += f" plus {format_bytes(extra)} of workspace"
    if available is None:
        where = "the system could not allocate it"
    else:
        where = f"only {available} bytes ({format_bytes(available)}) of memory are available"
    return (
        f"{op}: the {what} of shape {tuple(int(n) for n in shape)} ({dtype}) needs {needs}, "
        f"but {where}; use a smaller input (fewer images, a smaller image) or more memory"
    )


# ----- GEMMs split by rows ----------------------------------------------------------------------
def matmul(a: ndarray, b: ndarray) -> ndarray:
    """``a @ b`` for 2-D arrays, its rows split among the chunked kernels' threads.

    Each thread multiplies a block of ``a``'s rows with a single-threaded BLAS.  For the
    mid-sized GEMMs of a small network (LeNet's linear layers at batch 256) this is much
    steadier than OpenBLAS's own threads on a busy machine, where a GEMM waits at a barrier
    for a thread the OS has not yet run (measured: LeNet's linear backward took longer than
    its convolutions).  Below ``tuning.SPLIT_MACS`` multiply-adds the hand-off costs more than
    the second thread saves, and the GEMM runs on the calling thread with BLAS held to one
    thread too, so OpenBLAS's threads don't wake and spin on the cores the chunked kernels use.
    Where oneDNN is installed and switched on, a float32 product of at least
    ``tuning.ONE_THREAD_MACS`` at more than one thread (and not under
    :func:`use_deterministic_algorithms`) runs as its matmul on its OpenMP threads instead.
    """
    rows = a.shape[0]
    macs = rows * a.shape[1] * b.shape[1]
    if macs < tuning.ONE_THREAD_MACS:  # checked first: batch-1 layers end here
        with one_blas_thread(macs):
            return backend.matmul(a, b)
    threads = min(get_num_threads(), rows)
    deterministic = _state["deterministic"]
    if threads > 1 and not deterministic:
        product = _onednn_matmul(a, b, get_num_threads())
        if product is not None:
            return product
    blas = _blas()
    if not blas or (threads <= 1 and not deterministic):
        return backend.matmul(a, b)
    if macs < tuning.SPLIT_MACS and not deterministic:
        with blas.limit(limits=1):
            return backend.matmul(a, b)
    out = xp.empty((rows, b.shape[1]), dtype=xp.result_type(a, b))
    # Two blocks per thread, so a late thread takes fewer; deterministic, a fixed number of
    # blocks (OpenBLAS may sum a block of other rows in another order, measured).
    count = tuning.DETERMINISTIC_BLOCKS if deterministic else 2 * threads
    step = -(-rows // count)

    def work(blocks: Iterator[slice]) -> None:
        for block in blocks:
            backend.matmul(a[block], b, out=out[block])

    run_chunks(work, [slice(r, min(r + step, rows)) for r in range(0, rows, step)])
    return out


def _onednn_matmul(a: ndarray, b: ndarray, threads: int) -> ndarray | None:
    """``a @ b`` as oneDNN's matmul on ``threads`` OpenMP threads (float32, oneDNN switched on and
    installed, each matrix row- or column-major), else ``None``.  Its threads are the ones the
    convolutions already keep awake; OpenBLAS's would spin on the cores wally's own threads
    need, and held to one thread the product does not scale (measured: ``tuning``'s note on
    ``ONE_THREAD_MACS``)."""
    from wally.backends import onednn

    if a.dtype != xp.float32 or b.dtype != xp.float32 or not onednn.is_switched_on():
        return None
    plan = onednn.matmul_plan(a, b, threads)
    if plan is None:
        return None
    return plan.run(a, b, xp.empty((a.shape[0], b.shape[1]), dtype=xp.float32))


def one_blas_thread(macs: int | None = None) -> contextlib.AbstractContextManager[Any]:
    """BLAS held to one thread while wally's chunked kernels use several, or under
    :func:`use_deterministic_algorithms` (a no-op otherwise, and for a product of ``macs``
    multiply-adds that OpenBLAS runs on one thread anyway: below ``tuning.BLAS_THREADED_MACS``,
    where a limit's ~7 µs would cost more than the GEMM).

    For the BLAS calls a kernel makes outside :func:`run_chunks` (which limits its own): a
    threaded GEMM leaves OpenBLAS's threads spinning on the cores the next kernel's threads
    need (the module's docstring).
    """
    blas: Any = _blas() if get_num_threads() > 1 or _state["deterministic"] else False
    if not blas or (macs is not None and macs < tuning.BLAS_THREADED_MACS):
        return contextlib.nullcontext()
    limit: contextlib.AbstractContextManager[Any] = blas.limit(limits=1)
    return limit


# ----- element-wise work split by rows ----------------------------------------------------------
def elementwise(fn: Callable[..., Any], out: ndarray, *inputs: ndarray) -> ndarray:
    """``fn(out, *inputs)``, which writes each row of ``out`` (its first axis) from the same
    rows of ``inputs`` (as many rows as ``out``: the same shape for element-wise work, or more
    axes to reduce), run on blocks of rows among the chunked kernels' threads; returns ``out``.

    NumPy releases the GIL inside its loops, so each thread's block runs in parallel.  Every
    row goes through the same loop whichever block holds it: the same bits at any thread
    count.  Work on under ``tuning.ELEMENTWISE_BYTES`` (the largest array) runs on the calling
    thread, where a thread hand-off costs more than it saves.
    """
    rows = out.shape[0] if out.ndim else 1
    threads = min(get_num_threads(), rows)
    size = max([out.nbytes, *(a.nbytes for a in inputs)])
    if threads <= 1 or size < tuning.ELEMENTWISE_BYTES:
        fn(out, *inputs)
        return out
    step = -(-rows // (2 * threads))  # two blocks per thread: a late thread takes fewer

    def work(blocks: Iterator[slice]) -> None:
        for block in blocks:
            fn(out[block], *(a[block] for a in inputs))

    run_chunks(work, [slice(r, min(r + step, rows)) for r in range(0, rows, step)])
    return out
