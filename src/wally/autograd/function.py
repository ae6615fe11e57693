"""The autograd core: the ``Function`` node, and the backward pass over the graph of nodes.

A differentiable op is a small subclass of :class:`Function` with ``forward`` and ``backward``
on raw arrays (DeZero, Chainer)::

    class Exp(Function):
        def forward(self, x):
            self.y = xp.exp(x)
            return self.y

        def backward(self, gy):
            return gy * self.y

    y = Exp()(x)           # x is a Tensor; y is a Tensor whose ``grad_fn`` is the Exp node

The whole algorithm is micrograd's, on arrays instead of scalars:

1. ``Function.__call__`` unwraps the tensors, sets ``self.needs_input_grad`` (one bool per
   input, so ``forward`` and ``backward`` can skip work nobody asked for), runs ``forward`` and,
   when a gradient is wanted, records the node: for each input, the edge (its producer, which
   output of it, the tensor) along which that input's gradient will flow back.
2. :func:`backward` sorts the recorded nodes topologically (each node after every node that
   consumes its outputs) and walks that order once: a node's gradients are complete when its
   turn comes, so it calls ``backward`` and sends each input's gradient along its edge, into the
   producer's slot or onto a leaf's ``.grad``.

Rules for ``backward``: it receives one gradient per output (``None`` for an output that no
gradient reached), must treat those arrays as read-only, and returns one array or ``None`` per
input, each with that input's shape.

The rest lives behind named helpers, each in its own module: the in-place check
(:mod:`wally.autograd.versions`), anomaly mode (:mod:`wally.autograd.anomaly_mode`), the grad
modes (:mod:`wally.autograd.grad_mode`), and ``autograd.grad`` (:mod:`wally.autograd.gradients`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wally.autograd import anomaly_mode
from wally.autograd.anomaly_mode import _anomaly
from wally.autograd.grad_mode import TRACE_ALL, _state, no_grad
from wally.autograd.versions import (
    check_versions,
    kept_arrays,
    saved_versions,
    share_versions,
    tensor_class,
)
from wally.backend import ndarray, xp

if TYPE_CHECKING:
    from wally.autograd.gradients import Targets
    from wally.tensor import Tensor

__all__ = ["Function", "backward", "run_backward"]


class Function:
    """One differentiable operation: a node of the autograd graph."""

    needs_input_grad: tuple[bool, ...]
    _edges: tuple[tuple[Function | None, int, Tensor] | None, ...]
    constants: tuple[Any, ...]  # the non-tensor operands (``1.0`` in ``x + 1.0``), or None
    _saved: list[Any] | None
    _grads: list[ndarray | None] | None
    _n_outputs: int
    _freed: bool = False
    _created_at: list[str]  # where forward was called (anomaly mode only)

    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError

    def backward(self, *grad_outputs: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *inputs: Any) -> Any:
        Tensor = tensor_class()  # noqa: N806 - the class, imported late
        arrays = [x.array if isinstance(x, Tensor) else x for x in inputs]
        self.needs_input_grad = needs = _needs_grad(inputs, Tensor)
        record = True in needs or (_state.tracing and _traced(inputs, Tensor))
        raw = _forward(self, arrays)
        multiple = isinstance(raw, tuple)
        raw_outputs = raw if multiple else (raw,)
        if _anomaly["enabled"]:
            anomaly_mode.check_forward(self, arrays, raw_outputs)
        if not record and type(raw) is ndarray:  # no_grad's usual case: one result, no node
            out = Tensor._make(raw, False, None, 0)
            if raw.base is not None:
                share_versions((out,), inputs)
            return out
        kept = kept_arrays(self) if record else None  # before __call__ adds attributes of its own
        node = self if record else None
        grad = True in needs
        outputs = [_wrap(Tensor, y, index, node, grad) for index, y in enumerate(raw_outputs)]
        share_versions(outputs, inputs)
        if record:
            self._record(inputs, outputs, kept)
        return tuple(outputs) if multiple else outputs[0]

    def _record(self, inputs: Any, outputs: list[Tensor], kept: list[Any] | None) -> None:
        """Make this call a node of the graph: fix where each input's gradient goes (its
        producer, which output, the tensor: an in-place op may later make the same Python
        tensor the output of another node), and note the versions of what forward kept."""
        Tensor = tensor_class()  # noqa: N806 - the class, imported late
        self._edges = tuple((x._ctx, x._out_idx, x) if isinstance(x, Tensor) else None
                            for x in inputs)
        self.constants = tuple(None if isinstance(x, Tensor) else x for x in inputs)
        self._n_outputs = len(outputs)
        self._grads = None
        self._saved = saved_versions(kept, inputs, outputs) if kept else None

    @property
    def inputs(self) -> tuple[Tensor | None, ...]:
        """The tensor operands the node was recorded with (``None`` for constants, which are
        in ``self.constants``), for tools that read the graph (ONNX export, the cost analysis)."""
        return tuple(None if edge is None else edge[2] for edge in self._edges)

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"


_NONE_NEEDED = [(False,) * n for n in range(8)]  # needs_input_grad under no_grad, by arity


def _needs_grad(inputs: tuple[Any, ...], tensor: Any) -> tuple[bool, ...]:
    """One bool per input: is it a tensor that requires grad (and is recording on)?"""
    if _state.grad_enabled:
        return tuple([isinstance(x, tensor) and x.requires_grad for x in inputs])
    n = len(inputs)
    return _NONE_NEEDED[n] if n < len(_NONE_NEEDED) else (False,) * n


def _traced(inputs: tuple[Any, ...], tensor: Any) -> bool:
    """Under :func:`wally.tracing.record_calls`, whether an op that needs no gradient still
    becomes a node: one with a floating-point tensor operand (a frozen layer), or any op for
    the ONNX tracer (``TRACE_ALL``)."""
    return _state.tracing == TRACE_ALL or any(
        isinstance(x, tensor) and x.array.dtype.kind in "fc" for x in inputs)


def _forward(fn: Function, arrays: list[Any]) -> Any:
    """``fn.forward(*arrays)``, with NumPy's broadcast error restated with the op's name."""
    try:
        return fn.forward(*arrays)
    except ValueError as error:
        if "broadcast" not in str(error):
            raise
        shapes = ", ".join(str(getattr(a, "shape", ())) for a in arrays)
        raise ValueError(f"{fn.name}: shapes {shapes} cannot be broadcast together") from None


def _wrap(tensor: Any, y: Any, index: int, node: Function | None, grad: bool) -> Tensor:
    """Output ``index`` of a call, as a tensor around array ``y``. When ``node`` is recording,
    a floating-point ``y`` has ``node`` as its ``grad_fn`` and requires grad if an input did
    (``grad``); integer results never require grad (the ONNX tracer, which records every op,
    keeps their node; a tracer's node for a frozen layer requires no grad, as in training)."""
    if not isinstance(y, ndarray):
        y = xp.asarray(y)
    floating = y.dtype.kind in "fc"
    if node is not None and not (floating or _state.tracing == TRACE_ALL):
        node = None
    return tensor._make(y, node is not None and floating and grad, node, index)


# ----- the backward pass ------------------------------------------------------------------------
def run_backward(tensor: Tensor, grad: ndarray, retain_graph: bool = False) -> None:
    """Back-propagate ``grad`` (d loss / d tensor) through the graph that produced ``tensor``."""
    if tensor._ctx is None:
        tensor._accumulate_grad(grad)
        return
    backward([tensor], [grad], retain_graph)


def backward(outputs: list[Tensor], grads: list[ndarray], retain_graph: bool,
             targets: Targets | None = None) -> None:
    """Run the graph behind ``outputs`` backwards from their gradients ``grads``: onto the
    leaves' ``.grad``, or, for ``autograd.grad``, into ``targets`` only."""
    roots = [tensor._ctx for tensor in outputs if tensor._ctx is not None]
    everything = order = topological_order(roots) if roots else []
    if targets is not None:
        order = targets.prune(everything)  # only the nodes that lead to a target
    for tensor, grad in zip(outputs, grads):  # (an output may be a leaf itself: grad(x, x))
        _send(tensor, grad, None, tensor._ctx, tensor._out_idx, targets)
    # The arrays given away so far (see _send); with retain_graph, saved arrays live on and a
    # backward might return one of them, so nothing is handed over without a copy.
    handed = None if retain_graph else {id(grad) for grad in grads}
    with no_grad():
        for fn in order:
            grad_outputs, fn._grads = fn._grads, None
            if grad_outputs is None or (targets is not None
                                        and not targets.collect(fn, grad_outputs)):
                continue
            grads_in = _call_backward(fn, grad_outputs)
            for edge, g, needed in zip(fn._edges, grads_in, fn.needs_input_grad):
                if needed and g is not None and edge is not None:
                    parent, out_idx, x = edge
                    if g.shape != x.shape:
                        raise _shape_error(fn, g, x)
                    _send(x, g, handed, parent, out_idx, targets)
            if not retain_graph:
                _free(fn)
    if targets is not None:  # the pruned nodes keep no gradients for a later backward
        for fn in everything:
            fn._grads = None


def topological_order(roots: list[Function]) -> list[Function]:
    """Nodes reachable from ``roots``, each after every node that consumes its outputs.

    Iterative depth-first post-order (no recursion limit on deep graphs): a node is marked when
    it is expanded, not when it is pushed, so a node reached by several paths is emitted only
    after all of them. This is :func:`wally.tracing.post_order` over the edges, written out
    here with the check for a freed graph: it is the backward pass's hot loop, and calling a
    ``parents`` function per node cost 44% more instructions on the sort and 2% on a whole
    forward and backward pass (callgrind, a 31-node graph).
    """
    order: list[Function] = []
    expanded: set[int] = set()
    stack: list[tuple[Function, bool]] = [(root, False) for root in reversed(roots)]
    while stack:
        fn, done = stack.pop()
        if done:
            order.append(fn)
            continue
        if id(fn) in expanded:
            continue
        if fn._freed:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (at {fn.name}): its saved "
                "arrays were freed. Pass retain_graph=True to the first backward() to keep them."
            )
        expanded.add(id(fn))
        stack.append((fn, True))
        for edge in fn._edges:
            parent = edge[0] if edge is not None else None
            if parent is not None and id(parent) not in expanded:
                stack.append((parent, False))
    order.reverse()
    return order


