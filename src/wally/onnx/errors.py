"""The error :func:`wally.onnx.export` raises for what ONNX cannot express."""

from __future__ import annotations

__all__ = ["UnsupportedOperatorError"]


class UnsupportedOperatorError(ValueError):
    """A layer or an operation of the traced model has no ONNX translation.

    The message names the operation (``wally.ops.Flip``), the module whose forward ran it
    (``features.3 (MyBlock)``) and what is missing, so the user knows which line to change.
    """
