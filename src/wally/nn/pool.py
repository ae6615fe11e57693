"""Pooling layers: max, average and adaptive pooling in 1, 2 and 3 dimensions.

Pooling layers hold no parameters; each one checks its arguments when built and calls the
functional form in :mod:`wally.nn.functional` in one line.  Arguments are stored as given
(``MaxPool2d(2).kernel_size == 2``), as PyTorch stores them.
"""

from __future__ import annotations

from typing import Any

from wally import functional as F
from wally._windows import adaptive_settings, check_rank, ntuple, pool_settings, unpool_settings
from wally.functional.pool import check_divisor_override
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = [
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
]

IntOrTuple = int | tuple[int, ...]


class _PoolNd(Module):
    _nd = 2

    def _check_input(self, input: Tensor) -> None:
        check_rank(self, self._nd, input)


class _MaxPoolNd(_PoolNd):
    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        dilation: IntOrTuple = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode
        # What forward passes, checked once (the functional form then finds it checked).
        pool_settings(type(self).__name__, self._nd, self.kernel_size, self.stride, padding,
                      dilation)

    def forward(self, input: Tensor) -> Any:
        self._check_input(input)
        pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[self._nd - 1]
        return pool(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling, PyTorch's ``nn.MaxPool1d``: the largest value of each window of each
    channel (see :func:`~wally.nn.functional.max_pool1d`).

    Shape:
        input ``(N, C, L)`` or ``(C, L)`` → output ``(N, C, L_out)``,
        ``L_out = floor((L + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> nn.MaxPool1d(2)(wally.randn(8, 16, 100)).shape
        wally.Size([8, 16, 50])
    """

    _nd = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling, PyTorch's ``nn.MaxPool2d`` (the note's ``pool2d(X, pool_size, 'max')``,
    with stride, padding, dilation, ``ceil_mode`` and ``return_indices``; see
    :func:`~wally.nn.functional.max_pool2d`).  No parameters; the channels are unchanged.
    ``stride`` defaults to ``kernel_size``.

    Shape:
        input ``(N, C, H, W)`` or ``(C, H, W)`` → output ``(N, C, H_out, W_out)`` with, per
        axis, ``n_out = floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> pool = nn.MaxPool2d(kernel_size=2, stride=2)        # LeNet's pooling
        >>> pool(wally.randn(256, 6, 28, 28)).shape
        wally.Size([256, 6, 14, 14])
    """

    _nd = 2


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling, PyTorch's ``nn.MaxPool3d`` (see :func:`~wally.nn.functional.max_pool3d`).

    Shape:
        input ``(N, C, D, H, W)`` or ``(C, D, H, W)`` → output ``(N, C, D_out, H_out, W_out)``
        with, per axis, ``n_out = floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> nn.MaxPool3d(2)(wally.randn(2, 3, 8, 8, 8)).shape
        wally.Size([2, 3, 4, 4, 4])
    """

    _nd = 3


class _AvgPoolNd(_PoolNd):
    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        stride = stride if stride is not None else kernel_size
        # What forward passes, checked once (the functional form then finds it checked).
        pool_settings(name, self._nd, kernel_size, stride, padding)
        check_divisor_override(name, divisor_override)
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        if self._nd == 1:
            return F.avg_pool1d(
                input,
                self.kernel_size,
                self.stride,
                self.padding,
                self.ceil_mode,
                self.count_include_pad,
            )
        pool = F.avg_pool2d if self._nd == 2 else F.avg_pool3d
        return pool(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling, PyTorch's ``nn.AvgPool1d`` (see
    :func:`~wally.nn.functional.avg_pool1d`; like PyTorch it has no ``divisor_override`` and
    stores its sizes as 1-tuples).

    Shape:
        input ``(N, C, L)`` or ``(C, L)`` → output ``(N, C, L_out)``,
        ``L_out = floor((L + 2p − k)/s) + 1``.

    Example::

        >>> nn.AvgPool1d(2)(wally.randn(8, 16, 100)).shape
        wally.Size([8, 16, 50])
    """

    _nd = 1

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        # PyTorch stores 1-tuples; they are what the shared check sees (and forward passes).
        kernel_size = ntuple(kernel_size, 1, "kernel_size", "AvgPool1d")
        stride = None if stride is None else ntuple(stride, 1, "stride", "AvgPool1d")
        padding = ntuple(padding, 1, "padding", "AvgPool1d")
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling, PyTorch's ``nn.AvgPool2d`` (the note's ``pool2d(X, pool_size,
    'avg')``, with stride, padding, ``ceil_mode``, ``count_include_pad`` and
    ``divisor_override``; see :func:`~wally.nn.functional.avg_pool2d`).

    Shape:
        input ``(N, C, H, W)`` or ``(C, H, W)`` → output ``(N, C, H_out, W_out)`` with, per
        axis, ``n_out = floor((n + 2p − k)/s) + 1``.

    Example::

        >>> nn.AvgPool2d(2)(wally.randn(256, 6, 28, 28)).shape
        wally.Size([256, 6, 14, 14])
    """

    _nd = 2


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling, PyTorch's ``nn.AvgPool3d`` (see
    :func:`~wally.nn.functional.avg_pool3d`).

    Shape:
        input ``(N, C, D, H, W)`` or ``(C, D, H, W)`` → output ``(N, C, D_out, H_out, W_out)``
        with, per axis, ``n_out = floor((n + 2p − k)/s) + 1``.

    Example::

        >>> nn.AvgPool3d(2)(wally.randn(2, 3, 8, 8, 8)).shape
        wally.Size([2, 3, 4, 4, 4])
    """

    _nd = 3


class _AdaptivePoolNd(_PoolNd):
    def __init__(self, output_size: Any) -> None:
        super().__init__()
        # What forward passes, checked once (the functional form then finds it checked).
        adaptive_settings(type(self).__name__, self._nd, output_size)
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class _AdaptiveAvgPoolNd(_AdaptivePoolNd):
    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        pool = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[self._nd - 1]
        return pool(input, self.output_size)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-D adaptive average pooling, PyTorch's ``nn.AdaptiveAvgPool1d``: the output length is
    fixed and the windows follow (see :func:`~wally.nn.functional.adaptive_avg_pool1d`).

    Shape:
        input ``(N, C, L)`` or ``(C, L)`` → output ``(N, C, output_size)``.

    Example::

        >>> nn.AdaptiveAvgPool1d(5)(wally.randn(8, 16, 100)).shape
        wally.Size([8, 16, 5])
    """

    _nd = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """2-D adaptive average pooling, PyTorch's ``nn.AdaptiveAvgPool2d``; ``(1, 1)`` is the global
    average pooling of NiN and ResNet heads (see :func:`~wally.nn.functional.adaptive_avg_pool2d`).

    Shape:
        input ``(N, C, H, W)`` or ``(C, H, W)`` → output ``(N, C, *output_size)``.

    Example::

        >>> nn.AdaptiveAvgPool2d((1, 1))(wally.randn(8, 512, 7, 7)).shape
        wally.Size([8, 512, 1, 1])
    """

    _nd = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """3-D adaptive average pooling, PyTorch's ``nn.AdaptiveAvgPool3d`` (see
    :func:`~wally.nn.functional.adaptive_avg_pool3d`).

    Shape:
        input ``(N, C, D, H, W)`` or ``(C, D, H, W)`` → output ``(N, C, *output_size)``.

    Example::

        >>> nn.AdaptiveAvgPool3d(1)(wally.randn(2, 3, 4, 5, 6)).shape
        wally.Size([2, 3, 1, 1, 1])
    """

    _nd = 3


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Any:
        self._check_input(input)
        pool = (F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d)[self._nd - 1]
        return pool(input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """1-D adaptive max pooling, PyTorch's ``nn.AdaptiveMaxPool1d`` (see
    :func:`~wally.nn.functional.adaptive_max_pool1d`).

    Shape:
        input ``(N, C, L)`` or ``(C, L)`` → output ``(N, C, output_size)``.

    Example::

        >>> nn.AdaptiveMaxPool1d(5)(wally.randn(8, 16, 100)).shape
        wally.Size([8, 16, 5])
    """

    _nd = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """2-D adaptive max pooling, PyTorch's ``nn.AdaptiveMaxPool2d`` (see
    :func:`~wally.nn.functional.adaptive_max_pool2d`).

    Shape:
        input ``(N, C, H, W)`` or ``(C, H, W)`` → output ``(N, C, *output_size)``.

    Example::

        >>> nn.AdaptiveMaxPool2d((6, 6))(wally.randn(8, 64, 13, 13)).shape
        wally.Size([8, 64, 6, 6])
    """

    _nd = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """3-D adaptive max pooling, PyTorch's ``nn.AdaptiveMaxPool3d`` (see
    :func:`~wally.nn.functional.adaptive_max_pool3d`).

    Shape:
        input ``(N, C, D, H, W)`` or ``(C, D, H, W)`` → output ``(N, C, *output_size)``.

    Example::

        >>> nn.AdaptiveMaxPool3d(2)(wally.randn(2, 3, 4, 5, 6)).shape
        wally.Size([2, 3, 2, 2, 2])
    """

    _nd = 3


# ----- layersA: max unpooling ------------------------------------------------------------------
class _MaxUnpoolNd(_PoolNd):
    def __init__(
        self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = unpool_settings(
            type(self).__name__, self._nd, kernel_size, stride, padding
        )

    def forward(
        self, input: Tensor, indices: Tensor, output_size: Any = None
    ) -> Tensor:
        self._check_input(input)
        unpool = (F.max_unpool1d, F.max_unpool2d, F.max_unpool3d)[self._nd - 1]
        return unpool(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool1d`, PyTorch's ``nn.MaxUnpool1d``:
    ``forward(input, indices, output_size=None)``; see :func:`wally.nn.functional.max_unpool1d`.

    Shape:
        ``(N, C, L)`` → ``(N, C, (L − 1)·s − 2p + k)`` (or ``output_size``).

    Example::

        >>> pool, unpool = nn.MaxPool1d(2, return_indices=True), nn.MaxUnpool1d(2)
        >>> unpool(*pool(wally.randn(1, 1, 6))).shape
        wally.Size([1, 1, 6])
    """

    _nd = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool2d`, PyTorch's ``nn.MaxUnpool2d`` (SegNet's
    decoder): ``forward(input, indices, output_size=None)``; see
    :func:`wally.nn.functional.max_unpool2d`.

    Shape:
        ``(N, C, H, W)`` → ``(N, C, H_out, W_out)``, per axis ``(n − 1)·s − 2p + k`` (or
        ``output_size``).

    Example::

        >>> pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
        >>> x = wally.randn(1, 1, 5, 5)
        >>> unpool(*pool(x), output_size=x.size()).shape
        wally.Size([1, 1, 5, 5])
    """

    _nd = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool3d`, PyTorch's ``nn.MaxUnpool3d``; see
    :class:`MaxUnpool2d`.

    Shape:
        ``(N, C, D, H, W)`` → ``(N, C, D_out, H_out, W_out)``.

    Example::

        >>> pool, unpool = nn.MaxPool3d(2, return_indices=True), nn.MaxUnpool3d(2)
        >>> unpool(*pool(wally.randn(1, 1, 4, 4, 4))).shape
        wally.Size([1, 1, 4, 4, 4])
    """

    _nd = 3
