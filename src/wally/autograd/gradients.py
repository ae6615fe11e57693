"""``autograd.grad``: gradients returned instead of accumulated onto ``.grad``.

It runs the same backward loop as ``Tensor.backward`` (:func:`wally.autograd.function.backward`),
with a :class:`Targets` that says which nodes lead to the requested inputs and collects what
reaches them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wally.autograd.function import backward
from wally.backend import ndarray, xp

if TYPE_CHECKING:
    from wally.autograd.function import Function
    from wally.tensor import Tensor

__all__ = ["grad"]


class Targets:
    """The tensors ``autograd.grad`` differentiates with respect to, and what reached them.

    A leaf is known by its identity; a non-leaf by the output slot of the node that made it
    (its gradient is complete when that node is about to run, since the order is topological).
    """

    def __init__(self, inputs: list[Tensor]) -> None:
        self.leaves = {id(x): i for i, x in enumerate(inputs) if x._ctx is None}
        self.slots = {(id(x._ctx), x._out_idx): i for i, x in enumerate(inputs)
                      if x._ctx is not None}
        self.grads: list[ndarray | None] = [None] * len(inputs)
        self.through: set[int] = set()  # nodes whose backward leads to a target (set by prune)
        self.visited: set[int] = set()  # those and the nodes that hold a target's gradient

    def add(self, index: int, g: ndarray) -> None:
        current = self.grads[index]
        self.grads[index] = g if current is None else current + g

    def collect(self, fn: Function, grad_outputs: list[ndarray | None]) -> bool:
        """Take the gradients of the targets that ``fn`` produced; whether ``fn``'s backward
        still needs to run (it leads to a target)."""
        for slot, g in enumerate(grad_outputs):
            index = self.slots.get((id(fn), slot))
            if index is not None and g is not None:
                self.add(index, g)
        return id(fn) in self.through

    def prune(self, order: list[Function]) -> list[Function]:
        """The nodes of ``order`` that hold a target's gradient or lead to a target; only those
        that lead to one (``self.through``) need to run their backward."""
        self.through = set()
        holds = set()
        for fn in reversed(order):  # producers first, so a node's parents are decided already
            if any((id(fn), slot) in self.slots for slot in range(fn._n_outputs)):
                holds.add(id(fn))
            for edge in fn._edges:
                if edge is None:
                    continue
                parent, _, x = edge
                if (id(x) in self.leaves if parent is None
                        else id(parent) in self.through or id(parent) in holds):
                    self.through.add(id(fn))
                    break
        self.visited = self.through | holds
        return [fn for fn in order if id(fn) in self.visited]



def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, only_inputs: bool = True, allow_unused: bool | None = None,
         is_grads_batched: bool = False, materialize_grads: bool = False) -> tuple[Any, ...]:
    """The gradients of ``outputs`` with respect to ``inputs``, returned instead of accumulated:
    ``grad(y, x)[0]`` is dy/dx, and no tensor's ``.grad`` changes (PyTorch's
    ``torch.autograd.grad``, first order).

    Each of ``outputs`` is weighted by its entry of ``grad_outputs`` (d loss / d output; may be
    left out for an output with one element), so the result is
    ``sum_k grad_outputs[k] · d outputs[k] / d inputs[i]`` for every input ``i``.

    **Shape:** each gradient has its input's shape and dtype.

    >>> x = wally.tensor([1.0, 2.0], requires_grad=True)
    >>> wally.autograd.grad((x * x).sum(), x)
    (tensor([2., 4.]),)

    An input the outputs do not depend on raises, unless ``allow_unused=True`` (then its
    gradient is ``None``, or zeros with ``materialize_grads=True``). ``create_graph=True``
    (gradients that are themselves differentiable) is not supported: wally's backward rules
    work on raw arrays, outside the graph.
    """
    from wally.tensor import Tensor, to_array

    if create_graph:
        raise NotImplementedError(
            "autograd.grad: create_graph=True (higher-order gradients) is not supported, "
            "wally's backward rules run on raw arrays outside the graph; got create_graph=True")
    if is_grads_batched:
        raise NotImplementedError("autograd.grad: is_grads_batched=True is not supported")
    if materialize_grads and allow_unused is False:
        raise ValueError("autograd.grad: materialize_grads=True needs allow_unused to be None "
                         "or True, got allow_unused=False")
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    for name, tensors in (("outputs", outputs), ("inputs", inputs)):
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"autograd.grad: expected {name} to be tensors, got "
                                f"{type(t).__name__}")
    if not inputs:
        raise ValueError("autograd.grad: expected at least one input, got none")
    for x in inputs:
        if not x.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    grad_outputs = _as_list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"autograd.grad: grad_outputs has {len(grad_outputs)} tensors, "
                           f"expected one per output ({len(outputs)})")
    seeds = []
    for index, (y, g) in enumerate(zip(outputs, grad_outputs)):
        if not y.requires_grad:
            raise RuntimeError(f"element {index} of tensors does not require grad and does not "
                               "have a grad_fn")
        if g is None:
            if y.array.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs, "
                                   f"got shape {tuple(y.shape)}")
            seeds.append(xp.ones(y.shape, dtype=y.dtype))
            continue
        g = to_array(g, y.dtype)
        if g.shape != y.shape:
            raise RuntimeError(f"autograd.grad: grad_outputs[{index}] has shape {tuple(g.shape)}, "
                               f"expected the shape of outputs[{index}], {tuple(y.shape)}")
        seeds.append(g)
    targets = Targets(inputs)
    backward(outputs, seeds, bool(retain_graph), targets)
    result: list[Tensor | None] = []
    for index, (x, g) in enumerate(zip(inputs, targets.grads)):
        if g is None:
            if materialize_grads:
                g = xp.zeros(x.shape, dtype=x.dtype)
            elif not allow_unused:
                raise RuntimeError(
                    f"The differentiated Tensor at index {index} appears to not have been used "
                    "in the graph. Set allow_unused=True if this is the desired behavior.")
            else:
                result.append(None)
                continue
        # A copy: ``g`` may be the caller's seed or an array that a retained graph still holds.
        result.append(Tensor._make(xp.array(g, dtype=x.dtype), False, None, 0))
    return tuple(result)
