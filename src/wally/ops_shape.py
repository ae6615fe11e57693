"""Layout ops: meshgrid, roll, rot90, tril, triu, diag, unbind and tile.

Each moves or masks elements without arithmetic, so each backward applies the inverse move
(or the same mask) to the gradient.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from wally import ops
from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.ops_math import _axis, _tensor
from wally.tensor import Tensor

__all__ = ["meshgrid", "roll", "rot90", "tril", "triu", "diag", "unbind", "tile"]


def meshgrid(*tensors: Any, indexing: str | None = None) -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors: with ``indexing='ij'`` (the default, as PyTorch's,
    without its warning) output i varies along dim i; ``'xy'`` swaps the first two dims (the
    Cartesian convention of NumPy and MATLAB). Each output is an expanded view whose gradient
    sums back onto its input. **Shape:** each output is (len(t₀), len(t₁), ...), or with 'xy'
    (len(t₁), len(t₀), ...).

    >>> xs, ys = wally.meshgrid(wally.arange(3), wally.arange(2), indexing="ij")
    >>> xs.shape
    wally.Size([3, 2])
    """
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    if not tensors:
        raise ValueError("meshgrid: expected at least one tensor, got none")
    for t in tensors:
        _tensor("meshgrid", t)
        if t.ndim > 1:
            raise ValueError(f"meshgrid: expected 0-D or 1-D tensors, got shape "
                             f"{tuple(t.shape)}")
    if len({t.dtype for t in tensors}) > 1:
        raise TypeError(f"meshgrid: expected tensors of one dtype, got "
                        f"{[str(t.dtype) for t in tensors]}")
    flat = [ops.reshape(t, (-1,)) for t in tensors]
    swap = indexing == "xy" and len(flat) >= 2
    if swap:
        flat[0], flat[1] = flat[1], flat[0]
    shape = tuple(t.shape[0] for t in flat)
    grids = []
    for i, t in enumerate(flat):
        view = (1,) * i + (shape[i],) + (1,) * (len(flat) - i - 1)
        grids.append(ops.expand(ops.reshape(t, view), shape))
    if swap:
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


class Roll(Function):
    def __init__(self, shifts: tuple[int, ...], axes: tuple[int, ...] | None) -> None:
        self.shifts, self.axes = shifts, axes

    def forward(self, x: ndarray) -> ndarray:
        return xp.roll(x, self.shifts if self.axes is not None else self.shifts[0],
                       axis=self.axes)

    def backward(self, gy: ndarray) -> ndarray:
        back = tuple(-s for s in self.shifts)
        return xp.roll(gy, back if self.axes is not None else back[0], axis=self.axes)


def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """Shift elements by ``shifts`` along ``dims``, wrapping around: y[(i + s) mod n] = x[i];
    without dims, over the flattened tensor, then reshaped back. **Shape:** the input's.

    >>> wally.roll(wally.tensor([1.0, 2.0, 3.0]), 1)
    tensor([3., 1., 2.])
    """
    input = _tensor("roll", input)
    shift_list = (shifts,) if isinstance(shifts, (int, xp.integer)) else tuple(shifts)
    if dims is None:
        if len(shift_list) != 1:
            raise ValueError(f"roll: without dims, shifts must be one int, got {shifts!r}")
        return Roll((int(shift_list[0]),), None)(input)
    dim_list = (dims,) if isinstance(dims, (int, xp.integer)) else tuple(dims)
    if len(dim_list) != len(shift_list):
        raise ValueError(f"roll: shifts and dims must have the same length, got {shifts!r} "
                         f"and {dims!r}")
    axes = tuple(_axis("roll", d, input.ndim) for d in dim_list)
    if input.ndim == 0:
        return ops.clone(input)
    return Roll(tuple(int(s) for s in shift_list), axes)(input)


class Rot90(Function):
    def __init__(self, k: int, axes: tuple[int, int]) -> None:
        self.k, self.axes = k, axes

    def forward(self, x: ndarray) -> ndarray:
        return xp.rot90(x, self.k, axes=self.axes)

    def backward(self, gy: ndarray) -> ndarray:
        return xp.rot90(gy, -self.k, axes=self.axes)


