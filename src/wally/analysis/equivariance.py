"""Translation (and rotation) equivariance, measured layer by layer.

The study note's first principle is translation invariance: Wally is Wally wherever he
stands. A convolution delivers it as *equivariance*: shifting the image shifts the feature
map, ``f(shift(x)) = shift(f(x))``. :func:`equivariance` measures, for every layer,

    ``error = ‖f(T x) − T' f(x)‖ / ‖T' f(x)‖``

where ``T`` transforms the input and ``T'`` is the same transformation in the layer's own
coordinates:

* **shifts** by ``s`` pixels move a layer's output by ``s / jump`` units, ``jump`` being
  its effective stride (the receptive field's jump). When ``jump`` divides ``s`` the
  comparison is exact: stride-1 convolutions give 0 up to rounding, and so do strided
  layers for shifts by multiples of their stride. Otherwise the output can only be
  compared with the nearest whole shift ``round(s / jump)``; the error then measures what
  strides and pooling break. The input is shifted circularly and only *interior* units are
  compared: units whose receptive field, before and after the shift, lies inside the image
  and away from the wrapped strip, so padding and wrap-around play no part.
* **90° turns** ``rot90(x)`` against ``rot90(f(x))``: exact (0 up to rounding) when every
  kernel is unchanged by a quarter turn (:func:`symmetrize_kernels` makes them so), the
  padding is symmetric and the stride grid lands on itself; for learned kernels it
  measures how orientation-specific the features are.
* **small angles** by bilinear resampling (implemented here in NumPy) of the image about
  its centre and of each feature map about the matching point. Only approximate: the
  resampling blurs the input and the maps, so even rotation-symmetric kernels show a small
  error. Units whose field reaches the corners left empty by the rotation are left out.

Layers without spatial axes (after ``Flatten`` or global pooling) are compared directly,
``‖f(T x) − f(x)‖ / ‖f(x)‖``: that is *invariance*, which is what a classifier's output
would ideally have.

Example::

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    >>> report = equivariance(net, wally.randn(1, 1, 32, 32), shifts=[1, 2])
    >>> print(report)      # conv: 0 for both shifts; pooling: > 0 for 1, 0 for 2
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wally import nn
from wally.analysis.receptive_field import ReceptiveField
from wally.analysis.summary import summary
from wally.autograd import no_grad
from wally.backend import ndarray, xp
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = [
    "EquivarianceRow",
    "EquivarianceReport",
    "equivariance",
    "shift",
    "rotate",
    "symmetrize_kernels",
]


@dataclass
class EquivarianceRow:
    """One layer: its relative error under each transformation (``None``: no unit to compare).

    ``kind`` is ``"equivariance"`` for maps with spatial axes and ``"invariance"`` for
    outputs without them. ``aligned`` says, per transformation, whether the layer's grid maps
    onto itself (shift a multiple of the jump; a turn that lands the stride grid on itself),
    which is when an exact 0 is possible.
    """

    name: str
    type: str
    depth: int
    output_shape: tuple[int, ...]
    jump: tuple[int, ...] | None
    kind: str
    errors: dict[str, float | None] = field(default_factory=dict)
    aligned: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "depth": self.depth,
            "output_shape": list(self.output_shape),
            "jump": None if self.jump is None else list(self.jump),
            "kind": self.kind,
            "errors": dict(self.errors),
            "aligned": dict(self.aligned),
        }


@dataclass
class EquivarianceReport:
    """What :func:`equivariance` returns: a row per layer; ``print`` it for the table."""

    model: str
    input_shape: tuple[int, ...]
    transforms: list[str]
    rows: list[EquivarianceRow]

    def row(self, name: str) -> EquivarianceRow:
        """The row of the layer called ``name`` (as in ``named_modules``)."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"equivariance: no layer named {name!r} in the report")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "transforms": list(self.transforms),
            "rows": [r.to_dict() for r in self.rows],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        head = [
            f"{self.model}: input {self.input_shape}; relative error ‖f(T x) − T' f(x)‖ / "
            "‖T' f(x)‖ on interior units",
            "T' = T in the layer's coordinates (a shift by s moves a map with jump J by s/J "
            "units); layers without spatial axes: ‖f(T x) − f(x)‖ / ‖f(x)‖ (invariance)",
            "* = the grid cannot map onto itself (s not a multiple of J, or a turned stride "
            "grid): compared with the nearest whole shift; - = no interior unit",
        ]
        columns = ["Layer", "Output shape", "Jump", *self.transforms]
        table = [columns]
        for r in self.rows:
            jump = "-" if r.jump is None else "x".join(str(j) for j in r.jump)
            cells = [
                "  " * r.depth + r.name.rsplit(".", 1)[-1] + (": " if r.name else "") + r.type,
                "(" + ", ".join(str(n) for n in r.output_shape) + ")",
                jump if r.kind == "equivariance" else "inv",
            ]
            for t in self.transforms:
                error = r.errors.get(t)
                mark = "" if r.aligned.get(t, True) else "*"
                cells.append("-" if error is None else f"{error:.2e}{mark}")
            table.append(cells)
        widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
        lines = [
            "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in table
        ]
        rule = "-" * max(len(line) for line in lines)
        return "\n".join([*head, rule, lines[0], rule, *lines[1:], rule])


