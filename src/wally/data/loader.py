"""``DataLoader``: batches from a dataset, prepared one step ahead in a background thread.

One epoch runs in three places:

1. ``iter(loader)``, in the caller's thread, draws everything random the epoch needs from wally's
   global generator (the shuffle order and a seed for random transforms), so ``wally.manual_seed``
   makes a run repeat exactly, however the threads are scheduled.
2. One background thread turns index lists into batches and puts them on a queue holding at most
   ``prefetch`` batches; the model meanwhile trains on the previous one.
3. ``next()`` takes batches off the queue in order. An exception raised while preparing a batch
   is re-raised there with its original traceback; abandoning the iterator (``break``, or the
   iterator being garbage collected) stops the thread.

``prefetch=0`` prepares each batch in the caller's thread instead, and gives the same batches.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

from wally.backend import xp
from wally.data._random import using_generator
from wally.data.collate import default_collate, default_convert
from wally.data.dataset import resolve_generator
from wally.data.sampler import BatchSampler, RandomSampler, SequentialSampler

_DONE = object()
_PUT_POLL_SECONDS = 0.05


class _Failure:
    """An exception raised in the background thread, carried to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class DataLoader:
    """Iterate over ``dataset`` in batches, like ``torch.utils.data.DataLoader``.

    Args:
        dataset: a map-style dataset (``__getitem__`` and ``__len__``).
        batch_size: samples per batch; ``None`` yields single samples, unbatched.
        shuffle: visit the samples in a new random order every epoch.
        sampler: an iterable of indices (exclusive with ``shuffle``).
        batch_sampler: an iterable of index lists (exclusive with ``batch_size``, ``shuffle``,
            ``sampler`` and ``drop_last``).
        collate_fn: turns a list of samples into a batch (default :func:`default_collate`).
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        generator: a ``numpy.random.Generator`` or an int seed for the shuffle order and the
            random transforms. By default every epoch draws a seed from wally's global
            generator, so ``wally.manual_seed`` makes runs reproducible.
        prefetch: how many batches the background thread may prepare ahead (``0``: none, no
            thread, every batch is made in the caller's thread when it is asked for).
        num_workers, pin_memory, timeout, multiprocessing_context, prefetch_factor,
        persistent_workers, pin_memory_device: accepted so PyTorch code runs unchanged; wally
            always uses the one background thread described above.
        worker_init_fn: called with ``0`` in the thread that prepares batches, at the start of
            every epoch.

    Datasets that offer ``_get_batch(indices)`` (``TensorDataset``, ``Subset`` of one, and the
    bundled image datasets with deterministic transforms) are batched with one array index per
    batch instead of per-item collation; the batches are identical.

    >>> dataset = wally.data.TensorDataset(wally.arange(10), wally.arange(10) * 2)
    >>> loader = DataLoader(dataset, batch_size=4, shuffle=True, generator=0)
    >>> len(loader), [x.shape for x, y in loader]
    (3, [(4,), (4,), (2,)])
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = False,
        sampler: Iterable[Any] | None = None,
        batch_sampler: Iterable[list[int]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        prefetch: int = 2,
    ) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative integer, got "
                             f"{num_workers!r}")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"DataLoader: prefetch must be a non-negative integer, got "
                             f"{prefetch!r}")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout must be non-negative, got {timeout!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is "
                             "mutually exclusive with drop_last")

        self.generator = None if generator is None else resolve_generator(generator,
                                                                          "DataLoader")
        if sampler is None:
            if shuffle:
                sampler = RandomSampler(dataset, generator=self.generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.prefetch = prefetch

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self) -> Iterable[Any]:
        return self.batch_sampler if self.batch_sampler is not None else self.sampler

    def __len__(self) -> int:
        sampler = self._index_sampler
        if not isinstance(sampler, Sized):
            raise TypeError(f"DataLoader: {type(sampler).__name__} has no len()")
        return len(sampler)

    def __iter__(self) -> Iterator[Any]:
        # Both draws happen here, in the caller's thread: see the module docstring.
        indices = iter(self._index_sampler)
        seed = int(resolve_generator(self.generator, "DataLoader").integers(2**63))
        batches = _produce(self._fetcher(), indices, xp.random.default_rng(seed),
                           self.worker_init_fn)
        try:
            length: int | None = len(self)
        except TypeError:
            length = None
        if self.prefetch == 0:
            return _SyncIterator(batches, length)
        return _PrefetchIterator(batches, self.prefetch, length)

    def _fetcher(self) -> Callable[[Any], Any]:
        dataset = self.dataset
        if not self._auto_collation:
            convert = default_convert if self.collate_fn is None else self.collate_fn
            return lambda index: convert(dataset[index])

        collate = default_collate if self.collate_fn is None else self.collate_fn
        get_batch = getattr(dataset, "_get_batch", None) if collate is default_collate else None

        def fetch(indices: list[int]) -> Any:
            if get_batch is not None:
                batch = get_batch(xp.asarray(indices, dtype=xp.intp))
                if batch is not None:
                    return batch
            return collate([dataset[i] for i in indices])

        return fetch

    def __repr__(self) -> str:
        return (f"DataLoader(dataset={type(self.dataset).__name__}, batch_size={self.batch_size}, "
                f"sampler={type(self.sampler).__name__}, prefetch={self.prefetch})")


def _produce(fetch: Callable[[Any], Any], indices: Iterator[Any], rng: Any,
             worker_init_fn: Callable[[int], None] | None) -> Iterator[Any]:
    """The epoch's batches, in sampler order. Runs wholly in one thread (background or not)."""
    if worker_init_fn is not None:
        with using_generator(rng):
            worker_init_fn(0)
    for index in indices:
        # Set per batch, not around the loop: between batches a synchronous loader is back in
        # the caller's code, which must see wally's global generator.
        with using_generator(rng):
            batch = fetch(index)
        yield batch


