"""Graphs: a sparse adjacency with autograd and PyTorch Geometric's helpers and layers.

``wally.geometric`` mirrors the parts of ``torch_geometric`` that wally has:
``wally.geometric.utils`` (``gcn_norm``, ``add_remaining_self_loops``, ``degree``, ...),
``wally.geometric.nn`` (``GCNConv``, ``SAGEConv``, ``LGConv``, also in ``wally.nn``) and
``wally.geometric.data.Data``. :mod:`wally.geometric.sparse` holds the sparse matrix itself,
:mod:`wally.geometric.recommend` BPR training and ranking for LightGCN and its baselines, and
:mod:`wally.geometric.fields` the receptive field as the k-hop ball.
"""

from wally.geometric import utils
from wally.geometric.sparse import SparseMatrix, spmm

__all__ = ["SparseMatrix", "spmm", "utils"]
