"""ONNX converter for max-over-time pooling (:mod:`wally.functional.temporal_pool`).

Without a mask it is ``ReduceMax`` over the time axis. With one, the masked steps become
``−∞`` first: ``Where(Unsqueeze(Cast(mask, bool), 1), x, −∞)``, then ``ReduceMax``. A mask
computed in the model from its input (as TextCNN computes it from the token ids) is a graph
input like any other; one given as ``lengths`` or an array is a constant of the example's batch,
so it is refused with ``dynamic_batch``.
"""

from __future__ import annotations

from typing import Any

from wally.backend import xp
from wally.functional.temporal_pool import MaxOverTime
from wally.onnx.converters import converts, input_value, reduce_over, scalar, unsupported
from wally.onnx.graph import GraphBuilder
from wally.onnx.trace import Step


@converts(MaxOverTime)
def _max_over_time(g: GraphBuilder, step: Step) -> None:
    fn: Any = step.fn
    x = input_value(step)
    if fn.mask is None:
        reduce_over(g, "ReduceMax", [x.name], [2], step.outputs[0], 18, keepdims=0)
        return
    given = step.inputs[1] if len(step.inputs) > 1 else None
    if given is None:
        if step.batched and fn.mask.shape[0] != 1:
            raise unsupported(step, "its lengths are a constant shaped by the example batch, "
                              "so the batch size cannot be left free: compute the mask in the "
                              "model, or export with dynamic_batch=False")
        mask = g.constant(fn.mask, "mask")
    else:
        mask = given.name
    valid = g.node("Unsqueeze", [g.node("Cast", [mask], to=g.tensor_type(xp.dtype(xp.bool_))),
                                 g.int64s([1], "axes")])
    filled = g.node("Where", [valid, x.name, scalar(g, -xp.inf, x.dtype, "minus_inf")])
    reduce_over(g, "ReduceMax", [filled], [2], step.outputs[0], 18, keepdims=0)
