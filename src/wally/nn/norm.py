"""Batch normalisation layers: ``BatchNorm1d``, ``BatchNorm2d``, ``BatchNorm3d`` and their lazy
versions, which read ``num_features`` from the first batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wally import functional as F
from wally.creation import empty, ones, tensor, zeros
from wally.device import device as _check_device
from wally.dtypes import int64
from wally.nn import init
from wally.nn.module import LazyModuleMixin, Module
from wally.nn.parameter import Parameter, UninitializedBuffer, UninitializedParameter
from wally.tensor import Tensor

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
]


def register_affine(module: Module, shape: tuple[int, ...], affine: bool, bias: bool,
                    dtype: Any) -> None:
    """The learnable γ (``weight``) and β (``bias``) of a normalisation layer, of ``shape``,
    when ``affine`` (β only with ``bias``); otherwise both registered as None, as in PyTorch."""
    if affine:
        module.weight = Parameter(empty(*shape, dtype=dtype))
        if bias:
            module.bias = Parameter(empty(*shape, dtype=dtype))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def reset_affine(module: Module) -> None:
    """γ = 1 and β = 0: the layer starts as pure standardisation."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _BatchNorm(Module):
    """What the three BatchNorm layers share; they differ only in the input ranks accepted."""

    # Accepted input ranks, and the layout named in errors.
    _ranks: tuple[int, ...] = ()
    _layout = ""

    num_features: int
    weight: Parameter | None
    bias: Parameter | None
    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device: Any = None,
                 dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__()
        if device is not None:
            _check_device(device)
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 0:
            raise ValueError(
                f"{type(self).__name__}: num_features must be a non-negative integer, "
                f"got {num_features!r}"
            )
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        register_affine(self, (num_features,), affine, bias, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None
            assert self.num_batches_tracked is not None
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        reset_affine(self)

    def _check_input(self, input: Tensor) -> None:
        if input.ndim not in self._ranks:
            ranks = " or ".join(f"{r}-D" for r in self._ranks)
            raise ValueError(
                f"{self!r}: expected a {ranks} input {self._layout}, got shape "
                f"{tuple(input.shape)}"
            )
        if input.shape[1] != self.num_features:
            raise ValueError(
                f"{self!r}: expected {self.num_features} channels on axis 1, got shape "
                f"{tuple(input.shape)}"
            )
        if input.dtype.kind != "f":
            raise TypeError(
                f"{self!r}: expected a float32 input, got {input.dtype}; convert the input "
                f"first, e.g. x.float()"
            )

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        # momentum=None means a cumulative average: factor 1/n at the n-th batch (PyTorch).
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.array += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.array)
        # Buffers and parameters are read once: each read goes through Module.__getattr__.
        running_mean, running_var = self.running_mean, self.running_var
        # Batch statistics in training, and in eval when no running statistics are kept.
        use_batch_stats = self.training or (running_mean is None and running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(input, running_mean if track else None,
                            running_var if track else None, self.weight, self.bias,
                            use_batch_stats, factor, self.eps)

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str,
                              missing_keys: list[str], error_msgs: list[str]) -> None:
        super()._load_from_state_dict(state_dict, prefix, missing_keys, error_msgs)
        # Checkpoints from before PyTorch 0.4.1 have no num_batches_tracked; PyTorch loads them
        # keeping the current count, and so do we.
        key = prefix + "num_batches_tracked"
        if key in missing_keys:
            missing_keys.remove(key)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    r"""Batch normalisation of the features of vectors ``(N, C)`` or sequences ``(N, C, L)``:

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    per feature ``C``, over the batch (and length) axes. In training the batch's mean and biased
    variance are used and the running ones updated,
    :math:`r \leftarrow (1 - \text{momentum})\,r + \text{momentum}\cdot s` (the variance from
    the unbiased estimate; ``momentum=None`` gives a cumulative average); after ``eval()`` the
    running statistics are used. :math:`\gamma` (``weight``) starts at 1, :math:`\beta`
    (``bias``) at 0. Buffers ``running_mean``, ``running_var`` and ``num_batches_tracked``
    (int64) exist when ``track_running_stats``, as in PyTorch's ``state_dict``.

    Shape:
        - Input: ``(N, C)`` or ``(N, C, L)``.  - Output: the same shape.

    Example::

        >>> bn = nn.BatchNorm1d(100)
        >>> bn(wally.randn(20, 100)).shape
        wally.Size([20, 100])
    """

    _ranks = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    r"""Batch normalisation of the channels of images ``(N, C, H, W)``:

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    per channel, over the batch and both spatial axes. Training, evaluation, parameters and
    buffers as in :class:`BatchNorm1d`.

    Shape:
        - Input: ``(N, C, H, W)``.  - Output: the same shape.

    Example::

        >>> bn = nn.BatchNorm2d(16)
        >>> bn(wally.randn(8, 16, 28, 28)).shape
        wally.Size([8, 16, 28, 28])
    """

    _ranks = (4,)
    _layout = "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    r"""Batch normalisation of the channels of volumes ``(N, C, D, H, W)``:

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    per channel, over the batch and the three spatial axes. Training, evaluation, parameters
    and buffers as in :class:`BatchNorm1d`.

    Shape:
        - Input: ``(N, C, D, H, W)``.  - Output: the same shape.

    Example::

        >>> bn = nn.BatchNorm3d(4)
        >>> bn(wally.randn(2, 4, 3, 8, 8)).shape
        wally.Size([2, 4, 3, 8, 8])
    """

    _ranks = (5,)
    _layout = "(N, C, D, H, W)"


class _LazyBatchNorm(LazyModuleMixin, _BatchNorm):
    """A BatchNorm whose ``num_features`` is read from the first input's axis 1."""

    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                 bias: bool = True) -> None:
        # affine and track_running_stats off: no tensors to create that would be replaced.
        super().__init__(0, eps, momentum, False, False, device, dtype, bias=False)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = UninitializedParameter(dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(dtype=dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(dtype=dtype)
            self.running_var = UninitializedBuffer(dtype=dtype)
            self.num_batches_tracked = tensor(0, dtype=int64)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor, *args: Any, **kwargs: Any) -> None:
        if not self.has_uninitialized_params():
            return
        if input.ndim not in self._ranks:
            self.num_features = 0
            self._check_input(input)  # raises, naming the layer and the ranks it accepts
        self.num_features = int(input.shape[1])
        for value in (self.weight, self.bias, self.running_mean, self.running_var):
            if isinstance(value, (UninitializedParameter, UninitializedBuffer)):
                value.materialize((self.num_features,))
        self.reset_parameters()

    def _lazy_sizes_from_parameters(self) -> None:
        for value in (self.weight, self.bias, self.running_mean, self.running_var):
            if value is not None:
                self.num_features = int(value.shape[0])
                return


class LazyBatchNorm1d(_LazyBatchNorm, BatchNorm1d):
    """:class:`BatchNorm1d` with ``num_features`` inferred from the first input's axis 1.

    Shape:
        - Input: ``(N, C)`` or ``(N, C, L)``.  - Output: the same shape.

    Example::

        >>> bn = nn.LazyBatchNorm1d()
        >>> bn(wally.randn(20, 100)).shape, bn.num_features
        ((20, 100), 100)
    """

    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyBatchNorm, BatchNorm2d):
    """:class:`BatchNorm2d` with ``num_features`` inferred from the first input's channels;
    d2l's CNN chapters use it after ``LazyConv2d``.

    Shape:
        - Input: ``(N, C, H, W)``.  - Output: the same shape.

    Example::

        >>> bn = nn.LazyBatchNorm2d()
        >>> bn(wally.randn(8, 16, 28, 28)).shape, bn
        ((8, 16, 28, 28), BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, \
track_running_stats=True))
    """

    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyBatchNorm, BatchNorm3d):
    """:class:`BatchNorm3d` with ``num_features`` inferred from the first input's channels.

    Shape:
        - Input: ``(N, C, D, H, W)``.  - Output: the same shape.

    Example::

        >>> bn = nn.LazyBatchNorm3d()
        >>> bn(wally.randn(2, 4, 3, 8, 8)).shape
        wally.Size([2, 4, 3, 8, 8])
    """

    cls_to_become = BatchNorm3d