class _SyncIterator:
    """Batches made on demand in the caller's thread (``prefetch=0``)."""

    def __init__(self, batches: Iterator[Any], length: int | None) -> None:
        self._batches = batches
        self._length = length

    def __iter__(self) -> _SyncIterator:
        return self

    def __next__(self) -> Any:
        return next(self._batches)

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("this DataLoader's sampler has no len()")
        return self._length


class _PrefetchIterator:
    """Batches made ahead by one background thread, handed over through a bounded queue.

    The thread holds the queue, a stop event and the batch generator, never this object, so
    dropping the iterator (``break`` out of a ``for`` loop) lets it be collected, and its
    finaliser stops the thread.
    """

    def __init__(self, batches: Iterator[Any], prefetch: int, length: int | None) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._length = length
        self._finished = False
        self._thread = threading.Thread(
            target=_fill, args=(batches, self._queue, self._stop),
            name="wally-DataLoader", daemon=True,
        )
        self._thread.start()
        # Garbage collection only signals the thread: joining from a finaliser, which may run
        # at any allocation in any thread, risks deadlock. The thread exits after at most the
        # batch it is preparing.
        self._finalizer = weakref.finalize(self, _signal_stop, self._stop, self._queue)
        self._finalizer.atexit = False

    def __iter__(self) -> _PrefetchIterator:
        return self

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        while True:
            try:
                item = self._queue.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self.close()
                    raise RuntimeError("DataLoader: the background thread exited without "
                                       "finishing the epoch") from None
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            error = item.error
            if hasattr(error, "add_note"):
                error.add_note("(raised while the DataLoader prepared a batch in its background "
                               "thread)")
            raise error
        return item

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("this DataLoader's sampler has no len()")
        return self._length

    def close(self) -> None:
        """Stop the background thread and wait for it to finish the batch it is preparing."""
        self._finished = True
        _signal_stop(self._stop, self._queue)
        self._finalizer.detach()
        if self._thread is not threading.current_thread():
            self._thread.join()


def _fill(batches: Iterator[Any], out: queue.Queue[Any], stop: threading.Event) -> None:
    """Background thread body: put batches (then ``_DONE`` or a failure) until told to stop."""
    try:
        for batch in batches:
            if not _put(out, batch, stop):
                return
        _put(out, _DONE, stop)
    except BaseException as error:  # every failure, KeyboardInterrupt too, goes to the consumer
        _put(out, _Failure(error), stop)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _put(out: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put ``item`` on the queue; False once ``stop`` is set (the consumer is gone)."""
    while not stop.is_set():
        try:
            out.put(item, timeout=_PUT_POLL_SECONDS)
        except queue.Full:
            continue
        return not stop.is_set()
    return False


def _signal_stop(stop: threading.Event, pending: queue.Queue[Any]) -> None:
    stop.set()
    # Emptying the queue frees the prepared batches and unblocks a put in progress at once.
    while True:
        try:
            pending.get_nowait()
        except queue.Empty:
            break
