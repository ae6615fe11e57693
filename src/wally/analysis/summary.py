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

* **Output shape** of the call, batch axis included (``input_size`` includes it too, as in
  torchinfo).
* **Trainable / Non-trainable**: the layer's own parameters, counted once (at the first call
  of a shared module); their total equals ``sum(p.numel() for p in model.parameters())``.
* **MACs** and **FLOPs** by the rules of :mod:`wally.analysis.cost`: a convolution has
  ``k·k·(c_in/groups)·c_out·m_out`` MACs and ``2·MACs + c_out·m_out`` FLOPs.
* **Output**: bytes of the output, what the forward pass stores (summed over all layers, the
  activations that training keeps; inference frees each once its consumers have run).
* **Saved**: bytes of the arrays the layer's autograd nodes keep for backward (a convolution
  keeps its input for the weight gradient, never an im2col matrix, which the backward rebuilds
  chunk by chunk; a ReLU its output, a max-pooling its argmax): what training needs
  beyond the parameters, measured on wally's own ops. Each array is counted once, at the
  first layer holding it; parameters and buffers are left out. Measured in evaluation mode,
  so dropout masks are not in it (batch norm keeps an input-sized array either way).
  Training then needs about parameters + gradients + saved (+ the optimiser's state).
* **RF / Jump / Start**: the receptive field of one output unit, per spatial axis (see
  :mod:`wally.analysis.receptive_field`); ``~`` marks a bound rather than an exact field.
* **dX MACs / dW MACs** (``training=True``, or ``col_names`` ``"input_grad_mult_adds"``,
  ``"weight_grad_mult_adds"``): the backward multiply-adds of the input and the weight
  gradient, where autograd computes them (no ``dX`` for the first layer, no ``dW`` for a frozen
  one; rules in :mod:`wally.analysis.training_cost`, verified against the products the kernels
  run). With ``training=True`` the forward pass runs in training mode (batch norm with batch
  statistics, dropout masks in Saved; the running statistics and the random state are
  restored), the input needs no gradient, and the totals add forward + backward per step.

``col_names`` picks and orders the columns by torchinfo's names (``"input_size"``,
``"output_size"``, ``"num_params"``, ``"params_percent"``, ``"kernel_size"``, ``"mult_adds"``,
``"trainable"``) and wally's own (``"trainable_params"``, ``"non_trainable_params"``,
``"flops"``, ``"output_bytes"``, ``"saved_bytes"``, ``"receptive_field"``,
``"receptive_field_jump"``, ``"receptive_field_start"``); by default wally's full table.

The forward pass runs in evaluation mode (batch norm uses its running statistics and dropout
is the identity; the model's modes are restored afterwards) on a random input drawn from a
private generator, so wally's global random state is untouched. Costs are for the whole
batch: the first axis of ``input_size``.

Example::

    >>> s = wally.summary(wally.models.lenet(), input_size=(1, 1, 28, 28), verbose=0)
    >>> s.total_params, s.totals["macs"]
    (61706, 416520)
    >>> print(s)                     # the table; s.to_markdown(), s.to_json() for the others
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from wally._parallel import format_bytes
from wally.analysis.cost import CONVENTION, node_cost, ops_cost
from wally.analysis.receptive_field import Fields, ReceptiveField
from wally.analysis.training_cost import (
    TRAINING_CONVENTION,
    step_macs,
    training_columns,
    training_lines,
    training_totals,
)
from wally.backend import ndarray
from wally.nn.module import Module
from wally.nn.parameter import _raw_array
from wally.tensor import Tensor
from wally.tracing import (
    Call,
    CallTrace,
    example_inputs,
    input_sizes,
    modes_kept,
    record_calls,
    training_state,
)

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
    input_shape: list[tuple[int, ...]] = field(default_factory=list)
    kernel_size: list[int] | int | None = None
    input_grad_macs: int = 0  # backward: dX, where autograd computes it (training_cost)
    weight_grad_macs: int = 0  # backward: dW, where the weight requires grad

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
        inputs = [list(s) for s in self.input_shape]
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "depth": self.depth,
            "input_shape": inputs[0] if len(inputs) == 1 else inputs,
            "output_shape": shapes[0] if len(shapes) == 1 else shapes,
            "kernel_size": self.kernel_size,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.macs,
            "flops": self.flops,
            "output_bytes": self.output_bytes,
            "saved_bytes": self.saved_bytes,
            "input_grad_macs": self.input_grad_macs,
            "weight_grad_macs": self.weight_grad_macs,
            "receptive_field": None if self.receptive_field is None
            else self.receptive_field.to_dict(),
            "rule": self.rule,
            "subtotal": self.subtotal,
        }


