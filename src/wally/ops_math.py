"""Pointwise maths, scans and reductions beyond :mod:`wally.ops`: sinh, cosh, erf, the rounding
family, isinf/isclose, cumsum/cumprod, prod, logsumexp, bmm/baddbmm and einsum.

One op, one small ``Function`` with ``forward``/``backward`` on raw arrays, and a lowercase
function at PyTorch's name. Integer-valued results (``isinf``, ``isclose``) never require grad.
"""

from __future__ import annotations

import builtins
import math
import string
import warnings
from collections.abc import Sequence
from typing import Any

from wally import ops
from wally._erf import _ERF_A, _ERF_B, _erfc, _rational
from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.tensor import Tensor, to_array

__all__ = [
    "sinh", "cosh", "erf", "square", "floor", "ceil", "round", "trunc", "clamp_min",
    "clamp_max", "isnan", "isinf", "isfinite", "isclose", "cumsum", "cumprod", "prod",
    "logsumexp", "bmm", "baddbmm", "einsum", "softmax", "log_softmax", "prelu",
]

_DEFAULT_FLOAT = xp.dtype("float32")


def _floating(input: Tensor) -> Tensor:
    """Integer and bool tensors become float32 first, as PyTorch's float-valued ops do."""
    return input if input.dtype.kind in "fc" else ops.cast(input, _DEFAULT_FLOAT)


def _axis(name: str, dim: Any, ndim: int) -> int:
    if not isinstance(dim, (int, xp.integer)) or isinstance(dim, bool):
        raise TypeError(f"{name}: expected dim to be an int, got {dim!r}")
    low, high = -builtins.max(ndim, 1), builtins.max(ndim, 1) - 1
    if not low <= dim <= high:
        raise IndexError(f"{name}: dim out of range (expected to be in range of "
                         f"[{low}, {high}], but got {dim})")
    return int(dim) % builtins.max(ndim, 1)


def _tensor(name: str, input: Any) -> Tensor:
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: expected input to be a Tensor, got {type(input).__name__}")
    return input


# ----- pointwise ------------------------------------------------------------------------------
class Sinh(Function):
    def forward(self, x: ndarray) -> ndarray:
        self.x = x
        return xp.sinh(x)

    def backward(self, gy: ndarray) -> ndarray:
        return gy * xp.cosh(self.x)


class Cosh(Function):
    def forward(self, x: ndarray) -> ndarray:
        self.x = x
        return xp.cosh(x)

    def backward(self, gy: ndarray) -> ndarray:
        return gy * xp.sinh(self.x)


def _erf(z: ndarray) -> ndarray:
    """erf(z) = (2/√π) ∫_0^z exp(−t²) dt: Cody's z·R(z²) near 0 (where 1 − erfc would lose the
    relative precision), 1 − erfc(|z|) with z's sign beyond."""
    shape = xp.shape(z)
    z = xp.asarray(z).reshape(-1)  # 1-D: on 0-d arrays NumPy's ufuncs return scalars
    small = xp.minimum(xp.abs(z), 0.46875)
    near = _rational(small * small, (_ERF_A[4], *_ERF_A[:4]), _ERF_B) * z
    far = xp.sign(z) * (1.0 - _erfc(xp.abs(z)))
    return xp.where(xp.abs(z) <= 0.46875, near, far).astype(z.dtype, copy=False).reshape(shape)


class Erf(Function):
    def forward(self, x: ndarray) -> ndarray:
        self.x = x
        return _erf(x)

    def backward(self, gy: ndarray) -> ndarray:
        return gy * (2.0 / xp.sqrt(xp.pi)) * xp.exp(-self.x * self.x).astype(gy.dtype)


class Rounding(Function):
    """Floor, ceil, round and trunc: piecewise constant, so the gradient is zero (PyTorch's)."""

    def forward(self, x: ndarray) -> ndarray:
        self.shape = x.shape
        return self.apply(x)

    def apply(self, x: ndarray) -> ndarray:
        raise NotImplementedError

    def backward(self, gy: ndarray) -> ndarray:
        return xp.zeros(self.shape, dtype=gy.dtype)


class Floor(Rounding):
    def apply(self, x: ndarray) -> ndarray:
        return xp.floor(x)


class Ceil(Rounding):
    def apply(self, x: ndarray) -> ndarray:
        return xp.ceil(x)


class Trunc(Rounding):
    def apply(self, x: ndarray) -> ndarray:
        return xp.trunc(x)


