"""The differentiable ops behind ``Tensor``'s methods: arithmetic, reductions, shapes, indexing.

One op, one small ``Function`` class with ``forward``/``backward`` on raw arrays, and a
lowercase function that takes tensors (DeZero, Chainer). Broadcasting is undone in one helper,
:func:`sum_to`, which every elementwise backward uses.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any

from wally._parallel import elementwise, get_num_threads
from wally.autograd import Function, is_grad_enabled
from wally.backend import ndarray, xp
from wally.backends import accel, onednn, tuning
from wally.tensor import MaxResult, Tensor, to_array

_DEFAULT_FLOAT = xp.dtype("float32")


def sum_to(grad: ndarray, shape: tuple[int, ...]) -> ndarray:
    """Sum ``grad`` over the axes that broadcasting expanded, so it gets back ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def _axes(dim: Any, ndim: int) -> tuple[int, ...] | None:
    """Normalise ``dim`` (None, an int or a sequence, negatives allowed) to sorted axes."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, xp.integer)) else tuple(dim)
    axes = []
    for d in dims:
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise IndexError(
                f"Dimension out of range (expected to be in range of "
                f"[{-builtins.max(ndim, 1)}, {builtins.max(ndim, 1) - 1}], but got {d})"
            )
        axes.append(int(d) % builtins.max(ndim, 1))
    return tuple(sorted(axes)) if ndim else ()


def shape_arg(shape: Sequence[Any]) -> tuple[int, ...]:
    """Accept ``f(2, 3)`` and ``f((2, 3))`` alike, as PyTorch's shape arguments do."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


# ----- operand coercion with PyTorch's promotion rules ----------------------------------------
def _is_float(x: Any) -> bool:
    if isinstance(x, (Tensor, ndarray)):
        return bool(x.dtype.kind in "fc")
    return isinstance(x, float)


def _dims(x: Any) -> int:
    return x.ndim if isinstance(x, (Tensor, ndarray)) else 0


def _promote(a: Any, b: Any) -> tuple[Any, Any]:
    """Apply PyTorch's rules where NumPy's differ: floats win over integers without widening
    to float64, and a 0-d operand does not change the dtype of a same-kind tensor operand."""
    if not isinstance(a, Tensor):
        a = a if isinstance(a, (int, float, bool)) else to_array(a)
    if not isinstance(b, Tensor):
        b = b if isinstance(b, (int, float, bool)) else to_array(b)
    if not isinstance(a, (Tensor, ndarray)) and not isinstance(b, (Tensor, ndarray)):
        a = to_array(a)  # two Python numbers: the first becomes a float32/int64/bool tensor
    fa, fb = _is_float(a), _is_float(b)
    if fa != fb:  # an integer operand meets a float one: it becomes that float
        target = (a if fa else b)
        dtype = target.dtype if isinstance(target, (Tensor, ndarray)) else _DEFAULT_FLOAT
        if fa and isinstance(b, (Tensor, ndarray)):
            b = _astype(b, dtype)
        elif fb and isinstance(a, (Tensor, ndarray)):
            a = _astype(a, dtype)
    elif fa and isinstance(a, (Tensor, ndarray)) and isinstance(b, (Tensor, ndarray)) \
            and a.dtype != b.dtype and (a.ndim == 0) != (b.ndim == 0):
        if a.ndim == 0:
            a = _astype(a, b.dtype)
        else:
            b = _astype(b, a.dtype)
    return a, b


def _astype(x: Any, dtype: Any) -> Any:
    return cast(x, dtype) if isinstance(x, Tensor) else x.astype(dtype)


# ----- elementwise arithmetic ------------------------------------------------------------------
class Add(Function):
    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.shapes = (xp.shape(a), xp.shape(b))
        return a + b

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_a, need_b = self.needs_input_grad
        return (sum_to(gy, self.shapes[0]) if need_a else None,
                sum_to(gy, self.shapes[1]) if need_b else None)


class Sub(Function):
    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.shapes = (xp.shape(a), xp.shape(b))
        return a - b

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_a, need_b = self.needs_input_grad
        return (sum_to(gy, self.shapes[0]) if need_a else None,
                sum_to(-gy, self.shapes[1]) if need_b else None)


class Mul(Function):
    # Each operand is kept only for the other's gradient (as PyTorch does), so ``a * 2`` keeps
    # nothing of ``a`` and a later ``a.mul_(3)`` can't invalidate it.
    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        need_a, need_b = self.needs_input_grad
        self.shapes = (xp.shape(a), xp.shape(b))
        self.a = a if need_b else None
        self.b = b if need_a else None
        return a * b

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_a, need_b = self.needs_input_grad
        return (sum_to(gy * self.b, self.shapes[0]) if need_a else None,
                sum_to(gy * self.a, self.shapes[1]) if need_b else None)


class Div(Function):
    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.shapes = (xp.shape(a), xp.shape(b))
        self.a = a if self.needs_input_grad[1] else None  # only d/db reads a
        self.b = b
        return a / b

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_a, need_b = self.needs_input_grad
        ga = gy / self.b
        return (sum_to(ga, self.shapes[0]) if need_a else None,
                sum_to(-ga * self.a / self.b, self.shapes[1]) if need_b else None)


class Pow(Function):
    """y = a ** b, for a tensor base and/or a tensor exponent."""

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.a, self.b = a, b
        self.y = a**b
        return self.y

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_a, need_b = self.needs_input_grad
        a, b = self.a, self.b
        ga = sum_to(gy * b * a ** (b - 1), xp.shape(a)) if need_a else None
        if need_b:
            with xp.errstate(divide="ignore", invalid="ignore"):
                log_a = xp.where(a > 0, xp.log(xp.where(a > 0, a, 1)), 0)
            gb = sum_to(gy * self.y * log_a, xp.shape(b))
        else:
            gb = None
        return ga, gb


class MatMul(Function):
    """y = a @ b, with NumPy's rules for 1-D operands and batch dimensions."""

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_a, need_b = self.needs_input_grad
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        # gy without the axes that 1-D operands dropped: put them back (1-D @ 1-D gives 0-d)
        g = gy.reshape(xp.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
                       + (a2.shape[-2], b2.shape[-1]))
        ga = sum_to(g @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape) if need_a else None
        gb = sum_to(xp.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape) if need_b else None
        return ga, gb


