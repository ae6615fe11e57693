"""ONNX converters for layersB's ops: layer, group and instance normalisation, local response
normalisation, and the extra activations (:mod:`wally.functional.normalization`,
:mod:`wally.functional.activation_extra`).

Dropout in evaluation is the identity and records no node; ``embedding`` and ``one_hot`` read
integer inputs, which the exporter's float example input never leads to, so they have no
converter here.
"""

from __future__ import annotations

from typing import Any

from wally.backend import xp
from wally.functional.activation_extra import (
    ELU,
    GLU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LogSigmoid,
    Mish,
    SiLU,
    Softmin,
    Softsign,
    Threshold,
)
from wally.functional.normalization import LocalResponseNorm, RowNorm
from wally.onnx.converters import (
    batched_input,
    converts,
    input_value,
    scalar,
    slice_axis,
    unsupported,
)
from wally.onnx.graph import GraphBuilder
from wally.onnx.trace import Step
from wally.ops_math import PReLU


# ----- normalisation ----------------------------------------------------------------------------
def _affine_inputs(g: GraphBuilder, step: Step, count: int, dtype: Any) -> tuple[str, str]:
    """γ and β as ONNX inputs: the parameters, or ones and zeros of ``count`` elements."""
    weight, bias = step.inputs[1], step.inputs[2]
    scale = weight.name if weight is not None else g.constant(xp.ones(count, dtype), "scale")
    shift = bias.name if bias is not None else g.constant(xp.zeros(count, dtype), "bias")
    return scale, shift


@converts(RowNorm)
def _row_norm(g: GraphBuilder, step: Step) -> None:
    """LayerNormalization (opset 17) over the trailing axes; InstanceNormalization for
    instance norm; group norm as InstanceNormalization of the (N, G, C/G·…) view followed by
    the per-channel affine map (ONNX's GroupNormalization-18 scales per group, not channel)."""
    fn: Any = step.fn
    x = input_value(step)
    out = step.outputs[0]
    if fn.kind == "layer":
        if g.opset < 17:
            raise unsupported(step, "layer normalisation needs ONNX's LayerNormalization, "
                              "which is opset 17 or later: export with opset_version=17")
        shape = tuple(x.shape[x.ndim - fn.spans:])
        weight, bias = step.inputs[1], step.inputs[2]
        scale = weight.name if weight is not None else g.constant(xp.ones(shape, x.dtype),
                                                                   "scale")
        optional = [bias.name] if bias is not None else []
        g.node("LayerNormalization", [x.name, scale, *optional], out, axis=-fn.spans,
               epsilon=fn.eps)
        return
    x = batched_input(step, x.ndim - 2)
    channels = x.shape[1]
    if fn.kind == "instance":
        scale, shift = _affine_inputs(g, step, channels, x.dtype)
        g.node("InstanceNormalization", [x.name, scale, shift], out, epsilon=fn.eps)
        return
    groups = fn.rows // x.shape[0]
    grouped = g.node("Reshape", [x.name, g.int64s([0, groups, -1], "groups")])
    ones = g.constant(xp.ones(groups, x.dtype), "scale")
    zeros = g.constant(xp.zeros(groups, x.dtype), "bias")
    normed = g.node("InstanceNormalization", [grouped, ones, zeros], epsilon=fn.eps)
    current = g.node("Reshape", [normed, g.node("Shape", [x.name])])
    view = g.int64s([channels] + [1] * (x.ndim - 2), "channel_view")
    weight, bias = step.inputs[1], step.inputs[2]
    if weight is not None:
        current = g.node("Mul", [current, g.node("Reshape", [weight.name, view])])
    if bias is not None:
        current = g.node("Add", [current, g.node("Reshape", [bias.name, view])])
    g.node("Identity", [current], out)


@converts(LocalResponseNorm)
def _lrn(g: GraphBuilder, step: Step) -> None:
    """ONNX's LRN sums channels [c − ⌊(n−1)/2⌋, c + ⌈(n−1)/2⌉], PyTorch's (and wally's)
    [c − ⌊n/2⌋, c + ⌊(n−1)/2⌋]: the same window for odd sizes only."""
    fn: Any = step.fn
    if fn.size % 2 == 0:
        raise unsupported(step, f"local response normalisation of even size {fn.size}: ONNX's "
                          "LRN centres an even window one channel the other way than PyTorch; "
                          "use an odd size")
    x = input_value(step)
    attributes = {"size": fn.size, "alpha": fn.alpha, "beta": fn.beta, "bias": fn.k}
    if x.ndim == 4:
        g.node("LRN", [x.name], step.outputs[0], **attributes)
        return
    # onnxruntime runs LRN on 4-D inputs only: (N, C, *) is viewed as (N, C, positions, 1).
    flat = g.node("Reshape", [x.name, g.int64s([0, 0, -1, 1], "lrn_view")])
    g.node("Reshape", [g.node("LRN", [flat], **attributes), g.node("Shape", [x.name])],
           step.outputs[0])


