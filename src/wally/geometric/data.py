"""``Data``: one graph with node features, edges, labels and masks (PyG's ``Data``, the parts
node classification uses)."""

from __future__ import annotations

from typing import Any

from wally.tensor import Tensor

__all__ = ["Data"]


class Data:
    """A graph as PyG's ``torch_geometric.data.Data`` holds it: ``x`` ``(N, F)`` node features,
    ``edge_index`` ``(2, E)`` int64 (both directions for an undirected graph), ``y`` ``(N,)``
    labels, and any further tensors by name (``train_mask``, ``test_mask``, ...).

    Example::

        >>> data = Data(x=wally.eye(3), edge_index=wally.tensor([[0, 1], [1, 0]]))
        >>> data
        Data(x=[3, 3], edge_index=[2, 2])
        >>> data.num_nodes, data.num_edges
        (3, 2)
    """

    def __init__(self, x: Tensor | None = None, edge_index: Tensor | None = None,
                 y: Tensor | None = None, **attributes: Any) -> None:
        self._keys: list[str] = []
        for key, value in {"x": x, "edge_index": edge_index, "y": y, **attributes}.items():
            if value is not None:
                setattr(self, key, value)

    def __setattr__(self, key: str, value: Any) -> None:
        if not key.startswith("_") and key not in self._keys:
            self._keys.append(key)
        super().__setattr__(key, value)

    def __getattr__(self, key: str) -> Any:
        # only called for a missing attribute: name the ones there are
        raise AttributeError(f"Data has no attribute {key!r}; it has {self.__dict__.get('_keys')}")

    def keys(self) -> list[str]:
        return list(self._keys)

    @property
    def num_nodes(self) -> int:
        if "x" in self._keys:
            return int(self.x.shape[0])
        index = self.edge_index.array
        return int(index.max()) + 1 if index.size else 0

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1]) if "edge_index" in self._keys else 0

    @property
    def num_node_features(self) -> int:
        return int(self.x.shape[1]) if "x" in self._keys else 0

    def __repr__(self) -> str:
        def size(value: Any) -> str:
            shape = getattr(value, "shape", None)
            return f"[{', '.join(str(n) for n in shape)}]" if shape is not None else repr(value)

        fields = ", ".join(f"{key}={size(getattr(self, key))}" for key in self._keys)
        return f"Data({fields})"
