"""What one layer costs: multiply-accumulates (MACs) and floating-point operations (FLOPs).

The counting rules, for one forward pass over the whole batch:

=========================  ====================================  ==================================
layer / op                 MACs                                  FLOPs
=========================  ====================================  ==================================
convolution                ``k·k·(c_in/groups)·c_out·m_out``     ``2·MACs``, ``+ c_out·m_out`` bias
transposed convolution     ``k·k·(c_out/groups)·c_in·m_in``      ``2·MACs``, ``+ c_out·m_out`` bias
interpolation (upsample)   ``T^d`` per output (T = 2 linear,     ``2·MACs``; nearest and
                           4 cubic, d spatial axes)              nearest-exact 0 (a gather)
linear, matmul             ``in·out`` per row                    ``2·MACs``, ``+ out`` per row bias
einsum (bmm is matmul)     ``∏`` subscript sizes times           ``2·MACs``; one operand: ``∏``
                           (operands − 1)                        additions
batch norm (evaluation)    1 per element (``x·scale + shift``)   2 per element
batch norm (training)      1 per element                         7 per element (statistics too)
layer/group/instance norm  1 per element with γ, else 0          5 per element, +1 for γ, +1 for β
local response norm        0                                     ``size + 4`` per element
embedding                  0                                     0 (a lookup)
max pooling                0                                     ``∏k − 1`` comparisons per output
average pooling            0                                     ``∏k`` per output (adds, 1 divide)
adaptive pooling           0                                     the window's length per output
activations                0                                     per element: ReLU 1, LeakyReLU 2,
                                                                 Sigmoid 3, Tanh 1, GELU 5,
                                                                 Softplus 5
softmax, log-softmax       0                                     5 per element (max, subtract,
                                                                 exp, sum, divide)
``+ − × ÷``, max, where    0                                     1 per output element
sum, mean                  0                                     1 per input element
prod, cumsum, cumprod      0                                     1 per input element
logsumexp, vector norm     0                                     4 / 2 per input element
sort, topk, kthvalue       0                                     ``n·⌈log₂ n⌉`` comparisons per row
dropout                    0                                     1 per element in training, 0 in
                                                                 evaluation (the identity); alpha
                                                                 dropout 2 (×a, +b)
flatten, reshape, cat,     0                                     0: they move data, no arithmetic
slicing, padding, pixel
and channel shuffles,
max unpooling
=========================  ====================================  ==================================

``m_out`` is the number of output positions: this is the true count, not the study note's
``k·k·c_l·c_(l−1)·m_(l−1)``, which takes the *previous* map's positions and ignores groups
(:mod:`wally.analysis.note_cost` sets the two side by side); ``∏k`` is the product of the
window's sides. A MAC is one ``a·b + c``; a FLOP is one addition, multiplication, comparison
or elementary function (exp, log, tanh, erf), so a MAC is 2 FLOPs. Any op not in the table
counts 1 FLOP per output element, and the summary says so (``rule`` ends in
``"(estimate)"``): nothing is silently zero.

Example::

    >>> conv_macs(kernel_size=(5, 5), in_channels=1, out_channels=6, output_positions=28 * 28)
    117600
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wally import linalg, ops, ops_index, ops_math, ops_shape
from wally._windows import adaptive_windows
from wally.functional import (
    activation,
    activation_extra,
    conv,
    conv_transpose,
    norm,
    normalization,
    padding,
    pool,
    sparse,
    upsampling,
)
from wally.functional.dropout import MaskedDropout
from wally.functional.linear import Dropout as DropoutNode
from wally.functional.linear import Linear as LinearNode
from wally.geometric.sparse import SparseDenseProduct
from wally.nn.module import Module
from wally.tensor import Tensor
from wally.tracing import Rules, record_one_call

__all__ = [
    "LayerCost",
    "FLOPS_PER_ELEMENT",
    "NODE_COSTS",
    "CONVENTION",
    "conv_macs",
    "module_cost",
    "node_cost",
    "ops_cost",
]

CONVENTION = (
    "MACs = multiply-accumulates (conv k·k·c_in/groups·c_out per output position, linear "
    "in·out, batch norm 1 per element); FLOPs = 2·MACs, +1 per output for a bias, +1 per "
    "element per elementary op (pooling ∏k, ReLU 1, sigmoid 3, softmax 5, add 1; reshapes and "
    "cat 0)"
)
"""One line for the summary's header; the table above is the full rule set."""

