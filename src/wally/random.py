"""The global random generator (PyTorch's ``torch.random``): one ``numpy.random.Generator``
that ``rand``, ``randn``, the initialisers, dropout and ``Tensor.normal_`` draw from, seeded by
:func:`manual_seed`. It imports nothing of wally's but the backend, so the tensor module can use it
without importing the factories."""

from __future__ import annotations

from typing import Any

from wally.backend import xp

__all__ = ["manual_seed", "generator", "get_rng_state", "set_rng_state"]

_generator = xp.random.default_rng()


def manual_seed(seed: Any) -> Any:
    """Seed the global generator used by ``rand``, ``randn``, initialisers and dropout.

    As in PyTorch, ``seed`` is any integer from ``-2**63`` to ``2**64 - 1``; a negative one is
    taken modulo ``2**64`` (``-1`` seeds as ``2**64 - 1``), and others raise ``ValueError``.
    """
    global _generator
    try:
        value = int(seed)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"manual_seed: expected an integer seed, got {type(seed).__name__} "
                        f"{str(seed)[:40]}") from None
    if not -(1 << 63) <= value < 1 << 64:
        shown = str(value) if abs(value) < 10**40 else f"an integer of {value.bit_length()} bits"
        raise ValueError(f"manual_seed: the seed must be from -2**63 to 2**64 - 1 (as in "
                         f"PyTorch), got {shown}")
    _generator = xp.random.default_rng(value % (1 << 64))
    return _generator


def generator() -> Any:
    """The global ``numpy.random.Generator`` (reseeded by :func:`manual_seed`)."""
    return _generator


def get_rng_state() -> dict[str, Any]:
    """The global generator's state, JSON-serialisable (for checkpoints)."""
    return dict(_generator.bit_generator.state)


def set_rng_state(state: dict[str, Any]) -> None:
    _generator.bit_generator.state = state
