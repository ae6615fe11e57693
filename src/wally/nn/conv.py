"""Convolution layers: ``Conv1d``, ``Conv2d``, ``Conv3d`` and their lazy versions.

Each layer holds ``weight (C_out, C_in/groups, *kernel_size)`` and ``bias (C_out,)``, checks
its arguments when built and its input when called, and computes in one line with
:func:`wally.nn.functional.conv2d` (and friends).  The note's ``Conv2D`` block, with its
``weight`` and ``bias`` and a ``forward`` that calls ``corr2d``, is this class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wally import functional as F
from wally._windows import check_rank, check_settings, conv_settings
from wally.creation import empty
from wally.device import device as _check_device
from wally.functional.conv import check_groups
from wally.nn import init
from wally.nn.linear import _dtype_message
from wally.nn.module import LazyModuleMixin, Module
from wally.nn.parameter import Parameter, UninitializedParameter
from wally.tensor import Tensor

__all__ = ["Conv1d", "Conv2d", "Conv3d", "LazyConv1d", "LazyConv2d", "LazyConv3d"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_FUNCTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def check_channels(name: str, in_channels: Any, out_channels: Any, groups: Any) -> None:
    """A convolution layer's (plain or transposed) channel counts: non-negative integers, both
    divisible by a positive integer ``groups``; ``ValueError`` naming the layer otherwise."""
    for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}: {arg} must be a non-negative integer, got {value!r}")
    check_groups(name, groups)
    if in_channels % groups:
        raise ValueError(
            f"{name}: in_channels ({in_channels}) must be divisible by groups ({groups})"
        )
    if out_channels % groups:
        raise ValueError(
            f"{name}: out_channels ({out_channels}) must be divisible by groups ({groups})"
        )


def window_settings(name: str, nd: int, kernel_size: Any, stride: Any,
                    dilation: Any) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``kernel_size``, ``stride`` and ``dilation`` as positive ``nd``-tuples
    (:func:`wally._windows.check_settings`, the functions' check)."""
    kernel, strides, dilations = check_settings(
        name, nd, kernel_size=kernel_size, stride=stride, dilation=dilation
    )
    return kernel, strides, dilations


