"""``export``: trace a model, convert each recorded node, check the graph, write it atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from wally.backend import xp
from wally.nn.module import Module
from wally.onnx.dispatch import convert
from wally.onnx.graph import GraphBuilder, Value
from wally.onnx.trace import Step, Trace, trace
from wally.onnx.weight_norm import foldable, folded_name
from wally.tensor import Tensor

__all__ = ["export", "DEFAULT_OPSET", "MIN_OPSET"]

DEFAULT_OPSET = 17
"""The opset written by default: read by every onnxruntime since 1.12 (2022)."""
MIN_OPSET = 13
"""The oldest opset wally writes (Softmax over one axis and ReduceSum's axes input need 13)."""
BATCH = "N"
"""The name of the free batch dimension of a dynamic-batch export."""


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "wally.onnx.export needs the onnx package: pip install onnx (and onnxruntime to "
            "run the exported file)"
        ) from None
    return onnx


def _names(kind: str, names: str | Sequence[str]) -> list[str]:
    listed = [names] if isinstance(names, str) else list(names)
    if not listed or not all(isinstance(n, str) and n for n in listed):
        raise ValueError(f"wally.onnx.export: {kind} must be non-empty strings, got {names!r}")
    return listed


def _state_names(model: Module) -> dict[int, str]:
    """``id(array) → state_dict key`` of every parameter and buffer."""
    names: dict[int, str] = {}
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        names.setdefault(id(tensor.array), name)
    return names


def _where(scope: tuple[str, str] | None) -> str:
    if scope is None:
        return "in the model's forward code"
    path, cls = scope
    return f"in module '{path}' ({cls})" if path else f"in the forward of the model ({cls})"


def _build(
    g: GraphBuilder, traced: Trace, input_names: list[str], output_names: list[str],
    dynamic_batch: bool
) -> list[Value]:
    """Convert every traced node; returns the values of the model's outputs, which carry the
    requested output names wherever the node that computes them could be given them."""
    slots: dict[tuple[int, int], tuple[str, bool]] = {}
    wanted: dict[tuple[int, int], str] = {}
    for name, t in zip(output_names, traced.outputs, strict=True):
        if t._ctx is not None:
            wanted.setdefault((id(t._ctx), t._out_idx), name)

    graph_inputs = {id(x): name for x, name in zip(traced.inputs, input_names, strict=True)}

    def value(t: Tensor) -> Value:
        if id(t) in graph_inputs:
            return Value(graph_inputs[id(t)], t.array, dynamic_batch)
        if t._ctx is None:
            return Value(g.array(t.array, "constant"), t.array, False)
        name, batched = slots[(id(t._ctx), t._out_idx)]
        return Value(name, t.array, batched)

    for fn in traced.nodes:
        scope = traced.scopes.get(id(fn))
        g.scope = scope[0] if scope else ""
        if foldable(fn, traced.inputs):  # weight normalisation: the effective weight
            key = (id(fn), 0)
            slots[key] = (g.named_constant(traced.results[key].array,
                                           folded_name(fn, g.scope)), False)
            continue
        inputs = [None if t is None else value(t) for t in fn.inputs or ()]
        keys = [(id(fn), index) for index in range(fn._n_outputs)]
        outputs = [
            wanted[key] if key in wanted else g.fresh(f"{g.scope}.{fn.name}" if g.scope
                                                     else fn.name)
            for key in keys
        ]
        results = [traced.results[key].array if key in traced.results else None for key in keys]
        step = Step(fn, inputs, outputs, results, _where(scope),
                    batched=any(v.batched for v in inputs if v is not None))
        if any(x.array.dtype.kind == "i" for x in traced.inputs):
            _check_promotion(step)
        convert(g, step)
        for key, name in zip(keys, outputs, strict=True):
            slots[key] = (name, step.batched)
    g.scope = ""
    values = []
    for name, t in zip(output_names, traced.outputs, strict=True):
        source = value(t)
        if source.name != name:  # the input itself, a constant, or a tensor returned twice
            g.node("Identity", [source.name], name)
        values.append(Value(name, t.array, source.batched))
    return values


