"""Reverse-mode automatic differentiation: the ``Function`` node and the graph walk.

A differentiable op is a small subclass of :class:`Function` with ``forward`` and ``backward``
on raw arrays (DeZero, Chainer)::

    class Exp(Function):
        def forward(self, x):
            self.y = xp.exp(x)
            return self.y

        def backward(self, gy):
            return gy * self.y

    y = Exp()(x)           # x is a Tensor; y is a Tensor whose ``grad_fn`` is the Exp node

``Function.__call__`` unwraps the tensors, sets ``self.needs_input_grad`` (one bool per input,
so ``backward`` can skip gradients nobody asked for), runs ``forward`` and, when gradients are
wanted, records the node in the graph.  ``Tensor.backward`` sorts the recorded nodes
topologically and runs their ``backward`` in reverse order, as micrograd does for scalars.

Rules for ``backward``: it receives one gradient per output (``None`` for an output that no
gradient reached), must treat those arrays as read-only, and returns one array or ``None`` per
input, each with that input's shape.

In-place writes are checked, as in PyTorch. Every tensor's memory carries a version
(:class:`Version`, shared by the tensors that view the same memory) that each in-place write
bumps. When a node is recorded, ``__call__`` finds which input and output tensors its
``forward`` kept (an attribute holding their memory, such as ``self.y`` above) and notes their
versions; ``backward`` refuses to run a node whose kept tensors have changed since, because it
would compute with the new values. The graph's edges are fixed when a node is recorded, so a
tensor that later becomes the output of an in-place op does not re-route the gradients of the
nodes that used it before.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from wally.backend import ndarray, xp

if TYPE_CHECKING:
    from wally.tensor import Tensor

class _GradState(threading.local):
    grad_enabled = True  # the class attributes are every new thread's defaults
    inference = False
    # Set only by wally.onnx's tracer: every op records a node, those whose operands need no
    # gradient and those with integer results included (no gradient flows through them).
    record_all = False


_state = _GradState()


def is_grad_enabled() -> bool:
    """Whether operations are being recorded for differentiation (per thread, as in PyTorch)."""
    return _state.grad_enabled


def is_inference_mode_enabled() -> bool:
    """Whether the innermost :class:`inference_mode` block is on."""
    return _state.inference


def _wrap_in(make_context: Any, func: Any) -> Any:
    """``func`` running inside a fresh ``make_context()`` on every call (the decorator form)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with make_context():
            return func(*args, **kwargs)

    return wrapper


class _GradMode:
    """Base of ``no_grad`` and ``enable_grad``: a context manager that also decorates functions,
    written ``@no_grad()`` or, as PyTorch allows, ``@no_grad``."""

    mode = True

    def __new__(cls, func: Any = None) -> Any:
        if func is None:
            return super().__new__(cls)
        return cls()(func)  # ``@no_grad`` without parentheses

    def __enter__(self) -> None:
        self._previous = _state.grad_enabled
        _state.grad_enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self._previous

    def __call__(self, func: Any) -> Any:
        return _wrap_in(type(self), func)


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context manager (or decorator) that records nothing: results have no ``grad_fn``.

    >>> with wally.no_grad():
    ...     y = w * 2          # y.requires_grad is False
    """

    mode = False


class enable_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context manager (or decorator) that turns recording back on inside ``no_grad``."""

    mode = True


class set_grad_enabled:  # noqa: N801 - PyTorch's name
    """Turn recording on or off: at once when called (``set_grad_enabled(False)``), for a block
    (``with set_grad_enabled(is_train):``, restoring the previous mode at its end), or for a
    function (``@set_grad_enabled(False)``), as in PyTorch."""

    def __init__(self, mode: bool) -> None:
        self.prev = _state.grad_enabled
        self.mode = bool(mode)
        _state.grad_enabled = self.mode

    def __enter__(self) -> None:
        _state.grad_enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self.prev

    def __call__(self, func: Any) -> Any:
        _state.grad_enabled = self.prev  # as a decorator it changes nothing until func runs
        mode = self.mode
        return _wrap_in(lambda: set_grad_enabled(mode), func)

    def __repr__(self) -> str:
        return f"wally.autograd.set_grad_enabled(mode={self.mode})"


