"""More loss layers, each calling :mod:`wally.nn.functional` in one line: ``SmoothL1Loss``,
``HuberLoss``, ``KLDivLoss``, ``PoissonNLLLoss``, ``GaussianNLLLoss``, ``MarginRankingLoss``,
``HingeEmbeddingLoss``, ``CosineEmbeddingLoss``, ``TripletMarginLoss``, ``SoftMarginLoss`` and
``MultiLabelSoftMarginLoss``.

Constructor signatures, defaults and positional order are PyTorch's, deprecated
``size_average`` / ``reduce`` included where PyTorch still takes them; as in PyTorch the layers
print without their settings (``TripletMarginLoss()``).
"""

from __future__ import annotations

from typing import Any

from wally import functional as F
from wally.nn.loss import _legacy_reduction, _Loss, _WeightedLoss
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = [
    "SmoothL1Loss", "HuberLoss", "KLDivLoss", "PoissonNLLLoss", "GaussianNLLLoss",
    "MarginRankingLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss", "TripletMarginLoss",
    "SoftMarginLoss", "MultiLabelSoftMarginLoss",
]


class SmoothL1Loss(_Loss):
    r"""Smooth L1 loss, quadratic for :math:`|x - y| < \beta` and linear beyond
    (see :func:`~wally.nn.functional.smooth_l1_loss`).

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``.  - Output: a scalar, or ``(*)`` with ``'none'``.

    Example::

        >>> nn.SmoothL1Loss(beta=0.5)(wally.tensor([0.2, 2.0]), wally.tensor([0.0, 0.0]))
        tensor(0.8950)
    """

    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                 beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    r"""Huber loss, :math:`\tfrac12 d^2` for :math:`|d| < \delta`, else
    :math:`\delta(|d| - \tfrac12\delta)` (see :func:`~wally.nn.functional.huber_loss`).

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``.  - Output: a scalar, or ``(*)`` with ``'none'``.

    Example::

        >>> nn.HuberLoss(delta=0.5)(wally.tensor([0.2, 2.0]), wally.tensor([0.0, 0.0]))
        tensor(0.4475)
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(Module):
    r"""Kullback-Leibler divergence from log-probabilities ``input`` to ``target``
    (see :func:`~wally.nn.functional.kl_div`); use ``reduction='batchmean'`` for the
    divergence per sample (``'mean'`` warns, as in PyTorch).

    Shape:
        - Input: ``(*)`` log-probabilities.  - Target: ``(*)``.
        - Output: a scalar, or ``(*)`` with ``'none'``.

    Example::

        >>> loss = nn.KLDivLoss(reduction="batchmean")
        >>> loss(F.log_softmax(wally.randn(3, 5), dim=1), F.softmax(wally.randn(3, 5), dim=1))
    """

    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                 log_target: bool = False) -> None:
        super().__init__()
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction(size_average, reduce)
        if reduction not in ("none", "mean", "sum", "batchmean"):
            raise ValueError(f"KLDivLoss: reduction must be 'none', 'batchmean', 'mean' or "
                             f"'sum', got {reduction!r}")
        self.reduction = reduction
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class PoissonNLLLoss(_Loss):
    r"""Poisson negative log-likelihood (see :func:`~wally.nn.functional.poisson_nll_loss`).

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``.  - Output: a scalar, or ``(*)`` with ``'none'``.

    Example::

        >>> nn.PoissonNLLLoss()(wally.tensor([0.0, 1.0]), wally.tensor([1.0, 2.0]))
        tensor(0.8591)
    """

    def __init__(self, log_input: bool = True, full: bool = False, size_average: Any = None,
                 eps: float = 1e-8, reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input: Tensor, target: Tensor) -> Tensor:
        return F.poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full,
                                  eps=self.eps, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    r"""Gaussian negative log-likelihood of ``target`` given a mean ``input`` and a variance
    ``var`` (see :func:`~wally.nn.functional.gaussian_nll_loss` for ``var``'s shapes).

    Shape:
        - Input: ``(N, *)``.  - Target: ``(N, *)``.  - Var: ``(N, *)``, ``(N, *)`` with one
          axis of size 1, or without the last axis.
        - Output: a scalar, or ``(N, *)`` with ``'none'``.

    Example::

        >>> loss = nn.GaussianNLLLoss()
        >>> loss(wally.randn(5, 2), wally.randn(5, 2), wally.ones(5, 1))
    """

    def __init__(self, *, full: bool = False, eps: float = 1e-6,
                 reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.full = full
        self.eps = eps

    def forward(self, input: Tensor, target: Tensor, var: Tensor | float) -> Tensor:
        return F.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps,
                                   reduction=self.reduction)


class MarginRankingLoss(_Loss):
    r""":math:`\max(0, -y (x_1 - x_2) + \text{margin})` for labels :math:`y = \pm 1`
    (see :func:`~wally.nn.functional.margin_ranking_loss`).

    Shape:
        - Input1, Input2: ``(N)``.  - Target: ``(N)``.
        - Output: a scalar, or ``(N)`` with ``'none'``.

    Example::

        >>> nn.MarginRankingLoss(margin=0.5)(wally.tensor([1.0]), wally.tensor([0.8]),
        ...                                   wally.tensor([1.0]))
        tensor(0.3000)
    """

    def __init__(self, margin: float = 0.0, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return F.margin_ranking_loss(input1, input2, target, margin=self.margin,
                                     reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    r""":math:`x` for :math:`y = 1`, :math:`\max(0, \text{margin} - x)` for :math:`y = -1`
    (see :func:`~wally.nn.functional.hinge_embedding_loss`).

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``.  - Output: a scalar, or ``(*)`` with ``'none'``.

    Example::

        >>> nn.HingeEmbeddingLoss()(wally.tensor([0.3, 0.2]), wally.tensor([1.0, -1.0]))
        tensor(0.5500)
    """

    def __init__(self, margin: float = 1.0, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.hinge_embedding_loss(input, target, margin=self.margin,
                                      reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    r""":math:`1 - \cos(x_1, x_2)` for :math:`y = 1`, :math:`\max(0, \cos(x_1, x_2) -
    \text{margin})` for :math:`y = -1` (see :func:`~wally.nn.functional.cosine_embedding_loss`).

    Shape:
        - Input1, Input2: ``(N, D)`` or ``(D)``.  - Target: ``(N)`` or ``()``.
        - Output: a scalar, or ``(N)`` with ``'none'``.

    Example::

        >>> nn.CosineEmbeddingLoss(margin=0.2)(wally.randn(4, 8), wally.randn(4, 8),
        ...                                    wally.tensor([1.0, -1.0, 1.0, -1.0])).shape
        wally.Size([])
    """

    def __init__(self, margin: float = 0.0, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return F.cosine_embedding_loss(input1, input2, target, margin=self.margin,
                                       reduction=self.reduction)


class TripletMarginLoss(_Loss):
    r""":math:`\max(0, \text{margin} + d(a, p) - d(a, n))` with the p-norm distance
    (see :func:`~wally.nn.functional.triplet_margin_loss`).

    Shape:
        - Anchor, Positive, Negative: ``(N, D)`` or ``(D)``.
        - Output: a scalar, or ``(N)`` with ``'none'``.

    Example::

        >>> loss = nn.TripletMarginLoss(margin=1.0, p=2)
        >>> loss(wally.randn(4, 8), wally.randn(4, 8), wally.randn(4, 8)).shape
        wally.Size([])
    """

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                 swap: bool = False, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: margin must be > 0, got {margin}")
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p,
                                     eps=self.eps, swap=self.swap, reduction=self.reduction)


class SoftMarginLoss(_Loss):
    r""":math:`\log(1 + e^{-y x})` for labels :math:`y = \pm 1`
    (see :func:`~wally.nn.functional.soft_margin_loss`).

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``.  - Output: a scalar, or ``(*)`` with ``'none'``.

    Example::

        >>> nn.SoftMarginLoss()(wally.tensor([0.0, 2.0]), wally.tensor([1.0, -1.0]))
        tensor(1.4100)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    r"""Multi-label one-versus-all logistic loss, averaged over classes, with an optional
    per-class ``weight`` (a buffer, in ``state_dict`` as in PyTorch;
    see :func:`~wally.nn.functional.multilabel_soft_margin_loss`).

    Shape:
        - Input: ``(N, C)`` or ``(C)``.  - Target: the input's shape.
        - Output: a scalar, or ``(N)`` with ``'none'``.

    Example::

        >>> nn.MultiLabelSoftMarginLoss()(wally.zeros(2, 3), wally.ones(2, 3))
        tensor(0.6931)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.multilabel_soft_margin_loss(input, target, weight=self.weight,
                                             reduction=self.reduction)
