"""The MPI world this process belongs to, and collective calls that cannot hang forever.

Whether MPI is used is decided from the environment *before* mpi4py is imported, because
importing ``mpi4py.MPI`` initialises MPI. A process started by a launcher (``mpiexec``,
``mpirun``, ``srun``) finds the launcher's variables in its environment (Open MPI sets
``OMPI_COMM_WORLD_SIZE``, MPICH's Hydra and Intel MPI ``PMI_SIZE``, MVAPICH ``MV2_COMM_WORLD_SIZE``,
PMIx launchers ``PMIX_RANK``); any other process is a world of one and never touches MPI.
``WALLY_DISTRIBUTED=0`` forces a world of one, ``WALLY_DISTRIBUTED=1`` forces mpi4py.

How a dead rank is noticed, so that the others exit instead of waiting forever:

1. A rank that crashes (a signal, ``os._exit``, the kernel's OOM killer) ends without
   ``MPI_Finalize``; the launcher (``mpiexec``) sees it and kills every other rank.
2. A rank whose interpreter exits while the others still train (an exception, ``sys.exit``)
   would hang in ``MPI_Finalize``, which waits for everyone. At exit it therefore sends every
   other rank a *leave notice* holding how many collective calls it completed, on a duplicate
   of the world communicator so it never mixes with the training traffic.
3. Every collective call here is non-blocking (``Iallreduce``, ``Ibcast``, ...), polled with
   ``Test`` until a deadline. While it waits a rank also checks for leave notices: one from a
   rank that completed fewer collectives than this one has started means the call can never
   finish, and the rank aborts at once. At the deadline (``timeout``, default 1800 s as in
   PyTorch, ``WALLY_DISTRIBUTED_TIMEOUT`` or ``init(timeout=...)``) it aborts too: that covers
   a rank that hangs without dying. Aborting prints one line saying which rank gave up waiting
   for what, then calls ``MPI_Abort``, which ends every rank of the job with exit code 1.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from typing import Any

from wally.backend import ndarray, xp

__all__ = [
    "DEFAULT_TIMEOUT", "all_reduce_sum", "barrier", "init", "is_available", "is_initialized",
    "rank", "world_size",
]

DEFAULT_TIMEOUT = 1800.0
# Variables holding the world size, then variables whose presence alone says "launched by MPI".
_LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
_LAUNCHER_MARKERS = ("PMIX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
_LEAVE_TAG = 7301
_POLL_FIRST_PAUSE = 1e-5
_POLL_MAX_PAUSE = 1e-3


class _World:
    """What :func:`init` found: the communicators (``None`` in a world of one) and the
    bookkeeping of the watchdog."""

    def __init__(self) -> None:
        self.rank = 0
        self.size = 1
        self.timeout = DEFAULT_TIMEOUT
        self.mpi: Any = None           # the mpi4py.MPI module
        self.comm: Any = None          # collectives of training
        self.control: Any = None       # leave notices only
        self.completed = 0             # collective calls completed on ``comm``
        self.notice: ndarray | None = None
        self.notice_request: Any = None


_world: _World | None = None


def _launcher_world_size() -> int | None:
    """The world size the launcher announced, 0 if launched but it did not say, None if this
    process was not started by an MPI launcher."""
    for name in _LAUNCHER_VARIABLES:
        value = os.environ.get(name)
        if value:
            try:
                return int(value)
            except ValueError:
                return 0
    if any(os.environ.get(name) for name in _LAUNCHER_MARKERS):
        return 0
    return None


def _read_timeout(timeout: float | None) -> float:
    if timeout is None:
        text = os.environ.get("WALLY_DISTRIBUTED_TIMEOUT")
        if not text:
            return DEFAULT_TIMEOUT
        try:
            timeout = float(text)
        except ValueError:
            raise ValueError(f"wally.distributed: WALLY_DISTRIBUTED_TIMEOUT must be a number of "
                             f"seconds, got {text!r}") from None
    if not timeout > 0:
        raise ValueError(f"wally.distributed: the timeout must be a positive number of seconds, "
                         f"got {timeout!r}")
    return float(timeout)


def is_available() -> bool:
    """Whether mpi4py can be imported (it is not imported, so MPI is not initialised)."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def is_initialized() -> bool:
    """Whether :func:`init` has run (in a world of one too)."""
    return _world is not None


def init(timeout: float | None = None) -> None:
    """Join the MPI job this process was launched in, or make a world of one.

    Idempotent; :func:`rank`, :func:`world_size` and every collective call it on first use, so
    a script need not. ``timeout`` (seconds, default ``WALLY_DISTRIBUTED_TIMEOUT`` or 1800) is
    how long a collective call waits for the other ranks before it aborts the whole job.

    Raises:
        RuntimeError: the launcher started several processes but mpi4py is missing, or mpi4py
            was built for another MPI than the launcher's (each process would see a world of
            one and train alone).
    """
    global _world
    if _world is not None:
        if timeout is not None:
            _world.timeout = _read_timeout(timeout)
        return
    world = _World()
    world.timeout = _read_timeout(timeout)
    switch = os.environ.get("WALLY_DISTRIBUTED", "").strip()
    expected = _launcher_world_size()
    if switch == "1" and expected is None:
        expected = 0
    if switch == "0" or expected is None or (expected == 1 and not is_available()):
        _world = world
        return
    try:
        from mpi4py import MPI
    except ImportError as error:
        count = f" with {expected} processes" if expected else ""
        raise RuntimeError(
            f"wally.distributed: this process was started by an MPI launcher{count} but "
            f"mpi4py cannot be imported ({error}); install it with: pip install 'wally-cnn[mpi]' "
            f"(or set WALLY_DISTRIBUTED=0 to train alone)"
        ) from None
    comm = MPI.COMM_WORLD
    if expected and expected > 1 and comm.Get_size() == 1:
        raise RuntimeError(
            f"wally.distributed: the launcher started {expected} processes, but mpi4py's MPI "
            f"({MPI.Get_library_version().splitlines()[0].strip()}) sees a world of one: mpi4py "
            f"was built for a different MPI than this mpiexec. Launch with the mpiexec of the "
            f"MPI mpi4py uses, or rebuild it: pip install --no-binary mpi4py --force-reinstall "
            f"mpi4py"
        )
    world.mpi, world.comm = MPI, comm
    world.rank, world.size = comm.Get_rank(), comm.Get_size()
    if world.size > 1:
        world.control = comm.Dup()
        world.notice = xp.zeros(2, dtype=xp.int64)
        world.notice_request = world.control.Irecv(world.notice, source=MPI.ANY_SOURCE,
                                                   tag=_LEAVE_TAG)
        atexit.register(_send_leave_notices, world)
    _world = world


