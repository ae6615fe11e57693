"""Weight normalisation (Salimans and Kingma, 2016): a weight written as a length ``g`` and a
direction ``v``,

    ``w = g · v / ‖v‖``

with the 2-norm taken over every axis of ``v`` except ``dim`` (one length per output channel
for ``dim=0``, the layout of ``Conv*d`` and ``Linear`` weights), as PyTorch's
``torch._weight_norm(v, g, dim)`` and ``torch.norm_except_dim(v, pow, dim)`` compute it. As
there, ``dim=-1`` means *the whole tensor* (one length for the whole weight, ``g`` a scalar),
not the last axis; the last axis is ``dim = v.ndim - 1``, and other negative dims count from
the end.

The gradients, with ``n = ‖v‖`` and ``s = Σ ∂L/∂w · v`` over the normalised axes::

    ∂L/∂g = s / n
    ∂L/∂v = (g / n) · (∂L/∂w − v · s / n²)

``v = 0`` gives ``0 / 0`` (NaN), as in PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wally.autograd import Function
from wally.backend import ndarray, xp

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = ["WeightNorm", "norm_except_dim"]


def normalised_axes(ndim: int, dim: int | None, where: str = "weight_norm") -> tuple[int, ...]:
    """The axes the norm runs over: all of them for ``dim`` ``-1`` or ``None``, else all but
    ``dim`` (counted from the end when negative)."""
    if dim is None or dim == -1:
        return tuple(range(ndim))
    if isinstance(dim, bool) or not isinstance(dim, int) or not -ndim <= dim < ndim:
        raise IndexError(f"{where}: dim must be None, -1 (the whole tensor) or an axis from "
                         f"{-ndim} to {ndim - 1} of the {ndim}-d weight, got {dim!r}")
    kept = dim % ndim
    return tuple(axis for axis in range(ndim) if axis != kept)


class WeightNorm(Function):
    """``w = g · v / ‖v‖`` over ``axes`` (module docs); ``g`` holds one value per norm."""

    def __init__(self, axes: tuple[int, ...], tensor_name: str | None = None) -> None:
        self.axes = axes
        self.tensor_name = tensor_name  # the weight it computes, for ONNX export's names

    def forward(self, v: ndarray, g: ndarray) -> ndarray:
        self.v, self.g_shape = v, g.shape
        self.norm = xp.sqrt(xp.sum(v * v, axis=self.axes, keepdims=True))
        if g.size != self.norm.size:
            raise ValueError(f"_weight_norm: expected g with one value per norm, "
                             f"{self.norm.size} (shape {tuple(self.norm.shape)}), got shape "
                             f"{tuple(g.shape)}")
        with xp.errstate(divide="ignore", invalid="ignore"):
            self.scale = g.reshape(self.norm.shape) / self.norm
        return v * self.scale

    def backward(self, gw: ndarray) -> tuple[ndarray, ndarray]:
        s = xp.sum(gw * self.v, axis=self.axes, keepdims=True)
        with xp.errstate(divide="ignore", invalid="ignore"):
            gg = (s / self.norm).reshape(self.g_shape)
            gv = self.scale * (gw - self.v * (s / (self.norm * self.norm)))
        return gv, gg


def _weight_norm(v: Tensor, g: Tensor, dim: int | None = 0) -> Tensor:
    """``g · v / ‖v‖``, the norm over every axis of ``v`` but ``dim`` (``-1``, ``None``: the
    whole tensor), PyTorch's ``torch._weight_norm(v, g, dim)``. ``g`` has one value per norm:
    ``norm_except_dim(v, 2, dim)``'s shape, or any shape of that size.

    Example::

        >>> v = wally.tensor([[3.0, 4.0], [0.0, 2.0]])
        >>> wally._weight_norm(v, wally.tensor([[10.0], [1.0]]), 0)
        tensor([[6., 8.],
                [0., 1.]])
    """
    return WeightNorm(normalised_axes(v.ndim, dim, "_weight_norm"))(v, g)


def norm_except_dim(v: Tensor, pow: float = 2, dim: int | None = 0) -> Tensor:
    """The ``pow``-norm of ``v`` over every axis but ``dim``, kept as size-1 axes (shape
    ``(C, 1, 1, 1)`` for a conv weight and ``dim=0``); for ``dim=-1`` (or ``None``), of the
    whole tensor, a scalar. PyTorch's ``torch.norm_except_dim``: the initial ``g`` of
    weight normalisation, so that ``w`` is unchanged."""
    axes = normalised_axes(v.ndim, dim, "norm_except_dim")
    whole = dim is None or dim == -1
    if pow == 2:
        total = (v * v).sum(dim=axes, keepdim=not whole) if axes else v * v
        return total.sqrt()
    total = (v.abs() ** pow).sum(dim=axes, keepdim=not whole) if axes else v.abs() ** pow
    return total ** (1.0 / pow)
