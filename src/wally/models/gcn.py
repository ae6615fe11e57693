"""Kipf & Welling's graph convolutional network (ICLR 2017), as PyG's ``models.GCN`` builds it.

Two (or more) :class:`~wally.nn.GCNConv` layers with ReLU and dropout between them::

    GCNConv(in→hidden) ReLU Dropout  GCNConv(hidden→classes)

``state_dict`` keys are PyG's (``convs.0.lin.weight``, ``convs.0.bias``, ...), so weights move
both ways. The receptive field of a node after ``num_layers`` layers is its ``num_layers``-hop
neighbourhood: the graph's counterpart of a stack of 3×3 convolutions growing by one pixel a side
per layer.
"""

from __future__ import annotations

from typing import Any

from wally import functional as F
from wally import nn
from wally.models.registry import register_model
from wally.tensor import Tensor

__all__ = ["GCN", "LightGCN", "gcn", "lightgcn"]


class GCN(nn.Module):
    """PyG's ``GCN(in_channels, hidden_channels, num_layers, out_channels=None, dropout=0.0)``
    with ReLU: ``num_layers`` GCNConv layers, the last one to ``out_channels`` (default
    ``hidden_channels``) without activation.

    Shape:
        - ``x``: ``(N, in_channels)``; ``edge_index``: ``(2, E)``; output ``(N, out_channels)``.

    Example::

        >>> model = GCN(34, 16, num_layers=2, out_channels=2)
        >>> model
        GCN(34, 2, num_layers=2)
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int,
                 out_channels: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"GCN: num_layers must be a positive integer, got {num_layers!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"GCN: dropout must be in [0, 1), got {dropout!r}")
        self.in_channels, self.hidden_channels, self.num_layers = (in_channels, hidden_channels,
                                                                   num_layers)
        self.out_channels = hidden_channels if out_channels is None else out_channels
        self.dropout = dropout
        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [self.out_channels]
        self.convs = nn.ModuleList([nn.GCNConv(a, b) for a, b in zip(widths, widths[1:])])
        self.input_size = None  # any number of nodes: no fixed input, unlike the image models

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index, edge_weight)
            if i < self.num_layers - 1:
                x = F.dropout(F.relu(x), p=self.dropout, training=self.training)
        return x

    def __repr__(self) -> str:
        return f"GCN({self.in_channels}, {self.out_channels}, num_layers={self.num_layers})"


@register_model
def gcn(in_channels: int = 34, hidden_channels: int = 16, num_classes: int = 2,
        num_layers: int = 2, dropout: float = 0.5) -> GCN:
    """Kipf & Welling's two-layer GCN for node classification; the defaults fit Zachary's karate
    club (34 one-hot members, 2 factions). Hidden width 16 and dropout 0.5 are the paper's.

    Parameters: 34·16 + 16 + 16·2 + 2 = 594 at the defaults.
    """
    return GCN(in_channels, hidden_channels, num_layers, num_classes, dropout)


class LightGCN(nn.Module):
    r"""LightGCN (He et al. 2020; PyG's ``models.LightGCN``): one learnt embedding per node,
    propagated by ``num_layers`` :class:`~wally.nn.LGConv` layers without weights or
    nonlinearity, and averaged over the layers,

    .. math::  e = \sum_{l=0}^{L} \alpha_l \, e^{(l)}, \quad e^{(l+1)} = \hat A e^{(l)},
               \quad \alpha_l = \tfrac{1}{L+1}.

    A pair's score is the dot product of its two embeddings. Keys ``alpha`` (a buffer) and
    ``embedding.weight`` (Xavier uniform), as in PyG.

    Shape:
        - ``edge_index``: ``(2, E)`` over ``num_nodes`` nodes (users and items numbered
          together); output: one score per pair of ``edge_label_index`` ``(2, P)``, ``(P,)``.
    """

    def __init__(self, num_nodes: int, embedding_dim: int, num_layers: int,
                 alpha: float | None = None) -> None:
        super().__init__()
        from wally.creation import full

        self.num_nodes, self.embedding_dim, self.num_layers = num_nodes, embedding_dim, num_layers
        value = 1.0 / (num_layers + 1) if alpha is None else float(alpha)
        self.register_buffer("alpha", full((num_layers + 1,), value))
        self.embedding = nn.Embedding(num_nodes, embedding_dim)
        self.convs = nn.ModuleList([nn.LGConv() for _ in range(num_layers)])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.embedding.weight)

    def get_embedding(self, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        x = self.embedding.weight
        out = x * self.alpha[0]
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index, edge_weight)
            out = out + x * self.alpha[i + 1]
        return out

    def forward(self, edge_index: Any, edge_label_index: Any = None,
                edge_weight: Tensor | None = None) -> Tensor:
        pairs = edge_index if edge_label_index is None else edge_label_index
        pairs = pairs if isinstance(pairs, Tensor) else Tensor(pairs)
        out = self.get_embedding(edge_index, edge_weight)
        return (out[pairs[0]] * out[pairs[1]]).sum(dim=-1)

    def recommend(self, edge_index: Any, edge_weight: Tensor | None = None,
                  src_index: Tensor | None = None, dst_index: Tensor | None = None,
                  k: int = 1) -> Tensor:
        """The top ``k`` of ``dst_index`` (default: all nodes) for each of ``src_index``."""
        out_src = out_dst = self.get_embedding(edge_index, edge_weight)
        if src_index is not None:
            out_src = out_src[src_index]
        if dst_index is not None:
            out_dst = out_dst[dst_index]
        top = (out_src @ out_dst.t()).topk(k, dim=-1).indices
        return top if dst_index is None else dst_index[top.reshape(-1)].reshape(tuple(top.shape))

    def recommendation_loss(self, pos_edge_rank: Tensor, neg_edge_rank: Tensor,
                            node_id: Tensor | None = None, lambda_reg: float = 1e-4) -> Tensor:
        """BPR on the scores, with the L2 penalty on the (``node_id``) embeddings, as PyG."""
        from wally.geometric.metrics import bpr_loss

        embedding: Tensor = self.embedding.weight
        if node_id is not None:
            embedding = embedding[node_id]
        return bpr_loss(pos_edge_rank, neg_edge_rank, embedding, lambda_reg)

    def __repr__(self) -> str:
        return f"LightGCN({self.num_nodes}, {self.embedding_dim}, num_layers={self.num_layers})"


@register_model
def lightgcn(num_nodes: int = 3668, embedding_dim: int = 64, num_layers: int = 3,
             alpha: float | None = None) -> LightGCN:
    """He et al.'s LightGCN (embedding 64, 3 layers are the paper's); the default node count is
    the Debian package graph of :func:`wally.data.recsys.debian_depends` (3,221 packages + 447
    libraries). ``num_layers=0`` is BPR matrix factorisation.

    Parameters: ``num_nodes · embedding_dim`` (234,752 at the defaults).
    """
    model = LightGCN(num_nodes, embedding_dim, num_layers, alpha)
    model.input_size = None  # a graph: no fixed input, unlike the image models
    return model
