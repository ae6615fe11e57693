r"""Convolution on graphs, with PyTorch Geometric's constructors, ``repr`` and ``state_dict`` keys.

The study note's two principles carry over from the pixel grid to a graph: **translation
invariance** becomes *permutation equivariance* (one weight matrix shared by every node, so
renumbering the nodes renumbers the output), and **locality** becomes the *neighbourhood*: a node
reads only the nodes with an edge into it, so after :math:`k` layers its receptive field is its
:math:`k`-hop ball, as a window of half-width :math:`\Delta` grows by :math:`\Delta` per layer.

Every layer here is "aggregate over the neighbours, then (or before) a shared linear map": a
sparse product :math:`\hat A X` (:mod:`wally.geometric.sparse`) and a dense GEMM.
"""

from __future__ import annotations

from typing import Any

from wally import functional as F
from wally.backend import xp
from wally.creation import zeros
from wally.geometric.sparse import SparseMatrix
from wally.geometric.utils import check_edge_index, gcn_norm
from wally.nn import init
from wally.nn.linear import Linear
from wally.nn.module import Module
from wally.nn.parameter import Parameter
from wally.tensor import Tensor

__all__ = ["GCNConv", "LGConv", "SAGEConv"]


def _check_channels(name: str, **channels: Any) -> None:
    for what, n in channels.items():
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"{name}: {what} must be a positive integer, got {n!r}")


def _operands(layer: Module, x: Any, edge_index: Any, edge_weight: Any,
              channels: int | None) -> Any:
    """``edge_index`` checked against ``x``: the node count is ``x``'s number of rows (PyG)."""
    name = type(layer).__name__
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected node features x as a Tensor (N, F), got "
                        f"{type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name}: expected node features x of shape (num_nodes, "
                         f"{channels or 'in_channels'}), got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name}: expected node features with {channels} channels "
                         f"(in_channels), got shape {tuple(x.shape)}")
    index = check_edge_index(name, edge_index)
    if index.size and index.max() >= x.shape[0]:
        raise ValueError(f"{name}: edge_index refers to node {int(index.max())}, but x has "
                         f"{x.shape[0]} rows (one per node); expected indices below {x.shape[0]}")
    if edge_weight is not None:
        if not isinstance(edge_weight, Tensor):
            raise TypeError(f"{name}: expected edge_weight as a Tensor ({index.shape[1]},), got "
                            f"{type(edge_weight).__name__}")
        if tuple(edge_weight.shape) != (index.shape[1],):
            raise ValueError(f"{name}: expected edge_weight of shape ({index.shape[1]},), one "
                             f"per edge, got shape {tuple(edge_weight.shape)}")
    return index


def _propagate(edge_index: Any, edge_weight: Tensor | None, x: Tensor) -> SparseMatrix:
    """The matrix whose product with ``x`` sums each edge's message at its target:
    :math:`y_i = \\sum_{j \\to i} w_{ji} x_j` (rows are targets, columns sources)."""
    n = x.shape[0]
    weight = edge_weight
    if weight is None:
        weight = Tensor(xp.ones(edge_index.shape[1], dtype=x.array.dtype))
    return SparseMatrix(edge_index[1], edge_index[0], weight, (n, n))


