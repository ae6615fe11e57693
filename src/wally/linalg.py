"""Norms, PyTorch's ``torch.linalg`` subset: ``vector_norm``, ``matrix_norm`` and ``norm``, plus
the older ``torch.norm`` (as :func:`tensor_norm`, exported as ``wally.norm``).

The vector norm is one ``Function`` whose backward takes the subgradient 0 where the norm is 0
(so ``cdist`` and ``normalize`` have finite gradients at coincident points, as in PyTorch).
"""

from __future__ import annotations

import math
from typing import Any

from wally import ops
from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.ops_math import _axis, _floating, _tensor
from wally.tensor import Tensor

__all__ = ["vector_norm", "matrix_norm", "norm"]


class VectorNorm(Function):
    """y = (Σ |x|ᵖ)^(1/p) over ``axes``; p = ∞: max |x|, p = −∞: min |x|, p = 0: the count
    of non-zeros.

    dy/dx = sign(x)·|x|^(p−1) / y^(p−1) (0 where y = 0); for p = ±∞ the gradient is shared
    equally among the elements that attain the extreme (PyTorch's rule); for p = 0 it is 0.
    """

    def __init__(self, ord: float, axes: tuple[int, ...] | None, keepdim: bool) -> None:
        self.ord, self.axes, self.keepdim = ord, axes, keepdim

    def forward(self, x: ndarray) -> ndarray:
        p, axes = self.ord, self.axes
        a = xp.abs(x)
        if p == math.inf:
            y = xp.amax(a, axis=axes, keepdims=True) if a.size else \
                xp.zeros(xp.sum(a, axis=axes, keepdims=True).shape, dtype=x.dtype)
        elif p == -math.inf:
            y = xp.amin(a, axis=axes, keepdims=True)
        elif p == 0:
            y = (a != 0).sum(axis=axes, keepdims=True).astype(x.dtype)
        elif p == 1:
            y = a.sum(axis=axes, keepdims=True)
        elif p == 2:
            y = xp.sqrt((a * a).sum(axis=axes, keepdims=True))
        else:
            with xp.errstate(divide="ignore"):
                y = ((a ** p).sum(axis=axes, keepdims=True)) ** (1.0 / p)
        self.x, self.y = x, y
        return y if self.keepdim else self._squeeze(y)

    def _squeeze(self, y: ndarray) -> ndarray:
        return y.reshape(()) if self.axes is None else xp.squeeze(y, self.axes)

    def backward(self, gy: ndarray) -> ndarray:
        p, x, y = self.ord, self.x, self.y
        g = gy.reshape(y.shape)
        if p == 0:
            return xp.zeros(x.shape, dtype=gy.dtype)
        if p in (math.inf, -math.inf):
            hit = (xp.abs(x) == y) | xp.isnan(x)
            count = hit.sum(axis=self.axes, keepdims=True)
            return xp.sign(x) * hit * (g / xp.maximum(count, 1))
        if p == 1:
            return xp.sign(x) * g
        safe = xp.where(y == 0, xp.ones((), dtype=y.dtype), y)
        if p == 2:
            return xp.where(y == 0, 0, x / safe * g).astype(gy.dtype, copy=False)
        a = xp.abs(x)
        with xp.errstate(divide="ignore", invalid="ignore"):
            local = xp.sign(x) * xp.where(a == 0, 0, a ** (p - 1)) / safe ** (p - 1)
        return xp.where(y == 0, 0, local * g).astype(gy.dtype, copy=False)


def _ord_value(name: str, ord: Any) -> float:
    if isinstance(ord, bool) or not isinstance(ord, (int, float, xp.integer, xp.floating)):
        raise TypeError(f"{name}: expected ord to be a number (or inf), got {ord!r}")
    return float(ord)


def _dims(name: str, dim: Any, ndim: int) -> tuple[int, ...] | None:
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, xp.integer)) else tuple(dim)
    axes = tuple(_axis(name, d, ndim) for d in dims)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{name}: dim {dim!r} repeats a dimension")
    return tuple(sorted(axes))


def vector_norm(x: Tensor, ord: Any = 2, dim: Any = None, keepdim: bool = False, *,
                dtype: Any = None) -> Tensor:
    """‖x‖_p = (Σ |xᵢ|ᵖ)^(1/p) over ``dim`` (all elements when None); ord = inf gives max |x|,
    -inf min |x|, 0 the number of non-zeros. **Shape:** dim removed (kept as 1 with
    ``keepdim``).

    >>> wally.linalg.vector_norm(wally.tensor([3.0, 4.0]))
    tensor(5.)
    """
    x = _tensor("vector_norm", x)
    if dtype is not None:
        x = ops.cast(x, dtype)
    x = _floating(x)
    p = _ord_value("vector_norm", ord)
    axes = _dims("vector_norm", dim, x.ndim)
    if x.ndim == 0:
        axes = None
    if p < 0 and x.numel() == 0:
        raise ValueError(f"vector_norm: ord={ord} of an empty tensor is undefined")
    return VectorNorm(p, axes, keepdim and x.ndim > 0)(x)


