"""The cost of a training step: the backward pass's multiply-adds, counted by rule and verified
by counting the matrix products the kernels actually run.

Every summary tool counts the forward pass only.  Backward has two products per layer with
weights, each computed only where autograd needs it (the node's ``needs_input_grad``):

=========================  =========================================  ==========================
layer (node)               input gradient ``dX`` (MACs)               weight gradient ``dW``
=========================  =========================================  ==========================
convolution ``ConvNd``     ``k·k·(c_in/g)·c_out·m_out`` (``Wᵀ @ dY``)  the same (``dY @ colsᵀ``)
transposed convolution     ``k·k·(c_out/g)·c_in·m_in``                the same
linear, ``Linear``         ``in·out`` per row (``dY @ W``)             the same (``dYᵀ @ X``)
matmul ``A @ B``           the forward's, once per operand needing    --
                           a gradient
batch norm (training)      ``2`` per element (``x̂·a + dY``, ``×γ/σ``)  ``1`` per element
                           ``+1`` for ``Σ dY·x̂`` when ``dW`` is not    (``Σ dY·x̂``)
                           wanted (the input gradient needs it)
batch norm (evaluation)    ``1`` per element (``dY·γ/σ``)              ``1`` per element
bias                       --                                         0 MACs: ``Σ dY``, additions
pooling, activations,      0: masks, scatters and element-wise        --
dropout, reshapes,         products of ``dY`` (FLOPs, not MACs)
embedding (a scatter-add)
=========================  =========================================  ==========================

``m_out`` is the number of output positions, as in :mod:`wally.analysis.cost`: each backward
product of a convolution is the forward product with one operand transposed, so it has the
forward's ``m·k·n``.  What is **not** computed is not counted: a frozen layer
(``requires_grad=False``) has no ``dW``; the first layer has no ``dX`` (the images need no
gradient), and neither has any layer below which nothing needs a gradient (autograd records
no node there at all).  A training step costs ``forward + Σ dX + Σ dW`` MACs.

Verified, not estimated: :func:`count_products` sees every matrix product the kernels run
(they call ``wally.backend.matmul`` / ``wally.backend.dot``, the one counting point), and
:func:`count_step` attributes them to layers and passes during one real training step, so
``tests/test_training_cost.py`` asserts the summary's figures equal the products' summed
``m·k·n``, kernel by kernel.  The kernels of :mod:`wally.backends.conv` run these products:

* ``reference``, ``im2col`` with exact columns, ``rows``: exactly the direct count above;
* ``im2col`` with **wide rows** (stride 1): ``W @ cols`` over the padded row length, so
  ``row_padded / OW`` times the direct count (the junk columns are dropped afterwards);
* ``flipped`` input gradient: a forward convolution of ``dY`` over the input's positions,
  ``k·k·(c_out/g)·c_in·m_in``: more than the direct ``…·m_out`` where the padding is smaller
  than ``d·(k − 1)`` (its extra taps multiply the zero border);
* ``winograd`` F(2×2, 3×3): ``16·c_in·c_out`` per 2×2 output tile against the direct 36
  (4/9 of it for even sizes), plus ``16·9·c_in·c_out`` for the weight transform;
* ``depthwise``: no matrix product: one element-wise multiply per tap over the whole chunk
  (``backend.multiply``, counted too), ``k·k·c·m_out`` in all, the direct count.
* ``direct`` (compiled, :mod:`wally.backends.accel`): no matrix product: every weight over
  each image's wide rows, ``k·k·(c_in/g)·c_out·OH·W_pad`` per image (counted at
  ``accel.call``, the compiled kernels' counting point).

The summary gives the direct count: it is the arithmetic the layer defines, whichever kernel
runs it (:func:`kernel_products` says what a kernel runs instead).

Example::

    >>> s = wally.summary(wally.models.lenet(), input_size=(1, 1, 28, 28), training=True,
    ...                   verbose=0)
    >>> s.totals["macs"], s.totals["input_grad_macs"], s.totals["weight_grad_macs"]
    (416520, 298920, 416520)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from wally import backend
from wally.analysis.cost import node_cost
from wally.backend import ndarray, xp
from wally.backends import accel
from wally.backends import conv as dispatch
from wally.functional.conv import ConvNd
from wally.functional.conv_transpose import ConvTransposeNd
from wally.functional.linear import Linear as LinearNode
from wally.functional.norm import BatchNorm
from wally.nn.module import Module
from wally.ops import MatMul
from wally.tensor import Tensor
from wally.tracing import Rules

__all__ = [
    "BACKWARD_MACS",
    "Product",
    "StepCount",
    "backward_macs",
    "count_products",
    "count_step",
    "kernel_products",
]

PASSES = ("forward", "input-grad", "weight-grad")

TRAINING_CONVENTION = (
    "backward multiply-adds of the input gradient (dX) and the weight gradient (dW), each the "
    "forward product transposed (conv k·k·c_in/groups·c_out·m_out, linear in·out), where "
    "autograd computes it: no dX for the first layer or below frozen layers, no dW for frozen "
    "ones; batch norm 2-3 (dX) and 1 (dW) per element; biases additions only"
)
"""One line for a training summary's header; the module docstring has the full rules."""


