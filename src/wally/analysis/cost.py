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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wally import nn
from wally._windows import adaptive_windows, pool_settings
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = [
    "LayerCost",
    "FLOPS_PER_ELEMENT",
    "CONVENTION",
    "conv_macs",
    "module_cost",
    "node_cost",
]

CONVENTION = (
    "MACs = multiply-accumulates (conv k·k·c_in/groups·c_out per output position, linear "
    "in·out, batch norm 1 per element); FLOPs = 2·MACs, +1 per output for a bias, +1 per "
    "element per elementary op (pooling ∏k, ReLU 1, sigmoid 3, softmax 5, add 1; reshapes and "
    "cat 0)"
)
"""One line for the summary's header; the table above is the full rule set."""

FLOPS_PER_ELEMENT: dict[str, int] = {
    # element-wise activations, by module and autograd-node class name (they coincide)
    "ReLU": 1,
    "LeakyReLU": 2,
    "Sigmoid": 3,
    "Tanh": 1,
    "GELU": 5,
    "Softplus": 5,
    "Softmax": 5,
    "LogSoftmax": 5,
    # layersB's activations; per element: ELU compare, exp, −1, ×α; SELU and CELU one scale
    # more; SiLU exp, +1, ÷, ×x; Mish exp, log1p, max, tanh, ×x; Hardswish +3, min, max, ×1/6,
    # ×x; Hardsigmoid ×1/6, +1/2, min, max; Hardtanh and ReLU6 min, max; Softsign abs, +1, ÷;
    # LogSigmoid min, abs, exp, log1p, −; PReLU compare, ×a; GLU sigmoid 3 and × per output;
    # Softmin negate + softmax; Threshold one comparison
    "ELU": 4,
    "SELU": 5,
    "CELU": 5,
    "SiLU": 4,
    "Mish": 5,
    "Hardswish": 5,
    "Hardsigmoid": 4,
    "Hardtanh": 2,
    "ReLU6": 2,
    "Softsign": 3,
    "LogSigmoid": 5,
    "PReLU": 2,
    "GLU": 4,
    "Softmin": 6,
    "Threshold": 1,
    "Embedding": 0,  # a lookup: no arithmetic
    # element-wise arithmetic nodes
    "Add": 1,
    "Sub": 1,
    "Mul": 1,
    "Div": 1,
    "Pow": 1,
    "PowScalar": 1,
    "Neg": 1,
    "Exp": 1,
    "Log": 1,
    "Sqrt": 1,
    "Abs": 1,
    "Sin": 1,
    "Cos": 1,
    "Clamp": 1,
    "ClampTensor": 2,  # opinfo: a max and a min
    "DivRounding": 2,  # opinfo: a division and its rounding
    "Maximum": 1,
    "Where": 1,
    # tensorops: pointwise maths, masks and moves
    "Sinh": 1,
    "Cosh": 1,
    "Erf": 1,
    "Floor": 1,
    "Ceil": 1,
    "Round": 1,
    "Trunc": 1,
    "MaskedFill": 1,
    "Triangle": 1,
    "Roll": 0,
    "Rot90": 0,
    "Diag": 0,
    "Gather": 0,
    "IndexSelect": 0,
    # data movement
    "Reshape": 0,
    "Permute": 0,
    "Expand": 0,
    "Repeat": 0,
    "Flip": 0,
    "GetItem": 0,
    "SetItem": 0,
    "Cat": 0,
    "Stack": 0,
    "Pad": 0,
    "Clone": 0,
    "Cast": 0,
    "Identity": 0,
    "Flatten": 0,
    "Unflatten": 0,
    # layersA: rearrangements and scatters
    "PixelShuffle": 0,
    "PixelUnshuffle": 0,
    "ChannelShuffle": 0,
    "MaxUnpool1d": 0,
    "MaxUnpool2d": 0,
    "MaxUnpool3d": 0,
    "MaxUnpoolNd": 0,
}
"""FLOPs per output element of the element-wise layers and ops (see the module docstring)."""


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


def _pool_kernel(pool: Module) -> tuple[int, ...]:
    """A pooling layer's kernel size, read as the layer reads it (:func:`pool_settings`)."""
    settings = pool_settings(type(pool).__name__, pool._nd, pool.kernel_size, pool.stride,
                             pool.padding, getattr(pool, "dilation", 1))
    return settings[0]


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


def _elementwise(name: str, out_shape: Sequence[int]) -> LayerCost:
    elements = _numel(out_shape)
    per = FLOPS_PER_ELEMENT.get(name)
    if per is None:
        return LayerCost(0, elements, f"{name}: 1 FLOP per element (estimate)")
    return LayerCost(0, per * elements, f"{name}: {per} FLOP{'s' if per != 1 else ''} per element")


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


