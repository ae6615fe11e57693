"""More activation functions: the ELU family, SiLU and Mish, the "hard" piecewise-linear ones,
softsign, log-sigmoid, PReLU, GLU, softmin and threshold.

One ``Function`` each, with a fused backward that keeps only what it reads. Gradients at the
kinks are PyTorch's (written next to each rule), and every input keeps its dtype. ``inplace=True``
goes through ``Tensor._in_place``: the input tensor itself becomes the result, and autograd's
version counters refuse a backward through an op that kept the old values.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.ops_math import (
    Softmax,
    _activation_axis,
    _along_axis,
    _check_float,
    _softmax_args,
    prelu,
)

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = [
    "elu", "elu_", "selu", "selu_", "celu", "celu_", "silu", "mish", "hardswish", "hardsigmoid",
    "hardtanh", "hardtanh_", "relu6", "softsign", "logsigmoid", "prelu", "glu", "softmin",
    "threshold", "threshold_",
]

# SELU's constants (Klambauer et al. 2017, "Self-Normalizing Neural Networks"), as PyTorch has them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _real(name: str, what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {what} must be a real number, got {value!r}")
    return float(value)


def _check_numeric(name: str, input: Tensor) -> None:
    """hardtanh, relu6 and threshold also take integer tensors, as in PyTorch."""
    if input.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a numeric input, got dtype {input.dtype}")


def _apply(fn: Function, input: Tensor, inplace: bool) -> Tensor:
    if inplace:
        return input._in_place(lambda x: fn(x))
    return fn(input)


def _sigmoid(x: ndarray) -> ndarray:
    """σ(x) = 1/(1 + e^{−x}) without overflow and with full relative accuracy in both tails:
    e^{−|x|}/(1 + e^{−|x|}) for x < 0."""
    e = xp.exp(-xp.abs(x))
    s = 1.0 / (1.0 + e)
    return xp.where(x >= 0, s, e * s)


def _softplus(x: ndarray) -> ndarray:
    """log(1 + e^x) = max(x, 0) + log1p(e^{−|x|}), finite for every finite x."""
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


# ----- ELU, SELU, CELU -----------------------------------------------------------------------
class ELU(Function):
    """y = scale · (x if x > 0 else α (exp(x · input_scale) − 1)); ELU, SELU and CELU.

    ∂y/∂x = scale for x > 0, else scale · α · input_scale · exp(x · input_scale) (x = 0 takes
    the second branch, as in PyTorch: ELU's slope there is α)."""

    def __init__(self, alpha: float, scale: float = 1.0, input_scale: float = 1.0,
                 kind: str = "ELU") -> None:
        self.alpha = alpha
        self.scale = scale
        self.input_scale = input_scale
        self.kind = kind  # "ELU", "SELU" or "CELU": which of the three (for the cost rule)

    def forward(self, x: ndarray) -> ndarray:
        positive = x > 0
        neg = xp.minimum(x, 0) * self.input_scale
        if self.needs_input_grad[0]:
            self.positive, self.neg = positive, neg
        y = xp.where(positive, x, xp.expm1(neg) * self.alpha)
        if self.scale != 1.0:
            y *= self.scale
        return y

    def backward(self, gy: ndarray) -> ndarray:
        # exp itself, not expm1 + 1, which would round the far tail's tiny slopes to 0.
        slope = xp.exp(self.neg) * (self.alpha * self.input_scale)
        slope = xp.where(self.positive, 1.0, slope).astype(gy.dtype, copy=False)
        slope *= gy
        if self.scale != 1.0:
            slope *= self.scale
        return slope


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    r"""Exponential linear unit: :math:`\mathrm{ELU}(x) = x` for :math:`x > 0`, else
    :math:`\alpha (e^x - 1)` (computed with ``expm1``, exact near 0).

    The gradient at ``x == 0`` is ``alpha``, as in PyTorch.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.elu(wally.tensor([-1.0, 2.0]))
        tensor([-0.6321,  2.0000])
    """
    _check_float("elu", input)
    return _apply(ELU(_real("elu", "alpha", alpha)), input, inplace)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place :func:`elu`."""
    return elu(input, alpha, inplace=True)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    r"""Scaled ELU: :math:`\mathrm{SELU}(x) = \lambda\,x` for :math:`x > 0`, else
    :math:`\lambda\,\alpha (e^x - 1)`, with :math:`\alpha \approx 1.6733`,
    :math:`\lambda \approx 1.0507` (Klambauer et al., 2017).

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.selu(wally.tensor([1.0]))
        tensor([1.0507])
    """
    _check_float("selu", input)
    return _apply(ELU(SELU_ALPHA, SELU_SCALE, kind="SELU"), input, inplace)


def selu_(input: Tensor) -> Tensor:
    """In-place :func:`selu`."""
    return selu(input, inplace=True)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    r"""Continuously differentiable ELU:
    :math:`\mathrm{CELU}(x) = \max(0, x) + \min(0, \alpha (e^{x/\alpha} - 1))`.

    The gradient at ``x == 0`` is 1. ``alpha`` must be non-zero.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.celu(wally.tensor([-1.0, 2.0]), alpha=2.0)
        tensor([-0.7869,  2.0000])
    """
    a = _real("celu", "alpha", alpha)
    if a == 0:
        raise ValueError("celu: alpha cannot be 0 (CELU divides by it), got 0")
    _check_float("celu", input)
    return _apply(ELU(a, 1.0, 1.0 / a, kind="CELU"), input, inplace)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place :func:`celu`."""
    return celu(input, alpha, inplace=True)


# ----- SiLU and Mish -------------------------------------------------------------------------
class SiLU(Function):
    """y = x σ(x); ∂y/∂x = σ(x) (1 + x (1 − σ(x)))."""

    def forward(self, x: ndarray) -> ndarray:
        s = _sigmoid(x)
        if self.needs_input_grad[0]:
            self.x, self.s = x, s
        return x * s

    def backward(self, gy: ndarray) -> ndarray:
        x, s = self.x, self.s
        slope = 1.0 - s
        slope *= x
        slope += 1.0
        slope *= s
        slope *= gy
        return slope


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    r"""Sigmoid linear unit (swish): :math:`\mathrm{SiLU}(x) = x\,\sigma(x)`.

    :math:`\sigma` is evaluated as :math:`e^{-|x|}/(1 + e^{-|x|})` for negative ``x``, so the
    far negative tail is accurate (not rounded to 0 early) and never overflows.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.silu(wally.tensor([0.0, 1.0]))
        tensor([0.0000, 0.7311])
    """
    _check_float("silu", input)
    return _apply(SiLU(), input, inplace)


class Mish(Function):
    """y = x tanh(softplus(x)); ∂y/∂x = t + x (1 − t²) σ(x), t = tanh(softplus(x))."""

    def forward(self, x: ndarray) -> ndarray:
        t = xp.tanh(_softplus(x))
        if self.needs_input_grad[0]:
            self.x, self.t = x, t
        return x * t

    def backward(self, gy: ndarray) -> ndarray:
        x, t = self.x, self.t
        slope = 1.0 - t * t
        slope *= x
        slope *= _sigmoid(x)
        slope += t
        slope *= gy
        return slope


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    r"""Mish (Misra, 2019): :math:`\mathrm{Mish}(x) = x \tanh(\mathrm{softplus}(x))`,
    softplus taken as :math:`\max(x, 0) + \log(1 + e^{-|x|})`, finite everywhere.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.mish(wally.tensor([0.0, 1.0]))
        tensor([0.0000, 0.8651])
    """
    _check_float("mish", input)
    return _apply(Mish(), input, inplace)


# ----- the piecewise-linear ones -------------------------------------------------------------
class Hardtanh(Function):
    """y = min(max(x, lo), hi); ∂y/∂x = 1 strictly inside (lo, hi), 0 elsewhere (also at the
    kinks, as in PyTorch)."""

    def __init__(self, min_val: float, max_val: float) -> None:
        self.min_val = min_val
        self.max_val = max_val

    def forward(self, x: ndarray) -> ndarray:
        if self.needs_input_grad[0]:
            self.inside = (x > self.min_val) & (x < self.max_val)
        return xp.clip(x, self.min_val, self.max_val).astype(x.dtype, copy=False)

    def backward(self, gy: ndarray) -> ndarray:
        return gy * self.inside


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    r"""Hard tanh: :math:`\mathrm{HardTanh}(x) = \min(\max(x, \text{min\_val}), \text{max\_val})`.

    The gradient is 1 strictly between the bounds and 0 on and outside them. Integer inputs
    are clamped too (and stay integers), as in PyTorch.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.hardtanh(wally.tensor([-2.0, 0.5, 2.0]))
        tensor([-1.0000,  0.5000,  1.0000])
    """
    lo, hi = _real("hardtanh", "min_val", min_val), _real("hardtanh", "max_val", max_val)
    if lo > hi:
        raise ValueError(
            f"hardtanh: min_val cannot be greater than max_val, got min_val={min_val} and "
            f"max_val={max_val}"
        )
    _check_numeric("hardtanh", input)
    return _apply(Hardtanh(lo, hi), input, inplace)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """In-place :func:`hardtanh`."""
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    r""":math:`\mathrm{ReLU6}(x) = \min(\max(0, x), 6)`, :func:`hardtanh` on ``[0, 6]`` (the
    gradient is 0 at 0 and at 6).

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.relu6(wally.tensor([-1.0, 3.0, 7.0]))
        tensor([0., 3., 6.])
    """
    _check_numeric("relu6", input)
    return _apply(Hardtanh(0.0, 6.0), input, inplace)


class Hardsigmoid(Function):
    """y = clip(x/6 + 1/2, 0, 1); ∂y/∂x = 1/6 strictly inside (−3, 3), else 0."""

    def forward(self, x: ndarray) -> ndarray:
        if self.needs_input_grad[0]:
            self.inside = (x > -3.0) & (x < 3.0)
        y = x * (1.0 / 6.0)
        y += 0.5
        return xp.clip(y, 0.0, 1.0)

    def backward(self, gy: ndarray) -> ndarray:
        return gy * (self.inside * (1.0 / 6.0)).astype(gy.dtype, copy=False)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    r"""Hard sigmoid: :math:`0` for :math:`x \le -3`, :math:`1` for :math:`x \ge 3`, else
    :math:`x/6 + 1/2`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.hardsigmoid(wally.tensor([-4.0, 0.0, 1.5]))
        tensor([0.0000, 0.5000, 0.7500])
    """
    _check_float("hardsigmoid", input)
    return _apply(Hardsigmoid(), input, inplace)


class Hardswish(Function):
    """y = x · clip(x + 3, 0, 6)/6; ∂y/∂x = 0 for x ≤ −3, (2x + 3)/6 for −3 < x < 3, 1 for
    x ≥ 3 (PyTorch's choice at both kinks)."""

    def forward(self, x: ndarray) -> ndarray:
        if self.needs_input_grad[0]:
            self.x = x
        gate = xp.clip(x + 3.0, 0.0, 6.0)
        gate *= 1.0 / 6.0
        gate *= x
        return gate

    def backward(self, gy: ndarray) -> ndarray:
        x = self.x
        slope = x * (1.0 / 3.0)
        slope += 0.5
        slope *= x > -3.0
        slope = xp.where(x >= 3.0, 1.0, slope).astype(gy.dtype, copy=False)
        slope *= gy
        return slope


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    r"""Hard swish (Howard et al., 2019, MobileNetV3):
    :math:`\mathrm{Hardswish}(x) = x \cdot \mathrm{ReLU6}(x + 3) / 6`.

    Gradient: 0 for :math:`x \le -3`, :math:`x/3 + 1/2` for :math:`-3 < x < 3`, 1 for
    :math:`x \ge 3`, as in PyTorch.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.hardswish(wally.tensor([-4.0, 1.0, 4.0]))
        tensor([-0.0000,  0.6667,  4.0000])
    """
    _check_float("hardswish", input)
    return _apply(Hardswish(), input, inplace)


# ----- softsign, log-sigmoid -----------------------------------------------------------------
class Softsign(Function):
    """y = x / (1 + |x|); ∂y/∂x = 1 / (1 + |x|)²."""

    def forward(self, x: ndarray) -> ndarray:
        denom = xp.abs(x)
        denom += 1.0
        if self.needs_input_grad[0]:
            self.denom = denom
        return x / denom

    def backward(self, gy: ndarray) -> ndarray:
        return gy / (self.denom * self.denom)


def softsign(input: Tensor) -> Tensor:
    r"""Softsign: :math:`\mathrm{SoftSign}(x) = x / (1 + |x|)`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape, values in (−1, 1).

    Example::

        >>> F.softsign(wally.tensor([1.0, -3.0]))
        tensor([ 0.5000, -0.7500])
    """
    _check_float("softsign", input)
    return Softsign()(input)


class LogSigmoid(Function):
    """y = log σ(x) = min(x, 0) − log1p(exp(−|x|)); ∂y/∂x = σ(−x)."""

    def forward(self, x: ndarray) -> ndarray:
        if self.needs_input_grad[0]:
            self.x = x
        y = xp.minimum(x, 0)
        y -= xp.log1p(xp.exp(-xp.abs(x)))
        return y

    def backward(self, gy: ndarray) -> ndarray:
        return gy * _sigmoid(-self.x)


def logsigmoid(input: Tensor) -> Tensor:
    r"""Log-sigmoid: :math:`\log \sigma(x) = -\log(1 + e^{-x})`, computed as
    :math:`\min(x, 0) - \log(1 + e^{-|x|})`, finite and accurate for large :math:`|x|`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape, values below 0.

    Example::

        >>> F.logsigmoid(wally.tensor([0.0, -100.0]))
        tensor([  -0.6931, -100.0000])
    """
    _check_float("logsigmoid", input)
    return LogSigmoid()(input)


# ----- GLU -----------------------------------------------------------------------------------
class GLU(Function):
    """(a, b) = the halves of x along ``axis``; y = a σ(b);
    ∂a = gy σ(b), ∂b = gy a σ(b)(1 − σ(b))."""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: ndarray) -> ndarray:
        a, b = xp.split(x, 2, axis=self.axis)
        s = _sigmoid(b)
        if self.needs_input_grad[0]:
            self.a, self.s = a, s
        return a * s

    def backward(self, gy: ndarray) -> ndarray:
        a, s = self.a, self.s
        ga = gy * s
        gb = ga * a
        gb *= 1.0 - s
        return xp.concatenate([ga, gb], axis=self.axis)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    r"""Gated linear unit (Dauphin et al., 2017): the input is split in halves :math:`a, b`
    along ``dim`` and :math:`\mathrm{GLU}(a, b) = a \otimes \sigma(b)`.

    Shape:
        - Input: ``(*, 2N, *)``, an even size along ``dim``.
        - Output: ``(*, N, *)``.

    Example::

        >>> F.glu(wally.tensor([1.0, 2.0, 0.0, 0.0])).tolist()
        [0.5, 1.0]
    """
    if input.ndim == 0:
        raise ValueError("glu: expected an input with at least 1 dimension (glu halves one), "
                         "got a 0-D tensor")
    axis = _activation_axis("glu", dim, input.ndim)
    if input.shape[axis] % 2:
        raise ValueError(
            f"glu: halving dimension must be even, but dimension {axis} is size "
            f"{input.shape[axis]} (shape {tuple(input.shape)})"
        )
    _check_float("glu", input)
    return GLU(axis)(input)