class inference_mode:  # noqa: N801 - PyTorch's name
    """Context manager (or decorator, ``@inference_mode()`` or ``@inference_mode``) for code that
    never needs gradients: nothing is recorded, as under :class:`no_grad`.

    ``inference_mode(False)`` turns recording back on, as PyTorch's does. Unlike PyTorch, the
    tensors made inside are ordinary tensors (PyTorch marks them as inference tensors that
    autograd later refuses); wally has no faster path to gain from that mark.
    """

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode):
            return cls()(mode)  # ``@inference_mode`` without parentheses
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        self.mode = mode

    def __enter__(self) -> None:
        self._previous = (_state.grad_enabled, _state.inference)
        _state.grad_enabled, _state.inference = not self.mode, self.mode

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled, _state.inference = self._previous

    def __call__(self, func: Any) -> Any:
        mode = self.mode
        return _wrap_in(lambda: inference_mode(mode), func)


class AnomalyError(RuntimeError):
    """Raised under :class:`detect_anomaly` by the first op whose result is NaN or infinite."""


_anomaly = {"enabled": False}


class detect_anomaly:  # noqa: N801 - PyTorch's name
    """Context manager (or decorator): stop at the first op that turns finite values into NaN or
    Inf, in the forward or the backward pass, naming it and where it was called.

    >>> with wally.autograd.detect_anomaly():
    ...     wally.tensor([-1.0]).log()     # AnomalyError: Log returned nan in its forward pass
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> None:
        self._previous = _anomaly["enabled"]
        _anomaly["enabled"] = self.check_nan

    def __exit__(self, *exc: object) -> None:
        _anomaly["enabled"] = self._previous

    def __call__(self, func: Any) -> Any:
        import functools

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly(self.check_nan):
                return func(*args, **kwargs)

        return wrapper


def _all_finite(arrays: Any) -> bool:
    # xp.generic too: a ufunc on a 0-d array returns a NumPy scalar, not an ndarray.
    return all(
        not (isinstance(a, (ndarray, xp.generic)) and a.dtype.kind in "fc")
        or bool(xp.isfinite(a).all())
        for a in arrays
    )


def _check_anomaly(fn: Function, inputs: Any, outputs: Any, phase: str) -> None:
    """Raise if ``fn`` made non-finite ``outputs`` from finite ``inputs`` (anomaly mode only)."""
    if _all_finite(inputs):
        for index, y in enumerate(outputs):
            if (isinstance(y, (ndarray, xp.generic)) and y.dtype.kind in "fc"
                    and not xp.isfinite(y).all()):
                kind = "nan" if xp.isnan(y).any() else "inf"
                where = "".join(getattr(fn, "_created_at", []) or [])
                raise AnomalyError(
                    f"Function '{fn.name}' returned {kind} values in its {index}th "
                    f"{'output' if phase == 'forward' else 'gradient'} during the {phase} pass, "
                    f"from finite inputs."
                    + (f" The op was called at:\n{where}" if where else "")
                )


_NOTHING = [(False,) * n for n in range(8)]  # needs_input_grad under no_grad, by arity


class Version:
    """The version of one piece of memory: how many in-place writes it has had.

    Shared by every tensor that views the memory (``x``, ``x[0]``, ``x.view(-1)``,
    ``x.detach()``, ``x.data``); read as ``tensor._version``, as in PyTorch.
    """

    __slots__ = ("value",)

    def __init__(self, value: int = 0) -> None:
        self.value = value


def _root(array: Any) -> Any:
    """The object that owns ``array``'s memory (itself, or the end of its ``base`` chain)."""
    while True:
        base = array.base
        if base is None:
            return array
        if not isinstance(base, ndarray):
            return base
        array = base


def _share_versions(outputs: Any, inputs: Any) -> None:
    """Give each output that views an input's memory that input's version counter."""
    roots = None
    for y in outputs:
        if y.array.base is None:
            continue
        if roots is None:
            tensor = _TENSOR or _tensor_class()
            roots = [(_root(x.array), x) for x in inputs if isinstance(x, tensor)]
        root = _root(y.array)
        for r, x in roots:
            if r is root:
                y._version_counter = x._counter()
                break


def _kept(fn: Function) -> list[Any]:
    """The memory owners of the arrays ``fn.forward`` kept as attributes (or in a tuple or list
    attribute). Called right after ``forward``, before ``__call__`` adds its own attributes."""
    kept: list[Any] = []
    for value in fn.__dict__.values():
        kind = type(value)
        if kind is ndarray:
            kept.append(value if value.base is None else _root(value))
        elif (kind is tuple or kind is list) and value and type(value[0]) is not bool:
            kept.extend(v if v.base is None else _root(v) for v in value
                        if isinstance(v, ndarray))
    return kept


