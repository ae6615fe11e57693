"""ONNX export of weight normalisation (:mod:`wally.functional.weight_norm`).

A weight-normalised layer computes ``w = g · v / ‖v‖`` from its parameters alone, so the
exporter writes ``w`` itself as one initializer (:func:`foldable`), named as the plain layer's
weight would be (``blocks.0.net.0.weight``, :func:`folded_name`): the file is that of the
network without weight normalisation, and ``g`` and ``v`` are not in it. Where ``g`` or ``v``
is computed in the forward pass, the converter writes the formula: ``ReduceL2`` over the
normalised axes, ``Div`` and ``Mul``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from wally.functional.weight_norm import WeightNorm
from wally.onnx.converters import converts, input_value, reduce_over
from wally.onnx.graph import GraphBuilder
from wally.onnx.trace import Step

__all__ = ["foldable", "folded_name"]


def foldable(fn: Any, graph_inputs: Sequence[Any]) -> bool:
    """Whether ``fn`` is weight normalisation of parameters or constants only."""
    return isinstance(fn, WeightNorm) and all(
        t is not None and t._ctx is None and all(t is not x for x in graph_inputs)
        for t in fn.inputs)


def folded_name(fn: Any, path: str) -> str:
    """The effective weight's name: ``owner.weight`` for the parametrization API (its node runs
    in ``owner.parametrizations.weight.0``), ``path.<name>`` for the hook API's."""
    match = re.fullmatch(r"(?:(.*)\.)?parametrizations\.([^.]+)(?:\.\d+)?", path)
    if match:
        owner, name = match.groups()
    else:
        owner, name = path, getattr(fn, "tensor_name", None) or "weight"
    return f"{owner}.{name}" if owner else name


@converts(WeightNorm)
def _weight_norm(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    v, gain = input_value(step, 0), input_value(step, 1)
    if fn.axes:
        norm = reduce_over(g, "ReduceL2", [v.name], fn.axes, None, 18, keepdims=1)
    else:  # a 1-d v normalised along its only axis: each value by itself
        norm = g.node("Abs", [v.name])
    lengths = g.node("Reshape", [gain.name, g.int64s(list(fn.norm.shape), "shape")])
    g.node("Mul", [v.name, g.node("Div", [lengths, norm])], step.outputs[0])
