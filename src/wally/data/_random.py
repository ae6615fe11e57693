"""Where random transforms get their random numbers.

Outside a :class:`~wally.data.DataLoader`, :func:`generator` is wally's global generator, so
``wally.manual_seed`` fixes every random crop and flip. While a loader prepares a batch it
installs a generator of its own, seeded from the global one when the epoch starts, in the
thread that prepares the batch. The model's own draws (dropout, initialisation) in the main
thread then never interleave with the transforms' draws, so a run is reproducible whether
batches are prepared in the background or synchronously.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from wally import creation

_loader_generator: ContextVar[Any] = ContextVar("wally_data_generator", default=None)


def generator() -> Any:
    """The ``numpy.random.Generator`` that random transforms draw from.

    Inside a DataLoader's batch preparation this is the loader's per-epoch generator; anywhere
    else it is wally's global generator (``wally.creation.generator()``).

    >>> wally.data.generator() is wally.creation.generator()   # outside a loader
    True
    """
    override = _loader_generator.get()
    return creation.generator() if override is None else override


@contextmanager
def using_generator(rng: Any) -> Iterator[None]:
    """Make :func:`generator` return ``rng`` in this thread for the duration of the block."""
    token = _loader_generator.set(rng)
    try:
        yield
    finally:
        _loader_generator.reset(token)