def module_cost(
    module: Module, input_shape: Sequence[int], output_shape: Sequence[int]
) -> LayerCost | None:
    """The cost of one call of a known layer from its public settings and its input and
    output shapes ``(N, C, *spatial)``; ``None`` for layers without a rule here (their
    autograd nodes are counted by :func:`node_cost` instead)."""
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return _conv(output_shape[0] if len(output_shape) > module._nd + 1 else 1,
                     module.kernel_size, module.in_channels, module.out_channels, output_shape,
                     module.groups, module.bias is not None)
    if isinstance(module, nn.Linear):
        return _linear(module.in_features, output_shape, module.bias is not None)
    if isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
        return _conv_transpose(
            output_shape[0] if len(output_shape) > module._nd + 1 else 1, module.kernel_size,
            module.in_channels, module.out_channels, input_shape, output_shape, module.groups,
            module.bias is not None,
        )
    if isinstance(module, nn.Upsample):
        return _interpolation(module.mode, input_shape, output_shape)
    if isinstance(module, nn.MaxPool1d | nn.MaxPool2d | nn.MaxPool3d):
        return _pool("max", _pool_kernel(module), output_shape)
    if isinstance(module, nn.AvgPool1d | nn.AvgPool2d | nn.AvgPool3d):
        return _pool("avg", _pool_kernel(module), output_shape)
    if isinstance(module, nn.AdaptiveMaxPool1d | nn.AdaptiveMaxPool2d | nn.AdaptiveMaxPool3d):
        return _adaptive("max", input_shape, output_shape)
    if isinstance(module, nn.AdaptiveAvgPool1d | nn.AdaptiveAvgPool2d | nn.AdaptiveAvgPool3d):
        return _adaptive("avg", input_shape, output_shape)
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
        uses_batch = module.training or not module.track_running_stats
        return _batch_norm(uses_batch, output_shape)
    if isinstance(module, nn.Dropout):
        if module.training and module.p > 0:
            return LayerCost(0, _numel(output_shape), "dropout: 1 FLOP per element")
        return LayerCost(0, 0, "dropout: the identity in evaluation")
    layers_b = _layers_b_module_cost(module, output_shape)
    if layers_b is not None:
        return layers_b
    name = type(module).__name__
    if name in FLOPS_PER_ELEMENT and not module._modules:
        return _elementwise(name, output_shape)
    return None


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


def _layers_b_module_cost(module: Module, out_shape: Sequence[int]) -> LayerCost | None:
    from wally.nn.dropout import _DropoutNd
    from wally.nn.normalization import _InstanceNorm

    if isinstance(module, nn.LayerNorm):
        return _row_norm(out_shape, module.weight is not None, module.bias is not None,
                         "layer norm")
    if isinstance(module, nn.GroupNorm):
        return _row_norm(out_shape, module.weight is not None, module.bias is not None,
                         "group norm")
    if isinstance(module, _InstanceNorm):
        if not module.training and module.track_running_stats:
            return _batch_norm(False, out_shape)
        return _row_norm(out_shape, module.weight is not None, module.bias is not None,
                         "instance norm")
    if isinstance(module, nn.LocalResponseNorm):
        return _lrn(module.size, out_shape)
    if isinstance(module, nn.Embedding):
        return LayerCost(0, 0, "embedding: a lookup, 0 FLOPs")
    if isinstance(module, _DropoutNd) and not isinstance(module, nn.Dropout):
        if not module.training or module.p == 0:
            return LayerCost(0, 0, "dropout: the identity in evaluation")
        per = 2 if "Alpha" in type(module).__name__ else 1
        return LayerCost(0, per * _numel(out_shape),
                         f"dropout: {per} FLOP{'s' if per > 1 else ''} per element")
    return None


def _layers_b_node_cost(name: str, node: Any, out_shape: Sequence[int]) -> LayerCost | None:
    if name == "RowNorm":
        return _row_norm(out_shape, node.w_shape is not None, node.b_shape is not None,
                         "layer/group/instance norm")
    if name == "LocalResponseNorm":
        return _lrn(node.size, out_shape)
    if name == "MaskedDropout":
        per = 2 if node.alpha else 1
        return LayerCost(0, per * _numel(out_shape),
                         f"dropout: {per} FLOP{'s' if per > 1 else ''} per element")
    return None