class Round(Rounding):
    """Round half to even, at ``decimals`` digits after the point (negative: before it)."""

    def __init__(self, decimals: int = 0) -> None:
        self.decimals = decimals

    def apply(self, x: ndarray) -> ndarray:
        if self.decimals == 0:
            return xp.rint(x)
        scale = x.dtype.type(10.0 ** builtins.abs(self.decimals))
        if self.decimals > 0:
            return xp.rint(x * scale) / scale
        return xp.rint(x / scale) * scale


def sinh(input: Tensor) -> Tensor:
    """sinh(x) = (eˣ − e⁻ˣ)/2, with d/dx = cosh(x). **Shape:** any; the output has the input's.

    >>> wally.sinh(wally.tensor([0.0, 1.0]))
    tensor([0.0000, 1.1752])
    """
    return Sinh()(_floating(_tensor("sinh", input)))


def cosh(input: Tensor) -> Tensor:
    """cosh(x) = (eˣ + e⁻ˣ)/2, with d/dx = sinh(x). **Shape:** any; the output has the input's.

    >>> wally.cosh(wally.tensor([0.0]))
    tensor([1.])
    """
    return Cosh()(_floating(_tensor("cosh", input)))


def erf(input: Tensor) -> Tensor:
    """erf(x) = (2/√π) ∫₀ˣ exp(−t²) dt, with d/dx = (2/√π) exp(−x²).
    **Shape:** any; the output has the input's.

    >>> wally.erf(wally.tensor([0.0, 1.0]))
    tensor([0.0000, 0.8427])
    """
    return Erf()(_floating(_tensor("erf", input)))


def square(input: Tensor) -> Tensor:
    """x², with d/dx = 2x; integer tensors stay integer (bool becomes int64, as in PyTorch).
    **Shape:** any.

    >>> wally.square(wally.tensor([-2.0, 3.0]))
    tensor([4., 9.])
    """
    input = _tensor("square", input)
    if input.dtype == xp.bool_:
        input = ops.cast(input, xp.int64)
    return ops.pow(input, 2)


def _rounding(name: str, fn: Rounding, input: Tensor) -> Tensor:
    input = _tensor(name, input)
    if input.dtype.kind not in "fc":  # integers are already whole: a copy, as PyTorch returns
        return ops.clone(input)
    return fn(input)


def floor(input: Tensor) -> Tensor:
    """⌊x⌋, the largest integer ≤ x; zero gradient. **Shape:** any.

    >>> wally.floor(wally.tensor([-1.5, 1.5]))
    tensor([-2.,  1.])
    """
    return _rounding("floor", Floor(), input)


def ceil(input: Tensor) -> Tensor:
    """⌈x⌉, the smallest integer ≥ x; zero gradient. **Shape:** any.

    >>> wally.ceil(wally.tensor([-1.5, 1.5]))
    tensor([-1.,  2.])
    """
    return _rounding("ceil", Ceil(), input)


def trunc(input: Tensor) -> Tensor:
    """x rounded towards zero; zero gradient. **Shape:** any.

    >>> wally.trunc(wally.tensor([-1.5, 1.5]))
    tensor([-1.,  1.])
    """
    return _rounding("trunc", Trunc(), input)


def round(input: Tensor, decimals: int = 0) -> Tensor:
    """x rounded half to even at ``decimals`` digits: rint(x·10ᵈ)/10ᵈ; zero gradient.
    **Shape:** any.

    >>> wally.round(wally.tensor([0.5, 1.5, 1.2345]), decimals=0)
    tensor([0., 2., 1.])
    """
    if not isinstance(decimals, (int, xp.integer)) or isinstance(decimals, bool):
        raise TypeError(f"round: expected decimals to be an int, got {decimals!r}")
    input = _tensor("round", input)
    if input.dtype.kind not in "fc":
        if decimals != 0:
            raise TypeError(f"round: decimals={decimals} needs a floating point tensor, "
                            f"got {input.dtype}")
        return ops.clone(input)
    return Round(int(decimals))(input)


def clamp_min(input: Tensor, min: Any) -> Tensor:
    """max(x, min); the gradient passes where x ≥ min. **Shape:** any.

    >>> wally.clamp_min(wally.tensor([-1.0, 2.0]), 0.0)
    tensor([0., 2.])
    """
    return ops.clamp(_tensor("clamp_min", input), min=min)


