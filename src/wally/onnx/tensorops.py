"""Converters for the ops of :mod:`wally.ops_math`, :mod:`wally.ops_index` and
:mod:`wally.ops_shape`: pointwise maths, CumSum, ReduceProd/ReduceLogSumExp, Einsum,
GatherElements/Gather, ScatterElements, Where (masked_fill), TopK (sort, topk, kthvalue),
Trilu, Tile and ReduceL1/ReduceL2 (vector norms).

An index, mask or scatter position is a constant of the graph (wally computed it from the
example input); one shaped by the batch is refused under a dynamic batch, which it could not
follow.
"""

from __future__ import annotations

from typing import Any

from wally import linalg, ops, ops_index, ops_math, ops_shape
from wally.backend import xp
from wally.onnx.converters import converts, input_value, reduce_over, scalar, unsupported
from wally.onnx.graph import GraphBuilder
from wally.onnx.trace import Step

_UNARY = {ops_math.Sinh: "Sinh", ops_math.Cosh: "Cosh", ops_math.Erf: "Erf",
          ops_math.Floor: "Floor", ops_math.Ceil: "Ceil"}


@converts(*_UNARY)
def _unary(g: GraphBuilder, step: Step) -> None:
    g.node(_UNARY[type(step.fn)], [input_value(step).name], step.outputs[0])


