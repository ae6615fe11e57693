"""Converters for the geometry layers: transposed convolution (``ConvTranspose``),
interpolation (``Resize``, one node per resized axis), pixel shuffles (``DepthToSpace`` and a
reshape-transpose for the inverse), channel shuffle, max pooling's indices output and max
unpooling (a ``ScatterElements`` into zeros)."""

from __future__ import annotations

import math
import weakref
from typing import Any

from wally.autograd import no_grad
from wally.backend import xp
from wally.functional.conv_transpose import ConvTransposeNd
from wally.functional.pool import MaxPoolNd, MaxUnpoolNd
from wally.functional.upsampling import ChannelShuffle, Interpolate, PixelShuffle
from wally.onnx import layers
from wally.onnx.converters import batched_input, converts, input_value, unsupported
from wally.onnx.graph import GraphBuilder
from wally.onnx.trace import Step


@converts(ConvTransposeNd)
def _conv_transpose(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = batched_input(step, len(fn.stride))
    weight = input_value(step, 1)
    bias = step.inputs[2]
    # wally's convolution pads (p, max(p − output_padding, 0)) and appends `extra` zero rows:
    # in ONNX's terms, pads (p, p) and output_padding.
    pads = [lo for lo, _ in fn.pairs]
    extra = [n - ((i - 1) * s - 2 * p + d * (k - 1) + 1) for n, i, s, p, d, k in zip(
        fn.out_spatial, x.shape[2:], fn.stride, pads, fn.dilation, weight.shape[2:],
        strict=True)]
    attributes = {"kernel_shape": list(weight.shape[2:]), "strides": list(fn.stride),
                  "dilations": list(fn.dilation), "group": fn.groups}
    inputs = [x.name, weight.name]
    if all(e < s for e, s in zip(extra, fn.stride, strict=True)):
        g.node("ConvTranspose", inputs + ([bias.name] if bias is not None else []),
               step.outputs[0], pads=pads + pads, output_padding=extra, **attributes)
        return
    # onnxruntime wants output_padding < stride; PyTorch allows it up to the dilation: crop
    # less on the right instead, then add the rows no tap reaches (zeros) and the bias.
    y = g.node("ConvTranspose", inputs, pads=pads + [hi for _, hi in fn.pairs], **attributes)
    if any(fn.extra):
        nd = len(fn.stride)
        y = g.node("Pad", [y, g.int64s([0] * (nd + 2) + [0, 0, *fn.extra], "pads")])
    if bias is None:
        g.node("Identity", [y], step.outputs[0])
        return
    shape = g.int64s([bias.shape[0]] + [1] * len(fn.stride), "shape")
    g.node("Add", [y, g.node("Reshape", [bias.name, shape])], step.outputs[0])


# ----- Resize ---------------------------------------------------------------------------------
def _is_copy(plan: Any, n_in: int) -> bool:
    taps, weights = plan
    return weights is None and taps.shape[1] == n_in and bool((taps[0] == xp.arange(n_in)).all())


def _float_scale(wanted: float, n_in: int, n_out: int) -> Any:
    """The single-precision scale nearest ``wanted`` for which ``⌊n_in·scale⌋ = n_out`` (as
    ONNX sizes Resize's output, in double precision)."""
    scale = xp.float32(wanted)
    while math.floor(float(scale) * n_in) < n_out:
        scale = xp.nextafter(scale, xp.float32(xp.inf))
    while math.floor(float(scale) * n_in) > n_out:
        scale = xp.nextafter(scale, xp.float32(0))
    return scale


@converts(Interpolate)
def _interpolate(g: GraphBuilder, step: Step) -> None:
    """One ``Resize`` per axis whose size changes, with that axis's scale (``1/scale`` of
    wally's): so each axis keeps its own rule (a given scale factor, or ``n_out/n_in``)."""
    fn: Any = step.fn
    nd = len(fn.plans)
    x = batched_input(step, nd)
    if g.opset < 13:
        raise unsupported(step, f"Resize needs opset 13 or later, got {g.opset}")
    out = step.result().shape[2:]
    mode = fn.mode
    attributes: dict[str, Any] = {}
    if mode == "nearest":
        attributes = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                      "nearest_mode": "floor"}
    elif mode == "nearest-exact":
        attributes = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                      "nearest_mode": "round_prefer_ceil"}
    else:
        attributes = {"mode": "cubic" if mode == "bicubic" else "linear",
                      "coordinate_transformation_mode":
                          "align_corners" if fn.align_corners else "half_pixel"}
        if mode == "bicubic":
            attributes.update(cubic_coeff_a=-0.75, exclude_outside=0)
    axes = [a for a in range(nd) if not _is_copy(fn.plans[a], x.shape[2 + a])]
    current = x.name
    for position, axis in enumerate(axes):
        n_in, n_out = x.shape[2 + axis], out[axis]
        factor = fn.factors[axis] if fn.factors else None
        target = step.outputs[0] if position == len(axes) - 1 else None
        nearest = mode in ("nearest", "nearest-exact")
        if n_in == n_out or (nearest and n_out % n_in) or fn.antialias:
            # onnxruntime copies an axis whose size is kept, rounds a fractional nearest
            # scale its own way, and its antialiasing is not PyTorch's: take wally's source
            # pixels and weights instead.
            current = _gathered(g, current, fn.plans[axis], 2 + axis, nd + 2, x.dtype, target)
            continue
        legacy = mode == "nearest" and nd == 2 and n_out in (n_in, 2 * n_in)
        scale = _float_scale(n_out / n_in if factor is None or legacy else factor, n_in, n_out)
        scales = [1.0] * (nd + 2)
        scales[2 + axis] = scale
        current = g.node("Resize", [current, "", g.constant(xp.asarray(scales, xp.float32),
                                                            "scales")], target, **attributes)
    if not axes:
        g.node("Identity", [current], step.outputs[0])