# ----- the rules ------------------------------------------------------------------------------
def _numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


BackwardRule = Callable[[Any, Tensor, tuple[bool, ...]], tuple[int, int]]
BACKWARD_MACS: Rules[BackwardRule] = Rules("wally.analysis.training_cost")
"""The backward rules by node class (the lookup walks the MRO); a node without one has no
multiply-adds in its backward (masks, scatters and element-wise products of ``dY``)."""


@BACKWARD_MACS.register(ConvNd, ConvTransposeNd, LinearNode)
def _weighted_backward(node: Any, output: Tensor, need: tuple[bool, ...]) -> tuple[int, int]:
    forward = node_cost(node, output).macs  # each backward product is the forward's, transposed
    return (forward if need[0] else 0, forward if need[1] else 0)


@BACKWARD_MACS.register(MatMul)
def _matmul_backward(node: Any, output: Tensor, need: tuple[bool, ...]) -> tuple[int, int]:
    forward = node_cost(node, output).macs
    return (forward * (int(need[0]) + int(need[1])), 0)


@BACKWARD_MACS.register(BatchNorm)
def _batch_norm_backward(node: Any, output: Tensor, need: tuple[bool, ...]) -> tuple[int, int]:
    elements = _numel(output.shape)
    if bool(getattr(node, "training", False)):
        dx = (2 + (0 if need[1] else 1)) * elements if need[0] else 0
    else:
        dx = elements if need[0] else 0
    return (dx, elements if need[1] else 0)


def backward_macs(node: Any, output: Tensor) -> tuple[int, int]:
    """``(dX MACs, dW MACs)`` of one autograd node's backward, by the table above; 0 for what
    autograd will not compute (``node.needs_input_grad``).

    Example::

        >>> y = F.conv2d(x, w)                   # x (1, 6, 14, 14) no grad, w (16, 6, 5, 5)
        >>> backward_macs(y.grad_fn, y)          # doctest: +SKIP
        (0, 240000)
    """
    rule = BACKWARD_MACS.find(node)
    if rule is None:
        return (0, 0)
    need = tuple(getattr(node, "needs_input_grad", ())) + (False,) * 3
    return rule(node, output, need)


def step_macs(ops: Sequence[tuple[Any, Tensor]]) -> tuple[int, int]:
    """``(dX, dW)`` MACs of a summary row: :func:`backward_macs` summed over its
    ``(node, output)`` pairs."""
    input_grad = weight_grad = 0
    for node, out in ops:
        dx, dw = backward_macs(node, out)
        input_grad, weight_grad = input_grad + dx, weight_grad + dw
    return input_grad, weight_grad


# ----- what summary(..., training=True) adds -----------------------------------------------------
def training_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The default columns with ``dX MACs`` and ``dW MACs`` right after ``MACs``."""
    extra = ("input_grad_mult_adds", "weight_grad_mult_adds")
    if "mult_adds" not in columns:
        return (*columns, *extra)
    at = columns.index("mult_adds") + 1
    return (*columns[:at], *extra, *columns[at:])


def training_totals(leaves: Sequence[Any]) -> dict[str, int]:
    """The backward totals of the summary's leaf rows, and forward + backward per step."""
    forward = sum(row.macs for row in leaves)
    input_grad = sum(row.input_grad_macs for row in leaves)
    weight_grad = sum(row.weight_grad_macs for row in leaves)
    return {
        "input_grad_macs": input_grad,
        "weight_grad_macs": weight_grad,
        "backward_macs": input_grad + weight_grad,
        "step_macs": forward + input_grad + weight_grad,
    }


