"""Distance layers: ``CosineSimilarity`` and ``PairwiseDistance``, PyTorch's signatures and
printed forms; each calls :mod:`wally.functional.distance` in one line."""

from __future__ import annotations

from wally.backend import xp
from wally.functional import distance as D
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = ["CosineSimilarity", "PairwiseDistance"]


class CosineSimilarity(Module):
    r"""Cosine similarity of ``x1`` and ``x2`` along ``dim``, each vector normalised on its
    own:

    .. math::
        \text{similarity} = \sum_d \frac{x_1}{\max(\lVert x_1 \rVert_2, \epsilon)} \cdot
            \frac{x_2}{\max(\lVert x_2 \rVert_2, \epsilon)}

    Shape:
        - Input1: ``(∗1, D, ∗2)`` with ``D`` at ``dim``.  - Input2: broadcastable to Input1.
        - Output: ``(∗1, ∗2)``, the broadcast shape without ``dim``.

    Example::

        >>> nn.CosineSimilarity(dim=1)(wally.ones(2, 3), wally.ones(2, 3))
        tensor([1.0000, 1.0000])
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return D.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    r"""The p-norm distance between the rows of ``x1`` and ``x2`` (the last dim), with ``eps``
    added to the difference so the gradient stays finite where rows coincide:

    .. math::
        d(x_1, x_2) = \lVert x_1 - x_2 + \epsilon \rVert_p

    Shape:
        - Input1: ``(N, D)`` or ``(D)``.  - Input2: broadcastable to Input1.
        - Output: ``(N)`` or ``()``; ``(N, 1)`` or ``(1)`` with ``keepdim``.

    Example::

        >>> nn.PairwiseDistance(p=2.0)(wally.zeros(2, 3), wally.ones(2, 3))
        tensor([1.7320, 1.7320])
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        shapes = [tuple(x.shape) for x in (x1, x2) if isinstance(x, Tensor)]
        try:
            xp.broadcast_shapes(*shapes)
        except ValueError:
            raise ValueError(f"{self!r}: expected x1 and x2 of broadcastable shapes (N, D), got "
                             f"{shapes[0]} and {shapes[1]}") from None
        return D.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
