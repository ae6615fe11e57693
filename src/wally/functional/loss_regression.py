"""Robust and likelihood losses: smooth L1, Huber, Poisson and Gaussian NLL, KL divergence.

Each is an element-wise function ℓ(x, y) of an input and a target that broadcast, with an
analytic backward for both (``sum_to`` undoes the broadcasting), then PyTorch's reduction.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import TYPE_CHECKING, Any

from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.functional.loss import (
    _array,
    _float_input,
    _operand,
    _reduce,
    _reduction,
    _unreduce,
)
from wally.ops import sum_to

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = ["smooth_l1_loss", "huber_loss", "poisson_nll_loss", "gaussian_nll_loss", "kl_div"]


def _broadcast_target(name: str, input: Tensor, target: Any, warn: bool = True) -> None:
    input_shape, target_shape = tuple(input.shape), tuple(_array(target).shape)
    try:
        xp.broadcast_shapes(input_shape, target_shape)
    except ValueError:
        raise ValueError(
            f"{name}: the target shape {target_shape} does not broadcast with the input shape "
            f"{input_shape}"
        ) from None
    if warn and target_shape != input_shape:
        warnings.warn(
            f"{name}: using a target size {target_shape} that is different to the input size "
            f"{input_shape}. This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )


def _real(name: str, what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {what} must be a real number, got {value!r}")
    return float(value)


class ElementwiseLoss(Function):
    """Base of ℓ(x, y) element-wise with broadcasting; a subclass gives ``loss`` and the
    partial derivatives ``partials`` (∂ℓ/∂x, ∂ℓ/∂y) on the broadcast shape."""

    def __init__(self, reduction: str, weight: ndarray | None = None) -> None:
        self.reduction = reduction
        self.weight = weight

    def loss(self, x: ndarray, y: ndarray) -> ndarray:
        raise NotImplementedError

    def partials(self, need_x: bool, need_y: bool) -> tuple[Any, Any]:
        raise NotImplementedError

    def forward(self, x: ndarray, target: ndarray) -> ndarray:
        self.target_dtype = target.dtype
        self.x_shape, self.t_shape = x.shape, target.shape
        loss = self.loss(x, target.astype(x.dtype, copy=False))
        if self.weight is not None:
            loss = loss * self.weight
        self.size = loss.size
        return self.reduce(loss)

    def reduce(self, loss: ndarray) -> ndarray:
        return _reduce(loss, self.reduction)

    def unreduce(self, gy: ndarray) -> ndarray:
        return _unreduce(gy, self.reduction, self.size)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_y = self.needs_input_grad
        g = self.unreduce(gy)
        if self.weight is not None:
            g = g * self.weight
        dx, dy = self.partials(need_x, need_y)
        gx = sum_to(g * dx, self.x_shape) if need_x else None
        gy_ = sum_to(g * dy, self.t_shape).astype(self.target_dtype, copy=False) \
            if need_y else None
        return gx, gy_


# ----- smooth L1 and Huber -------------------------------------------------------------------
class SmoothL1(ElementwiseLoss):
    """d = x − y; ℓ = ½d²/β if |d| < β else |d| − ½β (``'smooth_l1'``), or
    ℓ = ½d² if |d| < δ else δ(|d| − ½δ) (``'huber'``); |d| when β = 0."""

    def __init__(self, kind: str, beta: float, reduction: str,
                 weight: ndarray | None = None) -> None:
        super().__init__(reduction, weight)
        self.kind = kind
        self.beta = beta

    def loss(self, x: ndarray, y: ndarray) -> ndarray:
        d = x - y
        z = xp.abs(d)
        beta = self.beta
        if any(self.needs_input_grad):
            self.d = d
        if beta == 0:
            return z
        quadratic = z < beta
        if self.kind == "huber":
            return xp.where(quadratic, 0.5 * d * d, beta * (z - 0.5 * beta))
        return xp.where(quadratic, 0.5 * d * d / beta, z - 0.5 * beta)

    def partials(self, need_x: bool, need_y: bool) -> tuple[Any, Any]:
        d, beta = self.d, self.beta
        if beta == 0:
            slope = xp.sign(d)
        else:
            # PyTorch's rule: the quadratic piece owns |d| = β, where both pieces agree.
            slope = xp.clip(d, -beta, beta)
            if self.kind == "smooth_l1":
                slope = slope / beta
        return slope, -slope


def smooth_l1_loss(input: Tensor, target: Any, size_average: bool | None = None,
                   reduce: bool | None = None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    r"""Smooth L1 loss: quadratic near zero, linear beyond ``beta``. With :math:`d = x - y`,

    .. math::
        \ell = \begin{cases} \tfrac12 d^2/\beta & |d| < \beta \\
               |d| - \tfrac12\beta & \text{otherwise,} \end{cases}

    and :func:`l1_loss` when :math:`\beta = 0`. The gradient is :math:`\mathrm{clip}(d, -\beta,
    \beta)/\beta` (:math:`\mathrm{sign}(d)` for :math:`\beta = 0`). A target of another shape
    broadcasts, with PyTorch's warning.

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``, the same shape.
        - Output: a scalar, or ``(*)`` if ``reduction='none'``.

    Example::

        >>> F.smooth_l1_loss(wally.tensor([0.5, 3.0]), wally.tensor([0.0, 0.0]))
        tensor(1.3125)
    """
    name = "smooth_l1_loss"
    reduction = _reduction(name, reduction, size_average, reduce)
    _float_input(name, input)
    beta = _real(name, "beta", beta)
    if not beta >= 0:
        raise ValueError(f"{name}: beta must be >= 0, got {beta}")
    _broadcast_target(name, input, target)
    return SmoothL1("smooth_l1", beta, reduction)(input, _operand(target))


def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    r"""Huber loss: with :math:`d = x - y`,

    .. math::
        \ell = w \cdot \begin{cases} \tfrac12 d^2 & |d| < \delta \\
               \delta\,(|d| - \tfrac12\delta) & \text{otherwise,} \end{cases}

    which is ``delta * smooth_l1_loss(beta=delta)``. ``'mean'`` divides by the element count,
    also with a ``weight`` (PyTorch's rule for this loss). The gradient is
    :math:`w\,\mathrm{clip}(d, -\delta, \delta)`.

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``, the same shape.  - Weight: ``(*)``.
        - Output: a scalar, or ``(*)`` if ``reduction='none'``.

    Example::

        >>> F.huber_loss(wally.tensor([0.5, 3.0]), wally.tensor([0.0, 0.0]), delta=2.0)
        tensor(2.0625)
    """
    name = "huber_loss"
    reduction = _reduction(name, reduction)
    _float_input(name, input)
    delta = _real(name, "delta", delta)
    if not delta > 0:
        raise ValueError(f"{name}: delta must be > 0, got {delta}")
    _broadcast_target(name, input, target)
    w = None
    if weight is not None:
        w = _array(weight)
        if w.shape != tuple(input.shape):
            raise ValueError(f"{name}: expected a weight of the input's shape "
                             f"{tuple(input.shape)}, got shape {w.shape}")
        w = w.astype(input.dtype, copy=False)
    return SmoothL1("huber", delta, reduction, w)(input, _operand(target))


# ----- Poisson negative log-likelihood -------------------------------------------------------
class PoissonNLL(ElementwiseLoss):
    """ℓ = eˣ − y x (log_input) or x − y log(x + ε), plus Stirling's y log y − y + ½ log(2πy)
    where y > 1 if ``full``."""

    def __init__(self, log_input: bool, full: bool, eps: float, reduction: str) -> None:
        super().__init__(reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def loss(self, x: ndarray, y: ndarray) -> ndarray:
        if self.log_input:
            exp_x = xp.exp(x)
            loss = exp_x - y * x
        else:
            with xp.errstate(divide="ignore", invalid="ignore"):
                log_x = xp.log(x + self.eps)
            loss = x - y * log_x
        if any(self.needs_input_grad):
            self.x, self.y = x, y
            self.extra = exp_x if self.log_input else log_x
        if self.full:
            counted = y > 1
            safe = xp.where(counted, y, 1.0).astype(x.dtype, copy=False)
            stirling = safe * xp.log(safe) - safe + 0.5 * xp.log(2 * math.pi * safe)
            loss = loss + xp.where(counted, stirling, 0.0).astype(x.dtype, copy=False)
            self.counted, self.safe = counted, safe
        return loss

    def partials(self, need_x: bool, need_y: bool) -> tuple[Any, Any]:
        x, y = self.x, self.y
        if self.log_input:
            dx, dy = self.extra - y, -x
        else:
            dx = 1.0 - y / (x + self.eps) if need_x else None
            dy = -self.extra
        if need_y and self.full:
            dy = dy + xp.where(self.counted, xp.log(self.safe) + 0.5 / self.safe, 0.0)
        return dx, dy


def poisson_nll_loss(input: Tensor, target: Any, log_input: bool = True, full: bool = False,
                     size_average: bool | None = None, eps: float = 1e-8,
                     reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    r"""Negative log-likelihood of a Poisson target :math:`y` with rate :math:`\lambda`:

    .. math::
        \ell = \lambda - y \log \lambda
             = \begin{cases} e^x - y\,x & \text{log\_input (} x = \log\lambda) \\
               x - y \log(x + \varepsilon) & \text{otherwise (} x = \lambda), \end{cases}

    plus, if ``full``, Stirling's approximation of :math:`\log y!`,
    :math:`y \log y - y + \tfrac12 \log(2\pi y)`, for targets :math:`y > 1` (0 elsewhere).

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``, the same shape (broadcasts).
        - Output: a scalar, or ``(*)`` if ``reduction='none'``.

    Example::

        >>> F.poisson_nll_loss(wally.tensor([0.0, 1.0]), wally.tensor([1.0, 2.0]))
        tensor(0.8591)
    """
    name = "poisson_nll_loss"
    reduction = _reduction(name, reduction, size_average, reduce)
    _float_input(name, input)
    eps = _real(name, "eps", eps)
    _broadcast_target(name, input, target, warn=False)
    return PoissonNLL(bool(log_input), bool(full), eps, reduction)(input, _operand(target))


# ----- Gaussian negative log-likelihood ------------------------------------------------------
class GaussianNLL(Function):
    """ℓ = ½ (log v + (x − y)² / v) [+ ½ log 2π], v = max(var, ε) with the clamp's gradient
    passing straight through (PyTorch clamps under no_grad)."""

    def __init__(self, full: bool, eps: float, reduction: str) -> None:
        self.full, self.eps, self.reduction = full, eps, reduction

    def forward(self, x: ndarray, target: ndarray, var: ndarray) -> ndarray:
        self.dtypes = (target.dtype, var.dtype)
        self.shapes = (x.shape, target.shape, var.shape)
        y = target.astype(x.dtype, copy=False)
        v = xp.maximum(var.astype(x.dtype, copy=False), self.eps).astype(x.dtype, copy=False)
        d = x - y
        loss = 0.5 * (xp.log(v) + d * d / v)
        if self.full:
            loss = loss + 0.5 * math.log(2 * math.pi)
        if any(self.needs_input_grad):
            self.d, self.v = d, v
        self.size = loss.size
        return _reduce(loss, self.reduction)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        g = _unreduce(gy, self.reduction, self.size)
        d_over_v = self.d / self.v
        gd = g * d_over_v
        need_x, need_y, need_v = self.needs_input_grad
        x_shape, t_shape, v_shape = self.shapes
        gx = sum_to(gd, x_shape) if need_x else None
        gt = sum_to(-gd, t_shape).astype(self.dtypes[0], copy=False) if need_y else None
        gv = None
        if need_v:
            gv = g * (0.5 / self.v) * (1.0 - self.d * d_over_v)
            gv = sum_to(gv, v_shape).astype(self.dtypes[1], copy=False)
        return gx, gt, gv


def gaussian_nll_loss(input: Tensor, target: Any, var: Any, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    r"""Negative log-likelihood of a target under a Gaussian with mean ``input`` and variance
    ``var``:

    .. math::
        \ell = \tfrac12 \left(\log \max(v, \varepsilon)
               + \frac{(x - y)^2}{\max(v, \varepsilon)}\right)
               \;[+\, \tfrac12 \log 2\pi \text{ if full}].

    As in PyTorch the clamp at :math:`\varepsilon` is invisible to autograd: the gradient with
    respect to ``var`` is taken at the clamped value and passed straight through. ``var`` may
    be a number, have the input's shape (heteroscedastic), lack the input's last axis
    (it is unsqueezed), or have the input's rank with exactly one axis of size 1 where the
    input's differs (homoscedastic along that axis); anything else is an error.

    Shape:
        - Input: ``(N, *)`` or ``(*)``.  - Target: the input's shape (broadcasts).
        - Var: as above, non-negative.
        - Output: a scalar, or the broadcast shape if ``reduction='none'``.

    Example::

        >>> F.gaussian_nll_loss(wally.tensor([0.0, 1.0]), wally.tensor([0.0, 0.0]), 1.0)
        tensor(0.2500)
    """
    name = "gaussian_nll_loss"
    _float_input(name, input)
    shape = tuple(input.shape)
    if isinstance(var, numbers.Real) and not isinstance(var, bool):
        if var < 0:
            raise ValueError(f"{name}: var must be non-negative, got {var}")
        var = xp.full(shape, float(var), dtype=input.dtype)
    var_array = _array(var)
    if var_array.size and bool((var_array < 0).any()):
        raise ValueError(f"{name}: var must be non-negative, got a negative entry "
                         f"{var_array[var_array < 0].flat[0]}")
    var_shape = tuple(var_array.shape)
    var_operand = _operand(var)
    if var_shape != shape:
        if var_shape == shape[:-1] and shape:
            var_operand = var_operand.unsqueeze(-1) if hasattr(var_operand, "unsqueeze") \
                else var_array[..., None]
        elif not (len(var_shape) == len(shape)
                  and sum(v for i, v in zip(shape, var_shape) if i != v) == 1):
            raise ValueError(
                f"{name}: var is of incorrect size: expected the input's shape {shape}, that "
                f"shape without its last axis {shape[:-1]}, or that shape with one axis of "
                f"size 1, got shape {var_shape}"
            )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    _broadcast_target(name, input, target, warn=False)
    eps = _real(name, "eps", eps)
    return GaussianNLL(bool(full), eps, reduction)(input, _operand(target), var_operand)


# ----- Kullback-Leibler divergence -----------------------------------------------------------
class KLDiv(ElementwiseLoss):
    """ℓ = y (log y − x) (0 where y = 0), or eʸ (y − x) with ``log_target``; x is a log-prob."""

    def __init__(self, log_target: bool, reduction: str) -> None:
        super().__init__("sum" if reduction == "batchmean" else reduction)
        self.log_target = log_target
        self.batchmean = reduction == "batchmean"

    def loss(self, x: ndarray, y: ndarray) -> ndarray:
        self.batch = x.shape[0] if x.ndim else 1
        if self.log_target:
            exp_y = xp.exp(y)
            loss = exp_y * (y - x)
        else:
            with xp.errstate(divide="ignore", invalid="ignore"):
                log_y = xp.where(y == 0, 0.0, xp.log(y)).astype(x.dtype, copy=False)
            loss = y * log_y - y * x
        if any(self.needs_input_grad):
            self.x, self.y = x, y
            self.extra = exp_y if self.log_target else log_y
        return loss

    def reduce(self, loss: ndarray) -> ndarray:
        total = super().reduce(loss)
        return (total / self.batch).astype(loss.dtype) if self.batchmean else total

    def unreduce(self, gy: ndarray) -> ndarray:
        return super().unreduce(gy / self.batch if self.batchmean else gy)

    def partials(self, need_x: bool, need_y: bool) -> tuple[Any, Any]:
        x, y = self.x, self.y
        if self.log_target:
            return -self.extra, self.extra * (y - x + 1.0)
        dy = None
        if need_y:
            # PyTorch differentiates xlogy(y, y): log y + y / y, which is NaN at y = 0.
            with xp.errstate(divide="ignore", invalid="ignore"):
                dy = self.extra + y / y - x
        return -y, dy


def kl_div(input: Tensor, target: Any, size_average: bool | None = None,
           reduce: bool | None = None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    r"""Kullback-Leibler divergence :math:`D(y \,\|\, p)` from log-probabilities
    :math:`x = \log p` (``input``) to probabilities :math:`y` (``target``), element-wise

    .. math::
        \ell = y\,(\log y - x) \;\;(0 \text{ where } y = 0), \qquad
        \ell = e^{y}(y - x) \;\text{ if log\_target (} y \text{ is a log-probability).}

    ``reduction='batchmean'`` divides the sum by the batch size (``input.shape[0]``): the
    KL divergence per sample, the mathematically meaningful one. ``'mean'`` divides by the
    element count and, exactly as in PyTorch, warns that it is not the KL divergence.

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``, the same shape (broadcasts).
        - Output: a scalar, or ``(*)`` if ``reduction='none'``.

    Example::

        >>> log_p = F.log_softmax(wally.randn(3, 5), dim=1)
        >>> F.kl_div(log_p, F.softmax(wally.randn(3, 5), dim=1), reduction="batchmean")
    """
    name = "kl_div"
    if size_average is not None or reduce is not None:
        reduction = _reduction(name, reduction, size_average, reduce)
    elif reduction == "mean":
        warnings.warn(
            "kl_div: reduction='mean' divides the total loss by both the batch size and the "
            "support size. 'batchmean' divides only by the batch size, and aligns with the KL "
            "div math definition. 'mean' will be changed to behave the same as 'batchmean' in "
            "the next major release (as PyTorch warns).",
            UserWarning,
            stacklevel=2,
        )
    elif reduction not in ("batchmean", "sum", "none"):
        raise ValueError(f"{name}: reduction must be 'batchmean', 'mean', 'sum' or 'none', "
                         f"got {reduction!r}")
    _float_input(name, input)
    _broadcast_target(name, input, target, warn=False)
    return KLDiv(bool(log_target), reduction)(input, _operand(target))