class Maximum(Function):
    """Elementwise maximum; at ties the gradient is split in half, as in PyTorch."""

    def __init__(self, pick: Callable[..., ndarray]) -> None:
        self.pick = pick

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.a, self.b = a, b
        return self.pick(a, b)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        a, b = self.a, self.b
        wins = (self.pick(a, b) == a).astype(gy.dtype)
        share_a = xp.where(a == b, 0.5, wins).astype(gy.dtype)
        need_a, need_b = self.needs_input_grad
        return (sum_to(gy * share_a, xp.shape(a)) if need_a else None,
                sum_to(gy * (1 - share_a), xp.shape(b)) if need_b else None)


def _scaled(other: Any, alpha: Any) -> Any:
    """alpha · other; a Python number times a Python alpha stays a Python number."""
    if isinstance(other, (int, float, bool)) and isinstance(alpha, (int, float, bool)):
        return other * alpha
    return mul(other, alpha)


def add(input: Any, other: Any, alpha: Any = 1) -> Tensor:
    """y = input + alpha · other, broadcasting.

    Shape: the broadcast shape of both operands. Example: ``add(x, 1)``.
    """
    a, b = _promote(input, other if alpha == 1 else _scaled(other, alpha))
    return Add()(a, b)


def sub(input: Any, other: Any, alpha: Any = 1) -> Tensor:
    """y = input − alpha · other, broadcasting.

    Shape: the broadcast shape of both operands. Example: ``sub(x, y)``.
    """
    a, b = _promote(input, other if alpha == 1 else _scaled(other, alpha))
    return Sub()(a, b)


def mul(input: Any, other: Any) -> Tensor:
    """y = input · other elementwise, broadcasting; ∂y/∂input = other.

    Shape: the broadcast shape of both operands. Example: ``mul(x, 2)``.
    """
    return Mul()(*_promote(input, other))


