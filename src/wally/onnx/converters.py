"""The table of converters, one per autograd node type, and the helpers they share.

A converter reads the hyper-parameters the node kept (``ConvNd.stride``, ``Pad.mode``, the
:class:`wally._windows.Windows` of a pooling node, the geometry convolution and pooling share,
``BatchNorm.running_mean`` ...) and the example values of its inputs and outputs, and appends
the ONNX nodes that write the outputs it was given names for.  The converters live in
:mod:`wally.onnx.tensor_ops` and :mod:`wally.onnx.tensorops` (arithmetic, shapes, indexing),
:mod:`wally.onnx.layers` (convolution, pooling, normalisation, linear layers, activations),
:mod:`wally.onnx.layersA` (transposed convolution, resizing, shuffles, unpooling),
:mod:`wally.onnx.layers_b`, :mod:`wally.onnx.sparse`, :mod:`wally.onnx.temporal_pool` and
:mod:`wally.onnx.opinfo`, and register themselves here with :func:`converts`; a node type
without one raises :class:`~wally.onnx.UnsupportedOperatorError` (see
:func:`wally.onnx.dispatch.convert`, which imports them all: this module imports none of
them, so that they can import it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from wally.autograd import Function
from wally.backend import xp
from wally.onnx.errors import UnsupportedOperatorError
from wally.onnx.graph import GraphBuilder, Value
from wally.onnx.trace import Step
from wally.tracing import Rules

__all__ = ["CONVERTERS", "Converter", "converts", "unsupported"]

Converter = Callable[[GraphBuilder, Step], None]
_RULES: Rules[Converter] = Rules("wally.onnx")  # the analysis rules' table (wally.tracing)
CONVERTERS: dict[type[Function], Converter] = _RULES.table
converts = _RULES.register
"""``@converts(TheFunction, ...)``: register the decorated converter for those node types."""


def unsupported(step: Step, reason: str) -> UnsupportedOperatorError:
    return UnsupportedOperatorError(f"wally.onnx.export: cannot export {step.op} {step.where}: "
                                    f"{reason}")


# ----- helpers for converters ---------------------------------------------------------------
def input_value(step: Step, index: int = 0) -> Value:
    value = step.inputs[index]
    if value is None:
        raise unsupported(step, f"its input {index} is not a tensor")
    return value


def operand_names(g: GraphBuilder, step: Step) -> list[str]:
    """Input names of an elementwise node; an operand given as a Python number or array
    (``x + 1.0``) becomes a constant, from what the node recorded in ``fn.constants``, in the
    dtype of the result."""
    names = []
    for index, value in enumerate(step.inputs):
        if value is not None:
            names.append(value.name)
            continue
        constant = step.fn.constants[index]
        if constant is None:
            raise unsupported(step, f"its operand {index} is None, not a tensor or a number")
        names.append(g.constant(xp.asarray(constant), "operand", dtype=step.result().dtype))
    return names


def batched_input(step: Step, nd: int) -> Value:
    x = input_value(step)
    if x.ndim != nd + 2:
        raise unsupported(step, f"its input has shape {tuple(x.shape)}, not batched (N, C, ...): "
                          "export with a batched example input")
    return x


def scalar(g: GraphBuilder, value: float, dtype: Any, hint: str) -> str:
    return g.constant(xp.asarray(value, dtype=dtype), hint)


def reduce_over(g: GraphBuilder, op_type: str, inputs: list[str], axes: Sequence[int],
                output: str | None, since: int, **attributes: Any) -> str:
    """A reduction whose ``axes`` moved from an attribute to an input at opset ``since``."""
    if g.opset >= since:
        return g.node(op_type, [*inputs, g.int64s(axes, "axes")], output, **attributes)
    return g.node(op_type, inputs, output, axes=list(axes), **attributes)


def slice_axis(g: GraphBuilder, name: str, axis: int, start: int, stop: int) -> str:
    return g.node("Slice", [name, g.int64s([start], "starts"), g.int64s([stop], "ends"),
                            g.int64s([axis], "axes")])