def clamp_max(input: Tensor, max: Any) -> Tensor:
    """min(x, max); the gradient passes where x ≤ max. **Shape:** any.

    >>> wally.clamp_max(wally.tensor([-1.0, 2.0]), 0.0)
    tensor([-1.,  0.])
    """
    return ops.clamp(_tensor("clamp_max", input), max=max)


def isnan(input: Tensor) -> Tensor:
    """A bool tensor: True where x is NaN (never for integers). **Shape:** any.

    >>> wally.isnan(wally.tensor([1.0, float("nan")]))
    tensor([False,  True])
    """
    return ops.compare(xp.isnan, _tensor("isnan", input))


def isinf(input: Tensor) -> Tensor:
    """A bool tensor: True where x is +∞ or −∞. **Shape:** any.

    >>> wally.isinf(wally.tensor([1.0, float("inf")]))
    tensor([False,  True])
    """
    return ops.compare(xp.isinf, _tensor("isinf", input))


def isfinite(input: Tensor) -> Tensor:
    """A bool tensor: True where x is neither NaN nor ±∞. **Shape:** any.

    >>> wally.isfinite(wally.tensor([1.0, float("inf")]))
    tensor([ True, False])
    """
    return ops.compare(xp.isfinite, _tensor("isfinite", input))


def isclose(input: Tensor, other: Any, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """A bool tensor: |x − y| ≤ atol + rtol·|y| elementwise (equal infinities are close).
    **Shape:** the broadcast shape of the two.

    >>> wally.isclose(wally.tensor([1.0, 2.0]), wally.tensor([1.0, 2.1]))
    tensor([ True, False])
    """
    a, b = to_array(_tensor("isclose", input)), to_array(other)
    return ops.compare(lambda: xp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


# ----- scans ----------------------------------------------------------------------------------
def _reverse_cumsum(g: ndarray, axis: int) -> ndarray:
    return xp.flip(xp.cumsum(xp.flip(g, axis), axis=axis), axis)


class CumSum(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: ndarray) -> ndarray:
        return xp.cumsum(x, axis=self.axis)

    def backward(self, gy: ndarray) -> ndarray:
        return _reverse_cumsum(gy, self.axis)


class CumProd(Function):
    """yᵢ = ∏_{j≤i} xⱼ along ``axis``.

    dL/dxₖ = Σ_{i≥k} gᵢ ∏_{j≤i, j≠k} xⱼ. Before the first zero z of a row this is
    (reverse cumsum of g·y)ₖ / xₖ; at z it is the reverse cumsum of g·y' at z, where y' is the
    cumprod with that one zero read as 1; after z every product holds x_z = 0, so it is 0.
    """

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: ndarray) -> ndarray:
        self.x = x
        self.y = xp.cumprod(x, axis=self.axis)
        return self.y

    def backward(self, gy: ndarray) -> ndarray:
        x, y, axis = self.x, self.y, self.axis
        if x.size == 0:
            return xp.zeros_like(gy)
        zero = x == 0
        n = x.shape[axis]
        positions = xp.arange(n).reshape((n,) + (1,) * (x.ndim - axis - 1))
        has_zero = zero.any(axis=axis, keepdims=True)
        first = xp.where(has_zero, xp.argmax(zero, axis=axis, keepdims=True), n)
        before = positions < first
        at = positions == first
        safe = xp.where(before, x, xp.ones((), dtype=x.dtype))
        gx = xp.where(before, _reverse_cumsum(gy * y, axis) / safe, 0)
        if has_zero.any():
            y_skip = xp.cumprod(xp.where(at, xp.ones((), dtype=x.dtype), x), axis=axis)
            gx = gx + xp.where(at, _reverse_cumsum(gy * y_skip, axis), 0)
        return gx.astype(gy.dtype, copy=False)


def _scan(name: str, input: Tensor, dim: Any, dtype: Any) -> tuple[Tensor, int]:
    input = _tensor(name, input)
    axis = _axis(name, dim, input.ndim)
    if dtype is not None:
        input = ops.cast(input, dtype)
    elif input.dtype.kind in "biu" and input.dtype != xp.int64:  # PyTorch accumulates in int64
        input = ops.cast(input, xp.int64)
    if input.ndim == 0:
        input = ops.reshape(input, (1,))
    return input, axis


def cumsum(input: Tensor, dim: int, dtype: Any = None) -> Tensor:
    """yᵢ = Σ_{j≤i} xⱼ along ``dim``; the gradient is the reverse cumulative sum.
    **Shape:** the input's. Integer and bool inputs accumulate in int64.

    >>> wally.cumsum(wally.tensor([1.0, 2.0, 3.0]), dim=0)
    tensor([1., 3., 6.])
    """
    x, axis = _scan("cumsum", input, dim, dtype)
    return ops.reshape(CumSum(axis)(x), input.shape)


def cumprod(input: Tensor, dim: int, dtype: Any = None) -> Tensor:
    """yᵢ = ∏_{j≤i} xⱼ along ``dim``; the gradient is exact with zeros in the input.
    **Shape:** the input's.

    >>> wally.cumprod(wally.tensor([1.0, 2.0, 3.0]), dim=0)
    tensor([1., 2., 6.])
    """
    x, axis = _scan("cumprod", input, dim, dtype)
    return ops.reshape(CumProd(axis)(x), input.shape)


# ----- reductions -----------------------------------------------------------------------------
class Prod(Function):
    """y = ∏ xⱼ over ``axes``; dL/dxₖ = g·∏_{j≠k} xⱼ, which is g·y/xₖ without zeros, g times the
    product of the others at a row's only zero, and 0 everywhere in a row with two zeros."""

    def __init__(self, axes: tuple[int, ...] | None, keepdim: bool) -> None:
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x: ndarray) -> ndarray:
        self.x = x
        return xp.prod(x, axis=self.axes, keepdims=self.keepdim)

    def backward(self, gy: ndarray) -> ndarray:
        x, axes = self.x, self.axes
        if not self.keepdim and axes is not None:
            gy = xp.expand_dims(gy, axes)
        zero = x == 0
        one = xp.ones((), dtype=x.dtype)
        others = xp.prod(xp.where(zero, one, x), axis=axes, keepdims=True)
        zeros = zero.sum(axis=axes, keepdims=True)
        local = xp.where(zeros == 0, others / xp.where(zero, one, x),
                         xp.where((zeros == 1) & zero, others, 0))
        return (gy * local).astype(gy.dtype, copy=False)


