"""The study note's naive loops, kept beside the fast code as its oracle.

``corr2d`` and ``pool2d`` are the note's (d2l's) code, written on wally tensors: they run
through autograd one window at a time (``Y[i, j] = ...`` is a differentiable ``__setitem__``),
so they are slow and obviously right.  The ``*_loops`` functions are plain NumPy versions of
every convolution, pooling and padding option, one output element at a time, that the tests
hold ``wally.nn.functional`` against.  They share no code with the fast paths: even output
sizes are recomputed here from the definitions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from wally.backend import ndarray, xp
from wally.creation import zeros
from wally.tensor import Tensor

__all__ = [
    "corr2d",
    "pool2d",
    "conv_nd_loops",
    "max_pool_nd_loops",
    "avg_pool_nd_loops",
    "adaptive_pool_loops",
    "pad_loops",
    "gather_loops",
    "scatter_loops",
    "cumprod_grad_loops",
    "einsum_loops",
]


# ----- the note's code ------------------------------------------------------------------------
def corr2d(X: Tensor, K: Tensor) -> Tensor:  # noqa: N803 - the note's names
    """Compute 2D cross-correlation (the note's ``corr2d``, from d2l).

    ``Y[i, j] = Σa Σb X[i + a, j + b] · K[a, b]``: the kernel slides over the input without
    being flipped, which is why what CNNs call convolution is cross-correlation.  The output is
    ``(n_h − k_h + 1) × (n_w − k_w + 1)``: the note's size formula with no padding, stride 1.

    The note allocates ``Y`` with ``torch.zeros`` (float32); here ``Y`` takes ``X``'s dtype so
    float64 gradient checks can run through it.

    Example::

        >>> X = wally.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
        >>> corr2d(X, wally.tensor([[0.0, 1.0], [2.0, 3.0]]))
        tensor([[19., 25.],
                [37., 43.]])
    """
    h, w = K.shape
    Y = zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=X.dtype)  # noqa: N806
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


def pool2d(X: Tensor, pool_size: Sequence[int], mode: str = "max") -> Tensor:  # noqa: N803
    """The note's ``pool2d``: the maximum (``mode='max'``) or mean (``'avg'``) of every
    ``p_h × p_w`` window, stride 1, no padding; output ``(n_h − p_h + 1) × (n_w − p_w + 1)``.

    Example::

        >>> X = wally.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
        >>> pool2d(X, (2, 2))
        tensor([[4., 5.],
                [7., 8.]])
    """
    p_h, p_w = pool_size
    Y = zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1), dtype=X.dtype)  # noqa: N806
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == "max":
                Y[i, j] = X[i : i + p_h, j : j + p_w].max()
            elif mode == "avg":
                Y[i, j] = X[i : i + p_h, j : j + p_w].mean()
    return Y


# ----- NumPy loop oracles ---------------------------------------------------------------------
def _per_axis(value: int | Sequence[int], nd: int) -> tuple[int, ...]:
    return (int(value),) * nd if isinstance(value, int) else tuple(int(v) for v in value)


def _pairs(padding: Any, nd: int) -> list[tuple[int, int]]:
    """An int, one int per axis, or one ``(left, right)`` pair per axis."""
    if isinstance(padding, int):
        return [(padding, padding)] * nd
    return [(p, p) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in padding]


def conv_nd_loops(
    x: ndarray,
    w: ndarray,
    b: ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: Any = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> ndarray:
    """Cross-correlation one output element at a time, zero padding, any number of axes.

    ``[H]n,d,i = [b]d + Σc Σa [V]d,c,a [X]n,c,s·i+r·a−p`` with ``c`` running over the input
    channels of output channel ``d``'s group: the note's ``[H]i,j,d = Σa Σb Σc [V]a,b,c,d
    [X]i+a,j+b,c`` with stride ``s``, dilation ``r``, padding ``p`` and groups.  ``padding``
    may give ``(left, right)`` pairs per axis.  ``x`` is ``(N, C, *spatial)``, ``w`` is
    ``(O, C/groups, *k)``.
    """
    nd = x.ndim - 2
    s, r = _per_axis(stride, nd), _per_axis(dilation, nd)
    pairs = _pairs(padding, nd)
    kernel = w.shape[2:]
    padded = xp.pad(x, [(0, 0), (0, 0), *pairs])
    out = [(padded.shape[2 + a] - r[a] * (kernel[a] - 1) - 1) // s[a] + 1 for a in range(nd)]
    c_per_group = x.shape[1] // groups
    o_per_group = w.shape[0] // groups
    y = xp.zeros((x.shape[0], w.shape[0], *out), dtype=x.dtype)
    for n, d in itertools.product(range(x.shape[0]), range(w.shape[0])):
        g = d // o_per_group
        channels = slice(g * c_per_group, (g + 1) * c_per_group)
        for pos in itertools.product(*(range(o) for o in out)):
            window = tuple(
                slice(i * s[a], i * s[a] + r[a] * (kernel[a] - 1) + 1, r[a])
                for a, i in enumerate(pos)
            )
            total = (padded[(n, channels) + window] * w[d]).sum()
            y[(n, d) + pos] = total + (b[d] if b is not None else 0)
    return y


def _pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Window positions, counted from the definition: a window is kept while it fits in the
    padded input, or, with ``ceil_mode``, while it starts inside the input or left padding."""
    count = 0
    while True:
        start = count * s  # in padded coordinates
        end = start + d * (k - 1) + 1
        if end <= n + 2 * p or (ceil_mode and start < n + p and end - (n + 2 * p) < s):
            count += 1
        else:
            return count


def max_pool_nd_loops(
    x: ndarray,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
) -> tuple[ndarray, ndarray]:
    """Max pooling one output at a time; returns the values and PyTorch's flat indices.

    The note's ``Y[i, j] = X[i: i + p_h, j: j + p_w].max()`` with stride, padding (cells in
    the padding never win), dilation and ``ceil_mode``, over ``(N, C, *spatial)``.  Scanning a
    window in row-major order, a value wins if it is greater than the best so far or NaN; an
    all −∞ window (or, with dilation, one with no real cell) reports its first cell outside
    the left padding, as PyTorch does.
    """
    nd = x.ndim - 2
    k = _per_axis(kernel_size, nd)
    s = k if stride is None else _per_axis(stride, nd)
    p, d = _per_axis(padding, nd), _per_axis(dilation, nd)
    spatial = x.shape[2:]
    out = [_pool_out(spatial[a], k[a], s[a], p[a], d[a], ceil_mode) for a in range(nd)]
    values = xp.zeros((*x.shape[:2], *out), dtype=x.dtype)
    indices = xp.zeros((*x.shape[:2], *out), dtype=xp.int64)
    for nc in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for pos in itertools.product(*(range(o) for o in out)):
            cells = [[i * s[a] - p[a] + t * d[a] for t in range(k[a])] for a, i in enumerate(pos)]
            cells = [[c for c in axis if 0 <= c < spatial[a]] for a, axis in enumerate(cells)]
            # PyTorch starts from the first cell at or after the window's start that is not in
            # the left padding (even if, with dilation, it lies past the input's end).
            first = []
            for a, i in enumerate(pos):
                start = i * s[a] - p[a]
                while start < 0:
                    start += d[a]
                first.append(start)
            best, best_index = -math.inf, tuple(first)
            for cell in itertools.product(*cells):
                value = x[nc + cell]
                if value > best or math.isnan(value):
                    best, best_index = value, cell
            values[nc + pos] = best
            flat = 0
            for a, c in enumerate(best_index):
                flat = flat * spatial[a] + c
            indices[nc + pos] = flat
    return values, indices


def avg_pool_nd_loops(
    x: ndarray,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> ndarray:
    """Average pooling one output at a time (the note's ``X[i: i + p_h, j: j + p_w].mean()``).

    Padding reads as zero.  The divisor is ``divisor_override`` if given, else the number of
    window cells inside the padded input (``count_include_pad``) or inside the input itself.
    """
    nd = x.ndim - 2
    k = _per_axis(kernel_size, nd)
    s = k if stride is None else _per_axis(stride, nd)
    p = _per_axis(padding, nd)
    spatial = x.shape[2:]
    out = [_pool_out(spatial[a], k[a], s[a], p[a], 1, ceil_mode) for a in range(nd)]
    y = xp.zeros((*x.shape[:2], *out), dtype=x.dtype)
    for nc in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for pos in itertools.product(*(range(o) for o in out)):
            total = 0.0
            in_padded = 1
            in_input = 1
            for a, i in enumerate(pos):
                cells = [i * s[a] - p[a] + t for t in range(k[a])]
                in_padded *= sum(1 for c in cells if -p[a] <= c < spatial[a] + p[a])
                in_input *= sum(1 for c in cells if 0 <= c < spatial[a])
            ranges = [
                [i * s[a] - p[a] + t for t in range(k[a]) if 0 <= i * s[a] - p[a] + t < spatial[a]]
                for a, i in enumerate(pos)
            ]
            for cell in itertools.product(*ranges):
                total += float(x[nc + cell])
            if divisor_override is not None:
                divisor = divisor_override
            else:
                divisor = in_padded if count_include_pad else in_input
            y[nc + pos] = total / divisor
    return y


def adaptive_pool_loops(
    x: ndarray, output_size: int | Sequence[int], mode: str = "avg"
) -> ndarray | tuple[ndarray, ndarray]:
    """Adaptive pooling one output at a time: along each axis output ``i`` of ``o`` covers
    input cells ``floor(i·n/o)`` up to ``ceil((i + 1)·n/o)`` (exclusive).  ``mode`` is
    ``'avg'`` (returns the means) or ``'max'`` (returns the maxima and their flat indices)."""
    nd = x.ndim - 2
    out = _per_axis(output_size, nd)
    spatial = x.shape[2:]
    y = xp.zeros((*x.shape[:2], *out), dtype=x.dtype)
    indices = xp.zeros((*x.shape[:2], *out), dtype=xp.int64)
    for nc in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for pos in itertools.product(*(range(o) for o in out)):
            ranges = [
                range(
                    math.floor(i * spatial[a] / out[a]),
                    math.ceil((i + 1) * spatial[a] / out[a]),
                )
                for a, i in enumerate(pos)
            ]
            cells = list(itertools.product(*ranges))
            if mode == "avg":
                y[nc + pos] = sum(float(x[nc + c]) for c in cells) / len(cells)
                continue
            best = cells[0]
            for c in cells[1:]:
                if x[nc + c] > x[nc + best] or math.isnan(x[nc + c]):
                    best = c
            y[nc + pos] = x[nc + best]
            indices[nc + pos] = xp.ravel_multi_index(best, spatial)
    return y if mode == "avg" else (y, indices)


def pad_loops(
    x: ndarray, pad: Sequence[int], mode: str = "constant", value: float = 0.0
) -> ndarray:
    """Padding one output element at a time, from each mode's definition.

    ``pad`` is PyTorch's: ``(left, right)`` pairs from the last axis backwards.  Output cell
    ``i`` of a padded axis of size ``n`` with left padding ``l`` reads input cell ``j = i − l``
    if ``0 ≤ j < n``; otherwise ``value`` (constant), ``−j`` or ``2(n − 1) − j`` (reflect),
    the nearest edge (replicate) or ``j mod n`` (circular).
    """
    pairs = [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)][::-1]
    lead = x.ndim - len(pairs)
    shape = list(x.shape[:lead]) + [
        n + lo + hi for n, (lo, hi) in zip(x.shape[lead:], pairs, strict=True)
    ]
    y = xp.zeros(shape, dtype=x.dtype)
    for index in itertools.product(*(range(n) for n in shape)):
        source = list(index[:lead])
        outside = False
        for axis, (lo, _) in enumerate(pairs):
            n = x.shape[lead + axis]
            j = index[lead + axis] - lo
            if not 0 <= j < n:
                if mode == "constant":
                    outside = True
                elif mode == "reflect":
                    j = -j if j < 0 else 2 * (n - 1) - j
                elif mode == "replicate":
                    j = min(max(j, 0), n - 1)
                elif mode == "circular":
                    j %= n
                else:
                    raise ValueError(f"pad_loops: unknown mode {mode!r}")
            source.append(j)
        y[index] = value if outside else x[tuple(source)]
    return y


# ----- tensorops: index, scan and contraction loops -------------------------------------------
def gather_loops(x: ndarray, dim: int, index: ndarray) -> ndarray:
    """out[p] = x[p with its ``dim`` coordinate replaced by index[p]], one element at a time."""
    out = xp.zeros(index.shape, dtype=x.dtype)
    for p in itertools.product(*(range(n) for n in index.shape)):
        q = list(p)
        q[dim] = int(index[p])
        out[p] = x[tuple(q)]
    return out


def scatter_loops(x: ndarray, dim: int, index: ndarray, src: ndarray,
                  reduce: str | None = None) -> ndarray:
    """out = x; out[p with dim coordinate index[p]] = src[p] (``reduce='add'``: +=), in
    row-major order of p, so the last of repeated indices wins."""
    out = x.copy()
    for p in itertools.product(*(range(n) for n in index.shape)):
        q = list(p)
        q[dim] = int(index[p])
        if reduce == "add":
            out[tuple(q)] += src[p]
        else:
            out[tuple(q)] = src[p]
    return out


def cumprod_grad_loops(x: ndarray, gy: ndarray) -> ndarray:
    """dL/dx_k = sum_{i >= k} gy_i * prod_{j <= i, j != k} x_j for a 1-D x, by the definition
    (no division, so zeros need no special case)."""
    n = x.shape[0]
    gx = xp.zeros(n, dtype=x.dtype)
    for k in range(n):
        for i in range(k, n):
            term = gy[i]
            for j in range(i + 1):
                if j != k:
                    term = term * x[j]
            gx[k] += term
    return gx


def einsum_loops(equation: str, *operands: ndarray) -> ndarray:
    """Einstein summation with an explicit '->' and letters only: every assignment of the
    subscripts is visited and the product of the operands' elements added to its output."""
    lhs, out = equation.replace(" ", "").split("->")
    terms = lhs.split(",")
    sizes: dict[str, int] = {}
    for term, x in zip(terms, operands):
        for c, n in zip(term, x.shape):
            sizes[c] = n
    letters = sorted(sizes)
    result = xp.zeros(tuple(sizes[c] for c in out), dtype=operands[0].dtype)
    for values in itertools.product(*(range(sizes[c]) for c in letters)):
        at = dict(zip(letters, values))
        term_product = 1.0
        for term, x in zip(terms, operands):
            term_product = term_product * x[tuple(at[c] for c in term)]
        result[tuple(at[c] for c in out)] += term_product
    return result
