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
    grad_enabled = True  # the class attribute is every new thread's default


_state = _GradState()


def is_grad_enabled() -> bool:
    """Whether operations are being recorded for differentiation (per thread, as in PyTorch)."""
    return _state.grad_enabled


def set_grad_enabled(mode: bool) -> None:
    _state.grad_enabled = bool(mode)


class _GradMode:
    """Base of ``no_grad`` and ``enable_grad``: a context manager that also decorates functions."""

    mode = True

    def __enter__(self) -> None:
        self._previous = is_grad_enabled()
        set_grad_enabled(self.mode)

    def __exit__(self, *exc: object) -> None:
        set_grad_enabled(self._previous)

    def __call__(self, func: Any) -> Any:
        import functools

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context manager (or decorator) that records nothing: results have no ``grad_fn``."""

    mode = False


class enable_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context manager (or decorator) that turns recording back on inside ``no_grad``."""

    mode = True


class AnomalyError(RuntimeError):
    """Raised under :class:`detect_anomaly` by the first op whose result is NaN or infinite."""


_anomaly = {"enabled": False}


class detect_anomaly(_GradMode):  # noqa: N801 - PyTorch's name
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
            record = True in needs
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
            outputs.append(Tensor._make(y, differentiable, self if differentiable else None, index))
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


def _topological_order(root: Function) -> list[Function]:
    """Nodes reachable from ``root``, each after every node that consumes its outputs.

    Iterative depth-first post-order (no recursion limit on deep graphs): a node is marked when
    it is expanded, not when it is pushed, so a node reached by several paths is emitted only
    after all of them.
    """
    order: list[Function] = []
    expanded: set[int] = set()
    stack: list[tuple[Function, bool]] = [(root, False)]
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


def _route(x: Tensor, g: ndarray, handed: set[int] | None = None,
           ctx: Function | None = None, out_idx: int = 0) -> None:
    """Send gradient ``g`` to tensor ``x``: into the slot of its producer ``ctx`` (output
    ``out_idx``), or onto a leaf's ``.grad`` when ``ctx`` is None.

    ``handed`` holds the ids of the arrays this backward has already given away (and of the
    caller's own gradient): a leaf may keep ``g`` itself, without a copy, only when ``g`` owns
    its memory, is writeable and was never handed out before, so that zeroing one ``.grad`` in
    place can't change another (``(a + b).sum().backward()`` routes one array to both).
    """
    if ctx is None:
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
    if x._retains_grad and x._ctx is ctx:
        x._accumulate_grad(g)


def run_backward(tensor: Tensor, grad: ndarray, retain_graph: bool = False) -> None:
    """Back-propagate ``grad`` (d loss / d tensor) through the graph that produced ``tensor``."""
    root = tensor._ctx
    if root is None:
        tensor._accumulate_grad(grad)
        return
    order = _topological_order(root)
    _route(tensor, grad, None, root, tensor._out_idx)
    # With retain_graph the saved arrays live on, and a backward might return one of them.
    handed = None if retain_graph else {id(grad)}
    with no_grad():
        for fn in order:
            grad_outputs = fn._grads
            fn._grads = None
            if grad_outputs is None:
                continue
            if fn._saved is not None:
                _check_versions(fn)
            grads = fn.backward(*grad_outputs)
            if not isinstance(grads, tuple):
                grads = (grads,)
            if _anomaly["enabled"]:
                _check_anomaly(fn, grad_outputs, grads, "backward")
            if len(grads) != len(fn._edges):
                raise RuntimeError(
                    f"{fn.name}.backward returned {len(grads)} gradients for "
                    f"{len(fn._edges)} inputs"
                )
            for edge, g, needed in zip(fn._edges, grads, fn.needs_input_grad):
                if not needed or g is None or edge is None:
                    continue
                parent, out_idx, x = edge
                if g.shape != x.shape:
                    raise RuntimeError(
                        f"{fn.name}.backward returned a gradient of shape {g.shape} for an "
                        f"input of shape {x.shape}"
                    )
                _route(x, g, handed, parent, out_idx)
            if not retain_graph:
                # Free what forward saved, as PyTorch does, so the graph's activations are not
                # kept alive until the next forward pass overwrites the loss variable.
                fn.__dict__.clear()
                fn._freed = True
