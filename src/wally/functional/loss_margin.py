"""Margin and embedding losses: ranking, hinge embedding, cosine embedding, triplet, soft
margin and multi-label soft margin.

The hinge-type losses are composed of differentiable wally ops in PyTorch's own order
(``clamp(min=0)``, ``where``, ``minimum``), so their gradients at a margin met exactly are
PyTorch's: ``clamp`` passes the gradient at the boundary, ``minimum`` splits it at ties.
The soft-margin losses have an analytic, overflow-free backward.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from wally import ops
from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.functional.loss import (
    BCEWithLogits,
    _array,
    _check_same_shape,
    _elementwise_weight,
    _float_input,
    _operand,
    _reduction,
)
from wally.functional.loss_regression import ElementwiseLoss, _broadcast_target
from wally.ops import sum_to
from wally.tensor import Tensor

__all__ = [
    "margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss",
    "triplet_margin_loss", "soft_margin_loss", "multilabel_soft_margin_loss",
]


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(_array(x))


def _reduced(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _number(name: str, what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {what} must be a real number, got {value!r}")
    return float(value)


# ----- ranking and hinge embedding -----------------------------------------------------------
def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Any, margin: float = 0,
                        size_average: bool | None = None, reduce: bool | None = None,
                        reduction: str = "mean") -> Tensor:
    r"""Ranking loss for pairs: with :math:`y = 1` when ``input1`` should rank higher and
    :math:`y = -1` when ``input2`` should,

    .. math::
        \ell = \max(0,\; -y\,(x_1 - x_2) + \text{margin}).

    At a margin met exactly the gradient passes (PyTorch's ``clamp_min`` rule).

    Shape:
        - Input1, Input2: ``(N)`` or ``()``.  - Target: the same shape, values ±1.
        - Output: a scalar, or ``(N)`` if ``reduction='none'``.

    Example::

        >>> F.margin_ranking_loss(wally.tensor([1.0, 0.0]), wally.tensor([0.0, 1.0]),
        ...                       wally.tensor([1.0, 1.0]), margin=0.5)
        tensor(0.7500)
    """
    name = "margin_ranking_loss"
    reduction = _reduction(name, reduction, size_average, reduce)
    _float_input(name, input1, "input1")
    _float_input(name, input2, "input2")
    dims = (input1.ndim, input2.ndim, _array(target).ndim)
    if len(set(dims)) != 1:
        raise ValueError(
            f"{name}: expected input1, input2 and target of the same number of dimensions, "
            f"got shapes {tuple(input1.shape)}, {tuple(input2.shape)} and "
            f"{tuple(_array(target).shape)}"
        )
    margin = _number(name, "margin", margin)
    loss = (-_tensor(target) * (input1 - input2) + margin).clamp(min=0)
    return _reduced(loss, reduction)


def hinge_embedding_loss(input: Tensor, target: Any, margin: float = 1.0,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    r"""Hinge embedding loss, for inputs that are distances of pairs labelled similar
    (:math:`y = 1`) or dissimilar (:math:`y = -1`):

    .. math::
        \ell = \begin{cases} x & y = 1 \\ \max(0, \text{margin} - x) & y = -1, \end{cases}

    computed as PyTorch does, ``where(y != 1, max(0, margin - x), 0) + where(y != -1, x, 0)``
    (a label other than ±1 counts both terms).

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``, the same shape, values ±1.
        - Output: a scalar, or ``(*)`` if ``reduction='none'``.

    Example::

        >>> F.hinge_embedding_loss(wally.tensor([0.3, 0.2]), wally.tensor([1.0, -1.0]))
        tensor(0.5500)
    """
    name = "hinge_embedding_loss"
    reduction = _reduction(name, reduction, size_average, reduce)
    _float_input(name, input)
    _broadcast_target(name, input, target, warn=False)
    margin = _number(name, "margin", margin)
    y = _array(target)
    zero = xp.zeros((), dtype=input.dtype)
    margin_part = ops.where(y != 1, (margin - input).clamp(min=0), zero)
    loss = margin_part + ops.where(y != -1, input, zero)
    return _reduced(loss, reduction)


# ----- cosine embedding ----------------------------------------------------------------------
def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Any, margin: float = 0,
                          size_average: bool | None = None, reduce: bool | None = None,
                          reduction: str = "mean") -> Tensor:
    r"""Cosine embedding loss: pull pairs labelled :math:`y = 1` together, push pairs
    labelled :math:`y = -1` below a cosine of ``margin``:

    .. math::
        \cos = \frac{x_1 \cdot x_2}{\sqrt{(\lVert x_1\rVert^2 + 10^{-12})
                                          (\lVert x_2\rVert^2 + 10^{-12})}}, \qquad
        \ell = \begin{cases} 1 - \cos & y = 1 \\ \max(0, \cos - \text{margin}) & y = -1
               \end{cases}

    (0 for any other label), as PyTorch computes it.

    Shape:
        - Input1, Input2: ``(N, D)`` or ``(D)``.  - Target: ``(N)`` or ``()``.
        - Output: a scalar, or ``(N)`` if ``reduction='none'``.

    Example::

        >>> x = wally.tensor([[1.0, 0.0], [1.0, 1.0]])
        >>> F.cosine_embedding_loss(x, wally.tensor([[1.0, 0.0], [1.0, -1.0]]),
        ...                         wally.tensor([1.0, -1.0]))
        tensor(0.)
    """
    name = "cosine_embedding_loss"
    reduction = _reduction(name, reduction, size_average, reduce)
    _float_input(name, input1, "input1")
    _float_input(name, input2, "input2")
    y = _array(target)
    if y.ndim not in (0, 1):
        raise ValueError(f"{name}: expected a 0-D or 1-D target (one label per pair), got "
                         f"shape {y.shape}")
    want = y.ndim + 1
    if input1.ndim != want or input2.ndim != want:
        raise ValueError(
            f"{name}: a {y.ndim}-D target expects {want}-D inputs "
            f"({'(N, D)' if want == 2 else '(D,)'}), got shapes {tuple(input1.shape)} and "
            f"{tuple(input2.shape)}"
        )
    margin = _number(name, "margin", margin)
    dim = y.ndim
    eps = 1e-12
    dot = (input1 * input2).sum(dim)
    denominator = (((input1 * input1).sum(dim) + eps) * ((input2 * input2).sum(dim) + eps)).sqrt()
    cos = dot / denominator
    zero = xp.zeros((), dtype=cos.dtype)
    loss = ops.where(y == 1, 1 - cos, zero) + ops.where(y == -1, (cos - margin).clamp(min=0), zero)
    return _reduced(loss, reduction)


# ----- triplet margin ------------------------------------------------------------------------
class PairwiseDistance(Function):
    """‖a − b + ε‖_p over the last axis (PyTorch's ``pairwise_distance``); the gradient is 0
    where the distance is 0 and, for p = ∞, shared evenly by the tied largest entries."""

    def __init__(self, p: float, eps: float) -> None:
        self.p, self.eps = p, eps

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        d = a - b + self.eps
        z = xp.abs(d)
        p = self.p
        if p == 2:
            norm = xp.sqrt((d * d).sum(-1))
        elif p == 1:
            norm = z.sum(-1)
        elif math.isinf(p):
            norm = z.max(-1)
        else:
            norm = (z ** p).sum(-1) ** (1.0 / p)
        if any(self.needs_input_grad):
            self.d, self.norm, self.shapes = d, norm, (a.shape, b.shape)
        return norm

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        d, norm, p = self.d, self.norm[..., None], self.p
        g = gy[..., None]
        if p == 1:
            gd = xp.sign(d) * g
        elif math.isinf(p):
            at_max = (xp.abs(d) == norm).astype(d.dtype)
            gd = xp.sign(d) * at_max * (g / at_max.sum(-1, keepdims=True))
        else:
            with xp.errstate(divide="ignore", invalid="ignore"):
                scaled = d if p == 2 else xp.sign(d) * xp.abs(d) ** (p - 1)
                gd = xp.where(norm == 0, 0.0, scaled * g / norm ** (p - 1)).astype(d.dtype)
        need_a, need_b = self.needs_input_grad
        return (sum_to(gd, self.shapes[0]) if need_a else None,
                sum_to(-gd, self.shapes[1]) if need_b else None)


def _pairwise_distance(a: Tensor, b: Tensor, p: float, eps: float) -> Tensor:
    return PairwiseDistance(p, eps)(a, b)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor,
                        margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average: bool | None = None,
                        reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    r"""Triplet margin loss (Schroff et al., 2015): the anchor should be nearer the positive
    than the negative by ``margin``. With :math:`d(u, v) = \lVert u - v + \varepsilon\rVert_p`
    over the last axis,

    .. math::
        \ell = \max(0,\; \text{margin} + d(a, p) - d(a, n)),

    where with ``swap`` (Balntas et al., 2016) :math:`d(a, n)` becomes
    :math:`\min(d(a, n), d(p, n))`.

    Shape:
        - Anchor, Positive, Negative: ``(N, D)`` or ``(D)``, the same number of dimensions.
        - Output: a scalar, or ``(N)`` if ``reduction='none'``.

    Example::

        >>> a, pos, neg = wally.randn(4, 8), wally.randn(4, 8), wally.randn(4, 8)
        >>> F.triplet_margin_loss(a, pos, neg, margin=0.5, swap=True).shape
        wally.Size([])
    """
    name = "triplet_margin_loss"
    reduction = _reduction(name, reduction, size_average, reduce)
    for what, x in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        _float_input(name, x, what)
    dims = (anchor.ndim, positive.ndim, negative.ndim)
    if len(set(dims)) != 1:
        raise ValueError(
            f"{name}: expected anchor, positive and negative of the same number of dimensions, "
            f"got {dims[0]}-D, {dims[1]}-D and {dims[2]}-D inputs"
        )
    if dims[0] not in (1, 2):
        raise ValueError(f"{name}: expected 1-D (D,) or 2-D (N, D) inputs, got "
                         f"{dims[0]}-D inputs of shape {tuple(anchor.shape)}")
    margin = _number(name, "margin", margin)
    if not margin > 0:
        raise ValueError(f"{name}: margin must be > 0, got {margin}")
    p = _number(name, "p", p)
    if not p > 0:
        raise ValueError(f"{name}: p must be > 0 (a p-norm), got {p}")
    eps = _number(name, "eps", eps)
    d_pos = _pairwise_distance(anchor, positive, p, eps)
    d_neg = _pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = ops.minimum(d_neg, _pairwise_distance(positive, negative, p, eps))
    loss = (margin + d_pos - d_neg).clamp(min=0)
    return _reduced(loss, reduction)


# ----- soft margin ---------------------------------------------------------------------------
class SoftMargin(ElementwiseLoss):
    """ℓ = log(1 + exp(−y x)), as max(−yx, 0) + log1p(exp(−|yx|)) so it never overflows."""

    def loss(self, x: ndarray, y: ndarray) -> ndarray:
        z = -y * x
        if any(self.needs_input_grad):
            self.x, self.y = x, y
            # σ(z) = (1 + tanh(z/2)) / 2, stable both ways
            self.sigma = 0.5 * (1.0 + xp.tanh(0.5 * z))
        return xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))

    def partials(self, need_x: bool, need_y: bool) -> tuple[Any, Any]:
        return -self.y * self.sigma, -self.x * self.sigma


def soft_margin_loss(input: Tensor, target: Any, size_average: bool | None = None,
                     reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    r"""Two-class logistic loss for labels :math:`y = \pm 1`:
    :math:`\ell = \log(1 + e^{-y x})`, computed without overflow for any :math:`y x`.

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``, the same shape, values ±1.
        - Output: a scalar, or ``(*)`` if ``reduction='none'``.

    Example::

        >>> F.soft_margin_loss(wally.tensor([0.0, 2.0]), wally.tensor([1.0, -1.0]))
        tensor(1.4100)
    """
    name = "soft_margin_loss"
    reduction = _reduction(name, reduction, size_average, reduce)
    _float_input(name, input)
    _broadcast_target(name, input, target, warn=False)
    return SoftMargin(reduction)(input, _operand(target))


def multilabel_soft_margin_loss(input: Tensor, target: Any, weight: Tensor | None = None,
                                size_average: bool | None = None, reduce: bool | None = None,
                                reduction: str = "mean") -> Tensor:
    r"""Multi-label one-versus-all logistic loss, averaged over the :math:`C` classes of each
    sample:

    .. math::
        \ell_n = -\frac1C \sum_c w_c \bigl[y_{nc} \log \sigma(x_{nc})
                 + (1 - y_{nc}) \log \sigma(-x_{nc})\bigr],

    which is the per-element :func:`binary_cross_entropy_with_logits`, summed over the last
    axis and divided by :math:`C`, then ``reduction`` over samples.

    Shape:
        - Input: ``(N, C)`` or ``(C)``.  - Target: the input's shape, values in {0, 1}.
        - Weight: ``(C)`` (broadcasts to the input).
        - Output: a scalar, or ``(N)`` if ``reduction='none'``.

    Example::

        >>> F.multilabel_soft_margin_loss(wally.zeros(2, 3), wally.tensor([[1.0, 0, 1],
        ...                                                                [0, 0, 1]]))
        tensor(0.6931)
    """
    name = "multilabel_soft_margin_loss"
    reduction = _reduction(name, reduction, size_average, reduce)
    _float_input(name, input)
    if input.ndim == 0:
        raise ValueError(f"{name}: expected an input of shape (N, C) or (C,), got a 0-d input")
    _check_same_shape(name, input, target)
    shape = tuple(input.shape)
    w = _elementwise_weight(name, weight, shape, "a weight", input.dtype)
    per_class = BCEWithLogits(w, None, "none")(input, _operand(target))
    return _reduced(per_class.sum(-1) / shape[-1], reduction)
