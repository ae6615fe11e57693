"""Loss layers: ``CrossEntropyLoss``, ``NLLLoss``, ``MSELoss``, ``L1Loss``, ``BCELoss`` and
``BCEWithLogitsLoss``, each calling :mod:`wally.nn.functional` in one line.

``reduction`` is ``'mean'`` (default), ``'sum'`` or ``'none'`` (one loss per element or
sample, as d2l's ``reduction='none'`` training loops expect). PyTorch's deprecated
``size_average`` / ``reduce`` arguments are accepted and translated, so positional calls line up.
"""

from __future__ import annotations

from typing import Any

from wally import functional as F
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = [
    "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss",
]

_REDUCTIONS = ("none", "mean", "sum")


def _legacy_reduction(size_average: Any, reduce: Any) -> str:
    """PyTorch's translation of the deprecated (size_average, reduce) pair."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


class _Loss(Module):
    def __init__(self, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean") -> None:
        super().__init__()
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction(size_average, reduce)
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: reduction must be 'none', 'mean' or 'sum', "
                f"got {reduction!r}"
            )
        self.reduction = reduction


class _WeightedLoss(_Loss):
    weight: Tensor | None

    def __init__(self, weight: Tensor | None = None, size_average: Any = None,
                 reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        if weight is not None and not isinstance(weight, Tensor):
            raise TypeError(
                f"{type(self).__name__}: weight must be a wally Tensor or None, "
                f"got {type(weight).__name__}"
            )
        # A buffer, as in PyTorch: it follows .double() and appears in state_dict.
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    r"""Cross-entropy between logits and class labels (log-softmax and NLL in one stable op).

    For logits :math:`x_n \in \mathbb{R}^C` and label :math:`y_n`,

    .. math::
        \ell_n = -w_{y_n} \log \frac{\exp(x_{n, y_n})}{\sum_c \exp(x_{n, c})}

    averaged over the batch with the weights :math:`w_{y_n}` (``reduction='mean'``), summed, or
    returned per sample. Targets equal to ``ignore_index`` contribute nothing. Targets may also
    be class probabilities of the input's shape. ``label_smoothing`` ε mixes the target with
    the uniform distribution: :math:`(1-ε)\,\text{onehot} + ε/C`.

    Shape:
        - Input: ``(N, C)``, ``(C,)`` or ``(N, C, d_1, ...)`` logits.
        - Target: ``(N,)`` int64 labels in ``[0, C)`` (or probabilities shaped as the input).
        - Output: a scalar, or ``(N,)`` / ``(N, d_1, ...)`` with ``reduction='none'``.

    Example::

        >>> loss = nn.CrossEntropyLoss()
        >>> loss(wally.randn(3, 5, requires_grad=True), wally.tensor([1, 0, 4])).shape
        wally.Size([])
    """

    def __init__(self, weight: Tensor | None = None, size_average: Any = None,
                 ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}"
            )
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    r"""Negative log-likelihood of class labels given log-probabilities:
    :math:`\ell_n = -w_{y_n}\, x_{n, y_n}`, reduced as in :class:`CrossEntropyLoss`.

    Pair it with ``nn.LogSoftmax(dim=1)``; ``CrossEntropyLoss`` does both at once.

    Shape:
        - Input: ``(N, C)``, ``(C,)`` or ``(N, C, d_1, ...)`` log-probabilities.
        - Target: ``(N,)`` (or ``(N, d_1, ...)``) int64 labels.
        - Output: a scalar, or the target's shape with ``reduction='none'``.

    Example::

        >>> logp = nn.LogSoftmax(dim=1)(wally.randn(3, 5))
        >>> nn.NLLLoss()(logp, wally.tensor([1, 0, 4])).shape
        wally.Size([])
    """

    def __init__(self, weight: Tensor | None = None, size_average: Any = None,
                 ignore_index: int = -100, reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    r"""Mean squared error, elementwise :math:`\ell_i = (x_i - y_i)^2`, averaged (default),
    summed or returned as is.

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``, the same shape.
        - Output: a scalar, or ``(*)`` with ``reduction='none'``.

    Example::

        >>> nn.MSELoss()(wally.tensor([1.0, 2.0]), wally.tensor([1.0, 4.0]))
        tensor(2.)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    r"""Mean absolute error, elementwise :math:`\ell_i = |x_i - y_i|`, averaged (default),
    summed or returned as is.

    Shape:
        - Input: ``(*)``.  - Target: ``(*)``, the same shape.
        - Output: a scalar, or ``(*)`` with ``reduction='none'``.

    Example::

        >>> nn.L1Loss()(wally.tensor([1.0, 2.0]), wally.tensor([1.0, 4.0]))
        tensor(1.)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class BCELoss(_WeightedLoss):
    r"""Binary cross-entropy between probabilities :math:`x_i \in (0, 1)` and targets:

    .. math::
        \ell_i = -w_i \bigl[y_i \log x_i + (1 - y_i) \log(1 - x_i)\bigr]

    with the logarithms clamped at −100 as in PyTorch. Prefer :class:`BCEWithLogitsLoss` on
    logits: it is stable where the sigmoid saturates.

    Shape:
        - Input: ``(*)`` probabilities.  - Target: ``(*)``, the same shape.
        - Output: a scalar, or ``(*)`` with ``reduction='none'``.

    Example::

        >>> nn.BCELoss()(wally.tensor([0.5, 0.5]), wally.tensor([0.0, 1.0]))
        tensor(0.6931)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    r"""Binary cross-entropy on logits, with the sigmoid folded in for stability:

    .. math::
        \ell_i = -w_i \bigl[p\, y_i \log \sigma(x_i) + (1 - y_i) \log(1 - \sigma(x_i))\bigr]

    with ``weight`` :math:`w` broadcast over the batch and ``pos_weight`` :math:`p` per class
    (trade recall for precision). Reduced as the other losses.

    Shape:
        - Input: ``(*)`` logits.  - Target: ``(*)``, the same shape, values in [0, 1].
        - Output: a scalar, or ``(*)`` with ``reduction='none'``.

    Example::

        >>> loss = nn.BCEWithLogitsLoss()
        >>> loss(wally.zeros(4), wally.tensor([0.0, 1.0, 1.0, 0.0]))
        tensor(0.6931)
    """

    weight: Tensor | None
    pos_weight: Tensor | None

    def __init__(self, weight: Tensor | None = None, size_average: Any = None,
                 reduce: Any = None, reduction: str = "mean",
                 pos_weight: Tensor | None = None) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)
