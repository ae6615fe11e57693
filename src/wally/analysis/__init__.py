"""See inside a network: what each layer costs, what it sees, and what it keeps.

* :func:`summary` — per layer (as a tree of module calls, merges in ``forward`` code included):
  output shape, parameters, MACs and FLOPs, activation memory and receptive field; totals.
* :mod:`~wally.analysis.receptive_field` — the receptive field arithmetic
  (``r_out = r_in + (k − 1)·d·j_in``, ``j_out = j_in·s``) and a gradient probe that checks it.
* :mod:`~wally.analysis.cost` — the MAC and FLOP counting rules.
* :func:`cost_formula` — the study note's conv cost ``k·k·c_l·c_{l−1}·m_{l−1}`` beside the true
  count, why they differ, the conv shares of parameters and MACs, and the note's other slips.
* :func:`parameter_counts` — the study note's argument: fully connected 10¹² weights,
  translation invariance 10⁶, locality too (2Δ+1)².
* :func:`effective_field` — the effective receptive field (Luo et al. 2016): the share of
  the gradient mass inside the analytic box and the radius holding 95 % of it.
* :func:`equivariance` — how far ``f(shift(x))`` is from ``shift(f(x))``, layer by layer, and
  the same for rotations.
"""

from wally.analysis.cost import CONVENTION, LayerCost, conv_macs
from wally.analysis.effective_field import EffectiveField, effective_field, stack_radii
from wally.analysis.equivariance import (
    EquivarianceReport,
    EquivarianceRow,
    equivariance,
    rotate,
    shift,
    symmetrize_kernels,
)
from wally.analysis.note_cost import ConvCostRow, CostFormulaReport, cost_formula
from wally.analysis.params import LayerCount, ParameterCounts, parameter_counts
from wally.analysis.receptive_field import (
    AxisField,
    ReceptiveField,
    input_gradient,
    probe_receptive_field,
    receptive_field,
)
from wally.analysis.summary import LayerSummary, ModelSummary, summary

__all__ = [
    "summary",
    "ModelSummary",
    "LayerSummary",
    "LayerCost",
    "CONVENTION",
    "conv_macs",
    "cost_formula",
    "CostFormulaReport",
    "ConvCostRow",
    "AxisField",
    "ReceptiveField",
    "receptive_field",
    "probe_receptive_field",
    "input_gradient",
    "parameter_counts",
    "ParameterCounts",
    "LayerCount",
    "equivariance",
    "EquivarianceReport",
    "EquivarianceRow",
    "shift",
    "rotate",
    "symmetrize_kernels",
    "EffectiveField",
    "effective_field",
    "stack_radii",
]
