"""ONNX converters for the lookups by index (:mod:`wally.functional.sparse`).

``embedding`` becomes ``Gather`` on the weight (axis 0) and ``one_hot`` becomes ``OneHot``
(depth ``num_classes``, values ``[0, 1]``, int64 as PyTorch). Both read integer tensors, which
the exporter traces from an int64 or int32 example input.

``padding_idx`` only shapes the gradient, so the exported lookup is a plain ``Gather``: the
padding row gives whatever that row holds (zero unless it was changed). ``max_norm`` is
refused: it renormalises, in place and at each call, the rows that call reads, which a graph
of fixed initializers cannot do; the exported table would hold the renormalised rows of the
example input's indices only.
"""

from __future__ import annotations

from wally.backend import xp
from wally.functional.sparse import Embedding, OneHot
from wally.onnx.converters import converts, input_value, unsupported
from wally.onnx.graph import GraphBuilder
from wally.onnx.trace import Step


@converts(Embedding)
def _embedding(g: GraphBuilder, step: Step) -> None:
    fn = step.fn
    assert isinstance(fn, Embedding)
    if fn.max_norm is not None:
        raise unsupported(
            step,
            f"max_norm={fn.max_norm} renormalises the rows each call reads, in place, which an "
            "ONNX graph cannot do; renormalise the whole table once (every row whose norm "
            "exceeds max_norm, scaled to it) and export with max_norm=None",
        )
    indices, weight = input_value(step, 0), input_value(step, 1)
    g.node("Gather", [weight.name, indices.name], step.outputs[0], axis=0)


@converts(OneHot)
def _one_hot(g: GraphBuilder, step: Step) -> None:
    fn = step.fn
    assert isinstance(fn, OneHot)
    indices = input_value(step)
    name = indices.name
    if indices.dtype != xp.int64:  # onnxruntime's OneHot reads int64 (or float) indices
        name = g.node("Cast", [name], to=g.tensor_type(xp.int64))
    depth = g.constant(xp.asarray([fn.num_classes], dtype=xp.int64), "depth")
    values = g.constant(xp.asarray([0, 1], dtype=xp.int64), "values")
    g.node("OneHot", [name, depth, values], step.outputs[0], axis=-1)