def _tensorops_cost(name: str, node: Any, inputs: list[Tensor]) -> LayerCost | None:
    """Einsum, scans, products, norms, sorts and scatters (wally.ops_math, ops_index, linalg)."""
    if name == "Einsum":
        sizes = {c: n for term, x in zip(node.terms, inputs) for c, n in zip(term, x.shape)}
        product = math.prod(sizes.values())
        if len(inputs) == 1:
            return LayerCost(0, product if set(node.output) != set(sizes) else 0,
                             "einsum: one add per summed element")
        macs = product * (len(inputs) - 1)
        return LayerCost(macs, 2 * macs, "einsum: ∏ subscript sizes · (operands − 1) MACs")
    if not inputs:
        return None
    elements = _numel(inputs[0].shape)
    per = {"Prod": 1, "CumSum": 1, "CumProd": 1, "LogSumExp": 4, "VectorNorm": 2}.get(name)
    if per is not None:
        return LayerCost(0, per * elements, f"{name.lower()}: {per} per input element")
    if name == "SortedGather":
        n = inputs[0].shape[node.axis] if inputs[0].ndim else 1
        compares = (elements // max(n, 1)) * n * math.ceil(math.log2(max(n, 2)))
        return LayerCost(0, compares, "sort: n·⌈log₂ n⌉ comparisons per row")
    if name == "Scatter":
        return LayerCost(0, node.index.size if node.reduce else 0, "scatter: 1 per reduced index")
    return None


def node_cost(node: Any, output: Tensor) -> LayerCost:
    """The cost of one autograd node (an op called in a ``forward``, such as the residual
    ``+`` or an inception ``cat``) from its class, inputs and ``output``."""
    name = type(node).__name__
    out_shape = tuple(output.shape)
    inputs = [t for t in (node.inputs or ()) if isinstance(t, Tensor)]
    if name == "ConvNd":
        x, weight = node.inputs[0], node.inputs[1]
        nd = weight.ndim - 2
        batch = x.shape[0] if x.ndim == nd + 2 else 1
        return _conv(batch, tuple(weight.shape[2:]), x.shape[-nd - 1], weight.shape[0],
                     out_shape, node.groups, node.inputs[2] is not None)
    if name == "Linear":
        return _linear(node.inputs[1].shape[1], out_shape, node.inputs[2] is not None)
    if name == "ConvTransposeNd":
        x, weight = node.inputs[0], node.inputs[1]
        nd = weight.ndim - 2
        batch = x.shape[0] if x.ndim == nd + 2 else 1
        return _conv_transpose(batch, tuple(weight.shape[2:]), weight.shape[0],
                               weight.shape[1] * node.groups, tuple(x.shape), out_shape,
                               node.groups, node.inputs[2] is not None)
    if name == "Interpolate" and getattr(node, "antialias", False):
        taps = math.prod(weights.shape[0] for _, weights in node.plans if weights is not None)
        macs = _numel(out_shape) * taps
        return LayerCost(macs, 2 * macs, f"interpolate ({node.mode}, antialias): the filter's "
                                         "taps per output, MACs")
    if name == "Interpolate" and inputs:
        return _interpolation(node.mode, inputs[0].shape, out_shape)
    if name == "MatMul":
        inner = inputs[0].shape[-1] if inputs else 1
        macs = _numel(out_shape) * inner
        return LayerCost(macs, 2 * macs, "matmul: inner·outputs MACs")
    if name == "SparseDenseProduct":  # wally.geometric: one MAC per non-zero and feature
        macs = node.matrix.nnz * (_numel(out_shape) // max(out_shape[0], 1) if out_shape else 1)
        return LayerCost(macs, 2 * macs, "sparse @ dense: non-zeros·features MACs")
    if name in ("MaxPoolNd", "AvgPoolNd"):
        return _pool("max" if name == "MaxPoolNd" else "avg", node.windows.kernel, out_shape)
    if name in ("AdaptiveMaxPoolNd", "AdaptiveAvgPoolNd") and inputs:
        return _adaptive("max" if name == "AdaptiveMaxPoolNd" else "avg", inputs[0].shape,
                         out_shape)
    if name == "BatchNorm":
        return _batch_norm(bool(getattr(node, "training", False)), out_shape)
    if name == "Dropout":
        return LayerCost(0, _numel(out_shape), "dropout: 1 FLOP per element")
    layers_b = _layers_b_node_cost(name, node, out_shape)
    if layers_b is not None:
        return layers_b
    if name in ("Sum", "Mean", "Amax", "MaxDim") and inputs:
        reduced = _numel(inputs[0].shape)
        extra = _numel(out_shape) if name == "Mean" else 0
        return LayerCost(0, reduced + extra, f"{name.lower()}: 1 FLOP per input element")
    special = _tensorops_cost(name, node, inputs)
    if special is not None:
        return special
    return _elementwise(name, out_shape)