def _saved_versions(kept: list[Any], inputs: Any, outputs: Any) -> list[Any] | None:
    """The (counter, version, shape, dtype, producer, index) of every input or output whose
    memory is in ``kept`` (no tensor itself: an output held by its own node would make a cycle).

    A node keeps a tensor when one of its attributes is that tensor's array or a view of its
    memory. Arrays that ``forward`` computed afresh (a mask, a padded copy) share no memory with
    a tensor and are not counted.
    """
    saved = None
    Tensor = _TENSOR or _tensor_class()  # noqa: N806 - the class, imported late
    for t in (*inputs, *outputs):
        if isinstance(t, Tensor):
            array = t.array
            root = array if array.base is None else _root(array)
            for k in kept:
                if k is root:
                    counter = t._counter()
                    producer = t._ctx.name if t._ctx is not None else None
                    entry = (counter, counter.value, array.shape, array.dtype, producer,
                             t._out_idx)
                    saved = [entry] if saved is None else [*saved, entry]
                    break
    return saved


_DTYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
                "int64": "LongTensor", "int32": "IntTensor", "bool": "BoolTensor"}


def _check_versions(fn: Function) -> None:
    """Refuse to run ``fn.backward`` if a tensor it kept was written in place since (PyTorch's
    message, naming the op whose backward needs it)."""
    for counter, version, shape, dtype, producer, index in fn._saved or ():
        if counter.value != version:
            kind = _DTYPE_NAMES.get(str(dtype), f"Tensor[{dtype}]")
            where = f", which is output {index} of {producer}Backward" if producer else ""
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [wally.{kind} {list(shape)}]{where}, is at version "
                f"{counter.value}; expected version {version} instead. {fn.name}Backward needs "
                "its value from the forward pass: make the in-place change out of place "
                "(y = y + 1 instead of y += 1), or .clone() the tensor before changing it."
            )


class Function:
    """One differentiable operation: a node of the autograd graph."""

    needs_input_grad: tuple[bool, ...]
    _edges: tuple[tuple[Function | None, int, Tensor] | None, ...]
    _saved: list[Any] | None
    _grads: list[ndarray | None] | None
    _n_outputs: int
    _freed: bool = False

    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError

    def backward(self, *grad_outputs: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *inputs: Any) -> Any:
        Tensor = _TENSOR or _tensor_class()  # noqa: N806 - the class, imported late
        arrays = [x.array if isinstance(x, Tensor) else x for x in inputs]
        if _state.grad_enabled:
            needs = tuple([isinstance(x, Tensor) and x.requires_grad for x in inputs])
            record = True in needs or _state.record_all
        else:  # inference: nothing to record (and no generator to run per op)
            needs = _NOTHING[len(inputs)] if len(inputs) < len(_NOTHING) else (False,) * len(inputs)
            record = False
        self.needs_input_grad = needs
        try:
            raw = self.forward(*arrays)
        except ValueError as error:
            if "broadcast" not in str(error):
                raise
            shapes = ", ".join(str(getattr(a, "shape", ())) for a in arrays)
            raise ValueError(f"{self.name}: shapes {shapes} cannot be broadcast together") from None
        multiple = isinstance(raw, tuple)
        raw_outputs = raw if multiple else (raw,)
        if _anomaly["enabled"]:
            import traceback

            self._created_at = traceback.format_stack(limit=8)[:-1]
            _check_anomaly(self, arrays, raw_outputs, "forward")
        if not (record or multiple) and isinstance(raw, ndarray):
            out = Tensor._make(raw, False, None, 0)  # inference's one array: nothing to record
            if raw.base is not None:
                _share_versions((out,), inputs)
            return out
        kept = _kept(self) if record else None
        outputs = []
        for index, y in enumerate(raw_outputs):
            if not isinstance(y, ndarray):
                y = xp.asarray(y)
            differentiable = record and y.dtype.kind in "fc"
            node = self if differentiable or (record and _state.record_all) else None
            outputs.append(Tensor._make(y, differentiable, node, index))
        _share_versions(outputs, inputs)
        if record:
            # Where each input's gradient goes (its producer and output index, and the tensor),
            # fixed now: an in-place op may later make the same Python tensor the output of
            # another node.
            self._edges = tuple((x._ctx, x._out_idx, x) if isinstance(x, Tensor) else None
                                for x in inputs)
            # The non-tensor operands (``x + 1.0``), for tools that read the graph (ONNX export).
            self.constants = tuple(None if isinstance(x, Tensor) else x for x in inputs)
            self._n_outputs = len(outputs)
            self._grads = None
            self._saved = _saved_versions(kept, inputs, outputs) if kept else None
        return tuple(outputs) if multiple else outputs[0]

    @property
    def inputs(self) -> tuple[Tensor | None, ...]:
        """The tensor operands the node was recorded with (``None`` for constants), for tools
        that read the graph (ONNX export, the cost analysis)."""
        return tuple(None if edge is None else edge[2] for edge in self._edges)

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"


