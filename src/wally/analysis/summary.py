"""``summary(model, input_size)``: per layer, the output shape, parameters, MACs and FLOPs,
activation memory and receptive field, from one forward pass over the real module tree.

Nothing assumes a chain of layers. Forward pre-hooks and hooks on every module record each
call, nested calls included, so the table is the tree of calls: a block's row is followed by
the rows of what it called, one level deeper, and a block's numbers are shown in parentheses,
as the subtotal of its rows (never added again in the totals). Work that a ``forward`` does
outside any sub-module (the residual ``y + x``, an inception ``cat``, an ``F.relu``) is found
by walking the autograd graph back from the block's output and from its children's inputs to
its own inputs and its children's outputs; each such op gets a row of its own, ``(add)``,
``(cat)``, ``(relu)``, placed after the sub-module whose output it uses.

Columns (the header of the printed table repeats them):

* **Output shape** of the call, batch axis included.
* **Trainable / Non-trainable**: the layer's own parameters, counted once (at the first call
  of a shared module); their total equals ``sum(p.numel() for p in model.parameters())``.
* **MACs** and **FLOPs** by the rules of :mod:`wally.analysis.cost`: a convolution has
  ``k·k·(c_in/groups)·c_out·m_out`` MACs and ``2·MACs + c_out·m_out`` FLOPs.
* **Output**: bytes of the output, what the forward pass stores (summed over all layers, the
  activations that training keeps; inference frees each once its consumers have run).
* **Saved**: bytes of the arrays the layer's autograd nodes keep for backward (a convolution
  keeps its im2col matrix, a ReLU its output, a max-pooling its argmax): what training needs
  beyond the parameters, measured on wally's own ops. Each array is counted once, at the
  first layer holding it; parameters and buffers are left out. Measured in evaluation mode,
  so dropout masks are not in it (batch norm keeps an input-sized array either way).
  Training then needs about parameters + gradients + saved (+ the optimiser's state).
* **RF / Jump / Start**: the receptive field of one output unit, per spatial axis (see
  :mod:`wally.analysis.receptive_field`); ``~`` marks a bound rather than an exact field.

The forward pass runs in evaluation mode (batch norm uses its running statistics and dropout
is the identity; the model's modes are restored afterwards) on a random input drawn from a
private generator, so wally's global random state is untouched. Costs are for the whole
batch (``batch_size``, default 1).

Example::

    >>> s = wally.summary(wally.models.lenet(), (1, 28, 28))
    >>> s.total_params, s.totals["macs"]
    (61706, 416520)
    >>> print(s)                     # the table; s.to_markdown(), s.to_json() for the others
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from wally._parallel import format_bytes
from wally.analysis.cost import CONVENTION, LayerCost, module_cost, node_cost
from wally.analysis.receptive_field import (
    ReceptiveField,
    module_receptive_field,
    node_receptive_field,
)
from wally.autograd import enable_grad
from wally.backend import ndarray, xp
from wally.nn.module import Module
from wally.nn.parameter import _raw_array
from wally.tensor import Tensor

__all__ = ["LayerSummary", "ModelSummary", "summary"]


@dataclass
class LayerSummary:
    """One row of a :class:`ModelSummary`: a module call or an op of a ``forward``.

    ``kind`` is ``"layer"`` (a module without sub-modules), ``"block"`` (a module that called
    others; its own numbers are what it holds itself, ``subtotal`` adds its rows), ``"op"``
    (an autograd op done in a block's ``forward``; ``name`` is that block's) or ``"unused"``
    (a module with parameters that the forward pass never called).
    """

    name: str
    type: str
    kind: str
    depth: int
    output_shape: list[tuple[int, ...]]
    trainable_params: int = 0
    non_trainable_params: int = 0
    macs: int = 0
    flops: int = 0
    output_bytes: int = 0
    saved_bytes: int = 0
    receptive_field: ReceptiveField | None = None
    rule: str = ""
    subtotal: dict[str, int] | None = None

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def label(self) -> str:
        """The name shown in the table: the last part of the path and the type."""
        if self.kind == "op":
            return f"({self.type.lower()})"
        short = self.name.rsplit(".", 1)[-1]
        return f"{short}: {self.type}" if short else self.type

    def to_dict(self) -> dict[str, Any]:
        shapes = [list(s) for s in self.output_shape]
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "depth": self.depth,
            "output_shape": shapes[0] if len(shapes) == 1 else shapes,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.macs,
            "flops": self.flops,
            "output_bytes": self.output_bytes,
            "saved_bytes": self.saved_bytes,
            "receptive_field": None if self.receptive_field is None
            else self.receptive_field.to_dict(),
            "rule": self.rule,
            "subtotal": self.subtotal,
        }


_SUMMED = ("trainable_params", "non_trainable_params", "macs", "flops", "output_bytes",
           "saved_bytes")


@dataclass
class ModelSummary:
    """What :func:`summary` returns: the rows, the totals, and three renderings
    (``str(s)`` a text table, :meth:`to_markdown`, :meth:`to_json` / :meth:`to_dict`)."""

    model: str
    input_shape: list[tuple[int, ...]]
    dtype: str
    layers: list[LayerSummary]
    totals: dict[str, Any] = field(default_factory=dict)
    max_depth: int | None = None

    @property
    def total_params(self) -> int:
        return int(self.totals["params"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_shape": [list(s) for s in self.input_shape],
            "dtype": self.dtype,
            "mode": "eval",
            "conventions": conventions(),
            "layers": [row.to_dict() for row in self.layers],
            "totals": self.totals,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def _visible(self) -> Iterator[LayerSummary]:
        for row in self.layers:
            if self.max_depth is None or row.depth <= self.max_depth:
                yield row

    def _cells(self, row: LayerSummary, indent: str) -> list[str]:
        values = row.subtotal if row.subtotal is not None else {k: getattr(row, k) for k in _SUMMED}

        def shown(text: str) -> str:
            return f"({text})" if row.subtotal is not None else text

        rf = row.receptive_field
        shapes = ", ".join(_shape(s) for s in row.output_shape) or "-"
        return [
            indent * row.depth + row.label,
            shapes,
            shown(f"{values['trainable_params']:,}"),
            shown(f"{values['non_trainable_params']:,}"),
            shown(f"{values['macs']:,}"),
            shown(f"{values['flops']:,}"),
            shown(format_bytes(values["output_bytes"])),
            shown(format_bytes(values["saved_bytes"])),
            *_field_cells(rf),
        ]

    def _total_lines(self) -> list[str]:
        t = self.totals
        by_type = ", ".join(f"{k} {v:,}" for k, v in t["macs_by_type"].items()) or "none"
        return [
            f"Parameters: {t['params']:,} (trainable {t['trainable_params']:,}, non-trainable "
            f"{t['non_trainable_params']:,}), {format_bytes(t['param_bytes'])}; buffers: "
            f"{t['buffer_elements']:,} elements",
            f"MACs: {t['macs']:,} ({by_type})",
            f"FLOPs: {t['flops']:,}",
            f"Input: {format_bytes(t['input_bytes'])}; layer outputs (what the forward pass "
            f"stores): {format_bytes(t['output_bytes'])}; saved for backward: "
            f"{format_bytes(t['saved_bytes'])}",
            "Training memory ≈ parameters + gradients + saved = "
            f"{format_bytes(t['training_bytes'])} "
            "(optimiser state not included)",
        ]

    def __str__(self) -> str:
        header = [
            f"{self.model}: input {', '.join(_shape(s) for s in self.input_shape)} {self.dtype}, "
            "evaluation mode",
            *(f"{key}: {text}" for key, text in conventions().items()),
        ]
        rows = [self._cells(row, "  ") for row in self._visible()]
        table = [_COLUMNS, *rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(_COLUMNS))]
        lines = []
        for r in table:
            cells = [
                c.ljust(w) if i in (0, 1) else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
        rule = "-" * max(len(line) for line in lines)
        return "\n".join(
            [*header, rule, lines[0], rule, *lines[1:], rule, *self._total_lines()]
        )

    def to_markdown(self) -> str:
        """The table in GitHub markdown, the conventions and totals as a list below it."""
        header = [f"**{self.model}**: input {', '.join(_shape(s) for s in self.input_shape)} "
                  f"{self.dtype}, evaluation mode", ""]
        lines = ["| " + " | ".join(_COLUMNS) + " |",
                 "|" + "|".join([":---", ":---"] + ["---:"] * (len(_COLUMNS) - 2)) + "|"]
        for row in self._visible():
            cells = self._cells(row, "&nbsp;&nbsp;")
            cells = [c.replace("|", "\\|") for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        notes = ["", *(f"- {key}: {text}" for key, text in conventions().items()), ""]
        totals = [f"- {line}" for line in self._total_lines()]
        return "\n".join(header + lines + notes + totals) + "\n"


_COLUMNS = ["Layer", "Output shape", "Trainable", "Non-trainable", "MACs", "FLOPs", "Output",
            "Saved", "RF", "Jump", "Start"]


def conventions() -> dict[str, str]:
    """What each column means, as printed above the table."""
    return {
        "Params": "the layer's own parameters, trainable or not; (…) = subtotal of a block's rows",
        "MACs/FLOPs": CONVENTION,
        "Output": "bytes of the layer's output, what the forward pass stores",
        "Saved": "bytes its autograd nodes keep for backward, what training needs (each array "
                 "once; parameters excluded)",
        "RF": "receptive field of one output unit per spatial axis; Jump: effective stride; "
              "Start: first input pixel of unit 0's field (negative: in the padding); "
              "~: a bound, not exact",
    }


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _field_cells(rf: ReceptiveField | None) -> list[str]:
    if rf is None:
        return ["", "", ""]
    mark = "" if rf.exact else "~"
    size = mark + "x".join(str(n) for n in rf.size)
    jump = "-" if rf.is_global else "x".join(str(n) for n in rf.jump)
    start = ",".join(str(n) for n in rf.start)
    return [size, jump, start]


# ----- the trace ----------------------------------------------------------------------------
def _tensors(value: Any) -> list[Tensor]:
    """The tensors in a module's arguments or result (nested tuples, lists and dicts)."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    return []