def training_lines(t: dict[str, Any]) -> list[str]:
    """The totals' lines of a training summary."""
    ratio = t["step_macs"] / t["macs"] if t["macs"] else 0.0
    return [
        f"Backward MACs: {t['backward_macs']:,} (input gradients {t['input_grad_macs']:,}, "
        f"weight gradients {t['weight_grad_macs']:,}; biases: additions only)",
        f"Training step MACs (forward + backward): {t['step_macs']:,} ({ratio:.2f}x the "
        "forward pass)",
    ]


# ----- the counting point -----------------------------------------------------------------------
@dataclass(frozen=True)
class Product:
    """One matrix product a kernel ran: ``(batch, m, k, n)``, ``batch·m·k·n`` multiply-adds,
    with the layer and pass it belongs to (``None`` outside :func:`count_step`) and the
    convolution kernel that ran it (from :func:`wally.backends.conv.trace`), if any."""

    shape: tuple[int, int, int, int]
    layer: str | None = None
    pass_: str | None = None
    kernel: str | None = None

    @property
    def macs(self) -> int:
        return math.prod(self.shape)


def _shape(a: ndarray, b: ndarray) -> tuple[int, int, int, int]:
    """``(batch, m, k, n)`` of ``a @ b`` (1-D operands as a row and a column)."""
    a_shape, b_shape = tuple(a.shape), tuple(b.shape)
    m, k = (1, a_shape[0]) if len(a_shape) == 1 else a_shape[-2:]
    n = 1 if len(b_shape) == 1 else b_shape[-1]
    batch = (
        xp.broadcast_shapes(a_shape[:-2], b_shape[:-2])
        if len(a_shape) > 2 or len(b_shape) > 2
        else ()
    )
    return (_numel(batch), int(m), int(k), int(n))


class _Where:
    """Where the products go: the layer and phase :func:`count_step` is in."""

    def __init__(self) -> None:
        self.layer: str | None = None
        self.phase: str | None = None
        self.weight: ndarray | None = None
        self.mark = 0  # the trace's length when the phase began


@contextlib.contextmanager
def count_products() -> Iterator[list[Product]]:
    """Within the ``with`` block, record every matrix product the kernels run.

    Replaces ``wally.backend.matmul`` and ``wally.backend.dot`` (the names every convolution,
    linear and Winograd kernel calls for its matrix products) and ``wally.backend.multiply``
    (the depthwise kernel's per-tap products, counted as ``(1, elements, 1, 1)``) with
    counting versions and restores NumPy's own on exit: outside the block the kernels pay
    nothing.  Thread-safe for the kernels' own threads (a
    ``list.append`` per product).

    Example::

        >>> with count_products() as products:
        ...     F.linear(wally.ones(4, 3), wally.ones(2, 3))
        >>> [p.shape for p in products]
        [(1, 4, 3, 2)]
    """
    products: list[Product] = []
    where = _COUNTING.get("where")
    matmul, dot, multiply = backend.matmul, backend.dot, backend.multiply
    compiled = accel.call

    def record(a: ndarray, b: ndarray, shape: tuple[int, int, int, int] | None = None) -> None:
        shape = shape or _shape(a, b)
        if where is None:
            products.append(Product(shape))
            return
        products.append(_attributed(shape, b, where))

    def counting_matmul(a: ndarray, b: ndarray, *args: Any, **kwargs: Any) -> Any:
        record(a, b)
        return matmul(a, b, *args, **kwargs)

    def counting_dot(a: ndarray, b: ndarray, *args: Any, **kwargs: Any) -> Any:
        record(a, b)
        return dot(a, b, *args, **kwargs)

    def counting_multiply(a: ndarray, b: ndarray, *args: Any, **kwargs: Any) -> Any:
        # element-wise (the depthwise taps): one multiply per element of the broadcast result
        record(a, b, (1, _numel(xp.broadcast_shapes(xp.shape(a), xp.shape(b))), 1, 1))
        return multiply(a, b, *args, **kwargs)

    def counting_call(kernel: Any, multiply_adds: int, *args: Any) -> Any:
        record(xp.empty(0), xp.empty(0), (1, int(multiply_adds), 1, 1))
        return compiled(kernel, multiply_adds, *args)

    backend.matmul, backend.dot = counting_matmul, counting_dot  # type: ignore[assignment]
    backend.multiply = counting_multiply  # type: ignore[assignment]
    accel.call = counting_call
    try:
        yield products
    finally:
        backend.matmul, backend.dot, backend.multiply = matmul, dot, multiply
        accel.call = compiled


