"""Max and average pooling, fixed-window and adaptive, in 1, 2 and 3 dimensions.

Pooling has no parameters and leaves the channels alone: each output is the maximum or the
mean of one window of one channel (the note's ``pool2d``).  The fixed-window ops run one
strided view per kernel tap over the whole batch (``∏k`` vectorised passes, no Python loop
over positions; average pooling sums one axis at a time, ``Σk`` passes); backward sends each
gradient back through the same per-tap views, so no ``add.at`` is needed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from wally._parallel import get_num_threads, run_chunks
from wally._windows import (
    Windows,
    adaptive_settings,
    adaptive_windows,
    check_rank,
    pool_settings,
    pool_windows,
    unpool_settings,
    volume,
)
from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.backends import onednn, tuning

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
]

_ALL = slice(None)
IntOrTuple = int | Sequence[int]


def _batched(op: str, nd: int, input: Tensor) -> None:
    check_rank(op, nd, input)
    # PyTorch's rule: a batch may be empty (the output is too), the channels and planes not.
    if 0 in input.shape[-nd - 1 :]:
        raise ValueError(
            f"{op}: expected an input with non-zero channels and spatial size (only the batch "
            f"may be 0), got shape {tuple(input.shape)}"
        )


# A layer pools the same way on every call: its windows are built once per input size (and its
# settings, checked at its construction, are not checked again: wally._windows.pool_settings).
_CACHE: dict[tuple[Any, ...], Windows] = {}


def _windows(
    op: str,
    nd: int,
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    dilation: IntOrTuple,
    ceil_mode: bool,
) -> Windows:
    _batched(op, nd, input)
    spatial = tuple(input.shape[-nd:])
    arguments = (kernel_size, stride, padding, dilation)
    # repr tells 2 from True and 2.0 (which the checks reject), and lists need no hashing.
    key = (op, spatial, repr(arguments), ceil_mode)
    windows = _CACHE.get(key)
    if windows is None:
        settings = pool_settings(op, nd, *arguments)
        windows = pool_windows(op, spatial, *settings, bool(ceil_mode))
        if len(_CACHE) > 1024:
            _CACHE.clear()
        _CACHE[key] = windows
    return windows


def _unbatch(x: ndarray, nd: int) -> tuple[ndarray, bool]:
    return (x[None], True) if x.ndim == nd + 1 else (x, False)


# ----- max pooling ----------------------------------------------------------------------------
class MaxPoolNd(Function):
    """``y = max over the window``; with ``return_indices`` also PyTorch's flat indices into
    each input plane."""

    def __init__(self, windows: Windows, return_indices: bool = False) -> None:
        self.windows = windows
        self.return_indices = return_indices

    def forward(self, x: ndarray) -> ndarray | tuple[ndarray, ndarray]:
        win = self.windows
        nd = len(win.kernel)
        x, self.unbatched = _unbatch(x, nd)
        self.input_shape = x.shape
        fill = -xp.inf if x.dtype.kind == "f" else xp.iinfo(x.dtype).min
        check_nan = x.dtype.kind == "f" and x.size > 0 and bool(xp.isnan(xp.max(x)))
        planes = x.reshape((-1, *win.spatial))
        best: ndarray = xp.empty((len(planes), *win.out), dtype=x.dtype)
        arg: ndarray = xp.empty(best.shape, dtype=xp.uint8 if len(win.taps) < 256 else xp.int32)

        views = win.views

        def work(chunks: Iterator[slice], step: int) -> None:
            for chunk, padded in win.padded_chunks(planes, fill, chunks, step):
                top, which = best[chunk], arg[chunk]
                top[...] = padded[views[0]]
                which.fill(0)
                for index, view in enumerate(views[1:], start=1):
                    values = padded[view]
                    # PyTorch's rule: a strictly greater value wins (the first maximum is
                    # kept) and NaN always wins, so NaN propagates.
                    better = values > top
                    if check_nan:
                        better |= xp.isnan(values)
                    xp.maximum(top, values, out=top)
                    # Taps come in increasing order, so the winner's index is the largest
                    # that won; arithmetic instead of a masked copy, slow on random masks.
                    xp.maximum(which, xp.multiply(better, index, dtype=which.dtype), out=which)

        win.run(work, len(planes), planes.itemsize)
        best = best.reshape(x.shape[:2] + win.out)
        arg = arg.reshape(best.shape)
        if win.needs_padding and (best == fill).any():
            arg = self._first_real_tap(arg)
        self.arg = arg
        y = best[0] if self.unbatched else best
        if not self.return_indices:
            return y
        indices = self._flat_indices(arg)
        return y, indices[0] if self.unbatched else indices

    def backward(self, gy: ndarray, _: Any = None) -> ndarray:
        win = self.windows
        if self.unbatched:
            gy = gy[None]
        out_planes = gy.reshape((-1, *win.out))
        arg = self.arg.reshape(out_planes.shape)
        # Allocated in the input's shape so that the gradient owns its memory (a leaf keeps it
        # without a copy); filled through a (P, *spatial) view.
        full = xp.empty(self.input_shape, dtype=gy.dtype)
        gx = full.reshape(len(out_planes), *win.spatial)
        # Multiplying by the 0/1 mask is fast, but inf·0 is NaN: non-finite gradients take the
        # exact (slower) select instead.
        finite = bool(xp.isfinite(gy.sum()))
        zero = xp.zeros((), dtype=gy.dtype)

        views = win.views

        def work(chunks: Iterator[slice], step: int) -> None:
            for chunk, g in win.gradient_chunks(gx, chunks, step):
                grads, which = out_planes[chunk], arg[chunk]
                for index, view in enumerate(views):
                    mask = which == index
                    picked = grads * mask if finite else xp.where(mask, grads, zero)
                    if win.tiles:
                        g[view] = picked
                    else:
                        g[view] += picked

        win.run(work, len(gx), gx.itemsize)
        return full[0] if self.unbatched else full

    def _tap_coordinates(self, arg: ndarray) -> list[ndarray]:
        table = xp.array(self.windows.taps, dtype=xp.int64).reshape(len(self.windows.taps), -1)
        return [table[:, axis][arg] for axis in range(table.shape[1])]

    def _positions(self, arg: ndarray) -> list[ndarray]:
        """Input index along each axis of the tap that won, broadcast to the output shape."""
        win = self.windows
        nd = len(win.kernel)
        positions = []
        for axis, taps in enumerate(self._tap_coordinates(arg)):
            shape = [1] * (nd + 2)
            shape[axis + 2] = win.out[axis]
            positions.append(win.starts(axis).reshape(shape) + taps * win.dilation[axis])
        return positions

    def _first_real_tap(self, arg: ndarray) -> ndarray:
        """A window whose maximum is a padding cell (all its real values are -inf) reports its
        first real cell instead, as PyTorch does."""
        win = self.windows
        positions = self._positions(arg)
        outside = xp.zeros(arg.shape, dtype=bool)
        for pos, n in zip(positions, win.spatial, strict=True):
            outside |= (pos < 0) | (pos >= n)
        if not outside.any():
            return arg
        first = xp.zeros(win.out, dtype=xp.int64)
        flat = 1
        for axis in reversed(range(len(win.kernel))):
            start = win.starts(axis)
            tap = xp.where(start < 0, -(start // win.dilation[axis]), 0)  # ceil(-start / d)
            shape = [1] * len(win.kernel)
            shape[axis] = win.out[axis]
            first = first + tap.reshape(shape) * flat
            flat *= win.kernel[axis]
        return xp.where(outside, first.astype(arg.dtype), arg)

    def _flat_indices(self, arg: ndarray) -> ndarray:
        win = self.windows
        flat = xp.zeros(arg.shape, dtype=xp.int64)
        for pos, n in zip(self._positions(arg), win.spatial, strict=True):
            flat = flat * n + pos
        return flat


def _max_pool(
    op: str,
    nd: int,
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    dilation: IntOrTuple,
    ceil_mode: bool,
    return_indices: bool,
) -> Any:
    # The one family that takes integers, as PyTorch's does: a maximum is exact (no gradient
    # flows to an integer input).  Every other op refuses them (docs/RELIABILITY.md).
    if input.dtype.kind not in "fiu":
        raise TypeError(f"{op}: expected a real-valued input, got dtype {input.dtype}")
    windows = _windows(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode)
    return MaxPoolNd(windows, return_indices)(input)


def max_pool1d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """1-D max pooling, PyTorch's ``F.max_pool1d``: ``[Y]n,c,i = max_a [X]n,c,s·i+d·a−p``.

    Arguments as in :func:`max_pool2d`.

    Shape:
        input ``(N, C, L)`` or ``(C, L)`` → output ``(N, C, L_out)``,
        ``L_out = floor((L + 2p − d·(k − 1) − 1)/s) + 1`` (rounded up with ``ceil_mode``).

    Example::

        >>> F.max_pool1d(wally.tensor([[[1.0, 3.0, 2.0, 5.0]]]), 2)
        tensor([[[3., 5.]]])
    """
    return _max_pool(
        "max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool2d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """2-D max pooling, PyTorch's ``F.max_pool2d`` (the note's ``pool2d(X, pool_size, 'max')``).

    ``[Y]n,c,i,j = max_{a,b} [X]n,c,s·i+d·a−p,s·j+d·b−p``: the largest value in each window of
    each channel.  ``stride`` defaults to ``kernel_size``; ``padding`` (at most half the
    kernel) pads with −∞; ``dilation`` spaces the window's taps; ``ceil_mode`` keeps a last,
    partial window as long as it starts inside the input or the left padding.  With
    ``return_indices`` also returns, as int64, the position of each maximum in its
    ``H × W`` input plane (``h·W + w``), as PyTorch does.  Ties go to the first maximum in
    row-major order; NaN wins.

    Shape:
        input ``(N, C, H, W)`` or ``(C, H, W)`` → output ``(N, C, H_out, W_out)`` with, per
        axis, ``n_out = floor((n + 2p − d·(k − 1) − 1)/s) + 1`` (rounded up with
        ``ceil_mode``).

    Example::

        >>> x = wally.arange(16.0).reshape(1, 1, 4, 4)
        >>> F.max_pool2d(x, 2)
        tensor([[[[ 5.,  7.],
                  [13., 15.]]]])
    """
    return _max_pool(
        "max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool3d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """3-D max pooling, PyTorch's ``F.max_pool3d``: the maximum over each ``k_d × k_h × k_w``
    window (arguments as in :func:`max_pool2d`; indices are ``(d·H + h)·W + w``).

    Shape:
        input ``(N, C, D, H, W)`` or ``(C, D, H, W)`` → output ``(N, C, D_out, H_out, W_out)``
        with, per axis, ``n_out = floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> F.max_pool3d(wally.randn(2, 3, 8, 8, 8), 2).shape
        wally.Size([2, 3, 4, 4, 4])
    """
    return _max_pool(
        "max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


# ----- average pooling ------------------------------------------------------------------------
class AvgPoolNd(Function):
    """``y = (sum over the window) / divisor``, the divisor fixed per output position."""

    def __init__(self, windows: Windows, divisor: ndarray | float) -> None:
        self.windows = windows
        self.divisor = divisor
        self.onednn: onednn.AvgPool | None = None

    def _onednn_plan(self, x: ndarray) -> onednn.AvgPool | None:
        """oneDNN's pooling where it computes the same mean: oneDNN on, more than one thread,
        float32, C-contiguous, 1- to 3-D, no padding and no ``ceil_mode`` window past the
        input, and the divisor the window's size (no ``divisor_override`` that differs).
        Measured in 40 batches of LeNet (``benchmarks.profile_epoch``, ms, NumPy → oneDNN):
        at two threads the 256×6×28×28 pool's forward 27.2 → 21.8 and backward 31.4 → 28.9,
        the 256×16×10×10 pool's 16.8 → 7.4 and 16.5 → 7.4; at one thread the first's were
        23.4 → 34.0 and 27.6 → 41.1, so one thread keeps NumPy's per-tap sums."""
        win = self.windows
        volume = 1
        for k in win.kernel:
            volume *= k
        if (x.dtype != xp.float32 or not x.flags.c_contiguous or win.needs_padding
                or not isinstance(self.divisor, float) or self.divisor != volume
                or not 1 <= len(win.kernel) <= 3 or get_num_threads() < 2
                or not onednn.is_switched_on()):
            return None
        return onednn.avg_pool_plan(x.shape, win.kernel, win.stride, get_num_threads())

    def forward(self, x: ndarray) -> ndarray:
        win = self.windows
        x, self.unbatched = _unbatch(x, len(win.kernel))
        self.input_shape = x.shape
        self.onednn = self._onednn_plan(x)
        if self.onednn is not None:
            y = self.onednn.forward(x, xp.empty(self.onednn.output_shape, dtype=x.dtype))
            return y[0] if self.unbatched else y
        planes = x.reshape((-1, *win.spatial))
        divisor = xp.asarray(self.divisor, dtype=x.dtype)
        shape = x.shape[:2] + win.out
        if win.small(planes):  # one unpadded chunk: no threads, scratch or generators
            total = win.window_sums(planes) / divisor
            return total.reshape(shape[1:] if self.unbatched else shape)
        total = xp.empty((len(planes), *win.out), dtype=x.dtype)

        def work(chunks: Iterator[slice], step: int) -> None:
            for chunk, padded in win.padded_chunks(planes, 0, chunks, step):
                xp.divide(win.window_sums(padded), divisor, out=total[chunk])

        win.run(work, len(planes), planes.itemsize)
        y = total.reshape(shape)
        return y[0] if self.unbatched else y

    def backward(self, gy: ndarray) -> ndarray:
        win = self.windows
        if self.unbatched:
            gy = gy[None]
        if self.onednn is not None and gy.dtype == xp.float32:
            gx = self.onednn.backward(xp.ascontiguousarray(gy),
                                      xp.empty(self.input_shape, dtype=gy.dtype))
            return gx[0] if self.unbatched else gx
        share = (gy / xp.asarray(self.divisor, dtype=gy.dtype)).reshape((-1, *win.out))
        full = xp.empty(self.input_shape, dtype=gy.dtype)  # owns its memory, as in max pooling
        gx = full.reshape(len(share), *win.spatial)

        views = win.views

        def work(chunks: Iterator[slice], step: int) -> None:
            for chunk, g in win.gradient_chunks(gx, chunks, step):
                part = share[chunk]
                for view in views:
                    if win.tiles:
                        g[view] = part
                    else:
                        g[view] += part

        win.run(work, len(gx), gx.itemsize)
        return full[0] if self.unbatched else full


