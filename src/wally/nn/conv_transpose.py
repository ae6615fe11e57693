"""Transposed convolution layers: ``ConvTranspose1d/2d/3d`` and their lazy versions.

Each layer holds ``weight (C_in, C_out/groups, *kernel_size)`` (PyTorch's transposed layout)
and ``bias (C_out,)`` and calls :func:`wally.nn.functional.conv_transpose2d` (and friends).
``forward(input, output_size=None)`` takes PyTorch's ``output_size``: the wanted output size,
from which the ``output_padding`` is worked out (it overrides the layer's own).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wally import functional as F
from wally._windows import check_rank, check_settings, transposed_settings
from wally.creation import empty
from wally.device import device as _check_device
from wally.nn import init
from wally.nn.conv import _LazyInChannels, check_channels
from wally.nn.linear import _dtype_message
from wally.nn.module import Module
from wally.nn.parameter import Parameter, UninitializedParameter
from wally.tensor import Tensor

__all__ = [
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
]

_FUNCTIONS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class _ConvTransposeNd(Module):
    """What ConvTranspose1d/2d/3d share; ``_nd`` is the number of spatial axes."""

    _nd = 2
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str
    weight: Parameter
    bias: Parameter | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] = 0,
        output_padding: int | tuple[int, ...] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, ...] = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if device is not None:
            _check_device(device)
        name, nd = type(self).__name__, self._nd
        check_channels(name, in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(
                f"{name}: only padding_mode='zeros' is supported for transposed convolutions, "
                f"got {padding_mode!r}"
            )
        (self.kernel_size,) = check_settings(name, nd, kernel_size=kernel_size)
        self.stride, self.padding, self.output_padding, self.dilation = transposed_settings(
            name, nd, stride, padding, output_padding, dilation
        )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = True
        self.weight = Parameter(
            empty(self._weight_shape(in_channels), dtype=dtype)
        )
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _weight_shape(self, in_channels: int) -> tuple[int, ...]:
        """(in_channels, out_channels/groups, *kernel_size), PyTorch's layout for the
        transposed convolution (the weight of the convolution it is the gradient of)."""
        return (in_channels, self.out_channels // self.groups, *self.kernel_size)

    def reset_parameters(self) -> None:
        # PyTorch's default, as for Conv2d: U(±1/√fan_in), where fan_in is read from the
        # weight's dimension 1, here C_out/groups · ∏kernel_size.
        init._reset_weight_and_bias(self.weight, self.bias)

    def _output_padding(
        self, input: Tensor, output_size: Sequence[int] | None
    ) -> tuple[int, ...]:
        """PyTorch's rule: ``output_size`` (spatial, or with the batch and channel axes) must
        lie between the smallest output size and that plus ``stride − 1``."""
        if output_size is None:
            return self.output_padding
        nd = self._nd
        sizes = [int(n) for n in output_size]
        leading = input.ndim - nd
        if len(sizes) == leading + nd:
            sizes = sizes[leading:]
        if len(sizes) != nd:
            raise ValueError(
                f"{self!r}: output_size must have {nd} or {leading + nd} elements, got "
                f"{tuple(output_size)}"
            )
        spatial = tuple(input.shape[-nd:])
        smallest = [
            (n - 1) * s - 2 * p + d * (k - 1) + 1
            for n, s, p, d, k in zip(
                spatial, self.stride, self.padding, self.dilation, self.kernel_size, strict=True
            )
        ]
        largest = [m + s - 1 for m, s in zip(smallest, self.stride, strict=True)]
        if any(not lo <= n <= hi for n, lo, hi in zip(sizes, smallest, largest, strict=True)):
            raise ValueError(
                f"{self!r}: requested an output size of {tuple(sizes)}, but valid sizes range "
                f"from {tuple(smallest)} to {tuple(largest)} (for an input of {spatial})"
            )
        return tuple(n - m for n, m in zip(sizes, smallest, strict=True))

    def _check_input(self, input: Tensor, weight: Tensor) -> None:
        nd = self._nd
        if not isinstance(input, Tensor):
            raise TypeError(f"{self!r}: expected a Tensor input, got {type(input).__name__}")
        check_rank(self, nd, input)
        channels = input.shape[-nd - 1]
        if channels != self.in_channels:
            raise ValueError(
                f"{self!r}: expected input with {self.in_channels} channels, got {channels} "
                f"(input shape {tuple(input.shape)})"
            )
        if input.dtype != weight.dtype:
            raise TypeError(_dtype_message(self, weight.dtype, input.dtype))

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        weight, bias = self.weight, self.bias
        self._check_input(input, weight)
        extra = self._output_padding(input, output_size)
        try:
            return _FUNCTIONS[self._nd](
                input, weight, bias, self.stride, self.padding, extra, self.groups,
                self.dilation,
            )
        except MemoryError as error:
            raise MemoryError(f"{self!r}: {error}") from None

    def extra_repr(self) -> str:
        nd = self._nd
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * nd:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            text += f", dilation={self.dilation}"
        if self.output_padding != (0,) * nd:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution layer, PyTorch's ``nn.ConvTranspose1d``: upsamples a
    sequence by ``stride``; see :func:`wally.nn.functional.conv_transpose1d`.

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)`` → output ``(N, C_out, L_out)`` with
        ``L_out = (L − 1)·s − 2p + d·(k − 1) + output_padding + 1``.

    Example::

        >>> nn.ConvTranspose1d(4, 2, kernel_size=4, stride=2, padding=1)(wally.randn(1, 4, 8)).shape
        wally.Size([1, 2, 16])
    """

    _nd = 1


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution layer, PyTorch's ``nn.ConvTranspose2d`` (d2l's
    "transposed convolution"): every input pixel adds ``x·W`` into a ``k_h × k_w`` window of
    the output, windows ``stride`` apart; see :func:`wally.nn.functional.conv_transpose2d`.

    ``weight`` is ``(C_in, C_out/groups, k_h, k_w)``.  ``forward(input, output_size)`` picks the
    ``output_padding`` that gives ``output_size`` (e.g. the size of the matching
    ``Conv2d``'s input in an encoder-decoder).

    Shape:
        input ``(N, C_in, H, W)`` or ``(C_in, H, W)`` → output ``(N, C_out, H_out, W_out)`` with,
        per axis, ``n_out = (n − 1)·s − 2p + d·(k − 1) + output_padding + 1``.

    Example::

        >>> up = nn.ConvTranspose2d(16, 8, kernel_size=3, stride=2, padding=1)
        >>> up(wally.randn(1, 16, 7, 7), output_size=(14, 14)).shape
        wally.Size([1, 8, 14, 14])
    """

    _nd = 2


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution layer, PyTorch's ``nn.ConvTranspose3d``; see
    :class:`ConvTranspose2d`.

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)`` → output
        ``(N, C_out, D_out, H_out, W_out)``, per axis as in :class:`ConvTranspose2d`.

    Example::

        >>> nn.ConvTranspose3d(2, 4, kernel_size=2, stride=2)(wally.randn(1, 2, 3, 4, 4)).shape
        wally.Size([1, 4, 6, 8, 8])
    """

    _nd = 3


class _LazyConvTransposeNd(_LazyInChannels, _ConvTransposeNd):
    """A transposed convolution whose ``in_channels`` is read from the first input."""

    weight: UninitializedParameter
    bias: UninitializedParameter

    def __init__(
        self,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] = 0,
        output_padding: int | tuple[int, ...] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, ...] = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            0, out_channels, kernel_size, stride, padding, output_padding, groups, False,
            dilation, padding_mode, device, dtype,
        )
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)

    def _lazy_sizes_from_parameters(self) -> None:
        self.in_channels = int(self.weight.shape[0])


