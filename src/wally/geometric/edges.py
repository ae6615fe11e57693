"""An ``edge_index`` checked and counted: what the sparse matrix and the graph helpers of
:mod:`wally.geometric.utils` both read (``torch_geometric.utils``'s names; here, so that
neither of those two modules imports the other's)."""

from __future__ import annotations

from typing import Any

from wally.backend import ndarray, xp
from wally.tensor import Tensor

__all__ = ["check_edge_index", "num_nodes_of"]


def check_edge_index(name: str, edge_index: Any, num_nodes: int | None = None) -> ndarray:
    """``edge_index`` as an int64 array (2, E), or a ValueError/TypeError naming ``name``."""
    array = edge_index.array if isinstance(edge_index, Tensor) else edge_index
    if not isinstance(array, ndarray):
        raise TypeError(f"{name}: expected edge_index as a tensor of shape (2, E), got "
                        f"{type(edge_index).__name__}")
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected edge_index of integers (int64), got dtype "
                        f"{array.dtype}")
    if array.ndim != 2 or array.shape[0] != 2:
        raise ValueError(f"{name}: expected edge_index of shape (2, E), got shape "
                         f"{tuple(array.shape)}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name}: node indices in edge_index must be non-negative, got "
                         f"{int(array.min())}")
    if num_nodes is not None and array.size and array.max() >= num_nodes:
        raise ValueError(f"{name}: node indices in edge_index must be below the number of nodes "
                         f"{num_nodes}, got {int(array.max())}")
    return array.astype(xp.int64, copy=False)


def num_nodes_of(edge_index: ndarray, num_nodes: int | None = None) -> int:
    """``num_nodes`` if given, else one more than the largest index (PyG's ``maybe_num_nodes``)."""
    if num_nodes is not None:
        return int(num_nodes)
    return int(edge_index.max()) + 1 if edge_index.size else 0
