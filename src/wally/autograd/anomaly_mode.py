"""Anomaly mode: stop at the first op that turns finite values into NaN or Inf
(``torch.autograd.anomaly_mode``). ``Function.__call__`` and the backward loop call
:func:`check_forward` / :func:`check_backward` only while ``_anomaly["enabled"]``."""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any

from wally.backend import ndarray, xp

if TYPE_CHECKING:
    from wally.autograd.function import Function

__all__ = ["AnomalyError", "detect_anomaly"]


class AnomalyError(RuntimeError):
    """Raised under :class:`detect_anomaly` by the first op whose result is NaN or infinite."""


_anomaly = {"enabled": False}


class detect_anomaly:  # noqa: N801 - PyTorch's name
    """Context manager (or decorator): stop at the first op that turns finite values into NaN or
    Inf, in the forward or the backward pass, naming it and where it was called.

    >>> with wally.autograd.detect_anomaly():
    ...     wally.tensor([-1.0]).log()     # AnomalyError: Log returned nan in its forward pass
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> None:
        self._previous = _anomaly["enabled"]
        _anomaly["enabled"] = self.check_nan

    def __exit__(self, *exc: object) -> None:
        _anomaly["enabled"] = self._previous

    def __call__(self, func: Any) -> Any:
        import functools

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly(self.check_nan):
                return func(*args, **kwargs)

        return wrapper


def _all_finite(arrays: Any) -> bool:
    # xp.generic too: a ufunc on a 0-d array returns a NumPy scalar, not an ndarray.
    return all(
        not (isinstance(a, (ndarray, xp.generic)) and a.dtype.kind in "fc")
        or bool(xp.isfinite(a).all())
        for a in arrays
    )


def _check_anomaly(fn: Function, inputs: Any, outputs: Any, phase: str) -> None:
    """Raise if ``fn`` made non-finite ``outputs`` from finite ``inputs`` (anomaly mode only)."""
    if _all_finite(inputs):
        for index, y in enumerate(outputs):
            if (isinstance(y, (ndarray, xp.generic)) and y.dtype.kind in "fc"
                    and not xp.isfinite(y).all()):
                kind = "nan" if xp.isnan(y).any() else "inf"
                where = "".join(getattr(fn, "_created_at", []) or [])
                raise AnomalyError(
                    f"Function '{fn.name}' returned {kind} values in its {index}th "
                    f"{'output' if phase == 'forward' else 'gradient'} during the {phase} pass, "
                    f"from finite inputs."
                    + (f" The op was called at:\n{where}" if where else "")
                )




def check_forward(fn: Function, inputs: Any, outputs: Any) -> None:
    """Remember where ``fn`` was called (for the message), then check its outputs."""
    fn._created_at = traceback.format_stack(limit=9)[:-2]
    _check_anomaly(fn, inputs, outputs, "forward")


def check_backward(fn: Function, grad_outputs: Any, grads_in: Any) -> None:
    _check_anomaly(fn, grad_outputs, grads_in, "backward")