_FROM_INTEGERS = ("Embedding", "Cast", "OneHot")
"""The nodes that may turn integer operands into a float result: every other one would need
the implicit promotion (``ids + 0.5``) that ONNX's operators do not make."""


def _check_promotion(step: Step) -> None:
    integer = [(i, v) for i, v in enumerate(step.inputs)
               if v is not None and v.dtype.kind in "iu"]
    if not integer or step.fn.name in _FROM_INTEGERS:
        return
    index, operand = integer[0]
    result = step.results[0] if step.results else None
    if result is not None and result.dtype.kind in "fc":
        from wally.onnx.converters import unsupported

        raise unsupported(step, f"it mixes the integer operand {index} "
                          f"({operand.dtype}) into a {result.dtype} result; ONNX "
                          "does not promote types implicitly: convert it first (x.float())")


def _reads(traced: Trace, x: Tensor) -> bool:
    return any(t is x for fn in traced.nodes for t in fn.inputs or ())


def _example(value: Any, dynamic_batch: bool) -> Tensor:
    example = value if isinstance(value, Tensor) else Tensor(xp.asarray(value))
    if example.array.dtype not in (xp.float16, xp.float32, xp.float64, xp.int32, xp.int64):
        raise TypeError(f"wally.onnx.export: expected a float (float16, float32, float64) or "
                        f"integer (int64, int32) example input, got dtype {example.array.dtype}")
    if dynamic_batch and example.ndim < 1:
        raise ValueError("wally.onnx.export: dynamic_batch needs an example input with a batch "
                         f"axis, got shape {tuple(example.shape)}")
    return example


def _shape(value: Value) -> list[int | str]:
    return [BATCH if value.batched and i == 0 else n for i, n in enumerate(value.shape)]


