"""Which converter turns a node into ONNX: the table of :mod:`wally.onnx.converters`, filled
by importing every converter module (each registers its converters with ``@converts``)."""

from __future__ import annotations

from wally.autograd import Function
from wally.onnx.converters import _RULES, CONVERTERS, Converter, unsupported
from wally.onnx.graph import GraphBuilder
from wally.onnx.trace import Step

__all__ = ["convert", "supported_operators"]


def _loaded() -> dict[type[Function], Converter]:
    # The converters register themselves when their modules are first imported.
    from wally.onnx import (  # noqa: F401
        layers,
        layers_b,
        layersA,
        opinfo,
        sparse,
        temporal_pool,
        tensor_ops,
        tensorops,
        weight_norm,
    )

    return CONVERTERS


def supported_operators() -> list[str]:
    """The autograd node types :func:`wally.onnx.export` can translate, by full name."""
    return sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in _loaded())


def convert(g: GraphBuilder, step: Step) -> None:
    """Append the ONNX nodes for ``step``, or raise naming the node and its module."""
    _loaded()
    converter = _RULES.find(step.fn)  # the nearest class in the node's MRO with a converter
    if converter is not None:
        converter(g, step)
        return
    raise unsupported(step, "wally has no ONNX translation for this operation (supported: "
                      + ", ".join(name.rsplit(".", 1)[1] for name in supported_operators()) + ")")
