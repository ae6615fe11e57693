"""Dropout layers: ``Dropout`` (element-wise), ``Dropout1d/2d/3d`` (channel-wise),
``AlphaDropout`` and ``FeatureAlphaDropout`` (for SELU networks). All are the identity in
evaluation (``model.eval()``)."""

from __future__ import annotations

import numbers

from wally import functional as F
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
           "FeatureAlphaDropout"]


class _DropoutNd(Module):
    """What every dropout layer shares (PyTorch's ``_DropoutNd``): ``p``, ``inplace``, the
    check of ``p`` and the printed form."""

    p: float
    inplace: bool

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(
                f"{type(self).__name__}: dropout probability has to be between 0 and 1, but "
                f"got {p!r}"
            )
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
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

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)


class Dropout1d(_DropoutNd):
    r"""Channel-wise dropout of sequences: in training each channel of each sample is zeroed
    with probability ``p`` (its whole length) and the rest scaled by :math:`1/(1-p)`.

    Shape:
        - Input: ``(N, C, L)`` or ``(C, L)``.  - Output: the same shape.

    Example::

        >>> nn.Dropout1d(0.2)(wally.randn(20, 16, 32)).shape
        wally.Size([20, 16, 32])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    r"""Channel-wise dropout of images: in training each channel of each sample is zeroed with
    probability ``p`` and the rest scaled by :math:`1/(1-p)`. A 3-D input is read as
    ``(N, C, L)``, with PyTorch's warning.

    Shape:
        - Input: ``(N, C, H, W)``.  - Output: the same shape.

    Example::

        >>> nn.Dropout2d(0.2)(wally.randn(20, 16, 32, 32)).shape
        wally.Size([20, 16, 32, 32])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    r"""Channel-wise dropout of volumes: in training each channel of each sample is zeroed
    with probability ``p`` and the rest scaled by :math:`1/(1-p)`.

    Shape:
        - Input: ``(N, C, D, H, W)`` or ``(C, D, H, W)``.  - Output: the same shape.

    Example::

        >>> nn.Dropout3d(0.2)(wally.randn(2, 4, 3, 8, 8)).shape
        wally.Size([2, 4, 3, 8, 8])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    r"""Alpha dropout for SELU networks: in training, elements are set with probability ``p``
    to :math:`-\lambda\alpha` and an affine map keeps a standardised input's mean 0 and
    variance 1 (see :func:`wally.functional.alpha_dropout`).

    Shape:
        - Input: ``(*)``.  - Output: the same shape.

    Example::

        >>> nn.AlphaDropout(0.2)(wally.randn(20, 16)).shape
        wally.Size([20, 16])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    r"""Channel-wise alpha dropout: as :class:`AlphaDropout`, one draw per
    ``(sample, channel)``.

    Shape:
        - Input: ``(N, C, *)``.  - Output: the same shape.

    Example::

        >>> nn.FeatureAlphaDropout(0.2)(wally.randn(20, 16, 4, 4)).shape
        wally.Size([20, 16, 4, 4])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.feature_alpha_dropout(input, self.p, self.training)