def export(
    model: Module,
    example_input: Any,
    path: str | os.PathLike[str],
    opset_version: int = DEFAULT_OPSET,
    input_names: Sequence[str] = ("input",),
    output_names: Sequence[str] = ("output",),
    dynamic_batch: bool = True,
) -> None:
    """Write ``model`` as an ONNX file that onnxruntime (or any ONNX runtime) can run.

    The model runs once on ``example_input`` in eval mode (its mode is restored afterwards),
    with the input requiring gradients so that autograd records every operation, those of
    the layers and those written in ``forward`` (residual ``+``, ``wally.cat``, ``F.relu``).
    Each recorded node becomes ONNX operators (opset ``opset_version``): convolutions in 1-3
    dimensions with any padding (``'same'``'s uneven pads included; reflect, replicate and
    circular ones become a ``Pad`` node first), max and average pooling (``ceil_mode``,
    ``count_include_pad``, ``divisor_override``, dilation), adaptive pooling, batch
    normalisation with its running statistics, linear layers (``Gemm``), activations
    (ReLU, LeakyReLU, Sigmoid, Tanh, GELU as ``Gelu`` from opset 20 and through ``Erf``
    before, Softplus, Softmax, LogSoftmax), reshapes, concatenations and elementwise
    arithmetic, embedding lookups (``Gather``) and ``one_hot`` (``OneHot``). Dropout is the
    identity. Parameters and buffers are stored as initializers
    under their ``state_dict`` keys (``0.weight``, ``b2.0.bn1.running_mean``, ...); a
    weight-normalised layer's effective weight ``g · v / ‖v‖`` is one initializer, named as
    the plain layer's weight (``blocks.0.net.0.weight``).

    The example input is a float tensor, or an int64 or int32 one (token ids, class indices)
    for a model that reads it through ``nn.Embedding``, ``F.one_hot`` or a cast; the graph
    input then has that integer type. Integers mixed into float arithmetic without a cast are
    refused, as is ``Embedding(max_norm=...)`` (it renormalises rows in place at each call).

    A tuple ``example_input`` is several inputs, ``model(*example_input)``, each a graph input
    named by ``input_names`` (one name each): a series model with the lengths of a padded
    batch, ``export(fcn1d, (x, lengths), path, input_names=("input", "lengths"))``, takes
    ``lengths`` as an int64 input and computes its mask in the graph.

    With ``dynamic_batch`` the first axis of the inputs and outputs is the symbolic ``N``, so
    the file runs on any batch size. The graph is checked with ``onnx.checker`` (full check,
    with strict shape inference) before it is written, atomically: a failed export leaves any
    file at ``path`` as it was.

    Raises:
        UnsupportedOperatorError: a node has no ONNX translation; the message names it and
            the module it ran in.
        ImportError: the ``onnx`` package is missing (``pip install onnx``).

    Example::

        >>> model = wally.models.get_model("lenet")
        >>> wally.onnx.export(model, wally.randn(1, 1, 28, 28), "lenet.onnx")
        >>> import onnxruntime                                  # elsewhere, without wally
        >>> session = onnxruntime.InferenceSession("lenet.onnx")
        >>> session.run(None, {"input": images})[0].shape     # images: (N, 1, 28, 28) float32
        (N, 10)
    """
    onnx = _import_onnx()
    if isinstance(opset_version, bool) or not isinstance(opset_version, int) or not (
        MIN_OPSET <= opset_version <= onnx.defs.onnx_opset_version()
    ):
        raise ValueError(
            f"wally.onnx.export: opset_version must be an int from {MIN_OPSET} to "
            f"{onnx.defs.onnx_opset_version()} (this onnx's newest), got {opset_version!r}"
        )
    if not isinstance(model, Module):
        raise TypeError(f"wally.onnx.export: expected a wally.nn.Module, got "
                        f"{type(model).__name__}")
    several = isinstance(example_input, tuple)
    examples = [_example(e, dynamic_batch)
                for e in (example_input if several else (example_input,))]
    if not examples:
        raise ValueError("wally.onnx.export: example_input is an empty tuple; give the "
                         "model's inputs, as model(*example_input) takes them")
    inputs = _names("input_names", input_names)
    if len(inputs) != len(examples):
        raise ValueError(f"wally.onnx.export: the model takes {len(examples)} input"
                         f"{'s' if len(examples) > 1 else ''} (example_input), got "
                         f"{len(inputs)} input_names {inputs}: give one name per input, e.g. "
                         "input_names=('input', 'lengths')")
    outputs = _names("output_names", output_names)

    training = model.training
    model.eval()
    try:
        traced = trace(model, examples)
    finally:
        model.train(training)
    for name, x in zip(inputs, traced.inputs, strict=True):
        if x.array.dtype.kind == "i" and not _reads(traced, x):
            which = f"the integer example input {name!r}" if several else \
                "the integer example input"
            raise ValueError(
                f"wally.onnx.export: {which} ({x.array.dtype}, shape {tuple(x.shape)}) "
                "reaches no operation wally recorded, so the graph would not depend on it; an "
                "integer input must be read by an op such as nn.Embedding, F.one_hot or "
                ".float()"
            )
    if len(outputs) == 1 and len(traced.outputs) > 1:
        outputs = [f"{outputs[0]}_{i}" for i in range(len(traced.outputs))]
    if len(outputs) != len(traced.outputs):
        raise ValueError(f"wally.onnx.export: the model returns {len(traced.outputs)} tensors, "
                         f"got {len(outputs)} output_names {outputs}")

    g = GraphBuilder(opset_version, _state_names(model))
    for name in [*inputs, *outputs]:
        g.reserve(name)
    values = _build(g, traced, inputs, outputs, dynamic_batch)

    from wally import __version__

    sources = [Value(name, x.array, dynamic_batch)
               for name, x in zip(inputs, traced.inputs, strict=True)]
    proto = g.model(
        [g.value_info(v.name, v.dtype, _shape(v)) for v in sources],
        [g.value_info(v.name, v.dtype, _shape(v)) for v in values],
        graph_name=type(model).__name__,
        doc=f"exported by wally {__version__}",
    )
    proto.producer_version = __version__
    onnx.checker.check_model(proto, full_check=True)

    from wally.io.atomic import atomic_write

    atomic_write(path, proto.SerializeToString())
