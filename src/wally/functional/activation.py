"""Activation functions: elementwise non-linearities and the softmax family.

``relu``, ``sigmoid`` and ``tanh`` are the ``Function`` classes in :mod:`wally.ops` that
``Tensor.relu()`` and friends also use; the rest are defined here, one ``Function`` each with
a fused backward. Everything keeps the input's dtype: float32 in, float32 out.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from wally import ops
from wally.autograd import Function
from wally.backend import ndarray, xp

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = [
    "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softplus", "softmax", "log_softmax",
]


# ----- helpers -------------------------------------------------------------------------------
def _axis(name: str, dim: Any, ndim: int) -> int:
    """Normalise ``dim`` for an ``ndim``-D input; a 0-d input behaves as 1-D, as in PyTorch."""
    size = max(ndim, 1)
    if not isinstance(dim, (int, xp.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name}: dim must be an int, got {type(dim).__name__} {dim!r}")
    if not -size <= dim < size:
        # IndexError, as PyTorch and wally.ops raise for a dimension out of range.
        raise IndexError(
            f"{name}: dim {dim} is out of range for a {ndim}-D input "
            f"(expected {-size} <= dim <= {size - 1})"
        )
    return int(dim) % size


def _check_float(name: str, input: Tensor) -> None:
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point input, got dtype {input.dtype}")


def _implicit_softmax_dim(name: str, ndim: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. "
        "Change the call to include dim=X as an argument.",
        UserWarning,
        stacklevel=4,
    )
    return 0 if ndim in (0, 1, 3) else 1


# Cody's rational Chebyshev approximations to erfc (W. J. Cody, "Rational Chebyshev
# approximations for the error function", Math. Comp. 23, 1969; Netlib specfun CALERF):
# relative error below 1e-15 in float64 wherever erfc is a normal number, and the same formulas
# serve float32 (relative error below 1e-6 there).
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)
_SQRT_1_PI = 0.56418958354775628695  # 1 / sqrt(pi)


def _rational(t: ndarray, num_coefs: tuple[float, ...], den_coefs: tuple[float, ...]) -> ndarray:
    """(n_k t^k + ... + n_0) / (t^k + d_{k-1} t^{k-1} + ... + d_0) by Horner's rule, in place.

    ``num_coefs`` is (n_k, n_0, n_1, ..., n_{k-1}) and ``den_coefs`` (d_0, ..., d_{k-1}) in
    Cody's storage order: the numerator's leading coefficient first, the constants last."""
    k = len(den_coefs)
    num = t * num_coefs[0]
    den = t.copy()
    for i in range(k - 1):
        num += num_coefs[i + 1]
        num *= t
        den += den_coefs[i]
        den *= t
    num += num_coefs[k]
    den += den_coefs[k - 1]
    num /= den
    return num


_ERFC_BLOCK = 1 << 16  # elements per block: the ~15 temporaries stay in the L2 cache


def _erfc(z: ndarray) -> ndarray:
    """erfc(z) = 1 − erf(z) = (2/√π) ∫_z^∞ exp(−t²) dt, elementwise in ``z``'s float dtype.

    About a hundred elementwise passes, so large arrays go block by block to stay in cache
    (three times faster than whole-array passes at a million elements)."""
    if z.size <= _ERFC_BLOCK:
        return _erfc_block(z)
    flat = z.reshape(-1)
    out = xp.empty_like(flat)
    for start in range(0, flat.size, _ERFC_BLOCK):
        out[start:start + _ERFC_BLOCK] = _erfc_block(flat[start:start + _ERFC_BLOCK])
    return out.reshape(z.shape)


def _erfc_block(z: ndarray) -> ndarray:
    """Cody's three intervals, each evaluated on a clipped copy of |z| and blended in with
    arithmetic masks: ``where`` or boolean indexing on a random mask costs NumPy 10-20 ms per
    million elements in branch mispredictions, an arithmetic pass about 1 ms."""
    y = xp.abs(z)
    dtype = z.dtype

    # |z| <= 0.46875: erf(z) = z R1(z²)
    t = xp.minimum(y, 0.46875)
    t *= t
    near = _rational(t, (_ERF_A[4], *_ERF_A[:4]), _ERF_B)
    near *= xp.clip(z, -0.46875, 0.46875)
    xp.subtract(1.0, near, out=near)

    # 0.46875 < |z| <= 4: erfc(y) = exp(−y²) R2(y)
    ym = xp.clip(y, 0.46875, 4.0)
    r = _rational(ym, (_ERF_C[8], *_ERF_C[:8]), _ERF_D)

    # |z| > 4: erfc(y) = exp(−y²)/y · (1/√π − R3(1/y²)/y²)
    # Beyond ``cap`` erfc(y) is below the dtype's smallest normal number: clip there and give 0,
    # since arithmetic on subnormals runs about a hundred times slower.
    cap = 26.0 if dtype == xp.float64 else 9.0
    yb = xp.clip(y, 4.0, cap)
    t = yb * yb
    xp.divide(1.0, t, out=t)
    far = _rational(t, (_ERF_P[5], *_ERF_P[:5]), _ERF_Q)
    far *= t
    xp.subtract(_SQRT_1_PI, far, out=far)
    far /= yb
    far -= r
    far *= (y > 4.0).astype(dtype)
    r += far
    r *= (y <= cap).astype(dtype)

    # exp(−y²) as exp(−s²)·exp(−(y−s)(y+s)) with s = y rounded down to 1/16: s² is exact, so
    # the rounding error of y² (large for large y) never reaches the exponent.
    yc = xp.minimum(y, cap)
    s = xp.trunc(yc * 16.0)
    s *= 1.0 / 16.0
    e = yc - s
    e *= yc + s
    xp.negative(e, out=e)
    xp.exp(e, out=e)
    s *= s
    xp.negative(s, out=s)
    xp.exp(s, out=s)
    r *= s
    r *= e

    # erfc(−y) = 2 − erfc(y), then |z| <= 0.46875 from the first interval
    negative = (z < 0).astype(dtype)
    r += negative * (2.0 - 2.0 * r)
    small = (y <= 0.46875).astype(dtype)
    near -= r
    near *= small
    r += near
    # NaN stays NaN; the clipping above would otherwise hide it (inf is handled by the clips)
    return r if not xp.isnan(z).any() else xp.where(xp.isnan(z), z, r)


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


# ----- softmax and log-softmax ---------------------------------------------------------------
class Softmax(Function):
    """y_i = exp(x_i − max x) / Σ_j exp(x_j − max x) along one axis."""

    def __init__(self, axis: int, dtype: Any = None) -> None:
        self.axis = axis
        self.dtype = dtype

    def forward(self, x: ndarray) -> ndarray:
        self.in_dtype = x.dtype
        if self.dtype is not None:
            x = x.astype(self.dtype, copy=False)
        if not x.size:  # nothing to normalise (max of an empty axis has no value)
            self.y = x
            return x.copy()
        with xp.errstate(over="ignore"):  # x − max overflowing to −inf only means exp → 0
            y = x - x.max(axis=self.axis, keepdims=True)
        xp.exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        if self.needs_input_grad[0]:
            self.y = y
        return y

    def backward(self, gy: ndarray) -> ndarray:
        y = self.y
        gx = gy - (gy * y).sum(axis=self.axis, keepdims=True)
        gx *= y
        return gx.astype(self.in_dtype, copy=False)


class LogSoftmax(Function):
    """y_i = x_i − max x − log Σ_j exp(x_j − max x) along one axis."""

    def __init__(self, axis: int, dtype: Any = None) -> None:
        self.axis = axis
        self.dtype = dtype

    def forward(self, x: ndarray) -> ndarray:
        self.in_dtype = x.dtype
        if self.dtype is not None:
            x = x.astype(self.dtype, copy=False)
        if not x.size:  # nothing to normalise (max of an empty axis has no value)
            self.y = x
            return x.copy()
        with xp.errstate(over="ignore"):
            y = x - x.max(axis=self.axis, keepdims=True)
        y -= xp.log(xp.exp(y).sum(axis=self.axis, keepdims=True))
        if self.needs_input_grad[0]:
            self.y = y
        return y

    def backward(self, gy: ndarray) -> ndarray:
        gx = gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)
        return gx.astype(self.in_dtype, copy=False)


def _softmax_args(name: str, input: Tensor, dim: Any, dtype: Any) -> tuple[int, Any]:
    ndim = input.ndim
    axis = _implicit_softmax_dim(name, ndim) if dim is None else _axis(name, dim, ndim)
    cast = None if dtype is None else xp.dtype(dtype)
    if (input.dtype if cast is None else cast).kind != "f":
        raise TypeError(
            f"{name}: expected a floating-point input (or a floating dtype= to cast it to), got "
            f"dtype {input.dtype if cast is None else cast}"
        )
    return axis, cast


def _along_axis(fn: Function, input: Tensor) -> Tensor:
    if input.ndim == 0:  # a scalar is a 1-element vector along dim 0
        return ops.reshape(fn(ops.reshape(input, (1,))), ())
    return fn(input)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: Any = None) -> Tensor:
    r"""Softmax along ``dim``: :math:`\mathrm{softmax}(x)_i = \exp(x_i) / \sum_j \exp(x_j)`.

    Computed as :math:`\exp(x_i - m) / \sum_j \exp(x_j - m)` with :math:`m = \max_j x_j`, so
    logits of any size stay finite. The backward is fused:
    :math:`\partial x = y \odot (\partial y - \sum_j \partial y_j\, y_j)`. ``dtype``, if given,
    casts the input first (the gradient comes back in the input's dtype). Leaving ``dim`` out
    picks PyTorch's deprecated implicit dimension, with its warning.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape; slices along ``dim`` sum to 1.

    Example::

        >>> F.softmax(wally.tensor([[1.0, 1.0], [0.0, 1e4]]), dim=1)
        tensor([[0.5000, 0.5000],
                [0.0000, 1.0000]])
    """
    axis, cast = _softmax_args("softmax", input, dim, dtype)
    return _along_axis(Softmax(axis, cast), input)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype: Any = None) -> Tensor:
    r"""Log-softmax along ``dim``: :math:`x_i - \log \sum_j \exp(x_j)`.

    Computed as :math:`x_i - m - \log \sum_j \exp(x_j - m)`, :math:`m = \max_j x_j`, which
    is finite for logits of any size (better than ``log(softmax(x))``, which gives ``-inf``
    once a probability underflows). Backward:
    :math:`\partial x = \partial y - \mathrm{softmax}(x) \sum_j \partial y_j`.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> F.log_softmax(wally.tensor([0.0, 0.0]), dim=0)
        tensor([-0.6931, -0.6931])
    """
    axis, cast = _softmax_args("log_softmax", input, dim, dtype)
    return _along_axis(LogSoftmax(axis, cast), input)