class GCNConv(Module):
    r"""Kipf & Welling's graph convolution (PyG's ``GCNConv``):

    .. math::  X' = \hat D^{-1/2} \hat A \hat D^{-1/2} X \Theta^\top + b,

    with :math:`\hat A = A + I` (self loops, weight 2 if ``improved`` and edge weights are given,
    as in PyG) and :math:`\hat D_{ii} = \sum_j \hat A_{ji}`, the weighted in-degree. Row
    :math:`i`: :math:`x'_i = \Theta \sum_{j \to i} \frac{w_{ji}}{\sqrt{\hat d_j \hat d_i}} x_j + b`.

    ``lin.weight`` :math:`\Theta` is ``(out_channels, in_channels)`` (Glorot uniform), ``bias``
    ``(out_channels,)`` (zeros): PyG's keys and shapes, so weights load both ways. ``cached``
    keeps the normalised graph from the first call (transductive learning on one graph).
    ``add_self_loops=None`` means ``normalize``, as in PyG 2.8; ``normalize=False`` uses the
    graph (and ``edge_weight``) as given.

    Shape:
        - ``x``: ``(N, in_channels)``; ``edge_index``: ``(2, E)``; ``edge_weight``: ``(E,)``.
        - Output: ``(N, out_channels)``.

    Example::

        >>> conv = nn.GCNConv(3, 2)
        >>> conv(wally.randn(4, 3), wally.tensor([[0, 1, 2], [1, 2, 3]])).shape
        wally.Size([4, 2])
    """

    def __init__(self, in_channels: int, out_channels: int, improved: bool = False,
                 cached: bool = False, add_self_loops: bool | None = None,
                 normalize: bool = True,
                 bias: bool = True, **kwargs: Any) -> None:
        super().__init__()
        _check_channels("GCNConv", in_channels=in_channels, out_channels=out_channels)
        if kwargs:
            raise TypeError(f"GCNConv: unsupported keyword arguments {sorted(kwargs)}")
        if add_self_loops is None:  # PyG 2.8: self loops go with the normalisation
            add_self_loops = normalize
        if add_self_loops and not normalize:
            raise ValueError("GCNConv: add_self_loops=True needs normalize=True (the loops are "
                             "added on the fly by the normalisation, as in PyG); got "
                             "normalize=False")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.improved, self.cached = improved, cached
        self.add_self_loops, self.normalize = add_self_loops, normalize
        self._cached_matrix: SparseMatrix | None = None
        self.lin = Linear(in_channels, out_channels, bias=False)
        if bias:
            self.bias = Parameter(zeros(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyG's: Glorot (Xavier) uniform, U(-a, a) with a = sqrt(6 / (in + out)); bias zeros.
        init.xavier_uniform_(self.lin.weight)
        if self.bias is not None:
            init.zeros_(self.bias)
        self._cached_matrix = None

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        index = _operands(self, x, edge_index, edge_weight, self.in_channels)
        matrix = self._cached_matrix
        if matrix is None:
            if self.normalize:
                norm_index, edge_weight = gcn_norm(index, edge_weight, x.shape[0],
                                                   self.improved, self.add_self_loops,
                                                   dtype=x.dtype, _name="GCNConv")
                index = norm_index.array
            matrix = _propagate(index, edge_weight, x)
            if self.cached:
                self._cached_matrix = matrix
        out = matrix @ self.lin(x)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"

    def __repr__(self) -> str:
        return f"GCNConv({self.extra_repr()})"


class LGConv(Module):
    r"""LightGCN's propagation (He et al. 2020; PyG's ``LGConv``): no weights, no self loops,
    no nonlinearity,

    .. math::  x'_i = \sum_{j \to i} \frac{w_{ji}}{\sqrt{d_j d_i}} x_j

    (plain :math:`\sum_{j \to i} w_{ji} x_j` with ``normalize=False``).

    Shape:
        - ``x``: ``(N, F)``; ``edge_index``: ``(2, E)``; output ``(N, F)``.

    Example::

        >>> nn.LGConv()(wally.ones(3, 2), wally.tensor([[0, 1], [1, 0]])).tolist()
        [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]
    """

    def __init__(self, normalize: bool = True, **kwargs: Any) -> None:
        super().__init__()
        if kwargs:
            raise TypeError(f"LGConv: unsupported keyword arguments {sorted(kwargs)}")
        self.normalize = normalize

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        index = _operands(self, x, edge_index, edge_weight, None)
        if self.normalize:
            norm_index, edge_weight = gcn_norm(index, edge_weight, x.shape[0],
                                               add_self_loops=False, dtype=x.dtype,
                                               _name="LGConv")
            index = norm_index.array
        return _propagate(index, edge_weight, x) @ x

    def __repr__(self) -> str:
        return "LGConv()"


class SAGEConv(Module):
    r"""GraphSAGE (Hamilton et al. 2017; PyG's ``SAGEConv``):

    .. math::  x'_i = W_l \cdot \operatorname{mean}_{j \to i} x_j + b + W_r x_i

    (``aggr='sum'``/``'add'``: the sum instead of the mean; a node with no in-edges aggregates
    zeros). ``normalize=True`` divides each output row by its L2 norm; ``root_weight=False``
    drops :math:`W_r x_i`. Keys: ``lin_l.weight``, ``lin_l.bias`` and ``lin_r.weight``, each
    initialised as ``nn.Linear``.

    Shape:
        - ``x``: ``(N, in_channels)``; ``edge_index``: ``(2, E)``; output ``(N, out_channels)``.

    Example::

        >>> nn.SAGEConv(3, 2)(wally.randn(4, 3), wally.tensor([[0, 1], [1, 2]])).shape
        wally.Size([4, 2])
    """

    _AGGREGATIONS = ("mean", "sum", "add")

    def __init__(self, in_channels: int, out_channels: int, aggr: str = "mean",
                 normalize: bool = False, root_weight: bool = True, bias: bool = True,
                 **kwargs: Any) -> None:
        super().__init__()
        _check_channels("SAGEConv", in_channels=in_channels, out_channels=out_channels)
        if aggr not in self._AGGREGATIONS:
            raise ValueError(f"SAGEConv: aggr must be one of {self._AGGREGATIONS}, got {aggr!r}")
        if kwargs:
            raise TypeError(f"SAGEConv: unsupported keyword arguments {sorted(kwargs)}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.aggr, self.normalize, self.root_weight = aggr, normalize, root_weight
        self.lin_l = Linear(in_channels, out_channels, bias=bias)
        self.lin_r: Linear | None = (Linear(in_channels, out_channels, bias=False)
                                     if root_weight else None)

    def reset_parameters(self) -> None:
        self.lin_l.reset_parameters()
        if self.lin_r is not None:
            self.lin_r.reset_parameters()

    def forward(self, x: Tensor, edge_index: Any) -> Tensor:
        index = _operands(self, x, edge_index, None, self.in_channels)
        out = _propagate(index, None, x) @ x
        if self.aggr == "mean":
            counts = xp.bincount(index[1], minlength=x.shape[0]).clip(min=1)
            out = out / Tensor(counts.astype(x.array.dtype)[:, None])
        out = self.lin_l(out)
        if self.lin_r is not None:
            out = out + self.lin_r(x)
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, aggr={self.aggr}"

    def __repr__(self) -> str:
        return f"SAGEConv({self.extra_repr()})"
