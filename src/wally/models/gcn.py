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

__all__ = ["GCN", "gcn"]


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
