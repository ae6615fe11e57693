"""Record a model's forward pass as a graph of autograd nodes, in an order ONNX can run.

The input is given ``requires_grad=True``, so every op of the forward pass is recorded as a
:class:`wally.autograd.Function` node whose ``inputs`` lead back to the input, the parameters
and the constants: the layers' ops, but also the ``+``, ``wally.cat`` and ``F.relu`` written
in ``forward`` code, which module hooks alone would miss. Forward hooks on every module only
label each node with the module it ran in, for node names and error messages.

An integer input (token ids, class indices, series lengths) cannot require gradients; the
forward pass then runs with autograd recording every op, so ``embedding`` and ``one_hot`` of
the input, or a mask computed from lengths, are nodes too. A model of several inputs
(``model(x, lengths)``) is traced from a sequence of example tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wally import autograd
from wally.autograd import Function, enable_grad
from wally.backend import ndarray
from wally.nn.module import Module
from wally.onnx.graph import Value
from wally.tensor import Tensor

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


def _tensors(value: Any) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    return []


def _claim(
    scopes: dict[int, tuple[str, str, Function]], name: str, module: Module, args: Any,
    output: Any,
) -> None:
    """Label with ``name`` every node not yet labelled that ``module``'s forward created: the
    nodes between its outputs and its inputs. Inner modules finish first, so each node ends
    up with the innermost module that ran it."""
    inputs = {id(t) for t in _tensors(args)}
    stack = [t._ctx for t in _tensors(output) if t._ctx is not None and id(t) not in inputs]
    seen: set[int] = set()
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        # The entry keeps ``fn`` alive, so that no later node can reuse its id.
        scopes.setdefault(id(fn), (name, type(module).__name__, fn))
        stack.extend(t._ctx for t in fn.inputs or ()
                     if t is not None and t._ctx is not None and id(t) not in inputs)


def _run(model: Module, xs: Sequence[Tensor]) -> tuple[Any, dict[int, tuple[str, str, Function]]]:
    """``model(*xs)`` with every node recorded, and ``id(node) → (module path, class, node)``:
    the innermost module whose forward created each node."""
    scopes: dict[int, tuple[str, str, Function]] = {}
    handles = []

    def label(name: str) -> Any:
        def hook(module: Module, args: Any, output: Any) -> None:
            _claim(scopes, name, module, args, output)

        return hook

    for name, module in model.named_modules():
        handles.append(module.register_forward_hook(label(name)))
    # An integer input cannot require gradients: every op then records a node (those of
    # frozen tables and integer results too), so the graph still leads back to the input.
    record_all = any(x.array.dtype.kind not in "fc" for x in xs)
    previous = autograd._state.record_all
    try:
        with enable_grad():
            autograd._state.record_all = record_all or previous
            output = model(*xs)
    finally:
        autograd._state.record_all = previous
        for handle in handles:
            handle.remove()
    return output, scopes


def _order(outputs: Sequence[Tensor]) -> list[Function]:
    """Every node the outputs depend on, each after all the nodes it reads (iterative DFS)."""
    order: list[Function] = []
    done: set[int] = set()
    for root in outputs:
        if root._ctx is None or id(root._ctx) in done:
            continue
        stack: list[tuple[Function, bool]] = [(root._ctx, False)]
        while stack:
            fn, expanded = stack.pop()
            if expanded:
                order.append(fn)
                continue
            if id(fn) in done:
                continue
            done.add(id(fn))
            stack.append((fn, True))
            for t in reversed(fn.inputs or ()):
                if t is not None and t._ctx is not None and id(t._ctx) not in done:
                    stack.append((t._ctx, False))
    return order


def trace(model: Module, example: Tensor | Sequence[Tensor]) -> Trace:
    """Run ``model`` on ``example`` (one tensor, or a sequence of them: ``model(*example)``)
    and record the graph of its forward pass, each node labelled with the innermost module
    that ran it (the ``+`` of a residual block with the block, the ReLU inside a block's
    forward with the block, not with the next layer)."""
    examples = [example] if isinstance(example, Tensor) else list(example)
    xs = [Tensor(e.array.copy(), requires_grad=e.array.dtype.kind in "fc") for e in examples]
    output, labels = _run(model, xs)
    outputs = _tensors(output)
    if not outputs or (not isinstance(output, Tensor) and len(outputs) != len(output)):
        raise TypeError(
            f"wally.onnx.export: the model must return a tensor or a tuple of tensors, got "
            f"{type(output).__name__}"
        )
    nodes = _order(outputs)
    results: dict[tuple[int, int], Tensor] = {}
    for t in outputs + [t for fn in nodes for t in fn.inputs or () if t is not None]:
        if t._ctx is not None:
            results[(id(t._ctx), t._out_idx)] = t
    scopes = {id(fn): labels[id(fn)][:2] for fn in nodes if id(fn) in labels}
    return Trace(xs, outputs, nodes, scopes, results)