def rot90(input: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    """Rotate by 90°·k in the plane of ``dims``, from the first axis towards the second.
    **Shape:** the two dims swap when k is odd.

    >>> wally.rot90(wally.tensor([[1.0, 2.0], [3.0, 4.0]]))
    tensor([[2., 4.],
            [1., 3.]])
    """
    input = _tensor("rot90", input)
    dims = tuple(dims)
    if len(dims) != 2:
        raise ValueError(f"rot90: expected 2 dims, got {dims!r}")
    if input.ndim < 2:
        raise ValueError(f"rot90: expected a tensor with at least 2 dims, got shape "
                         f"{tuple(input.shape)}")
    a, b = (_axis("rot90", d, input.ndim) for d in dims)
    if a == b:
        raise ValueError(f"rot90: the two dims must differ, got {dims!r}")
    return Rot90(int(k) % 4, (a, b))(input)


class Triangle(Function):
    """Keep the lower (``upper=False``) or upper triangle of the last two dims; the gradient
    keeps the same triangle."""

    def __init__(self, diagonal: int, upper: bool) -> None:
        self.diagonal, self.upper = diagonal, upper

    def forward(self, x: ndarray) -> ndarray:
        return (xp.triu if self.upper else xp.tril)(x, self.diagonal)

    def backward(self, gy: ndarray) -> ndarray:
        return (xp.triu if self.upper else xp.tril)(gy, self.diagonal)


def _triangle(name: str, input: Tensor, diagonal: int, upper: bool) -> Tensor:
    input = _tensor(name, input)
    if input.ndim < 2:
        raise ValueError(f"{name}: expected a tensor with at least 2 dims, got shape "
                         f"{tuple(input.shape)}")
    if not isinstance(diagonal, (int, xp.integer)) or isinstance(diagonal, bool):
        raise TypeError(f"{name}: expected diagonal to be an int, got {diagonal!r}")
    return Triangle(int(diagonal), upper)(input)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """y[..., i, j] = x[..., i, j] if j − i ≤ diagonal else 0 (the lower triangle).
    **Shape:** (*, m, n), the input's.

    >>> wally.tril(wally.ones(2, 2))
    tensor([[1., 0.],
            [1., 1.]])
    """
    return _triangle("tril", input, diagonal, False)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """y[..., i, j] = x[..., i, j] if j − i ≥ diagonal else 0 (the upper triangle).
    **Shape:** (*, m, n), the input's.

    >>> wally.triu(wally.ones(2, 2))
    tensor([[1., 1.],
            [0., 1.]])
    """
    return _triangle("triu", input, diagonal, True)


class Diag(Function):
    """1-D -> 2-D: a square matrix with x on diagonal ``offset``; 2-D -> 1-D: that diagonal."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def forward(self, x: ndarray) -> ndarray:
        self.shape = x.shape
        return xp.diag(x, self.offset).copy()

    def backward(self, gy: ndarray) -> ndarray:
        if len(self.shape) == 1:
            return xp.diagonal(gy, self.offset).copy()
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        rows, cols = self.shape
        start = (0, self.offset) if self.offset >= 0 else (-self.offset, 0)
        n = gy.shape[0]
        gx[xp.arange(n) + start[0], xp.arange(n) + start[1]] = gy
        return gx


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D input becomes the square matrix with it on diagonal ``diagonal`` (> 0 above the
    main one); a 2-D input gives that diagonal as 1-D.
    **Shape:** (n,) -> (n + |d|, n + |d|); (m, n) -> (length of the diagonal,).

    >>> wally.diag(wally.tensor([1.0, 2.0]))
    tensor([[1., 0.],
            [0., 2.]])
    """
    input = _tensor("diag", input)
    if input.ndim not in (1, 2):
        raise ValueError(f"diag: expected a 1-D or 2-D tensor, got shape {tuple(input.shape)}")
    return Diag(int(diagonal))(input)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices along ``dim``, without that dim: (x[0], x[1], ...) for dim=0.
    **Shape:** n tensors of the input's shape without dim.

    >>> [t.tolist() for t in wally.unbind(wally.tensor([[1, 2], [3, 4]]), 1)]
    [[1, 3], [2, 4]]
    """
    input = _tensor("unbind", input)
    if input.ndim == 0:
        raise ValueError("unbind: expected a tensor with at least 1 dim, got a 0-d tensor")
    axis = _axis("unbind", dim, input.ndim)
    lead = (slice(None),) * axis
    return tuple(input[lead + (i,)] for i in range(input.shape[axis]))


def tile(input: Tensor, dims: Sequence[int]) -> Tensor:
    """Repeat the tensor ``dims[i]`` times along dim i; with fewer entries than dims, ones are
    prepended (unlike ``repeat``, which needs at least one per dim).
    **Shape:** input.shape[i]·dims[i] per dim (after padding either with leading ones).

    >>> wally.tile(wally.tensor([1, 2]), (2,))
    tensor([1, 2, 1, 2])
    """
    input = _tensor("tile", input)
    reps = tuple(int(n) for n in dims)
    if any(n < 0 for n in reps):
        raise ValueError(f"tile: expected non-negative repeats, got {tuple(dims)}")
    reps = (1,) * builtins.max(input.ndim - len(reps), 0) + reps
    return ops.repeat(input, reps)
