"""Array helpers for sliding windows: argument normalisation, output sizes, im2col and col2im.

Plain functions on raw arrays (Chainer's ``utils/conv.py``), shared by convolution, pooling,
``unfold`` and ``fold``, the receptive-field and cost analyses and the ONNX exporter: the one
place where a window's geometry (sizes, padding, the adaptive windows, pooling's
:class:`Windows`) and the checks of its settings are written.  One axis order is used
throughout:

* inputs are ``(N, C, *spatial)``, with 1, 2 or 3 spatial axes;
* padding is one ``(left, right)`` pair per spatial axis, in the order of the axes;
* the column matrix of :func:`im2col` is ``(C·∏k, N·∏out)``: row ``(c, k_1, ..., k_d)`` holds
  channel ``c`` at kernel tap ``(k_1, ..., k_d)`` and column ``(n, o_1, ..., o_d)`` is one
  output position of one image, both in C order.  Viewed as a ``(C, *k, N, *out)`` array,
  the entry at ``(c, *tap, n, *o)`` is ``x[n, c, *(o·s − p_left + tap·d)]`` (zero when that
  position falls in the padding).

With that layout the convolution ``[H]i,j,d = Σa Σb Σc [V]a,b,c,d [X]i+a,j+b,c`` is the one
2-D product ``W (O × C·∏k) @ cols (C·∏k × N·∏out)``, whose rows are output channels.

:class:`ColumnPlan` builds the same matrix a chunk at a time (a few images, or a few output rows
of one image) from a zero-padded copy of the chunk, so that the columns stay in cache and their
size stays bounded; with stride 1 it uses "wide" rows (see the class) so that every kernel tap
is one contiguous copy.

**Settings are checked once.**  :func:`pool_settings`, :func:`unpool_settings`,
:func:`adaptive_settings`, :func:`conv_settings` and :func:`transposed_settings` check a
layer's window settings and
remember each distinct settings tuple that passed (an error is never remembered, so it names
whichever caller made it).  A layer calls them at construction with what its ``forward`` will
pass; the functional forms call them on every call and so find the settings already checked.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

from wally._parallel import run_chunks, workspace
from wally.backend import ndarray, xp
from wally.backends import tuning

__all__ = [
    "ntuple",
    "check_positive",
    "output_size",
    "output_shape",
    "conv_padding",
    "unfold_settings",
    "tap_slices",
    "im2col",
    "col2im",
    "ColumnPlan",
    "column_plan",
    "adaptive_windows",
    "LAYOUTS",
    "check_rank",
    "volume",
    "check_settings",
    "pool_settings",
    "adaptive_settings",
    "unpool_settings",
    "conv_settings",
    "transposed_settings",
    "Windows",
    "pool_windows",
]

Pairs = tuple[tuple[int, int], ...]
_ALL = slice(None)

# The input layouts a layer of ``nd`` spatial axes accepts (convolution and pooling alike).
LAYOUTS = {
    1: "(C, L) or (N, C, L)",
    2: "(C, H, W) or (N, C, H, W)",
    3: "(C, D, H, W) or (N, C, D, H, W)",
}


def check_rank(who: object, nd: int, input: Any) -> None:
    """``ValueError`` naming ``who`` (an op's name, or a layer, shown by its repr only when
    the check fails) unless the tensor ``input`` is a batched or unbatched input of ``nd``
    spatial axes."""
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"{who}: expected a {nd + 1}-D or {nd + 2}-D input {LAYOUTS[nd]}, got shape "
            f"{tuple(input.shape)}"
        )


def volume(shape: Sequence[int]) -> int:
    """The number of cells of an array of shape ``shape``: ``∏ shape``, 1 for ``()``."""
    return math.prod(shape)


def ntuple(value: object, n: int, name: str, op: str) -> tuple[int, ...]:
    """``value`` as a tuple of ``n`` ints: an int is repeated, a 1-sequence is broadcast.

    ``op`` names the operation in error messages, e.g. ``ntuple((2, 2, 2), 2, "stride",
    "conv2d")`` raises ``ValueError: conv2d: expected stride to be an int or a tuple of 2 ints,
    got (2, 2, 2)``.
    """
    if isinstance(value, bool):
        raise TypeError(f"{op}: expected {name} to be an int or a tuple of {n} ints, got {value!r}")
    if isinstance(value, numbers.Integral):
        return (int(value),) * n
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(value)
        if len(items) == 1 and n != 1:
            items = items * n
        if len(items) != n:
            raise ValueError(
                f"{op}: expected {name} to be an int or a tuple of {n} ints, got {value!r}"
            )
        for item in items:
            if isinstance(item, bool) or not isinstance(item, numbers.Integral):
                raise TypeError(
                    f"{op}: expected {name} to be an int or a tuple of {n} ints, got {value!r}"
                )
        return tuple(int(item) for item in items)
    raise TypeError(f"{op}: expected {name} to be an int or a tuple of {n} ints, got {value!r}")


def check_positive(values: tuple[int, ...], name: str, op: str, minimum: int = 1) -> None:
    """Raise ``ValueError`` naming ``op`` unless every value is at least ``minimum``."""
    if any(v < minimum for v in values):
        bound = "positive" if minimum == 1 else f"at least {minimum}"
        if minimum == 0:
            bound = "non-negative"
        shown = values[0] if len(set(values)) == 1 else values
        raise ValueError(f"{op}: {name} must be {bound}, got {shown}")


def output_size(
    n: int,
    k: int,
    s: int = 1,
    p_total: int = 0,
    d: int = 1,
    ceil_mode: bool = False,
    p_left: int | None = None,
) -> int:
    """Number of window positions along one axis.

    ``floor((n + p_total − d·(k − 1) − 1) / s) + 1`` where ``p_total`` is the padding of both
    sides together (``2p`` for symmetric padding), the note's ``floor((n + 2p − k)/s + 1)``
    generalised to dilation ``d``.  With ``ceil_mode`` the division rounds up, but, as in
    PyTorch, a last window that would start in the right padding (at or after ``n + p_left``,
    ``p_left`` defaulting to ``p_total // 2``) is dropped.  May return zero or a negative
    number when the window does not fit; callers report that with their own name.

    >>> output_size(28, 5, 1, 4)            # LeNet's first convolution keeps 28
    28
    >>> output_size(5, 2, 2, 0, ceil_mode=True)
    3
    """
    span = n + p_total - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if p_left is None:
        p_left = p_total // 2
    if (out - 1) * s >= n + p_left:
        out -= 1
    return out


def output_shape(
    op: str,
    spatial: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Pairs,
    dilation: Sequence[int],
    ceil_mode: bool = False,
) -> tuple[int, ...]:
    """Per-axis :func:`output_size`; ``ValueError`` naming ``op`` when a window doesn't fit.

    Without ``ceil_mode`` (convolution, ``unfold``, ``fold``, floor-mode pooling) every window
    must lie inside the padded input.  With ``ceil_mode`` (pooling only) a window may hang over
    the end of the padded input, even when the kernel is larger than it, as in PyTorch: only
    an output size below 1 is refused.  The caller must then give its buffers room for the
    overhang (see :attr:`Windows.padded`).
    """
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(spatial, padding, strict=True))
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel_size, dilation, strict=True))
    if not ceil_mode and any(e > p for e, p in zip(extent, padded, strict=True)):
        dilated = "" if all(d == 1 for d in dilation) else f" (dilated to {extent})"
        raise ValueError(
            f"{op}: kernel size {tuple(kernel_size)}{dilated} can't be greater than the padded "
            f"input size {padded} (input size {tuple(spatial)}, padding {padding})"
        )
    out = tuple(
        output_size(n, k, s, lo + hi, d, ceil_mode, lo)
        for n, k, s, (lo, hi), d in zip(
            spatial, kernel_size, stride, padding, dilation, strict=True
        )
    )
    if any(o <= 0 for o in out):
        raise ValueError(
            f"{op}: output size {out} is too small (input size {tuple(spatial)}, "
            f"kernel size {tuple(kernel_size)}, padding {padding})"
        )
    return out


def adaptive_windows(n: int, o: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows over ``n`` cells for ``o`` outputs: output ``i``
    covers ``[⌊i·n/o⌋, ⌈(i + 1)·n/o⌉)``.  The one formula that pooling, the receptive-field and
    cost analyses and the ONNX exporter use.

    **Shape:** ``o`` ``(start, stop)`` pairs.

    >>> adaptive_windows(5, 3)
    [(0, 2), (1, 4), (3, 5)]
    """
    return [((i * n) // o, -((-(i + 1) * n) // o)) for i in range(o)]


# ----- pooling's windows ------------------------------------------------------------------------
class Windows:
    """Fixed windows over the spatial axes of a stack of planes ``(P, *spatial)``, P = N·C.

    Window ``o`` along an axis covers ``o·s − p + t·d`` for taps ``t < k``.  Planes are padded
    (with ``fill``) far enough that every window of every tap is in bounds, so each tap is one
    strided slice of the padded planes.

    The padded size of an axis is, by construction, the larger of ``n + p`` (the input after
    its left padding) and ``(o − 1)·s + d·(k − 1) + 1`` (one past the last tap of the last
    window).  So a ``ceil_mode`` window that hangs over the end of the padded input, or a
    kernel larger than the whole input, reads the fill there (−∞ for max, 0 for the sum) and
    its gradient lands in the scratch border, never in ``gx``; no slice is ever clipped.
    Average pooling's divisor counts only cells inside the padded input (see
    ``_divisor`` in :mod:`wally.functional.pool`).  The kernels use basic slices only (no
    ``as_strided``), so nothing can read outside its buffer.
    """

    def __init__(
        self,
        spatial: tuple[int, ...],
        kernel: tuple[int, ...],
        stride: tuple[int, ...],
        padding: tuple[int, ...],
        dilation: tuple[int, ...],
        out: tuple[int, ...],
    ) -> None:
        self.spatial, self.kernel, self.stride = spatial, kernel, stride
        self.padding, self.dilation, self.out = padding, dilation, out
        self.taps = list(itertools.product(*(range(k) for k in kernel)))
        self.padded = tuple(
            max(n + p, (o - 1) * s + (k - 1) * d + 1)
            for n, k, s, p, d, o in zip(
                spatial, kernel, stride, padding, dilation, out, strict=True
            )
        )
        self.needs_padding = any(p > 0 for p in padding) or any(
            m > n for m, n in zip(self.padded, spatial, strict=True)
        )
        self.divisors: dict[tuple[bool, int | None], ndarray | float] = {}
        # Per tap, in the order of ``taps``: its strided slice (see :meth:`tap`).
        self.views = [self._view(tap) for tap in self.taps]
        # Per axis, the strided slice each of its taps reads (see :meth:`window_sums`).
        self.axis_views = [
            [(_ALL,) * (axis + 1) + (slice(t * d, t * d + (o - 1) * s + 1, s),) for t in range(k)]
            for axis, (k, s, d, o) in enumerate(zip(kernel, stride, dilation, out, strict=True))
        ]
        self._chunks: dict[tuple[int, int], list[slice]] = {}
        # Windows that tile the input exactly touch every element once (the reshape case).
        self.tiles = not self.needs_padding and all(
            s == k and d == 1 and o * k == n
            for n, k, s, d, o in zip(spatial, kernel, stride, dilation, out, strict=True)
        )

    def center(self) -> tuple[slice, ...]:
        return (_ALL,) + tuple(
            slice(p, p + n) for p, n in zip(self.padding, self.spatial, strict=True)
        )

    def tap(self, tap: tuple[int, ...]) -> tuple[slice, ...]:
        """The strided slice of a padded plane stack that tap ``tap`` of every window reads."""
        return self.views[self.taps.index(tap)]

    def _view(self, tap: tuple[int, ...]) -> tuple[slice, ...]:
        return (_ALL,) + tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, self.dilation, self.out, self.stride, strict=True)
        )

    def chunks(self, planes: int, itemsize: int) -> list[slice]:
        """A few planes at a time: small enough to stay in cache while every tap reads them."""
        key = (planes, itemsize)
        if key not in self._chunks:
            self._chunks[key] = self._split(planes, itemsize)
        return self._chunks[key]

    def _split(self, planes: int, itemsize: int) -> list[slice]:
        step = max(1, tuning.POOL_CHUNK_BYTES // (itemsize * volume(self.padded)))
        return [slice(p, min(p + step, planes)) for p in range(0, planes, step)]

    def padded_chunks(
        self, planes: ndarray, fill: Any, chunks: Iterator[slice], step: int
    ) -> Iterator[tuple[slice, ndarray]]:
        """``(chunk, padded planes)`` for each chunk (at most ``step`` planes) of
        ``(P, *spatial)``.

        The padding lives in one small scratch buffer whose border is filled once, so there is
        no padded copy of the whole input and each chunk stays in cache across all taps.
        """
        scratch = None
        for chunk in chunks:
            if not self.needs_padding:
                yield chunk, planes[chunk]
                continue
            if scratch is None:
                scratch = self._scratch("pool-padded", step, planes.dtype)
                scratch.fill(fill)
            buf = scratch[: chunk.stop - chunk.start]
            buf[self.center()] = planes[chunk]
            yield chunk, buf

    def gradient_chunks(
        self, gx: ndarray, chunks: Iterator[slice], step: int
    ) -> Iterator[tuple[slice, ndarray]]:
        """``(chunk, buffer)`` where backward adds the gradient of a few planes; each buffer is
        zeroed (unless the windows tile the input, so every cell is written once) and copied,
        without its padding, into ``gx (P, *spatial)`` once the caller is done with it."""
        scratch = None
        for chunk in chunks:
            if not self.needs_padding:
                buf = gx[chunk]
                if not self.tiles:
                    buf.fill(0)
                yield chunk, buf
                continue
            if scratch is None:
                scratch = self._scratch("pool-gradient", step, gx.dtype)
            buf = scratch[: chunk.stop - chunk.start]
            buf.fill(0)
            yield chunk, buf
            gx[chunk] = buf[self.center()]

    def _scratch(self, tag: str, planes: int, dtype: Any) -> ndarray:
        return workspace(tag, planes * volume(self.padded), dtype).reshape(planes, *self.padded)

    def window_sums(self, padded: ndarray) -> ndarray:
        """``Σ`` over every window of the padded planes ``(P, *padded)``, one axis at a time:
        a window's sum is separable, so this takes ``Σk`` strided adds instead of ``∏k``
        (a third less time for LeNet's 2×2 pooling, measured).  A view of ``padded`` when
        every kernel size is 1."""
        sums = padded
        for views in self.axis_views:
            if len(views) == 1:
                sums = sums[views[0]]
                continue
            part = sums[views[0]] + sums[views[1]]
            for view in views[2:]:
                part += sums[view]
            sums = part
        return sums

    def small(self, planes: ndarray) -> bool:
        """Whether ``planes (P, *spatial)`` is one chunk that needs no padding: a batch-1
        layer, pooled directly on the calling thread (half the time of the chunked path)."""
        return not self.needs_padding and planes.nbytes <= tuning.POOL_CHUNK_BYTES

    def run(self, work: Any, planes: int, itemsize: int) -> None:
        """``work(chunks, step)`` on the chunked kernels' threads, each pulling chunks from
        one shared queue (see :mod:`wally._parallel`)."""
        chunks = self.chunks(planes, itemsize)
        if not chunks:  # an empty batch
            return
        step = chunks[0].stop - chunks[0].start
        run_chunks(lambda shared: work(shared, step), chunks)

    def starts(self, axis: int) -> ndarray:
        """Input index of tap 0 of every window along ``axis`` (negative inside the padding)."""
        return xp.arange(self.out[axis]) * self.stride[axis] - self.padding[axis]


def pool_windows(
    op: str,
    spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    ceil_mode: bool,
) -> Windows:
    """The :class:`Windows` of a pooling whose settings :func:`pool_settings` checked, over an
    input of spatial size ``spatial``; a ``ValueError`` naming ``op`` when no window fits
    (:func:`output_shape`)."""
    pairs = tuple((p, p) for p in padding)
    out = output_shape(op, spatial, kernel, stride, pairs, dilation, ceil_mode)
    return Windows(spatial, kernel, stride, padding, dilation, out)


def conv_padding(
    op: str,
    padding: object,
    kernel_size: tuple[int, ...],
    dilation: tuple[int, ...],
    stride: tuple[int, ...],
) -> Pairs:
    """Convolution padding as ``(left, right)`` pairs per spatial axis.

    ``padding`` is an int, a tuple with one int per axis, ``'valid'`` (no padding) or
    ``'same'`` (output size = input size, stride 1 only).  For ``'same'`` each axis needs
    ``d·(k − 1)`` in total; as in PyTorch the left side gets half of it, rounded down, so even
    kernels pad one more on the right.
    """
    n = len(kernel_size)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"{op}: padding='same' is not supported for strided convolutions, "
                    f"got stride {stride}"
                )
            totals = [d * (k - 1) for k, d in zip(kernel_size, dilation, strict=True)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ValueError(
            f"{op}: padding must be 'valid', 'same', an int or a tuple of {n} ints, got {padding!r}"
        )
    values = ntuple(padding, n, "padding", op)
    check_positive(values, "padding", op, minimum=0)
    return tuple((p, p) for p in values)


# ----- settings, checked once -------------------------------------------------------------------
# Settings tuples that passed their check, keyed by their kind, the number of spatial axes and
# their repr (which tells 2 from True and 2.0, and needs no hashing of lists); each key maps to
# the checked ``nd``-tuples.  Validity never depends on the caller, so a layer's construction and
# the functional form share entries.
_SETTINGS: dict[tuple[Any, ...], Any] = {}


def _remembered(key: tuple[Any, ...], check: Any, *args: Any, same_form: bool = False) -> Any:
    """``check(*args)`` unless ``key`` passed before.  With ``same_form`` the checked tuples are
    settings of the same form as the arguments (and pass as they are), so they are remembered
    too: a layer that stores the checked tuples and passes them on is not checked again."""
    settings = _SETTINGS.get(key)
    if settings is None:
        settings = check(*args)
        if len(_SETTINGS) > 4096:
            _SETTINGS.clear()
        _SETTINGS[key] = settings
        if same_form:
            _SETTINGS[key[:-1] + (repr(settings),)] = settings
    return settings


def check_settings(op: str, nd: int, **settings: Any) -> tuple[tuple[int, ...], ...]:
    """Window settings (``kernel_size``, ``stride``, ``dilation``) as positive ``nd``-tuples,
    in the order given; one ``ValueError`` (or ``TypeError``) naming ``op`` otherwise.

    >>> check_settings("Conv2d", 2, stride=2, dilation=(1, 2))
    ((2, 2), (1, 2))
    """
    checked = []
    for arg, value in settings.items():
        items = ntuple(value, nd, arg, op)
        check_positive(items, arg, op)
        checked.append(items)
    return tuple(checked)


def _check_unpool(
    op: str, nd: int, kernel_size: object, stride: object, padding: object
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    (kernel,) = check_settings(op, nd, kernel_size=kernel_size)
    (strides,) = (kernel,) if stride is None else check_settings(op, nd, stride=stride)
    pads = ntuple(padding, nd, "padding", op)
    check_positive(pads, "padding", op, minimum=0)
    return kernel, strides, pads


def _check_pool(
    op: str, nd: int, kernel_size: object, stride: object, padding: object, dilation: object
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    if isinstance(stride, Sequence) and len(stride) == 0:
        stride = None  # PyTorch's pooling reads an empty stride as the kernel
    kernel, strides, pads = _check_unpool(op, nd, kernel_size, stride, padding)
    if any(2 * p > k for p, k in zip(pads, kernel, strict=True)):
        raise ValueError(
            f"{op}: padding should be at most half of kernel size, got padding={pads} and "
            f"kernel_size={kernel}"
        )
    (dilations,) = check_settings(op, nd, dilation=dilation)
    return kernel, strides, pads, dilations


def unpool_settings(
    op: str, nd: int, kernel_size: object, stride: object, padding: object
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Max unpooling's ``(kernel, stride, padding)`` as ``nd``-tuples: a positive kernel and
    stride (``None``: the kernel), a non-negative padding; checked once per distinct
    settings (see the module's docstring), a ``ValueError`` naming ``op`` otherwise."""
    key = ("unpool", nd, repr((kernel_size, stride, padding)))
    return _remembered(key, _check_unpool, op, nd, kernel_size, stride, padding, same_form=True)


def pool_settings(
    op: str,
    nd: int,
    kernel_size: object,
    stride: object,
    padding: object,
    dilation: object = 1,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """A pooling's ``(kernel, stride, padding, dilation)`` as ``nd``-tuples, as
    :func:`unpool_settings` checks them (an empty stride is the kernel too), with the padding
    at most half the kernel and a
    positive dilation; checked once per distinct settings, layers (at construction,
    :mod:`wally.nn.pool`) and functions (at the call) alike.

    >>> pool_settings("max_pool2d", 2, 3, None, 1)
    ((3, 3), (3, 3), (1, 1), (1, 1))
    """
    key = ("pool", nd, repr((kernel_size, stride, padding, dilation)))
    return _remembered(
        key, _check_pool, op, nd, kernel_size, stride, padding, dilation, same_form=True
    )


def _check_adaptive(op: str, nd: int, output_size: object) -> tuple[int | None, ...]:
    if output_size is None or isinstance(output_size, int):
        items: list[Any] = [output_size] * nd
    elif isinstance(output_size, Sequence) and not isinstance(output_size, str):
        items = list(output_size)
        if len(items) == 1:
            items = items * nd
    else:
        raise TypeError(
            f"{op}: expected output_size to be an int (or None) or a tuple of {nd} ints, got "
            f"{output_size!r}"
        )
    if len(items) != nd:
        raise ValueError(
            f"{op}: expected output_size to be an int (or None) or a tuple of {nd} ints, got "
            f"{output_size!r}"
        )
    for o in items:
        if o is not None and (isinstance(o, bool) or not isinstance(o, int)):
            raise TypeError(
                f"{op}: expected output_size to be an int (or None) or a tuple of {nd} ints, "
                f"got {output_size!r}"
            )
    check_positive(tuple(o for o in items if o is not None), "output_size", op)
    return tuple(items)


def adaptive_settings(op: str, nd: int, output_size: object) -> tuple[int | None, ...]:
    """An adaptive pooling's ``output_size`` as an ``nd``-tuple of positive ints, ``None``
    where the input's size is kept (an int or a 1-sequence is repeated); checked once per
    distinct request, layers (at construction) and functions alike.

    >>> adaptive_settings("adaptive_avg_pool2d", 2, (None, 7))
    (None, 7)
    """
    key = ("adaptive", nd, repr(output_size))
    return _remembered(key, _check_adaptive, op, nd, output_size, same_form=True)


def _check_conv(
    op: str, nd: int, kernel: tuple[int, ...], stride: object, padding: object, dilation: object
) -> tuple[tuple[int, ...], Pairs, tuple[int, ...]]:
    strides, dilations = check_settings(op, nd, stride=stride, dilation=dilation)
    return strides, conv_padding(op, padding, kernel, dilations, strides), dilations


def conv_settings(
    op: str,
    nd: int,
    kernel: tuple[int, ...],
    stride: object,
    padding: object,
    dilation: object,
) -> tuple[tuple[int, ...], Pairs, tuple[int, ...]]:
    """A convolution's ``(stride, padding pairs, dilation)`` for a kernel of size ``kernel``:
    positive strides and dilations, padding as :func:`conv_padding` reads it; checked once per
    distinct settings, layers (at construction, :mod:`wally.nn.conv`) and functions alike.

    >>> conv_settings("conv2d", 2, (3, 3), 1, "same", 2)
    ((1, 1), ((2, 2), (2, 2)), (2, 2))
    """
    key = ("conv", nd, kernel, repr((stride, padding, dilation)))
    return _remembered(key, _check_conv, op, nd, kernel, stride, padding, dilation)


def _check_unfold(
    op: str, kernel_size: object, dilation: object, padding: object, stride: object
) -> tuple[tuple[int, ...], tuple[int, ...], Pairs, tuple[int, ...]]:
    kernel, dilations = check_settings(op, 2, kernel_size=kernel_size, dilation=dilation)
    pads = ntuple(padding, 2, "padding", op)
    check_positive(pads, "padding", op, minimum=0)
    (strides,) = check_settings(op, 2, stride=stride)
    return kernel, dilations, tuple((p, p) for p in pads), strides


def unfold_settings(
    op: str, kernel_size: object, dilation: object, padding: object, stride: object
) -> tuple[tuple[int, ...], tuple[int, ...], Pairs, tuple[int, ...]]:
    """``unfold``'s and ``fold``'s ``(kernel, dilation, padding pairs, stride)`` over two
    spatial axes: positive kernel, dilation and stride, non-negative padding; checked once per
    distinct settings.

    >>> unfold_settings("unfold", 3, 1, (0, 1), 2)
    ((3, 3), (1, 1), ((0, 0), (1, 1)), (2, 2))
    """
    key = ("unfold", repr((kernel_size, dilation, padding, stride)))
    return _remembered(key, _check_unfold, op, kernel_size, dilation, padding, stride)


def _check_transposed(
    op: str, nd: int, stride: object, padding: object, output_padding: object, dilation: object
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    if isinstance(padding, str):
        raise ValueError(
            f"{op}: padding must be an int or a tuple of {nd} ints (transposed convolutions "
            f"have no 'same' or 'valid'), got {padding!r}"
        )
    strides, dilations = check_settings(op, nd, stride=stride, dilation=dilation)
    pads = ntuple(padding, nd, "padding", op)
    check_positive(pads, "padding", op, minimum=0)
    extras = ntuple(output_padding, nd, "output_padding", op)
    check_positive(extras, "output_padding", op, minimum=0)
    if any(e >= s and e >= d for e, s, d in zip(extras, strides, dilations, strict=True)):
        raise ValueError(
            f"{op}: output_padding must be smaller than either stride or dilation, got "
            f"output_padding {extras}, stride {strides}, dilation {dilations}"
        )
    return strides, pads, extras, dilations


def transposed_settings(
    op: str, nd: int, stride: object, padding: object, output_padding: object, dilation: object
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """A transposed convolution's ``(stride, padding, output_padding, dilation)`` as
    ``nd``-tuples: positive strides and dilations, non-negative paddings (no ``'same'``), and
    each ``output_padding`` below its stride or its dilation; checked once per distinct
    settings, layers (at construction, :mod:`wally.nn.conv_transpose`) and functions alike."""
    key = ("transposed", nd, repr((stride, padding, output_padding, dilation)))
    return _remembered(key, _check_transposed, op, nd, stride, padding, output_padding,
                       dilation, same_form=True)


def tap_slices(
    tap: Sequence[int],
    n: Sequence[int],
    out: Sequence[int],
    stride: Sequence[int],
    padding: Pairs,
    dilation: Sequence[int],
) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Input and output slices that kernel tap ``tap`` connects, padding excluded.

    Output position ``o`` reads input ``o·s − p_left + tap·d`` on each axis.  Returns
    ``(input_slices, output_slices)`` over the spatial axes, covering exactly the output
    positions whose input lies inside the unpadded input, or ``None`` when there are none.
    """
    src: list[slice] = []
    dst: list[slice] = []
    for t, size, o_size, s, (lo, _), d in zip(tap, n, out, stride, padding, dilation, strict=True):
        offset = t * d - lo
        first = max(0, -(offset // s))  # ceil(-offset / s)
        stop = min(o_size, (size - 1 - offset) // s + 1)
        if stop <= first:
            return None
        start = first * s + offset
        src.append(slice(start, start + (stop - first - 1) * s + 1, s))
        dst.append(slice(first, stop))
    return tuple(src), tuple(dst)


def _geometry(
    kernel_size: Sequence[int],
    stride: Sequence[int] | int,
    padding: Pairs | Sequence[int] | int,
    dilation: Sequence[int] | int,
) -> tuple[tuple[int, ...], tuple[int, ...], Pairs, tuple[int, ...]]:
    nd = len(kernel_size)
    k = tuple(int(v) for v in kernel_size)
    s = ntuple(stride, nd, "stride", "im2col")
    d = ntuple(dilation, nd, "dilation", "im2col")
    pairs: list[tuple[int, int]] = []
    for item in (padding,) * nd if isinstance(padding, int) else padding:
        if isinstance(item, int):
            pairs.append((item, item))
        else:
            lo, hi = item
            pairs.append((int(lo), int(hi)))
    return k, s, tuple(pairs), d


def _channel_chunks(shape: Sequence[int], itemsize: int) -> list[slice]:
    batch, channels = shape[0], shape[1]
    per_channel = batch * itemsize
    for n in shape[2:]:
        per_channel *= n
    step = max(1, tuning.SLAB_BYTES // max(per_channel, 1))
    return [slice(c, min(c + step, channels)) for c in range(0, channels, step)]


def _taps(
    kernel_size: tuple[int, ...],
    spatial: Sequence[int],
    out: Sequence[int],
    stride: tuple[int, ...],
    padding: Pairs,
    dilation: tuple[int, ...],
) -> list[tuple[tuple[int, ...], tuple[slice, ...], tuple[slice, ...]]]:
    """``(tap, input slices, output slices)`` for every kernel tap that reads some input."""
    taps = []
    for tap in itertools.product(*(range(k) for k in kernel_size)):
        slices = tap_slices(tap, spatial, out, stride, padding, dilation)
        if slices is not None:
            taps.append((tap, *slices))
    return taps


def im2col(
    x: ndarray,
    kernel_size: Sequence[int],
    stride: Sequence[int] | int = 1,
    padding: Pairs | Sequence[int] | int = 0,
    dilation: Sequence[int] | int = 1,
    out: ndarray | None = None,
) -> ndarray:
    """Gather every kernel window of ``x`` (N, C, *spatial) into columns (C·∏k, N·∏out).

    ``padding`` is an int, one int per axis, or one ``(left, right)`` pair per axis; padded
    positions read as zero.  The buffer is filled by ∏k strided-slice copies, one per kernel
    tap, each moving a ``(C, N, *out)`` block (a few channels at a time, so the input stays in
    cache); no padded copy of ``x`` is made.  ``out`` may supply a C-contiguous buffer of the
    right shape and dtype to fill.

    >>> x = xp.arange(9.0).reshape(1, 1, 3, 3)
    >>> im2col(x, (2, 2)).shape             # 1·2·2 rows, 1·2·2 window positions
    (4, 4)
    """
    k, s, pairs, d = _geometry(kernel_size, stride, padding, dilation)
    batch, channels = x.shape[:2]
    spatial = x.shape[2:]
    o = tuple(
        output_size(n, kk, ss, lo + hi, dd)
        for n, kk, ss, (lo, hi), dd in zip(spatial, k, s, pairs, d, strict=True)
    )
    shape = (channels, *k, batch, *o)
    padded = any(lo or hi for lo, hi in pairs)
    if out is None:
        # Only padded taps leave holes; calloc'd zeros cost no more than empty for big buffers.
        buf = xp.zeros(shape, dtype=x.dtype) if padded else xp.empty(shape, dtype=x.dtype)
    else:
        buf = out.reshape(shape)
        if padded:
            buf.fill(0)
    xt = x.swapaxes(0, 1)  # (C, N, *spatial): the block order of each tap's rows
    taps = _taps(k, spatial, o, s, pairs, d)
    for channel in _channel_chunks(x.shape, x.itemsize):
        for tap, src, dst in taps:
            block: tuple[int | slice, ...] = (channel, *tap, _ALL, *dst)
            buf[block] = xt[(channel, _ALL) + src]
    rows = channels
    for kk in k:
        rows *= kk
    return buf.reshape(rows, -1)


def col2im(
    cols: ndarray,
    input_shape: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int] | int = 1,
    padding: Pairs | Sequence[int] | int = 0,
    dilation: Sequence[int] | int = 1,
) -> ndarray:
    """The adjoint of :func:`im2col`: add every column back into an (N, C, *spatial) array.

    Each entry of ``cols`` is added to the input position it was read from; entries read from
    the padding are dropped.  One strided slice-add per kernel tap (Chainer's col2im), no
    ``add.at``: within one tap distinct output positions read distinct inputs.
    """
    k, s, pairs, d = _geometry(kernel_size, stride, padding, dilation)
    batch, channels = int(input_shape[0]), int(input_shape[1])
    spatial = tuple(int(v) for v in input_shape[2:])
    o = tuple(
        output_size(n, kk, ss, lo + hi, dd)
        for n, kk, ss, (lo, hi), dd in zip(spatial, k, s, pairs, d, strict=True)
    )
    blocks = cols.reshape(channels, *k, batch, *o)
    taps = _taps(k, spatial, o, s, pairs, d)
    # A tap that reads every input cell (stride 1, inside the padding) is assigned first, so the
    # result needs no zero fill.
    whole = tuple(slice(0, n, 1) for n in spatial)
    first = next((i for i, (_, src, _) in enumerate(taps) if src == whole), None)
    if first is None:
        x = xp.zeros((batch, channels, *spatial), dtype=cols.dtype)
    else:
        x = xp.empty((batch, channels, *spatial), dtype=cols.dtype)
        taps.insert(0, taps.pop(first))
    xt = x.swapaxes(0, 1)  # a (C, N, *spatial) view matching the blocks' order
    for channel in _channel_chunks(x.shape, x.itemsize):
        for index, (tap, src, dst) in enumerate(taps):
            where: tuple[int | slice, ...] = (channel, *tap, _ALL, *dst)
            if index == 0 and first is not None:
                xt[channel] = blocks[where]
            else:
                xt[(channel, _ALL) + src] += blocks[where]
    return x


@functools.lru_cache(maxsize=256)
def column_plan(
    spatial: tuple[int, ...],
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pairs,
    dilation: tuple[int, ...],
    wide: bool | None = None,
) -> ColumnPlan:
    """A shared :class:`ColumnPlan` (plans are never modified, so layers reuse theirs)."""
    return ColumnPlan(spatial, kernel_size, stride, padding, dilation, wide)


def shared_step(batch: int, step: int, per_image: int, threads: int) -> int:
    """Images per chunk: ``step``, or fewer so that each of ``threads`` gets a chunk, where the
    batch has the images and a chunk would keep ``tuning.SPLIT_MIN_BYTES`` of work.

    A kernel of one chunk leaves its GEMM to BLAS's own threads, whose idle threads then spin
    for a while on the cores the next chunked kernel's threads need (``wally._parallel``)."""
    share = -(-batch // max(1, threads))
    if share < step and share * per_image >= tuning.SPLIT_MIN_BYTES:
        return share
    return step


class ColumnPlan:
    """The columns of a convolution (im2col's ``(C·∏k, n·∏out)``), built a chunk at a time.

    A chunk is images ``[n0, n1)`` and output rows ``[r0, r1)`` of the first spatial axis.  Its
    images are first copied into a zero-padded scratch block ``(n, C, *padded)``; kernel tap
    ``t`` then reads, for output position ``o``, the padded cell ``o·s + t·d`` on each axis.

    **Wide rows** (stride 1 on every axis; by default only where the padded rows are at most
    15% longer than the output rows): each padded image is flattened per channel, and the
    output position ``(i, j)`` is numbered ``q = i·P_W + j`` with ``P_W`` the padded row length
    (``i·P_H·P_W + j·P_W + l`` in 3-D).  Tap ``t`` reads ``flat[q + offset_t]``, one contiguous
    run of the flat image per tap instead of one short row per output row.  The
    ``P_W − W_out`` positions past the end of each output row are computed and dropped
    ("junk" columns, read from the padding or the next row); :meth:`crop` removes them.  A tail
    of zeros after each flat image keeps the last tap's run in bounds.

    Otherwise each tap is a strided view of the padded block, with ``∏out`` exact columns.
    """

    def __init__(
        self,
        spatial: Sequence[int],
        kernel_size: Sequence[int],
        stride: Sequence[int],
        padding: Pairs,
        dilation: Sequence[int],
        wide: bool | None = None,
    ) -> None:
        self.spatial = tuple(int(n) for n in spatial)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.stride = tuple(stride)
        self.padding = tuple(padding)
        self.dilation = tuple(dilation)
        self.out = tuple(
            output_size(n, k, s, lo + hi, d)
            for n, k, s, (lo, hi), d in zip(
                self.spatial, self.kernel_size, self.stride, self.padding, self.dilation,
                strict=True,
            )
        )
        self.padded = tuple(n + lo + hi for n, (lo, hi) in zip(self.spatial, self.padding))
        if wide is None:
            # Wide rows only while the junk columns are few (tuning.MAX_JUNK, measured).
            junk = volume(self.padded[1:]) / max(1, volume(self.out[1:]))
            wide = all(s == 1 for s in self.stride) and junk <= tuning.MAX_JUNK
        elif wide and any(s != 1 for s in self.stride):
            raise ValueError(f"ColumnPlan: wide rows need stride 1, got stride {self.stride}")
        self.wide = wide
        self.taps = list(itertools.product(*(range(k) for k in self.kernel_size)))
        self.n_taps = len(self.taps)
        # Flat strides of the padded block's spatial axes.
        flat = [1] * len(self.padded)
        for axis in range(len(self.padded) - 2, -1, -1):
            flat[axis] = flat[axis + 1] * self.padded[axis + 1]
        self.flat = tuple(flat)
        if self.wide:
            self.offsets = [
                sum(t * d * f for t, d, f in zip(tap, self.dilation, flat, strict=True))
                for tap in self.taps
            ]
            self.tail = sum(
                d * (k - 1) * f
                for k, d, f in zip(self.kernel_size[1:], self.dilation[1:], flat[1:], strict=True)
            )
            self.row_shape = self.padded[1:]
        else:
            self.offsets = []
            self.tail = 0
            self.row_shape = self.out[1:]
        self.row = volume(self.row_shape)
        self.plane = flat[0] * self.padded[0] if self.padded else 1
        self.needs_copy = self.tail > 0 or any(lo or hi for lo, hi in self.padding)
        self._chunks: dict[tuple[int, ...], list[tuple[slice, slice]]] = {}
        # The real (not junk) positions of a wide row.
        self._kept: tuple[Any, ...] = (Ellipsis,) + tuple(slice(0, o) for o in self.out[1:])

    # ----- chunks -----------------------------------------------------------------------------
    def chunks(
        self, batch: int, channels: int, itemsize: int, limit: int, threads: int = 1
    ) -> list[tuple[slice, slice]]:
        """``(images, output rows)`` chunks whose columns take at most ``limit`` bytes, or one
        output row of one image where even that is larger; whole images are shared among
        ``threads`` (at least one chunk each, where the batch has the images and each chunk's
        columns would still be ``tuning.SPLIT_MIN_BYTES``)."""
        key = (batch, channels, itemsize, limit, threads)
        if key not in self._chunks:
            self._chunks[key] = self._split(batch, channels, itemsize, limit, threads)
        return self._chunks[key]

    def _split(
        self, batch: int, channels: int, itemsize: int, limit: int, threads: int
    ) -> list[tuple[slice, slice]]:
        per_row = channels * self.n_taps * self.row * itemsize
        rows = self.out[0] if self.out else 1
        per_image = per_row * rows
        if per_image <= limit:
            step = shared_step(batch, max(1, limit // per_image), per_image, threads)
            return [(slice(n, min(n + step, batch)), slice(0, rows)) for n in range(0, batch, step)]
        step = max(1, limit // per_row)
        return [
            (slice(n, n + 1), slice(r, min(r + step, rows)))
            for n in range(batch)
            for r in range(0, rows, step)
        ]

    # ----- columns ----------------------------------------------------------------------------
    def scratch(
        self, images: int, channels: int, dtype: Any, out: ndarray | None = None
    ) -> ndarray:
        """A zeroed block for :meth:`pad` (in ``out``, a flat array of the right size, if
        given): its borders stay zero across chunks."""
        shape = (images, channels, self.plane + self.tail)
        if out is None:
            return xp.zeros(shape, dtype=dtype)
        block = out.reshape(shape)
        block.fill(0)
        return block

    def pad(self, x: ndarray, scratch: ndarray | None) -> ndarray:
        """``x (n, C, *spatial)`` inside the zero border: ``(n, C, plane + tail)`` when wide,
        ``(n, C, *padded)`` otherwise.  ``scratch`` comes from :meth:`scratch` (or is ``None``
        when :attr:`needs_copy` is false, and ``x`` is used in place)."""
        n, channels = x.shape[:2]
        if scratch is None:
            return x.reshape(n, channels, -1) if self.wide else x
        buf = scratch[:n]
        block = buf[:, :, : self.plane].reshape(n, channels, *self.padded)
        center = tuple(slice(lo, lo + size) for (lo, _), size in zip(self.padding, self.spatial))
        block[(_ALL, _ALL) + center] = x
        return buf if self.wide else block

    # ----- padding one chunk of output rows at a time ---------------------------------------------
    def input_rows(self, rows: slice) -> tuple[int, int]:
        """The padded rows ``[start, stop)`` of the first spatial axis that output rows
        ``rows`` read."""
        s, d, k = self.stride[0], self.dilation[0], self.kernel_size[0]
        return rows.start * s, (rows.stop - 1) * s + d * (k - 1) + 1

    def rows_length(self, count: int) -> int:
        """Elements per channel of a :meth:`rows_block` for ``count`` output rows."""
        start, stop = self.input_rows(slice(0, count))
        return (stop - start) * self.flat[0] + self.tail

    def rows_block(
        self, n: int, channels: int, rows: slice, out: ndarray
    ) -> tuple[ndarray, ndarray, slice]:
        """A zeroed block in ``out`` (a flat buffer of at least ``n·C·rows_length(count)``
        elements) for the padded input rows that output rows ``rows`` read: ``(flat, block,
        local rows)``, ``flat (n, C, length)`` as :meth:`pad` returns it when wide, ``block
        (n, C, rows read, *padded[1:])`` a view of it, and the chunk's rows numbered from 0
        within it (what :meth:`columns` and :meth:`add_columns` take)."""
        start, stop = self.input_rows(rows)
        length = (stop - start) * self.flat[0] + self.tail
        flat = out[: n * channels * length].reshape(n, channels, length)
        flat.fill(0)
        body = flat[:, :, : (stop - start) * self.flat[0]]
        block = body.reshape(n, channels, stop - start, *self.padded[1:])
        return flat, block, slice(0, rows.stop - rows.start)

    def rows_center(self, rows: slice) -> tuple[slice, tuple[slice, ...]]:
        """For a :meth:`rows_block` of output rows ``rows``: the input rows inside it (a slice
        of the first spatial axis) and where they sit in the block, ``(…, rows, *spatial[1:])``
        (empty slices where the block holds only padding)."""
        start, stop = self.input_rows(rows)
        lo = self.padding[0][0]
        first, last = max(start - lo, 0), min(stop - lo, self.spatial[0])
        last = max(first, last)
        center = (slice(first + lo - start, last + lo - start),) + tuple(
            slice(left, left + size)
            for (left, _), size in zip(self.padding[1:], self.spatial[1:], strict=True)
        )
        return slice(first, last), (_ALL, _ALL) + center

    def pad_rows(self, x: ndarray, rows: slice, out: ndarray) -> tuple[ndarray, slice]:
        """:meth:`pad` for one chunk of output rows: only the input rows they read, inside the
        zero border, in ``out`` (see :meth:`rows_block`); returns the block and the local rows.
        A large image is padded this way, so that its padded copy never exists whole."""
        flat, block, local = self.rows_block(x.shape[0], x.shape[1], rows, out)
        inside, center = self.rows_center(rows)
        if inside.stop > inside.start:
            block[center] = x[:, :, inside]
        return (flat if self.wide else block), local

    def columns(self, padded: ndarray, rows: slice, out: ndarray) -> ndarray:
        """Fill ``out`` (at least ``C·∏k·n·rows·row`` elements) with the chunk's columns and
        return them as ``(C·∏k, n·rows·row)``: one copy of :meth:`window_view`."""
        view = self.window_view(padded, rows)
        size = 1
        for n in view.shape:
            size *= n
        cols = out[:size].reshape(view.shape)
        cols[...] = view
        return cols.reshape(padded.shape[1] * self.n_taps, -1)

    def window_view(self, padded: ndarray, rows: slice) -> ndarray:
        """The chunk's columns as a read-only strided view of the padded block (no copy):
        ``(C, *k, n, rows·row)`` when wide, ``(C, *k, n, rows, *out[1:])`` otherwise."""
        n, channels = padded.shape[:2]
        image, channel = padded.strides[:2]
        count = rows.stop - rows.start
        if self.wide:
            item = padded.strides[2]
            start = padded[:, :, rows.start * self.row :]
            taps = [d * f * item for d, f in zip(self.dilation, self.flat, strict=True)]
            shape: tuple[int, ...] = (channels, *self.kernel_size, n, count * self.row)
            strides: tuple[int, ...] = (channel, *taps, image, item)
        else:
            axes = padded.strides[2:]
            start = padded[:, :, rows.start * self.stride[0] :]
            taps = [d * a for d, a in zip(self.dilation, axes, strict=True)]
            steps = [s * a for s, a in zip(self.stride, axes, strict=True)]
            shape = (channels, *self.kernel_size, n, count, *self.out[1:])
            strides = (channel, *taps, image, *steps)
        return xp.lib.stride_tricks.as_strided(start, shape, strides, writeable=False)

    def tap_view(self, tap: Sequence[int], rows: slice) -> tuple[slice, ...]:
        """The strided slice of a padded block ``(…, *padded)`` that tap ``tap`` reads for
        output rows ``rows`` (exact columns)."""
        first = tap[0] * self.dilation[0] + rows.start * self.stride[0]
        count = rows.stop - rows.start
        views = [slice(first, first + (count - 1) * self.stride[0] + 1, self.stride[0])]
        for t, d, o, s in zip(tap[1:], self.dilation[1:], self.out[1:], self.stride[1:]):
            views.append(slice(t * d, t * d + (o - 1) * s + 1, s))
        return tuple(views)

    def add_columns(self, cols: ndarray, padded: ndarray, rows: slice) -> None:
        """The adjoint of :meth:`columns`: add each tap's block of ``cols (C·∏k, n·rows·row)``
        into the padded block (as :meth:`pad` returns it) where it was read from.  Within one
        tap distinct outputs read distinct cells, so each tap is one slice-add.  With wide rows
        the junk columns must be zero (they land on the padding or on real cells)."""
        n, channels = padded.shape[:2]
        count = rows.stop - rows.start
        target = padded.swapaxes(0, 1)
        if self.wide:
            blocks = cols.reshape(channels, self.n_taps, n, count * self.row)
            start = rows.start * self.row
            for index, offset in enumerate(self.offsets):
                target[:, :, offset + start : offset + start + blocks.shape[3]] += blocks[:, index]
            return
        blocks = cols.reshape(channels, self.n_taps, n, count, *self.row_shape)
        for index, tap in enumerate(self.taps):
            target[(_ALL, _ALL) + self.tap_view(tap, rows)] += blocks[:, index]

    def crop(self, y: ndarray) -> ndarray:
        """``y (…, rows·row)`` as ``(…, rows, *out[1:])``, the wide rows' junk dropped."""
        shaped = y.reshape(*y.shape[:-1], -1, *self.row_shape)
        if not self.wide:
            return shaped
        return shaped[self._kept]

    def uncrop(self, gy: ndarray, out: ndarray) -> ndarray:
        """``gy (…, rows, *out[1:])`` laid out as ``crop``'s input ``(…, rows·row)`` in ``out``
        (whose junk positions must already be zero)."""
        shaped = out.reshape(*gy.shape[:-len(self.row_shape) or None], *self.row_shape)
        if self.wide:
            shaped[self._kept] = gy
        else:
            shaped[...] = gy
        return out
