"""Grad modes: whether operations are recorded for differentiation (``torch.autograd.grad_mode``).

One thread-local flag, ``_state.grad_enabled``, read by every :class:`~wally.autograd.Function`
call; ``no_grad``, ``enable_grad``, ``set_grad_enabled`` and ``inference_mode`` set it for a block
or a function and put it back afterwards.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled"]


class _GradState(threading.local):
    grad_enabled = True  # the class attributes are every new thread's defaults
    inference = False
    # Set only by wally.tracing.record_calls, for the tools that read a forward pass's graph:
    # TRACE_FLOAT (summary, receptive fields, cost) records a node for every op with a
    # floating-point operand, a frozen layer's included; TRACE_ALL (the ONNX tracer, for an
    # integer input) every op, integer results too. Whether a tensor requires grad is unchanged.
    tracing = 0


TRACE_FLOAT = 1
TRACE_ALL = 2


_state = _GradState()


def is_grad_enabled() -> bool:
    """Whether operations are being recorded for differentiation (per thread, as in PyTorch)."""
    return _state.grad_enabled


def is_inference_mode_enabled() -> bool:
    """Whether the innermost :class:`inference_mode` block is on."""
    return _state.inference


def _wrap_in(make_context: Any, func: Any) -> Any:
    """``func`` running inside a fresh ``make_context()`` on every call (the decorator form)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with make_context():
            return func(*args, **kwargs)

    return wrapper


class _GradMode:
    """Base of ``no_grad`` and ``enable_grad``: a context manager that also decorates functions,
    written ``@no_grad()`` or, as PyTorch allows, ``@no_grad``."""

    mode = True

    def __new__(cls, func: Any = None) -> Any:
        if func is None:
            return super().__new__(cls)
        return cls()(func)  # ``@no_grad`` without parentheses

    def __enter__(self) -> None:
        self._previous = _state.grad_enabled
        _state.grad_enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self._previous

    def __call__(self, func: Any) -> Any:
        return _wrap_in(type(self), func)


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context manager (or decorator) that records nothing: results have no ``grad_fn``.

    >>> with wally.no_grad():
    ...     y = w * 2          # y.requires_grad is False
    """

    mode = False


class enable_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context manager (or decorator) that turns recording back on inside ``no_grad``."""

    mode = True


class set_grad_enabled:  # noqa: N801 - PyTorch's name
    """Turn recording on or off: at once when called (``set_grad_enabled(False)``), for a block
    (``with set_grad_enabled(is_train):``, restoring the previous mode at its end), or for a
    function (``@set_grad_enabled(False)``), as in PyTorch."""

    def __init__(self, mode: bool) -> None:
        self.prev = _state.grad_enabled
        self.mode = bool(mode)
        _state.grad_enabled = self.mode

    def __enter__(self) -> None:
        _state.grad_enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self.prev

    def __call__(self, func: Any) -> Any:
        _state.grad_enabled = self.prev  # as a decorator it changes nothing until func runs
        mode = self.mode
        return _wrap_in(lambda: set_grad_enabled(mode), func)

    def __repr__(self) -> str:
        return f"wally.autograd.set_grad_enabled(mode={self.mode})"


class inference_mode:  # noqa: N801 - PyTorch's name
    """Context manager (or decorator, ``@inference_mode()`` or ``@inference_mode``) for code that
    never needs gradients: nothing is recorded, as under :class:`no_grad`.

    ``inference_mode(False)`` turns recording back on, as PyTorch's does. Unlike PyTorch, the
    tensors made inside are ordinary tensors (PyTorch marks them as inference tensors that
    autograd later refuses); wally has no faster path to gain from that mark.
    """

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode):
            return cls()(mode)  # ``@inference_mode`` without parentheses
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        self.mode = mode

    def __enter__(self) -> None:
        self._previous = (_state.grad_enabled, _state.inference)
        _state.grad_enabled, _state.inference = not self.mode, self.mode

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled, _state.inference = self._previous

    def __call__(self, func: Any) -> Any:
        mode = self.mode
        return _wrap_in(lambda: inference_mode(mode), func)


