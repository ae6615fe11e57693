"""The study note's cost formula beside the true count, and where "fewer parameters" stops.

The note (``shared/seed/000_0cbea978ded2702b.txt``, line 95) gives the work of a
convolutional layer as

    ``k·k·c_l·c_{l−1}·m_{l−1}``  (the note's line 87: ``m_{l−1}``, "이전 피처맵 크기", the
    *previous* feature map's size)

but each output value of each output channel is one dot product of length
``k·k·c_{l−1}/groups``, so the multiply-adds are

    ``k·k·(c_{l−1}/groups)·c_l·m_l``  (``m_l`` = the output positions)

which is what :mod:`wally.analysis.cost` counts and :func:`wally.summary` reports. The ratio is
exactly ``groups · m_{l−1}/m_l``, and per spatial axis ``n_{l−1}/n_l`` splits into two exact
factors: the padding (``n → n + 2p − d(k−1)`` at stride 1; 1 only for size-keeping padding)
and the stride (``n + 2p − d(k−1) → ⌈(n + 2p − d(k−1))/s⌉``, about ``s``). The two formulas
agree only for stride 1, size-keeping padding and ``groups = 1``. LeNet's second convolution
(5×5, 6 → 16, 14×14 → 10×10): the note gives ``25·6·16·196 = 470,400``, the truth is
``25·6·16·100 = 240,000``; a 3×3 stride-2 layer from 56² to 28² is 4× too high.

The note's argument for convolutions (line 5: "CNN는 MLP에 비해 적은 파라미터를 활용하기
때문에, 계산에있어 더 경제적이다", fewer parameters, hence cheaper to compute) stops here:
a convolution reuses each weight at every output position, so its share of the work is far
larger than its share of the parameters. In LeNet the two convolutions hold about 4 % of the
parameters and do about 86 % of the multiply-adds (:func:`cost_formula` computes both).

The note's other slips, which wally's code corrects (line numbers of the note; quotes verbatim):

* **The weights of a colour image's layer are a 4th-order tensor**, not a 2nd-order one.
  Line 47: "이 경우 입력층 텐서와 은닉층 텐서 모두 3차원이 되고, 가중치만이 2차텐서로 존재할
  것이다" (input and hidden tensors are 3-D, "only the weights remain a 2nd-order tensor").
  The note's own line 50, ``[H]_{i,j,d} = Σ_a Σ_b Σ_c [V]_{a,b,c,d} [X]_{i+a,j+b,c}``, indexes
  ``V`` with four indices; wally's ``Conv2d.weight`` has shape ``(c_out, c_in, k, k)``.
* **No ``dz`` in a discrete convolution.** Line 38: "(f∗g)(i)=a∑f(a)g(i−a)dz"; the sum is
  ``(f∗g)(i) = Σ_a f(a)·g(i − a)``, the ``dz`` of the integral on line 37 has no place in it.
* **A window of half-width Δ has (2Δ+1)² taps, not Δ².** Line 32: "Locality를 활용하여
  103×103Δ2 곱만큼으로 파라미터수를 줄일 수 있게 되었다" (10³·10³/Δ²). The sums on line 30
  run over ``a, b = −Δ … Δ``: ``(2Δ+1)²`` weights, a reduction of ``10⁶/(2Δ+1)²`` (2,268× at
  Δ = 10, not 10,000×). ``wally explain params`` computes it.
* **Convolution is translation equivariant, not invariant.** Lines 12-13 and 25-26 call the
  property "spatial invariance" / "Translation Invariance": but
  ``[H]_{i,j} = u + Σ_a Σ_b [V]_{a,b} [X]_{i+a,j+b}`` (line 27) moves with its input (shift
  ``X`` and ``H`` shifts by as much): equivariance. Only a pooling over all positions makes an
  output invariant. ``wally explain equivariance MODEL`` measures it layer by layer.
* **The output size: which floor, and where the ceiling comes in.** Lines 74 and 112 give it
  as "oh=Floor(shih+2ph−kh+1)", a fraction flattened in the text. Read as
  ``⌊(i_h + 2p_h − k_h)/s_h + 1⌋`` (as ``DESIGN.md`` reads it) it is the number of window
  positions that fit, PyTorch's and wally's; read as ``⌊(i_h + 2p_h − k_h + 1)/s_h⌋`` it is
  wrong whenever ``s`` does not divide ``i + 2p − k + 1`` (27 pixels, k = 5, s = 2: 12
  positions, that reading gives 11). The note leaves out pooling's ``ceil_mode=True``,
  ``⌈(i + 2p − k)/s⌉ + 1`` (less a last window that would start in the right padding), which
  keeps a partial window at the end; wally's pooling has both.

Example::

    >>> report = cost_formula(wally.models.lenet(), (1, 28, 28))
    >>> [(row.note_macs, row.true_macs) for row in report.rows]
    [(117600, 117600), (470400, 240000)]
    >>> round(100 * report.conv_param_share), round(100 * report.conv_mac_share)
    (4, 86)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wally import nn
from wally.nn.module import Module

__all__ = ["ConvCostRow", "CostFormulaReport", "cost_formula", "note_conv_macs"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def note_conv_macs(kernel_size: Sequence[int], in_channels: int, out_channels: int,
                   input_positions: int) -> int:
    """The study note's multiply-adds of a convolution, ``k·k·c_l·c_{l−1}·m_{l−1}`` (line 95):
    the *input* map's positions ``m_{l−1}`` and no groups; ``∏k`` for other than 2-D kernels.

    Example::

        >>> note_conv_macs((5, 5), 6, 16, 14 * 14)   # LeNet's conv2; the truth is 240,000
        470400
    """
    return math.prod(kernel_size) * in_channels * out_channels * input_positions


def _cross(sizes: Sequence[int]) -> str:
    return "×".join(str(n) for n in sizes)


def _factor(value: float) -> str:
    return f"{value:.0f}×" if abs(value - round(value)) < 1e-9 else f"{value:.3g}×"


@dataclass
class ConvCostRow:
    """One convolution call: its settings, ``m_{l−1}`` and ``m_l``, the note's and the true
    multiply-adds per image, and why they differ (``reasons``; empty where they agree)."""

    name: str
    type: str
    kernel_size: tuple[int, ...]
    in_channels: int
    out_channels: int
    groups: int
    stride: tuple[int, ...]
    padding: str | tuple[int, ...]
    dilation: tuple[int, ...]
    input_spatial: tuple[int, ...]
    output_spatial: tuple[int, ...]
    note_macs: int
    true_macs: int
    params: int
    reasons: list[str] = field(default_factory=list)

    @property
    def input_positions(self) -> int:
        return math.prod(self.input_spatial)

    @property
    def output_positions(self) -> int:
        return math.prod(self.output_spatial)

    @property
    def ratio(self) -> float:
        """``note / true`` = ``groups · m_{l−1} / m_l``."""
        return self.note_macs / self.true_macs if self.true_macs else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type, "kernel_size": list(self.kernel_size),
            "in_channels": self.in_channels, "out_channels": self.out_channels,
            "groups": self.groups, "stride": list(self.stride),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
            "dilation": list(self.dilation), "input_spatial": list(self.input_spatial),
            "output_spatial": list(self.output_spatial),
            "input_positions": self.input_positions, "output_positions": self.output_positions,
            "note_macs": self.note_macs, "true_macs": self.true_macs, "ratio": self.ratio,
            "params": self.params, "reasons": self.reasons,
        }


def _stride_one_size(n: int, k: int, d: int, padding: str | int) -> int:
    """Output length at stride 1: ``n + 2p − d(k − 1)`` (``"same"`` keeps ``n``)."""
    if padding == "same":
        return n
    p = 0 if padding == "valid" else int(padding)
    return n + 2 * p - d * (k - 1)


def _reasons(row: ConvCostRow) -> list[str]:
    reasons = []
    nd = len(row.kernel_size)
    pads: list[str | int] = [row.padding] * nd if isinstance(row.padding, str) \
        else list(row.padding)
    unstrided = [_stride_one_size(n, k, d, p) for n, k, d, p in
                 zip(row.input_spatial, row.kernel_size, row.dilation, pads, strict=True)]
    exact = all(-(-u // s) == o for u, s, o in
                zip(unstrided, row.stride, row.output_spatial, strict=True))
    if exact and tuple(unstrided) != row.input_spatial:
        factor = row.input_positions / math.prod(unstrided)
        pad = row.padding if isinstance(row.padding, str) else \
            str(row.padding[0]) if len(set(row.padding)) == 1 else _cross(row.padding)
        reasons.append(f"padding {pad} does not keep the size: {_cross(row.input_spatial)} → "
                       f"{_cross(unstrided)} at stride 1 (positions ÷{factor:.3g})")
    if exact and any(s != 1 for s in row.stride):
        factor = math.prod(unstrided) / row.output_positions
        by = _factor(factor)[:-1]
        reasons.append(f"stride {_cross(row.stride)} divides the positions by {by} "
                       f"({_cross(unstrided)} → {_cross(row.output_spatial)})")
    if not exact and row.input_spatial != row.output_spatial:
        reasons.append(f"m_l = {row.output_positions} output positions, not m_(l-1) = "
                       f"{row.input_positions}")
    if row.groups > 1:
        reasons.append(f"groups={row.groups} divide c_(l-1) by {row.groups}")
    return reasons


@dataclass
class CostFormulaReport:
    """What :func:`cost_formula` returns: a row per convolution call, and the shares of the
    parameters and of the multiply-adds in the convolutions, the linear layers and the rest."""

    model: str
    input_shape: tuple[int, ...]
    rows: list[ConvCostRow]
    total_params: int
    total_macs: int
    conv_params: int
    conv_macs: int
    linear_params: int
    linear_macs: int

    @property
    def conv_param_share(self) -> float:
        return self.conv_params / self.total_params if self.total_params else 0.0

    @property
    def conv_mac_share(self) -> float:
        return self.conv_macs / self.total_macs if self.total_macs else 0.0

    def to_dict(self) -> dict[str, Any]:
        def share(part: int, whole: int) -> float:
            return part / whole if whole else 0.0

        rest_params = self.total_params - self.conv_params - self.linear_params
        rest_macs = self.total_macs - self.conv_macs - self.linear_macs
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "note_formula": "k·k·c_l·c_(l-1)·m_(l-1)",
            "true_formula": "k·k·(c_(l-1)/groups)·c_l·m_l",
            "layers": [row.to_dict() for row in self.rows],
            "totals": {
                "params": self.total_params, "macs": self.total_macs,
                "note_conv_macs": sum(r.note_macs for r in self.rows),
                "true_conv_macs": sum(r.true_macs for r in self.rows),
            },
            "shares": {
                "convolutions": {"params": self.conv_params, "macs": self.conv_macs,
                                 "params_share": share(self.conv_params, self.total_params),
                                 "macs_share": share(self.conv_macs, self.total_macs)},
                "linear": {"params": self.linear_params, "macs": self.linear_macs,
                           "params_share": share(self.linear_params, self.total_params),
                           "macs_share": share(self.linear_macs, self.total_macs)},
                "rest": {"params": rest_params, "macs": rest_macs,
                         "params_share": share(rest_params, self.total_params),
                         "macs_share": share(rest_macs, self.total_macs)},
            },
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def __str__(self) -> str:
        head = ["layer", "k", "c_(l-1)→c_l", "g", "m_(l-1)", "m_l", "note", "true", "note/true"]
        table = [head]
        for r in self.rows:
            table.append([
                f"{r.name or r.type}: {r.type}", _cross(r.kernel_size),
                f"{r.in_channels}→{r.out_channels}", str(r.groups),
                f"{r.input_positions:,} ({_cross(r.input_spatial)})",
                f"{r.output_positions:,} ({_cross(r.output_spatial)})",
                f"{r.note_macs:,}", f"{r.true_macs:,}", _factor(r.ratio),
            ])
        widths = [max(len(line[i]) for line in table) for i in range(len(head))]
        lines = [f"The note's cost k·k·c_l·c_(l-1)·m_(l-1) (previous map) vs the true "
                 f"k·k·(c_(l-1)/groups)·c_l·m_l (output positions), {self.model} at input "
                 f"{_cross(self.input_shape)}, multiply-adds per image:", ""]
        for i, line in enumerate(table):
            lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                                   for j, (c, w) in enumerate(zip(line, widths, strict=True))))
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.append("")
        for r in self.rows:
            why = "; ".join(r.reasons) if r.reasons else "the formulas agree (stride 1, " \
                "size-keeping padding, groups 1)"
            lines.append(f"{r.name or r.type}: {why}")
        lines += [
            "",
            "Where \"fewer parameters\" stops (the note's line 5): each convolution weight is "
            "used at every output position.",
            f"  convolutions: {self.conv_params:,} of {self.total_params:,} parameters "
            f"({100 * self.conv_param_share:.1f} %), {self.conv_macs:,} of "
            f"{self.total_macs:,} multiply-adds ({100 * self.conv_mac_share:.1f} %)",
        ]
        rest_p = self.total_params - self.conv_params
        rest_m = self.total_macs - self.conv_macs
        lines.append(
            f"  the rest:     {rest_p:,} parameters "
            f"({100 * rest_p / max(self.total_params, 1):.1f} %; linear {self.linear_params:,}), "
            f"{rest_m:,} multiply-adds ({100 * rest_m / max(self.total_macs, 1):.1f} %; linear "
            f"{self.linear_macs:,})")
        return "\n".join(lines)


def cost_formula(model: Module, input_size: Sequence[int], name: str | None = None
                 ) -> CostFormulaReport:
    """Per convolution call of ``model`` on one input of size ``input_size`` (``C, *spatial``,
    without the batch axis), the note's ``k·k·c_l·c_{l−1}·m_{l−1}`` and the true
    ``k·k·(c_{l−1}/groups)·c_l·m_l`` multiply-adds (the latter taken from
    :func:`wally.summary`'s rows), the reasons they differ, and the shares of parameters and
    multiply-adds in the convolutions.

    Shape:
        - ``input_size``: ``(C, H, W)`` (or ``(C, L)``, ``(C, D, H, W)``); batch 1 is added.

    Example::

        >>> cost_formula(wally.models.lenet(), (1, 28, 28)).rows[1].true_macs
        240000
    """
    from wally.analysis.summary import summary

    if not isinstance(model, Module):
        raise TypeError(f"cost_formula: expected a wally.nn.Module, got {type(model).__name__}")
    size = tuple(input_size)
    if len(size) < 2 or not all(isinstance(n, int) and n > 0 for n in size):
        raise ValueError(f"cost_formula: expected input_size (C, *spatial) of positive "
                         f"integers, without the batch axis, got {size}")
    result = summary(model, (1, *size), verbose=0, depth=None)
    rows: list[ConvCostRow] = []
    conv_params = conv_macs = linear_params = linear_macs = 0
    for layer in result.layers:
        if layer.kind != "layer":
            continue
        module = model.get_submodule(layer.name) if layer.name else model
        if isinstance(module, nn.Linear):
            linear_params += layer.params
            linear_macs += layer.macs
        if not isinstance(module, _CONVS) or not layer.input_shape:
            continue
        nd = len(module.kernel_size)
        in_spatial = tuple(layer.input_shape[0][-nd:])
        out_spatial = tuple(layer.output_shape[0][-nd:])
        padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
        row = ConvCostRow(
            name=layer.name, type=layer.type, kernel_size=tuple(module.kernel_size),
            in_channels=module.in_channels, out_channels=module.out_channels,
            groups=module.groups, stride=tuple(module.stride), padding=padding,
            dilation=tuple(module.dilation), input_spatial=in_spatial,
            output_spatial=out_spatial,
            note_macs=note_conv_macs(module.kernel_size, module.in_channels,
                                     module.out_channels, math.prod(in_spatial)),
            true_macs=layer.macs, params=layer.params,
        )
        row.reasons = _reasons(row)
        rows.append(row)
        conv_params += layer.params
        conv_macs += layer.macs
    return CostFormulaReport(
        model=name or type(model).__name__, input_shape=size, rows=rows,
        total_params=result.total_params, total_macs=int(result.totals["macs"]),
        conv_params=conv_params, conv_macs=conv_macs, linear_params=linear_params,
        linear_macs=linear_macs,
    )