class DivRounding(Function):
    """y = trunc(a / b) or floor(a / b); piecewise constant, so both gradients are zero."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.shapes = (xp.shape(a), xp.shape(b))
        floats = xp.result_type(a, b).kind in "fc"
        if not floats and not xp.all(xp.asarray(b) != 0):
            raise ZeroDivisionError("div: integer division by zero")
        with xp.errstate(divide="ignore", invalid="ignore"):
            if self.mode == "floor":
                return xp.asarray(xp.floor_divide(a, b))
            if floats:
                return xp.asarray(xp.trunc(xp.true_divide(a, b))).astype(
                    xp.result_type(a, b), copy=False)
            q = xp.floor_divide(a, b)  # integers: floor, then one step towards zero
            return xp.asarray(q + ((q < 0) & (xp.remainder(a, b) != 0)))

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_a, need_b = self.needs_input_grad
        return (xp.zeros(self.shapes[0], gy.dtype) if need_a else None,
                xp.zeros(self.shapes[1], gy.dtype) if need_b else None)


def div(input: Any, other: Any, *, rounding_mode: str | None = None) -> Tensor:
    """y = input / other elementwise (true division: integers give float32); with
    ``rounding_mode='trunc'`` y = trunc(input / other), with ``'floor'`` y = ⌊input / other⌋
    (integers stay integers; the gradient of a rounded quotient is zero, as in PyTorch).

    Shape: the broadcast shape of both operands. Example: ``div(x, 2, rounding_mode='floor')``.
    """
    a, b = _promote(input, other)
    if rounding_mode is not None:
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div: expected rounding_mode to be one of None, 'trunc' or "
                             f"'floor', got {rounding_mode!r}")
        return DivRounding(rounding_mode)(a, b)
    if not _is_float(a) and not _is_float(b):  # true division of integers gives floats
        a = _astype(a, _DEFAULT_FLOAT) if isinstance(a, (Tensor, ndarray)) else float(a)
        b = _astype(b, _DEFAULT_FLOAT) if isinstance(b, (Tensor, ndarray)) else float(b)
    return Div()(a, b)


def pow(input: Any, exponent: Any) -> Tensor:
    """y = input ** exponent; ∂y/∂input = exponent · input^(exponent−1).

    Shape: the broadcast shape. Example: ``pow(x, 2)``.
    """
    if isinstance(exponent, (int, float)) and isinstance(input, Tensor):
        if isinstance(exponent, float) and input.dtype.kind not in "fc":
            input = cast(input, _DEFAULT_FLOAT)  # int tensor ** 2.5 is float32, as in torch
        elif input.dtype == xp.bool_:
            input = cast(input, xp.int64)  # bool tensor ** 2 is int64
        return PowScalar(exponent)(input)
    return Pow()(*_promote(input, exponent))


def matmul(input: Any, other: Any) -> Tensor:
    """Matrix product Y = A B, [Y]i,j = Σk [A]i,k [B]k,j, with NumPy's rules for 1-D operands
    and batch dimensions (the note's 1×1 convolution is this product over channels).

    Shape: (..., n, k) @ (k, m) → (..., n, m). Example: ``matmul(K, X)``.
    """
    a, b = _promote(input, other)
    return MatMul()(a, b)


mm = matmul


def maximum(input: Tensor, other: Any) -> Tensor:
    """Elementwise max(input, other); at ties each side gets half the gradient.

    Shape: the broadcast shape. Example: ``maximum(x, y)``.
    """
    return Maximum(xp.maximum)(*_promote(input, other))


def minimum(input: Tensor, other: Any) -> Tensor:
    """Elementwise min(input, other); at ties each side gets half the gradient.

    Shape: the broadcast shape. Example: ``minimum(x, y)``.
    """
    return Maximum(xp.minimum)(*_promote(input, other))


# ----- elementwise functions of one tensor ----------------------------------------------------
class PowScalar(Function):
    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def forward(self, x: ndarray) -> ndarray:
        self.x = x
        return x**self.exponent

    def backward(self, gy: ndarray) -> ndarray:
        p = self.exponent
        return gy * p * self.x ** (p - 1) if p != 2 else gy * 2 * self.x


class Neg(Function):
    def forward(self, x: ndarray) -> ndarray:
        return -x

    def backward(self, gy: ndarray) -> ndarray:
        return -gy


class Exp(Function):
    def forward(self, x: ndarray) -> ndarray:
        self.y = xp.exp(x)
        return self.y

    def backward(self, gy: ndarray) -> ndarray:
        return gy * self.y


class Log(Function):
    def forward(self, x: ndarray) -> ndarray:
        self.x = x
        return xp.log(x)

    def backward(self, gy: ndarray) -> ndarray:
        return gy / self.x


class Sqrt(Function):
    def forward(self, x: ndarray) -> ndarray:
        self.y = xp.sqrt(x)
        return self.y

    def backward(self, gy: ndarray) -> ndarray:
        return gy / (2 * self.y)


class Abs(Function):
    def forward(self, x: ndarray) -> ndarray:
        self.x = x
        return xp.abs(x)

    def backward(self, gy: ndarray) -> ndarray:
        return gy * xp.sign(self.x)


class Sin(Function):
    def forward(self, x: ndarray) -> ndarray:
        self.x = x
        return xp.sin(x)

    def backward(self, gy: ndarray) -> ndarray:
        return gy * xp.cos(self.x)


class Cos(Function):
    def forward(self, x: ndarray) -> ndarray:
        self.x = x
        return xp.cos(x)

    def backward(self, gy: ndarray) -> ndarray:
        return -gy * xp.sin(self.x)


class Clamp(Function):
    """y = min(max(x, min), max); the gradient passes where min <= x <= max (PyTorch's rule)."""

    def __init__(self, low: Any, high: Any) -> None:
        self.low, self.high = low, high

    def forward(self, x: ndarray) -> ndarray:
        self.x = x
        return xp.clip(x, self.low, self.high)

    def backward(self, gy: ndarray) -> ndarray:
        keep = xp.ones(self.x.shape, dtype=bool)
        if self.low is not None:
            keep &= self.x >= self.low
        if self.high is not None:
            keep &= self.x <= self.high
        return gy * keep


class ClampTensor(Function):
    """y = min(max(x, low), high) with tensor bounds (either may be None); each of x, low and
    high gets the gradient where it is the value chosen (PyTorch's rule: where low > high the
    result is high)."""

    def forward(self, x: ndarray, low: Any, high: Any) -> ndarray:
        self.x, self.low, self.high = x, low, high
        y = x if low is None else xp.maximum(x, low)
        return y if high is None else xp.minimum(y, high)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_low, need_high = self.needs_input_grad
        x, low, high = self.x, self.low, self.high
        zero = xp.zeros((), gy.dtype)
        keep = xp.ones(x.shape, dtype=bool)
        if low is not None:
            keep = keep & (x >= low)
        if high is not None:
            keep = keep & (x <= high)
        gx = sum_to(xp.where(keep, gy, zero), x.shape) if need_x else None
        glow = ghigh = None
        if need_low:
            to_low = x < low if high is None else (x < low) & (low < high)
            glow = sum_to(xp.where(to_low, gy, zero), xp.shape(low))
        if need_high:
            to_high = x > high if low is None else (x > high) | (high < low)
            ghigh = sum_to(xp.where(to_high, gy, zero), xp.shape(high))
        return gx, glow, ghigh


# ReLU, sigmoid and tanh on a float array run on blocks of rows in parallel (``_rows``, see
# wally._parallel.elementwise): the same expression, in the same order, element by element.
def _rows(fn: Callable[..., None], *inputs: ndarray) -> ndarray:
    """``fn(out, *inputs)`` into a new array like ``inputs[0]``, split among the threads."""
    return elementwise(fn, xp.empty_like(inputs[0]), *inputs)


def _splits(*arrays: ndarray) -> bool:
    """Whether ``arrays`` are float arrays of one shape and dtype (what ``_rows`` needs)."""
    first = arrays[0]
    return first.dtype.kind == "f" and builtins.all(
        a.shape == first.shape and a.dtype == first.dtype for a in arrays[1:]
    )


class ReLU(Function):
    """y = max(x, 0); dx = dy · [not y ≤ 0] (``0 · dy`` where y ≤ 0: a NaN ``dy`` stays NaN)."""

    def forward(self, x: ndarray) -> ndarray:
        # NumPy's, at any size: oneDNN's eltwise ReLU (and its binary max) turn a NaN into 0,
        # measured; np.maximum keeps it, as PyTorch's relu does. Where oneDNN runs the layers
        # around it, on the calling thread (measured: tuning.ONEDNN_RELU_BYTES's note)
        self.y = _rows(_relu, x) if _splits(x) and not _beside_onednn(x) else xp.maximum(x, 0)
        return self.y

    def backward(self, gy: ndarray) -> ndarray:
        plan = _onednn_relu(gy, self.y)
        if plan is not None:
            return plan.backward(self.y, gy, xp.empty_like(gy))
        if not _splits(gy, self.y):
            return gy * _passes(self.y)
        if accel.is_enabled("relu") and gy.flags.c_contiguous and self.y.flags.c_contiguous:
            return _rows(_relu_grad_compiled, gy, self.y)
        return _rows(_relu_grad, gy, self.y)


def _beside_onednn(x: ndarray) -> bool:
    """Whether oneDNN's OpenMP threads run the float32 layers around ``x`` (switched on, more
    than one thread): their idle spinning then takes the core that wally's own thread would
    split ReLU's forward pass onto."""
    return x.dtype == xp.float32 and get_num_threads() > 1 and onednn.is_switched_on()


def _onednn_relu(*arrays: ndarray) -> onednn.Relu | None:
    """oneDNN's ReLU gradient for C-contiguous float32 ``arrays`` of one shape, of at least
    ``tuning.ONEDNN_RELU_BYTES``, at more than one thread, where oneDNN is on (its threads
    spin between calls: a hand-off to wally's own threads costs more than the work).  It
    gives NumPy's ``dy · [y > 0]`` bit for bit, NaN and signed zeros included (tested)."""
    first = arrays[0]
    if first.nbytes < tuning.ONEDNN_RELU_BYTES or not _beside_onednn(first):
        return None
    if not builtins.all(a.flags.c_contiguous and a.shape == first.shape
                        and a.dtype == first.dtype for a in arrays):
        return None
    return onednn.relu_plan((first.size,), get_num_threads())


def _relu(out: ndarray, x: ndarray) -> None:
    xp.maximum(x, 0, out=out)


def _passes(y: ndarray) -> ndarray:
    """Where ReLU passes its gradient: not ``y ≤ 0`` (a NaN ``y`` passes it, as in PyTorch's
    ``threshold_backward`` and oneDNN's)."""
    mask = y <= 0
    return xp.logical_not(mask, out=mask) if mask.ndim else ~mask  # a 0-d y gives a scalar


def _relu_grad(out: ndarray, gy: ndarray, y: ndarray) -> None:
    xp.multiply(gy, _passes(y), out=out)


def _relu_grad_compiled(out: ndarray, gy: ndarray, y: ndarray) -> None:
    """:func:`_relu_grad` in one compiled pass (``"relu"`` of :mod:`wally.backends.accel`)."""
    accel.kernels().relu_backward(gy.reshape(-1), y.reshape(-1), out.reshape(-1))


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)), computed without overflow for large |x|; dx = dy · y · (1 − y)."""

    def forward(self, x: ndarray) -> ndarray:
        # tanh form: exact, stable for large |x| and one transcendental call.
        self.y = _rows(_sigmoid, x) if _splits(x) else 0.5 * (xp.tanh(0.5 * x) + 1)
        return self.y

    def backward(self, gy: ndarray) -> ndarray:
        if _splits(gy, self.y):
            return _rows(_sigmoid_grad, gy, self.y)
        return gy * self.y * (1 - self.y)


def _sigmoid(out: ndarray, x: ndarray) -> None:
    """0.5 · (tanh(0.5 · x) + 1), one step at a time in ``out``."""
    xp.multiply(x, 0.5, out=out)
    xp.tanh(out, out=out)
    out += 1
    out *= 0.5


def _sigmoid_grad(out: ndarray, gy: ndarray, y: ndarray) -> None:
    xp.multiply(gy, y, out=out)
    out *= 1 - y


class Tanh(Function):
    """y = tanh(x); dx = dy · (1 − y²)."""

    def forward(self, x: ndarray) -> ndarray:
        self.y = _rows(_tanh, x) if _splits(x) else xp.tanh(x)
        return self.y

    def backward(self, gy: ndarray) -> ndarray:
        if _splits(gy, self.y):
            return _rows(_tanh_grad, gy, self.y)
        return gy * (1 - self.y * self.y)


def _tanh(out: ndarray, x: ndarray) -> None:
    xp.tanh(x, out=out)


def _tanh_grad(out: ndarray, gy: ndarray, y: ndarray) -> None:
    xp.multiply(y, y, out=out)
    xp.subtract(1, out, out=out)
    out *= gy


class Cast(Function):
    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype

    def forward(self, x: ndarray) -> ndarray:
        self.input_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy: ndarray) -> ndarray | None:
        return gy.astype(self.input_dtype) if self.input_dtype.kind in "fc" else None


class Clone(Function):
    def forward(self, x: ndarray) -> ndarray:
        return x.copy()

    def backward(self, gy: ndarray) -> ndarray:
        return gy


def neg(input: Tensor) -> Tensor:
    """y = −x. Shape: unchanged. Example: ``neg(x)``."""
    return Neg()(input)


def exp(input: Tensor) -> Tensor:
    """y = eᵡ; ∂y/∂x = y. Shape: unchanged. Example: ``exp(x)``."""
    return Exp()(input)


def log(input: Tensor) -> Tensor:
    """y = ln x; ∂y/∂x = 1/x. Shape: unchanged. Example: ``log(x)``."""
    return Log()(input)


def sqrt(input: Tensor) -> Tensor:
    """y = √x; ∂y/∂x = 1/(2y). Shape: unchanged. Example: ``sqrt(x)``."""
    return Sqrt()(input)


def abs(input: Tensor) -> Tensor:
    """y = |x|; ∂y/∂x = sign(x). Shape: unchanged. Example: ``abs(x)``."""
    return Abs()(input)


def sin(input: Tensor) -> Tensor:
    return Sin()(input)


def cos(input: Tensor) -> Tensor:
    return Cos()(input)


def _sign(a: ndarray) -> ndarray:
    y = xp.sign(a)
    return xp.where(xp.isnan(y), xp.zeros((), y.dtype), y) if y.dtype.kind == "f" else y


def sign(input: Tensor) -> Tensor:
    """y = −1, 0 or 1 by the sign of x; sign(nan) = 0, as in PyTorch. No gradient.

    Shape: unchanged. Example: ``sign(wally.tensor([-2.0, 0.0, float("nan")]))``.
    """
    return compare(_sign, input)


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """y = min(max(x, min), max); the gradient passes where min ≤ x ≤ max.

    Shape: unchanged. Example: ``clamp(x, 0, 1)``.
    """
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        # tensor bounds take part in type promotion and get gradients (PyTorch's clamp.Tensor)
        bounds = [b if b is None or isinstance(b, Tensor) else Tensor(to_array(b))
                  for b in (min, max)]
        dtype = _result_dtype(input, *[b for b in bounds if b is not None])
        x = input if input.dtype == dtype else cast(input, dtype)
        low, high = (b if b is None or b.dtype == dtype else cast(b, dtype) for b in bounds)
        return ClampTensor()(x, low, high)
    if input.dtype.kind not in "fc" and builtins.any(isinstance(b, float) for b in (min, max)):
        input = cast(input, _DEFAULT_FLOAT)  # an int tensor clamped to 0.5 is float32
    return Clamp(min, max)(input)


def _result_dtype(*operands: Tensor) -> Any:
    """The dtype PyTorch's promotion gives ``operands``: floats beat integers without widening,
    and 0-d tensors only decide within their kind when a dimensioned operand is there."""
    dims = [t for t in operands if t.ndim]
    pool = dims or list(operands)
    kinds = [t.dtype.kind in "fc" for t in operands]
    if builtins.any(kinds) and not builtins.any(t.dtype.kind in "fc" for t in pool):
        floats = [t.dtype for t in operands if t.dtype.kind in "fc"]
        return xp.result_type(*floats)  # only a 0-d tensor is float: its float dtype
    if builtins.any(kinds):
        return xp.result_type(*[t.dtype for t in pool if t.dtype.kind in "fc"])
    return xp.result_type(*[t.dtype for t in pool])


clip = clamp


def relu(input: Tensor) -> Tensor:
    """y = max(x, 0). Shape: unchanged. Example: ``relu(x)``."""
    return ReLU()(input)


def sigmoid(input: Tensor) -> Tensor:
    """y = 1 / (1 + e⁻ˣ); ∂y/∂x = y(1 − y). Shape: unchanged. Example: ``sigmoid(x)``."""
    return Sigmoid()(input)


def tanh(input: Tensor) -> Tensor:
    """y = tanh x; ∂y/∂x = 1 − y². Shape: unchanged. Example: ``tanh(x)``."""
    return Tanh()(input)


def cast(input: Tensor, dtype: Any) -> Tensor:
    return Cast(xp.dtype(dtype))(input)


def clone(input: Tensor) -> Tensor:
    return Clone()(input)


class Fill(Function):
    """y = value everywhere, with x's shape and dtype (``x.fill_``): x's gradient is zero."""

    def forward(self, x: ndarray, value: Any) -> ndarray:
        self.value_shape = xp.shape(value)
        return xp.full(x.shape, value, dtype=x.dtype)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_value = self.needs_input_grad
        return (xp.zeros_like(gy) if need_x else None,
                sum_to(gy, self.value_shape) if need_value else None)


def fill(input: Tensor, value: Any) -> Tensor:
    if isinstance(value, Tensor) and value.ndim:
        raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                           f"{value.ndim} dimensions.")
    return Fill()(input, value)


class CopyInto(Function):
    """y = src broadcast to x's shape and cast to x's dtype (``x.copy_(src)``): the gradient
    goes to ``src`` (summed over broadcasting); x's old values get a zero gradient."""

    def forward(self, x: ndarray, src: ndarray) -> ndarray:
        self.src_shape, self.src_dtype = xp.shape(src), getattr(src, "dtype", None)
        try:
            return xp.broadcast_to(src, x.shape).astype(x.dtype)
        except ValueError:
            raise RuntimeError(f"copy_: the source's shape {tuple(xp.shape(src))} can't be "
                               f"broadcast to the destination's {tuple(x.shape)}") from None

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_src = self.needs_input_grad
        gx = xp.zeros_like(gy) if need_x else None
        if not need_src:
            return gx, None
        g = sum_to(gy, self.src_shape)
        return gx, (g if self.src_dtype is None else g.astype(self.src_dtype, copy=False))