def _tensor_class() -> type[Tensor]:
    global _TENSOR
    if _TENSOR is None:
        from wally.tensor import Tensor

        _TENSOR = Tensor
    return _TENSOR


_TENSOR: type[Tensor] | None = None


def _topological_order(roots: list[Function]) -> list[Function]:
    """Nodes reachable from ``roots``, each after every node that consumes its outputs.

    Iterative depth-first post-order (no recursion limit on deep graphs): a node is marked when
    it is expanded, not when it is pushed, so a node reached by several paths is emitted only
    after all of them.
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


class _Targets:
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


def _route(x: Tensor, g: ndarray, handed: set[int] | None = None,
           ctx: Function | None = None, out_idx: int = 0, targets: _Targets | None = None) -> None:
    """Send gradient ``g`` to tensor ``x``: into the slot of its producer ``ctx`` (output
    ``out_idx``), or onto a leaf's ``.grad`` when ``ctx`` is None (into ``targets`` instead, for
    ``autograd.grad``, which leaves the leaves' ``.grad`` alone; as in PyTorch, a tensor that
    called ``retain_grad()`` still gets its ``.grad`` when the pass runs its producer).

    ``handed`` holds the ids of the arrays this backward has already given away (and of the
    caller's own gradient): a leaf may keep ``g`` itself, without a copy, only when ``g`` owns
    its memory, is writeable and was never handed out before, so that zeroing one ``.grad`` in
    place can't change another (``(a + b).sum().backward()`` routes one array to both).
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


def run_backward(tensor: Tensor, grad: ndarray, retain_graph: bool = False) -> None:
    """Back-propagate ``grad`` (d loss / d tensor) through the graph that produced ``tensor``."""
    if tensor._ctx is None:
        tensor._accumulate_grad(grad)
        return
    _backward([tensor], [grad], retain_graph)


def _backward(outputs: list[Tensor], grads: list[ndarray], retain_graph: bool,
              targets: _Targets | None = None) -> None:
    """Run the graph behind ``outputs`` backwards from their gradients ``grads``: onto the
    leaves' ``.grad``, or into ``targets`` only."""
    roots = [tensor._ctx for tensor in outputs if tensor._ctx is not None]
    everything = order = _topological_order(roots) if roots else []
    if targets is not None:
        order = targets.prune(everything)
    for tensor, grad in zip(outputs, grads):
        # (an output may be a leaf itself: ``grad(x, x)``)
        _route(tensor, grad, None, tensor._ctx, tensor._out_idx, targets)
    # With retain_graph the saved arrays live on, and a backward might return one of them.
    handed = None if retain_graph else {id(grad) for grad in grads}
    with no_grad():
        for fn in order:
            grad_outputs = fn._grads
            fn._grads = None
            if grad_outputs is None:
                continue
            if targets is not None:
                for slot, g in enumerate(grad_outputs):
                    index = targets.slots.get((id(fn), slot))
                    if index is not None and g is not None:
                        targets.add(index, g)
                if id(fn) not in targets.through:
                    continue
            if fn._saved is not None:
                _check_versions(fn)
            grads_in = fn.backward(*grad_outputs)
            if not isinstance(grads_in, tuple):
                grads_in = (grads_in,)
            if _anomaly["enabled"]:
                _check_anomaly(fn, grad_outputs, grads_in, "backward")
            if len(grads_in) != len(fn._edges):
                raise RuntimeError(
                    f"{fn.name}.backward returned {len(grads_in)} gradients for "
                    f"{len(fn._edges)} inputs"
                )
            for edge, g, needed in zip(fn._edges, grads_in, fn.needs_input_grad):
                if not needed or g is None or edge is None:
                    continue
                parent, out_idx, x = edge
                if g.shape != x.shape:
                    raise RuntimeError(
                        f"{fn.name}.backward returned a gradient of shape {tuple(g.shape)} for an "
                        f"input of shape {tuple(x.shape)}"
                    )
                _route(x, g, handed, parent, out_idx, targets)
            if not retain_graph:
                # Free what forward saved, as PyTorch does, so the graph's activations are not
                # kept alive until the next forward pass overwrites the loss variable.
                fn.__dict__.clear()
                fn._freed = True
        if targets is not None:  # the pruned nodes keep no gradients for a later backward
            for fn in everything:
                fn._grads = None


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
    targets = _Targets(inputs)
    _backward(outputs, seeds, bool(retain_graph), targets)
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
