r"""Graph helpers with PyTorch Geometric's names and semantics (``torch_geometric.utils``).

A graph is an ``edge_index``: an integer array (2, E) whose column ``e`` is the edge
``edge_index[0, e] → edge_index[1, e]`` (source → target), with optional ``edge_weight`` (E,).
Messages flow from source to target, as in PyG's default ``flow="source_to_target"``.
"""

from __future__ import annotations

from typing import Any

from wally import ops_index
from wally.backend import xp
from wally.creation import full, zeros
from wally.geometric.edges import check_edge_index, num_nodes_of
from wally.tensor import Tensor

__all__ = ["add_remaining_self_loops", "add_self_loops", "check_edge_index", "degree",
           "gcn_norm", "num_nodes_of", "to_dense_adj"]


def _check_weight(name: str, edge_weight: Tensor | None, n_edges: int) -> None:
    if edge_weight is None:
        return
    if not isinstance(edge_weight, Tensor):
        raise TypeError(f"{name}: expected edge_weight as a tensor of shape ({n_edges},), got "
                        f"{type(edge_weight).__name__}")
    if tuple(edge_weight.shape) != (n_edges,):
        raise ValueError(f"{name}: expected edge_weight of shape ({n_edges},), one per edge, "
                         f"got shape {tuple(edge_weight.shape)}")
    if edge_weight.dtype.kind != "f":
        raise TypeError(f"{name}: expected floating-point edge_weight, got dtype "
                        f"{edge_weight.dtype}")


def degree(index: Any, num_nodes: int | None = None, dtype: Any = None) -> Tensor:
    r"""How often each node appears in the 1-D ``index``: :math:`d_i = |\{e : \mathrm{index}_e
    = i\}|` (PyG's ``degree``; pass ``edge_index[1]`` for in-degrees).

    Shape:
        - ``index``: ``(E,)``; output ``(num_nodes,)``.

    Example::

        >>> degree(wally.tensor([0, 1, 1, 3])).tolist()
        [1.0, 2.0, 0.0, 1.0]
    """
    array = index.array if isinstance(index, Tensor) else xp.asarray(index)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ValueError(f"degree: expected a 1-D integer index, got shape {tuple(array.shape)} "
                         f"and dtype {array.dtype}")
    n = int(array.max()) + 1 if num_nodes is None and array.size else int(num_nodes or 0)
    counts = xp.bincount(array, minlength=n)[:n] if array.size else xp.zeros(n)
    return Tensor(counts.astype(dtype or xp.float32))


def add_self_loops(edge_index: Any, edge_weight: Tensor | None = None, fill_value: float = 1.0,
                   num_nodes: int | None = None) -> tuple[Tensor, Tensor | None]:
    """Append the loop ``i → i`` for every node, with weight ``fill_value`` (PyG's
    ``add_self_loops``: loops already there are kept, so they end up doubled)."""
    index = check_edge_index("add_self_loops", edge_index, num_nodes)
    _check_weight("add_self_loops", edge_weight, index.shape[1])
    n = num_nodes_of(index, num_nodes)
    loops = xp.arange(n, dtype=xp.int64)
    new_index = Tensor(xp.concatenate([index, xp.stack([loops, loops])], axis=1))
    if edge_weight is None:
        return new_index, None
    from wally import ops

    return new_index, ops.cat([edge_weight, full((n,), fill_value, dtype=edge_weight.dtype)])


def add_remaining_self_loops(edge_index: Any, edge_weight: Tensor | None = None,
                             fill_value: float = 1.0, num_nodes: int | None = None
                             ) -> tuple[Tensor, Tensor | None]:
    """Give every node exactly one self loop (PyG's ``add_remaining_self_loops``).

    The loops already in the graph are moved to the end, one per node, keeping their weight
    (where a node has several, the last one's, as PyG's indexed write leaves it; and as in
    PyTorch every one of them gets the loop's gradient); a node without
    one gets ``fill_value``. The other edges keep their order. Without ``edge_weight`` no weights
    are made, so ``fill_value`` is unused (GCN then weighs every loop 1, as PyG does).

    Shape:
        - ``edge_index``: ``(2, E)`` → ``(2, E' + N)``, where ``E'`` counts the non-loop edges.
    """
    index = check_edge_index("add_remaining_self_loops", edge_index, num_nodes)
    _check_weight("add_remaining_self_loops", edge_weight, index.shape[1])
    n = num_nodes_of(index, num_nodes)
    keep = index[0] != index[1]
    loops = xp.arange(n, dtype=xp.int64)
    new_index = Tensor(xp.concatenate([index[:, keep], xp.stack([loops, loops])], axis=1))
    if edge_weight is None:
        return new_index, None
    from wally import ops

    on_loop = xp.flatnonzero(~keep)
    loop_weight = full((n,), fill_value, dtype=edge_weight.dtype)
    if on_loop.size:
        loop_weight = ops_index.scatter(loop_weight, 0, Tensor(index[0, on_loop]),
                                        edge_weight[Tensor(on_loop)])
    return new_index, ops.cat([edge_weight[Tensor(xp.flatnonzero(keep))], loop_weight])


