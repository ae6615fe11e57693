"""``Dropout``: randomly zero activations while training."""

from __future__ import annotations

import numbers

from wally import functional as F
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = ["Dropout"]


class Dropout(Module):
    r"""Inverted dropout: in training, zero each element with probability ``p`` and scale the
    rest by :math:`1/(1-p)`, :math:`y = x \odot m / (1-p)`, :math:`m_i \sim
    \mathrm{Bernoulli}(1-p)`, so :math:`\mathbb{E}[y] = x`. In evaluation (``model.eval()``) it
    is the identity. Masks come from the generator that ``wally.manual_seed`` seeds.

    Shape:
        - Input: ``(*)``.  - Output: ``(*)``, the same shape.

    Example::

        >>> drop = nn.Dropout(0.5)
        >>> drop(wally.ones(8))            # about half the entries are 0, the rest 2
        >>> drop.eval()(wally.ones(8))     # unchanged
    """

    p: float
    inplace: bool

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: probability p has to be between 0 and 1, but got {p!r}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
