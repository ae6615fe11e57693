"""Convolution (cross-correlation, as in every deep-learning library) in 1, 2 and 3 dimensions.

One N-d ``Function`` serves ``conv1d``, ``conv2d`` and ``conv3d``: im2col gathers every window
into a ``(C·∏k, N·∏out)`` matrix (see :mod:`wally._windows`), and the convolution is then one
contiguous 2-D GEMM per group.  ``unfold`` and ``fold`` expose im2col and its adjoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wally._windows import (
    Pairs,
    check_positive,
    col2im,
    conv_padding,
    im2col,
    ntuple,
    output_shape,
    output_size,
)
from wally.autograd import Function
from wally.backend import ndarray, xp

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv3d", "unfold", "fold"]

_LAYOUTS = {
    1: "(C, L) or (N, C, L)",
    2: "(C, H, W) or (N, C, H, W)",
    3: "(C, D, H, W) or (N, C, D, H, W)",
}
_KERNELS = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}


class ConvNd(Function):
    """``y = W ⋆ x + b`` over ``len(stride)`` spatial axes, by im2col and one GEMM per group.

    Inputs ``x (N, C, *spatial)`` (or unbatched ``(C, *spatial)``), ``w (O, C/groups, *k)``,
    ``b (O,)`` or ``None``; ``padding`` is one ``(left, right)`` pair per axis.
    """

    def __init__(
        self, stride: tuple[int, ...], padding: Pairs, dilation: tuple[int, ...], groups: int
    ) -> None:
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups

    def forward(self, x: ndarray, w: ndarray, b: ndarray | None) -> ndarray:
        nd = len(self.stride)
        self.unbatched = x.ndim == nd + 1
        if self.unbatched:
            x = x[None]
        self.input_shape = x.shape
        batch = x.shape[0]
        out_channels = w.shape[0]
        kernel = w.shape[2:]
        out = [
            output_size(n, k, s, lo + hi, d)
            for n, k, s, (lo, hi), d in zip(
                x.shape[2:], kernel, self.stride, self.padding, self.dilation, strict=True
            )
        ]
        cols = im2col(x, kernel, self.stride, self.padding, self.dilation)
        w2 = xp.ascontiguousarray(w).reshape(out_channels, -1)
        if self.groups == 1:
            y2 = w2 @ cols
        else:
            y2 = xp.empty((out_channels, cols.shape[1]), dtype=x.dtype)
            for rows_out, rows_in in self._group_rows(w2.shape):
                xp.matmul(w2[rows_out], cols[rows_in], out=y2[rows_out])
        # Keep only what backward will use: the first layer never needs ``w`` (no image grad).
        self.cols = cols if self.needs_input_grad[1] else None
        self.w2 = w2 if self.needs_input_grad[0] else None
        self.weight_shape = w.shape
        # Back to (N, C_out, *out), adding the bias in the same pass.
        y = xp.empty((batch, out_channels, *out), dtype=x.dtype)
        rows = y2.reshape(out_channels, batch, -1).swapaxes(0, 1)
        if b is None:
            y.reshape(rows.shape)[...] = rows
        else:
            xp.add(rows, b[:, None], out=y.reshape(rows.shape))
        return y[0] if self.unbatched else y

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ndarray | None, ndarray | None]:
        if self.unbatched:
            gy = gy[None]
        batch, out_channels = gy.shape[:2]
        gy2 = xp.ascontiguousarray(gy.reshape(batch, out_channels, -1).swapaxes(0, 1))
        gy2 = gy2.reshape(out_channels, -1)
        gx = gw = gb = None
        if self.needs_input_grad[2]:
            gb = gy2.sum(axis=1)
        if self.needs_input_grad[1]:
            cols = self.cols
            assert cols is not None
            # dW = gy2 @ colsᵀ, computed as (cols @ gy2ᵀ)ᵀ: OpenBLAS runs this orientation
            # several times faster when N·∏out is long (LeNet's conv2: 47 ms → 6 ms, measured).
            gw = xp.empty((out_channels, cols.shape[0] // self.groups), dtype=gy.dtype)
            for rows_out, rows_in in self._group_rows(gw.shape):
                gw[rows_out] = (cols[rows_in] @ gy2[rows_out].T).T
            gw = gw.reshape(self.weight_shape)
        if self.needs_input_grad[0]:
            w2 = self.w2
            assert w2 is not None
            if self.groups == 1:
                gcols = xp.ascontiguousarray(w2.T) @ gy2
            else:
                gcols = xp.empty((w2.shape[1] * self.groups, gy2.shape[1]), dtype=gy.dtype)
                for rows_out, rows_in in self._group_rows(w2.shape):
                    w_t = xp.ascontiguousarray(w2[rows_out].T)
                    xp.matmul(w_t, gy2[rows_out], out=gcols[rows_in])
            kernel = self.weight_shape[2:]
            gx = col2im(gcols, self.input_shape, kernel, self.stride, self.padding, self.dilation)
            if self.unbatched:
                gx = gx[0]
        return gx, gw, gb

    def _group_rows(self, w2_shape: tuple[int, ...]) -> list[tuple[slice, slice]]:
        """Per group: its rows of ``W`` (output channels) and of ``cols`` (input channels·taps)."""
        out_per_group = w2_shape[0] // self.groups
        in_per_group = w2_shape[1]
        return [
            (
                slice(g * out_per_group, (g + 1) * out_per_group),
                slice(g * in_per_group, (g + 1) * in_per_group),
            )
            for g in range(self.groups)
        ]


def _check_float(op: str, name: str, t: Any) -> None:
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point {name}, got dtype {t.dtype}")


def _conv(
    op: str,
    nd: int,
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: int | Sequence[int],
    padding: str | int | Sequence[int],
    dilation: int | Sequence[int],
    groups: int,
) -> Tensor:
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"{op}: expected a {nd + 1}-D or {nd + 2}-D input {_LAYOUTS[nd]}, got shape "
            f"{tuple(input.shape)}"
        )
    if weight.ndim != nd + 2:
        raise ValueError(
            f"{op}: expected a {nd + 2}-D weight (out_channels, in_channels/groups, "
            f"{_KERNELS[nd]}), got shape {tuple(weight.shape)}"
        )
    _check_float(op, "input", input)
    _check_float(op, "weight", weight)
    if weight.dtype != input.dtype:
        raise TypeError(
            f"{op}: input dtype {input.dtype} and weight dtype {weight.dtype} should be the same"
        )
    if bias is not None:
        _check_float(op, "bias", bias)
        if bias.dtype != input.dtype:
            raise TypeError(
                f"{op}: input dtype {input.dtype} and bias dtype {bias.dtype} should be the same"
            )
        if tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(
                f"{op}: expected a bias of shape ({weight.shape[0]},), one per output channel, "
                f"got shape {tuple(bias.shape)}"
            )
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
    out_channels = weight.shape[0]
    in_channels = input.shape[-nd - 1]
    if out_channels % groups:
        raise ValueError(
            f"{op}: out_channels ({out_channels}, weight shape {tuple(weight.shape)}) must be "
            f"divisible by groups ({groups})"
        )
    if in_channels % groups:
        raise ValueError(
            f"{op}: in_channels ({in_channels}, input shape {tuple(input.shape)}) must be "
            f"divisible by groups ({groups})"
        )
    if in_channels != weight.shape[1] * groups:
        raise ValueError(
            f"{op}: expected input with {weight.shape[1] * groups} channels (weight shape "
            f"{tuple(weight.shape)}, groups={groups}), got {in_channels} channels (input shape "
            f"{tuple(input.shape)})"
        )
    kernel = tuple(weight.shape[2:])
    strides = ntuple(stride, nd, "stride", op)
    check_positive(strides, "stride", op)
    dilations = ntuple(dilation, nd, "dilation", op)
    check_positive(dilations, "dilation", op)
    pairs = conv_padding(op, padding, kernel, dilations, strides)
    output_shape(op, input.shape[-nd:], kernel, strides, pairs, dilations)
    return ConvNd(strides, pairs, dilations, groups)(input, weight, bias)


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """1-D cross-correlation over sequences (audio, text, time series), PyTorch's ``F.conv1d``.

    ``[H]i,d = Σa Σc [V]a,c,d [X]s·i+r·a−p,c + [b]d`` with ``s`` the stride, ``r`` the
    dilation and ``p`` the left padding: the note's ``[H]i,j,d = Σa Σb Σc [V]a,b,c,d
    [X]i+a,j+b,c`` along one axis.  ``padding`` is an int, ``'valid'`` or ``'same'``; see
    :func:`conv2d` for the other arguments.

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)``, weight ``(C_out, C_in/groups, k)``, bias
        ``(C_out,)`` → output ``(N, C_out, L_out)`` with
        ``L_out = floor((L + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> x = wally.randn(8, 4, 100)           # 8 sequences, 4 channels, length 100
        >>> F.conv1d(x, wally.randn(16, 4, 5), padding="same").shape
        (8, 16, 100)
    """
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation with channels, PyTorch's ``F.conv2d``.

    The note's layer: ``[H]i,j,d = Σa Σb Σc [V]a,b,c,d [X]i+a,j+b,c`` (+ a bias per output
    channel ``d``), where ``c`` runs over input channels and ``(a, b)`` over the kernel.  With
    stride ``s``, dilation ``r`` and padding ``p`` the input index is ``s·i + r·a − p``.  What is
    computed is cross-correlation: the kernel is not flipped, unlike the mathematical
    ``(f*g)(i, j) = Σa Σb f(a, b) g(i − a, j − b)``.

    Arguments follow PyTorch: ``stride``, ``padding`` (an int, a pair, ``'valid'`` for none or
    ``'same'`` to keep the size; ``'same'`` needs stride 1 and pads an even kernel one more on
    the right), ``dilation`` (gaps between kernel taps: the receptive field grows to
    ``r·(k − 1) + 1``) and ``groups`` (channels split into ``groups`` independent convolutions;
    ``groups = C_in`` is a depthwise convolution).

    Cost: ``k_h·k_w·(C_in/groups)·C_out + C_out`` parameters, ``k_h·k_w·(C_in/groups)·C_out``
    multiply-adds per output position.

    Shape:
        input ``(N, C_in, H, W)`` or ``(C_in, H, W)``, weight ``(C_out, C_in/groups, k_h, k_w)``,
        bias ``(C_out,)`` → output ``(N, C_out, H_out, W_out)`` with, per axis,
        ``n_out = floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> x = wally.randn(256, 1, 28, 28)      # a batch of MNIST digits
        >>> w = wally.randn(6, 1, 5, 5)          # LeNet's first layer
        >>> F.conv2d(x, w, padding=2).shape
        (256, 6, 28, 28)
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """3-D cross-correlation over volumes or video, PyTorch's ``F.conv3d``.

    ``[H]i,j,l,d = Σa Σb Σe Σc [V]a,b,e,c,d [X]i+a,j+b,l+e,c + [b]d``: the note's
    ``[H]i,j,d = Σa Σb Σc [V]a,b,c,d [X]i+a,j+b,c`` with one more spatial axis (stride,
    padding and dilation enter as in :func:`conv2d`).

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``, weight
        ``(C_out, C_in/groups, k_d, k_h, k_w)``, bias ``(C_out,)`` → output
        ``(N, C_out, D_out, H_out, W_out)`` with, per axis,
        ``n_out = floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> x = wally.randn(2, 3, 8, 32, 32)     # two 8-frame clips
        >>> F.conv3d(x, wally.randn(4, 3, 3, 3, 3), padding=1).shape
        (2, 4, 8, 32, 32)
    """
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


class Unfold(Function):
    """im2col with PyTorch's layout: ``(N, C, *spatial)`` → ``(N, C·∏k, L)``."""

    def __init__(
        self,
        kernel_size: tuple[int, ...],
        stride: tuple[int, ...],
        padding: Pairs,
        dilation: tuple[int, ...],
    ) -> None:
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation

    def forward(self, x: ndarray) -> ndarray:
        self.unbatched = x.ndim == len(self.kernel_size) + 1
        if self.unbatched:
            x = x[None]
        self.input_shape = x.shape
        cols = im2col(x, self.kernel_size, self.stride, self.padding, self.dilation)
        y = xp.ascontiguousarray(cols.reshape(cols.shape[0], x.shape[0], -1).swapaxes(0, 1))
        return y[0] if self.unbatched else y

    def backward(self, gy: ndarray) -> ndarray:
        if self.unbatched:
            gy = gy[None]
        gcols = xp.ascontiguousarray(gy.swapaxes(0, 1)).reshape(gy.shape[1], -1)
        gx = col2im(
            gcols, self.input_shape, self.kernel_size, self.stride, self.padding, self.dilation
        )
        return gx[0] if self.unbatched else gx


class Fold(Function):
    """col2im with PyTorch's layout: ``(N, C·∏k, L)`` → ``(N, C, *output_size)``; the adjoint
    of :class:`Unfold`."""

    def __init__(
        self,
        output_size: tuple[int, ...],
        kernel_size: tuple[int, ...],
        stride: tuple[int, ...],
        padding: Pairs,
        dilation: tuple[int, ...],
    ) -> None:
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation

    def forward(self, x: ndarray) -> ndarray:
        self.unbatched = x.ndim == 2
        if self.unbatched:
            x = x[None]
        batch, rows = x.shape[:2]
        taps = 1
        for k in self.kernel_size:
            taps *= k
        shape = (batch, rows // taps, *self.output_size)
        cols = xp.ascontiguousarray(x.swapaxes(0, 1)).reshape(rows, -1)
        y = col2im(cols, shape, self.kernel_size, self.stride, self.padding, self.dilation)
        return y[0] if self.unbatched else y

    def backward(self, gy: ndarray) -> ndarray:
        if self.unbatched:
            gy = gy[None]
        cols = im2col(gy, self.kernel_size, self.stride, self.padding, self.dilation)
        gx = xp.ascontiguousarray(cols.reshape(cols.shape[0], gy.shape[0], -1).swapaxes(0, 1))
        return gx[0] if self.unbatched else gx


def _window_args(
    op: str,
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int],
    padding: int | Sequence[int],
    stride: int | Sequence[int],
) -> tuple[tuple[int, ...], tuple[int, ...], Pairs, tuple[int, ...]]:
    kernel = ntuple(kernel_size, 2, "kernel_size", op)
    check_positive(kernel, "kernel_size", op)
    dilations = ntuple(dilation, 2, "dilation", op)
    check_positive(dilations, "dilation", op)
    pads = ntuple(padding, 2, "padding", op)
    check_positive(pads, "padding", op, minimum=0)
    strides = ntuple(stride, 2, "stride", op)
    check_positive(strides, "stride", op)
    return kernel, dilations, tuple((p, p) for p in pads), strides


def unfold(
    input: Tensor,
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    stride: int | Sequence[int] = 1,
) -> Tensor:
    """Extract every sliding window as a column (im2col), PyTorch's ``F.unfold``.

    Column ``l`` (a window position, in row-major order) holds the window's values, channel by
    channel and kernel tap by kernel tap: ``[Y]n,(c,a,b),l = [X]n,c,s·i+r·a−p,s·j+r·b−p``
    where ``l = i·W_out + j``.  A convolution is then ``W.view(C_out, -1) @ unfold(x)``.

    Shape:
        input ``(N, C, H, W)`` or ``(C, H, W)`` → output ``(N, C·k_h·k_w, L)`` or
        ``(C·k_h·k_w, L)`` with ``L = H_out·W_out`` and, per axis,
        ``n_out = floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> F.unfold(wally.randn(2, 3, 5, 5), kernel_size=3).shape
        (2, 27, 9)
    """
    if input.ndim not in (3, 4):
        raise ValueError(
            f"unfold: expected a 3-D or 4-D input (C, H, W) or (N, C, H, W), got shape "
            f"{tuple(input.shape)}"
        )
    kernel, dilations, pairs, strides = _window_args(
        "unfold", kernel_size, dilation, padding, stride
    )
    output_shape("unfold", input.shape[-2:], kernel, strides, pairs, dilations)
    return Unfold(kernel, strides, pairs, dilations)(input)


def fold(
    input: Tensor,
    output_size: int | Sequence[int],
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    stride: int | Sequence[int] = 1,
) -> Tensor:
    """Sum sliding-window columns back into an image (col2im), PyTorch's ``F.fold``.

    The adjoint of :func:`unfold`: every entry ``[Y]n,(c,a,b),l`` is added to the pixel it
    would have been read from, so overlapping windows add up and padding is dropped.
    ``fold(unfold(x))`` multiplies each pixel by the number of windows that cover it.

    Shape:
        input ``(N, C·k_h·k_w, L)`` or ``(C·k_h·k_w, L)`` → output ``(N, C, *output_size)`` or
        ``(C, *output_size)``, where ``L`` must equal the number of windows that
        ``output_size`` holds, ``∏ floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> cols = F.unfold(wally.ones(1, 1, 4, 4), kernel_size=2)
        >>> F.fold(cols, output_size=(4, 4), kernel_size=2)[0, 0, 0]
        tensor([1., 2., 2., 1.])
    """
    if input.ndim not in (2, 3):
        raise ValueError(
            f"fold: expected a 2-D or 3-D input (C·kH·kW, L) or (N, C·kH·kW, L), got shape "
            f"{tuple(input.shape)}"
        )
    size = ntuple(output_size, 2, "output_size", "fold")
    check_positive(size, "output_size", "fold")
    kernel, dilations, pairs, strides = _window_args("fold", kernel_size, dilation, padding, stride)
    rows, length = input.shape[-2:]
    taps = kernel[0] * kernel[1]
    if rows % taps:
        raise ValueError(
            f"fold: expected input's dimension {input.ndim - 2} to be divisible by the number "
            f"of kernel taps {kernel[0]}·{kernel[1]} = {taps}, got {rows} (input shape "
            f"{tuple(input.shape)})"
        )
    blocks = output_shape("fold", size, kernel, strides, pairs, dilations)
    if blocks[0] * blocks[1] != length:
        raise ValueError(
            f"fold: output_size={size}, kernel_size={kernel}, dilation={dilations}, "
            f"padding={tuple(p for p, _ in pairs)}, stride={strides} give {blocks[0]}·"
            f"{blocks[1]} = {blocks[0] * blocks[1]} windows, but the input has L={length} "
            f"(input shape {tuple(input.shape)})"
        )
    return Fold(size, kernel, strides, pairs, dilations)(input)
