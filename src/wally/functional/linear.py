"""Fully connected layers and the small ops around them: ``linear``, ``flatten``, ``dropout``."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

from wally import creation, ops
from wally._parallel import matmul
from wally.autograd import Function
from wally.backend import ndarray, xp

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = ["linear", "flatten", "dropout", "identity"]


class Linear(Function):
    """y = x Wᵀ + b over the last axis, as one 2-D GEMM on the flattened leading axes."""

    def forward(self, x: ndarray, weight: ndarray, bias: ndarray | None) -> ndarray:
        out_features, in_features = weight.shape
        self.x_shape = x.shape
        # Explicit row counts: ``-1`` can't be resolved when a size is 0 (Linear(0, 5)).
        x2d = xp.ascontiguousarray(x.reshape(math.prod(x.shape[:-1]), in_features))
        # weight.T is a transposed view: BLAS reads it with its transpose flag, no copy.
        y = matmul(x2d, weight.T)
        if bias is not None:
            y += bias
        need_x, need_w, _ = self.needs_input_grad
        if need_w:
            self.x2d = x2d
        if need_x:
            self.weight = weight
        return y.reshape(x.shape[:-1] + (out_features,))

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_w, need_b = self.needs_input_grad
        gy2d = xp.ascontiguousarray(gy.reshape(math.prod(gy.shape[:-1]), gy.shape[-1]))
        gx = matmul(gy2d, self.weight).reshape(self.x_shape) if need_x else None
        gw = matmul(gy2d.T, self.x2d) if need_w else None
        gb = gy2d.sum(axis=0) if need_b else None
        return gx, gw, gb


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""Affine map over the last axis: :math:`y = x W^\top + b`.

    The leading axes are flattened so that forward is one 2-D GEMM ``x2d @ W.T`` and backward
    at most two (``gy @ W`` for the input, ``gyᵀ @ x2d`` for the weight), each computed only
    when that gradient is wanted.

    Shape:
        - Input: ``(*, in_features)``.
        - Weight: ``(out_features, in_features)``.  - Bias: ``(out_features,)``.
        - Output: ``(*, out_features)``.

    Example::

        >>> x, w, b = wally.randn(64, 784), wally.randn(10, 784), wally.zeros(10)
        >>> F.linear(x, w, b).shape
        wally.Size([64, 10])
    """
    if weight.ndim != 2:
        raise ValueError(
            f"linear: expected a 2-D weight (out_features, in_features), got shape "
            f"{tuple(weight.shape)}"
        )
    out_features, in_features = weight.shape
    if input.ndim == 0 or input.shape[-1] != in_features:
        raise ValueError(
            f"linear: expected an input whose last dimension is in_features={in_features}, "
            f"got shape {tuple(input.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (out_features,):
        raise ValueError(
            f"linear: expected a bias of shape ({out_features},), got shape {tuple(bias.shape)}"
        )
    if input.dtype.kind != "f":
        raise TypeError(
            f"linear: expected a floating-point input, got dtype {input.dtype}; convert it "
            f"first, e.g. x.float()"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(
                f"linear: expected input and {name} of the same dtype, got input {input.dtype} "
                f"and {name} {t.dtype}"
            )
    return Linear()(input, weight, bias)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    r"""Merge axes ``start_dim`` … ``end_dim`` into one (a reshape, no copy when contiguous).

    :math:`(d_0, \dots, d_s, \dots, d_e, \dots) \to (d_0, \dots, \prod_{i=s}^{e} d_i, \dots)`.
    Like ``torch.flatten`` and ``torch.nn.functional``'s, ``start_dim`` defaults to 0, so the
    batch axis is merged too (``nn.Flatten`` starts at 1). A 0-d input becomes 1-D.

    Shape:
        - Input: ``(*, d_s, ..., d_e, *)``.  - Output: ``(*, d_s * ... * d_e, *)``.

    Example::

        >>> flatten(wally.zeros(2, 3, 4, 5), 1).shape
        wally.Size([2, 60])
    """
    ndim = input.ndim
    if ndim == 0:
        return ops.reshape(input, (1,))
    bounds = []
    for name, dim in (("start_dim", start_dim), ("end_dim", end_dim)):
        if not -ndim <= dim < ndim:
            raise IndexError(
                f"flatten: {name}={dim} is out of range for a {ndim}-D input "
                f"(expected {-ndim} <= {name} <= {ndim - 1})"
            )
        bounds.append(dim % ndim)
    start, end = bounds
    if start > end:
        raise ValueError(
            f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim}) for a "
            f"{ndim}-D input"
        )
    shape = tuple(input.shape)
    merged = math.prod(shape[start:end + 1])
    return ops.reshape(input, shape[:start] + (merged,) + shape[end + 1:])


class Dropout(Function):
    """y = x · m / (1 − p), m ~ Bernoulli(1 − p) drawn from wally's global generator."""

    def __init__(self, p: float) -> None:
        self.p = p

    def forward(self, x: ndarray) -> ndarray:
        if self.p == 1.0:
            mask = xp.zeros_like(x)
        else:
            draw_dtype = xp.float64 if x.dtype == xp.float64 else xp.float32
            keep = creation.generator().random(x.shape, dtype=draw_dtype) >= self.p
            mask = keep.astype(x.dtype)
            mask *= 1.0 / (1.0 - self.p)
        if self.needs_input_grad[0]:
            self.mask = mask
        return x * mask

    def backward(self, gy: ndarray) -> ndarray:
        return gy * self.mask


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    r"""Inverted dropout: zero each element with probability ``p`` and scale the survivors by
    :math:`1/(1-p)`, so that :math:`\mathbb{E}[y] = x` and nothing changes at evaluation.

    :math:`y = x \odot m / (1 - p)`, :math:`m_i \sim \mathrm{Bernoulli}(1 - p)`; ``p = 1``
    gives zeros. With ``training=False`` (or ``p = 0``) the input itself is returned. Masks
    come from ``wally.creation.generator()``, so ``wally.manual_seed`` makes them repeatable.
    ``inplace`` is accepted and ignored.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> y = F.dropout(wally.ones(1000), p=0.2)   # about 800 elements equal to 1.25
    """
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p has to be between 0 and 1, but got {p!r}")
    if not training or p == 0:
        return input
    if input.dtype.kind != "f":
        raise TypeError(f"dropout: expected a floating-point input, got dtype {input.dtype}")
    return Dropout(float(p))(input)


def identity(input: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """The identity, ``y = x`` (the same tensor); extra arguments are ignored, as in
    ``nn.Identity``.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same tensor.

    Example::

        >>> x = wally.ones(2); identity(x) is x
        True
    """
    return input