class LazyConvTranspose1d(_LazyConvTransposeNd, ConvTranspose1d):
    """A :class:`ConvTranspose1d` whose ``in_channels`` is inferred from the first input.

    Example::

        >>> nn.LazyConvTranspose1d(2, kernel_size=3)(wally.randn(1, 5, 8)).shape
        wally.Size([1, 2, 10])
    """

    cls_to_become = ConvTranspose1d
    _nd = 1


class LazyConvTranspose2d(_LazyConvTransposeNd, ConvTranspose2d):
    """A :class:`ConvTranspose2d` whose ``in_channels`` is inferred from the first input.

    Example::

        >>> up = nn.LazyConvTranspose2d(8, kernel_size=2, stride=2)
        >>> up(wally.randn(1, 16, 7, 7)).shape, up.in_channels
        ((1, 8, 14, 14), 16)
    """

    cls_to_become = ConvTranspose2d
    _nd = 2


class LazyConvTranspose3d(_LazyConvTransposeNd, ConvTranspose3d):
    """A :class:`ConvTranspose3d` whose ``in_channels`` is inferred from the first input.

    Example::

        >>> nn.LazyConvTranspose3d(4, kernel_size=2, stride=2)(wally.randn(1, 2, 3, 4, 4)).shape
        wally.Size([1, 4, 6, 8, 8])
    """

    cls_to_become = ConvTranspose3d
    _nd = 3