_ELEMENTWISE: tuple[tuple[int, tuple[type, ...]], ...] = (
    # element-wise activations' autograd nodes (a module's cost is its nodes': nn.ReLU's is
    # ops.ReLU's, nn.ReLU6's activation_extra.Hardtanh's)
    (1, (ops.ReLU,)),
    (2, (activation.LeakyReLU,)),
    (3, (ops.Sigmoid,)),
    (1, (ops.Tanh,)),
    (5, (activation.GELU,)),
    (5, (activation.Softplus,)),
    (5, (ops_math.Softmax,)),
    (5, (ops_math.LogSoftmax,)),
    # layersB's activations; per element: ELU compare, exp, −1, ×α; SELU and CELU one scale
    # more; SiLU exp, +1, ÷, ×x; Mish exp, log1p, max, tanh, ×x; Hardswish +3, min, max, ×1/6,
    # ×x; Hardsigmoid ×1/6, +1/2, min, max; Hardtanh and ReLU6 min, max; Softsign abs, +1, ÷;
    # LogSigmoid min, abs, exp, log1p, −; PReLU compare, ×a; GLU sigmoid 3 and × per output;
    # Softmin negate + softmax; Threshold one comparison
    (4, (activation_extra.SiLU,)),
    (5, (activation_extra.Mish,)),
    (5, (activation_extra.Hardswish,)),
    (4, (activation_extra.Hardsigmoid,)),
    (2, (activation_extra.Hardtanh,)),
    (3, (activation_extra.Softsign,)),
    (5, (activation_extra.LogSigmoid,)),
    (2, (ops_math.PReLU,)),
    (4, (activation_extra.GLU,)),
    (6, (activation_extra.Softmin,)),
    (1, (activation_extra.Threshold,)),
    (0, (sparse.Embedding,)),  # a lookup: no arithmetic
    # element-wise arithmetic nodes
    (1, (ops.Add, ops.Sub, ops.Mul, ops.Div, ops.Pow, ops.PowScalar, ops.Neg, ops.Exp, ops.Log,
         ops.Sqrt, ops.Abs, ops.Sin, ops.Cos, ops.Clamp)),
    (2, (ops.ClampTensor,)),  # opinfo: a max and a min
    (2, (ops.DivRounding,)),  # opinfo: a division and its rounding
    (1, (ops.Maximum, ops.Where)),
    # tensorops: pointwise maths, masks and moves
    (1, (ops_math.Sinh, ops_math.Cosh, ops_math.Erf, ops_math.Floor, ops_math.Ceil,
         ops_math.Round, ops_math.Trunc, ops_index.MaskedFill, ops_shape.Triangle)),
    (0, (ops_shape.Roll, ops_shape.Rot90, ops_shape.Diag, ops_index.Gather,
         ops_index.IndexSelect)),
    # data movement
    (0, (ops.Reshape, ops.Permute, ops.Expand, ops.Repeat, ops.Flip, ops.GetItem, ops.SetItem,
         ops.Cat, ops.Stack, padding.Pad, ops.Clone, ops.Cast)),
    # layersA: rearrangements and scatters
    (0, (upsampling.PixelShuffle, upsampling.ChannelShuffle, pool.MaxUnpoolNd)),
)
"""FLOPs per output element of the element-wise ops, by autograd node class (see the module
docstring; ELU, SELU and CELU share one node, and its rule below)."""

FLOPS_PER_ELEMENT: dict[str, int] = {
    **{cls.__name__: per for per, classes in _ELEMENTWISE for cls in classes},
    "ELU": 4, "SELU": 5, "CELU": 5,
}


@dataclass(frozen=True)
class LayerCost:
    """MACs and FLOPs of one layer or op, and the rule that counted them."""

    macs: int
    flops: int
    rule: str

    def __add__(self, other: LayerCost) -> LayerCost:
        rules = self.rule if other.rule in self.rule else f"{self.rule}; {other.rule}"
        return LayerCost(self.macs + other.macs, self.flops + other.flops, rules)


