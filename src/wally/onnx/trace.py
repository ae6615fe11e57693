"""Record a model's forward pass as a graph of autograd nodes, in an order ONNX can run.

The input is given ``requires_grad=True``, so every op of the forward pass is recorded as a
:class:`wally.autograd.Function` node whose ``inputs`` lead back to the input, the parameters
and the constants: the layers' ops, but also the ``+``, ``wally.cat`` and ``F.relu`` written
in ``forward`` code, which module hooks alone would miss. The order and the module that ran
each node (for node names and error messages) come from :mod:`wally.tracing`.

An integer input (token ids, class indices, series lengths) cannot require gradients; the
forward pass then runs with autograd recording every op, so ``embedding`` and ``one_hot`` of
the input, or a mask computed from lengths, are nodes too. A model of several inputs
(``model(x, lengths)``) is traced from a sequence of example tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from wally.autograd import Function
from wally.backend import ndarray
from wally.nn.module import Module
from wally.onnx.graph import Value
from wally.tensor import Tensor
from wally.tracing import forward_order, record_calls, tensors

__all__ = ["Step", "Trace", "trace"]


@dataclass
class Step:
    """One node to convert: the autograd ``fn``, its input values (``None`` where ``fn`` was
    given a Python number or an array instead of a tensor), the ONNX names its outputs must
    get, and the example values of those outputs (``None`` for an output nothing reads).

    A converter may set ``batched`` to ``False`` when its output no longer has the batch on
    axis 0 (a reduction over the batch).
    """

    fn: Function
    inputs: list[Value | None]
    outputs: list[str]
    results: list[ndarray | None]
    where: str
    batched: bool = field(default=False)

    @property
    def op(self) -> str:
        """The node's class by its full name: ``wally.ops.Add``,
        ``wally.functional.conv.ConvNd``."""
        cls = type(self.fn)
        return f"{cls.__module__}.{cls.__qualname__}"

    def result(self, index: int = 0) -> ndarray:
        value = self.results[index]
        assert value is not None, f"{self.op}: output {index} was not recorded"
        return value


@dataclass
class Trace:
    """A traced forward pass: the outputs and every node they depend on, inputs first."""

    inputs: list[Tensor]
    outputs: list[Tensor]
    nodes: list[Function]
    scopes: dict[int, tuple[str, str]]  # id(node) → (module path, module class)
    results: dict[tuple[int, int], Tensor]

    @property
    def input(self) -> Tensor:
        """The first input (the only one of most models)."""
        return self.inputs[0]


def trace(model: Module, example: Tensor | Sequence[Tensor]) -> Trace:
    """Run ``model`` on ``example`` (one tensor, or a sequence of them: ``model(*example)``)
    and record the graph of its forward pass, each node labelled with the innermost module
    that ran it (the ``+`` of a residual block with the block, the ReLU inside a block's
    forward with the block, not with the next layer)."""
    examples = [example] if isinstance(example, Tensor) else list(example)
    xs = [Tensor(e.array.copy(), requires_grad=e.array.dtype.kind in "fc") for e in examples]
    # An integer input cannot require gradients: every op then records a node (those of
    # frozen tables and integer results too), so the graph still leads back to the input.
    record_all = any(x.array.dtype.kind not in "fc" for x in xs)
    with record_calls(model, record_all=record_all) as calls:
        output = model(*xs)
    outputs = tensors(output)
    flat = isinstance(output, tuple | list) and all(isinstance(t, Tensor) for t in output)
    if not outputs or not (isinstance(output, Tensor) or flat):
        raise TypeError(
            f"wally.onnx.export: the model must return a tensor or a tuple of tensors, got "
            f"{type(output).__name__}"
        )
    nodes = forward_order(outputs)
    results: dict[tuple[int, int], Tensor] = {}
    for t in outputs + [t for fn in nodes for t in fn.inputs or () if t is not None]:
        if t._ctx is not None:
            results[(id(t._ctx), t._out_idx)] = t
    scopes = {id(fn): scope for fn in nodes if (scope := calls.scope(fn)) is not None}
    return Trace(xs, outputs, nodes, scopes, results)
