r"""The receptive field on a graph: after :math:`k` message-passing layers a node's output
depends on exactly its :math:`k`-hop neighbourhood (its ball of radius :math:`k`), the graph's
counterpart of a stack of 3×3 convolutions whose field grows by one pixel a side per layer.

:func:`k_hop_balls` computes the balls from the edges (boolean reachability, one sparse product
per hop); :func:`probe_field` measures a model's field by a gradient probe (which inputs get a
non-zero gradient from one node's output); :func:`graph_fields` lists, for every layer of a
graph model, how many hops its output sees and how large the balls are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wally.backend import ndarray, xp
from wally.geometric.utils import check_edge_index, num_nodes_of
from wally.tensor import Tensor

__all__ = ["GraphFields", "graph_fields", "k_hop_balls", "probe_field"]

_PROPAGATING = ("GCNConv", "SAGEConv", "LGConv")


def k_hop_balls(edge_index: Any, num_nodes: int | None = None, hops: int = 1) -> ndarray:
    r"""``(N, N)`` booleans: ``[i, j]`` is true when node ``j`` is at most ``hops`` edges
    before node ``i`` (along ``j → i``, the way messages flow), every node within its own ball:

    .. math::  B_0 = I, \quad B_{k+1} = B_k \lor (B_k A \ne 0), \quad A_{mj} = [j \to m].

    Shape:
        - ``edge_index``: ``(2, E)``; output ``(N, N)`` bool.

    Example::

        >>> k_hop_balls(wally.tensor([[0, 1], [1, 2]]), 3, hops=1).astype(int).tolist()
        [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    """
    index = check_edge_index("k_hop_balls", edge_index, num_nodes)
    n = num_nodes_of(index, num_nodes)
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
        raise ValueError(f"k_hop_balls: hops must be a non-negative integer, got {hops!r}")
    # reach[j, i]: j's features reach i; an edge j → m passes on all that m reaches: S @ reach
    # with S[j, m] = [j → m], the layout of SparseMatrix.from_edge_index
    from wally.autograd import no_grad
    from wally.geometric.sparse import SparseMatrix

    step = SparseMatrix.from_edge_index(index, num_nodes=n)
    reach = xp.eye(n, dtype=bool)
    for _ in range(hops):
        with no_grad():
            passed = (step @ Tensor(reach.astype(xp.float32))).array > 0
        grown = reach | passed
        if (grown == reach).all():
            break
        reach = grown
    return reach.T.copy()


def probe_field(forward: Any, x: Tensor, node: int) -> set[int]:
    """The nodes whose input features change ``forward(x)[node]``: a gradient probe, the rows of
    ``∂ sum(out[node]) / ∂x`` that are not all zero (``x`` is copied with ``requires_grad``)."""
    probe = Tensor(xp.array(x.array, copy=True), requires_grad=True)
    forward(probe)[node].sum().backward()
    grad = xp.asarray(getattr(probe.grad, "array", probe.grad))
    return {int(i) for i in xp.flatnonzero(xp.abs(grad).sum(axis=1) > 0)}


@dataclass
class GraphFields:
    """Each propagating layer of a graph model: its name, the hops its output sees, and the
    smallest, mean and largest ball of that radius on the graph."""

    rows: list[tuple[str, int, int, float, int]]
    num_nodes: int

    def to_dict(self) -> dict[str, Any]:
        return {"num_nodes": self.num_nodes, "layers": [
            {"layer": name, "hops": hops, "ball_min": lo, "ball_mean": mean, "ball_max": hi}
            for name, hops, lo, mean, hi in self.rows]}

    def __str__(self) -> str:
        lines = [f"Receptive field on the graph ({self.num_nodes} nodes): after k propagating "
                 f"layers a node sees its k-hop ball",
                 f"{'Layer':24}{'Hops':>6}{'Ball min':>10}{'mean':>10}{'max':>8}"]
        lines += [f"{name:24}{hops:6d}{lo:10d}{mean:10.1f}{hi:8d}"
                  for name, hops, lo, mean, hi in self.rows]
        return "\n".join(lines)


def graph_fields(model: Any, edge_index: Any, num_nodes: int | None = None) -> GraphFields:
    """The k-hop field after each :class:`~wally.nn.GCNConv`, :class:`~wally.nn.SAGEConv` or
    :class:`~wally.nn.LGConv` of ``model``, in registration order (the order they run in
    wally's graph models), with the ball sizes on ``edge_index``'s graph. Self loops (GCNConv)
    and root weights (SAGEConv) keep a node in its own ball, as ``k_hop_balls`` does; LGConv has
    neither, but LightGCN averages every layer's embedding, so its ball is the same union."""
    index = check_edge_index("graph_fields", edge_index, num_nodes)
    n = num_nodes_of(index, num_nodes)
    layers = [(name, module) for name, module in model.named_modules()
              if type(module).__name__ in _PROPAGATING]
    rows = []
    for hops, (name, module) in enumerate(layers, 1):
        sizes = k_hop_balls(index, n, hops).sum(axis=1)
        rows.append((f"{name}: {type(module).__name__}", hops, int(sizes.min()),
                     float(sizes.mean()), int(sizes.max())))
    return GraphFields(rows, n)