def _inverse_sqrt(name: str, deg: Tensor) -> Tensor:
    r""":math:`d^{-1/2}`, and 0 where :math:`d = 0` (an isolated node sends and gets nothing)."""
    if deg.array.size and deg.array.min() < 0:
        node = int(xp.argmin(deg.array))
        raise ValueError(f"{name}: symmetric normalisation needs non-negative node degrees, got "
                         f"degree {float(deg.array[node]):g} at node {node} (negative edge "
                         f"weights); pass normalize=False or non-negative edge weights")
    from wally import ops

    positive = Tensor(deg.array > 0)
    safe = ops.where(positive, deg, 1.0)
    return ops.where(positive, safe.pow(-0.5), 0.0)


def gcn_norm(edge_index: Any, edge_weight: Tensor | None = None, num_nodes: int | None = None,
             improved: bool = False, add_self_loops: bool = True, flow: str = "source_to_target",
             dtype: Any = None, *, _name: str = "gcn_norm") -> tuple[Tensor, Tensor]:
    r"""Kipf & Welling's normalised adjacency :math:`\hat A = \hat D^{-1/2} (A + I) \hat D^{-1/2}`
    as an edge list: :math:`\hat w_{ji} = w_{ji} / \sqrt{\hat d_j \hat d_i}` with
    :math:`\hat d_i = \sum_{e \to i} w_e` the weighted in-degree after the self loops
    (weight 1, or 2 when ``improved`` and edge weights are given, as in PyG).

    PyG's ``torch_geometric.nn.conv.gcn_norm``: same arguments, same edge order, same numbers.

    Shape:
        - ``edge_index``: ``(2, E)``; output ``(2, E')`` and weights ``(E',)``.

    Example::

        >>> index, weight = gcn_norm(wally.tensor([[0, 1], [1, 0]]))
        >>> index.tolist()                          # the self loops appended
        [[0, 1, 0, 1], [1, 0, 0, 1]]
        >>> [round(w, 6) for w in weight.tolist()]  # 1 / sqrt(2 · 2)
        [0.5, 0.5, 0.5, 0.5]
    """
    if flow not in ("source_to_target", "target_to_source"):
        raise ValueError(f"{_name}: flow must be 'source_to_target' or 'target_to_source', got "
                         f"{flow!r}")
    index = check_edge_index(_name, edge_index, num_nodes)
    _check_weight(_name, edge_weight, index.shape[1])
    n = num_nodes_of(index, num_nodes)
    if add_self_loops:
        new_index, edge_weight = add_remaining_self_loops(index, edge_weight,
                                                          2.0 if improved else 1.0, n)
        index = new_index.array
    if edge_weight is None:
        edge_weight = Tensor(xp.ones(index.shape[1], dtype=dtype or xp.float32))
    row, col = Tensor(index[0]), Tensor(index[1])
    target = col if flow == "source_to_target" else row
    deg = ops_index.scatter_add(zeros(n, dtype=edge_weight.dtype), 0, target, edge_weight)
    deg_inv_sqrt = _inverse_sqrt(_name, deg)
    return Tensor(index), deg_inv_sqrt[row] * edge_weight * deg_inv_sqrt[col]


def to_dense_adj(edge_index: Any, edge_weight: Tensor | None = None,
                 num_nodes: int | None = None) -> Tensor:
    """The dense ``(N, N)`` adjacency, ``A[source, target]`` summed over duplicate edges (PyG's
    ``to_dense_adj`` without the batch axis)."""
    from wally.geometric.sparse import SparseMatrix

    return SparseMatrix.from_edge_index(edge_index, edge_weight, num_nodes).to_dense()
