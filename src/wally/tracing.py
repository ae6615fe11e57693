"""The recorded graph of a forward pass: its topological order, and which module call made
which node. Written once; the summary, the receptive fields, the cost rules and the ONNX
exporter each make one pass over what it records.

A forward pass with autograd recording leaves a graph of :class:`wally.autograd.Function`
nodes, each holding the tensors it read (``node.inputs``, whose ``_ctx`` is the node that made
them). Two things are read off it:

* **the order**: :func:`forward_order` lists every node the outputs depend on, each after the
  nodes it reads (inputs first), by :func:`post_order`, the one sort of a recorded graph (the
  backward pass runs the same algorithm over the same edges, written out for speed in
  :func:`wally.autograd.function.topological_order`);
* **the module calls**: :func:`record_calls` puts a forward pre-hook and a hook on every
  module, so the calls form a tree (a block's call holds the calls it made), and gives each
  autograd node to the innermost call whose ``forward`` created it: the nodes between a call's
  inputs and its children's outputs on one side and its outputs and its children's inputs on
  the other. So the residual ``+``, an inception ``cat`` or an ``F.relu`` written in a block's
  ``forward`` belong to the block, and a layer's own nodes to the layer.

What each pass does with a node or a layer is a rule looked up by class in a :class:`Rules`
table, one table per concern and one rule per autograd node class: ``NODE_FIELDS``
(receptive fields), ``NODE_COSTS`` (MACs and FLOPs), ``BACKWARD_MACS``, and the ONNX
converters. A layer has no rule of its own: it is what its nodes are, and the tracer records a
node for every floating-point op, a frozen layer's included (see :func:`record_calls`).

Example::

    >>> with record_calls(model) as calls:
    ...     y = model(x)
    >>> [(call.name, [type(node).__name__ for node, _ in call.ops]) for call in calls.finished]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from wally import autograd
from wally import random as wally_random
from wally.autograd import Function, enable_grad
from wally.autograd.grad_mode import TRACE_ALL, TRACE_FLOAT
from wally.backend import xp
from wally.nn.module import Module
from wally.nn.parameter import _raw_array
from wally.tensor import Tensor

__all__ = ["Call", "CallTrace", "Rules", "example_inputs", "forward_order", "input_sizes",
           "modes_kept", "post_order", "producers", "record_calls", "record_one_call", "tensors",
           "training_state"]

Rule = TypeVar("Rule", bound=Callable[..., Any])
Node = TypeVar("Node")


def post_order(roots: Sequence[Node], parents: Callable[[Node], Iterable[Node]]) -> list[Node]:
    """Every node reachable from ``roots`` through ``parents``, each after all of its parents.

    Iterative depth-first post-order (no recursion limit on deep graphs), over any objects,
    told apart by ``id``: a node is marked when it is expanded, not when it is pushed, so a
    node reached by several paths is emitted only after all of them. The first root's nodes
    come first; of a node's parents the last is expanded first.
    """
    order: list[Node] = []
    expanded: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False) for root in reversed(roots)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in expanded:
            continue
        expanded.add(id(node))
        stack.append((node, True))
        for parent in parents(node):
            if id(parent) not in expanded:
                stack.append((parent, False))
    return order


def tensors(value: Any) -> list[Tensor]:
    """The tensors in a module's arguments or result (nested tuples, lists and dicts)."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for item in value for t in tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in tensors(item)]
    return []


def producers(node: Function) -> list[Function]:
    """The nodes whose outputs ``node`` read, in the order of its inputs."""
    return [t._ctx for t in node.inputs or () if t is not None and t._ctx is not None]


def forward_order(outputs: Sequence[Tensor]) -> list[Function]:
    """Every node the ``outputs`` depend on, each after all the nodes it reads; the nodes
    behind an earlier output, and behind an earlier input of a node, come first."""
    roots = [t._ctx for t in outputs if t._ctx is not None]
    return post_order(roots, lambda node: producers(node)[::-1])


