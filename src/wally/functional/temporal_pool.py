"""Max-over-time pooling (Collobert et al. 2011, Kim 2014): each channel's largest value over
the valid steps of its sequence, so a batch of texts of different lengths, padded to one length,
is pooled as if each stood alone.

    ``y[n, c] = max_{t valid for n} x[n, c, t]``

The steps of row ``n`` that count are the first ``lengths[n]`` (``lengths`` given), those where
``mask[n, t]`` is non-zero (``mask`` given), or all of them. Padding never wins: the masked
steps are ``−∞`` before the maximum. The gradient goes to the arg-max only (the first one on a
tie, as ``torch.max(x, dim)`` picks its index); every other step gets zero.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wally.autograd import Function
from wally.backend import ndarray, xp

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = ["max_over_time", "lengths_to_mask"]


class MaxOverTime(Function):
    """``y[n, c] = max over the valid t of x[n, c, t]``; ``mask`` (N, L) marks the valid steps."""

    def forward(self, x: ndarray, mask: ndarray | None = None) -> ndarray:
        self.input_shape = x.shape
        self.mask = mask  # for ONNX export
        if mask is not None:
            valid = mask[:, None, :] != 0
            x = xp.where(valid, x, xp.asarray(-xp.inf, dtype=x.dtype))
        self.arg = xp.argmax(x, axis=2)  # the first maximum; NaN wins, as in PyTorch
        return xp.take_along_axis(x, self.arg[:, :, None], axis=2)[:, :, 0]

    def backward(self, gy: ndarray) -> ndarray | tuple[ndarray, None]:
        gx = xp.zeros(self.input_shape, dtype=gy.dtype)
        xp.put_along_axis(gx, self.arg[:, :, None], gy[:, :, None], axis=2)
        return gx if self.mask is None else (gx, None)  # the mask gets no gradient


def lengths_to_mask(lengths: Any, steps: int) -> ndarray:
    """``mask[n, t] = t < lengths[n]``, a bool array ``(N, steps)``."""
    lengths = xp.asarray(getattr(lengths, "array", lengths))
    return xp.arange(steps)[None, :] < lengths[:, None]


def max_over_time(input: Tensor, lengths: Any = None, mask: Any = None) -> Tensor:
    """Max-over-time pooling (module docs): ``y[n, c] = max_{t < lengths[n]} x[n, c, t]``.

    Args:
        input: ``(N, C, L)`` float.
        lengths: ``(N,)`` integers from 1 to ``L`` (a tensor, array or list): row ``n`` counts
            its first ``lengths[n]`` steps. None: all ``L`` (PyTorch's ``x.amax(dim=2)``).
        mask: instead of ``lengths``, ``(N, L)``: the steps where it is non-zero count (a
            tensor, so that an exported graph computes it from its input). Every row needs one.

    Shape:
        input ``(N, C, L)`` → output ``(N, C)``.

    Example::

        >>> x = wally.tensor([[[1.0, 5.0, 9.0], [4.0, 2.0, 0.0]]])
        >>> F.max_over_time(x, lengths=[2])      # step 2 (the 9) is padding
        tensor([[5., 4.]])
    """
    from wally.tensor import Tensor

    if not isinstance(input, Tensor):
        raise TypeError(f"max_over_time: expected a Tensor input, got {type(input).__name__}")
    if input.ndim != 3 or input.dtype.kind != "f":
        raise ValueError(f"max_over_time: expected a float input (N, C, L), got "
                         f"{input.dtype} {tuple(input.shape)}")
    n, _, steps = input.shape
    if steps == 0:
        raise ValueError("max_over_time: the input has no time steps (L = 0)")
    if lengths is not None and mask is not None:
        raise ValueError("max_over_time: pass lengths or mask, not both")
    if lengths is not None:
        values = xp.asarray(getattr(lengths, "array", lengths))
        if values.shape != (n,) or values.dtype.kind not in "iu":
            raise ValueError(f"max_over_time: lengths must be {n} integers (one per row), got "
                             f"{values.dtype} {values.shape}")
        bad = (values < 1) | (values > steps)
        if bad.any():
            row = int(xp.argmax(bad))
            raise ValueError(f"max_over_time: lengths[{row}] is {int(values[row])}, expected "
                             f"1 to {steps} (the input's L)")
        return MaxOverTime()(input, lengths_to_mask(values, steps))
    if mask is not None:
        array = getattr(mask, "array", mask)
        array = xp.asarray(array)
        if array.shape != (n, steps):
            raise ValueError(f"max_over_time: mask must be (N, L) = {(n, steps)}, got "
                             f"{tuple(array.shape)}")
        empty = ~(array != 0).any(axis=1)
        if empty.any():
            raise ValueError(f"max_over_time: row {int(xp.argmax(empty))} of the mask has no "
                             "valid step; every row needs at least one")
        return MaxOverTime()(input, mask if isinstance(mask, Tensor) else array)
    return MaxOverTime()(input)