class _Call:
    """One call of one module, with what it called and the ops its own ``forward`` did."""

    def __init__(self, module: Module, name: str, depth: int, first: bool) -> None:
        self.module = module
        self.name = name
        self.depth = depth
        self.first = first
        self.inputs: list[Tensor] = []
        self.outputs: list[Tensor] = []
        self.children: list[_Call] = []
        self.ops: list[tuple[Any, Tensor]] = []  # (autograd node, one of its outputs)


class _Tracer:
    """Forward hooks that build the tree of calls, claim each autograd node for the call
    that created it, and work out the receptive field of every tensor on the way."""

    def __init__(self, model: Module) -> None:
        self.names = {id(m): name for name, m in model.named_modules()}
        self.stack: list[_Call] = []
        self.roots: list[_Call] = []
        self.called: set[int] = set()
        self.owner: set[int] = set()  # ids of the autograd nodes already claimed
        self.fields: dict[int, ReceptiveField | None] = {}
        self.alive: list[Tensor] = []  # keeps every tensor whose id is a key above alive

    def watch(self, x: Tensor) -> None:
        """Mark ``x`` as a model input: its field is the identity on its spatial axes."""
        spatial = tuple(x.shape[2:])
        self.fields[id(x)] = ReceptiveField.identity(len(spatial), spatial) if spatial else None
        self.alive.append(x)

    def pre_hook(self, module: Module, args: Any) -> None:
        parent = self.stack[-1] if self.stack else None
        call = _Call(module, self.names.get(id(module), type(module).__name__),
                     0 if parent is None else parent.depth + 1, id(module) not in self.called)
        self.called.add(id(module))
        call.inputs = _tensors(args)
        self.alive.extend(call.inputs)
        (parent.children if parent is not None else self.roots).append(call)
        self.stack.append(call)

    def hook(self, module: Module, args: Any, output: Any) -> None:
        call = self.stack.pop()
        call.outputs = _tensors(output)
        self.alive.extend(call.outputs)
        self._claim(call)
        self._set_fields(call)

    def _claim(self, call: _Call) -> None:
        """Give ``call`` the autograd nodes between its inputs and children's outputs on one
        side and its output and children's inputs on the other: its own ``forward``'s ops."""
        stops = {id(t) for t in call.inputs}
        stops.update(id(t) for child in call.children for t in child.outputs)
        pending = [t for t in call.outputs if id(t) not in stops]
        pending += [t for child in call.children for t in child.inputs if id(t) not in stops]
        while pending:
            t = pending.pop()
            node = t._ctx
            if node is None or id(node) in self.owner:
                continue
            self.owner.add(id(node))
            call.ops.append((node, t))
            pending.extend(x for x in node.inputs or () if x is not None and id(x) not in stops)

    def field_of(self, t: Tensor) -> ReceptiveField | None:
        """The receptive field of tensor ``t``, from the graph where no hook has set it."""
        pending: list[tuple[Tensor, bool]] = [(t, False)]
        while pending:
            u, inputs_done = pending.pop()
            if id(u) in self.fields:
                continue
            node = u._ctx
            if node is None:
                self.fields[id(u)] = None
                self.alive.append(u)
                continue
            if not inputs_done:
                pending.append((u, True))
                pending.extend((x, False) for x in node.inputs or ()
                               if x is not None and id(x) not in self.fields)
                continue
            known = [
                None if x is None or self.fields.get(id(x)) is None
                else (self.fields[id(x)], tuple(x.shape))
                for x in node.inputs or ()
            ]
            self.fields[id(u)] = (
                None if all(k is None for k in known)
                else node_receptive_field(node, tuple(u.shape), known)  # type: ignore[arg-type]
            )
            self.alive.append(u)
        return self.fields[id(t)]

    def _set_fields(self, call: _Call) -> None:
        if not call.outputs:
            return
        rule = None
        x, y = (call.inputs[0], call.outputs[0]) if call.inputs else (None, None)
        if x is not None and y is not None:
            field_in = self.field_of(x)
            nd = -1 if field_in is None else len(field_in.axes)
            if field_in is not None and x.ndim == nd + 2 and y.ndim == nd + 2:
                rule = module_receptive_field(call.module, field_in, tuple(x.shape),
                                              tuple(y.shape))
        for t in call.outputs:
            if rule is not None and id(t) not in self.fields:
                self.fields[id(t)] = rule
            self.field_of(t)