class Rules(Generic[Rule]):
    """The rules of one concern (receptive fields, cost, ONNX), one per layer or node class.

    ``@rules.register(nn.Conv2d, ...)`` registers the decorated function for those classes
    (once: a second rule for a class is an error); :meth:`find` returns the rule of the
    nearest class in an object's MRO, so a subclass (a renamed ``ConvNd``) gets its base's
    rule, and ``None`` where no class has one: the caller then reports the op as unknown.
    """

    def __init__(self, concern: str) -> None:
        self.concern = concern
        self.table: dict[type, Rule] = {}

    def register(self, *classes: type) -> Callable[[Rule], Rule]:
        def decorate(rule: Rule) -> Rule:
            for cls in classes:
                if cls in self.table:
                    raise ValueError(f"{self.concern}: {cls.__module__}.{cls.__qualname__} has "
                                     f"a rule already ({self.table[cls].__qualname__})")
                self.table[cls] = rule
            return rule

        return decorate

    def find(self, obj: Any) -> Rule | None:
        """The rule for ``obj``'s class or its nearest base that has one; ``None`` if none."""
        for cls in type(obj).__mro__:
            rule = self.table.get(cls)
            if rule is not None:
                return rule
        return None


class Call:
    """One call of one module: its inputs and outputs, the calls it made (``children``) and
    the nodes its own ``forward`` created (``ops``: ``(node, one of its outputs)`` pairs)."""

    def __init__(self, module: Module, name: str, depth: int, first: bool) -> None:
        self.module = module
        self.name = name  # the path in ``named_modules``, "" for the model
        self.depth = depth
        self.first = first  # the module's first call (a shared module is called again)
        self.inputs: list[Tensor] = []
        self.outputs: list[Tensor] = []
        self.children: list[Call] = []
        self.ops: list[tuple[Function, Tensor]] = []

    def ordered(self) -> list[Call | tuple[Function, Tensor]]:
        """The children and ops in the order they ran: each op right after the last child
        whose output it depends on, the ops in topological order among themselves."""
        child_of = {id(t): k for k, child in enumerate(self.children) for t in child.outputs}
        index = {id(node): i for i, (node, _) in enumerate(self.ops)}
        mine = [node for node, _ in self.ops]
        order = post_order(mine, lambda node: [p for p in producers(node) if id(p) in index])
        after: dict[int, int] = {}  # id(node) → the last child it depends on
        for node in order:
            latest = -1
            for x in node.inputs or ():
                if x is None:
                    continue
                if id(x) in child_of:
                    latest = max(latest, child_of[id(x)])
                elif x._ctx is not None and id(x._ctx) in index:
                    latest = max(latest, after[id(x._ctx)])
            after[id(node)] = latest
        keyed: list[tuple[tuple[int, int, int], Call | tuple[Function, Tensor]]] = [
            ((k, 0, 0), child) for k, child in enumerate(self.children)
        ]
        keyed += [((after[id(node)], 1, rank), self.ops[index[id(node)]])
                  for rank, node in enumerate(order)]
        keyed.sort(key=lambda pair: pair[0])
        return [item for _, item in keyed]