def prod(input: Tensor, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    """∏ x over ``dim`` (every element when None); exact gradient with zeros in the input.
    **Shape:** ``dim`` removed (kept as 1 with ``keepdim``); integers and bools give int64.

    >>> wally.prod(wally.tensor([[1.0, 2.0], [3.0, 0.0]]), dim=1)
    tensor([2., 0.])
    """
    input = _tensor("prod", input)
    axes = None if dim is None else (_axis("prod", dim, input.ndim),)
    if input.ndim == 0:
        axes = None
    if dtype is not None:
        input = ops.cast(input, dtype)
    elif input.dtype.kind in "biu" and input.dtype != xp.int64:
        input = ops.cast(input, xp.int64)
    return Prod(axes, keepdim and input.ndim > 0)(input)


class LogSumExp(Function):
    """y = m + log Σ exp(x − m) with m = max x (0 where m is ±∞); dy/dx = exp(x − y)."""

    def __init__(self, axes: tuple[int, ...], keepdim: bool) -> None:
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x: ndarray) -> ndarray:
        self.x = x
        if x.size == 0:
            self.y = xp.full(xp.sum(x, axis=self.axes, keepdims=True).shape, -xp.inf,
                             dtype=x.dtype)
        else:
            m = xp.amax(x, axis=self.axes, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0).astype(x.dtype, copy=False)
            with xp.errstate(divide="ignore"):
                self.y = m + xp.log(xp.sum(xp.exp(x - m), axis=self.axes, keepdims=True))
        return self.y if self.keepdim else xp.squeeze(self.y, self.axes)

    def backward(self, gy: ndarray) -> ndarray:
        if not self.keepdim:
            gy = xp.expand_dims(gy, self.axes)
        return gy * xp.exp(self.x - self.y)


