"""Converters for the ops added while matching PyTorch's OpInfo samples: ``clamp`` with tensor
bounds (ONNX's Clip takes scalar bounds only, so it becomes Max then Min) and ``div`` with a
``rounding_mode`` (Div then Floor; trunc of a float quotient is sign(q) · floor(|q|), ONNX
having no Trunc)."""

from __future__ import annotations

from typing import Any

from wally import ops
from wally.backend import xp
from wally.onnx.converters import converts
from wally.onnx.graph import GraphBuilder
from wally.onnx.trace import Step


def _bound(g: GraphBuilder, step: Step, index: int, hint: str) -> str | None:
    """The ONNX name of input ``index``: a traced value, a constant, or None when absent."""
    value = step.inputs[index]
    if value is not None:
        return str(value.name)
    constant = step.fn.constants[index]
    if constant is None:
        return None
    return str(g.constant(xp.asarray(constant, dtype=step.result().dtype), hint))


def _operand(g: GraphBuilder, step: Step, index: int, hint: str) -> str:
    name = _bound(g, step, index, hint)
    assert name is not None, f"{step.op}: operand {index} is missing"
    return name


@converts(ops.ClampTensor)
def _clamp_tensor(g: GraphBuilder, step: Step) -> None:
    x = _operand(g, step, 0, "input")
    low, high = _bound(g, step, 1, "min"), _bound(g, step, 2, "max")
    if low is not None and high is not None:
        lowered = g.fresh("clamp_min")
        g.node("Max", [x, low], lowered)
        g.node("Min", [lowered, high], step.outputs[0])
    elif low is not None:
        g.node("Max", [x, low], step.outputs[0])
    else:
        assert high is not None
        g.node("Min", [x, high], step.outputs[0])


@converts(ops.DivRounding)
def _div_rounding(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    a, b = _operand(g, step, 0, "dividend"), _operand(g, step, 1, "divisor")
    # Only float quotients are recorded (integer tensors never require grad), so only they
    # reach the exporter.
    quotient = g.fresh("quotient")
    g.node("Div", [a, b], quotient)
    if fn.mode == "floor":
        g.node("Floor", [quotient], step.outputs[0])
        return
    magnitude, floored, sign = g.fresh("abs"), g.fresh("floor"), g.fresh("sign")
    g.node("Abs", [quotient], magnitude)
    g.node("Floor", [magnitude], floored)
    g.node("Sign", [quotient], sign)
    g.node("Mul", [sign, floored], step.outputs[0])