class CallTrace:
    """What :func:`record_calls` records: ``roots`` (the top-level calls, usually the model's
    one), ``finished`` (every call, in the order the calls returned: inner calls first),
    ``called`` (the ids of the modules called) and the owner of each node."""

    def __init__(self, model: Module) -> None:
        self.names = {id(m): name for name, m in model.named_modules()}
        self.stack: list[Call] = []
        self.roots: list[Call] = []
        self.finished: list[Call] = []
        self.called: set[int] = set()
        self.owner: dict[int, Call] = {}  # id(node) → the call that created it

    def pre_hook(self, module: Module, args: Any) -> None:
        parent = self.stack[-1] if self.stack else None
        call = Call(module, self.names.get(id(module), type(module).__name__),
                    0 if parent is None else parent.depth + 1, id(module) not in self.called)
        self.called.add(id(module))
        call.inputs = tensors(args)
        (parent.children if parent is not None else self.roots).append(call)
        self.stack.append(call)

    def hook(self, module: Module, args: Any, output: Any) -> None:
        call = self.stack.pop()
        call.outputs = tensors(output)
        self._claim(call)
        self.finished.append(call)

    def _claim(self, call: Call) -> None:
        """Give ``call`` the nodes between its inputs and children's outputs on one side and
        its outputs and children's inputs on the other, that no inner call took."""
        stops = {id(t) for t in call.inputs}
        # (a child that returns its input, dropout in evaluation, did not make that tensor)
        stops.update(id(t) for child in call.children for t in child.outputs
                     if not any(t is x for x in child.inputs))
        pending = [t for t in call.outputs if id(t) not in stops]
        pending += [t for child in call.children for t in child.inputs if id(t) not in stops]
        while pending:
            t = pending.pop()
            node = t._ctx
            if node is None or id(node) in self.owner:
                continue
            self.owner[id(node)] = call  # (the call keeps the node alive: ids stay unique)
            call.ops.append((node, t))
            pending.extend(x for x in node.inputs or () if x is not None and id(x) not in stops)

    def scope(self, node: Function) -> tuple[str, str] | None:
        """``(module path, module class)`` of the call that created ``node``, if any."""
        call = self.owner.get(id(node))
        return None if call is None else (call.name, type(call.module).__name__)


@contextmanager
def modes_kept(model: Module) -> Iterator[None]:
    """Within the block ``model`` may change the modes (``train``/``eval``) of its modules;
    they are put back on leaving it."""
    modes = {id(m): m.training for m in model.modules()}
    try:
        yield
    finally:
        for m in model.modules():
            m.training = modes.get(id(m), m.training)


@contextmanager
def record_calls(model: Module, record_all: bool = False) -> Iterator[CallTrace]:
    """Within the block, every call of ``model``'s modules is recorded and autograd records
    a node for every op with a floating-point operand, even where no gradient is wanted (a
    frozen layer, an input that needs none), without changing which tensors require grad:
    so each node's ``needs_input_grad`` says what a training step would compute
    (``record_all``: every op, integer results too, as the ONNX tracer needs for an integer
    input); the hooks are removed on leaving it."""
    trace = CallTrace(model)
    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(trace.pre_hook))
        handles.append(module.register_forward_hook(trace.hook))
    previous = autograd._state.tracing
    try:
        with enable_grad():
            autograd._state.tracing = max(previous, TRACE_ALL if record_all else TRACE_FLOAT)
            yield trace
    finally:
        autograd._state.tracing = previous
        for handle in handles:
            handle.remove()


def training_state(model: Module) -> Callable[[], None]:
    """Snapshot what a forward pass in training mode changes (batch norm's running statistics,
    the global random state that dropout draws from) and return the function that restores
    it: ``summary(..., training=True)`` leaves the model and wally's random state as it
    found them."""
    buffers = [(b, _raw_array(b).copy()) for b in model.buffers() if b is not None]
    state = wally_random.get_rng_state()

    def restore() -> None:
        for b, saved in buffers:
            _raw_array(b)[...] = saved
        wally_random.set_rng_state(state)

    return restore


def record_one_call(
    module: Module, input_shape: Sequence[int], output_shape: Sequence[int] | None,
    caller: str,
) -> tuple[list[Tensor], Tensor, CallTrace]:
    """One call of ``module`` (in its current mode) on a random input of ``input_shape``,
    recorded by :func:`record_calls`: ``(inputs, output, trace)``. The module's buffers and
    wally's random state are left as they were (:func:`training_state`); ``output_shape``,
    if given, is checked against the call's, and a call must return one tensor."""
    inputs, _ = example_inputs(module, tuple(input_shape), caller=caller)
    restore = training_state(module)
    try:
        with record_calls(module) as calls:
            output = module(*inputs)
    finally:
        restore()
    got = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
    if not isinstance(output, Tensor) or (output_shape is not None
                                          and got != tuple(output_shape)):
        wanted = "one tensor" if output_shape is None else f"the output_shape {tuple(output_shape)}"
        raise ValueError(f"{caller}: {type(module).__name__} on {tuple(input_shape)} gives "
                         f"{got}, not {wanted}")
    return inputs, output, calls


