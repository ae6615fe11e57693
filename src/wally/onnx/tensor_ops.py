"""Converters for the ops behind ``Tensor`` methods and ``wally.ops``: arithmetic, reshapes,
permutations, concatenations and reductions (what ``forward`` code writes between layers)."""

from __future__ import annotations

import math
from typing import Any

from wally import ops
from wally.backend import xp
from wally.functional.linear import Dropout
from wally.onnx.converters import (
    converts,
    input_value,
    operand_names,
    reduce_over,
    scalar,
    unsupported,
)
from wally.onnx.graph import GraphBuilder
from wally.onnx.trace import Step

# ----- elementwise ops ------------------------------------------------------------------------
_UNARY = {
    ops.Neg: "Neg", ops.Exp: "Exp", ops.Log: "Log", ops.Sqrt: "Sqrt", ops.Abs: "Abs",
    ops.Sin: "Sin", ops.Cos: "Cos", ops.ReLU: "Relu", ops.Sigmoid: "Sigmoid",
    ops.Tanh: "Tanh", ops.Clone: "Identity", Dropout: "Identity",
}


@converts(*_UNARY)
def _unary(g: GraphBuilder, step: Step) -> None:
    # Dropout only records a node when it is applied in training; exported models infer.
    g.node(_UNARY[type(step.fn)], [input_value(step).name], step.outputs[0])


@converts(ops.Add, ops.Sub)
def _add(g: GraphBuilder, step: Step) -> None:
    g.node(type(step.fn).__name__, operand_names(g, step), step.outputs[0])


@converts(ops.Mul, ops.Div, ops.Pow, ops.MatMul)
def _binary(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    g.node(type(fn).__name__, operand_names(g, step), step.outputs[0])


@converts(ops.Maximum)
def _maximum(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    op_type = "Max" if fn.pick is xp.maximum else "Min"
    g.node(op_type, operand_names(g, step), step.outputs[0])


@converts(ops.PowScalar)
def _powscalar(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    g.node("Pow", [x.name, scalar(g, fn.exponent, x.dtype, "exponent")], step.outputs[0])


@converts(ops.Clamp)
def _clamp(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    bounds = ["" if b is None else g.constant(b, hint, dtype=x.dtype)
              for b, hint in ((fn.low, "min"), (fn.high, "max"))]
    if any(xp.ndim(b) for b in (fn.low, fn.high) if b is not None):
        raise unsupported(step, "ONNX's Clip takes scalar bounds, this clamp has tensor bounds")
    g.node("Clip", [x.name, *bounds], step.outputs[0])


@converts(ops.Cast)
def _cast(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    g.node("Cast", [input_value(step).name], step.outputs[0], to=g.tensor_type(fn.dtype))


# ----- shapes ---------------------------------------------------------------------------------
@converts(ops.Reshape)
def _reshape(g: GraphBuilder, step: Step) -> None:
    x = input_value(step)
    shape = list(step.result().shape)
    if x.batched:
        if not shape or shape[0] != x.shape[0] or math.prod(shape[1:]) != math.prod(x.shape[1:]):
            raise unsupported(step, f"it reshapes {tuple(x.shape)} to {tuple(shape)}, which mixes "
                              "the batch axis with the others, so the batch size cannot be "
                              "left free: export with dynamic_batch=False")
        shape[0] = 0  # ONNX: copy this dimension from the input, whatever the batch size
    g.node("Reshape", [x.name, g.int64s(shape, "shape")], step.outputs[0])


@converts(ops.Permute)
def _permute(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    if x.batched and fn.axes[0] != 0:
        raise unsupported(step, f"permutation {fn.axes} moves the batch axis away from axis 0, "
                          "so the batch size cannot be left free: export with "
                          "dynamic_batch=False")
    g.node("Transpose", [x.name], step.outputs[0], perm=list(fn.axes))


@converts(ops.Cat)
def _cat(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    if fn.axis == 0 and step.batched:
        raise unsupported(step, "it concatenates along the batch axis, so the batch size "
                          "cannot be left free: export with dynamic_batch=False")
    g.node("Concat", operand_names(g, step), step.outputs[0], axis=fn.axis)


@converts(ops.Mean, ops.Sum)
def _reduce(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    axes = list(range(x.ndim)) if fn.axes is None else list(fn.axes)
    step.batched = step.batched and 0 not in axes
    op_type, since = ("ReduceMean", 18) if isinstance(fn, ops.Mean) else ("ReduceSum", 13)
    reduce_over(g, op_type, [x.name], axes, step.outputs[0], since, keepdims=int(fn.keepdim))


@converts(ops.Amax)
def _amax(g: GraphBuilder, step: Step) -> None:
    """``amax``/``amin`` (a rotation pool's max over the four rotations, say)."""
    fn: Any = step.fn
    x = input_value(step)
    axes = list(range(x.ndim)) if fn.axes is None else list(fn.axes)
    step.batched = step.batched and 0 not in axes
    op_type = "ReduceMax" if fn.largest else "ReduceMin"
    reduce_over(g, op_type, [x.name], axes, step.outputs[0], 18, keepdims=int(fn.keepdim))