def copy_into(input: Tensor, src: Any) -> Tensor:
    return CopyInto()(input, src)


def compare(fn: Callable[..., Any], *operands: Any) -> Tensor:
    """Apply a non-differentiable array function (comparisons, logic, argmax ...)."""
    arrays = [x.array if isinstance(x, Tensor) else x for x in operands]
    return Tensor._make(xp.asarray(fn(*arrays)), False, None, 0)


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """``input`` where ``condition`` holds, else ``other``."""
    cond = condition.array if isinstance(condition, Tensor) else to_array(condition)
    a, b = _promote(input, other)
    return Where(cond)(a, b)


class Where(Function):
    def __init__(self, condition: ndarray) -> None:
        self.condition = condition

    def forward(self, a: ndarray, b: ndarray) -> ndarray:
        self.shapes = (xp.shape(a), xp.shape(b))
        return xp.where(self.condition, a, b)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_a, need_b = self.needs_input_grad
        zero = xp.zeros((), dtype=gy.dtype)
        return (sum_to(xp.where(self.condition, gy, zero), self.shapes[0]) if need_a else None,
                sum_to(xp.where(self.condition, zero, gy), self.shapes[1]) if need_b else None)


# ----- reductions -----------------------------------------------------------------------------
class Sum(Function):
    def __init__(self, axes: tuple[int, ...] | None, keepdim: bool) -> None:
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x: ndarray) -> ndarray:
        self.shape = x.shape
        return x.sum(axis=self.axes, keepdims=self.keepdim)

    def backward(self, gy: ndarray) -> ndarray:
        if not self.keepdim and self.axes is not None:
            gy = xp.expand_dims(gy, self.axes)
        return xp.broadcast_to(gy, self.shape)


