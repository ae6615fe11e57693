"""``MaxOverTime``: max-over-time pooling as a layer (see :mod:`wally.functional.temporal_pool`)."""

from __future__ import annotations

from typing import Any

from wally.functional.temporal_pool import max_over_time
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = ["MaxOverTime"]


class MaxOverTime(Module):
    r"""Each channel's largest value over the valid steps of its sequence,
    :math:`y_{n,c} = \max_{t < \ell_n} x_{n,c,t}`; padding never wins, and the gradient goes to
    the arg-max only. Without ``lengths`` or ``mask`` it is ``x.amax(dim=2)``
    (``nn.AdaptiveMaxPool1d(1)`` followed by a flatten).

    Shape:
        - Input: ``(N, C, L)``, optionally ``lengths`` ``(N,)`` (1 to L) or ``mask`` ``(N, L)``.
        - Output: ``(N, C)``.

    Example::

        >>> pool = nn.MaxOverTime()
        >>> pool(wally.tensor([[[1.0, 5.0, 9.0]]]), lengths=[2])
        tensor([[5.]])
    """

    def forward(self, input: Tensor, lengths: Any = None, mask: Any = None) -> Tensor:
        return max_over_time(input, lengths=lengths, mask=mask)
