"""A graph drawn with its nodes coloured by class: what a node classifier predicted, with the
nodes it got wrong ringed in red and the labelled ones drawn as squares."""

from __future__ import annotations

import os
from typing import Any

from wally.backend import xp
from wally.viz._output import Picture, matplotlib_figure, save_figure

__all__ = ["plot_graph"]

_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def plot_graph(edge_index: Any, predictions: Any, path: str | os.PathLike[str],
               labels: Any = None, labelled: Any = None, class_names: Any = None,
               title: str | None = None, seed: int = 0) -> Picture:
    """Draw the graph ``edge_index`` (2, E) with node ``i`` coloured by ``predictions[i]``, laid
    out by networkx's spring layout (``seed`` fixes it). Where ``labels`` are given, a node whose
    prediction is wrong gets a red ring; ``labelled`` (indices) are drawn as squares.

    ``info`` holds ``positions`` (node → data coordinates, map them with the ``"graph"`` panel),
    ``wrong`` (the nodes ringed) and ``colours`` (node → its fill colour).
    """
    try:
        import networkx
    except ImportError:
        raise ImportError("plot_graph lays the graph out with networkx, which is not installed: "
                          "pip install networkx") from None
    index = xp.asarray(getattr(edge_index, "array", edge_index))
    predicted = xp.asarray(getattr(predictions, "array", predictions)).astype(int)
    n = int(predicted.shape[0])
    graph = networkx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from((int(a), int(b)) for a, b in index.T if a != b)
    positions = networkx.spring_layout(graph, seed=seed)
    colours = [_COLOURS[int(c) % len(_COLOURS)] for c in predicted]
    wrong: list[int] = []
    if labels is not None:
        truth = xp.asarray(getattr(labels, "array", labels)).astype(int)
        wrong = [int(i) for i in xp.flatnonzero(truth != predicted)]
    squares = set() if labelled is None else {int(i) for i in labelled}
    figure = matplotlib_figure((6.4, 6.0))
    axes = figure.add_subplot(1, 1, 1)
    for a, b in graph.edges():
        axes.plot(*zip(positions[a], positions[b]), color="#bbbbbb", linewidth=0.8, zorder=1)
    for i in range(n):
        x, y = positions[i]
        axes.scatter([x], [y], s=220, c=colours[i], marker="s" if i in squares else "o",
                     edgecolors="#d62728" if i in wrong else "black",
                     linewidths=2.5 if i in wrong else 0.6, zorder=2)
        axes.text(x, y, str(i), ha="center", va="center", fontsize=7, zorder=3)
    names = class_names or [f"class {c}" for c in range(int(predicted.max()) + 1 if n else 0)]
    for c, name in enumerate(names):
        axes.scatter([], [], c=_COLOURS[c % len(_COLOURS)], label=f"predicted {name}")
    axes.legend(loc="best", fontsize=8)
    axes.set_title(title or f"{n} nodes coloured by predicted class; red ring: wrong, "
                   "square: labelled", fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])
    info = {"positions": {i: tuple(float(v) for v in positions[i]) for i in range(n)},
            "wrong": wrong, "colours": dict(enumerate(colours))}
    return save_figure(figure, path, {"graph": axes}, info)