def _get_world() -> _World:
    if _world is None:
        init()
    assert _world is not None
    return _world


def rank() -> int:
    """This process's rank, ``0 .. world_size() - 1`` (0 in a world of one)."""
    return _get_world().rank


def world_size() -> int:
    """How many processes train together (1 without ``mpiexec`` or without mpi4py)."""
    return _get_world().size


# ----- the watchdog --------------------------------------------------------------------------
def _abort(world: _World, message: str) -> None:
    print(f"wally.distributed: rank {world.rank} of {world.size}: {message}; aborting all "
          f"{world.size} ranks", file=sys.stderr, flush=True)
    sys.stdout.flush()
    world.comm.Abort(1)


def _wait(world: _World, request: Any, what: str) -> None:
    """Poll ``request`` (a collective on ``world.comm``) until it completes, aborting the job
    when a rank left before joining it or when the deadline passes."""
    started = time.monotonic()
    deadline = started + world.timeout
    pause = _POLL_FIRST_PAUSE
    while not request.Test():
        notice = world.notice
        if notice is not None and world.notice_request.Test():
            leaver, completed = int(notice[0]), int(notice[1])
            if completed <= world.completed:
                _abort(world, f"rank {leaver} exited after {completed} collective calls, while "
                              f"this rank waits for it in call {world.completed + 1} ({what})")
            # It left after joining this call (the end of a run): keep waiting for the rest.
            world.notice_request = world.control.Irecv(notice,
                                                       source=world.mpi.ANY_SOURCE,
                                                       tag=_LEAVE_TAG)
        if time.monotonic() > deadline:
            _abort(world, f"{what} waited {world.timeout:g} s for the other ranks (call "
                          f"{world.completed + 1}); one of them has hung or died. Set "
                          f"WALLY_DISTRIBUTED_TIMEOUT to wait longer")
        time.sleep(pause)
        pause = min(2 * pause, _POLL_MAX_PAUSE)
    world.completed += 1


def _send_leave_notices(world: _World) -> None:
    """At interpreter exit: tell every other rank how many collective calls this one joined."""
    if world.mpi.Is_finalized():  # the script called MPI.Finalize() itself
        return
    message = xp.array([world.rank, world.completed], dtype=xp.int64)
    requests = [world.control.Isend(message, dest=other, tag=_LEAVE_TAG)
                for other in range(world.size) if other != world.rank]
    # Eager sends of 16 bytes complete at once; a bound keeps exit from ever hanging here.
    deadline = time.monotonic() + 5.0
    while not world.mpi.Request.Testall(requests) and time.monotonic() < deadline:
        time.sleep(_POLL_MAX_PAUSE)
    if world.notice_request is not None:
        world.notice_request.Cancel()
        world.notice_request.Wait()
        world.notice_request, world.notice = None, None


# ----- collectives ---------------------------------------------------------------------------
def barrier() -> None:
    """Wait until every rank has called ``barrier()`` (no-op in a world of one)."""
    world = _get_world()
    if world.size == 1:
        return
    _wait(world, world.comm.Ibarrier(), "barrier")


def allreduce_in_place(buffer: ndarray, what: str) -> None:
    """Sum ``buffer`` (a contiguous array) over all ranks, in place, under the watchdog."""
    world = _get_world()
    if world.size == 1:
        return
    _wait(world, world.comm.Iallreduce(world.mpi.IN_PLACE, buffer), what)


def broadcast_in_place(buffer: ndarray, root: int, what: str) -> None:
    """Overwrite ``buffer`` on every rank with root's, under the watchdog."""
    world = _get_world()
    if world.size == 1:
        return
    _wait(world, world.comm.Ibcast(buffer, root=root), what)


def allgather(buffer: ndarray, what: str) -> ndarray:
    """Every rank's ``buffer`` stacked along a new first axis, in rank order."""
    world = _get_world()
    if world.size == 1:
        return buffer[None].copy()
    buffer = xp.ascontiguousarray(buffer)
    gathered = xp.empty((world.size,) + buffer.shape, dtype=buffer.dtype)
    _wait(world, world.comm.Iallgather(buffer, gathered), what)
    return gathered


def all_reduce_sum(values: Any) -> list[float]:
    """The element-wise sum over all ranks of a sequence of numbers (in float64).

    >>> loss_sum, count = all_reduce_sum([meter.loss_sum, meter.count])
    """
    buffer = xp.array([float(v) for v in values], dtype=xp.float64)
    allreduce_in_place(buffer, "all_reduce_sum")
    return [float(v) for v in buffer]