class _ConvNd(Module):
    """What Conv1d, Conv2d and Conv3d share; ``_nd`` is the number of spatial axes."""

    _nd = 2
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: str | tuple[int, ...]
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
        padding: str | int | tuple[int, ...] = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if device is not None:
            _check_device(device)
        name, nd = type(self).__name__, self._nd
        check_channels(name, in_channels, out_channels, groups)
        (self.kernel_size,) = check_settings(name, nd, kernel_size=kernel_size)
        self.stride, pairs, self.dilation = conv_settings(
            name, nd, self.kernel_size, stride, padding, dilation
        )
        # PyTorch stores the padding as a tuple (or the string), as forward passes it on.
        self.padding = padding if isinstance(padding, str) else tuple(lo for lo, _ in pairs)
        if padding_mode not in PADDING_MODES:
            valid = ", ".join(repr(m) for m in PADDING_MODES)
            raise ValueError(f"{name}: padding_mode must be one of {valid}, got {padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.groups = groups
        self.padding_mode = padding_mode
        self.output_padding = (0,) * nd
        self.transposed = False
        # What forward passes on, checked once here (the functional form then finds it
        # checked): the settings as stored, or, when F.pad pads first, no padding.
        conv_settings(name, nd, self.kernel_size, self.stride,
                      self.padding if padding_mode == "zeros" else 0, self.dilation)
        # F.pad's argument for padding modes other than zeros: (left, right) pairs, last axis
        # first, as PyTorch stores it.
        self._reversed_padding_repeated_twice = [v for pair in reversed(pairs) for v in pair]
        self.weight = Parameter(
            empty(self._weight_shape(in_channels), dtype=dtype)
        )
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _weight_shape(self, in_channels: int) -> tuple[int, ...]:
        """(out_channels, in_channels/groups, *kernel_size), PyTorch's OIHW layout."""
        return (self.out_channels, in_channels // self.groups, *self.kernel_size)

    def reset_parameters(self) -> None:
        # PyTorch's default, U(±1/√fan_in) with fan_in = C_in/groups · ∏kernel_size.
        init._reset_weight_and_bias(self.weight, self.bias)

    def _check_input(self, input: Tensor, weight: Tensor | None = None) -> None:
        nd = self._nd
        check_rank(self, nd, input)
        channels = input.shape[-nd - 1]
        if channels != self.in_channels:
            raise ValueError(
                f"{self!r}: expected input with {self.in_channels} channels, got {channels} "
                f"(input shape {tuple(input.shape)})"
            )
        dtype = (self.weight if weight is None else weight).dtype
        if input.dtype != dtype:
            raise TypeError(_dtype_message(self, dtype, input.dtype))

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        conv = _FUNCTIONS[self._nd]
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input: Tensor) -> Tensor:
        # Parameters are read once: each read goes through Module.__getattr__ (~0.7 µs).
        weight, bias = self.weight, self.bias
        self._check_input(input, weight)
        try:
            return self._conv_forward(input, weight, bias)
        except MemoryError as error:  # refused up front by the op: name the layer too
            raise MemoryError(f"{self!r}: {error}") from None

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        nd = self._nd
        if self.padding != (0,) * nd:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class Conv1d(_ConvNd):
    """1-D convolution layer over sequences (audio, text, time series), PyTorch's
    ``nn.Conv1d``: ``y = F.conv1d(x, weight, bias, ...)``.

    ``[H]i,d = [b]d + Σa Σc [V]a,c,d [X]s·i+r·a−p,c``.  Arguments as in :class:`Conv2d`.

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)`` → output ``(N, C_out, L_out)`` with
        ``L_out = floor((L + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> conv = nn.Conv1d(4, 16, kernel_size=5, padding="same")
        >>> conv(wally.randn(8, 4, 100)).shape
        wally.Size([8, 16, 100])
    """

    _nd = 1


class Conv2d(_ConvNd):
    """2-D convolution layer, PyTorch's ``nn.Conv2d``: the note's ``Conv2D`` block.

    Computes ``[H]i,j,d = [b]d + Σa Σb Σc [V]a,b,c,d [X]i+a,j+b,c`` (cross-correlation) with
    ``weight`` ``V`` of shape ``(C_out, C_in/groups, k_h, k_w)`` and ``bias`` ``(C_out,)``:
    translation invariance (the same weights at every position) and locality (a ``k_h × k_w``
    window).  Arguments follow PyTorch: ``stride``, ``padding`` (int, pair, ``'valid'`` or
    ``'same'``), ``dilation``, ``groups``, ``bias`` and ``padding_mode`` (``'zeros'``,
    ``'reflect'``, ``'replicate'`` or ``'circular'``: the input is padded with
    :func:`~wally.nn.functional.pad` in that mode before an unpadded convolution).

    Parameters: ``k_h·k_w·(C_in/groups)·C_out + C_out``.

    Shape:
        input ``(N, C_in, H, W)`` or ``(C_in, H, W)`` → output ``(N, C_out, H_out, W_out)``
        with, per axis, ``n_out = floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> conv = nn.Conv2d(1, 6, kernel_size=5, padding=2)    # LeNet's first layer
        >>> conv(wally.randn(256, 1, 28, 28)).shape
        wally.Size([256, 6, 28, 28])
    """

    _nd = 2


class Conv3d(_ConvNd):
    """3-D convolution layer over volumes or video, PyTorch's ``nn.Conv3d``:
    ``[H]i,j,l,d = [b]d + Σa Σb Σe Σc [V]a,b,e,c,d [X]i+a,j+b,l+e,c``.  Arguments as in
    :class:`Conv2d`.

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)`` → output
        ``(N, C_out, D_out, H_out, W_out)`` with, per axis,
        ``n_out = floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> conv = nn.Conv3d(3, 8, kernel_size=3, padding=1)
        >>> conv(wally.randn(2, 3, 8, 32, 32)).shape
        wally.Size([2, 8, 8, 32, 32])
    """

    _nd = 3


class _LazyInChannels(LazyModuleMixin):
    """``in_channels`` read from the first input, for convolutions and transposed ones alike:
    the weight takes the shape the layer's ``_weight_shape(in_channels)`` gives."""

    in_channels: int
    out_channels: int
    groups: int
    kernel_size: tuple[int, ...]
    _nd: int
    weight: UninitializedParameter
    bias: UninitializedParameter | None
    _get_name: Callable[[], str]

    def _lazy_name(self) -> str:
        return f"{self._get_name()}({self.out_channels}, kernel_size={self.kernel_size})"

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()  # type: ignore[misc]

    def initialize_parameters(self, input: Tensor, *args: Any, **kwargs: Any) -> None:
        if not self.has_uninitialized_params():
            return
        nd = self._nd
        check_rank(self._lazy_name(), nd, input)
        channels = int(input.shape[-nd - 1])
        if channels == 0:
            raise ValueError(
                f"{self._lazy_name()}: can't infer in_channels from an input with 0 channels "
                f"(input shape {tuple(input.shape)}); expected at least one channel"
            )
        if channels % self.groups:
            raise ValueError(
                f"{self._lazy_name()}: input channels ({channels}, input shape "
                f"{tuple(input.shape)}) must be divisible by groups ({self.groups})"
            )
        self.in_channels = channels
        self.weight.materialize(self._weight_shape(channels))  # type: ignore[attr-defined]
        if self.bias is not None:
            self.bias.materialize((self.out_channels,))
        self.reset_parameters()


class _LazyConvNd(_LazyInChannels, _ConvNd):
    """A convolution whose ``in_channels`` is read from the first input (d2l's layers)."""

    weight: UninitializedParameter
    bias: UninitializedParameter

    def __init__(
        self,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: str | int | tuple[int, ...] = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            0,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            False,
            padding_mode,
            device,
            dtype,
        )
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)

    def _lazy_sizes_from_parameters(self) -> None:
        self.in_channels = int(self.weight.shape[1]) * self.groups