_SUMMED = ("trainable_params", "non_trainable_params", "macs", "flops", "output_bytes",
           "saved_bytes", "input_grad_macs", "weight_grad_macs")


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
    col_names: tuple[str, ...] = ()
    training: bool = False  # summary(..., training=True): a training step's costs

    @property
    def mode(self) -> str:
        return "training mode" if self.training else "evaluation mode"

    @property
    def total_params(self) -> int:
        return int(self.totals["params"])

    @property
    def trainable_params(self) -> int:
        """torchinfo's name: the trainable parameters of the whole model."""
        return int(self.totals["trainable_params"])

    @property
    def total_mult_adds(self) -> int:
        """torchinfo's name for the total multiply-accumulates, ``totals["macs"]``."""
        return int(self.totals["macs"])

    @property
    def summary_list(self) -> list[LayerSummary]:
        """torchinfo's name for the rows, :attr:`layers`."""
        return self.layers

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_shape": [list(s) for s in self.input_shape],
            "dtype": self.dtype,
            "mode": "train" if self.training else "eval",
            "conventions": conventions(self.training),
            "layers": [row.to_dict() for row in self.layers],
            "totals": self.totals,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def _visible(self) -> Iterator[LayerSummary]:
        for row in self.layers:
            if self.max_depth is None or row.depth <= self.max_depth:
                yield row

    def _columns(self) -> tuple[str, ...]:
        return self.col_names or DEFAULT_COLUMNS

    def _cells(self, row: LayerSummary, indent: str) -> list[str]:
        values = row.subtotal if row.subtotal is not None else {k: getattr(row, k) for k in _SUMMED}
        return [indent * row.depth + row.label,
                *(COLUMNS[name].cell(row, values, self) for name in self._columns())]

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
            *(training_lines(t) if self.training else []),
        ]

    def __str__(self) -> str:
        header = [
            f"{self.model}: input {', '.join(_shape(s) for s in self.input_shape)} {self.dtype}, "
            f"{self.mode}",
            *(f"{key}: {text}" for key, text in conventions(self.training).items()),
        ]
        rows = [self._cells(row, "  ") for row in self._visible()]
        headers = self._headers()
        table = [headers, *rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
        left = self._left_aligned()
        lines = []
        for r in table:
            cells = [
                c.ljust(w) if left[i] else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
        rule = "-" * max(len(line) for line in lines)
        return "\n".join(
            [*header, rule, lines[0], rule, *lines[1:], rule, *self._total_lines()]
        )

    def _headers(self) -> list[str]:
        return ["Layer", *(COLUMNS[name].header for name in self._columns())]

    def _left_aligned(self) -> list[bool]:
        return [True, *(COLUMNS[name].left for name in self._columns())]

    def to_markdown(self) -> str:
        """The table in GitHub markdown, the conventions and totals as a list below it."""
        header = [f"**{self.model}**: input {', '.join(_shape(s) for s in self.input_shape)} "
                  f"{self.dtype}, {self.mode}", ""]
        lines = ["| " + " | ".join(self._headers()) + " |",
                 "|" + "|".join(":---" if left else "---:" for left in self._left_aligned())
                 + "|"]
        for row in self._visible():
            cells = self._cells(row, "&nbsp;&nbsp;")
            cells = [c.replace("|", "\\|") for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        notes = ["", *(f"- {key}: {text}" for key, text in conventions(self.training).items()), ""]
        totals = [f"- {line}" for line in self._total_lines()]
        return "\n".join(header + lines + notes + totals) + "\n"


    def _repr_html_(self) -> str:
        """The table as HTML, which Jupyter shows when a summary ends a cell: one ``<tr>`` per
        row, nested rows indented, numbers right-aligned; the totals as a list below."""
        from html import escape

        left = self._left_aligned()

        def cells(tag: str, values: list[str], depth: int = 0) -> str:
            out = []
            for i, value in enumerate(values):
                style = "text-align:left" if left[i] else "text-align:right"
                if i == 0 and depth:
                    style += f";padding-left:{1 + 1.5 * depth:g}em"
                out.append(f'<{tag} style="{style}">{escape(value)}</{tag}>')
            return "<tr>" + "".join(out) + "</tr>"

        caption = (f"{self.model}: input {', '.join(_shape(s) for s in self.input_shape)} "
                   f"{self.dtype}, {self.mode}")
        rows = [cells("td", self._cells(row, ""), row.depth) for row in self._visible()]
        notes = "".join(f"<li>{escape(f'{key}: {text}')}</li>"
                        for key, text in conventions(self.training).items())
        totals = "".join(f"<li>{escape(line)}</li>" for line in self._total_lines())
        return (f'<div class="wally-summary"><table><caption style="text-align:left">'
                f"{escape(caption)}</caption><thead>{cells('th', self._headers())}</thead>"
                f"<tbody>{''.join(rows)}</tbody></table><ul>{totals}</ul>"
                f"<details><summary>conventions</summary><ul>{notes}</ul></details></div>")


@dataclass(frozen=True)
class Column:
    """A column of the table: its header, alignment and the text of one row's cell."""

    header: str
    left: bool
    cell: Callable[[LayerSummary, dict[str, int], ModelSummary], str]


def _summed(key: str, text: Callable[[int], str] = "{:,}".format) -> Callable[..., str]:
    """A column of a summed quantity: a block shows its subtotal, in parentheses."""
    def cell(row: LayerSummary, values: dict[str, int], _: ModelSummary) -> str:
        value = sum(values[k] for k in key.split("+"))
        return f"({text(value)})" if row.subtotal is not None else text(value)
    return cell


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join(_shape(s) for s in shapes) or "-"


def _percent(row: LayerSummary, values: dict[str, int], s: ModelSummary) -> str:
    total = s.total_params
    if not total:
        return "--"
    text = f"{100 * (values['trainable_params'] + values['non_trainable_params']) / total:.2f}%"
    return f"({text})" if row.subtotal is not None else text


def _kernel(row: LayerSummary, *_: Any) -> str:
    return "--" if row.kernel_size is None else str(row.kernel_size)


def _trainable(row: LayerSummary, values: dict[str, int], _: ModelSummary) -> str:
    """torchinfo's rule: "--" without parameters, else "True", "False" or "Partial"."""
    trainable, frozen = values["trainable_params"], values["non_trainable_params"]
    if trainable + frozen == 0:
        return "--"
    return "True" if not frozen else "False" if not trainable else "Partial"


def _field(index: int) -> Callable[..., str]:
    return lambda row, *_: _field_cells(row.receptive_field)[index]


COLUMNS: dict[str, Column] = {
    # torchinfo's columns, by torchinfo's names
    "input_size": Column("Input shape", True, lambda row, *_: _shapes(row.input_shape)),
    "output_size": Column("Output shape", True, lambda row, *_: _shapes(row.output_shape)),
    "num_params": Column("Params", False, _summed("trainable_params+non_trainable_params")),
    "params_percent": Column("Params %", False, _percent),
    "kernel_size": Column("Kernel shape", True, _kernel),
    "mult_adds": Column("MACs", False, _summed("macs")),
    "trainable": Column("All trainable", True, _trainable),
    # wally's own
    "trainable_params": Column("Trainable", False, _summed("trainable_params")),
    "non_trainable_params": Column("Non-trainable", False, _summed("non_trainable_params")),
    "flops": Column("FLOPs", False, _summed("flops")),
    "output_bytes": Column("Output", False, _summed("output_bytes", format_bytes)),
    "saved_bytes": Column("Saved", False, _summed("saved_bytes", format_bytes)),
    "receptive_field": Column("RF", False, _field(0)),
    "receptive_field_jump": Column("Jump", False, _field(1)),
    "receptive_field_start": Column("Start", False, _field(2)),
    # the backward pass (wally.analysis.training_cost): torchinfo's "mult_adds", per gradient
    "input_grad_mult_adds": Column("dX MACs", False, _summed("input_grad_macs")),
    "weight_grad_mult_adds": Column("dW MACs", False, _summed("weight_grad_macs")),
}

#: the columns shown when ``col_names`` is not given: wally's full table
DEFAULT_COLUMNS = ("output_size", "trainable_params", "non_trainable_params", "mult_adds",
                   "flops", "output_bytes", "saved_bytes", "receptive_field",
                   "receptive_field_jump", "receptive_field_start")


def conventions(training: bool = False) -> dict[str, str]:
    """What each column means, as printed above the table (with ``training``, the backward
    columns too)."""
    return {**_conventions(), **({"dX/dW MACs": TRAINING_CONVENTION} if training else {})}


def _conventions() -> dict[str, str]:
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


# ----- the rows ------------------------------------------------------------------------------
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
    """Bytes that autograd nodes keep for backward, each buffer counted once. A node no
    gradient goes through (a frozen layer's, recorded only by the tracer) keeps nothing:
    autograd would not have recorded it."""

    def __init__(self, excluded: set[int]) -> None:
        self.seen = set(excluded)

    def of(self, nodes: Sequence[Any]) -> int:
        total = 0
        for node in nodes:
            if True not in node.needs_input_grad:
                continue
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


def _kernel_size(module: Module) -> list[int] | int | None:
    """torchinfo's kernel size: the module's ``kernel_size`` as a list (or an int), if any."""
    k = getattr(module, "kernel_size", None)
    if isinstance(k, int) and not isinstance(k, bool):
        return k
    if isinstance(k, tuple | list):
        return [int(n) for n in k]
    return None


class _Builder:
    """Turns the tree of calls into rows."""

    def __init__(self, fields: Fields, saved: _SavedMemory) -> None:
        self.fields = fields
        self.saved = saved
        self.counted: set[int] = set()
        self.rows: list[LayerSummary] = []

    def call_row(self, call: Call) -> None:
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
            receptive_field=self.fields.fields.get(id(call.outputs[0])) if call.outputs else None,
            input_shape=[tuple(t.shape) for t in call.inputs],
            kernel_size=_kernel_size(call.module),
        )
        if not call.first:
            row.rule = "shared: parameters counted at its first call"
        self.rows.append(row)
        if kind == "layer":
            cost = ops_cost(call.ops)
            row.macs, row.flops = cost.macs, cost.flops
            row.rule = f"{row.rule}; {cost.rule}" if row.rule else cost.rule
            row.output_bytes = sum(t.array.nbytes for t in call.outputs)
            row.saved_bytes = self.saved.of([node for node, _ in call.ops])
            row.input_grad_macs, row.weight_grad_macs = step_macs(call.ops)
            return
        for item in call.ordered():
            if isinstance(item, Call):
                self.call_row(item)
            else:
                self.op_row(call, *item)

    def op_row(self, call: Call, node: Any, out: Tensor) -> None:
        cost = node_cost(node, out)
        input_grad, weight_grad = step_macs([(node, out)])
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
            receptive_field=self.fields.of(out),
            rule=cost.rule,
            input_shape=[tuple(x.shape) for x in node.inputs or () if x is not None],
            input_grad_macs=input_grad,
            weight_grad_macs=weight_grad,
        ))

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