_COUNTING: dict[str, Any] = {}


def _attributed(shape: tuple[int, int, int, int], b: ndarray, where: _Where) -> Product:
    """The product with its layer, pass and kernel, from the phase and the dispatch trace."""
    log = _COUNTING["log"]
    choice = log[-1] if len(log) > where.mark else None
    kernel = None if choice is None else choice[1]
    if where.phase != "backward":
        return Product(shape, where.layer, where.phase, kernel)
    if choice is not None:  # a convolution: its own pass, or the flipped forward inside dX
        chosen = [name for p, name in log[where.mark :]]
        pass_ = "weight-grad" if choice[0] == "weight-grad" else "input-grad"
        if choice[0] == "forward" and "flipped" in chosen:
            kernel = f"flipped/{kernel}"
        return Product(shape, where.layer, pass_, kernel)
    # linear or matmul: dX = dY @ W reads the weight, dW = dYᵀ @ X does not
    reads_weight = where.weight is not None and xp.shares_memory(b, where.weight)
    return Product(shape, where.layer, "input-grad" if reads_weight else "weight-grad", None)


@dataclass
class StepCount:
    """What :func:`count_step` saw: every product, and their ``m·k·n`` summed per layer and
    pass (``by_layer[name][pass]``); ``kernels[name][pass]`` the kernels that ran."""

    products: list[Product]
    by_layer: dict[str, dict[str, int]] = field(default_factory=dict)
    kernels: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    loss: float = math.nan

    def total(self, pass_: str | None = None) -> int:
        return sum(p.macs for p in self.products if pass_ is None or p.pass_ == pass_)


def _nodes(inputs: list[Tensor], outputs: list[Tensor]) -> list[Any]:
    """The autograd nodes between a call's inputs and outputs (its own ops)."""
    stops = {id(t) for t in inputs}
    pending, seen, nodes = list(outputs), set(), []
    while pending:
        t = pending.pop()
        node = t._ctx
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        pending.extend(x for x in node.inputs or () if x is not None and id(x) not in stops)
    return nodes


