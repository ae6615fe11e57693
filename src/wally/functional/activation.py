"""Activation functions: elementwise non-linearities and the softmax family.

``relu``, ``sigmoid`` and ``tanh`` are the ``Function`` classes in :mod:`wally.ops` that
``Tensor.relu()`` and friends also use; the rest are defined here, one ``Function`` each with
a fused backward. Everything keeps the input's dtype: float32 in, float32 out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from wally import ops
from wally._erf import _erfc
from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.ops_math import (  # the core's: Tensor.softmax/log_softmax use them
    _along_axis,
    _check_float,
    log_softmax,
    softmax,
)

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = [
    "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softplus", "softmax", "log_softmax",
]


# ----- ReLU, sigmoid, tanh: the ops behind the Tensor methods ---------------------------------
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    r"""Rectified linear unit, elementwise: :math:`\mathrm{ReLU}(x) = \max(x, 0)`.

    The gradient at ``x == 0`` is 0, as in PyTorch. ``inplace=True`` is ``input.relu_()``:
    ``input`` itself is changed and returned, and autograd's version check refuses a later
    backward through an op that kept the old values.

    Shape:
        - Input: ``(*)``, any shape.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.relu(wally.tensor([-1.0, 0.0, 2.0]))
        tensor([0., 0., 2.])
    """
    if inplace:
        return input.relu_()
    return ops.ReLU()(input)


def sigmoid(input: Tensor) -> Tensor:
    r"""Logistic sigmoid, elementwise: :math:`\sigma(x) = 1 / (1 + \exp(-x))`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.sigmoid(wally.tensor([0.0]))
        tensor([0.5000])
    """
    return ops.Sigmoid()(input)


def tanh(input: Tensor) -> Tensor:
    r"""Hyperbolic tangent, elementwise: :math:`\tanh(x) = (e^x - e^{-x}) / (e^x + e^{-x})`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.tanh(wally.tensor([0.0]))
        tensor([0.])
    """
    return ops.Tanh()(input)


# ----- leaky ReLU ----------------------------------------------------------------------------
class LeakyReLU(Function):
    """y = x if x > 0 else slope · x, computed as y = x · s with s = 1 or slope."""

    def __init__(self, negative_slope: float) -> None:
        self.negative_slope = negative_slope

    def forward(self, x: ndarray) -> ndarray:
        # The slope as an arithmetic mask: xp.where on random signs is several times slower.
        slope = (x > 0).astype(x.dtype)
        slope *= 1.0 - self.negative_slope
        slope += self.negative_slope
        if self.needs_input_grad[0]:
            self.slope = slope
        return x * slope

    def backward(self, gy: ndarray) -> ndarray:
        return gy * self.slope


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    r"""Leaky ReLU, elementwise: :math:`y = x` for :math:`x > 0`, else
    :math:`y = \text{negative\_slope} \cdot x`.

    The gradient at ``x == 0`` is ``negative_slope``, as in PyTorch. With ``inplace=True``
    ``input`` itself is changed and returned (checked by autograd's version counters).

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.leaky_relu(wally.tensor([-2.0, 3.0]), 0.1)
        tensor([-0.2000,  3.0000])
    """
    _check_float("leaky_relu", input)
    if inplace:
        return input._in_place(lambda x: LeakyReLU(float(negative_slope))(x))
    return LeakyReLU(float(negative_slope))(input)


# ----- GELU ----------------------------------------------------------------------------------
_SQRT_2 = math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELU(Function):
    """y = x · Φ(x), Φ the standard normal CDF (exact, or with the tanh approximation)."""

    def __init__(self, approximate: str) -> None:
        self.approximate = approximate

    def forward(self, x: ndarray) -> ndarray:
        if self.approximate == "tanh":
            # (1 + tanh u)/2 = σ(2u) = 1/(1 + exp(−2u)): accurate in the negative tail, where
            # 1 + tanh u cancels to rounding noise (exp overflowing to inf gives exactly 0).
            inner = x * x
            inner *= 0.044715
            inner += 1.0
            inner *= x
            inner *= -2.0 * _SQRT_2_PI
            with xp.errstate(over="ignore"):
                half = xp.exp(inner, out=inner)
            half += 1.0
            xp.divide(1.0, half, out=half)
            if self.needs_input_grad[0]:
                self.x, self.half = x, half
            return x * half
        # Φ(x) = erfc(−x/√2)/2 keeps relative accuracy in the far negative tail.
        cdf = _erfc(x * (-1.0 / _SQRT_2))
        cdf *= 0.5
        if self.needs_input_grad[0]:
            self.x, self.cdf = x, cdf
        return x * cdf

    def backward(self, gy: ndarray) -> ndarray:
        x = self.x
        if self.approximate == "tanh":
            # d/dx [x σ(2u)] = σ(2u) + x · 2σ(2u)(1 − σ(2u)) · u'(x)
            half = self.half
            slope = x * x
            slope *= 3.0 * 0.044715
            slope += 1.0
            slope *= (2.0 * _SQRT_2_PI) * x
            slope *= half
            slope *= 1.0 - half
            slope += half
            slope *= gy
            return slope
        pdf = x * x
        pdf *= -0.5
        xp.exp(pdf, out=pdf)
        pdf *= _INV_SQRT_2PI * x
        pdf += self.cdf
        pdf *= gy
        return pdf


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    r"""Gaussian error linear unit: :math:`\mathrm{GELU}(x) = x\,\Phi(x)
    = \tfrac{x}{2}\bigl(1 + \mathrm{erf}(x/\sqrt{2})\bigr)`.

    With ``approximate='tanh'``: :math:`\tfrac{x}{2}\bigl(1 + \tanh(\sqrt{2/\pi}\,
    (x + 0.044715\,x^3))\bigr)`. The exact form evaluates erf with Cody's rational
    approximations (relative error below 1e-15 in float64), without SciPy.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.gelu(wally.tensor([-1.0, 0.0, 1.0]))
        tensor([-0.1587,  0.0000,  0.8413])
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    _check_float("gelu", input)
    return _along_axis(GELU(approximate), input)  # a 0-d input runs as one element


# ----- softplus ------------------------------------------------------------------------------
class Softplus(Function):
    """y = log(1 + exp(β x)) / β, and y = x where β x > threshold."""

    def __init__(self, beta: float, threshold: float) -> None:
        self.beta = beta
        self.threshold = threshold

    def forward(self, x: ndarray) -> ndarray:
        bx = x * self.beta
        linear = bx > self.threshold
        # max(bx, 0) + log1p(exp(-|bx|)) never overflows, whatever the threshold.
        soft = (xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))) / self.beta
        if self.needs_input_grad[0]:
            self.bx, self.linear = bx, linear
        return xp.where(linear, x, soft)  # the mask is nearly always all False: fast

    def backward(self, gy: ndarray) -> ndarray:
        sig = xp.tanh(0.5 * self.bx)  # σ(βx) = (1 + tanh(βx/2)) / 2, stable both ways
        sig += 1.0
        sig *= 0.5
        sig += self.linear * (1.0 - sig)  # slope 1 where the output is x itself
        return gy * sig


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    r"""Softplus: :math:`\mathrm{Softplus}(x) = \tfrac{1}{\beta}\log(1 + \exp(\beta x))`,
    reverting to :math:`x` where :math:`\beta x > \text{threshold}` (PyTorch's rule).

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.softplus(wally.tensor([0.0]))
        tensor([0.6931])
    """
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero, got 0")
    _check_float("softplus", input)
    return Softplus(float(beta), float(threshold))(input)