_ROW_SETTINGS = ("depth", "var_names", "ascii_only", "hide_recursive_layers")


def _torchinfo_options(kwargs: dict[str, Any]) -> None:
    """Accept torchinfo's layout and placement options (popping them from ``kwargs``, which
    go to ``forward``): the table's layout is wally's own, so they change nothing, but a bad
    value is still an error, and a device or mode wally can't honour is refused."""
    col_width = kwargs.pop("col_width", 25)
    if isinstance(col_width, bool) or not isinstance(col_width, int) or col_width <= 0:
        raise ValueError(f"summary: col_width must be a positive integer, got {col_width!r}")
    rows = kwargs.pop("row_settings", None)
    unknown = [r for r in rows or () if r not in _ROW_SETTINGS]
    if unknown:
        raise ValueError(f"summary: unknown row_settings {unknown}; torchinfo's are "
                         f"{', '.join(_ROW_SETTINGS)}")
    kwargs.pop("cache_forward_pass", None)
    device = kwargs.pop("device", None)
    if device is not None and str(getattr(device, "type", device)) != "cpu":
        raise ValueError(f"summary: the forward pass runs on the CPU, got device={device!r}")
    mode = kwargs.pop("mode", None)
    if mode not in (None, "eval"):
        raise ValueError(f"summary: wally measures in evaluation mode only (mode='eval'), got "
                         f"mode={mode!r}")