class Mean(Function):
    def __init__(self, axes: tuple[int, ...] | None, keepdim: bool) -> None:
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x: ndarray) -> ndarray:
        self.shape = x.shape
        y = x.mean(axis=self.axes, keepdims=self.keepdim)
        self.count = x.size // builtins.max(y.size, 1) if x.size else 0
        return y

    def backward(self, gy: ndarray) -> ndarray:
        if not self.keepdim and self.axes is not None:
            gy = xp.expand_dims(gy, self.axes)
        return xp.broadcast_to(gy / self.count, self.shape)


class Amax(Function):
    """max (or min) over axes; ties share the gradient evenly, as PyTorch's amax does."""

    def __init__(self, axes: tuple[int, ...] | None, keepdim: bool, largest: bool) -> None:
        self.axes, self.keepdim, self.largest = axes, keepdim, largest

    def forward(self, x: ndarray) -> ndarray:
        reduce = xp.max if self.largest else xp.min
        y = reduce(x, axis=self.axes, keepdims=True)
        self.mask = x == y
        return y if self.keepdim else y.reshape(reduce(x, axis=self.axes).shape)

    def backward(self, gy: ndarray) -> ndarray:
        if not self.keepdim and self.axes is not None:
            gy = xp.expand_dims(gy, self.axes)
        count = self.mask.sum(axis=self.axes, keepdims=True)
        return xp.where(self.mask, gy / count, 0).astype(gy.dtype)