class SingularNorm(Function):
    """ord 2 (largest singular value), -2 (smallest) or 'nuc' (their sum) of the matrices in
    the last two dims; gradients u vᵀ (of the chosen singular pair) and U Vᵀ."""

    def __init__(self, ord: Any) -> None:
        self.ord = ord

    def forward(self, x: ndarray) -> ndarray:
        u, s, vh = xp.linalg.svd(x, full_matrices=False)
        self.u, self.vh = u, vh
        if self.ord == "nuc":
            return s.sum(axis=-1)
        self.pick = 0 if self.ord == 2 else s.shape[-1] - 1
        return s[..., self.pick]

    def backward(self, gy: ndarray) -> ndarray:
        if self.ord == "nuc":
            return gy[..., None, None] * (self.u @ self.vh)
        u = self.u[..., :, self.pick]
        v = self.vh[..., self.pick, :]
        return gy[..., None, None] * (u[..., :, None] * v[..., None, :])


def matrix_norm(A: Tensor, ord: Any = "fro", dim: Any = (-2, -1), keepdim: bool = False, *,
                dtype: Any = None) -> Tensor:  # noqa: N803 - PyTorch's name
    """A matrix norm over the two ``dim``: 'fro' √Σ a²; 'nuc' the sum of singular values;
    2 / -2 the largest / smallest singular value; 1 / -1 the max / min column sum of |a|;
    inf / -inf the max / min row sum of |a|. **Shape:** (*, m, n) -> (*), or (*, 1, 1) with
    ``keepdim``.

    >>> wally.linalg.matrix_norm(wally.ones(2, 2))
    tensor(2.)
    """
    A = _tensor("matrix_norm", A)  # noqa: N806
    if dtype is not None:
        A = ops.cast(A, dtype)  # noqa: N806
    A = _floating(A)  # noqa: N806
    if A.ndim < 2:
        raise ValueError(f"matrix_norm: expected a tensor with at least 2 dims, got shape "
                         f"{tuple(A.shape)}")
    axes = _dims("matrix_norm", dim, A.ndim)
    if axes is None or len(axes) != 2:
        raise ValueError(f"matrix_norm: dim must be a pair of dims, got {dim!r}")
    rows, cols = (_axis("matrix_norm", d, A.ndim) for d in tuple(dim))
    if ord == "fro":
        return VectorNorm(2.0, axes, keepdim)(A)
    if ord not in ("nuc", 1, -1, 2, -2, math.inf, -math.inf):
        raise ValueError(f"matrix_norm: ord must be 'fro', 'nuc', inf, -inf, 1, -1, 2 or -2, "
                         f"got {ord!r}")
    if ord in ("nuc", 2, -2):
        moved = ops.permute(A, [d for d in range(A.ndim) if d not in (rows, cols)]
                            + [rows, cols])
        out = SingularNorm(ord)(moved)
        if keepdim:
            for d in sorted((rows, cols)):
                out = ops.unsqueeze(out, d)
        return out
    # 1 / -1: columns summed over rows; inf / -inf: rows summed over columns.
    summed_over, then = (rows, cols) if ord in (1, -1) else (cols, rows)
    sums = ops.sum(ops.abs(A), summed_over, keepdim=True)
    pick = ops.amax if ord in (1, math.inf) else ops.amin
    out = pick(sums, then, keepdim=True)
    return out if keepdim else ops.squeeze(out, (rows, cols))


def norm(A: Tensor, ord: Any = None, dim: Any = None, keepdim: bool = False, *,
         dtype: Any = None) -> Tensor:  # noqa: N803 - PyTorch's name
    """``torch.linalg.norm``: with ord None the 2-norm of the flattened tensor (dim None) or
    over ``dim``; an int dim (or a 1-D tensor) means a vector norm, a pair of dims (or a 2-D
    tensor with ord given) a matrix norm. **Shape:** dim removed (kept with ``keepdim``).

    >>> wally.linalg.norm(wally.tensor([[3.0], [4.0]]))
    tensor(5.)
    """
    A = _tensor("linalg.norm", A)  # noqa: N806
    if isinstance(ord, str) or (dim is not None and not isinstance(dim, (int, xp.integer))
                                and len(tuple(dim)) == 2):
        return matrix_norm(A, "fro" if ord is None else ord, (-2, -1) if dim is None else dim,
                           keepdim, dtype=dtype)
    if dim is None and ord is not None:
        if A.ndim == 2:
            return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
        if A.ndim != 1:
            raise ValueError(f"linalg.norm: with ord={ord!r} and dim=None the input must be "
                             f"1-D or 2-D, got shape {tuple(A.shape)}")
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def tensor_norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False,
                dtype: Any = None) -> Tensor:
    """``torch.norm`` / ``Tensor.norm``: p='fro' is the 2-norm over ``dim`` (all elements when
    None), 'nuc' the nuclear norm of a matrix, a number the vector p-norm over ``dim``.
    **Shape:** dim removed (kept as 1 with ``keepdim``).

    >>> wally.norm(wally.tensor([3.0, 4.0]))
    tensor(5.)
    """
    input = _tensor("norm", input)
    if p == "nuc":
        return matrix_norm(input, "nuc", (-2, -1) if dim is None else dim, keepdim, dtype=dtype)
    if p == "fro" or p is None:
        p = 2
    if isinstance(p, str):
        raise ValueError(f"norm: p must be 'fro', 'nuc' or a number, got {p!r}")
    return vector_norm(input, p, dim, keepdim, dtype=dtype)