def _avg_divisor(
    win: Windows, count_include_pad: bool, divisor_override: int | None
) -> ndarray | float:
    """PyTorch's divisor: the window clipped to the padded input (``count_include_pad``) or to
    the input itself; windows reaching past the padding (``ceil_mode``) never count it."""
    key = (count_include_pad, divisor_override)
    if key not in win.divisors:
        win.divisors[key] = _divisor(win, count_include_pad, divisor_override)
    return win.divisors[key]


def _divisor(
    win: Windows, count_include_pad: bool, divisor_override: int | None
) -> ndarray | float:
    if divisor_override is not None:
        return float(divisor_override)
    nd = len(win.kernel)
    divisor = xp.ones(win.out, dtype=xp.float64)
    for axis in range(nd):
        start = win.starts(axis)
        end = xp.minimum(start + win.kernel[axis], win.spatial[axis] + win.padding[axis])
        if not count_include_pad:
            start = xp.maximum(start, 0)
            end = xp.minimum(end, win.spatial[axis])
        shape = [1] * nd
        shape[axis] = win.out[axis]
        divisor = divisor * (end - start).reshape(shape)
    if (divisor == divisor.flat[0]).all():
        return float(divisor.flat[0])
    return divisor


def check_divisor_override(op: str, divisor_override: object) -> None:
    """``divisor_override``: ``None`` or a non-zero int (layers at construction, functions at
    the call); one error naming ``op`` otherwise."""
    if divisor_override is None:
        return
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, int):
        raise TypeError(f"{op}: divisor_override must be an int, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError(f"{op}: divisor_override must be non-zero, got {divisor_override}")


def _avg_pool(
    op: str,
    nd: int,
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> Tensor:
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {input.dtype}")
    windows = _windows(op, nd, input, kernel_size, stride, padding, 1, ceil_mode)
    if nd == 3 and any(n < k for n, k in zip(windows.spatial, windows.kernel, strict=True)):
        # PyTorch's avg_pool3d (alone among the fixed-window pools) checks the unpadded input.
        raise ValueError(
            f"{op}: expected an input at least as large as the kernel size {windows.kernel} on "
            f"every axis, got spatial size {windows.spatial}"
        )
    check_divisor_override(op, divisor_override)
    divisor = _avg_divisor(windows, count_include_pad, divisor_override)
    return AvgPoolNd(windows, divisor)(input)


def avg_pool1d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """1-D average pooling, PyTorch's ``F.avg_pool1d``: ``[Y]n,c,i = (1/k) Σa [X]n,c,s·i+a−p``.

    Arguments as in :func:`avg_pool2d` (PyTorch's 1-D version has no ``divisor_override``).

    Shape:
        input ``(N, C, L)`` or ``(C, L)`` → output ``(N, C, L_out)``,
        ``L_out = floor((L + 2p − k)/s) + 1`` (rounded up with ``ceil_mode``).

    Example::

        >>> F.avg_pool1d(wally.tensor([[[1.0, 3.0, 2.0, 6.0]]]), 2)
        tensor([[[2., 4.]]])
    """
    return _avg_pool(
        "avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None
    )


def avg_pool2d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """2-D average pooling, PyTorch's ``F.avg_pool2d`` (the note's ``pool2d(X, pool_size,
    'avg')``).

    ``[Y]n,c,i,j = (1/m) Σa Σb [X]n,c,s·i+a−p,s·j+b−p``: the mean of each window of each
    channel, where padding reads as zero.  ``m`` is the window size ``k_h·k_w`` counting the
    padding (``count_include_pad=True``), or only the real cells (``False``), or
    ``divisor_override``.  ``stride`` defaults to ``kernel_size``; ``ceil_mode`` keeps a last,
    partial window.

    Shape:
        input ``(N, C, H, W)`` or ``(C, H, W)`` → output ``(N, C, H_out, W_out)`` with, per
        axis, ``n_out = floor((n + 2p − k)/s) + 1`` (rounded up with ``ceil_mode``).

    Example::

        >>> x = wally.arange(16.0).reshape(1, 1, 4, 4)
        >>> F.avg_pool2d(x, 2)
        tensor([[[[ 2.5000,  4.5000],
                  [10.5000, 12.5000]]]])
    """
    return _avg_pool(
        "avg_pool2d",
        2,
        input,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


def avg_pool3d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """3-D average pooling, PyTorch's ``F.avg_pool3d``: the mean of each ``k_d × k_h × k_w``
    window (arguments as in :func:`avg_pool2d`).

    Shape:
        input ``(N, C, D, H, W)`` or ``(C, D, H, W)`` → output ``(N, C, D_out, H_out, W_out)``
        with, per axis, ``n_out = floor((n + 2p − k)/s) + 1``.

    Example::

        >>> F.avg_pool3d(wally.randn(2, 3, 8, 8, 8), 2).shape
        wally.Size([2, 3, 4, 4, 4])
    """
    return _avg_pool(
        "avg_pool3d",
        3,
        input,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


# ----- adaptive pooling -----------------------------------------------------------------------
def _adaptive_bounds(n: int, o: int) -> tuple[ndarray, ndarray]:
    """PyTorch's adaptive windows (:func:`wally._windows.adaptive_windows`) as arrays of
    starts and stops."""
    windows = xp.asarray(adaptive_windows(n, o), dtype=xp.int64).reshape(o, 2)
    return windows[:, 0], windows[:, 1]


def _adaptive_size(
    op: str, nd: int, input: Tensor, output_size: int | None | Sequence[int | None]
) -> tuple[int, ...]:
    """The output size an adaptive pooling asks for (checked once: ``adaptive_settings``),
    ``None`` entries keeping the input's size."""
    _batched(op, nd, input)
    spatial = tuple(input.shape[-nd:])
    request = adaptive_settings(op, nd, output_size)
    return tuple(n if o is None else o for o, n in zip(request, spatial, strict=True))


def _divides(spatial: Sequence[int], out: Sequence[int]) -> bool:
    return all(n % o == 0 for n, o in zip(spatial, out, strict=True))


def _plane_chunks(planes: ndarray) -> list[slice]:
    """Rows of ``planes (P, size)`` in chunks of about ``tuning.POOL_CHUNK_BYTES``."""
    step = max(1, tuning.POOL_CHUNK_BYTES // max(1, planes.shape[1] * planes.itemsize))
    return [slice(p, min(p + step, len(planes))) for p in range(0, len(planes), step)]


class AdaptiveAvgPoolNd(Function):
    """Adaptive windows average separably: one averaging matrix ``A (o × n)`` per axis, applied
    as a 2-D GEMM over the flattened other axes; backward applies ``Aᵀ``."""

    def __init__(self, out: tuple[int, ...]) -> None:
        self.out = out

    def _matrix(self, n: int, o: int, dtype: Any) -> ndarray:
        start, end = _adaptive_bounds(n, o)
        cells = xp.arange(n)
        inside = (cells >= start[:, None]) & (cells < end[:, None])
        return xp.ascontiguousarray(inside / (end - start)[:, None], dtype=dtype)

    def _apply(self, x: ndarray, transpose: bool) -> ndarray:
        nd = len(self.out)
        for axis in range(x.ndim - nd, x.ndim):
            n = x.shape[axis]
            o = self.out[axis - (x.ndim - nd)]
            matrix = self._matrix(self.spatial[axis - (x.ndim - nd)], o, x.dtype)
            moved = xp.ascontiguousarray(xp.moveaxis(x, axis, -1))
            flat = moved.reshape(-1, n)
            result = flat @ matrix if transpose else flat @ matrix.T
            x = xp.moveaxis(result.reshape(moved.shape[:-1] + (result.shape[-1],)), -1, axis)
        return xp.ascontiguousarray(x)

    def forward(self, x: ndarray) -> ndarray:
        nd = len(self.out)
        self.spatial = x.shape[-nd:]
        if all(o == 1 for o in self.out):  # global average pooling, a few planes per chunk
            planes = x.reshape(-1, volume(self.spatial))
            means = xp.empty(len(planes), dtype=x.dtype)
            # A matrix-vector product with (1/n, …, 1/n): six times faster than a mean over
            # short rows for ResNet's 7×7 planes (measured).
            weights = xp.full(planes.shape[1], 1 / planes.shape[1], dtype=x.dtype)

            def work(chunks: Iterator[slice]) -> None:
                for chunk in chunks:
                    xp.matmul(planes[chunk], weights, out=means[chunk])

            run_chunks(work, _plane_chunks(planes))
            return means.reshape(x.shape[:-nd] + (1,) * nd)
        return self._apply(x, transpose=False)

    def backward(self, gy: ndarray) -> ndarray:
        nd = len(self.out)
        if all(o == 1 for o in self.out):  # every cell of a plane gets gy / its size
            size = volume(self.spatial)
            shares = gy.reshape(-1, 1) / size
            full = xp.empty(gy.shape[:-nd] + tuple(self.spatial), dtype=gy.dtype)
            gx = full.reshape(len(shares), size)  # a view: ``full`` owns the memory

            def work(chunks: Iterator[slice]) -> None:
                for chunk in chunks:
                    gx[chunk] = shares[chunk]

            run_chunks(work, _plane_chunks(gx))
            return full
        return self._apply(gy, transpose=True)


class AdaptiveMaxPoolNd(Function):
    """Adaptive max pooling by one gathered view per window tap (windows of unequal length are
    padded by repeating their last cell, which never changes a maximum)."""

    def __init__(self, out: tuple[int, ...]) -> None:
        self.out = out

    def forward(self, x: ndarray) -> tuple[ndarray, ndarray]:
        nd = len(self.out)
        x, self.unbatched = _unbatch(x, nd)
        self.input_shape = x.shape
        spatial = x.shape[2:]
        bounds = [_adaptive_bounds(n, o) for n, o in zip(spatial, self.out, strict=True)]
        longest = [int((end - start).max()) for start, end in bounds]
        best: ndarray | None = None
        flat = xp.zeros((), dtype=xp.int64)
        check_nan = x.dtype.kind == "f" and x.size > 0 and bool(xp.isnan(xp.max(x)))
        for tap in itertools.product(*(range(m) for m in longest)):
            cells = [
                xp.minimum(start + t, end - 1) for t, (start, end) in zip(tap, bounds, strict=True)
            ]
            values = x[(_ALL, _ALL) + xp.ix_(*cells)]
            position = xp.zeros((), dtype=xp.int64)
            for axis, c in enumerate(cells):
                shape = [1] * nd
                shape[axis] = len(c)
                position = position * spatial[axis] + c.reshape(shape)
            if best is None:
                best = values
                flat = xp.broadcast_to(position, values.shape).copy()
                continue
            better = values > best
            if check_nan:
                better |= xp.isnan(values)
            xp.copyto(best, values, where=better)
            xp.copyto(flat, xp.broadcast_to(position, values.shape), where=better)
        assert best is not None
        self.indices = flat
        if self.unbatched:
            return best[0], flat[0]
        return best, flat

    def backward(self, gy: ndarray, _: Any = None) -> ndarray:
        if self.unbatched:
            gy = gy[None]
        batch, channels = self.input_shape[:2]
        plane = 1
        for n in self.input_shape[2:]:
            plane *= n
        # A scatter-add: overlapping adaptive windows can share their maximum.
        offsets = xp.arange(batch * channels, dtype=xp.int64).reshape(batch, channels) * plane
        windows = volume(self.indices.shape[2:])
        targets = (self.indices.reshape(batch, channels, windows) + offsets[:, :, None]).ravel()
        gx = xp.bincount(targets, weights=gy.ravel(), minlength=batch * channels * plane)
        gx = gx.astype(gy.dtype, copy=False).reshape(self.input_shape)
        return gx[0] if self.unbatched else gx


def _adaptive_avg(op: str, nd: int, input: Tensor, output_size: Any) -> Tensor:
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {input.dtype}")
    out = _adaptive_size(op, nd, input, output_size)
    spatial = tuple(input.shape[-nd:])
    if _divides(spatial, out) and any(o != 1 for o in out):
        # Equal windows: the ordinary average pooling with kernel = stride = n / o.
        kernel = tuple(n // o for n, o in zip(spatial, out, strict=True))
        windows = Windows(spatial, kernel, kernel, (0,) * nd, (1,) * nd, out)
        return AvgPoolNd(windows, float(xp.prod(kernel)))(input)
    return AdaptiveAvgPoolNd(out)(input)


def _adaptive_max(op: str, nd: int, input: Tensor, output_size: Any, return_indices: bool) -> Any:
    if input.dtype.kind not in "fiu":  # integers too, as in max pooling
        raise TypeError(f"{op}: expected a real-valued input, got dtype {input.dtype}")
    out = _adaptive_size(op, nd, input, output_size)
    spatial = tuple(input.shape[-nd:])
    if _divides(spatial, out):
        kernel = tuple(n // o for n, o in zip(spatial, out, strict=True))
        windows = Windows(spatial, kernel, kernel, (0,) * nd, (1,) * nd, out)
        return MaxPoolNd(windows, return_indices)(input)
    values, indices = AdaptiveMaxPoolNd(out)(input)
    return (values, indices) if return_indices else values


def adaptive_avg_pool1d(input: Tensor, output_size: int | Sequence[int]) -> Tensor:
    """1-D adaptive average pooling, PyTorch's ``F.adaptive_avg_pool1d``: ``L_out`` windows
    ``[floor(i·L/L_out), ceil((i+1)·L/L_out))``, averaged.

    Shape:
        input ``(N, C, L)`` or ``(C, L)`` → output ``(N, C, L_out)``.

    Example::

        >>> F.adaptive_avg_pool1d(wally.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]]), 2)
        tensor([[[2., 4.]]])
    """
    return _adaptive_avg("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """2-D adaptive average pooling, PyTorch's ``F.adaptive_avg_pool2d``.

    The output size is given and the windows follow: output ``(i, j)`` averages rows
    ``[floor(i·H/H_out), ceil((i+1)·H/H_out))`` and columns likewise.  ``output_size`` is an
    int, a pair, or a pair with ``None`` keeping that input size; ``1`` is global average
    pooling (NiN, ResNet).

    Shape:
        input ``(N, C, H, W)`` or ``(C, H, W)`` → output ``(N, C, H_out, W_out)``.

    Example::

        >>> F.adaptive_avg_pool2d(wally.randn(8, 512, 7, 7), 1).shape
        wally.Size([8, 512, 1, 1])
    """
    return _adaptive_avg("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool3d(input: Tensor, output_size: Any) -> Tensor:
    """3-D adaptive average pooling, PyTorch's ``F.adaptive_avg_pool3d`` (windows as in
    :func:`adaptive_avg_pool2d`, on three axes).

    Shape:
        input ``(N, C, D, H, W)`` or ``(C, D, H, W)`` → output ``(N, C, D_out, H_out, W_out)``.

    Example::

        >>> F.adaptive_avg_pool3d(wally.randn(2, 3, 5, 7, 9), (1, 2, 3)).shape
        wally.Size([2, 3, 1, 2, 3])
    """
    return _adaptive_avg("adaptive_avg_pool3d", 3, input, output_size)


def adaptive_max_pool1d(
    input: Tensor, output_size: int | Sequence[int], return_indices: bool = False
) -> Any:
    """1-D adaptive max pooling, PyTorch's ``F.adaptive_max_pool1d``: the maximum of each window
    ``[floor(i·L/L_out), ceil((i+1)·L/L_out))``; with ``return_indices`` also its position.

    Shape:
        input ``(N, C, L)`` or ``(C, L)`` → output ``(N, C, L_out)``.

    Example::

        >>> F.adaptive_max_pool1d(wally.tensor([[[1.0, 5.0, 3.0, 4.0, 2.0]]]), 2)
        tensor([[[5., 4.]]])
    """
    return _adaptive_max("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """2-D adaptive max pooling, PyTorch's ``F.adaptive_max_pool2d``: the maximum over rows
    ``[floor(i·H/H_out), ceil((i+1)·H/H_out))`` and columns likewise; with ``return_indices``
    also each maximum's flat position ``h·W + w`` in its input plane.

    Shape:
        input ``(N, C, H, W)`` or ``(C, H, W)`` → output ``(N, C, H_out, W_out)``.

    Example::

        >>> F.adaptive_max_pool2d(wally.randn(8, 64, 13, 13), (6, 6)).shape
        wally.Size([8, 64, 6, 6])
    """
    return _adaptive_max("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool3d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """3-D adaptive max pooling, PyTorch's ``F.adaptive_max_pool3d`` (windows as in
    :func:`adaptive_max_pool2d`, on three axes).

    Shape:
        input ``(N, C, D, H, W)`` or ``(C, D, H, W)`` → output ``(N, C, D_out, H_out, W_out)``.

    Example::

        >>> F.adaptive_max_pool3d(wally.randn(2, 3, 5, 7, 9), 2).shape
        wally.Size([2, 3, 2, 2, 2])
    """
    return _adaptive_max("adaptive_max_pool3d", 3, input, output_size, return_indices)


# ----- layersA: max unpooling ------------------------------------------------------------------
class MaxUnpoolNd(Function):
    """``y = 0`` except ``y.flat[p, indices[p, i]] = x[p, i]`` in each plane ``p``: the partial
    inverse of max pooling; backward gathers ``dY`` at the same indices."""

    def __init__(
        self,
        out: tuple[int, ...],
        kernel: tuple[int, ...],
        stride: tuple[int, ...],
        padding: tuple[int, ...],
    ) -> None:
        self.out = out
        self.kernel = kernel  # the pooling's geometry, for the receptive field and ONNX
        self.stride = stride
        self.padding = padding

    def forward(self, x: ndarray, indices: ndarray) -> ndarray:
        nd = len(self.out)
        self.unbatched = x.ndim == nd + 1
        lead = x.shape[: x.ndim - nd]
        self.input_shape = x.shape
        planes = volume(lead)
        self.flat = indices.reshape(planes, -1)
        y = xp.zeros((planes, volume(self.out)), dtype=x.dtype)
        xp.put_along_axis(y, self.flat, x.reshape(planes, -1), axis=1)
        return y.reshape(*lead, *self.out)

    def backward(self, gy: ndarray) -> tuple[ndarray, None]:
        g = xp.take_along_axis(gy.reshape(len(self.flat), -1), self.flat, axis=1)
        return g.reshape(self.input_shape), None


def _unpool_size(
    op: str,
    spatial: Sequence[int],
    ndim: int,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    output_size: Any,
) -> tuple[int, ...]:
    """PyTorch's ``_unpool_output_size``: ``(n − 1)·s − 2p + k``, or ``output_size`` (spatial
    or full) strictly within ``stride`` of it."""
    nd = len(kernel)
    default = tuple(
        (n - 1) * s - 2 * p + k for n, k, s, p in zip(spatial, kernel, stride, padding, strict=True)
    )
    if output_size is None:
        return default
    sizes = [int(n) for n in output_size]
    if len(sizes) == ndim:
        sizes = sizes[ndim - nd:]
    if len(sizes) != nd:
        raise ValueError(
            f"{op}: output_size should have {nd} or {ndim} elements, got {tuple(output_size)}"
        )
    for axis, (n, d, s) in enumerate(zip(sizes, default, stride, strict=True)):
        if not d - s < n < d + s:
            raise ValueError(
                f"{op}: invalid output_size {tuple(sizes)} (dim {axis} must be between "
                f"{d - s} and {d + s}, exclusive)"
            )
    return tuple(sizes)


def _max_unpool(
    op: str,
    nd: int,
    input: Tensor,
    indices: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    output_size: Sequence[int] | None,
) -> Tensor:
    from wally.tensor import Tensor

    for name, t in (("input", input), ("indices", indices)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected {name} to be a Tensor, got {type(t).__name__}")
    _batched(op, nd, input)
    if indices.dtype != xp.int64:
        raise TypeError(f"{op}: expected indices of dtype int64, got dtype {indices.dtype}")
    if tuple(indices.shape) != tuple(input.shape):
        raise ValueError(
            f"{op}: expected indices of the input's shape {tuple(input.shape)}, got shape "
            f"{tuple(indices.shape)}"
        )
    kernel, strides, pads = unpool_settings(op, nd, kernel_size, stride, padding)
    out = _unpool_size(op, input.shape[-nd:], input.ndim, kernel, strides, pads, output_size)
    if any(n <= 0 for n in out):
        raise ValueError(f"{op}: output size {out} is too small (input shape "
                         f"{tuple(input.shape)})")
    plane = volume(out)
    if indices.numel() and (int(indices.min().item()) < 0 or int(indices.max().item()) >= plane):
        raise ValueError(
            f"{op}: found an invalid max index: expected indices in [0, {plane}) for an output "
            f"of size {out}, got indices from {int(indices.min().item())} to "
            f"{int(indices.max().item())}"
        )
    return MaxUnpoolNd(out, kernel, strides, pads)(input, indices)


def max_unpool1d(
    input: Tensor,
    indices: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """Undo a :func:`max_pool1d` (``return_indices=True``), PyTorch's ``F.max_unpool1d``: each
    value goes back to the position its index names; everything else is 0.

    Shape:
        input and indices ``(N, C, L)`` or ``(C, L)`` → output ``(N, C, L_out)`` with
        ``L_out = (L − 1)·s − 2p + k`` unless ``output_size`` says otherwise.

    Example::

        >>> y, i = F.max_pool1d(wally.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2, return_indices=True)
        >>> F.max_unpool1d(y, i, 2)
        tensor([[[0., 3., 2., 0.]]])
    """
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding,
                       output_size)


def max_unpool2d(
    input: Tensor,
    indices: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """Undo a :func:`max_pool2d` (``return_indices=True``), PyTorch's ``F.max_unpool2d``:
    ``y.flat[n, c, indices[n, c, i, j]] = x[n, c, i, j]`` in each ``H_out × W_out`` plane, the
    rest 0.  ``output_size`` resolves the sizes that pooling maps to the same shape.

    Shape:
        input and indices ``(N, C, H, W)`` or ``(C, H, W)`` → output ``(N, C, H_out, W_out)``
        with, per axis, ``n_out = (n − 1)·s − 2p + k`` unless ``output_size`` is given.

    Example::

        >>> x = wally.randn(1, 1, 5, 5)
        >>> y, i = F.max_pool2d(x, 2, return_indices=True)
        >>> F.max_unpool2d(y, i, 2, output_size=x.shape).shape
        wally.Size([1, 1, 5, 5])
    """
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding,
                       output_size)


def max_unpool3d(
    input: Tensor,
    indices: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """Undo a :func:`max_pool3d` (``return_indices=True``), PyTorch's ``F.max_unpool3d``; see
    :func:`max_unpool2d`.

    Shape:
        input and indices ``(N, C, D, H, W)`` or ``(C, D, H, W)`` → output
        ``(N, C, D_out, H_out, W_out)``, per axis ``(n − 1)·s − 2p + k``.

    Example::

        >>> y, i = F.max_pool3d(wally.randn(1, 2, 4, 4, 4), 2, return_indices=True)
        >>> F.max_unpool3d(y, i, 2).shape
        wally.Size([1, 2, 4, 4, 4])
    """
    return _max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding,
                       output_size)
