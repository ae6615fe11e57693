"""Resampling and pixel rearrangement: ``interpolate``, ``pixel_shuffle``,
``pixel_unshuffle`` and ``channel_shuffle``, PyTorch's functions of the same names.

Interpolation is separable: along each spatial axis every output index ``i`` reads ``T``
input indices ``j_t(i)`` with weights ``w_t(i)`` (``T`` = 1 for nearest, 2 for linear, 4 for
cubic), and the N-d result applies the axes one after another.  So forward is ``T`` gathers
per axis and backward their adjoint, segment sums over the (sorted) source indices: no dense
interpolation matrix is ever built.  The index arithmetic is PyTorch's (its ``UpSample.h``),
in the input's precision, so that the chosen pixels agree exactly:

* ``scale`` = ``1/scale_factor`` when a scale factor is given (and not recomputed), else
  ``n_in/n_out``; with ``align_corners=True``, ``(n_in − 1)/(n_out − 1)``.
* source coordinate ``x = scale·i`` (``align_corners``, and ``nearest``) or
  ``x = scale·(i + ½) − ½`` (clamped at 0 except for cubic).
* ``nearest``: ``min(⌊scale·i⌋, n_in − 1)``; ``nearest-exact``: ``min(⌊x + ½⌋, n_in − 1)``.
* ``linear``: ``j = min(⌊x⌋, n_in − 1)``, ``λ = clamp(x − j, 0, 1)``, pixels ``j`` and
  ``j + 1`` (clamped) with weights ``1 − λ`` and ``λ``; an axis whose size does not change is
  copied.
* ``cubic``: Keys' kernel with ``A = −0.75`` on pixels ``j − 1 … j + 2``, clamped to the
  border.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.functional.conv import _check_float, _check_tensor

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = [
    "interpolate",
    "upsample",
    "upsample_nearest",
    "upsample_bilinear",
    "pixel_shuffle",
    "pixel_unshuffle",
    "channel_shuffle",
]

MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
_CUBIC_A = -0.75

# (indices (T, n_out), weights (T, n_out) or None for a plain gather) along one axis.
AxisPlan = tuple[ndarray, ndarray | None]


# ----- the per-axis index arithmetic ---------------------------------------------------------
def _scale(n_in: int, n_out: int, align_corners: bool, factor: float | None, dtype: Any) -> Any:
    """PyTorch's ``area_pixel_compute_scale``, in the input's precision."""
    real = xp.dtype(dtype).type
    if align_corners:
        return real(n_in - 1) / real(n_out - 1) if n_out > 1 else real(0)
    if factor is not None and factor > 0:
        return real(1.0 / factor)
    return real(n_in) / real(n_out)


def _floor(x: ndarray) -> ndarray:
    """PyTorch's ``floorf``: a double is rounded to single precision first."""
    return xp.floor(x.astype(xp.float32)).astype(xp.int64)


def _source(scale: Any, n_out: int, align_corners: bool, cubic: bool, dtype: Any) -> ndarray:
    """PyTorch's ``area_pixel_compute_source_index`` for every output index."""
    real = xp.dtype(dtype).type
    i = xp.arange(n_out).astype(dtype)
    if align_corners:
        return scale * i
    x = scale * (i + real(0.5)) - real(0.5)
    return x if cubic else xp.maximum(x, real(0))


def _cubic_weights(t: ndarray) -> ndarray:
    """Keys' cubic convolution weights of the pixels at ``−1, 0, 1, 2`` for offset ``t``."""
    a = t.dtype.type(_CUBIC_A)
    one = t.dtype.type(1)

    def near(x: ndarray) -> ndarray:  # |x| ≤ 1
        return ((a + 2) * x - (a + 3)) * x * x + one

    def far(x: ndarray) -> ndarray:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return xp.stack([far(t + one), near(t), near(one - t), far(one - t + one)])