def logsumexp(input: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    """log Σ exp(x) over ``dim``, computed as m + log Σ exp(x − m) with m = max x so that it
    neither overflows nor underflows. **Shape:** ``dim`` removed (kept as 1 with ``keepdim``).

    >>> wally.logsumexp(wally.tensor([0.0, 0.0]), dim=0)
    tensor(0.6931)
    """
    input = _floating(_tensor("logsumexp", input))
    dims = (dim,) if isinstance(dim, (int, xp.integer)) else tuple(dim)
    axes = tuple(sorted({_axis("logsumexp", d, input.ndim) for d in dims}))
    if input.ndim == 0:
        return LogSumExp((0,), False)(ops.reshape(input, (1,)))
    return LogSumExp(axes, keepdim)(input)


# ----- batched products -----------------------------------------------------------------------
def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched matrix product: out[b] = input[b] @ mat2[b].
    **Shape:** (B, n, m) @ (B, m, p) -> (B, n, p).

    >>> wally.bmm(wally.ones(2, 3, 4), wally.ones(2, 4, 5)).shape
    wally.Size([2, 3, 5])
    """
    for name, t in (("batch1", input), ("batch2", mat2)):
        _tensor("bmm", t)
        if t.ndim != 3:
            raise ValueError(f"bmm: {name} must be a 3-D tensor (B, n, m), got shape "
                             f"{tuple(t.shape)}")
    if input.shape[0] != mat2.shape[0] or input.shape[2] != mat2.shape[1]:
        raise ValueError(f"bmm: expected shapes (B, n, m) and (B, m, p), got "
                         f"{tuple(input.shape)} and {tuple(mat2.shape)}")
    if input.dtype != mat2.dtype:
        raise TypeError(f"bmm: expected both tensors to have one dtype, got {input.dtype} "
                        f"and {mat2.dtype}")
    return ops.matmul(input, mat2)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Any = 1,
            alpha: Any = 1) -> Tensor:
    """out = β·input + α·(batch1 @ batch2) batch by batch; with β = 0 ``input`` is ignored
    (NaN in it does not propagate). **Shape:** input broadcastable to (B, n, p);
    batch1 (B, n, m), batch2 (B, m, p).

    >>> wally.baddbmm(wally.zeros(2, 3, 5), wally.ones(2, 3, 4), wally.ones(2, 4, 5)).shape
    wally.Size([2, 3, 5])
    """
    product = bmm(batch1, batch2)
    input = _tensor("baddbmm", input)
    try:
        fits = xp.broadcast_shapes(input.shape, product.shape) == product.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"baddbmm: input of shape {tuple(input.shape)} cannot be broadcast to "
                         f"the product's shape {tuple(product.shape)}")
    if alpha != 1:
        product = ops.mul(product, alpha)
    if beta == 0:
        return product
    return ops.add(product, input if beta == 1 else ops.mul(input, beta))


# ----- einsum ---------------------------------------------------------------------------------
def _parse_einsum(equation: str, ndims: Sequence[int]) -> tuple[list[str], str]:
    """Explicit subscripts for each operand and the output, '...' replaced by letters that the
    equation does not use (right-aligned, as broadcasting aligns them)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum: the equation {equation!r} has {len(terms)} operand(s), got "
                         f"{len(ndims)} tensor(s)")
    spare = [c for c in string.ascii_letters if c not in eq]
    widest = 0
    for term, nd in zip(terms, ndims):
        letters = term.replace("...", "")
        if any(c not in string.ascii_letters for c in letters):
            raise ValueError(f"einsum: subscripts must be letters a-z or A-Z, got {term!r}")
        if "..." in term:
            widest = builtins.max(widest, nd - len(letters))
        elif len(letters) != nd:
            raise ValueError(f"einsum: the subscripts {term!r} name {len(letters)} dims for an "
                             f"operand with {nd}")
    ellipsis = "".join(spare[:widest])
    explicit = []
    for term, nd in zip(terms, ndims):
        if "..." in term:
            count = nd - len(term.replace("...", ""))
            if count < 0:
                raise ValueError(f"einsum: the subscripts {term!r} name more dims than the "
                                 f"operand's {nd}")
            term = term.replace("...", ellipsis[widest - count:])
        explicit.append(term)
    if arrow:
        out = rhs.replace("...", ellipsis)
        for c in out:
            if not any(c in t for t in explicit):
                raise ValueError(f"einsum: output subscript {c!r} appears in no operand")
    else:
        counts = "".join(explicit)
        out = ellipsis + "".join(sorted(c for c in set(counts)
                                        if counts.count(c) == 1 and c not in ellipsis))
    return explicit, out