# ----- the example inputs of a traced forward pass -------------------------------------------
def input_sizes(input_size: Any, caller: str = "summary") -> list[tuple[int, ...]]:
    """torchinfo's reading of ``input_size``: one shape (a tuple or list of ints), or several
    (a list or tuple of shapes), one per positional input."""
    if not isinstance(input_size, tuple | list) or not input_size:
        raise TypeError(f"{caller}: input_size must be a shape such as (1, 1, 28, 28), or a list "
                        f"of shapes for several inputs, got {input_size!r}")
    shapes = [input_size] if all(isinstance(n, int) for n in input_size) else list(input_size)
    sizes = []
    for shape in shapes:
        if not isinstance(shape, tuple | list) or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in shape
        ):
            raise TypeError(f"{caller}: input_size must hold shapes of ints, got {shape!r}")
        if not shape or any(n < 1 for n in shape):
            raise ValueError(f"{caller}: input_size must be positive sizes (N, C, *spatial), "
                             f"batch axis included, got {tuple(shape)}")
        sizes.append(tuple(shape))
    return sizes


def example_inputs(
    model: Module, input_size: Any = None, input_data: Any = None, batch_dim: int | None = None,
    dtypes: Any = None, caller: str = "summary",
) -> tuple[list[Tensor], dict[str, Tensor]]:
    """The positional and keyword inputs of the forward pass: copies of ``input_data``, or
    random tensors of ``input_size`` (default ``(1, *model.input_size)``)."""
    if input_data is not None:
        keywords = input_data if isinstance(input_data, dict) else {}
        found = tensors(input_data) if not keywords else []
        named = {k: v for k, v in keywords.items() if isinstance(v, Tensor)}
        if not found and not named:
            raise TypeError(f"{caller}: input_data must be a Tensor, a sequence of Tensors or a "
                            f"dict of them (forward's keyword arguments), got "
                            f"{type(input_data).__name__}")

        def copy(t: Tensor) -> Tensor:
            return Tensor(xp.array(t.array), requires_grad=t.is_floating_point())

        return [copy(t) for t in found], {k: copy(v) for k, v in named.items()}
    if input_size is None:
        built_for = getattr(model, "input_size", None)
        if built_for is None:
            raise ValueError(
                f"{caller}: pass input_size=(N, C, H, W), the batch axis included as in "
                f"torchinfo (or input_data=...); {type(model).__name__} has no input_size "
                "attribute to take it from"
            )
        input_size = (1, *(int(n) for n in built_for))  # model.input_size is one sample's
        batch_dim = None
    sizes = input_sizes(input_size, caller)
    if batch_dim is not None:
        if isinstance(batch_dim, bool) or not isinstance(batch_dim, int):
            raise TypeError(f"{caller}: batch_dim must be an int or None, got {batch_dim!r}")
        sizes = [s[:batch_dim] + (1,) + s[batch_dim:] if batch_dim >= 0 else
                 s[:len(s) + 1 + batch_dim] + (1,) + s[len(s) + 1 + batch_dim:] for s in sizes]
    if dtypes is None and getattr(model, "input_dtype", None) is not None:
        dtypes = [model.input_dtype] * len(sizes)  # e.g. a text model's int64 token ids
    if dtypes is None:
        dtypes = [next((p.dtype for p in model.parameters() if p.dtype.kind == "f"),
                       xp.dtype(xp.float32))] * len(sizes)
    elif len(dtypes) != len(sizes):
        raise ValueError(f"{caller}: got {len(dtypes)} dtypes for {len(sizes)} inputs")
    rng = xp.random.default_rng(0)
    inputs = []
    for size, dtype in zip(sizes, dtypes):
        dtype = xp.dtype(getattr(dtype, "numpy_dtype", dtype))
        if dtype.kind == "f":
            inputs.append(Tensor(rng.standard_normal(size).astype(dtype), requires_grad=True))
        else:  # torchinfo's torch.rand(...).long(): zeros, a valid index everywhere
            inputs.append(Tensor(xp.zeros(size, dtype=dtype)))
    return inputs, {}