class LazyConv1d(_LazyConvNd, Conv1d):
    """A :class:`Conv1d` whose ``in_channels`` is inferred from the first input; it then
    becomes a plain ``Conv1d``.

    Example::

        >>> conv = nn.LazyConv1d(16, kernel_size=3)
        >>> conv(wally.randn(8, 4, 100)).shape, conv.in_channels
        ((8, 16, 98), 4)
    """

    cls_to_become = Conv1d
    _nd = 1


class LazyConv2d(_LazyConvNd, Conv2d):
    """A :class:`Conv2d` whose ``in_channels`` is inferred from the first input; it then
    becomes a plain ``Conv2d`` (the note names ``nn.LazyConv2d`` as the production version of
    its ``Conv2D`` block).

    Example::

        >>> conv = nn.LazyConv2d(6, kernel_size=5, padding=2)
        >>> conv(wally.randn(256, 1, 28, 28)).shape, conv
        ((256, 6, 28, 28), Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2)))
    """

    cls_to_become = Conv2d
    _nd = 2


class LazyConv3d(_LazyConvNd, Conv3d):
    """A :class:`Conv3d` whose ``in_channels`` is inferred from the first input; it then
    becomes a plain ``Conv3d``.

    Example::

        >>> conv = nn.LazyConv3d(8, kernel_size=3)
        >>> conv(wally.randn(2, 3, 8, 16, 16)).shape
        wally.Size([2, 8, 6, 14, 14])
    """

    cls_to_become = Conv3d
    _nd = 3