def conv_macs(
    kernel_size: Sequence[int],
    in_channels: int,
    out_channels: int,
    output_positions: int,
    groups: int = 1,
    batch: int = 1,
) -> int:
    """Multiply-accumulates of a convolution: ``∏k · (c_in/groups) · c_out · m_out`` per image,
    each output position of each output channel being one dot product of length
    ``∏k·c_in/groups`` (the true count; the study note's ``k·k·c_l·c_(l−1)·m_(l−1)`` uses the
    input's positions: :func:`wally.analysis.note_cost.note_conv_macs`).

    Example::

        >>> conv_macs((5, 5), 6, 16, 10 * 10)      # LeNet's second convolution
        240000
    """
    window = math.prod(kernel_size) * (in_channels // groups)
    return batch * window * out_channels * output_positions


def _numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _spatial(shape: Sequence[int], nd: int) -> int:
    return math.prod(shape[len(shape) - nd:])


def _conv(batch: int, kernel: Sequence[int], c_in: int, c_out: int, out_shape: Sequence[int],
          groups: int, bias: bool) -> LayerCost:
    positions = _spatial(out_shape, len(kernel))
    macs = conv_macs(kernel, c_in, c_out, positions, groups, batch)
    flops = 2 * macs + (batch * c_out * positions if bias else 0)
    return LayerCost(macs, flops, "conv: k·k·c_in/groups·c_out·m_out MACs, 2·MACs + bias FLOPs")


def _linear(in_features: int, out_shape: Sequence[int], bias: bool) -> LayerCost:
    outputs = _numel(out_shape)
    macs = outputs * in_features
    return LayerCost(macs, 2 * macs + (outputs if bias else 0),
                     "linear: in·out MACs per row, 2·MACs + bias FLOPs")


def _adaptive_cells(n: int, o: int) -> int:
    """Total length of the ``o`` adaptive windows over ``n`` cells (:func:`adaptive_windows`)."""
    return sum(stop - start for start, stop in adaptive_windows(n, o))


def _adaptive(kind: str, in_shape: Sequence[int], out_shape: Sequence[int]) -> LayerCost:
    nd = len(out_shape) - 2 if len(out_shape) > 2 else 1
    planes = _numel(out_shape[: len(out_shape) - nd])
    covered = planes * math.prod(
        _adaptive_cells(n, o) for n, o in zip(in_shape[-nd:], out_shape[-nd:], strict=True)
    )
    if kind == "max":
        return LayerCost(0, covered - _numel(out_shape), "adaptive max pool: window − 1 per output")
    return LayerCost(0, covered, "adaptive avg pool: window length per output")


def _pool(kind: str, kernel: Sequence[int], out_shape: Sequence[int]) -> LayerCost:
    window = math.prod(kernel)
    outputs = _numel(out_shape)
    if kind == "max":
        return LayerCost(0, outputs * (window - 1), "max pool: ∏k − 1 comparisons per output")
    return LayerCost(0, outputs * window, "avg pool: ∏k per output")


def _batch_norm(training: bool, out_shape: Sequence[int]) -> LayerCost:
    elements = _numel(out_shape)
    per = 7 if training else 2
    return LayerCost(elements, per * elements, f"batch norm: {per} FLOPs per element")


def _elementwise(name: str, per: int, out_shape: Sequence[int]) -> LayerCost:
    return LayerCost(0, per * _numel(out_shape),
                     f"{name}: {per} FLOP{'s' if per != 1 else ''} per element")


# ----- layersA: transposed convolution and interpolation -------------------------------------
def _conv_transpose(batch: int, kernel: Sequence[int], c_in: int, c_out: int,
                    in_shape: Sequence[int], out_shape: Sequence[int], groups: int,
                    bias: bool) -> LayerCost:
    """Every input pixel of every input channel adds ``x·W`` into a ``∏k`` window of each of
    its group's ``c_out/groups`` output channels: ``∏k·(c_out/groups)·c_in·m_in`` MACs (taps
    that fall in the cropped padding included, as the GEMM computes them)."""
    nd = len(kernel)
    positions = _spatial(in_shape, nd)
    macs = batch * math.prod(kernel) * (c_out // groups) * c_in * positions
    flops = 2 * macs + (batch * c_out * _spatial(out_shape, nd) if bias else 0)
    return LayerCost(macs, flops, "conv transpose: k·k·c_out/groups·c_in·m_in MACs, 2·MACs + "
                                  "bias FLOPs")


_INTERPOLATION_TAPS = {"nearest": 1, "nearest-exact": 1, "linear": 2, "bilinear": 2,
                       "trilinear": 2, "bicubic": 4}


def _interpolation(mode: str, in_shape: Sequence[int], out_shape: Sequence[int]) -> LayerCost:
    """``T^d`` multiply-adds per output element (the tensor-product kernel); a gather costs 0;
    ``area`` is adaptive average pooling."""
    if mode == "area":
        return _adaptive("avg", in_shape, out_shape)
    taps = _INTERPOLATION_TAPS.get(mode, 1)
    if taps == 1:
        return LayerCost(0, 0, f"interpolate ({mode}): a gather, 0 FLOPs")
    nd = max(len(out_shape) - 2, 1)
    macs = _numel(out_shape) * taps**nd
    return LayerCost(macs, 2 * macs, f"interpolate ({mode}): {taps}^d MACs per output")


# ----- the rules, one per autograd node class ------------------------------------------------
# A layer costs what the nodes its forward records cost (the tracer records a frozen layer's
# nodes too), so each op is counted by one rule, whichever layer or function called it. A rule
# reads the node, the shape of its output and its tensor inputs. A rule may return None where
# it does not apply (an unbatched input); then, as for a node class without a rule, the op
# counts 1 FLOP per output element and its row says "(estimate)". The lookup walks the MRO: a
# subclass of a node (a renamed ConvNd) gets its base's rule.
NodeCostRule = Callable[[Any, Sequence[int], list[Tensor]], "LayerCost | None"]
NODE_COSTS: Rules[NodeCostRule] = Rules("wally.analysis.cost")


def _per_element(classes: Sequence[type], per: int) -> None:
    """Register ``per`` FLOPs per output element for the element-wise node ``classes``."""
    for cls in classes:
        @NODE_COSTS.register(cls)
        def node_rule(node: Any, out: Sequence[int], _: list[Tensor], name: str = cls.__name__,
                      per: int = per) -> LayerCost:
            return _elementwise(name, per, out)


for _per, _classes in _ELEMENTWISE:
    _per_element(_classes, _per)



@NODE_COSTS.register(conv.ConvNd)
def _conv_node(node: Any, out: Sequence[int], _: list[Tensor]) -> LayerCost:
    x, weight = node.inputs[0], node.inputs[1]
    nd = weight.ndim - 2
    batch = x.shape[0] if x.ndim == nd + 2 else 1
    return _conv(batch, tuple(weight.shape[2:]), x.shape[-nd - 1], weight.shape[0], out,
                 node.groups, node.inputs[2] is not None)



@NODE_COSTS.register(LinearNode)
def _linear_node(node: Any, out: Sequence[int], _: list[Tensor]) -> LayerCost:
    return _linear(node.inputs[1].shape[1], out, node.inputs[2] is not None)



@NODE_COSTS.register(conv_transpose.ConvTransposeNd)
def _conv_transpose_node(node: Any, out: Sequence[int], _: list[Tensor]) -> LayerCost:
    x, weight = node.inputs[0], node.inputs[1]
    nd = weight.ndim - 2
    batch = x.shape[0] if x.ndim == nd + 2 else 1
    return _conv_transpose(batch, tuple(weight.shape[2:]), weight.shape[0],
                           weight.shape[1] * node.groups, tuple(x.shape), out, node.groups,
                           node.inputs[2] is not None)



@NODE_COSTS.register(upsampling.Interpolate)
def _interpolate_node(node: Any, out: Sequence[int], inputs: list[Tensor]) -> LayerCost | None:
    if getattr(node, "antialias", False):
        taps = math.prod(weights.shape[0] for _, weights in node.plans if weights is not None)
        macs = _numel(out) * taps
        return LayerCost(macs, 2 * macs, f"interpolate ({node.mode}, antialias): the filter's "
                                         "taps per output, MACs")
    return _interpolation(node.mode, inputs[0].shape, out) if inputs else None


@NODE_COSTS.register(ops.MatMul)
def _matmul_node(node: Any, out: Sequence[int], inputs: list[Tensor]) -> LayerCost:
    inner = inputs[0].shape[-1] if inputs else 1
    macs = _numel(out) * inner
    return LayerCost(macs, 2 * macs, "matmul: inner·outputs MACs")


@NODE_COSTS.register(SparseDenseProduct)
def _sparse_dense_node(node: Any, out: Sequence[int], _: list[Tensor]) -> LayerCost:
    """wally.geometric: one MAC per non-zero and feature."""
    macs = node.matrix.nnz * (_numel(out) // max(out[0], 1) if out else 1)
    return LayerCost(macs, 2 * macs, "sparse @ dense: non-zeros·features MACs")




@NODE_COSTS.register(pool.MaxPoolNd)
def _max_pool_node(node: Any, out: Sequence[int], _: list[Tensor]) -> LayerCost:
    return _pool("max", node.windows.kernel, out)


@NODE_COSTS.register(pool.AvgPoolNd)
def _avg_pool_node(node: Any, out: Sequence[int], _: list[Tensor]) -> LayerCost:
    return _pool("avg", node.windows.kernel, out)




@NODE_COSTS.register(pool.AdaptiveMaxPoolNd)
def _adaptive_max_node(node: Any, out: Sequence[int], inputs: list[Tensor]) -> LayerCost | None:
    return _adaptive("max", inputs[0].shape, out) if inputs else None


@NODE_COSTS.register(pool.AdaptiveAvgPoolNd)
def _adaptive_avg_node(node: Any, out: Sequence[int], inputs: list[Tensor]) -> LayerCost | None:
    return _adaptive("avg", inputs[0].shape, out) if inputs else None



@NODE_COSTS.register(norm.BatchNorm)
def _batch_norm_node(node: Any, out: Sequence[int], _: list[Tensor]) -> LayerCost:
    return _batch_norm(bool(getattr(node, "training", False)), out)



@NODE_COSTS.register(DropoutNode)
def _dropout_node(node: Any, out: Sequence[int], _: list[Tensor]) -> LayerCost:
    return LayerCost(0, _numel(out), "dropout: 1 FLOP per element")


@NODE_COSTS.register(ops.Sum, ops.Mean, ops.Amax, ops.MaxDim)
def _reduction_node(node: Any, out: Sequence[int], inputs: list[Tensor]) -> LayerCost | None:
    if not inputs:
        return None
    name = type(node).__name__
    extra = _numel(out) if isinstance(node, ops.Mean) else 0
    return LayerCost(0, _numel(inputs[0].shape) + extra,
                     f"{name.lower()}: 1 FLOP per input element")


# ----- layersB: normalisation, local response normalisation, embedding, dropout --------------
def _row_norm(out_shape: Sequence[int], weight: bool, bias: bool, kind: str) -> LayerCost:
    """Layer, group and instance norm with their own statistics: mean, subtract, square, sum,
    scale by 1/σ (5 FLOPs per element), then ×γ (1 MAC) and +β."""
    elements = _numel(out_shape)
    per = 5 + int(weight) + int(bias)
    return LayerCost(elements if weight else 0, per * elements,
                     f"{kind}: {per} FLOPs per element (statistics too)")


def _lrn(size: int, out_shape: Sequence[int]) -> LayerCost:
    """Square, ``size − 1`` adds of the window, ×α/n and +k, the power and the product."""
    elements = _numel(out_shape)
    per = size + 4
    return LayerCost(0, per * elements, f"local response norm: size + 4 = {per} FLOPs per "
                     "element")




@NODE_COSTS.register(normalization.RowNorm)
def _row_norm_node(node: Any, out: Sequence[int], _: list[Tensor]) -> LayerCost:
    return _row_norm(out, node.w_shape is not None, node.b_shape is not None,
                     "layer/group/instance norm")



@NODE_COSTS.register(normalization.LocalResponseNorm)
def _lrn_node(node: Any, out: Sequence[int], _: list[Tensor]) -> LayerCost:
    return _lrn(node.size, out)




@NODE_COSTS.register(MaskedDropout)
def _masked_dropout_node(node: Any, out: Sequence[int], _: list[Tensor]) -> LayerCost:
    per = 2 if node.alpha else 1
    return LayerCost(0, per * _numel(out),
                     f"dropout: {per} FLOP{'s' if per > 1 else ''} per element")


# ----- tensorops: einsum, scans, products, norms, sorts and scatters --------------------------
@NODE_COSTS.register(ops_math.Einsum)
def _einsum_node(node: Any, out: Sequence[int], inputs: list[Tensor]) -> LayerCost:
    sizes = {c: n for term, x in zip(node.terms, inputs) for c, n in zip(term, x.shape)}
    product = math.prod(sizes.values())
    if len(inputs) == 1:
        return LayerCost(0, product if set(node.output) != set(sizes) else 0,
                         "einsum: one add per summed element")
    macs = product * (len(inputs) - 1)
    return LayerCost(macs, 2 * macs, "einsum: ∏ subscript sizes · (operands − 1) MACs")


def _per_input_element(per: int) -> NodeCostRule:
    def rule(node: Any, out: Sequence[int], inputs: list[Tensor]) -> LayerCost | None:
        if not inputs:
            return None
        name = type(node).__name__.lower()
        return LayerCost(0, per * _numel(inputs[0].shape), f"{name}: {per} per input element")

    return rule


NODE_COSTS.register(ops_math.Prod, ops_math.CumSum, ops_math.CumProd)(_per_input_element(1))
NODE_COSTS.register(ops_math.LogSumExp)(_per_input_element(4))
NODE_COSTS.register(linalg.VectorNorm)(_per_input_element(2))


@NODE_COSTS.register(ops_index.SortedGather)
def _sort_node(node: Any, out: Sequence[int], inputs: list[Tensor]) -> LayerCost | None:
    if not inputs:
        return None
    n = inputs[0].shape[node.axis] if inputs[0].ndim else 1
    compares = (_numel(inputs[0].shape) // max(n, 1)) * n * math.ceil(math.log2(max(n, 2)))
    return LayerCost(0, compares, "sort: n·⌈log₂ n⌉ comparisons per row")


@NODE_COSTS.register(ops_index.Scatter)
def _scatter_node(node: Any, out: Sequence[int], inputs: list[Tensor]) -> LayerCost | None:
    if not inputs:
        return None
    return LayerCost(0, node.index.size if node.reduce else 0, "scatter: 1 per reduced index")


@NODE_COSTS.register(activation_extra.ELU)
def _elu_node(node: Any, out: Sequence[int], _: list[Tensor]) -> LayerCost:
    """ELU: compare, exp, −1, ×α; SELU and CELU one scale more."""
    return _elementwise(node.kind, FLOPS_PER_ELEMENT[node.kind], out)


# ----- the entry points --------------------------------------------------------------------
def node_cost(node: Any, output: Tensor) -> LayerCost:
    """The cost of one autograd node (an op called in a ``forward``, such as the residual
    ``+`` or an inception ``cat``) from its class, inputs and ``output``; a node without a
    rule (a new op) is estimated at 1 FLOP per output element and says so."""
    out_shape = tuple(output.shape)
    inputs = [t for t in (node.inputs or ()) if isinstance(t, Tensor)]
    rule = NODE_COSTS.find(node)
    cost = None if rule is None else rule(node, out_shape, inputs)
    if cost is None:
        return LayerCost(0, _numel(out_shape),
                         f"{type(node).__name__}: 1 FLOP per element (estimate)")
    return cost


def ops_cost(ops: Sequence[tuple[Any, Tensor]]) -> LayerCost:
    """The cost of a layer's call: its ``(node, output)`` pairs' costs summed (a layer that
    returns its input, dropout in evaluation, records none and costs nothing)."""
    costs = [node_cost(node, out) for node, out in ops]
    if not costs:
        return LayerCost(0, 0, "no arithmetic (returns its input)")
    total = costs[0]
    for cost in costs[1:]:
        total = total + cost
    return total


def module_cost(
    module: Module, input_shape: Sequence[int], output_shape: Sequence[int] | None = None
) -> LayerCost:
    """The cost of one call of ``module`` on an input of ``input_shape`` ``(N, C, *spatial)``,
    in its current mode: one forward pass on a random input, recorded by
    :func:`wally.tracing.record_calls`, and the rules of the nodes it made, summed (what the
    summary's row for the layer shows). The module's buffers and wally's random state are
    left as they were; ``output_shape``, if given, is checked against the call's.

    Example::

        >>> module_cost(nn.Conv2d(1, 6, 5, padding=2), (1, 1, 28, 28)).macs
        117600
    """
    _, _, calls = record_one_call(module, input_shape, output_shape, "module_cost")
    return ops_cost([op for call in calls.finished for op in call.ops])