# ----- softmin -------------------------------------------------------------------------------
class Softmin(Softmax):
    """y = softmax(−x) along one axis; ∂x = −(softmax's backward)."""

    def forward(self, x: ndarray) -> ndarray:
        return super().forward(-x)

    def backward(self, gy: ndarray) -> ndarray:
        gx = super().backward(gy)
        xp.negative(gx, out=gx)
        return gx


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: Any = None) -> Tensor:
    r"""Softmin along ``dim``: :math:`\mathrm{softmin}(x)_i = e^{-x_i} / \sum_j e^{-x_j}`,
    the softmax of :math:`-x` (computed stably). Leaving ``dim`` out picks PyTorch's deprecated
    implicit dimension, with its warning; ``dtype`` casts the input first.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape; slices along ``dim`` sum to 1.

    Example::

        >>> F.softmin(wally.tensor([0.0, 1e4]), dim=0)
        tensor([1., 0.])
    """
    axis, cast = _softmax_args("softmin", input, dim, dtype)
    return _along_axis(Softmin(axis, cast), input)


# ----- threshold -----------------------------------------------------------------------------
class Threshold(Function):
    """y = x if x > threshold else value; ∂y/∂x = 1 where x > threshold, else 0."""

    def __init__(self, threshold: float, value: float) -> None:
        self.threshold = threshold
        self.value = value

    def forward(self, x: ndarray) -> ndarray:
        keep = x > self.threshold
        if self.needs_input_grad[0]:
            self.keep = keep
        return xp.where(keep, x, xp.asarray(self.value).astype(x.dtype))

    def backward(self, gy: ndarray) -> ndarray:
        return gy * self.keep


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    r"""Threshold: :math:`y = x` where :math:`x > \text{threshold}`, else ``value``.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.threshold(wally.tensor([0.5, 2.0]), 1.0, -1.0)
        tensor([-1.,  2.])
    """
    fn = Threshold(_real("threshold", "threshold", threshold), _real("threshold", "value", value))
    _check_numeric("threshold", input)
    return _apply(fn, input, inplace)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    """In-place :func:`threshold`."""
    return _threshold(input, threshold, value, inplace=True)


_threshold = threshold  # for threshold_, whose parameter hides the function's name