class Einsum(Function):
    """y = einsum(equation, x₁, ..., xₙ). The gradient of operand k is the einsum of the
    output gradient with the other operands onto xₖ's distinct subscripts; subscripts that only
    xₖ has are broadcast, a repeated subscript (a diagonal) is written back onto the diagonal,
    and dims that broadcasting stretched from 1 are summed back."""

    def __init__(self, terms: list[str], output: str) -> None:
        self.terms, self.output = terms, output
        self.equation = ",".join(terms) + "->" + output

    def forward(self, *operands: ndarray) -> ndarray:
        self.operands = list(operands)
        # three or more operands: let NumPy pick a pairwise contraction order (one nested loop
        # over every subscript would cost the product of all their sizes)
        return xp.einsum(self.equation, *operands, optimize=len(operands) > 2)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        sizes: dict[str, int] = {}
        for term, x in zip(self.terms, self.operands):
            for c, n in zip(term, x.shape):
                if sizes.get(c, 1) == 1:  # a size of 1 may be broadcast; any other is final
                    sizes[c] = n
        grads: list[ndarray | None] = []
        for k, (term, need) in enumerate(zip(self.terms, self.needs_input_grad)):
            if not need:
                grads.append(None)
                continue
            x = self.operands[k]
            others = [(t, o) for i, (t, o) in enumerate(zip(self.terms, self.operands)) if i != k]
            unique = "".join(dict.fromkeys(term))
            reached = set(self.output).union(*(set(t) for t, _ in others))
            kept = "".join(c for c in unique if c in reached)
            spec = ",".join([self.output] + [t for t, _ in others]) + "->" + kept
            g = xp.einsum(spec, gy, *(o for _, o in others), optimize=len(others) > 1)
            # subscripts that only x has were summed in forward: broadcast them back
            g = g.reshape([sizes[c] if c in kept else 1 for c in unique])
            g = xp.broadcast_to(g, [sizes[c] for c in unique])
            if len(unique) != len(term):  # a repeated subscript: write onto the diagonal
                full = xp.zeros([sizes[c] for c in term], dtype=gy.dtype)
                xp.einsum(f"{term}->{unique}", full)[...] = g
                g = full
            grads.append(ops.sum_to(g, x.shape).astype(x.dtype, copy=False))
        return tuple(grads)


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation: y[out] = Σ over the subscripts missing from ``out`` of
    ∏ₖ xₖ[termₖ]; '...' stands for broadcast dims, and without '->' the output is the
    subscripts that appear once, sorted. ``einsum(eq, [a, b])`` works as in PyTorch.
    **Shape:** given by the output subscripts.

    >>> a, b = wally.ones(2, 3), wally.ones(3, 4)
    >>> wally.einsum("ij,jk->ik", a, b).shape
    wally.Size([2, 4])
    """
    if not isinstance(equation, str):
        raise TypeError(f"einsum: expected the equation to be a str, got "
                        f"{type(equation).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in operands]
    terms, output = _parse_einsum(equation, [t.ndim for t in tensors])
    for term, t in zip(terms, tensors):
        for c in set(term):
            dims = {n for s, n in zip(term, t.shape) if s == c}
            if len(dims) > 1:
                raise ValueError(f"einsum: subscript {c!r} is repeated in {term!r} for dims of "
                                 f"different sizes {sorted(dims)}")
    sizes: dict[str, set[int]] = {}
    for term, t in zip(terms, tensors):
        for c, n in zip(term, t.shape):
            sizes.setdefault(c, set()).add(n)
    for c, found in sizes.items():
        if len(found - {1}) > 1:
            raise ValueError(f"einsum: subscript {c!r} has sizes {sorted(found)} in different "
                             "operands; they must match (or be 1, to broadcast)")
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        raise TypeError(f"einsum: expected operands of one dtype, got {sorted(map(str, dtypes))}")
    return Einsum(terms, output)(*tensors)


# ----- helpers of the activation family (softmax here; the rest in wally.functional) ----------
def _activation_axis(name: str, dim: Any, ndim: int) -> int:
    """Normalise ``dim`` for an ``ndim``-D input; a 0-d input behaves as 1-D, as in PyTorch
    (the activations' wording of the range error)."""
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


# ----- softmax and log-softmax ---------------------------------------------------------------
class _AlongAxis(Function):
    """What softmax and log-softmax share: the axis, the optional cast (``dtype=``), and the
    logits shifted by their maximum, ``x − max x``, so that ``exp`` never overflows."""

    def __init__(self, axis: int, dtype: Any = None) -> None:
        self.axis = axis
        self.dtype = dtype

    def shifted(self, x: ndarray) -> ndarray:
        """A fresh array ``x − max x`` along the axis (an empty copy of an empty ``x``, whose
        maximum has no value)."""
        self.in_dtype = x.dtype
        if self.dtype is not None:
            x = x.astype(self.dtype, copy=False)
        if not x.size:
            return x.copy()
        with xp.errstate(over="ignore"):  # x − max overflowing to −inf only means exp → 0
            return x - x.max(axis=self.axis, keepdims=True)


class Softmax(_AlongAxis):
    """y_i = exp(x_i − max x) / Σ_j exp(x_j − max x) along one axis."""

    def forward(self, x: ndarray) -> ndarray:
        y = self.shifted(x)
        if y.size:
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


class LogSoftmax(_AlongAxis):
    """y_i = x_i − max x − log Σ_j exp(x_j − max x) along one axis."""

    def forward(self, x: ndarray) -> ndarray:
        y = self.shifted(x)
        if y.size:
            y -= xp.log(xp.exp(y).sum(axis=self.axis, keepdims=True))
        if self.needs_input_grad[0]:
            self.y = y
        return y

    def backward(self, gy: ndarray) -> ndarray:
        gx = gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)
        return gx.astype(self.in_dtype, copy=False)