@converts(ops_math.Round)
def _round(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    if fn.decimals == 0:
        g.node("Round", [x.name], step.outputs[0])
        return
    # ONNX's Round has no digits: scale, round half to even, scale back (wally's formula)
    scale = scalar(g, 10.0 ** abs(fn.decimals), x.dtype, "scale")
    first, last = ("Mul", "Div") if fn.decimals > 0 else ("Div", "Mul")
    rounded = g.node("Round", [g.node(first, [x.name, scale])])
    g.node(last, [rounded, scale], step.outputs[0])


@converts(ops_math.Trunc)
def _trunc(g: GraphBuilder, step: Step) -> None:
    x = input_value(step)  # ONNX has no Trunc: sign(x)·floor(|x|)
    floored = g.node("Floor", [g.node("Abs", [x.name])])
    g.node("Mul", [g.node("Sign", [x.name]), floored], step.outputs[0])


def _batch_axis(step: Step, axes: Any, what: str) -> None:
    if step.batched and 0 in axes:
        raise unsupported(step, f"it {what} along the batch axis, so the batch size cannot be "
                          "left free: export with dynamic_batch=False")


@converts(ops_math.CumSum)
def _cumsum(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    _batch_axis(step, (fn.axis,), "accumulates")
    axis = g.constant(xp.asarray(fn.axis, dtype=xp.int64), "axis")
    g.node("CumSum", [input_value(step).name, axis], step.outputs[0])


@converts(ops_math.Prod, ops_math.LogSumExp)
def _reduce(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    axes = list(range(x.ndim)) if fn.axes is None else list(fn.axes)
    step.batched = step.batched and 0 not in axes
    op_type = "ReduceProd" if isinstance(fn, ops_math.Prod) else "ReduceLogSumExp"
    reduce_over(g, op_type, [x.name], axes, step.outputs[0], 18, keepdims=int(fn.keepdim))


@converts(linalg.VectorNorm)
def _vector_norm(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    if fn.ord not in (1.0, 2.0):
        raise unsupported(step, f"ONNX reduces to the 1- and 2-norm only, this norm has "
                          f"ord={fn.ord}")
    x = input_value(step)
    axes = list(range(x.ndim)) if fn.axes is None else list(fn.axes)
    step.batched = step.batched and 0 not in axes
    op_type = "ReduceL1" if fn.ord == 1.0 else "ReduceL2"
    reduce_over(g, op_type, [x.name], axes, step.outputs[0], 18, keepdims=int(fn.keepdim))


@converts(ops_math.Einsum)
def _einsum(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    names = [input_value(step, i).name for i in range(len(step.inputs))]
    if step.batched:
        # the batch is the first letter of every batched operand; it must reach the output
        letters = {term[0] for term, v in zip(fn.terms, step.inputs)
                   if v is not None and v.batched and term}
        if len(letters) != 1 or not fn.output.startswith(letters.pop()):
            raise unsupported(step, f"the batch axis does not stay first in {fn.equation!r}: "
                              "export with dynamic_batch=False")
    # ONNX's Einsum spells subscripts in lower case: rename the letters in use
    used = sorted(set(fn.equation) - {",", "-", ">"})
    if len(used) > 26:
        raise unsupported(step, "it uses more than 26 subscripts, ONNX's Einsum has 26")
    rename = str.maketrans(dict(zip(used, "abcdefghijklmnopqrstuvwxyz")))
    g.node("Einsum", names, step.outputs[0], equation=fn.equation.translate(rename))


def _index_constant(g: GraphBuilder, step: Step, index: Any, hint: str) -> str:
    if step.batched and xp.ndim(index) and xp.shape(index)[0] != 1:
        raise unsupported(step, f"its {hint} is a constant shaped by the example batch, so the "
                          "batch size cannot be left free: export with dynamic_batch=False")
    return g.constant(xp.asarray(index), hint)


@converts(ops_index.SortedGather)
def _topk(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    _batch_axis(step, (fn.axis,), "sorts")
    if x.ndim == 0:
        g.node("Identity", [x.name], step.outputs[0])
        return
    k = g.int64s([fn.count], "k")
    largest = int(fn.descending)
    if not fn.kth:
        g.node("TopK", [x.name, k], [step.outputs[0], g.fresh("indices")], axis=fn.axis,
               largest=largest, sorted=1)
        return
    values = g.node("TopK", [x.name, k], [g.fresh("smallest"), g.fresh("indices")],
                    axis=fn.axis, largest=0, sorted=1)
    g.node("Slice", [values, g.int64s([fn.count - 1], "starts"), g.int64s([fn.count], "ends"),
                     g.int64s([fn.axis], "axes")], step.outputs[0])


@converts(ops_index.Gather)
def _gather(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    if x.ndim == 0:
        g.node("Identity", [x.name], step.outputs[0])
        return
    index = _index_constant(g, step, fn.index, "index")
    g.node("GatherElements", [x.name, index], step.outputs[0], axis=fn.axis)


@converts(ops_index.IndexSelect)
def _index_select(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    _batch_axis(step, (fn.axis,), "selects")
    g.node("Gather", [input_value(step).name, g.constant(fn.index, "index")], step.outputs[0],
           axis=fn.axis)


@converts(ops_index.Scatter)
def _scatter(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    if x.ndim == 0:
        raise unsupported(step, "ONNX's ScatterElements needs at least 1-D data")
    index = _index_constant(g, step, fn.index, "index")
    src = step.inputs[1]
    if src is None:  # a number in src's place: the node recorded it among its constants
        fill = xp.asarray(fn.constants[1], dtype=x.dtype)
        updates = g.constant(xp.broadcast_to(fill, fn.index.shape).copy(), "updates")
    elif tuple(src.shape) != tuple(fn.index.shape):
        updates = g.node("Slice", [src.name, g.int64s([0] * src.ndim, "starts"),
                                   g.int64s(list(fn.index.shape), "ends")])
    else:
        updates = src.name
    reduction = {None: "none", "add": "add", "multiply": "mul"}[fn.reduce]
    attributes: dict[str, Any] = {"axis": fn.axis}
    if reduction != "none":
        if g.opset < 16:
            raise unsupported(step, f"ScatterElements reduces ('{reduction}') from opset 16")
        attributes["reduction"] = reduction
    g.node("ScatterElements", [x.name, index, updates], step.outputs[0], **attributes)


@converts(ops_index.MaskedFill)
def _masked_fill(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    mask = fn.mask
    if step.batched and mask.ndim == x.ndim and mask.shape[0] != 1:
        raise unsupported(step, "its mask is a constant shaped by the example batch, so the "
                          "batch size cannot be left free: export with dynamic_batch=False")
    value = step.inputs[1]
    value_name = value.name if value is not None else scalar(g, fn.constants[1], x.dtype,
                                                              "value")
    g.node("Where", [g.constant(mask, "mask"), value_name, x.name], step.outputs[0])


@converts(ops_shape.Triangle)
def _trilu(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    if g.opset < 14:
        raise unsupported(step, "ONNX has Trilu from opset 14")
    k = g.constant(xp.asarray(fn.diagonal, dtype=xp.int64), "k")
    g.node("Trilu", [input_value(step).name, k], step.outputs[0], upper=int(fn.upper))


@converts(ops.Repeat)
def _tile(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    name = x.name
    if len(fn.repeats) > x.ndim:  # Tile keeps the rank: add the leading axes first
        name = g.node("Reshape", [name, g.int64s(list(fn.padded_shape), "shape")])
    if step.batched and (len(fn.repeats) != x.ndim or fn.repeats[0] != 1):
        raise unsupported(step, "it repeats along (or in front of) the batch axis, so the batch "
                          "size cannot be left free: export with dynamic_batch=False")
    g.node("Tile", [name, g.int64s(list(fn.repeats), "repeats")], step.outputs[0])