def _call_backward(fn: Function, grad_outputs: list[ndarray | None]) -> tuple[Any, ...]:
    """``fn.backward(*grad_outputs)``, checked: nothing it kept was changed in place since, it
    returns one gradient (or ``None``) per input, and, in anomaly mode, no NaN or Inf."""
    if fn._saved is not None:
        check_versions(fn)
    grads_in = fn.backward(*grad_outputs)
    if not isinstance(grads_in, tuple):
        grads_in = (grads_in,)
    if _anomaly["enabled"]:
        anomaly_mode.check_backward(fn, grad_outputs, grads_in)
    if len(grads_in) != len(fn._edges):
        raise RuntimeError(
            f"{fn.name}.backward returned {len(grads_in)} gradients for {len(fn._edges)} inputs"
        )
    return grads_in


def _shape_error(fn: Function, g: ndarray, x: Tensor) -> RuntimeError:
    return RuntimeError(f"{fn.name}.backward returned a gradient of shape {tuple(g.shape)} for "
                        f"an input of shape {tuple(x.shape)}")


def _send(x: Tensor, g: ndarray, handed: set[int] | None = None,
          ctx: Function | None = None, out_idx: int = 0, targets: Targets | None = None) -> None:
    """Send gradient ``g`` to tensor ``x``: into the slot of its producer ``ctx`` (output
    ``out_idx``), or onto a leaf's ``.grad`` when ``ctx`` is None (into ``targets`` instead, for
    ``autograd.grad``, which leaves the leaves' ``.grad`` alone; as in PyTorch, a tensor that
    called ``retain_grad()`` still gets its ``.grad`` when the pass runs its producer).

    Gradient ownership: ``handed`` holds the ids of the arrays this backward has already given
    away (and of the caller's own gradient). A leaf may keep ``g`` itself, without a copy, only
    when ``g`` owns its memory, is writeable and was never handed out before, so that zeroing
    one ``.grad`` in place can't change another (``(a + b).sum().backward()`` routes one array
    to both).
    """
    if ctx is None:
        if targets is not None:
            if id(x) in targets.leaves:
                targets.add(targets.leaves[id(x)], g)
            return
        owned = False
        if handed is not None:
            owned = g.base is None and g.flags.writeable and id(g) not in handed
            handed.add(id(g))
        x._accumulate_grad(g, owned)
        return
    if ctx._grads is None:
        ctx._grads = [None] * ctx._n_outputs
    current = ctx._grads[out_idx]
    # Out of place: ``g`` may be shared with another branch, and backwards treat grads read-only.
    ctx._grads[out_idx] = g if current is None else current + g
    if x._retains_grad and x._ctx is ctx and (targets is None or id(ctx) in targets.visited):
        x._accumulate_grad(g)


def _free(fn: Function) -> None:
    """Drop what ``fn.forward`` saved, as PyTorch does, so the graph's activations are not kept
    alive until the next forward pass overwrites the loss variable; a second backward through
    ``fn`` is then refused by :func:`topological_order`."""
    fn.__dict__.clear()
    fn._freed = True