# ----- activations ------------------------------------------------------------------------------
@converts(ELU)
def _elu(g: GraphBuilder, step: Step) -> None:
    """ELU, SELU (a scale) and CELU (an input scale 1/α) are one wally op, three ONNX ones."""
    fn: Any = step.fn
    x, out = input_value(step).name, step.outputs[0]
    if fn.scale != 1.0:
        g.node("Selu", [x], out, alpha=fn.alpha, gamma=fn.scale)
    elif fn.input_scale != 1.0:
        g.node("Celu", [x], out, alpha=fn.alpha)
    else:
        g.node("Elu", [x], out, alpha=fn.alpha)


@converts(Hardsigmoid)
def _hardsigmoid(g: GraphBuilder, step: Step) -> None:
    g.node("HardSigmoid", [input_value(step).name], step.outputs[0], alpha=1.0 / 6.0, beta=0.5)


@converts(Hardswish)
def _hardswish(g: GraphBuilder, step: Step) -> None:
    """HardSwish from opset 14; before, its definition x · HardSigmoid(x)."""
    x = input_value(step).name
    if g.opset >= 14:
        g.node("HardSwish", [x], step.outputs[0])
        return
    g.node("Mul", [x, g.node("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)], step.outputs[0])


@converts(Hardtanh)
def _hardtanh(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    g.node("Clip", [x.name, scalar(g, fn.min_val, x.dtype, "min"),
                    scalar(g, fn.max_val, x.dtype, "max")], step.outputs[0])


@converts(Softsign)
def _softsign(g: GraphBuilder, step: Step) -> None:
    g.node("Softsign", [input_value(step).name], step.outputs[0])


@converts(SiLU)
def _silu(g: GraphBuilder, step: Step) -> None:
    x = input_value(step).name
    g.node("Mul", [x, g.node("Sigmoid", [x])], step.outputs[0])


@converts(Mish)
def _mish(g: GraphBuilder, step: Step) -> None:
    x = input_value(step).name
    if g.opset >= 18:
        g.node("Mish", [x], step.outputs[0])
        return
    g.node("Mul", [x, g.node("Tanh", [g.node("Softplus", [x])])], step.outputs[0])


@converts(LogSigmoid)
def _logsigmoid(g: GraphBuilder, step: Step) -> None:
    """log σ(x) = −softplus(−x)."""
    x = input_value(step).name
    g.node("Neg", [g.node("Softplus", [g.node("Neg", [x])])], step.outputs[0])


@converts(PReLU)
def _prelu(g: GraphBuilder, step: Step) -> None:
    """ONNX's slope broadcasts from the right: per-channel slopes become (C, 1, …, 1)."""
    x, weight = input_value(step), input_value(step, 1)
    slope = weight.name
    if x.ndim >= 2 and weight.ndim == 1 and weight.shape[0] > 1:
        view = g.int64s([weight.shape[0]] + [1] * (x.ndim - 2), "slope_view")
        slope = g.node("Reshape", [slope, view])
    g.node("PRelu", [x.name, slope], step.outputs[0])


@converts(GLU)
def _glu(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    half = x.shape[fn.axis] // 2
    a = slice_axis(g, x.name, fn.axis, 0, half)
    b = slice_axis(g, x.name, fn.axis, half, 2 * half)
    g.node("Mul", [a, g.node("Sigmoid", [b])], step.outputs[0])


@converts(Softmin)
def _softmin(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    source = input_value(step).name
    if fn.dtype is not None:
        source = g.node("Cast", [source], to=g.tensor_type(fn.dtype))
    g.node("Softmax", [g.node("Neg", [source])], step.outputs[0], axis=fn.axis)


@converts(Threshold)
def _threshold(g: GraphBuilder, step: Step) -> None:
    """ThresholdedRelu where ``value`` is 0 (the same function), else Where(x > t, x, value)."""
    fn: Any = step.fn
    x = input_value(step)
    if fn.value == 0:
        g.node("ThresholdedRelu", [x.name], step.outputs[0], alpha=fn.threshold)
        return
    above = g.node("Greater", [x.name, scalar(g, fn.threshold, x.dtype, "threshold")])
    g.node("Where", [above, x.name, scalar(g, fn.value, x.dtype, "value")], step.outputs[0])