def count_step(
    model: Module,
    inputs: Tensor,
    targets: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> StepCount:
    """Run one real training step (forward in training mode, the loss, backward) and count
    the matrix products each layer's forward, input-gradient and weight-gradient passes ran.

    Layers are the model's leaf modules, by :meth:`~wally.nn.Module.named_modules` name; the
    loss's own products (none for cross-entropy) go to ``"(loss)"``.  The parameters'
    gradients are left in ``.grad`` (no optimiser step: it runs no product).

    Shape:
        ``inputs (N, C, H, W)``, ``targets (N,)`` class indices (for the default
        :func:`wally.nn.functional.cross_entropy`).

    Example::

        >>> count = count_step(wally.models.lenet(), wally.randn(1, 1, 28, 28),
        ...                    wally.tensor([3]))
        >>> count.by_layer["3"]    # dX on wide rows: 14 padded columns per 10 outputs
        {'forward': 240000, 'weight-grad': 240000, 'input-grad': 336000}
        >>> count.kernels["3"]["input-grad"]
        {'im2col'}
    """
    from wally.nn import functional as F

    loss_fn = loss_fn or F.cross_entropy
    where = _Where()
    names = {id(m): name for name, m in model.named_modules()}
    handles = []

    def enter(layer: str, phase: str, weight: ndarray | None) -> None:
        where.layer, where.phase, where.weight = layer, phase, weight
        where.mark = len(_COUNTING["log"])

    def weight_of(module: Module) -> ndarray | None:
        w = module._parameters.get("weight")
        return None if w is None else w.array

    def pre_hook(module: Module, args: Any) -> None:
        enter(names[id(module)], "forward", weight_of(module))

    def hook(module: Module, args: Any, output: Any) -> None:
        layer, weight = names[id(module)], weight_of(module)
        ins = [a for a in (args if isinstance(args, tuple) else (args,)) if isinstance(a, Tensor)]
        outs = (
            [output]
            if isinstance(output, Tensor)
            else [t for t in (output or ()) if isinstance(t, Tensor)]
        )
        for node in _nodes(ins, outs):
            backward = node.backward

            def wrapped(*grads: Any, _backward: Any = backward) -> Any:
                enter(layer, "backward", weight)
                try:
                    return _backward(*grads)
                finally:
                    enter("(loss)", "backward", None)

            node.backward = wrapped
        enter("(loss)", "forward", None)

    for module in model.modules():
        if not module._modules:
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.train()
    _COUNTING["where"] = where
    try:
        with dispatch.trace() as log:
            _COUNTING["log"] = log
            enter("(loss)", "forward", None)
            with count_products() as products:
                loss = loss_fn(model(inputs), targets)
                loss.backward()
    finally:
        _COUNTING.clear()
        for handle in handles:
            handle.remove()
        model.train(was_training)
    count = StepCount(products, loss=float(loss.item()))
    for p in products:
        assert p.layer is not None and p.pass_ is not None
        per = count.by_layer.setdefault(p.layer, {})
        per[p.pass_] = per.get(p.pass_, 0) + p.macs
        if p.kernel is not None:
            count.kernels.setdefault(p.layer, {}).setdefault(p.pass_, set()).add(p.kernel)
    return count


# ----- what a kernel runs instead of the direct count ------------------------------------------
def kernel_products(kernel: str, g: dispatch.Geometry, pass_: str = "forward") -> int:
    """The multiply-adds that kernel ``kernel`` runs as matrix products for pass ``pass_`` of
    a convolution of geometry ``g`` (finite operands), against the direct
    ``∏k·(C/g)·O·N·∏out`` of every pass:

    * ``reference``, ``rows``, ``im2col`` with exact columns: the direct count;
    * ``im2col`` with wide rows (stride 1; forward and weight-grad where the padded rows are
      at most ``tuning.MAX_JUNK`` times longer, input-grad always):
      ``∏k·(C/g)·O·N·∏out[:-1]·row_padded``;
    * ``winograd`` (forward): ``16·C·O·N·⌈OH/2⌉·⌈OW/2⌉ + 16·9·O·C`` (the tiles' sixteen
      products, and the weight transform);
    * ``depthwise``: ``∏k·C·N·∏out`` element-wise multiplies (no matrix product), the direct
      count; ``depthwise-direct`` (compiled) the same multiply-adds.

    Example::

        >>> g = dispatch.Geometry((2, 64, 8, 8), (64, 64, 3, 3), (1, 1), ((1, 1), (1, 1)),
        ...                       (1, 1), 1, xp.dtype("float32"))
        >>> kernel_products("reference", g), kernel_products("winograd", g)
        (4718592, 2686976)
    """
    batch, channels = g.input_shape[:2]
    out_channels = g.weight_shape[0]
    window = _numel(g.kernel) * (channels // g.groups)
    if kernel in ("depthwise", "depthwise-direct"):
        return window * out_channels * batch * _numel(g.plan(wide=False).out)
    if kernel == "direct":
        plan = g.plan(wide=False)
        rows = plan.out[0] if len(plan.out) == 2 else 1
        return window * out_channels * batch * rows * plan.padded[-1]
    if kernel == "winograd":
        out_h, out_w = g.plan().out
        tiles = batch * -(-out_h // 2) * -(-out_w // 2)
        return 16 * channels * out_channels * tiles + 16 * 9 * out_channels * channels
    if kernel == "im2col":
        wide = all(s == 1 for s in g.stride) if pass_ == "input-grad" else None
        plan = g.plan(wide=wide)
    else:
        plan = g.plan(wide=False)
    return window * out_channels * batch * _numel(plan.out[:1]) * plan.row
