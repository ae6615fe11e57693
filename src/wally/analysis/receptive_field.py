"""Receptive fields: which input pixels one output unit sees, by arithmetic and by a probe.

Along one spatial axis, output unit ``i`` of a layer sees the input pixels

    ``start + jump·i, ..., start + jump·i + size − 1``

(``start`` may be negative: those pixels lie in the padding). The input itself has
``size = 1, jump = 1, start = 0``. A sliding window (convolution or pooling) of kernel ``k``,
stride ``s``, dilation ``d`` and left padding ``p`` maps the field ``(r, j, a)`` of its
input to

    ``r_out = r_in + (k − 1)·d·j_in``    the window's end taps lie ``(k − 1)·d`` input units apart
    ``j_out = j_in·s``                   one output step is ``s`` input units
    ``a_out = a_in − p·j_in``            output unit 0 starts ``p`` units into the padding

so the study note's receptive field of a dilated convolution is measured from edge to edge.
Element-wise layers (activations, batch norm, dropout) keep the field. Where branches merge
(a residual ``+``, an inception or dense ``cat``) the field is the union of the branches'
fields: the largest of them when they are nested, as they are when centred alike. After the
spatial axes are gone (``Flatten``, ``Linear``, global pooling) every unit sees the union over
all positions; its jump is then 0.

:func:`probe_receptive_field` measures the same thing on the real model: with positive weights
and max-pooling replaced by window sums, the input gradient of one output unit is non-zero
exactly on that unit's field.

Example::

    >>> net = wally.models.lenet()
    >>> receptive_field(net, (1, 28, 28), layer="5")       # after the second pooling
    ReceptiveField(size=(16, 16), jump=(4, 4), start=(-2, -2))
    >>> probe_receptive_field(net, (1, 28, 28), layer="5")  # unit (2, 2): −2 + 4·2 = 6 ...
    ((6, 21), (6, 21))
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from wally import linalg, nn, ops, ops_index, ops_math, ops_shape
from wally._windows import adaptive_windows, output_size, pool_settings
from wally.autograd import enable_grad
from wally.backend import ndarray, xp
from wally.functional import (
    activation,
    activation_extra,
    conv,
    conv_transpose,
    loss,
    loss_margin,
    loss_regression,
    norm,
    normalization,
    padding,
    pool,
    sparse,
    upsampling,
)
from wally.functional.dropout import MaskedDropout
from wally.functional.linear import Dropout as DropoutNode
from wally.functional.linear import Linear as LinearNode
from wally.functional.temporal_pool import MaxOverTime
from wally.geometric.sparse import SparseDenseProduct
from wally.nn import functional as F
from wally.nn.module import Module
from wally.nn.utils.rnn import PadSequence
from wally.tensor import Tensor
from wally.tracing import (
    CallTrace,
    Rules,
    example_inputs,
    modes_kept,
    post_order,
    record_calls,
    record_one_call,
)

__all__ = [
    "AxisField",
    "Fields",
    "ReceptiveField",
    "NODE_FIELDS",
    "merge_fields",
    "module_receptive_field",
    "node_receptive_field",
    "receptive_field",
    "input_gradient",
    "probe_receptive_field",
    "probe_receptive_fields",
]

_MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_ADAPTIVE_AVG = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
_ADAPTIVE_MAX = (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


@dataclass(frozen=True)
class AxisField:
    """The receptive field along one axis: unit ``i`` sees input pixels
    ``[start + jump·i, start + jump·i + size − 1]``; ``jump = 0``: every unit sees the same."""

    size: int
    jump: int
    start: int

    def window(self, kernel_size: int, stride: int, padding: int, dilation: int = 1) -> AxisField:
        """After a sliding window: ``r + (k − 1)·d·j``, ``j·s``, ``a − p·j``."""
        return AxisField(
            self.size + (kernel_size - 1) * dilation * self.jump,
            self.jump * stride,
            self.start - padding * self.jump,
        )

    def box(self, index: int = 0) -> tuple[int, int]:
        """First and last input pixel (inclusive) seen by unit ``index``."""
        first = self.start + self.jump * index
        return first, first + self.size - 1

    def center(self, index: int = 0) -> float:
        """Input coordinate of the centre of unit ``index``'s field."""
        return self.start + self.jump * index + (self.size - 1) / 2

    def extent(self, units: int) -> AxisField:
        """The union over ``units`` consecutive units, as a field every unit sees (jump 0)."""
        last = self.box(max(units, 1) - 1)[1]
        return AxisField(last - self.start + 1, 0, self.start)


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of one output unit: an :class:`AxisField` per spatial axis.

    ``bounds`` holds, per axis, the first and last input pixel that the whole map depends on
    (``None`` where unknown): strided windows that stop short of the end of the image leave
    its last pixels unseen, and no unit's field reaches them. ``exact`` is False where a
    layer's field is no box moving by a fixed jump (adaptive pooling with unequal windows,
    merged branches with different jumps, spatial reshapes); the numbers then bound the field.
    """

    axes: tuple[AxisField, ...]
    exact: bool = True
    bounds: tuple[tuple[int, int], ...] | None = None

    @classmethod
    def identity(cls, ndim: int, spatial: Sequence[int] | None = None) -> ReceptiveField:
        """The field of an input pixel: the pixel itself, on ``ndim`` spatial axes of an image
        of ``spatial`` pixels (when given, the bounds)."""
        bounds = None if spatial is None else tuple((0, int(n) - 1) for n in spatial)
        return cls(tuple(AxisField(1, 1, 0) for _ in range(ndim)), True, bounds)

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    @property
    def jump(self) -> tuple[int, ...]:
        return tuple(a.jump for a in self.axes)

    @property
    def start(self) -> tuple[int, ...]:
        return tuple(a.start for a in self.axes)

    @property
    def is_global(self) -> bool:
        """Every unit sees the same pixels (no spatial axes left)."""
        return all(a.jump == 0 for a in self.axes)

    def window(
        self,
        kernel_size: Sequence[int],
        stride: Sequence[int],
        padding: Sequence[int],
        dilation: Sequence[int],
        units: Sequence[int] | None = None,
    ) -> ReceptiveField:
        """After a convolution or pooling with ``padding`` on the left of each axis and
        ``units`` output positions per axis (to narrow the bounds to what the windows reach)."""
        axes = tuple(
            a.window(k, s, p, d)
            for a, k, s, p, d in zip(self.axes, kernel_size, stride, padding, dilation, strict=True)
        )
        bounds = self.bounds
        if bounds is not None and units is not None:
            bounds = tuple(
                (max(lo, a.box(0)[0]), min(hi, a.box(max(n, 1) - 1)[1]))
                for a, (lo, hi), n in zip(axes, bounds, units, strict=True)
            )
        return ReceptiveField(axes, self.exact, bounds)

    def extent(self, units: Sequence[int]) -> ReceptiveField:
        """The union over every unit of a map with ``units`` positions per axis."""
        axes = tuple(a.extent(n) for a, n in zip(self.axes, units, strict=True))
        return ReceptiveField(axes, self.exact, self.bounds)

    def box(self, index: Sequence[int] | None = None) -> tuple[tuple[int, int], ...]:
        """Per axis, the first and last input pixel seen by the unit at ``index`` (default 0),
        padding included."""
        if index is None:
            index = (0,) * len(self.axes)
        return tuple(a.box(i) for a, i in zip(self.axes, index, strict=True))

    def clipped_box(
        self, index: Sequence[int], input_shape: Sequence[int]
    ) -> tuple[tuple[int, int], ...]:
        """:meth:`box` cut to the image ``[0, n − 1]`` of each axis and to the bounds: the
        pixels that unit ``index`` depends on, what a probe measures."""
        bounds = self.bounds or tuple((0, n - 1) for n in input_shape)
        return tuple(
            (max(lo, 0, b_lo), min(hi, n - 1, b_hi))
            for (lo, hi), n, (b_lo, b_hi) in zip(self.box(index), input_shape, bounds,
                                                 strict=True)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": list(self.size),
            "jump": list(self.jump),
            "start": list(self.start),
            "exact": self.exact,
            "bounds": None if self.bounds is None else [list(b) for b in self.bounds],
        }

    def __repr__(self) -> str:
        exact = "" if self.exact else ", exact=False"
        return f"ReceptiveField(size={self.size}, jump={self.jump}, start={self.start}{exact})"


def merge_fields(
    branches: Sequence[tuple[ReceptiveField, Sequence[int]]], units: Sequence[int]
) -> ReceptiveField:
    """The field where branches meet element-wise (``+``, ``*``, ``cat`` along channels).

    ``branches`` holds ``(field, spatial shape)`` pairs broadcast to ``units`` positions per
    axis. Per axis the result is the union of the branches' boxes: a branch as long as the
    output brings a box that moves with the unit; a broadcast branch (length 1) or a global
    one brings a fixed box. The union is exact when the moving boxes share one jump and the
    fixed boxes cover all the moving ones within the bounds (then every unit sees the fixed
    box: a global field), or there are no fixed boxes. The bounds are the union of the
    branches' bounds.
    """
    if len(branches) == 1 and tuple(branches[0][1]) == tuple(units):
        return branches[0][0]
    exact = all(field.exact for field, _ in branches)
    all_bounds = [field.bounds for field, _ in branches]
    bounds = None
    if all(b is not None for b in all_bounds):
        bounds = tuple(
            (min(b[axis][0] for b in all_bounds if b is not None),
             max(b[axis][1] for b in all_bounds if b is not None))
            for axis in range(len(units))
        )
    axes = []
    for axis, n in enumerate(units):
        moving: list[AxisField] = []
        fixed: list[tuple[int, int]] = []
        for field, shape in branches:
            a = field.axes[axis]
            if a.jump == 0 or (shape[axis] == 1 and n > 1):
                fixed.append(a.box(0))
            elif shape[axis] == n:
                moving.append(a)
            else:  # lengths that don't broadcast: positions were rearranged
                exact = False
                fixed.append(a.extent(shape[axis]).box(0))
        if not moving:
            lo, hi = min(b[0] for b in fixed), max(b[1] for b in fixed)
            axes.append(AxisField(hi - lo + 1, 0, lo))
            continue
        jumps = {a.jump for a in moving}
        jump = max(jumps)
        exact = exact and len(jumps) == 1
        lo = min(a.start for a in moving)
        hi = max(a.start + a.size - 1 for a in moving)
        if fixed:
            fixed_lo, fixed_hi = min(b[0] for b in fixed), max(b[1] for b in fixed)
            seen_lo, seen_hi = lo, hi + jump * (n - 1)
            if bounds is not None:
                seen_lo, seen_hi = max(seen_lo, bounds[axis][0]), min(seen_hi, bounds[axis][1])
            if fixed_lo <= seen_lo and fixed_hi >= seen_hi:
                axes.append(AxisField(fixed_hi - fixed_lo + 1, 0, fixed_lo))
                continue
            exact = False
            lo, hi = min(lo, fixed_lo), max(hi, fixed_hi)
        axes.append(AxisField(hi - lo + 1, jump, lo))
    return ReceptiveField(tuple(axes), exact, bounds)


# ----- window geometry of the rules ------------------------------------------------------------
def _pool_settings(pool: Module, nd: int) -> tuple[tuple[int, ...], ...]:
    """A pooling layer's ``(kernel, stride, padding, dilation)`` as ``nd``-tuples, read as the
    layer itself reads them (:func:`wally._windows.pool_settings`, checked at construction)."""
    return pool_settings(type(pool).__name__, nd, pool.kernel_size, pool.stride, pool.padding,
                         getattr(pool, "dilation", 1))


def _adaptive(field: ReceptiveField, spatial: Sequence[int], out: Sequence[int]) -> ReceptiveField:
    """Adaptive pooling: window ``i`` covers ``[⌊i·n/o⌋, ⌈(i + 1)·n/o⌉)``. Equal windows
    (``o`` divides ``n``) are one plain window ``k = s = n/o``. Unequal ones are bounded by
    stride ``⌊n/o⌋`` and the smallest kernel that still covers every window,
    ``max_i ⌈(i + 1)·n/o⌉ − i·⌊n/o⌋``, and marked inexact."""
    kernel, stride = [], []
    exact = field.exact
    for n, o in zip(spatial, out, strict=True):
        if n % o == 0:
            kernel.append(n // o)
            stride.append(n // o)
        else:
            step = max(n // o, 1)
            windows = adaptive_windows(n, o)
            kernel.append(max(stop - i * step for i, (_, stop) in enumerate(windows)))
            stride.append(step)
            exact = False
    pooled = field.window(kernel, stride, (0,) * len(out), (1,) * len(out), out)
    return ReceptiveField(pooled.axes, exact, pooled.bounds)


def _normalised(field: ReceptiveField, spatial: Sequence[int], nd: int,
                spans: int) -> ReceptiveField:
    """Layer, group and instance norm (layersB): every unit is divided by statistics over its
    sample's whole row, so along each spatial axis the row covers (the last ``spans`` axes) a
    unit sees the whole input extent, as after global pooling; the other axes keep their
    field. (Batch norm is left element-wise: in evaluation its statistics are constants.)"""
    axes = tuple(
        a.extent(n) if nd - i <= spans else a
        for i, (a, n) in enumerate(zip(field.axes, spatial, strict=True))
    )
    return ReceptiveField(axes, field.exact, field.bounds)


def _moves_spatial(axes: Any, rank: int, nd: int) -> bool:
    if axes is None:  # roll without dims: over the flattened tensor
        return True
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    return any(a % rank >= rank - nd for a in axes)


def _collapse(
    known: Sequence[tuple[ReceptiveField, Sequence[int]]], nd: int, exact: bool
) -> ReceptiveField:
    fields = [(f.extent(_spatial(sh, nd) or (1,) * nd), (1,) * nd) for f, sh in known]
    merged = merge_fields(fields, (1,) * nd)
    return ReceptiveField(merged.axes, merged.exact and exact, merged.bounds)


# ----- layersA: transposed convolution, upsampling, pixel shuffles, unpooling ---------------
# An axis upsampled by an integer factor f (a transposed convolution with stride f, nearest or
# linear interpolation to f times the size, a pixel shuffle by f) has output unit o read the
# input units in [o/f + lo, o/f + hi] for constants lo ≤ hi of the layer.  In image pixels that
# is a box moving by j/f per unit: where f divides the input's jump j,
#     j_out = j/f,   start_out = start + ⌊j·lo⌋,   r_out = r + ⌈j·hi⌉ − ⌊j·lo⌋,
# a bound (the window's first tap depends on o mod f), exact only for f = 1.  A transposed
# convolution of kernel k, stride s, padding p and dilation d has lo = (p − d(k − 1))/s and
# hi = p/s: with s = 1 it is the convolution with padding d(k − 1) − p.  Where f does not divide
# j (or the scale is no integer) every unit is given the union of all units (inexact).
def _spread(
    field: ReceptiveField,
    spatial_in: Sequence[int],
    factors: Sequence[int],
    lows: Sequence[Fraction],
    highs: Sequence[Fraction],
) -> ReceptiveField:
    axes = []
    exact = field.exact
    for a, n, f, lo, hi in zip(field.axes, spatial_in, factors, lows, highs, strict=True):
        if f < 1 or a.jump % f:
            axes.append(a.extent(n))
            exact = False
            continue
        first, last = math.floor(a.jump * lo), math.ceil(a.jump * hi)
        axes.append(AxisField(a.size + last - first, a.jump // f, a.start + first))
        exact = exact and f == 1
    return ReceptiveField(tuple(axes), exact, field.bounds)


def _taps_window(mode: str) -> tuple[Fraction, Fraction, int]:
    """For interpolation: ``(lo, hi)`` around ``x = (o + ½)/f − ½`` and the taps ``T``."""
    half = Fraction(1, 2)
    if mode == "nearest-exact":
        return -half, half, 1
    if mode == "bicubic":
        return Fraction(-2), Fraction(2), 4
    return Fraction(-1), Fraction(1), 2


def _interpolated(
    field: ReceptiveField, mode: str, align_corners: bool, spatial_in: Sequence[int],
    spatial_out: Sequence[int],
) -> ReceptiveField:
    """Interpolation by integer factors: up by ``f`` is a spread (see above), down by ``m`` a
    window of ``T`` taps with stride ``m`` (exact for nearest, a bound otherwise)."""
    nd = len(field.axes)
    ups = [o // n if o % n == 0 else 0 for n, o in zip(spatial_in, spatial_out, strict=True)]
    downs = [n // o if n % o == 0 else 0 for n, o in zip(spatial_in, spatial_out, strict=True)]
    if mode == "area":
        return _adaptive(field, spatial_in, spatial_out)
    if align_corners and any(n != o for n, o in zip(spatial_in, spatial_out, strict=True)):
        return _spread(field, spatial_in, [0] * nd, [Fraction(0)] * nd, [Fraction(0)] * nd)
    if all(m >= 1 for m in downs) and any(m > 1 for m in downs):
        if mode == "nearest":
            return field.window((1,) * nd, downs, (0,) * nd, (1,) * nd, spatial_out)
        if mode == "nearest-exact":
            pads = [-(m // 2) for m in downs]
            return field.window((1,) * nd, downs, pads, (1,) * nd, spatial_out)
        taps = _taps_window(mode)[2]
        pads = [taps // 2 - 1 - (m - 1) // 2 for m in downs]
        windowed = field.window((taps,) * nd, downs, pads, (1,) * nd, spatial_out)
        return ReceptiveField(windowed.axes, False, windowed.bounds)
    if mode == "nearest":
        lows = [Fraction(1, f) - 1 if f else Fraction(0) for f in ups]
        return _spread(field, spatial_in, ups, lows, [Fraction(0)] * nd)
    lo, hi, _ = _taps_window(mode)
    centre = [Fraction(1, 2 * f) - Fraction(1, 2) if f else Fraction(0) for f in ups]
    spread = _spread(field, spatial_in, ups, [c + lo for c in centre], [c + hi for c in centre])
    return ReceptiveField(spread.axes, False, spread.bounds)


def _transposed(
    field: ReceptiveField, spatial_in: Sequence[int], kernel: Sequence[int],
    stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int],
) -> ReceptiveField:
    lows = [Fraction(p - d * (k - 1), s)
            for k, s, p, d in zip(kernel, stride, padding, dilation, strict=True)]
    highs = [Fraction(p, s) for p, s in zip(padding, stride, strict=True)]
    return _spread(field, spatial_in, stride, lows, highs)


def _shuffled(field: ReceptiveField, spatial_in: Sequence[int], factor: int,
              inverse: bool, units: Sequence[int]) -> ReceptiveField:
    """Pixel shuffle by ``r``: output row ``h`` reads input row ``⌊h/r⌋`` (a spread); pixel
    unshuffle: an ``r × r`` block, the window ``k = s = r`` (exact)."""
    nd = len(field.axes)
    if inverse:
        return field.window((factor,) * nd, (factor,) * nd, (0,) * nd, (1,) * nd, units)
    lows = [Fraction(1, factor) - 1] * nd
    return _spread(field, spatial_in, (factor,) * nd, lows, [Fraction(0)] * nd)


# ----- the rules, one per node class ----------------------------------------------------------
# A layer's field is what its autograd nodes do to its input's (the tracer records a frozen
# layer's nodes too), so a convolution's window is applied by one rule, whichever layer or
# function called it, and a layer with padding_mode='reflect' is its pad node and its conv
# node. A node rule reads one :class:`_Site`. A rule returns None where it does not apply (an
# unbatched input, a permute that keeps the spatial axes); the node is then taken as
# element-wise where the shapes allow (:func:`merge_fields`), else as a reduction
# (:func:`_collapse`). The lookup walks the MRO, so a subclass of a node gets its base's rule; a
# node class without any rule (an op wally doesn't know) is taken the same way but warned
# about and marked inexact (``~``).
NodeFieldRule = Callable[["_Site"], "ReceptiveField | None"]
NODE_FIELDS: Rules[NodeFieldRule] = Rules("wally.analysis.receptive_field")


@dataclass(frozen=True)
class _Site:
    """What a node rule reads: the node, its output's shape, the ``(field, shape)`` of its
    inputs that depend on the image (``known``; the first is ``field`` and ``shape``)."""

    node: Any
    output_shape: tuple[int, ...]
    known: list[tuple[ReceptiveField, Sequence[int]]]
    first_known: bool  # the node's first input depends on the image

    @property
    def field(self) -> ReceptiveField:
        return self.known[0][0]

    @property
    def nd(self) -> int:
        return len(self.field.axes)

    @property
    def spatial_in(self) -> tuple[int, ...] | None:
        return _spatial(self.known[0][1], self.nd)

    @property
    def spatial_out(self) -> tuple[int, ...] | None:
        return _spatial(self.output_shape, self.nd)

    @property
    def same_rank(self) -> bool:
        """Input and output are both batched maps ``(N, C, *spatial)``."""
        return len(self.known[0][1]) == len(self.output_shape) == self.nd + 2

    @property
    def windowed(self) -> bool:
        """A window may apply: the same rank, and the image enters as the first input."""
        return self.same_rank and self.first_known


def _spatial(shape: Sequence[int], nd: int) -> tuple[int, ...] | None:
    """The last ``nd`` axes of a batched ``(N, C, *spatial)`` shape; None when it has fewer."""
    return tuple(shape[-nd:]) if len(shape) >= nd + 2 else None


def _generic(site: _Site, exact: bool = True) -> ReceptiveField:
    """Element-wise where every input's spatial shape broadcasts to the output's: the union
    of the inputs' fields; else (reductions, flattening, crops) one field for every unit, the
    union over all positions (a bound unless ``exact``)."""
    nd, spatial_out = site.nd, site.spatial_out
    if spatial_out is not None and all(
        (s := _spatial(sh, nd)) is not None and all(m in (n, 1) for m, n in zip(s, spatial_out))
        for _, sh in site.known
    ):
        return merge_fields([(f, _spatial(sh, nd) or ()) for f, sh in site.known], spatial_out)
    return _collapse(site.known, nd, exact)


def _shapes_decide(site: _Site) -> None:
    return None


NODE_FIELDS.register(
    # element-wise, reductions and reshapes: the generic rule decides from the shapes
    ops.Abs, ops.Add, ops.Amax, ops.Cast, ops.Cat, ops.Clamp, ops.ClampTensor, ops.Clone,
    ops.CopyInto, ops.Cos, ops.Div, ops.DivRounding, ops.Exp, ops.Expand, ops.Fill, ops.Log,
    ops.MatMul, ops.MaxDim, ops.Maximum, ops.Mean, ops.Mul, ops.Neg, ops.Pow, ops.PowScalar,
    ops.ReLU, ops.Repeat, ops.Reshape, ops.SetItem, ops.Sigmoid, ops.Sin, ops.Sqrt, ops.Stack,
    ops.Sub, ops.Sum, ops.Tanh, ops.Where,
    ops_math.Rounding, ops_math.Ceil, ops_math.Floor, ops_math.Round, ops_math.Trunc,
    ops_math.Cosh, ops_math.Sinh, ops_math.Erf, ops_math.Softmax, ops_math.LogSoftmax,
    ops_math.LogSumExp, ops_math.PReLU, ops_math.Prod,
    ops_shape.Diag, ops_shape.Triangle, ops_index.MaskedFill, linalg.SingularNorm,
    linalg.VectorNorm,
    activation.GELU, activation.LeakyReLU, activation.Softplus,
    activation_extra.ELU, activation_extra.GLU, activation_extra.Hardsigmoid,
    activation_extra.Hardswish, activation_extra.Hardtanh, activation_extra.LogSigmoid,
    activation_extra.Mish, activation_extra.SiLU, activation_extra.Softmin,
    activation_extra.Softsign, activation_extra.Threshold,
    norm.BatchNorm,  # in evaluation its statistics are constants
    normalization.LocalResponseNorm, MaskedDropout, DropoutNode, LinearNode,
    sparse.Embedding, sparse.OneHot, upsampling.ChannelShuffle, MaxOverTime, PadSequence,
    SparseDenseProduct,
    loss.BCE, loss.BCEWithLogits, loss.CrossEntropy, loss.CrossEntropyProbs, loss.NLLLoss,
    loss.PointwiseLoss, loss_regression.ElementwiseLoss, loss_regression.GaussianNLL,
    loss_regression.KLDiv, loss_regression.PoissonNLL, loss_regression.SmoothL1,
    loss_margin.PairwiseDistance, loss_margin.SoftMargin,
)(_shapes_decide)


@NODE_FIELDS.register(ops.GetItem, conv.Unfold, conv.Fold)
def _crop_node(site: _Site) -> ReceptiveField:
    """Indexing, unfold and fold: element-wise where the shapes allow, else a bound."""
    return _generic(site, exact=False)



@NODE_FIELDS.register(conv.ConvNd)
def _conv_node(site: _Site) -> ReceptiveField | None:
    node = site.node
    if not site.windowed or node.inputs[1].ndim != site.nd + 2:
        return None
    kernel = tuple(node.inputs[1].shape[2:])
    pads = [lo for lo, _ in node.padding]
    return site.field.window(kernel, node.stride, pads, node.dilation, site.spatial_out)



@NODE_FIELDS.register(pool.MaxPoolNd, pool.AvgPoolNd)
def _pool_node(site: _Site) -> ReceptiveField | None:
    win = site.node.windows
    if not site.windowed or len(win.kernel) != site.nd:
        return None
    return site.field.window(win.kernel, win.stride, win.padding, win.dilation,
                             site.spatial_out)



@NODE_FIELDS.register(pool.AdaptiveAvgPoolNd, pool.AdaptiveMaxPoolNd)
def _adaptive_node(site: _Site) -> ReceptiveField | None:
    if not site.windowed:
        return None
    assert site.spatial_in is not None and site.spatial_out is not None
    return _adaptive(site.field, site.spatial_in, site.spatial_out)



@NODE_FIELDS.register(conv_transpose.ConvTransposeNd)
def _conv_transpose_node(site: _Site) -> ReceptiveField | None:
    node = site.node
    if not site.windowed or len(node.stride) != site.nd:
        return None
    assert site.spatial_in is not None
    kernel = tuple(node.inputs[1].shape[2:])
    pads = [lo for lo, _ in node.pairs]
    return _transposed(site.field, site.spatial_in, kernel, node.stride, pads, node.dilation)



@NODE_FIELDS.register(pool.MaxUnpoolNd)
def _unpool_node(site: _Site) -> ReceptiveField | None:
    node, nd = site.node, site.nd
    if not site.windowed or len(node.kernel) != nd:
        return None
    assert site.spatial_in is not None
    return _transposed(site.field, site.spatial_in, node.kernel, node.stride, node.padding,
                       (1,) * nd)



@NODE_FIELDS.register(upsampling.Interpolate)
def _interpolate_node(site: _Site) -> ReceptiveField | None:
    node, nd = site.node, site.nd
    if not site.windowed:
        return None
    assert site.spatial_in is not None and site.spatial_out is not None
    if getattr(node, "antialias", False):  # a wide filter: the union
        return _spread(site.field, site.spatial_in, [0] * nd, [Fraction(0)] * nd,
                       [Fraction(0)] * nd)
    if len(node.plans) != nd:
        return None
    return _interpolated(site.field, node.mode, node.align_corners, site.spatial_in,
                         site.spatial_out)



@NODE_FIELDS.register(upsampling.PixelShuffle)
def _shuffle_node(site: _Site) -> ReceptiveField | None:
    if not site.windowed or site.nd != 2:
        return None
    assert site.spatial_in is not None and site.spatial_out is not None
    return _shuffled(site.field, site.spatial_in, site.node.factor, site.node.inverse,
                     site.spatial_out)


@NODE_FIELDS.register(padding.Pad)
def _pad_node(site: _Site) -> ReceptiveField | None:
    if not site.windowed:
        return None
    field, nd = site.field, site.nd
    pads = ([0] * nd + [lo for lo, _ in site.node.pairs])[-nd:]
    axes = tuple(AxisField(a.size, a.jump, a.start - p * a.jump)
                 for a, p in zip(field.axes, pads, strict=True))
    return ReceptiveField(axes, field.exact, field.bounds)


@NODE_FIELDS.register(ops.Permute)
def _permute_node(site: _Site) -> ReceptiveField | None:
    rank, nd = len(site.output_shape), site.nd
    if site.windowed and tuple(a % rank for a in site.node.axes[-nd:]) != tuple(
            range(rank - nd, rank)):
        return _collapse(site.known, nd, exact=False)
    return None


@NODE_FIELDS.register(ops.Flip)
def _flip_node(site: _Site) -> ReceptiveField | None:
    rank = len(site.output_shape)
    if site.windowed and any(a % rank >= rank - site.nd for a in site.node.axes):
        return _collapse(site.known, site.nd, exact=False)
    return None


@NODE_FIELDS.register(ops_math.Einsum)
def _einsum_node(site: _Site) -> ReceptiveField | None:
    return _collapse(site.known, site.nd, exact=False) if site.windowed else None


def _moving(attribute: str) -> NodeFieldRule:
    """Ops that move values between the positions of the axes in ``node.<attribute>``: where
    those are spatial, a bound over all positions."""
    def rule(site: _Site) -> ReceptiveField | None:
        rank = len(site.output_shape)
        if site.windowed and _moves_spatial(getattr(site.node, attribute), rank, site.nd):
            return _collapse(site.known, site.nd, exact=False)
        return None

    return rule


NODE_FIELDS.register(ops_shape.Roll, ops_shape.Rot90)(_moving("axes"))
NODE_FIELDS.register(ops_math.CumSum, ops_math.CumProd, ops_index.Gather,
                     ops_index.SortedGather, ops_index.Scatter,
                     ops_index.IndexSelect)(_moving("axis"))


@NODE_FIELDS.register(normalization.RowNorm)
def _row_norm_node(site: _Site) -> ReceptiveField | None:
    if not site.same_rank or site.spatial_in is None:
        return None
    return _normalised(site.field, site.spatial_in, site.nd, site.node.spans)


# ----- the two entry points -----------------------------------------------------------------
def module_receptive_field(
    module: Module, field: ReceptiveField, input_shape: Sequence[int],
    output_shape: Sequence[int] | None = None,
) -> ReceptiveField | None:
    """The output field of one call of ``module`` (in its current mode) on an input of
    ``input_shape`` ``(N, C, *spatial)`` whose field is ``field``: one forward pass on a
    random input, recorded by :func:`wally.tracing.record_calls`, through its nodes' rules
    (what the summary reads for the layer). The module's buffers and wally's random state
    are left as they were; ``output_shape``, if given, is checked against the call's.

    Example::

        >>> x = ReceptiveField.identity(2, (28, 28))
        >>> module_receptive_field(nn.Conv2d(1, 6, 5, padding=2), x, (1, 1, 28, 28)).size
        (5, 5)
    """
    inputs, output, calls = record_one_call(module, input_shape, output_shape,
                                            "module_receptive_field")
    return Fields(calls, inputs, start=[field]).of(output)


def node_receptive_field(
    node: Any,
    output_shape: Sequence[int],
    inputs: Sequence[tuple[ReceptiveField, Sequence[int]] | None],
) -> ReceptiveField:
    """The field of the output of the autograd node ``node`` (a :class:`wally.autograd.Function`)
    from its inputs' ``(field, shape)`` pairs (``None`` for inputs that don't depend on the
    image: parameters and constants; at least one must).

    Convolution, pooling and padding nodes (``F.conv2d``, ``F.max_pool2d``, ``F.pad`` called in
    a ``forward``) apply their window or shift. Nodes whose output keeps the spatial shape of
    their inputs, up to broadcasting, are element-wise: the union of the inputs' fields
    (:func:`merge_fields`). Anything else reduces, flattens or rearranges the spatial axes:
    every output unit then sees the union over all input units. A node class with no rule in
    :data:`NODE_FIELDS` is taken the same way, with a warning, and its field marked inexact.
    """
    known = [item for item in inputs if item is not None]
    site = _Site(node, tuple(output_shape), known, inputs[0] is not None)
    rule = NODE_FIELDS.find(node)
    if rule is None:
        cls = type(node)
        warnings.warn(
            f"receptive_field: no rule for the op {cls.__module__}.{cls.__qualname__}; its "
            "field is taken from the shapes (element-wise or a reduction) and marked inexact "
            "(~). Register one with wally.analysis.receptive_field.NODE_FIELDS.register",
            stacklevel=2,
        )
        guess = _generic(site)
        return ReceptiveField(guess.axes, False, guess.bounds)
    return rule(site) or _generic(site)


# ----- the pass over a recorded forward pass -------------------------------------------------
class Fields:
    """The receptive field of every tensor of a forward pass recorded by
    :func:`wally.tracing.record_calls`, from the model inputs' through the rules of the
    autograd nodes (each input's field is the identity on its spatial axes, or ``start``'s)."""

    def __init__(self, calls: CallTrace, inputs: Sequence[Tensor],
                 start: Sequence[ReceptiveField | None] | None = None) -> None:
        self.fields: dict[int, ReceptiveField | None] = {}
        self.alive: list[Tensor] = []  # keeps every tensor whose id is a key above alive
        for k, x in enumerate(inputs):
            spatial = tuple(x.shape[2:])
            identity = ReceptiveField.identity(len(spatial), spatial) if spatial else None
            self.fields[id(x)] = identity if start is None else start[k]
            self.alive.append(x)
        for call in calls.finished:  # inner calls first, as their hooks ran
            for t in call.outputs:
                self.of(t)

    def of(self, t: Tensor) -> ReceptiveField | None:
        """The receptive field of tensor ``t``, from the graph (each node after its inputs)."""
        if id(t) not in self.fields:
            for u in post_order([t], self._unknown_inputs):  # inputs first
                self.fields[id(u)] = self._node_field(u)
                self.alive.append(u)
        return self.fields[id(t)]

    def _unknown_inputs(self, t: Tensor) -> list[Tensor]:
        node = t._ctx
        return [] if node is None else [x for x in node.inputs or ()
                                        if x is not None and id(x) not in self.fields]

    def _node_field(self, u: Tensor) -> ReceptiveField | None:
        node = u._ctx
        if node is None:
            return None
        known: list[tuple[ReceptiveField, Sequence[int]] | None] = []
        for x in node.inputs or ():
            field = None if x is None else self.fields.get(id(x))
            known.append(None if x is None or field is None else (field, tuple(x.shape)))
        if all(k is None for k in known):
            return _token_positions(node, u)
        return node_receptive_field(node, tuple(u.shape), known)



def _token_positions(node: Any, out: Tensor) -> ReceptiveField | None:
    """A text model's first field: embedded tokens ``(N, L, E)`` moved to ``(N, E, L)``, the
    layout ``Conv1d`` takes, where position ``t`` sees token ``t`` (token ids themselves have
    no spatial axis in ``(N, C, *spatial)``); None for any other node."""
    if not isinstance(node, ops.Permute) or out.ndim != 3 or tuple(
            a % 3 for a in node.axes) != (0, 2, 1):
        return None
    source = node.inputs[0] if node.inputs else None
    if not isinstance(getattr(source, "_ctx", None), sparse.Embedding):
        return None
    return ReceptiveField.identity(1, (int(out.shape[2]),))


# ----- the probe ----------------------------------------------------------------------------
def _centre_unit(output_shape: Sequence[int], nd: int) -> tuple[int, ...]:
    """The centre unit of a map, ``(n − 1) // 2`` per spatial axis (0 without spatial axes)."""
    spatial = _spatial(output_shape, nd)
    return (0,) * nd if spatial is None else tuple((n - 1) // 2 for n in spatial)


def _output_of(model: Module, layer: str | Module | None, x: Tensor) -> Tensor:
    """``model(x)``'s output, or that of its sub-module ``layer`` (a dotted name as in
    ``named_modules`` or the module itself) during the call; the first tensor of a tuple."""
    if layer is None:
        out = model(x)
        return out[0] if isinstance(out, tuple | list) else out
    target = model.get_submodule(layer) if isinstance(layer, str) else layer
    captured: list[Any] = []

    def keep(module: Module, args: Any, output: Any) -> None:
        if not captured:
            captured.append(output[0] if isinstance(output, tuple | list) else output)

    with target.register_forward_hook(keep):
        model(x)
    if not captured or not isinstance(captured[0], Tensor):
        raise ValueError(f"input_gradient: layer {layer!r} was not called by the model's forward")
    return captured[0]


def input_gradient(
    model: Module,
    x: Tensor,
    layer: str | Module | None = None,
    unit: Sequence[int] | None = None,
    channel: int | None = None,
) -> ndarray:
    """∂(one output unit)/∂x for batch element 0.

    The unit is ``unit`` (a spatial index; default the centre) of ``layer``'s output
    (default the model's output), summed over its channels unless ``channel`` picks one.
    The gradient's magnitude is the *effective* receptive field; it vanishes outside the
    analytic one. Parameters' ``.grad`` are left as they were found (``None``).

    Shape:
        ``x``: ``(N, C, *spatial)``; returns an array of the same shape.

    Example::

        >>> g = input_gradient(net, wally.randn(1, 1, 28, 28), layer="5")
        >>> g.shape
        wally.Size([1, 1, 28, 28])
    """
    nd = x.ndim - 2
    leaf = Tensor(xp.array(x.array), requires_grad=True)
    saved = [p.grad for p in model.parameters()]
    try:
        with enable_grad():
            out = _output_of(model, layer, leaf)
            index = tuple(unit) if unit is not None else _centre_unit(out.shape, nd)
            seed = xp.zeros(out.shape, dtype=out.dtype)
            picked: Any = slice(None) if channel is None else channel
            if _spatial(out.shape, nd) is not None:
                seed[(0, picked) + index] = 1
            else:
                seed[(0, picked)] = 1
            out.backward(seed)
    finally:
        for p, grad in zip(model.parameters(), saved, strict=True):
            p.grad = grad
    assert leaf.grad is not None
    return leaf.grad.array


class _WindowSum(Module):
    """Stands in for max-pooling in the probe: the sum over the same windows, a depthwise
    convolution with a kernel of ones, the pooling's padding and dilation, and the extra
    right padding that ``ceil_mode`` implies; every pixel of a window gets a gradient."""

    def __init__(self, pool: Module) -> None:
        super().__init__()
        nd = pool._nd
        self.nd = nd
        self.kernel, self.stride, self.padding, self.dilation = _pool_settings(pool, nd)
        self.ceil_mode = bool(pool.ceil_mode)

    def forward(self, x: Tensor) -> Tensor:
        right = []
        for n, k, s, p, d in zip(
            x.shape[2:], self.kernel, self.stride, self.padding, self.dilation, strict=True
        ):
            ceil = output_size(n, k, s, 2 * p, d, self.ceil_mode, p)
            extra = ceil - output_size(n, k, s, 2 * p, d)
            right.append(p + extra * s)
        pad: list[int] = []
        for p, r in zip(reversed(self.padding), reversed(right), strict=True):
            pad += [p, r]
        ones = Tensor(xp.ones((x.shape[1], 1, *self.kernel), dtype=x.dtype))
        conv = (F.conv1d, F.conv2d, F.conv3d)[self.nd - 1]
        return conv(F.pad(x, pad), ones, None, self.stride, 0, self.dilation, x.shape[1])


def _positive_copy(model: Module) -> Module:
    """A float64 copy of ``model`` in evaluation mode whose gradients show its fields:
    parameters drawn from ``[0.5, 1]/fan_in`` (positive, so nothing cancels; scaled so deep
    models neither overflow nor underflow), batch norm statistics ``(0, 1)``, and max-pooling
    replaced by window sums (max-pooling passes a gradient to one pixel per window only)."""
    probe = copy.deepcopy(model).to(xp.float64)
    probe.eval()
    probe.requires_grad_(False)  # only the input's gradient is wanted
    rng = xp.random.default_rng(0)
    for p in probe.parameters():
        fan_in = math.prod(p.shape[1:]) if p.ndim > 1 else 1
        p.array[...] = rng.uniform(0.5, 1.0, p.shape) / fan_in
    for name, buffer in probe.named_buffers():
        if name.endswith("running_mean"):
            buffer.array[...] = 0
        elif name.endswith("running_var"):
            buffer.array[...] = 1
    for parent in list(probe.modules()):
        for child_name, child in list(parent._modules.items()):
            if isinstance(child, _MAX_POOLS):
                parent._modules[child_name] = _WindowSum(child)
            elif isinstance(child, _ADAPTIVE_MAX):
                parent._modules[child_name] = _ADAPTIVE_AVG[child._nd - 1](child.output_size)
    return probe


def probe_receptive_fields(
    model: Module,
    input_size: Sequence[int],
    layers: Sequence[str] | None = None,
    units: dict[str, Sequence[int]] | None = None,
) -> dict[str, tuple[tuple[int, int], ...]]:
    """The receptive field measured by back-propagation, for many layers at once: per layer
    (a dotted name as in ``named_modules``; default every module that returns a tensor,
    ``""`` being the model), per spatial axis, the first and last input pixel whose gradient
    is non-zero for one unit of the layer's (first call's) output: ``units[name]`` if given,
    else the centre unit.

    The model is copied and made *positive* so that no gradient cancels or is cut: positive
    parameters, batch norm at zero mean and unit variance, an input of ones (so every ReLU
    passes: nonlinearities are bypassed without touching the model's code), and max-pooling
    replaced by sums over the same windows. One forward pass, then one backward pass per
    layer. Each box must equal the analytic field of the layer's centre unit cut to the image,
    :meth:`ReceptiveField.clipped_box`.

    Limits: a max-pooling called as ``F.max_pool2d`` in a ``forward`` can't be swapped (its
    gradient reaches one pixel per window); where strides and dilation leave holes in a
    field, a hull edge cut by the image border may land on a hole.

    ``input_size`` is ``(C, *spatial)``.

    Example::

        >>> probe_receptive_fields(wally.models.lenet(), (1, 28, 28), ["0", "5"])
        {'0': ((11, 15), (11, 15)), '5': ((6, 21), (6, 21))}
    """
    probe = _positive_copy(model)
    modules = dict(probe.named_modules())
    names = list(modules) if layers is None else list(layers)
    for name in names:
        if name not in modules:
            raise ValueError(f"probe_receptive_fields: the model has no layer named {name!r}")
    captured: dict[str, Tensor] = {}
    handles = []
    for name in names:

        def keep(module: Module, args: Any, output: Any, name: str = name) -> None:
            first = output[0] if isinstance(output, tuple | list) else output
            if name not in captured and isinstance(first, Tensor):
                captured[name] = first

        handles.append(modules[name].register_forward_hook(keep))
    nd = len(input_size) - 1
    x = Tensor(xp.ones((1, *input_size), dtype=xp.float64), requires_grad=True)
    try:
        with enable_grad():
            probe(x)
            boxes: dict[str, tuple[tuple[int, int], ...]] = {}
            for name in names:
                out = captured.get(name)
                if out is None or not out.requires_grad:
                    continue
                x.grad = None
                seed = xp.zeros(out.shape, dtype=out.dtype)
                if _spatial(out.shape, nd) is not None:
                    unit = (units or {}).get(name) or _centre_unit(out.shape, nd)
                    where: tuple[Any, ...] = (0, slice(None)) + tuple(unit)
                    seed[where] = 1
                else:
                    seed[0] = 1
                out.backward(seed, retain_graph=True)
                assert x.grad is not None
                boxes[name] = _support_box(x.grad.array[0], nd)
    finally:
        for handle in handles:
            handle.remove()
    return boxes


def _support_box(grad: ndarray, nd: int) -> tuple[tuple[int, int], ...]:
    """Per spatial axis of a ``(C, *spatial)`` gradient, the first and last non-zero index."""
    support = xp.abs(grad).sum(axis=0) > 0
    box = []
    for axis in range(nd):
        others = tuple(a for a in range(nd) if a != axis)
        hits = xp.nonzero(support.any(axis=others) if others else support)[0]
        if hits.size == 0:
            raise ValueError("probe_receptive_field: the output unit does not depend on the input")
        box.append((int(hits[0]), int(hits[-1])))
    return tuple(box)


def probe_receptive_field(
    model: Module,
    input_size: Sequence[int],
    layer: str | Module | None = None,
    unit: Sequence[int] | None = None,
) -> tuple[tuple[int, int], ...]:
    """:func:`probe_receptive_fields` for one layer (a dotted name or the module itself;
    default the model's output): the measured field of unit ``unit`` (a spatial index;
    default the centre), per spatial axis.

    Example::

        >>> probe_receptive_field(wally.models.lenet(), (1, 28, 28), layer="5")
        ((6, 21), (6, 21))
    """
    name = ""
    if isinstance(layer, Module):
        names = {id(m): n for n, m in model.named_modules()}
        if id(layer) not in names:
            raise ValueError("probe_receptive_field: layer is not a module of the model")
        name = names[id(layer)]
    elif layer is not None:
        name = layer
    boxes = probe_receptive_fields(model, input_size, [name],
                                   None if unit is None else {name: unit})
    if name not in boxes:
        raise ValueError(f"probe_receptive_field: layer {name!r} was not called by the model")
    return boxes[name]


def receptive_field(
    model: Module, input_size: Sequence[int] | None = None, layer: str | None = None
) -> ReceptiveField | None:
    """The analytic receptive field of ``layer``'s output (a dotted name as in
    ``named_modules``; default the model's output) for inputs of ``input_size``
    ``(C, *spatial)`` (default ``model.input_size``). ``None`` when the output doesn't
    depend on the input (or for a layer the forward pass never called). The same field as the
    summary's row of the layer's first call, from one recorded forward pass.

    Example::

        >>> receptive_field(wally.models.lenet(), (1, 28, 28), layer="5")
        ReceptiveField(size=(16, 16), jump=(4, 4), start=(-2, -2))
    """
    name = "" if layer is None else layer
    inputs, _ = example_inputs(model, None if input_size is None else (1, *input_size),
                               caller="receptive_field")
    with modes_kept(model):
        model.eval()
        with record_calls(model) as calls:
            model(*inputs)
    fields = Fields(calls, inputs)
    pending = calls.roots[::-1]
    while pending:  # the calls in the order they began: the first call of ``layer``
        call = pending.pop()
        if call.name == name:
            return fields.fields.get(id(call.outputs[0])) if call.outputs else None
        pending.extend(reversed(call.children))
    module = dict(model.named_modules()).get(name)
    called = {id(p) for m in model.modules() if id(m) in calls.called
              for p in m._parameters.values()}
    if module is not None and any(p is not None and id(p) not in called
                                  for p in module._parameters.values()):
        return None  # a layer with parameters of its own that the forward pass never called
    raise ValueError(f"receptive_field: no layer named {layer!r} was called by the model")