def axis_plan(
    mode: str,
    n_in: int,
    n_out: int,
    align_corners: bool,
    factor: float | None,
    dtype: Any,
    legacy: bool = False,
) -> AxisPlan:
    """Source indices and weights along one axis (see the module docstring).

    ``legacy``: PyTorch's 2-D ``nearest`` kernel (its ``nearest_idx``), which copies an axis
    whose size is kept and takes ``i // 2`` for an axis whose size doubles, whatever the scale
    factor.
    """
    if mode == "nearest" and legacy and n_out in (n_in, 2 * n_in):
        return (xp.arange(n_out) // (n_out // n_in))[None], None
    if mode in ("nearest", "nearest-exact"):
        scale = _scale(n_in, n_out, False, factor, dtype)
        exact = mode == "nearest-exact"
        x = _source(scale, n_out, not exact, False, dtype)
        if exact:
            x = x + x.dtype.type(0.5)
        return xp.minimum(_floor(x), n_in - 1)[None], None
    if mode == "bicubic":
        scale = _scale(n_in, n_out, align_corners, factor, dtype)
        x = _source(scale, n_out, align_corners, True, dtype)
        j = xp.minimum(_floor(x), n_in - 1)
        t = xp.clip(x - j.astype(dtype), 0, 1).astype(dtype)
        taps = xp.clip(j[None] + xp.arange(-1, 3)[:, None], 0, n_in - 1)
        return taps, _cubic_weights(t)
    if n_in == n_out:  # linear modes copy an axis whose size is kept
        return xp.arange(n_out)[None], None
    scale = _scale(n_in, n_out, align_corners, factor, dtype)
    x = _source(scale, n_out, align_corners, False, dtype)
    j = xp.minimum(_floor(x), n_in - 1)
    lam = xp.clip(x - j.astype(dtype), 0, 1).astype(dtype)
    taps = xp.stack([j, j + (j < n_in - 1)])
    return taps, xp.stack([1 - lam, lam])


def _aa_filter(mode: str, x: ndarray) -> ndarray:
    """PyTorch's antialiasing filters: the triangle (bilinear), Keys' cubic with ``A = −½``
    (bicubic)."""
    x = xp.abs(x)
    one = x.dtype.type(1)
    if mode == "bilinear":
        return xp.where(x < one, one - x, 0).astype(x.dtype)
    a = x.dtype.type(-0.5)
    near = ((a + 2) * x - (a + 3)) * x * x + one
    far = (((x - 5) * x + 8) * x - 4) * a
    return xp.where(x < one, near, xp.where(x < 2, far, 0)).astype(x.dtype)


def antialias_plan(
    mode: str, n_in: int, n_out: int, align_corners: bool, factor: float | None, dtype: Any
) -> AxisPlan:
    """PyTorch's antialiased resampling along one axis: output ``i`` averages the input
    pixels within ``support = (T/2)·max(scale, 1)`` of its centre ``scale·(i + ½)``, weighted
    by the filter stretched by ``max(scale, 1)`` and normalised to sum 1 (``T`` = 2 bilinear,
    4 bicubic)."""
    real = xp.dtype(dtype).type
    scale = _scale(n_in, n_out, align_corners, factor, dtype)
    half = real(2 if mode == "bilinear" else 4) * real(0.5)
    support = half * scale if scale >= 1 else half
    invscale = real(1) / scale if scale >= 1 else real(1)
    centre = scale * (xp.arange(n_out).astype(dtype) + real(0.5))
    # C's int64 casts truncate toward zero
    first = xp.maximum(xp.trunc(centre - support + real(0.5)).astype(xp.int64), 0)
    stop = xp.minimum(xp.trunc(centre + support + real(0.5)).astype(xp.int64), n_in)
    width = max(int((stop - first).max()), 1)
    offsets = xp.arange(width)[:, None]
    taps = first[None] + offsets
    inside = taps < stop[None]
    weights = _aa_filter(mode, (taps - centre[None] + real(0.5)).astype(dtype) * invscale)
    weights = xp.where(inside, weights, 0).astype(dtype)
    total = weights.sum(axis=0)
    weights = xp.where(total != 0, weights / xp.where(total != 0, total, 1), 0).astype(dtype)
    return xp.minimum(taps, n_in - 1), weights


def _along(v: ndarray, axis: int, ndim: int) -> ndarray:
    """A 1-D array shaped to broadcast along ``axis`` of an ``ndim``-D array."""
    shape = [1] * ndim
    shape[axis] = v.shape[0]
    return v.reshape(shape)


class Interpolate(Function):
    """``y = Π_axes (Σ_t w_t · gather(x, j_t))``: separable resampling of ``x (N, C, *spatial)``
    with one :data:`AxisPlan` per spatial axis; backward is the adjoint, axis by axis in
    reverse, as segment sums over each tap's sorted source indices."""

    def __init__(
        self, plans: Sequence[AxisPlan], mode: str, align_corners: bool = False,
        factors: Sequence[float | None] = (),
        antialias: bool = False,
    ) -> None:
        self.plans = list(plans)
        self.antialias = antialias
        self.mode = mode  # these four: for the receptive field and the ONNX export
        self.align_corners = align_corners
        self.factors = list(factors)

    def forward(self, x: ndarray) -> ndarray:
        self.input_shape = x.shape
        for axis, (taps, weights) in enumerate(self.plans, start=2):
            if weights is None and x.shape[axis] == taps.shape[1] and bool(
                (taps[0] == xp.arange(taps.shape[1])).all()
            ):
                continue
            y = xp.take(x, taps[0], axis=axis)
            if weights is not None:
                y *= _along(weights[0], axis, x.ndim)
                for t in range(1, taps.shape[0]):
                    y += xp.take(x, taps[t], axis=axis) * _along(weights[t], axis, x.ndim)
            x = y
        return xp.ascontiguousarray(x)

    def backward(self, gy: ndarray) -> ndarray:
        g = gy
        for axis in reversed(range(2, 2 + len(self.plans))):
            taps, weights = self.plans[axis - 2]
            n_in = self.input_shape[axis]
            if weights is None and n_in == taps.shape[1] and bool(
                (taps[0] == xp.arange(n_in)).all()
            ):
                continue
            shape = list(g.shape)
            shape[axis] = n_in
            gx = xp.zeros(shape, dtype=g.dtype)
            target: list[Any] = [slice(None)] * g.ndim
            for t in range(taps.shape[0]):
                part = g if weights is None else g * _along(weights[t], axis, g.ndim)
                sources, starts = xp.unique(taps[t], return_index=True)
                target[axis] = sources
                gx[tuple(target)] += xp.add.reduceat(part, starts, axis=axis)
            g = gx
        return g


# ----- interpolate ---------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _output_size(
    input: Tensor,
    size: Any,
    scale_factor: Any,
    recompute_scale_factor: bool | None,
) -> tuple[tuple[int, ...], list[float | None]]:
    """PyTorch's rules: exactly one of ``size`` and ``scale_factor``; ``⌊n·factor⌋``."""
    nd = input.ndim - 2
    spatial = list(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError(
            f"interpolate: only one of size or scale_factor should be defined, got size={size!r} "
            f"and scale_factor={scale_factor!r}"
        )
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(
                "interpolate: recompute_scale_factor is not meaningful with an explicit size, "
                f"got size={size!r} and recompute_scale_factor=True"
            )
        items = list(size) if isinstance(size, Sequence) else [size]
        if isinstance(size, Sequence) and len(items) != nd:
            raise ValueError(
                f"interpolate: input and output must have the same number of spatial "
                f"dimensions, got input with spatial dimensions of {spatial} and output size of "
                f"{size!r}"
            )
        if not all(_is_int(n) for n in items):
            raise TypeError(
                f"interpolate: expected size to be an int or a tuple of {nd} ints, got {size!r}"
            )
        out = tuple(int(n) for n in items) * (nd if len(items) == 1 and nd != 1 else 1)
        factors: list[float | None] = [None] * nd
    elif scale_factor is not None:
        items = list(scale_factor) if isinstance(scale_factor, Sequence) else [scale_factor]
        if isinstance(scale_factor, Sequence) and len(items) != nd:
            raise ValueError(
                f"interpolate: input and scale_factor must have the same number of spatial "
                f"dimensions, got input with spatial dimensions of {spatial} and scale_factor "
                f"{scale_factor!r}"
            )
        if not all(isinstance(f, numbers.Real) and not isinstance(f, bool) for f in items):
            raise TypeError(
                f"interpolate: expected scale_factor to be a number or a tuple of {nd} numbers, "
                f"got {scale_factor!r}"
            )
        floats = [float(f) for f in items] * (nd if len(items) == 1 else 1)
        out = tuple(math.floor(n * f) for n, f in zip(spatial, floats, strict=True))
        factors = [None] * nd if recompute_scale_factor else list(floats)
    else:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    if any(n <= 0 for n in out) or any(n <= 0 for n in spatial):
        raise ValueError(
            f"interpolate: input and output sizes should be greater than 0, got input size "
            f"{tuple(spatial)} and output size {out}"
        )
    return out, factors


def interpolate(
    input: Tensor,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize a batch of signals, images or volumes, PyTorch's ``F.interpolate``.

    Each output pixel ``i`` (per axis) reads the input around the source coordinate
    ``x = scale·(i + ½) − ½`` (``scale·i`` with ``align_corners=True``, where ``scale =
    (n_in − 1)/(n_out − 1)`` so the corner pixels' centres line up); ``scale`` is
    ``1/scale_factor`` when a scale factor is given and ``n_in/n_out`` otherwise (or with
    ``recompute_scale_factor=True``).  ``mode``: ``'nearest'`` (``⌊scale·i⌋``, PyTorch's
    legacy rule), ``'nearest-exact'`` (the nearest centre), ``'linear'`` (3-D input),
    ``'bilinear'`` and ``'bicubic'`` (4-D), ``'trilinear'`` (5-D), ``'area'`` (adaptive
    average pooling).  Linear modes weigh the two neighbours ``(1 − λ)·x_j + λ·x_{j+1}``;
    bicubic uses Keys' kernel (``A = −0.75``) on four neighbours, clamped at the border.
    ``antialias=True`` (bilinear and bicubic only, as PyTorch) low-pass filters while
    downsampling: each output averages every input pixel under the filter stretched by the
    scale (PIL's resize).

    Shape:
        input ``(N, C, *spatial)`` with 1-3 spatial axes → output ``(N, C, *size)``, where
        ``size`` is given or ``⌊n·scale_factor⌋`` per axis.

    Example::

        >>> x = wally.arange(4.0).reshape(1, 1, 2, 2)
        >>> F.interpolate(x, scale_factor=2, mode="nearest")[0, 0, 0]
        tensor([0., 0., 1., 1.])
        >>> F.interpolate(x, size=(3, 3), mode="bilinear", align_corners=True)[0, 0, 1]
        tensor([1.0000, 1.5000, 2.0000])
    """
    _check_tensor("interpolate", "input", input)
    if mode not in MODES:
        raise ValueError(
            f"interpolate: mode must be one of {', '.join(repr(m) for m in MODES)}, got {mode!r}"
        )
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise ValueError(
                "interpolate: align_corners can only be set with the interpolating modes "
                f"linear, bilinear, bicubic and trilinear, got mode={mode!r} and "
                f"align_corners={align_corners!r}"
            )
    elif align_corners is None:
        align_corners = False
    if input.ndim not in (3, 4, 5):
        raise ValueError(
            f"interpolate: expected a 3-D, 4-D or 5-D input (N, C, *spatial) with 1 to 3 "
            f"spatial axes, got shape {tuple(input.shape)}"
        )
    nd = input.ndim - 2
    if mode in _DIMS and _DIMS[mode] != nd:
        want = _DIMS[mode]
        raise ValueError(
            f"interpolate: mode {mode!r} needs a {want + 2}-D input (N, C, {want} spatial "
            f"axes), got shape {tuple(input.shape)}"
        )
    if antialias and mode not in ("bilinear", "bicubic"):
        raise ValueError(
            f"interpolate: antialias=True is restricted to the bilinear and bicubic modes "
            f"(4-D input), got mode {mode!r}"
        )
    _check_float("interpolate", "input", input)
    if mode == "area" and size is None:
        recompute_scale_factor = True
    out, factors = _output_size(input, size, scale_factor, recompute_scale_factor)
    if mode == "area":
        from wally.functional import pool

        pools = {1: pool.adaptive_avg_pool1d, 2: pool.adaptive_avg_pool2d,
                 3: pool.adaptive_avg_pool3d}
        return pools[nd](input, out)
    kind = "bicubic" if mode == "bicubic" else "linear" if mode in _DIMS else mode
    if antialias:
        plans = [
            antialias_plan(mode, n, o, bool(align_corners), f, input.dtype)
            for n, o, f in zip(input.shape[2:], out, factors, strict=True)
        ]
    else:
        plans = [
            axis_plan(kind, n, o, bool(align_corners), f, input.dtype, legacy=nd == 2)
            for n, o, f in zip(input.shape[2:], out, factors, strict=True)
        ]
    return Interpolate(plans, mode, bool(align_corners), factors, antialias)(input)


def upsample(
    input: Tensor,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Tensor:
    """PyTorch's deprecated ``F.upsample``: :func:`interpolate` (same arguments)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(
    input: Tensor, size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
) -> Tensor:
    """PyTorch's deprecated ``F.upsample_nearest``: ``interpolate(mode='nearest')``."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(
    input: Tensor, size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
) -> Tensor:
    """PyTorch's deprecated ``F.upsample_bilinear``:
    ``interpolate(mode='bilinear', align_corners=True)``."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ----- pixel and channel shuffles ------------------------------------------------------------
class PixelShuffle(Function):
    """``(*, C·r², H, W) → (*, C, H·r, W·r)`` (``inverse``: the other way): one reshape and
    one transpose; backward is the opposite rearrangement."""

    def __init__(self, factor: int, inverse: bool) -> None:
        self.factor = factor
        self.inverse = inverse

    @staticmethod
    def _shuffle(x: ndarray, r: int) -> ndarray:
        *lead, c, h, w = x.shape
        k = len(lead)
        y = x.reshape(*lead, c // (r * r), r, r, h, w)
        y = y.transpose(*range(k), k, k + 3, k + 1, k + 4, k + 2)
        return xp.ascontiguousarray(y).reshape(*lead, c // (r * r), h * r, w * r)

    @staticmethod
    def _unshuffle(x: ndarray, r: int) -> ndarray:
        *lead, c, h, w = x.shape
        k = len(lead)
        y = x.reshape(*lead, c, h // r, r, w // r, r)
        y = y.transpose(*range(k), k, k + 2, k + 4, k + 1, k + 3)
        return xp.ascontiguousarray(y).reshape(*lead, c * r * r, h // r, w // r)

    def forward(self, x: ndarray) -> ndarray:
        if self.inverse:
            return self._unshuffle(x, self.factor)
        return self._shuffle(x, self.factor)

    def backward(self, gy: ndarray) -> ndarray:
        if self.inverse:
            return self._shuffle(gy, self.factor)
        return self._unshuffle(gy, self.factor)


class ChannelShuffle(Function):
    """``(N, g·m, *) → (N, m·g, *)``: channel ``i·m + j`` moves to ``j·g + i``."""

    def __init__(self, groups: int) -> None:
        self.groups = groups

    @staticmethod
    def _swap(x: ndarray, first: int) -> ndarray:
        n, c, *rest = x.shape
        y = x.reshape(n, first, c // first, *rest).swapaxes(1, 2)
        return xp.ascontiguousarray(y).reshape(x.shape)

    def forward(self, x: ndarray) -> ndarray:
        return self._swap(x, self.groups)

    def backward(self, gy: ndarray) -> ndarray:
        return self._swap(gy, gy.shape[1] // self.groups)


def _factor(op: str, name: str, value: Any) -> int:
    if not _is_int(value):
        raise TypeError(f"{op}: expected {name} to be an int, got {value!r}")
    if value <= 0:
        raise ValueError(f"{op}: {name} must be positive, got {value}")
    return int(value)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """Rearrange channels into space, PyTorch's ``F.pixel_shuffle`` (sub-pixel convolution):
    ``y[c, h·r + i, w·r + j] = x[c·r² + i·r + j, h, w]``.

    Shape:
        input ``(*, C·r², H, W)`` → output ``(*, C, H·r, W·r)``.

    Example::

        >>> F.pixel_shuffle(wally.randn(1, 8, 3, 3), 2).shape
        wally.Size([1, 2, 6, 6])
    """
    op = "pixel_shuffle"
    _check_tensor(op, "input", input)
    r = _factor(op, "upscale_factor", upscale_factor)
    if input.ndim < 3:
        raise ValueError(
            f"{op}: expected an input with at least 3 dimensions (*, C·r², H, W), got shape "
            f"{tuple(input.shape)}"
        )
    channels = input.shape[-3]
    if channels % (r * r):
        raise ValueError(
            f"{op}: expected the channel dimension to be divisible by upscale_factor² = "
            f"{r * r}, got {channels} channels (input shape {tuple(input.shape)})"
        )
    return PixelShuffle(r, inverse=False)(input)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """Rearrange space into channels, PyTorch's ``F.pixel_unshuffle``, the inverse of
    :func:`pixel_shuffle`: ``y[c·r² + i·r + j, h, w] = x[c, h·r + i, w·r + j]``.

    Shape:
        input ``(*, C, H·r, W·r)`` → output ``(*, C·r², H, W)``.

    Example::

        >>> F.pixel_unshuffle(wally.randn(1, 2, 6, 6), 2).shape
        wally.Size([1, 8, 3, 3])
    """
    op = "pixel_unshuffle"
    _check_tensor(op, "input", input)
    r = _factor(op, "downscale_factor", downscale_factor)
    if input.ndim < 3:
        raise ValueError(
            f"{op}: expected an input with at least 3 dimensions (*, C, H·r, W·r), got shape "
            f"{tuple(input.shape)}"
        )
    h, w = input.shape[-2:]
    if h % r or w % r:
        raise ValueError(
            f"{op}: expected height and width divisible by downscale_factor {r}, got "
            f"{h}×{w} (input shape {tuple(input.shape)})"
        )
    return PixelShuffle(r, inverse=True)(input)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``groups`` groups (ShuffleNet), PyTorch's
    ``F.channel_shuffle``: the channels, viewed as ``(groups, C/groups)``, are transposed.

    Shape:
        input ``(N, C, *)`` → output of the same shape; ``C`` divisible by ``groups``.

    Example::

        >>> x = wally.arange(4.0).reshape(1, 4, 1)
        >>> F.channel_shuffle(x, 2).flatten()
        tensor([0., 2., 1., 3.])
    """
    op = "channel_shuffle"
    _check_tensor(op, "input", input)
    g = _factor(op, "groups", groups)
    if input.ndim < 3:
        raise ValueError(
            f"{op}: expected an input with at least 3 dimensions (N, C, *), got shape "
            f"{tuple(input.shape)}"
        )
    channels = input.shape[1]
    if channels % g:
        raise ValueError(
            f"{op}: number of channels must be divisible by groups, got {channels} channels "
            f"and {g} groups (input shape {tuple(input.shape)})"
        )
    return ChannelShuffle(g)(input)
