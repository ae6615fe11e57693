"""``pad``: grow (or, with negative constant padding, crop) the trailing axes of a tensor.

Convolution layers with ``padding_mode`` other than ``'zeros'`` pad with this first and then
convolve without padding, as PyTorch does.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

from wally.autograd import Function
from wally.backend import ndarray, xp

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = ["pad"]

MODES = ("constant", "reflect", "replicate", "circular")
_ALL = slice(None)


class Pad(Function):
    """Pad the last ``len(pairs)`` axes; ``pairs`` holds one ``(left, right)`` per padded axis,
    in axis order (the reverse of ``pad``'s argument)."""

    def __init__(self, pairs: tuple[tuple[int, int], ...], mode: str, value: float) -> None:
        self.pairs = pairs
        self.mode = mode
        self.value = value

    def _axes(self, ndim: int) -> range:
        return range(ndim - len(self.pairs), ndim)

    def forward(self, x: ndarray) -> ndarray:
        self.input_shape = x.shape
        lead = x.ndim - len(self.pairs)
        out_shape = x.shape[:lead] + tuple(
            n + lo + hi for n, (lo, hi) in zip(x.shape[lead:], self.pairs, strict=True)
        )
        if self.mode == "constant":
            out = xp.full(out_shape, self.value, dtype=x.dtype)
            src, dst = self._crop(x.shape)
            out[dst] = x[src]
            return out
        out = xp.empty(out_shape, dtype=x.dtype)
        center = self._center(x.shape)
        out[center] = x
        # Axis by axis, fill the borders from the centre along that axis; axes already done are
        # used over their full (padded) extent, later ones over their centre only.
        for index, axis in enumerate(self._axes(x.ndim)):
            lo, hi = self.pairs[index]
            n = x.shape[axis]
            if self.mode == "reflect":
                left = xp.flip(out[_along(axis, lo + 1, 2 * lo + 1, center)], axis)
                right = xp.flip(out[_along(axis, lo + n - 1 - hi, lo + n - 1, center)], axis)
            elif self.mode == "replicate":
                left = out[_along(axis, lo, lo + 1, center)]
                right = out[_along(axis, lo + n - 1, lo + n, center)]
            else:  # circular
                left = out[_along(axis, n, lo + n, center)]
                right = out[_along(axis, lo, lo + hi, center)]
            out[_along(axis, 0, lo, center)] = left
            out[_along(axis, lo + n, lo + n + hi, center)] = right
        return out

    def backward(self, gy: ndarray) -> ndarray:
        if self.mode == "constant":
            src, dst = self._crop(self.input_shape)
            if all(lo >= 0 and hi >= 0 for lo, hi in self.pairs):
                return gy[dst].copy()
            gx = xp.zeros(self.input_shape, dtype=gy.dtype)
            gx[src] = gy[dst]
            return gx
        g = gy.copy()
        center = self._center(self.input_shape)
        ndim = len(self.input_shape)
        # The adjoint of forward: axes in reverse order, each border added back onto the
        # centre positions it was copied from.
        for index in reversed(range(len(self.pairs))):
            axis = ndim - len(self.pairs) + index
            lo, hi = self.pairs[index]
            n = self.input_shape[axis]
            left = g[_along(axis, 0, lo, center)]
            right = g[_along(axis, lo + n, lo + n + hi, center)]
            if self.mode == "reflect":
                g[_along(axis, lo + 1, 2 * lo + 1, center)] += xp.flip(left, axis)
                g[_along(axis, lo + n - 1 - hi, lo + n - 1, center)] += xp.flip(right, axis)
            elif self.mode == "replicate":
                g[_along(axis, lo, lo + 1, center)] += left.sum(axis=axis, keepdims=True)
                g[_along(axis, lo + n - 1, lo + n, center)] += right.sum(axis=axis, keepdims=True)
            else:  # circular
                g[_along(axis, n, lo + n, center)] += left
                g[_along(axis, lo, lo + hi, center)] += right
        return xp.ascontiguousarray(g[center])

    def _center(self, shape: tuple[int, ...]) -> tuple[slice, ...]:
        lead = len(shape) - len(self.pairs)
        return (_ALL,) * lead + tuple(
            slice(lo, lo + n) for n, (lo, _) in zip(shape[lead:], self.pairs, strict=True)
        )

    def _crop(self, shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """Input and output slices of the part of the input that survives (negative pads crop)."""
        lead = len(shape) - len(self.pairs)
        src: list[slice] = [_ALL] * lead
        dst: list[slice] = [_ALL] * lead
        for n, (lo, hi) in zip(shape[lead:], self.pairs, strict=True):
            start, stop = max(-lo, 0), n - max(-hi, 0)
            src.append(slice(start, max(stop, start)))
            dst.append(slice(max(lo, 0), max(lo, 0) + max(stop - start, 0)))
        return tuple(src), tuple(dst)


def _along(axis: int, start: int, stop: int, center: tuple[slice, ...]) -> tuple[slice, ...]:
    """``start:stop`` on ``axis``, every earlier axis whole, every later axis at its centre."""
    return (_ALL,) * axis + (slice(start, stop),) + center[axis + 1 :]


def _check_pad(pad: object, shape: tuple[int, ...], mode: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(pad, Sequence) or isinstance(pad, str):
        raise TypeError(f"pad: expected pad to be a tuple of ints, got {pad!r}")
    for item in pad:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"pad: expected pad to be a tuple of ints, got {tuple(pad)!r}")
    values = [int(v) for v in pad]
    if len(values) % 2:
        raise ValueError(
            "pad: expected an even number of entries, pairs (left, right) starting from the "
            f"last dimension, got {tuple(values)}"
        )
    if len(values) > 2 * len(shape):
        raise ValueError(
            f"pad: got {len(values)} entries, but a {len(shape)}-D input (shape {shape}) has "
            f"only {len(shape)} dimensions to pad (at most {2 * len(shape)} entries)"
        )
    # PyTorch's order is last axis first; reverse it into axis order.
    pairs = tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))[::-1]
    axes = shape[len(shape) - len(pairs) :]
    for axis_offset, (n, (lo, hi)) in enumerate(zip(axes, pairs, strict=True)):
        dim = len(shape) - len(pairs) + axis_offset
        if mode == "constant" or lo < 0 or hi < 0:
            if n + lo + hi < 0:
                raise ValueError(
                    f"pad: padding ({lo}, {hi}) of dimension {dim} (size {n}) would give a "
                    f"negative size {n + lo + hi} (input shape {shape})"
                )
            if mode == "constant":
                continue
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ValueError(
                f"pad: reflect padding must be smaller than the padded dimension, got "
                f"({lo}, {hi}) for dimension {dim} of size {n} (input shape {shape})"
            )
        if mode == "circular" and (lo > n or hi > n):
            raise ValueError(
                f"pad: circular padding must be at most the size of the padded dimension, got "
                f"({lo}, {hi}) for dimension {dim} of size {n} (input shape {shape})"
            )
        if mode == "replicate" and n == 0 and (lo or hi):
            raise ValueError(
                f"pad: replicate padding needs a non-empty dimension, dimension {dim} of input "
                f"shape {shape} is empty"
            )
    return pairs