def summary(
    model: Module,
    input_size: Any = None,
    input_data: Any = None,
    *,
    batch_dim: int | None = None,
    col_names: Iterable[str] | None = None,
    depth: int | None = 3,
    dtypes: Sequence[Any] | None = None,
    verbose: int | None = None,
    dtype: Any = None,
    input: Any = None,
    training: bool = False,
    **kwargs: Any,
) -> ModelSummary:
    """Summarise ``model`` from one forward pass, following torchinfo's ``summary``: per call
    of every module, its output shape, parameters, MACs and FLOPs, memory and receptive
    field, and the totals.

    Args:
        model: any :class:`wally.nn.Module`; sequential or not.
        input_size: the shape of the input, **batch axis included** as in torchinfo, e.g.
            ``(1, 1, 28, 28)``; a list of shapes for a model with several inputs. Defaults
            to ``(1, *model.input_size)`` (the builders in :mod:`wally.models` record the
            ``(C, H, W)`` of one sample).
        input_data: a tensor, a sequence of tensors (positional inputs) or a dict of them
            (keyword inputs) to run instead of a random input. ``input=`` is an alias.
        batch_dim: as in torchinfo: ``input_size`` then leaves out the batch axis, and one of
            size 1 is inserted at ``batch_dim``.
        col_names: the columns to show, in order (see :data:`COLUMNS`): torchinfo's
            ``"input_size"``, ``"output_size"``, ``"num_params"``, ``"params_percent"``,
            ``"kernel_size"``, ``"mult_adds"``, ``"trainable"`` and wally's
            ``"trainable_params"``, ``"non_trainable_params"``, ``"flops"``,
            ``"output_bytes"``, ``"saved_bytes"``, ``"receptive_field"``,
            ``"receptive_field_jump"``, ``"receptive_field_start"``. Default: wally's full
            table (:data:`DEFAULT_COLUMNS`).
        depth: show rows down to this depth (0 being the model; torchinfo's default 3;
            ``None`` for all); the totals still count everything.
        dtypes: one dtype per input (torchinfo's); ``dtype`` gives one for all. Default: the
            parameters' dtype. Integer inputs are zeros (valid indices).
        verbose: as in torchinfo: 0 prints nothing, 1 or 2 print the table; ``None`` prints
            it in a script and not in an interactive session (where the result shows itself).
        training: the cost of one training step: the forward pass in training mode, the
            ``dX MACs`` and ``dW MACs`` columns after ``MACs`` (unless ``col_names`` is
            given), and the totals ``input_grad_macs``, ``weight_grad_macs``,
            ``backward_macs`` and ``step_macs`` (see :mod:`wally.analysis.training_cost`).
        **kwargs: more keyword arguments of the model's ``forward``. torchinfo's
            ``col_width``, ``row_settings``, ``cache_forward_pass``, ``device='cpu'`` and
            ``mode='eval'`` are accepted and change nothing (wally sizes its columns to fit,
            runs on the CPU and measures in evaluation mode); another device or
            ``mode='train'`` is refused.

    Returns:
        A :class:`ModelSummary`: ``print`` it, or use ``.layers``, ``.totals``,
        ``.total_params``, ``.trainable_params``, ``.total_mult_adds``, ``.to_dict()``,
        ``.to_json()``, ``.to_markdown()``.

    The receptive field of each row follows ``r_out = r_in + (k − 1)·d·j_in``,
    ``j_out = j_in·s`` and ``start_out = start_in − p·j_in`` through every convolution and
    pooling, and takes the union of the branches where they merge.

    Shape:
        The model runs on ``input_size`` itself, e.g. ``(N, C, *spatial)``; each row's
        ``input_shape`` and ``output_shape`` include the batch axis.

    Example::

        >>> s = summary(wally.models.lenet(), input_size=(1, 1, 28, 28), verbose=0)
        >>> s.total_params
        61706
        >>> [row.receptive_field.size for row in s.layers if row.name == "5"]
        [(16, 16)]
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: expected a wally.nn.Module, got {type(model).__name__}")
    if "batch_size" in kwargs:
        raise TypeError(
            "summary: batch_size= is gone: input_size includes the batch axis, as in "
            f"torchinfo, e.g. input_size=({kwargs['batch_size']}, 1, 28, 28)"
        )
    _torchinfo_options(kwargs)
    if input is not None:
        if input_data is not None and input_data is not input:
            raise ValueError("summary: pass input_data= or its alias input=, not both")
        input_data = input
    if input_data is not None and input_size is not None:
        raise ValueError("summary: pass one of input_size and input_data, not both (as in "
                         "torchinfo)")
    columns = DEFAULT_COLUMNS if col_names is None else tuple(col_names)
    if training is not False and training is not True:
        raise TypeError(f"summary: training must be True or False, got {training!r}")
    if training and col_names is None:
        columns = training_columns(columns)
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown or not columns:
        raise ValueError(f"summary: unknown col_names {unknown}; expected some of "
                         f"{', '.join(COLUMNS)}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)
                              or depth < 0):
        raise ValueError(f"summary: depth must be an integer >= 0 or None, got {depth!r}")
    if verbose not in (None, 0, 1, 2):
        raise ValueError(f"summary: verbose must be 0, 1, 2 or None, got {verbose!r}")
    if dtype is not None:
        if dtypes is not None:
            raise ValueError("summary: pass dtypes= (one per input) or dtype=, not both")
        count = len(input_sizes(input_size)) if input_size is not None else 1
        dtypes = [dtype] * count
    inputs, keywords = example_inputs(model, input_size, input_data, batch_dim, dtypes)
    if training:  # a training step: the images need no gradient (so no dX for the first layer)
        inputs = [Tensor(x.array) for x in inputs]
        keywords = {k: Tensor(v.array) for k, v in keywords.items()}
    every_input = [*inputs, *keywords.values()]
    with modes_kept(model):
        model.train(training)
        restore = training_state(model) if training else None
        try:
            with record_calls(model) as calls:
                model(*inputs, **keywords, **kwargs)
            builder = _rows(model, calls, every_input)
        finally:
            if restore is not None:
                restore()
    rows = builder.rows
    result = ModelSummary(
        model=type(model).__name__,
        input_shape=[tuple(x.shape) for x in every_input],
        dtype=every_input[0].dtype.name,
        layers=rows,
        totals=_totals(model, rows, every_input),
        max_depth=depth,
        col_names=columns,
        training=training,
    )
    if verbose is None:
        verbose = 0 if getattr(sys, "ps1", None) else 1
    if verbose:
        print(result)
    return result


def _rows(model: Module, calls: CallTrace, inputs: Sequence[Tensor]) -> _Builder:
    """The rows of the recorded calls, in the order the calls began, then the unused layers'.
    (The costs read the layers' modes: batch norm, dropout.)"""
    excluded = {id(_root(_raw_array(p))) for p in model.parameters()}
    excluded |= {id(_root(_raw_array(b))) for b in model.buffers()}
    builder = _Builder(Fields(calls, inputs), _SavedMemory(excluded))
    for call in calls.roots:
        builder.call_row(call)
    builder.unused_rows(model, calls.called)
    builder.subtotals()
    return builder


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
        **training_totals(leaves),
    }