def _softmax_args(name: str, input: Tensor, dim: Any, dtype: Any) -> tuple[int, Any]:
    ndim = input.ndim
    axis = _implicit_softmax_dim(name, ndim) if dim is None else _activation_axis(name, dim, ndim)
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


# ----- PReLU ---------------------------------------------------------------------------------
class PReLU(Function):
    """y = x if x > 0 else a·x, ``a`` one slope per channel (axis 1) or one for all.

    ∂y/∂x = 1 for x > 0 else a (``a`` at x = 0, as PyTorch); ∂y/∂a = Σ x·gy over x ≤ 0."""

    def forward(self, x: ndarray, weight: ndarray) -> ndarray:
        slope = weight.reshape(self._shape(x, weight))
        positive = x > 0
        need_x, need_w = self.needs_input_grad
        if need_x or need_w:
            self.positive = positive
        if need_x:
            self.slope = slope
        if need_w:
            self.x, self.w_shape = x, weight.shape
        return xp.where(positive, x, x * slope)

    @staticmethod
    def _shape(x: ndarray, weight: ndarray) -> tuple[int, ...]:
        if weight.size == 1 or x.ndim < 2:
            return ()
        return (x.shape[1],) + (1,) * (x.ndim - 2)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ndarray | None]:
        need_x, need_w = self.needs_input_grad
        gx = gw = None
        if need_x:
            gx = xp.where(self.positive, gy, gy * self.slope)
        if need_w:
            part = xp.where(self.positive, 0, gy * self.x)
            if math.prod(self.w_shape) == 1 or part.ndim < 2:
                gw = xp.asarray(part.sum(), dtype=gy.dtype).reshape(self.w_shape)
            else:
                axes = (0,) + tuple(range(2, part.ndim))
                gw = part.sum(axis=axes).reshape(self.w_shape)
        return gx, gw


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    r"""Parametric ReLU (He et al., 2015): :math:`\mathrm{PReLU}(x) = \max(0, x) + a \min(0, x)`,
    with one learnt slope :math:`a` per channel (axis 1) or one shared by all.

    Shape:
        - Input: ``(*)``; the channel axis is 1 (a 0-D or 1-D input has one channel).
        - Weight: ``(1,)`` or ``(C,)`` (a 0-D weight is one slope too).
        - Output: ``(*)``, the input's shape.

    Example::

        >>> F.prelu(wally.tensor([-2.0, 3.0]), wally.tensor([0.25]))
        tensor([-0.5000,  3.0000])
    """
    if weight.ndim > 1:
        raise ValueError(
            f"prelu: expected a 0-D or 1-D weight (one slope, or one per channel), got shape "
            f"{tuple(weight.shape)}"
        )
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() != 1 and weight.numel() != channels:
        raise ValueError(
            f"prelu: expected 1 or {channels} slopes for an input with {channels} channels on "
            f"axis 1 (shape {tuple(input.shape)}), got a weight with {weight.numel()}"
        )
    _check_float("prelu", input)
    if weight.dtype != input.dtype:
        raise TypeError(
            f"prelu: expected input and weight of the same dtype, got input {input.dtype} and "
            f"weight {weight.dtype}"
        )
    return PReLU()(input, weight)