# ----- transformations ------------------------------------------------------------------------
def shift(x: ndarray, offsets: Sequence[int]) -> ndarray:
    """Roll the last ``len(offsets)`` axes of ``x`` by ``offsets`` (circular): pixel ``p`` moves
    to ``p + s``."""
    nd = len(offsets)
    return xp.roll(x, tuple(int(s) for s in offsets), axis=tuple(range(x.ndim - nd, x.ndim)))


def rotate(
    x: ndarray, degrees: float, center: Sequence[float] | None = None, fill: float = 0.0
) -> ndarray:
    """Rotate the last two axes of ``x`` by ``degrees`` about ``center`` (default the middle,
    ``((H − 1)/2, (W − 1)/2)``), sampling bilinearly; points that come from outside the
    array get ``fill``.

    Output pixel ``p`` takes the value at ``c + R(−θ)(p − c)``, ``R`` rotating (row, column)
    vectors; a positive angle turns the picture counter-clockwise as displayed with rows
    downwards, like ``numpy.rot90``, which it equals (up to rounding) for multiples of 90°
    about the middle.

    Shape:
        ``(*, H, W)`` in and out.
    """
    height, width = x.shape[-2:]
    cy, cx = ((height - 1) / 2, (width - 1) / 2) if center is None else center
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    rows, cols = xp.meshgrid(xp.arange(height, dtype=xp.float64),
                             xp.arange(width, dtype=xp.float64), indexing="ij")
    dy, dx = rows - cy, cols - cx
    # Counter-clockwise on screen: p takes its value from p − c turned clockwise.
    sy = cy + cos * dy + sin * dx
    sx = cx - sin * dy + cos * dx
    y0, x0 = xp.floor(sy).astype(xp.int64), xp.floor(sx).astype(xp.int64)
    wy, wx = sy - y0, sx - x0
    out = xp.zeros(x.shape, dtype=xp.float64)
    for oy, ox, weight in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx),
                           (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
        yy, xx = y0 + oy, x0 + ox
        inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
        values = x[..., xp.clip(yy, 0, height - 1), xp.clip(xx, 0, width - 1)]
        out += xp.where(inside, values, fill) * weight
    return out.astype(x.dtype, copy=False)


def symmetrize_kernels(model: Module) -> Module:
    """Make every 2-D convolution kernel of ``model`` unchanged by a quarter turn, in place:
    ``w ← (w + rot90(w) + rot180(w) + rot270(w)) / 4`` over the kernel's two axes. With odd
    kernels, stride 1 and symmetric padding the model is then exactly equivariant to 90°
    turns. Returns ``model``."""
    with no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                w = module.weight.array
                turned = sum(xp.rot90(w, k, axes=(-2, -1)) for k in range(4))
                w[...] = turned / 4
    return model


# ----- the comparison -------------------------------------------------------------------------
def _run(model: Module, x: ndarray) -> list[ndarray | None]:
    """The output of every module call (its first tensor; ``None`` if it returned none), in
    the order the calls started."""
    outputs: dict[int, ndarray] = {}
    order: list[int] = []
    stack: list[int] = []

    def pre(module: Module, args: Any) -> None:
        stack.append(len(order))
        order.append(len(order))

    def post(module: Module, args: Any, output: Any) -> None:
        index = stack.pop()
        first = output[0] if isinstance(output, tuple | list) else output
        if isinstance(first, Tensor):
            outputs[index] = first.array

    handles = [h for m in model.modules()
               for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    try:
        with no_grad():
            model(Tensor(x))
    finally:
        for h in handles:
            h.remove()
    return [outputs.get(i) for i in order]


def _interior(field: ReceptiveField, units: int, axis: int, n: int, s: int,
              t: int) -> tuple[int, int] | None:
    """Output units ``i`` of one axis whose field lies in the image ``[0, n − 1]`` and whose
    field moved by ``J·t`` lies in the part of the shifted image that came from inside,
    ``[max(0, s), n − 1 + min(0, s)]``; as a range ``[lo, hi)`` of ``i``, also keeping
    ``i + t`` on the map."""
    a = field.axes[axis]
    lo_ok, hi_ok = max(0, s), n - 1 + min(0, s)
    valid = [
        i for i in range(units)
        if 0 <= i + t < units
        and a.box(i)[0] >= 0 and a.box(i)[1] <= n - 1
        and a.box(i)[0] + a.jump * t >= lo_ok and a.box(i)[1] + a.jump * t <= hi_ok
    ]
    return (valid[0], valid[-1] + 1) if valid else None


def _relative(a: ndarray, b: ndarray) -> float:
    a64, b64 = a.astype(xp.float64), b.astype(xp.float64)
    scale = float(xp.linalg.norm(b64))
    diff = float(xp.linalg.norm(a64 - b64))
    return diff / scale if scale > 0 else diff


def _unit_mask(field: ReceptiveField, shape: Sequence[int], valid: ndarray) -> ndarray:
    """Units (over the last two axes of ``shape``) whose whole field lies where ``valid``
    (an ``H × W`` bool image) is True, by a summed-area table of the invalid pixels."""
    height, width = valid.shape
    bad = xp.zeros((height + 1, width + 1), dtype=xp.int64)
    bad[1:, 1:] = xp.cumsum(xp.cumsum(~valid, axis=0), axis=1)
    ay, ax = field.axes
    top = ay.start + ay.jump * xp.arange(shape[-2])
    left = ax.start + ax.jump * xp.arange(shape[-1])
    bottom, right = top + ay.size - 1, left + ax.size - 1
    rows_in = (top >= 0) & (bottom < height)
    cols_in = (left >= 0) & (right < width)
    t, b_ = xp.clip(top, 0, height - 1)[:, None], xp.clip(bottom, 0, height - 1)[:, None]
    l_, r = xp.clip(left, 0, width - 1)[None, :], xp.clip(right, 0, width - 1)[None, :]
    count = bad[b_ + 1, r + 1] - bad[t, r + 1] - bad[b_ + 1, l_] + bad[t, l_]
    return (count == 0) & rows_in[:, None] & cols_in[None, :]


def _parse_shifts(shifts: Sequence[int | Sequence[int]], nd: int) -> list[tuple[int, ...]]:
    parsed = []
    for s in shifts:
        offsets = (int(s),) * nd if isinstance(s, int) else tuple(int(v) for v in s)
        if len(offsets) != nd:
            raise ValueError(f"equivariance: a shift needs {nd} offsets (one per spatial axis) or "
                             f"one int, got {s!r}")
        parsed.append(offsets)
    return parsed


def _label_shift(offsets: tuple[int, ...]) -> str:
    if len(set(offsets)) == 1:
        return f"shift {offsets[0]}"
    return "shift (" + ",".join(str(o) for o in offsets) + ")"


def equivariance(
    model: Module,
    x: Tensor | ndarray,
    shifts: Sequence[int | Sequence[int]] = (1, 2, 4),
    rotations: Sequence[int] = (),
    angles: Sequence[float] = (),
    *,
    interior: bool = True,
) -> EquivarianceReport:
    """Measure, layer by layer, how far ``f(T x)`` is from ``T' f(x)`` (module docstring).

    Args:
        model: the network; it runs in evaluation mode, without gradients.
        x: the input batch, ``(N, C, *spatial)``.
        shifts: shifts in input pixels: an int shifts every spatial axis by it, a tuple gives
            one offset per axis.
        rotations: quarter turns in degrees (multiples of 90), for 2-D inputs.
        angles: small rotation angles in degrees (bilinear, approximate), for 2-D inputs.
        interior: compare only units whose receptive field stays inside the image (and away
            from the wrapped strip); ``False`` compares every overlapping unit, borders
            included.

    Returns:
        An :class:`EquivarianceReport`; ``report.row("0").errors["shift 1"]`` is one number.

    Shape:
        ``x``: ``(N, C, *spatial)``; rotations need two spatial axes. A layer with jump ``J``
        is compared on its units ``i`` with ``y_shifted[i + round(s/J)]`` against ``y[i]``.

    Example::

        >>> conv = nn.Conv2d(1, 2, 3)
        >>> report = equivariance(conv, wally.randn(1, 1, 16, 16), shifts=[1])
        >>> report.rows[0].errors["shift 1"] < 1e-6
        True
    """
    array = x.array if isinstance(x, Tensor) else xp.asarray(x)
    if array.ndim < 3:
        raise ValueError(f"equivariance: expected a batch (N, C, *spatial), got shape "
                         f"{array.shape}")
    expected = getattr(model, "input_size", None)
    if expected is not None and array.ndim != len(expected) + 1:
        raise ValueError(f"equivariance: expected a batch (N, *{tuple(expected)}), got shape "
                         f"{array.shape}")
    if array.dtype.kind != "f":
        raise TypeError(f"equivariance: expected a floating-point input, got {array.dtype}")
    structure = summary(model, input=Tensor(array), verbose=0)
    nd = array.ndim - 2
    if (rotations or angles) and nd != 2:
        raise ValueError(f"equivariance: rotations need 2-D images, got {nd} spatial axes")
    for r in rotations:
        if r % 90:
            raise ValueError(f"equivariance: rotations are multiples of 90 degrees, got {r}")
    offsets = _parse_shifts(shifts, nd)
    spatial = array.shape[2:]

    was_training = {id(m): m.training for m in model.modules()}
    model.eval()
    try:
        base = _run(model, array)
        shifted = [_run(model, shift(array, o)) for o in offsets]
        turned = [_run(model, xp.rot90(array, r // 90, axes=(-2, -1)).copy()) for r in rotations]
        rotated = [_run(model, rotate(array, a)) for a in angles]
    finally:
        for m in model.modules():
            m.training = was_training.get(id(m), m.training)

    calls = [row for row in structure.layers if row.kind in ("layer", "block")]
    labels = ([_label_shift(o) for o in offsets] + [f"rot {r}°" for r in rotations]
              + [f"rotate {a:g}°" for a in angles])
    rows: list[EquivarianceRow] = []
    # A block that returns its last layer's output adds nothing to that layer's row.
    shown: dict[int, int] = {}
    for index, call in enumerate(calls):
        y = base[index] if index < len(base) else None
        if y is not None and (call.kind == "layer" or id(y) not in shown):
            shown[id(y)] = index
    valid_after_rotation = [rotate(xp.ones(spatial), a) > 1 - 1e-9 for a in angles]
    for index, call in enumerate(calls):
        y = base[index] if index < len(base) else None
        if y is None or shown.get(id(y)) != index:
            continue
        at = _Index(index)
        field = call.receptive_field
        spatial_map = (field is not None and not field.is_global and y.ndim == nd + 2
                       and math.prod(y.shape[2:]) > 1)
        row = EquivarianceRow(call.name, call.type, call.depth, tuple(y.shape),
                              field.jump if spatial_map and field is not None else None,
                              "equivariance" if spatial_map else "invariance")
        for label, offs, outs in zip(labels, offsets, shifted, strict=False):
            if not spatial_map or field is None:
                row.errors[label] = _relative(at(outs), y)
                continue
            picks_y, picks_s = [slice(None), slice(None)], [slice(None), slice(None)]
            aligned = True
            for axis, (s, n) in enumerate(zip(offs, spatial, strict=True)):
                jump = field.axes[axis].jump
                t = round(s / jump)
                aligned = aligned and s == t * jump
                units = y.shape[2 + axis]
                span = (_interior(field, units, axis, n, s, t) if interior
                        else ((max(0, -t), min(units, units - t)) if units - abs(t) > 0 else None))
                if span is None:
                    picks_y = []
                    break
                picks_y.append(slice(span[0], span[1]))
                picks_s.append(slice(span[0] + t, span[1] + t))
            row.aligned[label] = aligned
            row.errors[label] = (_relative(at(outs)[tuple(picks_s)], y[tuple(picks_y)])
                                 if picks_y else None)
        for label, r, outs in zip(labels[len(offsets):], rotations, turned, strict=False):
            row.errors[label], row.aligned[label] = _turn_error(
                y, at(outs), r // 90, field if spatial_map else None, spatial, interior)
        start = len(offsets) + len(rotations)
        for label, a, outs, valid in zip(labels[start:], angles, rotated, valid_after_rotation,
                                         strict=False):
            row.errors[label] = _angle_error(y, at(outs), a,
                                             field if spatial_map else None, spatial, valid,
                                             interior)
        rows.append(row)
    return EquivarianceReport(type(model).__name__, tuple(array.shape), labels, rows)


class _Index:
    """Picks one call's output from a run, which must have made the same calls."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, outputs: Sequence[ndarray | None]) -> ndarray:
        out = outputs[self.index] if self.index < len(outputs) else None
        if out is None:
            raise RuntimeError("equivariance: the model called different layers for the "
                               "transformed input; its forward must not depend on the values")
        return out


def _turn_error(
    y: ndarray, y_turned: ndarray, quarters: int, field: ReceptiveField | None,
    spatial: Sequence[int], interior: bool,
) -> tuple[float | None, bool]:
    if field is None:
        return _relative(y_turned, y), True
    expected = xp.rot90(y, quarters, axes=(-2, -1))
    if expected.shape != y_turned.shape:
        return None, False
    # The stride grid lands on itself when the last unit's field ends as far from the far
    # border as the first unit's starts from the near one.
    aligned = all(
        a.box(n_out - 1)[1] == n - 1 - a.start
        for a, n, n_out in zip(field.axes, spatial, y.shape[-2:], strict=True)
    )
    if not interior:
        return _relative(y_turned, expected), aligned
    inside = _unit_mask(field, y.shape, xp.ones(tuple(spatial), dtype=bool))
    turned_spatial = tuple(spatial) if quarters % 2 == 0 else tuple(spatial)[::-1]
    inside_turned = _unit_mask(field, y_turned.shape, xp.ones(turned_spatial, dtype=bool))
    mask = xp.rot90(inside, quarters) & inside_turned
    if not mask.any():
        return None, aligned
    return _relative(y_turned[..., mask], expected[..., mask]), aligned


def _angle_error(
    y: ndarray, y_rotated: ndarray, degrees: float, field: ReceptiveField | None,
    spatial: Sequence[int], valid: ndarray, interior: bool,
) -> float | None:
    if field is None:
        return _relative(y_rotated, y)
    ay, ax = field.axes
    if ay.jump != ax.jump:
        return None  # an anisotropic grid: a rotation has no counterpart in the map
    # The input's centre in the map's units: where a unit's field centre would sit.
    center = tuple(((n - 1) / 2 - a.start - (a.size - 1) / 2) / a.jump
                   for a, n in zip(field.axes, spatial, strict=True))
    expected = rotate(y, degrees, center)
    units = y.shape[-2:]
    if interior:
        inside = _unit_mask(field, y.shape, xp.ones(tuple(spatial), dtype=bool))
        fully_inside = rotate(inside.astype(xp.float64), degrees, center) > 1 - 1e-9
        mask = fully_inside & _unit_mask(field, y_rotated.shape, valid)
    else:
        mask = rotate(xp.ones(units), degrees, center) > 1 - 1e-9
    if not mask.any():
        return None
    return _relative(y_rotated[..., mask], expected[..., mask])
