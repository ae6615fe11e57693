"""Converters for the layers' ops: convolution, padding, pooling, batch normalisation, linear
layers and activations (:mod:`wally.functional`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from wally._windows import adaptive_windows
from wally.backend import xp
from wally.functional.activation import GELU, LeakyReLU, Softplus
from wally.functional.conv import ConvNd
from wally.functional.linear import Linear
from wally.functional.norm import BatchNorm
from wally.functional.padding import Pad
from wally.functional.pool import AdaptiveAvgPoolNd, AdaptiveMaxPoolNd, AvgPoolNd
from wally.onnx.converters import (
    batched_input,
    converts,
    input_value,
    reduce_over,
    scalar,
    slice_axis,
    unsupported,
)
from wally.onnx.graph import GraphBuilder, Value
from wally.onnx.trace import Step
from wally.ops_math import LogSoftmax, Softmax


# ----- convolution and padding ----------------------------------------------------------------
@converts(ConvNd)
def _conv(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = batched_input(step, len(fn.stride))
    weight = input_value(step, 1)
    bias = step.inputs[2]
    g.node(
        "Conv", [x.name, weight.name] + ([bias.name] if bias is not None else []),
        step.outputs[0],
        kernel_shape=list(weight.shape[2:]),
        strides=list(fn.stride),
        pads=[lo for lo, _ in fn.padding] + [hi for _, hi in fn.padding],
        dilations=list(fn.dilation),
        group=fn.groups,
    )


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


@converts(Pad)
def _pad(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    lead = x.ndim - len(fn.pairs)
    if fn.mode == "circular" and g.opset < 19:
        _circular_pad(g, x, fn.pairs, step.outputs[0])
        return
    pads = [0] * lead + [lo for lo, _ in fn.pairs] + [0] * lead + [hi for _, hi in fn.pairs]
    inputs = [x.name, g.int64s(pads, "pads")]
    if fn.mode == "constant":
        inputs.append(scalar(g, fn.value, x.dtype, "value"))
    mode = "wrap" if fn.mode == "circular" else _PAD_MODES[fn.mode]
    g.node("Pad", inputs, step.outputs[0], mode=mode)


def _circular_pad(
    g: GraphBuilder, x: Value, pairs: Sequence[tuple[int, int]], output: str
) -> None:
    """Circular padding before opset 19 (which added Pad's ``wrap``): per axis, the last
    ``lo`` and the first ``hi`` entries, sliced and concatenated around the input."""
    current = x.name
    lead = x.ndim - len(pairs)
    for offset, (lo, hi) in enumerate(pairs):
        axis = lead + offset
        n = x.shape[axis]
        pieces = [current]
        if lo:
            pieces.insert(0, slice_axis(g, current, axis, n - lo, n))
        if hi:
            pieces.append(slice_axis(g, current, axis, 0, hi))
        if len(pieces) > 1:
            current = g.node("Concat", pieces, axis=axis)
    g.node("Identity", [current], output)


# ----- pooling --------------------------------------------------------------------------------
def _window_pads(win: Any) -> tuple[list[int], list[int]]:
    """Left and right padding that hold every window, as wally's pooling pads its planes: a
    ``ceil_mode`` window that runs past the input makes the right padding larger."""
    right = [size - n - p for size, n, p in zip(win.padded, win.spatial, win.padding, strict=True)]
    return list(win.padding), right


def _max_pool(g: GraphBuilder, step: Step) -> None:
    """MaxPool without its indices; the converter registered for MaxPoolNd, in
    :mod:`wally.onnx.layersA`, calls it."""
    fn: Any = step.fn
    win = fn.windows
    nd = len(win.kernel)
    x = batched_input(step, nd)
    left, right = _window_pads(win)
    source = x.name
    if any(p >= k for p, k in zip(left + right, list(win.kernel) * 2, strict=True)):
        # onnxruntime refuses pads as large as the kernel, which a dilated ceil_mode window can
        # need: pad explicitly with -inf, which never wins a maximum.
        lowest = -xp.inf if x.dtype.kind == "f" else xp.iinfo(x.dtype).min
        pads = [0, 0, *left, 0, 0, *right]
        source = g.node("Pad", [x.name, g.int64s(pads, "pads"), scalar(g, lowest, x.dtype,
                                                                          "lowest")])
        left = right = [0] * nd
    g.node("MaxPool", [source], step.outputs[0], kernel_shape=list(win.kernel),
           strides=list(win.stride), pads=left + right, dilations=list(win.dilation))


def _real_cells(win: Any) -> Any:
    """The number of input (not padding) cells in each window: ONNX's divisor with
    ``count_include_pad=0``."""
    counts = xp.ones(win.out, dtype=xp.float64)
    for axis in range(len(win.kernel)):
        start = win.starts(axis)
        end = xp.minimum(start + win.kernel[axis], win.spatial[axis])
        shape = [1] * len(win.kernel)
        shape[axis] = win.out[axis]
        counts = counts * (end - xp.maximum(start, 0)).reshape(shape)
    return counts


@converts(AvgPoolNd)
def _avg_pool(g: GraphBuilder, step: Step) -> None:
    """AveragePool over padding that holds every window. ONNX divides by the whole window
    (``count_include_pad=1``) or by its input cells (``0``); any other divisor of wally's
    (``ceil_mode`` windows clipped to the padded input, ``divisor_override``) is the first,
    rescaled by a constant ``window / divisor`` per output position."""
    fn: Any = step.fn
    win = fn.windows
    nd = len(win.kernel)
    x = batched_input(step, nd)
    left, right = _window_pads(win)
    window = math.prod(win.kernel)
    divisor = xp.broadcast_to(xp.asarray(fn.divisor, dtype=xp.float64), win.out)
    padded = any(left + right)
    exclude_pad = padded and bool((divisor == _real_cells(win)).all())
    rescale = not exclude_pad and not bool((divisor == window).all())
    attributes: dict[str, Any] = dict(
        kernel_shape=list(win.kernel), strides=list(win.stride), pads=left + right,
        count_include_pad=(0 if exclude_pad else 1) if padded else None,
    )
    if not rescale:
        g.node("AveragePool", [x.name], step.outputs[0], **attributes)
        return
    mean = g.node("AveragePool", [x.name], **attributes)
    factor = (window / divisor).reshape((1, 1, *win.out))
    if (factor == factor.flat[0]).all():
        factor = factor.flat[0]
    g.node("Mul", [mean, g.constant(factor, "divisor", dtype=x.dtype)], step.outputs[0])


@converts(AdaptiveAvgPoolNd)
def _adaptive_avg_pool(g: GraphBuilder, step: Step) -> None:
    """Global average pooling, or (windows of unequal sizes) one averaging matrix per axis, as
    wally computes it: ``y = x Aᵀ`` along each axis, moved last when it is not."""
    fn: Any = step.fn
    nd = len(fn.out)
    x = batched_input(step, nd)
    if all(o == 1 for o in fn.out):
        g.node("GlobalAveragePool", [x.name], step.outputs[0])
        return
    current = x.name
    for offset, o in enumerate(fn.out):
        axis = 2 + offset
        n = x.shape[axis]
        if o == n:
            continue
        averages = xp.zeros((n, o))
        for i, (start, stop) in enumerate(adaptive_windows(n, o)):
            averages[start:stop, i] = 1.0 / (stop - start)
        matrix = g.constant(averages, "average", dtype=x.dtype)
        if axis == x.ndim - 1:
            current = g.node("MatMul", [current, matrix])
        else:
            perm = list(range(x.ndim))
            perm[axis], perm[-1] = perm[-1], perm[axis]
            moved = g.node("Transpose", [current], perm=perm)
            current = g.node("Transpose", [g.node("MatMul", [moved, matrix])], perm=perm)
    g.node("Identity", [current], step.outputs[0])


@converts(AdaptiveMaxPoolNd)
def _adaptive_max_pool(g: GraphBuilder, step: Step) -> None:
    """Windows of unequal sizes (equal ones become MaxPool before a node is recorded): the
    maximum over a box is the maximum along each axis in turn, so per axis each window is
    sliced, reduced with ReduceMax and the windows concatenated."""
    fn: Any = step.fn
    nd = len(fn.out)
    x = batched_input(step, nd)
    if all(o == 1 for o in fn.out):
        g.node("GlobalMaxPool", [x.name], step.outputs[0])
        return
    current = x.name
    for offset, o in enumerate(fn.out):
        axis = 2 + offset
        n = x.shape[axis]
        if o == n:
            continue
        windows = [
            reduce_over(g, "ReduceMax", [slice_axis(g, current, axis, start, stop)], [axis],
                        None, 18, keepdims=1)
            for start, stop in adaptive_windows(n, o)
        ]
        current = g.node("Concat", windows, axis=axis) if len(windows) > 1 else windows[0]
    g.node("Identity", [current], step.outputs[0])


# ----- normalisation and linear layers ----------------------------------------------------------
@converts(BatchNorm)
def _batch_norm(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    if fn.training or fn.running_mean is None:
        raise unsupported(step, "batch normalisation with batch statistics (training=True) "
                          "has no inference form: call model.eval() or pass training=False")
    channels = x.shape[1]
    weight, bias = step.inputs[1], step.inputs[2]
    scale = weight.name if weight is not None else g.constant(xp.ones(channels, x.dtype), "scale")
    shift = bias.name if bias is not None else g.constant(xp.zeros(channels, x.dtype), "bias")
    mean = g.array(fn.running_mean, "running_mean", x.dtype)
    var = g.array(fn.running_var, "running_var", x.dtype)
    g.node("BatchNormalization", [x.name, scale, shift, mean, var], step.outputs[0],
           epsilon=fn.eps)


@converts(Linear)
def _linear(g: GraphBuilder, step: Step) -> None:
    x, weight, bias = input_value(step), input_value(step, 1), step.inputs[2]
    if x.ndim == 2:
        inputs = [x.name, weight.name] + ([bias.name] if bias is not None else [])
        g.node("Gemm", inputs, step.outputs[0], transB=1)
        return
    transposed = g.node("Transpose", [weight.name], perm=[1, 0])
    if bias is None:
        g.node("MatMul", [x.name, transposed], step.outputs[0])
    else:
        g.node("Add", [g.node("MatMul", [x.name, transposed]), bias.name], step.outputs[0])


# ----- activations ------------------------------------------------------------------------------
@converts(LeakyReLU)
def _leaky_relu(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    g.node("LeakyRelu", [input_value(step).name], step.outputs[0], alpha=float(fn.negative_slope))


@converts(GELU)
def _gelu(g: GraphBuilder, step: Step) -> None:
    """ONNX's Gelu from opset 20; before, its definition: x·(1 + erf(x/√2))/2, or with the tanh
    approximation x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2."""
    fn: Any = step.fn
    x = input_value(step)
    if g.opset >= 20:
        g.node("Gelu", [x.name], step.outputs[0], approximate=fn.approximate)
        return
    dtype = x.dtype
    if fn.approximate == "tanh":
        cube = g.node("Mul", [g.node("Mul", [x.name, x.name]), x.name])
        inner = g.node("Add", [x.name, g.node("Mul", [cube, scalar(g, 0.044715, dtype, "c")])])
        inner = g.node("Mul", [inner, scalar(g, math.sqrt(2.0 / math.pi), dtype, "c")])
        curve = g.node("Tanh", [inner])
    else:
        curve = g.node("Erf", [g.node("Mul", [x.name, scalar(g, 1 / math.sqrt(2.0), dtype,
                                                               "c")])])
    half = g.node("Mul", [g.node("Add", [curve, scalar(g, 1.0, dtype, "one")]),
                          scalar(g, 0.5, dtype, "half")])
    g.node("Mul", [x.name, half], step.outputs[0])


@converts(Softplus)
def _softplus(g: GraphBuilder, step: Step) -> None:
    """log(1 + exp(βx))/β, and x itself where βx > threshold, as wally and PyTorch do."""
    fn: Any = step.fn
    x = input_value(step)
    beta = scalar(g, fn.beta, x.dtype, "beta")
    scaled = x.name if fn.beta == 1 else g.node("Mul", [x.name, beta])
    soft = g.node("Softplus", [scaled])
    if fn.beta != 1:
        soft = g.node("Div", [soft, beta])
    linear_part = g.node("Greater", [scaled, scalar(g, fn.threshold, x.dtype, "threshold")])
    g.node("Where", [linear_part, x.name, soft], step.outputs[0])


@converts(Softmax, LogSoftmax)
def _softmax(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    source = input_value(step).name
    if fn.dtype is not None:
        source = g.node("Cast", [source], to=g.tensor_type(fn.dtype))
    g.node(type(fn).__name__, [source], step.outputs[0], axis=fn.axis)