def pad(
    input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> Tensor:
    """Pad the trailing dimensions of ``input``, PyTorch's ``F.pad``.

    ``pad`` lists ``(left, right)`` pairs starting from the *last* dimension:
    ``(l_W, r_W)`` pads the last axis, ``(l_W, r_W, l_H, r_H)`` the last two, and so on.  Modes:

    * ``'constant'``: fill with ``value`` (default 0); negative entries crop;
    * ``'reflect'``: mirror without repeating the edge, ``[1, 2, 3] → 3, 2 | 1, 2, 3 | 2, 1``
      (each pad smaller than the dimension);
    * ``'replicate'``: repeat the edge value;
    * ``'circular'``: wrap around (each pad at most the dimension).

    The padding of a convolution (the note's ``p`` in ``floor((n + 2p − k)/s + 1)``) is
    ``'constant'`` padding with zeros.  Differentiable: the backward pass sums the gradient of
    every padded copy back onto the element it was copied from.

    Shape:
        input ``(*, n_1, ..., n_m)`` → output ``(*, n_1 + l_1 + r_1, ..., n_m + l_m + r_m)``.

    Example::

        >>> x = wally.arange(3.0).reshape(1, 3)
        >>> F.pad(x, (2, 1), mode="reflect")
        tensor([[2., 1., 0., 1., 2., 1.]])
    """
    if mode == "zeros":  # the name nn.Conv2d's padding_mode uses
        mode = "constant"
    if mode not in MODES:
        valid = ", ".join(repr(m) for m in MODES)
        raise ValueError(f"pad: unknown mode {mode!r}; valid modes are {valid}")
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise TypeError(f"pad: value must be a real number, got {value!r}")
    if mode != "constant" and value not in (None, 0):
        raise ValueError(f"pad: mode {mode!r} doesn't take a value, got value={value!r}")
    pairs = _check_pad(pad, tuple(input.shape), mode)
    if mode != "constant" and any(lo < 0 or hi < 0 for lo, hi in pairs):
        return _pad_by_index(input, pairs, mode)
    return Pad(pairs, mode, 0.0 if value is None else value)(input)


def _pad_by_index(input: Tensor, pairs: tuple[tuple[int, int], ...], mode: str) -> Tensor:
    """Reflect/replicate/circular padding where some entries are negative (they crop), as
    PyTorch's kernels do it: reflect and replicate read input position i = j − left for output
    position j, folded into [0, n) by the mode; circular crops first and wraps around what is
    left. Gathered with indexing, so getitem's backward sums the gradient back."""
    from wally import ops

    lead = input.ndim - len(pairs)
    for offset, (lo, hi) in enumerate(pairs):
        axis = lead + offset
        n = input.shape[axis]
        i = xp.arange(-lo, n + hi)
        if mode == "replicate":
            i = xp.clip(i, 0, n - 1)
        elif mode == "circular":  # crop first, then wrap around the part that is left
            start = max(-lo, 0)
            kept = n - start - max(-hi, 0)
            i = start + xp.arange(-max(lo, 0), kept + max(hi, 0)) % kept
        else:  # reflect, without repeating the edge
            i = xp.abs(i)
            i = xp.where(i > n - 1, 2 * (n - 1) - i, i)
        input = ops.getitem(input, (_ALL,) * axis + (i,))
    return input
