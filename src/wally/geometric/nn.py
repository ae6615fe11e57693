"""The layers and models of ``torch_geometric.nn`` that wally has (they live in ``wally.nn`` and
``wally.models``; this module gathers them under PyG's name)."""

from wally.geometric.utils import gcn_norm
from wally.models.gcn import GCN, LightGCN
from wally.nn.graph_conv import GCNConv, LGConv, SAGEConv

__all__ = ["GCN", "LightGCN", "GCNConv", "LGConv", "SAGEConv", "gcn_norm"]