def _collect_arrays(value: Any, into: list[ndarray]) -> None:
    if isinstance(value, ndarray):
        into.append(value)
    elif isinstance(value, tuple | list):
        for item in value:
            _collect_arrays(item, into)


def _root(a: ndarray) -> ndarray:
    """The array owning ``a``'s memory."""
    while isinstance(a.base, ndarray):
        a = a.base
    return a


class _SavedMemory:
    """Bytes that autograd nodes keep for backward, each buffer counted once."""

    def __init__(self, excluded: set[int]) -> None:
        self.seen = set(excluded)

    def of(self, nodes: Sequence[Any]) -> int:
        total = 0
        for node in nodes:
            arrays: list[ndarray] = []
            for key, value in vars(node).items():
                if key != "inputs":
                    _collect_arrays(value, arrays)
            for a in arrays:
                root = _root(a)
                if id(root) not in self.seen:
                    self.seen.add(id(root))
                    total += root.nbytes
        return total


def _own_parameters(module: Module, counted: set[int]) -> tuple[int, int]:
    trainable = frozen = 0
    for p in module._parameters.values():
        if p is None or id(p) in counted:
            continue
        counted.add(id(p))
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return trainable, frozen


class _Builder:
    """Turns the tree of calls into rows."""

    def __init__(self, tracer: _Tracer, saved: _SavedMemory) -> None:
        self.tracer = tracer
        self.saved = saved
        self.counted: set[int] = set()
        self.rows: list[LayerSummary] = []

    def call_row(self, call: _Call) -> None:
        kind = "block" if call.children else "layer"
        trainable, frozen = _own_parameters(call.module, self.counted) if call.first else (0, 0)
        row = LayerSummary(
            name=call.name,
            type=type(call.module).__name__,
            kind=kind,
            depth=call.depth,
            output_shape=[tuple(t.shape) for t in call.outputs],
            trainable_params=trainable,
            non_trainable_params=frozen,
            receptive_field=self.tracer.fields.get(id(call.outputs[0])) if call.outputs else None,
        )
        if not call.first:
            row.rule = "shared: parameters counted at its first call"
        self.rows.append(row)
        if kind == "layer":
            cost = self.layer_cost(call)
            row.macs, row.flops = cost.macs, cost.flops
            row.rule = f"{row.rule}; {cost.rule}" if row.rule else cost.rule
            row.output_bytes = sum(t.array.nbytes for t in call.outputs)
            row.saved_bytes = self.saved.of([node for node, _ in call.ops])
            return
        for item in self.ordered(call):
            if isinstance(item, _Call):
                self.call_row(item)
            else:
                self.op_row(call, *item)

    def layer_cost(self, call: _Call) -> LayerCost:
        if call.inputs and call.outputs:
            cost = module_cost(call.module, tuple(call.inputs[0].shape),
                               tuple(call.outputs[0].shape))
            if cost is not None:
                return cost
        costs = [node_cost(node, out) for node, out in call.ops]
        if not costs:
            return LayerCost(0, 0, "no arithmetic (returns its input)")
        total = costs[0]
        for cost in costs[1:]:
            total = total + cost
        return total

    def op_row(self, call: _Call, node: Any, out: Tensor) -> None:
        cost = node_cost(node, out)
        self.rows.append(LayerSummary(
            name=call.name,
            type=type(node).__name__,
            kind="op",
            depth=call.depth + 1,
            output_shape=[tuple(out.shape)],
            macs=cost.macs,
            flops=cost.flops,
            output_bytes=out.array.nbytes,
            saved_bytes=self.saved.of([node]),
            receptive_field=self.tracer.field_of(out),
            rule=cost.rule,
        ))

    @staticmethod
    def ordered(call: _Call) -> list[Any]:
        """``call``'s children and ops in the order they ran: each op right after the last
        child whose output it depends on, ops in topological order among themselves."""
        child_of = {id(t): k for k, child in enumerate(call.children) for t in child.outputs}
        index = {id(node): i for i, (node, _) in enumerate(call.ops)}
        order: list[int] = []
        state: set[int] = set()
        for i in range(len(call.ops)):  # iterative depth-first post-order over the ops
            pending = [(i, False)]
            while pending:
                j, done = pending.pop()
                if done:
                    order.append(j)
                    continue
                if j in state:
                    continue
                state.add(j)
                pending.append((j, True))
                for x in call.ops[j][0].inputs or ():
                    k = index.get(id(x._ctx)) if x is not None and x._ctx is not None else None
                    if k is not None and k not in state:
                        pending.append((k, False))
        after: dict[int, int] = {}
        for j in order:
            latest = -1
            for x in call.ops[j][0].inputs or ():
                if x is None:
                    continue
                if id(x) in child_of:
                    latest = max(latest, child_of[id(x)])
                elif x._ctx is not None and id(x._ctx) in index:
                    latest = max(latest, after[index[id(x._ctx)]])
            after[j] = latest
        keyed: list[tuple[tuple[int, int, int], Any]] = [
            ((k, 0, 0), child) for k, child in enumerate(call.children)
        ]
        keyed += [((after[j], 1, rank), call.ops[j]) for rank, j in enumerate(order)]
        keyed.sort(key=lambda pair: pair[0])
        return [item for _, item in keyed]

    def unused_rows(self, model: Module, called: set[int]) -> None:
        for name, module in model.named_modules():
            if id(module) in called:
                continue
            trainable, frozen = _own_parameters(module, self.counted)
            if trainable or frozen:
                self.rows.append(LayerSummary(
                    name=name, type=type(module).__name__, kind="unused",
                    depth=name.count(".") + 1, output_shape=[],
                    trainable_params=trainable, non_trainable_params=frozen,
                    rule="never called by forward",
                ))

    def subtotals(self) -> None:
        for i, row in enumerate(self.rows):
            if row.kind != "block":
                continue
            sums = {key: getattr(row, key) for key in _SUMMED}
            for other in self.rows[i + 1:]:
                if other.depth <= row.depth:
                    break
                if other.kind != "block":
                    for key in _SUMMED:
                        sums[key] += getattr(other, key)
                else:
                    sums["trainable_params"] += other.trainable_params
                    sums["non_trainable_params"] += other.non_trainable_params
            row.subtotal = sums


