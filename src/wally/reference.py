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
    "local_response_norm_loops",
    "embedding_loops",
    "embedding_grad_loops",
    "conv_transpose_nd_loops",
    "interpolate_loops",
    "pixel_shuffle_loops",
    "max_unpool_loops",
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


# ----- layersB: local response normalisation and embedding lookups, one element at a time -----
def local_response_norm_loops(
    x: ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> ndarray:
    """``b_c = a_c · (k + α/n · Σ_{c'} a_{c'}²)^(−β)`` one element at a time, the sum over the
    channels ``c' ∈ [c − ⌊n/2⌋, c + ⌊(n − 1)/2⌋]`` that exist, the divisor always ``n``."""
    y = xp.zeros_like(x)
    channels = x.shape[1]
    for index in itertools.product(*(range(n) for n in x.shape)):
        c = index[1]
        total = 0.0
        for other in range(c - size // 2, c + (size - 1) // 2 + 1):
            if 0 <= other < channels:
                total += float(x[(index[0], other) + index[2:]]) ** 2
        y[index] = x[index] * (k + alpha / size * total) ** -beta
    return y


def embedding_loops(indices: ndarray, weight: ndarray) -> ndarray:
    """``y[i…] = weight[indices[i…]]``, one index at a time."""
    y = xp.zeros(indices.shape + weight.shape[1:], dtype=weight.dtype)
    for index in itertools.product(*(range(n) for n in indices.shape)):
        y[index] = weight[int(indices[index])]
    return y


def embedding_grad_loops(indices: ndarray, grad: ndarray, num_embeddings: int,
                         padding_idx: int | None = None,
                         scale_grad_by_freq: bool = False) -> ndarray:
    """The weight gradient of a lookup: each output row's gradient added to the row it read,
    one index at a time; the ``padding_idx`` row gets none; ``scale_grad_by_freq`` divides by
    how often each index occurs in the batch."""
    gw = xp.zeros((num_embeddings,) + grad.shape[indices.ndim:], dtype=grad.dtype)
    counts: dict[int, int] = {}
    for index in itertools.product(*(range(n) for n in indices.shape)):
        counts[int(indices[index])] = counts.get(int(indices[index]), 0) + 1
    for index in itertools.product(*(range(n) for n in indices.shape)):
        row = int(indices[index])
        if row == padding_idx:
            continue
        gw[row] += grad[index] / (counts[row] if scale_grad_by_freq else 1)
    return gw


# ----- layersA: transposed convolution, resampling, pixel shuffle, unpooling -------------------
def conv_transpose_nd_loops(
    x: ndarray,
    w: ndarray,
    b: ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
) -> ndarray:
    """Transposed convolution in its scatter form: every input pixel ``x[n, c, i]`` adds
    ``x·w[c, o]`` into the output window starting at ``s·i − p`` (taps ``d`` apart).

    ``x (N, C_in, *spatial)``, ``w (C_in, C_out/groups, *k)``; the output has
    ``(n − 1)·s − 2p + d·(k − 1) + output_padding + 1`` pixels per axis, and taps that land
    outside it (in the cropped padding) are dropped.
    """
    nd = x.ndim - 2
    s, p = _per_axis(stride, nd), _per_axis(padding, nd)
    e, d = _per_axis(output_padding, nd), _per_axis(dilation, nd)
    batch, c_in = x.shape[:2]
    kernel = w.shape[2:]
    per_group_out = w.shape[1]
    per_group_in = c_in // groups
    out = [
        (x.shape[2 + a] - 1) * s[a] - 2 * p[a] + d[a] * (kernel[a] - 1) + e[a] + 1
        for a in range(nd)
    ]
    y = xp.zeros((batch, per_group_out * groups, *out), dtype=x.dtype)
    for n, c in itertools.product(range(batch), range(c_in)):
        g = c // per_group_in
        for i in itertools.product(*(range(m) for m in x.shape[2:])):
            value = x[(n, c) + tuple(i)]
            for o in range(per_group_out):
                for tap in itertools.product(*(range(k) for k in kernel)):
                    target = [i[a] * s[a] - p[a] + d[a] * tap[a] for a in range(nd)]
                    if all(0 <= t < m for t, m in zip(target, out, strict=True)):
                        y[(n, g * per_group_out + o) + tuple(target)] += value * w[(c, o) + tap]
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nd)
    return y


def _source_taps(
    mode: str, i: int, n_in: int, n_out: int, align_corners: bool, factor: float | None,
    real: Any, legacy: bool,
) -> list[tuple[int, Any]]:
    """The input pixels and weights that output pixel ``i`` of one axis reads, from PyTorch's
    definitions (``UpSample.h``), one scalar at a time in the input's precision ``real``."""
    if mode.startswith("antialias-"):
        return _antialias_taps(mode[10:], i, n_in, n_out, align_corners, factor, real)
    if align_corners and mode not in ("nearest", "nearest-exact"):
        scale = real(n_in - 1) / real(n_out - 1) if n_out > 1 else real(0)
    elif factor is not None and factor > 0:
        scale = real(1.0 / factor)
    else:
        scale = real(n_in) / real(n_out)
    if mode == "nearest":
        if legacy and n_out == n_in:
            return [(i, real(1))]
        if legacy and n_out == 2 * n_in:
            return [(i >> 1, real(1))]
        return [(min(math.floor(float(xp.float32(scale * real(i)))), n_in - 1), real(1))]
    if align_corners:
        x = scale * real(i)
    else:
        x = scale * (real(i) + real(0.5)) - real(0.5)
        if mode != "cubic" and x < 0:
            x = real(0)
    if mode == "nearest-exact":
        return [(min(math.floor(float(xp.float32(x + real(0.5)))), n_in - 1), real(1))]
    if mode == "linear" and n_in == n_out:
        return [(i, real(1))]
    j = min(math.floor(float(xp.float32(x))), n_in - 1)
    t = min(max(x - real(j), real(0)), real(1))
    if mode == "linear":
        return [(j, real(1) - t), (min(j + 1, n_in - 1), t)]
    a = real(-0.75)

    def kernel(d: Any) -> Any:  # Keys' cubic convolution kernel at distance |d|
        d = abs(d)
        if d <= 1:
            return ((a + 2) * d - (a + 3)) * d * d + 1
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [
        (min(max(j + m, 0), n_in - 1), kernel(t - real(m))) for m in (-1, 0, 1, 2)
    ]


def _antialias_taps(
    mode: str, i: int, n_in: int, n_out: int, align_corners: bool, factor: float | None,
    real: Any,
) -> list[tuple[int, Any]]:
    """Antialiased resampling (PyTorch's ``_compute_weights_aa``, PIL's resize): the pixels
    within ``support`` of the centre ``scale·(i + ½)``, weighted by the filter stretched by
    ``max(scale, 1)``, normalised to sum 1."""
    if align_corners:
        scale = real(n_in - 1) / real(n_out - 1) if n_out > 1 else real(0)
    elif factor is not None and factor > 0:
        scale = real(1.0 / factor)
    else:
        scale = real(n_in) / real(n_out)
    size = 2 if mode == "linear" else 4
    support = real(size / 2) * scale if scale >= 1 else real(size / 2)
    invscale = real(1) / scale if scale >= 1 else real(1)
    centre = scale * (real(i) + real(0.5))
    first = max(int(centre - support + real(0.5)), 0)
    stop = min(int(centre + support + real(0.5)), n_in)

    def filter_(x: Any) -> Any:
        x = abs(x)
        if mode == "linear":
            return real(1) - x if x < 1 else real(0)
        a = real(-0.5)
        if x < 1:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        return (((x - 5) * x + 8) * x - 4) * a if x < 2 else real(0)

    weights = [filter_((real(j) - centre + real(0.5)) * invscale) for j in range(first, stop)]
    total = sum(weights, real(0))
    return [(j, w / total if total != 0 else real(0))
            for j, w in zip(range(first, stop), weights, strict=True)]


def interpolate_loops(
    x: ndarray,
    size: Sequence[int],
    mode: str,
    align_corners: bool = False,
    scale_factors: Sequence[float | None] | None = None,
) -> ndarray:
    """``F.interpolate`` one output element at a time: ``y[n, c, i…] = Σ_taps Π_axes w · x``
    over the taps of every axis (``mode``: nearest, nearest-exact, linear or cubic, the
    separable 1-D rule, or ``antialias-linear`` / ``antialias-cubic``; 2-D nearest takes
    PyTorch's shortcut for kept and doubled sizes).
    ``scale_factors`` are the user's factors (``None``: from the sizes)."""
    nd = x.ndim - 2
    real = x.dtype.type
    factors = list(scale_factors) if scale_factors is not None else [None] * nd
    y = xp.zeros((*x.shape[:2], *size), dtype=x.dtype)
    for out in itertools.product(*(range(n) for n in size)):
        per_axis = [
            _source_taps(mode, out[a], x.shape[2 + a], size[a], align_corners, factors[a], real,
                         nd == 2)
            for a in range(nd)
        ]
        total = xp.zeros(x.shape[:2], dtype=x.dtype)
        for combo in itertools.product(*per_axis):
            weight = real(1)
            for _, w in combo:
                weight = weight * w
            total = total + weight * x[(slice(None), slice(None)) + tuple(j for j, _ in combo)]
        y[(slice(None), slice(None)) + out] = total
    return y


def pixel_shuffle_loops(x: ndarray, r: int) -> ndarray:
    """``y[…, c, h·r + i, w·r + j] = x[…, c·r² + i·r + j, h, w]``, element by element."""
    *lead, channels, h, w = x.shape
    y = xp.zeros((*lead, channels // (r * r), h * r, w * r), dtype=x.dtype)
    for index in itertools.product(*(range(n) for n in y.shape)):
        *batch, c, hh, ww = index
        source = (*batch, c * r * r + (hh % r) * r + (ww % r), hh // r, ww // r)
        y[index] = x[source]
    return y


def max_unpool_loops(x: ndarray, indices: ndarray, output_size: Sequence[int]) -> ndarray:
    """``y[n, c].flat[indices[n, c, i…]] = x[n, c, i…]``; every other cell 0."""
    y = xp.zeros((*x.shape[:2], *output_size), dtype=x.dtype)
    for index in itertools.product(*(range(n) for n in x.shape)):
        plane = y[index[:2]].reshape(-1)
        plane[int(indices[index])] = x[index]
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