class MaxDim(Function):
    """``max(dim)`` / ``min(dim)``: values and int64 indices; the gradient goes to the index."""

    def __init__(self, axis: int, keepdim: bool, largest: bool) -> None:
        self.axis, self.keepdim, self.largest = axis, keepdim, largest

    def forward(self, x: ndarray) -> tuple[ndarray, ndarray]:
        arg = xp.argmax if self.largest else xp.argmin
        self.shape = x.shape
        self.index = arg(x, axis=self.axis, keepdims=True)
        values = xp.take_along_axis(x, self.index, axis=self.axis)
        if self.keepdim:
            return values, self.index.astype(xp.int64)
        return (xp.squeeze(values, self.axis),
                xp.squeeze(self.index, self.axis).astype(xp.int64))

    def backward(self, gy: ndarray, gindex: Any = None) -> ndarray:
        if not self.keepdim:
            gy = xp.expand_dims(gy, self.axis)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        xp.put_along_axis(gx, self.index, gy, axis=self.axis)
        return gx


def sum(input: Tensor, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    """Σ over ``dim`` (all elements when None); integers are summed as int64.

    Shape: ``dim`` removed (kept as 1 with ``keepdim``). Example: ``sum(x, dim=1)``.
    """
    if dtype is not None:
        input = input.type(dtype)
    elif input.dtype.kind in "biu":
        input = input.type(xp.int64)  # PyTorch sums integers and bools as int64
    return Sum(_axes(dim, input.ndim), keepdim)(input)


def mean(input: Tensor, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    """(1/n) Σ over ``dim`` (all elements when None); float inputs only, as in PyTorch.

    Shape: ``dim`` removed (kept as 1 with ``keepdim``). Example: ``mean(x, 0)``.
    """
    if dtype is not None:
        input = input.type(dtype)
    if input.dtype.kind not in "fc":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {input.dtype}"
        )
    return Mean(_axes(dim, input.ndim), keepdim)(input)


def bessel_correction(unbiased: Any, correction: Any) -> Any:
    """PyTorch's ``correction`` from its older ``unbiased`` flag (1 unless unbiased=False)."""
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1


def var(input: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:
    """Variance, Σ (x − mean)² / (N − correction), with Bessel's ``correction`` (1 by default,
    0 with ``unbiased=False``), as in PyTorch; ``var(x, True)`` is ``var(x, unbiased=True)``.

    Shape: ``dim`` removed (kept with ``keepdim``). Example: ``var(x, dim=0, correction=0)``.
    """
    if isinstance(dim, bool):  # torch's var(input, unbiased) overload
        dim, unbiased = None, dim
    return _var(input, dim, keepdim, bessel_correction(unbiased, correction))


def _var(input: Tensor, dim: Any, keepdim: bool, correction: Any) -> Tensor:
    axes = _axes(dim, input.ndim)
    centred = input - input.mean(axes, keepdim=True)
    count = input.numel() if axes is None else \
        int(xp.prod([input.shape[a] for a in axes]))
    return (centred * centred).sum(axes, keepdim=keepdim) / builtins.max(count - correction, 0)


def std(input: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:
    """Standard deviation, the square root of :func:`var` (same arguments).

    Shape: ``dim`` removed (kept with ``keepdim``). Example: ``std(x, False)``.
    """
    return var(input, dim, unbiased, keepdim, correction=correction).sqrt()


def _all_or_any(fn: Callable[..., Any], input: Tensor, dim: Any, keepdim: bool) -> Tensor:
    axes = _axes(dim, input.ndim)
    # PyTorch keeps uint8 for uint8 input, every other dtype gives bool
    out = input.dtype if input.dtype == xp.uint8 else xp.bool_
    return compare(lambda a: fn(a, axis=axes, keepdims=keepdim).astype(out), input)


def all(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """True where every element along ``dim`` (all when None) is nonzero. No gradient.

    Shape: ``dim`` removed (kept as 1 with ``keepdim``). Example: ``all(x > 0, dim=1)``.
    """
    return _all_or_any(xp.all, input, dim, keepdim)


def any(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """True where some element along ``dim`` (all when None) is nonzero. No gradient.

    Shape: ``dim`` removed (kept as 1 with ``keepdim``). Example: ``any(x.isnan())``.
    """
    return _all_or_any(xp.any, input, dim, keepdim)


def eq(input: Tensor, other: Any) -> Tensor:
    """Elementwise ``input == other`` as a bool tensor."""
    return compare(xp.equal, input, other)


def _max_or_min(input: Tensor, dim: Any, keepdim: bool, largest: bool) -> Any:
    if isinstance(dim, Tensor):  # max(a, b) is the elementwise maximum
        return maximum(input, dim) if largest else minimum(input, dim)
    if dim is None:
        return Amax(None, False, largest)(input)
    axes = _axes(dim, input.ndim)
    assert axes is not None
    if input.ndim == 0:  # a 0-d tensor is its own max along dim 0 (or -1)
        return MaxResult(clone(input), Tensor._make(xp.zeros((), xp.int64), False, None, 0))
    values, indices = MaxDim(axes[0], keepdim, largest)(input)
    return MaxResult(values, indices)


def max(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """The largest element; with ``dim``, ``(values, indices)`` along it. ``max(a, b)`` with a
    tensor ``b`` is the elementwise :func:`maximum`.

    Shape: ``dim`` removed (kept with ``keepdim``). Example: ``max(x, dim=1).indices``.
    """
    return _max_or_min(input, dim, keepdim, True)


def min(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """The smallest element; with ``dim``, ``(values, indices)`` along it.

    Shape: ``dim`` removed (kept with ``keepdim``). Example: ``min(x, dim=0).values``.
    """
    return _max_or_min(input, dim, keepdim, False)


def amax(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Amax(_axes(dim, input.ndim), keepdim, True)(input)


def amin(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Amax(_axes(dim, input.ndim), keepdim, False)(input)


def argmax(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """int64 index of the largest element (flattened when ``dim`` is None).

    Shape: ``dim`` removed. Example: ``argmax(logits, dim=1)``.
    """
    return _arg_extreme(xp.argmax, input, dim, keepdim)


def _arg_extreme(fn: Callable[..., Any], input: Tensor, dim: Any, keepdim: bool) -> Tensor:
    axes = None if dim is None else _axes(dim, input.ndim)
    if input.ndim == 0:  # index 0 of the one element, with or without dim
        return Tensor._make(xp.zeros((), xp.int64), False, None, 0)
    axis = None if axes is None else axes[0]
    return compare(lambda a: fn(a, axis=axis, keepdims=keepdim).astype(xp.int64), input)


def argmin(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """int64 index of the smallest element (flattened when ``dim`` is None).

    Shape: ``dim`` removed. Example: ``argmin(x, dim=0)``.
    """
    return _arg_extreme(xp.argmin, input, dim, keepdim)


# ----- shapes ---------------------------------------------------------------------------------
class Reshape(Function):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: ndarray) -> ndarray:
        self.input_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(
                f"shape {list(self.shape)} is invalid for input of size {x.size} "
                f"(shape {x.shape})"
            ) from None

    def backward(self, gy: ndarray) -> ndarray:
        return gy.reshape(self.input_shape)


class Permute(Function):
    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, x: ndarray) -> ndarray:
        return x.transpose(self.axes)

    def backward(self, gy: ndarray) -> ndarray:
        return gy.transpose(tuple(int(i) for i in xp.argsort(self.axes)))


class Expand(Function):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: ndarray) -> ndarray:
        self.input_shape = x.shape
        return xp.broadcast_to(x, self.shape)

    def backward(self, gy: ndarray) -> ndarray:
        return sum_to(gy, self.input_shape)


class Repeat(Function):
    def __init__(self, repeats: tuple[int, ...]) -> None:
        self.repeats = repeats

    def forward(self, x: ndarray) -> ndarray:
        self.input_shape = x.shape
        padded = (1,) * (len(self.repeats) - x.ndim) + x.shape
        self.padded_shape = padded
        return xp.tile(x.reshape(padded), self.repeats)

    def backward(self, gy: ndarray) -> ndarray:
        # Split each axis into (repeat, size) and sum the repeats away.
        split = [n for pair in zip(self.repeats, self.padded_shape) for n in pair]
        summed = gy.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return summed.reshape(self.input_shape)


class Flip(Function):
    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, x: ndarray) -> ndarray:
        return xp.flip(x, self.axes)

    def backward(self, gy: ndarray) -> ndarray:
        return xp.flip(gy, self.axes)


def reshape(input: Tensor, shape: Sequence[int]) -> Tensor:
    """The same elements in ``shape`` (one entry may be −1). Example: ``reshape(x, (2, -1))``."""
    shape = tuple(map(int, shape))
    if shape == input.shape:
        return input
    return Reshape(shape)(input)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one.

    Example: ``flatten(x, 1)`` maps (N, C, H, W) to (N, C·H·W).
    """
    if input.ndim == 0:
        return reshape(input, (1,))
    start, end = (d % input.ndim for d in (start_dim, end_dim))
    shape = input.shape
    return reshape(input, shape[:start] + (-1,) + shape[end + 1:] if shape[start:end + 1]
                   else shape)


def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    d = dim % input.ndim
    return reshape(input, input.shape[:d] + tuple(sizes) + input.shape[d + 1:])


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    axes = _axes(dim, input.ndim)
    if axes is None:
        axes = tuple(i for i, n in enumerate(input.shape) if n == 1)
    shape = tuple(n for i, n in enumerate(input.shape) if not (i in axes and n == 1))
    return reshape(input, shape)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    if not -input.ndim - 1 <= dim <= input.ndim:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-input.ndim - 1}, "
            f"{input.ndim}], but got {dim})"
        )
    d = dim % (input.ndim + 1)
    return reshape(input, input.shape[:d] + (1,) + input.shape[d:])


def permute(input: Tensor, dims: Sequence[int]) -> Tensor:
    """Reorder the axes: output axis i is input axis ``dims[i]``.

    Example: ``permute(x, (0, 2, 3, 1))`` turns NCHW into NHWC.
    """
    axes = tuple(int(d) % builtins.max(input.ndim, 1) for d in dims)
    if sorted(axes) != list(range(input.ndim)):
        raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of {input.ndim} dims")
    return Permute(axes)(input)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap axes ``dim0`` and ``dim1``. Example: ``transpose(x, 0, 1)``."""
    axes = list(range(input.ndim))
    checked = [_axes(d, input.ndim) for d in (dim0, dim1)]
    if input.ndim == 0:  # dims 0 / -1 of a 0-d tensor: nothing to swap
        return Permute(())(input)
    a, b = (c[0] for c in checked)  # type: ignore[index]
    axes[a], axes[b] = axes[b], axes[a]
    return Permute(tuple(axes))(input)


def expand(input: Tensor, sizes: Sequence[int]) -> Tensor:
    lead = len(sizes) - input.ndim
    shape = tuple(input.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
    return Expand(shape)(input)


def repeat(input: Tensor, repeats: Sequence[int]) -> Tensor:
    if len(repeats) < input.ndim:
        raise ValueError(
            f"repeat: number of repeat dims ({len(repeats)}) can not be smaller than the "
            f"number of dimensions of the tensor ({input.ndim})"
        )
    return Repeat(tuple(repeats))(input)


def flip(input: Tensor, dims: Any) -> Tensor:
    return Flip(_axes(dims, input.ndim) or ())(input)


# ----- indexing -------------------------------------------------------------------------------
def _index(index: Any) -> Any:
    """Turn tensors and ranges inside an index into arrays NumPy understands."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.array
    if isinstance(index, range):
        return xp.arange(index.start, index.stop, index.step)
    if isinstance(index, list) and builtins.any(isinstance(i, Tensor) for i in index):
        return [_index(i) for i in index]
    return index


def _is_basic(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return builtins.all(isinstance(p, (int, slice, type(None), type(Ellipsis)))
               or (isinstance(p, ndarray) and p.ndim == 0 and p.dtype.kind in "iu")
               for p in parts)


class GetItem(Function):
    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, x: ndarray) -> ndarray:
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy: ndarray) -> ndarray:
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if _is_basic(self.index):
            gx[self.index] = gy
        else:  # advanced indexing may repeat an element: accumulate (not a hot path)
            xp.add.at(gx, self.index, gy)
        return gx


class SetItem(Function):
    """``y = x`` with ``y[index] = value``: the out-of-place twin of ``x[index] = value``."""

    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, x: ndarray, value: Any) -> ndarray:
        self.value_shape = xp.shape(value)
        self.value_dtype = getattr(value, "dtype", None)
        y = x.copy()
        y[self.index] = value
        return y

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_value = self.needs_input_grad
        gx = None
        if need_x:
            gx = gy.copy()
            gx[self.index] = 0
        gv = None
        if need_value:
            gv = sum_to(gy[self.index], self.value_shape).astype(self.value_dtype, copy=False)
        return gx, gv


def getitem(input: Tensor, index: Any) -> Tensor:
    return GetItem(_index(index))(input)


def setitem(input: Tensor, index: Any, value: Any) -> None:
    index = _index(index)
    records = is_grad_enabled() and (
        input.requires_grad or (isinstance(value, Tensor) and value.requires_grad)
    )
    if not records:
        input.array[index] = value.array if isinstance(value, Tensor) else value
        input._bump_version()
        return
    # Y keeps its identity but becomes the output of SetItem(previous Y, value).
    input._record_in_place(SetItem(index), value)


# ----- joining and splitting ------------------------------------------------------------------
class Cat(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs: ndarray) -> ndarray:
        # 1-D empty tensors are skipped when others have more dims (PyTorch's legacy rule)
        ndim = builtins.max(x.ndim for x in xs)
        self.skipped = [x.shape == (0,) and ndim > 1 for x in xs]
        kept = [x for x, skip in zip(xs, self.skipped) if not skip]
        self.sizes = [x.shape[self.axis] for x in kept]
        return xp.concatenate(kept, axis=self.axis)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        bounds = xp.cumsum(self.sizes)[:-1]
        parts = iter(xp.split(gy, bounds, axis=self.axis))
        grads = [xp.zeros((0,), gy.dtype) if skip else next(parts) for skip in self.skipped]
        return tuple(g if need else None for g, need in zip(grads, self.needs_input_grad))


class Stack(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs: ndarray) -> ndarray:
        return xp.stack(xs, axis=self.axis)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        return tuple(xp.take(gy, i, axis=self.axis) if need else None
                     for i, need in enumerate(self.needs_input_grad))


def _check_joinable(name: str, tensors: Sequence[Any]) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not len(tensors):
        raise TypeError(f"{name}: expected a non-empty sequence of tensors, got {type(tensors)}")
    return [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate along an existing dimension ``dim``."""
    ts = _check_joinable("cat", tensors)
    ndim = builtins.max(t.ndim for t in ts)
    shaped = [t for t in ts if t.shape != (0,) or t.ndim == ndim]  # legacy: (0,) is skipped
    axis = _axes(dim, ndim)[0]  # type: ignore[index]
    for t in shaped[1:]:
        if t.ndim != shaped[0].ndim or builtins.any(
            a != b for i, (a, b) in enumerate(zip(t.shape, shaped[0].shape)) if i != axis
        ):
            raise ValueError(
                f"cat: sizes of tensors must match except in dimension {dim}; got shapes "
                f"{[tuple(x.shape) for x in ts]}"
            )
    return Cat(axis)(*ts)


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dimension ``dim``."""
    ts = _check_joinable("stack", tensors)
    if builtins.any(t.shape != ts[0].shape for t in ts):
        raise ValueError(
            f"stack expects each tensor to be equal size, got {[tuple(t.shape) for t in ts]}"
        )
    axis = dim % (ts[0].ndim + 1)
    return Stack(axis)(*ts)


def split(input: Tensor, split_size: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of ``split_size`` along ``dim`` (the last may be shorter), or of the sizes in a
    list, which must add up to the dim's size. Example: ``split(x, [2, 3], dim=1)``."""
    axis = _axes(dim, input.ndim)[0]  # type: ignore[index]
    n = input.shape[axis]
    if isinstance(split_size, (int, xp.integer)):
        if split_size < 0 or (split_size == 0 and n):
            raise ValueError(f"split: split_size must be positive (0 only for an empty dim), "
                             f"got {split_size} for a dim of size {n}")
        sizes = [split_size] * (-(-n // split_size)) if n else [0]
    else:
        sizes = [int(size) for size in split_size]
        if builtins.sum(sizes) != n or builtins.min(sizes, default=0) < 0:
            raise ValueError(f"split: split sizes must be non-negative and add up to {n} (the "
                             f"size of dim {dim}), got {list(split_size)}")
    out, start = [], 0
    for size in sizes:
        stop = builtins.min(start + size, n)
        index = (slice(None),) * axis + (slice(start, stop),)
        out.append(input[index])
        start = stop
    return tuple(out)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """At most ``chunks`` pieces of ⌈n / chunks⌉ along ``dim`` (an empty dim gives ``chunks``
    empty pieces, as in PyTorch). Example: ``chunk(x, 3, dim=1)``."""
    if not isinstance(chunks, (int, xp.integer)) or chunks <= 0:
        raise ValueError(f"chunk: expected chunks to be a positive int, got {chunks!r}")
    n = input.shape[_axes(dim, input.ndim)[0]]  # type: ignore[index]
    if n == 0:
        return split(input, [0] * int(chunks), dim)
    return split(input, -(-n // chunks), dim)


def allclose(input: Tensor, other: Any, rtol: float = 1e-5, atol: float = 1e-8,
             equal_nan: bool = False) -> bool:
    return bool(xp.allclose(to_array(input), to_array(other), rtol, atol, equal_nan))


def equal(input: Tensor, other: Tensor) -> bool:
    return bool(input.shape == other.shape and xp.array_equal(input.array, other.array))