def _gathered(g: GraphBuilder, source: str, plan: Any, axis: int, ndim: int, dtype: Any,
              target: str | None) -> str:
    """``Σ_t w_t · Gather(x, j_t)`` along ``axis``: wally's own resampling of one axis."""
    taps, weights = plan
    terms = []
    for t in range(taps.shape[0]):
        picked = g.node("Gather", [source, g.int64s(taps[t].tolist(), "taps")], axis=axis)
        if weights is not None:
            shape = [1] * ndim
            shape[axis] = weights.shape[1]
            picked = g.node("Mul", [picked, g.constant(weights[t].reshape(shape), "weights",
                                                       dtype=dtype)])
        terms.append(picked)
    if len(terms) == 1:
        return g.node("Identity", terms, target)
    return g.node("Sum", terms, target)


# ----- shuffles -------------------------------------------------------------------------------
@converts(PixelShuffle)
def _pixel_shuffle(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = batched_input(step, 2)
    r = fn.factor
    if not fn.inverse:
        g.node("DepthToSpace", [x.name], step.outputs[0], blocksize=r, mode="CRD")
        return
    # SpaceToDepth orders the channels block-first; PyTorch's are channel-first.
    _, c, h, w = x.shape
    split = g.node("Reshape", [x.name, g.int64s([0, c, h // r, r, w // r, r], "shape")])
    moved = g.node("Transpose", [split], perm=[0, 1, 3, 5, 2, 4])
    g.node("Reshape", [moved, g.int64s([0, c * r * r, h // r, w // r], "shape")],
           step.outputs[0])


@converts(ChannelShuffle)
def _channel_shuffle(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    if x.ndim < 3:
        raise unsupported(step, f"its input has shape {x.shape}, not (N, C, ...)")
    c, groups = x.shape[1], fn.groups
    split = g.node("Reshape", [x.name, g.int64s([0, groups, c // groups, -1], "shape")])
    moved = g.node("Transpose", [split], perm=[0, 2, 1, 3])
    g.node("Reshape", [moved, g.int64s([0, *x.shape[1:]], "shape")], step.outputs[0])


# ----- max pooling's indices and unpooling -----------------------------------------------------
# Integer outputs carry no autograd link, so the indices a MaxUnpool reads reach the exporter
# as a constant: each graph's pooling indices are kept here, by value, to be found again.
_INDICES: weakref.WeakKeyDictionary[GraphBuilder, list[tuple[Any, str]]] = (
    weakref.WeakKeyDictionary()
)


@converts(MaxPoolNd)
def _max_pool(g: GraphBuilder, step: Step) -> None:
    """wally.onnx.layers' MaxPool, plus its ``Indices`` output when the node returns them: ONNX
    counts them over the whole tensor, PyTorch within each plane (``Mod`` by its size)."""
    fn: Any = step.fn
    if not fn.return_indices or len(step.outputs) < 2:
        layers._max_pool(g, step)
        return
    win = fn.windows
    nd = len(win.kernel)
    x = batched_input(step, nd)
    left, right = layers._window_pads(win)
    if any(p >= k for p, k in zip(left + right, list(win.kernel) * 2, strict=True)):
        raise unsupported(step, "its padding reaches a whole kernel (onnxruntime refuses it), "
                          "and the indices output can't be kept through an explicit Pad")
    flat = g.fresh("indices_flat")
    g.node("MaxPool", [x.name], [step.outputs[0], flat], kernel_shape=list(win.kernel),
           strides=list(win.stride), pads=left + right, dilations=list(win.dilation))
    plane = g.constant(xp.asarray(math.prod(x.shape[2:]), dtype=xp.int64), "plane")
    g.node("Mod", [flat, plane], step.outputs[1])
    with no_grad():  # the example's indices, recomputed: what a MaxUnpool will be given
        _, example = type(fn)(win, True).forward(x.array)
    _INDICES.setdefault(g, []).append((example, step.outputs[1]))


@converts(MaxUnpoolNd)
def _max_unpool(g: GraphBuilder, step: Step) -> None:
    """Zeros of ``(N, C, ∏out)``, ``ScatterElements`` of the values at the indices along the
    last axis, reshaped to ``(N, C, *out)`` (ONNX's MaxUnpool wants whole-tensor indices)."""
    fn: Any = step.fn
    x = batched_input(step, len(fn.out))
    given = input_value(step, 1)
    indices = next((name for example, name in _INDICES.get(g, ()) if example.shape ==
                    given.shape and bool((example == given.array).all())), None)
    if indices is None:
        raise unsupported(step, "its indices do not come from a max pooling of this graph "
                          "(return_indices=True), so they would be frozen to the example's")
    size = math.prod(fn.out)
    values = g.node("Reshape", [x.name, g.int64s([0, 0, -1], "shape")])
    where = g.node("Reshape", [indices, g.int64s([0, 0, -1], "shape")])
    leading = g.node("Slice", [g.node("Shape", [x.name]), g.int64s([0], "starts"),
                               g.int64s([2], "ends")])
    shape = g.node("Concat", [leading, g.int64s([size], "plane")], axis=0)
    zero = g.onnx.numpy_helper.from_array(xp.zeros(1, dtype=x.dtype), "zero")
    zeros = g.node("ConstantOfShape", [shape], value=zero)
    scattered = g.node("ScatterElements", [zeros, where, values], axis=2)
    g.node("Reshape", [scattered, g.int64s([0, 0, *fn.out], "shape")], step.outputs[0])