def _make_inputs(
    model: Module, input_size: Sequence[int] | None, batch_size: int, dtype: Any,
    input: Any,
) -> list[Tensor]:
    if input is not None:
        tensors = _tensors(input)
        if not tensors:
            raise TypeError(f"summary: input must be a Tensor or a tuple of Tensors, got "
                            f"{type(input).__name__}")
        return [Tensor(xp.array(t.array), requires_grad=t.is_floating_point()) for t in tensors]
    if input_size is None:
        input_size = getattr(model, "input_size", None)
        if input_size is None:
            raise ValueError(
                f"summary: pass input_size=(C, H, W) (or input=...); {type(model).__name__} "
                "has no input_size attribute to take it from"
            )
    size = tuple(int(n) for n in input_size)
    if not size or any(n < 1 for n in size):
        raise ValueError(f"summary: input_size must be positive sizes (C, *spatial), got "
                         f"{tuple(input_size)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"summary: batch_size must be a positive integer, got {batch_size!r}")
    if dtype is None:
        dtype = next((p.dtype for p in model.parameters() if p.dtype.kind == "f"), xp.float32)
    rng = xp.random.default_rng(0)
    array = rng.standard_normal((batch_size, *size)).astype(dtype)
    return [Tensor(array, requires_grad=True)]


def summary(
    model: Module,
    input_size: Sequence[int] | None = None,
    *,
    batch_size: int = 1,
    dtype: Any = None,
    input: Any = None,
    depth: int | None = None,
) -> ModelSummary:
    """Summarise ``model`` from one forward pass: per call of every module, its output shape,
    parameters, MACs and FLOPs, memory and receptive field, and the totals.

    Args:
        model: any :class:`wally.nn.Module`; sequential or not.
        input_size: ``(C, *spatial)`` of one input, e.g. ``(1, 28, 28)``; defaults to
            ``model.input_size`` (set by the builders in :mod:`wally.models`).
        batch_size: images in the batch that is run; costs and memory are for all of them.
        dtype: of the input; defaults to the parameters' dtype.
        input: a tensor (or tuple of tensors) to run instead of a random input.
        depth: show rows down to this depth only (the totals still count everything).

    Returns:
        A :class:`ModelSummary`: ``print`` it, or use ``.layers``, ``.totals``,
        ``.to_dict()``, ``.to_json()``, ``.to_markdown()``.

    The receptive field of each row follows ``r_out = r_in + (k − 1)·d·j_in``,
    ``j_out = j_in·s`` and ``start_out = start_in − p·j_in`` through every convolution and
    pooling, and takes the union of the branches where they merge.

    Shape:
        The model runs on ``(batch_size, C, *spatial)`` for ``input_size = (C, *spatial)``;
        each row's ``output_shape`` includes the batch axis.

    Example::

        >>> s = summary(wally.models.lenet(), (1, 28, 28))
        >>> s.total_params
        61706
        >>> [row.receptive_field.size for row in s.layers if row.name == "5"]
        [(16, 16)]
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: expected a wally.nn.Module, got {type(model).__name__}")
    inputs = _make_inputs(model, input_size, batch_size, dtype, input)
    tracer = _Tracer(model)
    for x in inputs:
        tracer.watch(x)
    modes = {id(m): m.training for m in model.modules()}
    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(tracer.pre_hook))
        handles.append(module.register_forward_hook(tracer.hook))
    model.eval()
    try:
        with enable_grad():
            model(*inputs)
        for handle in handles:
            handle.remove()
        # Costs read the layers' modes (batch norm, dropout): build the rows in evaluation.
        excluded = {id(_root(_raw_array(p))) for p in model.parameters()}
        excluded |= {id(_root(_raw_array(b))) for b in model.buffers()}
        builder = _Builder(tracer, _SavedMemory(excluded))
        for call in tracer.roots:
            builder.call_row(call)
        builder.unused_rows(model, tracer.called)
        builder.subtotals()
    finally:
        for handle in handles:
            handle.remove()
        for m in model.modules():
            m.training = modes.get(id(m), m.training)
    rows = builder.rows
    return ModelSummary(
        model=type(model).__name__,
        input_shape=[tuple(x.shape) for x in inputs],
        dtype=str(inputs[0].dtype),
        layers=rows,
        totals=_totals(model, rows, inputs),
        max_depth=depth,
    )


def _totals(
    model: Module, rows: Sequence[LayerSummary], inputs: Sequence[Tensor]
) -> dict[str, Any]:
    leaves = [row for row in rows if row.kind != "block"]
    params = list(model.parameters())
    macs_by_type: dict[str, int] = {}
    for row in leaves:
        if row.macs:
            macs_by_type[row.type] = macs_by_type.get(row.type, 0) + row.macs
    param_bytes = sum(_raw_array(p).nbytes for p in params)
    saved = sum(row.saved_bytes for row in leaves)
    trainable_bytes = sum(_raw_array(p).nbytes for p in params if p.requires_grad)
    return {
        "params": sum(row.params for row in rows),
        "trainable_params": sum(row.trainable_params for row in rows),
        "non_trainable_params": sum(row.non_trainable_params for row in rows),
        "param_bytes": param_bytes,
        "buffer_elements": sum(math.prod(b.shape) for b in model.buffers()),
        "macs": sum(row.macs for row in leaves),
        "flops": sum(row.flops for row in leaves),
        "macs_by_type": macs_by_type,
        "input_bytes": sum(x.array.nbytes for x in inputs),
        "output_bytes": sum(row.output_bytes for row in leaves),
        "saved_bytes": saved,
        "training_bytes": param_bytes + trainable_bytes + saved,
    }
