"""Transposed convolution ("deconvolution") in 1, 2 and 3 dimensions, PyTorch's
``F.conv_transpose1d/2d/3d``.

A transposed convolution is the adjoint of a convolution in its input: where ``conv`` reads a
window of the input for every output pixel, ``conv_transpose`` lets every input pixel *add*
``x·W`` into a window of the output.  So it is computed by the convolution's own machinery
(:mod:`wally.functional.conv`):

* forward  = :func:`~wally.functional.conv.input_grad` (the convolution's ``dX``),
* ``dX``   = :func:`~wally.functional.conv.correlate` (the convolution's forward),
* ``dW``   = :func:`~wally.functional.conv.weight_grad` with the roles of ``x`` and ``dY``
  swapped,

all GEMM-based, chunked under the memory budget, with no Python loop over pixels.  The weight
has PyTorch's transposed layout ``(C_in, C_out/groups, *k)``, which is exactly the layout of the
convolution ``C_out → C_in`` whose adjoint this is.

``output_padding`` adds rows at the high end of each axis.  The underlying convolution sees
them as padding taken off its right side (``p − output_padding``); where ``output_padding``
exceeds ``p`` the extra rows lie beyond every window and stay 0 (that can happen only with
dilation > stride, which PyTorch allows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from wally._windows import Pairs, transposed_settings, volume
from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.functional.conv import (
    _KERNELS,
    check_operands,
    correlate,
    input_grad,
    weight_grad,
)

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = ["conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]


def transposed_output_size(n: int, k: int, s: int, p: int, op: int, d: int) -> int:
    """``(n − 1)·s − 2p + d·(k − 1) + output_padding + 1``, PyTorch's output length."""
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def _crop(spatial: Sequence[int]) -> tuple[slice, ...]:
    """The index of the first ``spatial`` pixels of every ``(N, C, *spatial)`` plane."""
    return (slice(None), slice(None)) + tuple(slice(0, n) for n in spatial)


class ConvTransposeNd(Function):
    """``y = Wᵀ ⋆ x + b``: the adjoint in ``x`` of the convolution ``C_out → C_in`` with the
    same stride, padding and dilation, plus a bias per output channel.

    Inputs ``x (N, C_in, *spatial)`` (or unbatched), ``w (C_in, C_out/groups, *k)``, ``b
    (C_out,)`` or ``None``.  ``pairs`` is the convolution's ``(p, max(p − output_padding, 0))``
    padding per axis and ``extra`` the rows beyond it (``max(output_padding − p, 0)``), which
    are always 0.  Forward keeps ``x`` only when ``dW`` is wanted and ``w`` only when ``dX`` is.
    """

    def __init__(
        self,
        stride: tuple[int, ...],
        pairs: Pairs,
        extra: tuple[int, ...],
        dilation: tuple[int, ...],
        groups: int,
        out_spatial: tuple[int, ...],
        op: str,
    ) -> None:
        self.stride = stride
        self.pairs = pairs
        self.extra = extra
        self.dilation = dilation
        self.groups = groups
        self.out_spatial = out_spatial
        self.op = op

    def _core(self) -> tuple[int, ...]:
        """The output size the convolution covers (without the always-zero ``extra`` rows)."""
        return tuple(n - e for n, e in zip(self.out_spatial, self.extra, strict=True))

    def forward(self, x: ndarray, w: ndarray, b: ndarray | None) -> ndarray:
        self.unbatched = x.ndim == len(self.stride) + 1
        if self.unbatched:
            x = x[None]
        need_x, need_w, _ = self.needs_input_grad
        self.x = x if need_w else None
        self.w = w if need_x else None
        self.weight_shape = w.shape
        out_channels = w.shape[1] * self.groups
        core = (x.shape[0], out_channels, *self._core())
        y = input_grad(
            x, w, core, self.stride, self.pairs, self.dilation, self.groups, op=self.op
        )
        if any(self.extra):
            full = xp.zeros((*core[:2], *self.out_spatial), dtype=y.dtype)
            full[_crop(core[2:])] = y
            y = full
        if b is not None:
            y += b.reshape((1, out_channels) + (1,) * len(self.stride))
        return y[0] if self.unbatched else y

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ndarray | None, ndarray | None]:
        if self.unbatched:
            gy = gy[None]
        need_x, need_w, need_b = self.needs_input_grad
        gx = gw = gb = None
        if need_b:
            gb = gy.reshape(*gy.shape[:2], volume(gy.shape[2:])).sum(axis=2).sum(axis=0)
        if any(self.extra):  # the zero rows depend on nothing
            gy = xp.ascontiguousarray(gy[_crop(self._core())])
        if need_w:
            assert self.x is not None
            gw = weight_grad(
                gy, self.x, self.weight_shape, self.stride, self.pairs, self.dilation,
                self.groups,
            )
        if need_x:
            assert self.w is not None
            gx = correlate(
                gy, self.w, None, self.stride, self.pairs, self.dilation, self.groups,
                op=self.op, what="input gradient",
            )
            if self.unbatched:
                gx = gx[0]
        return gx, gw, gb


def _conv_transpose(
    op: str,
    nd: int,
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: int | Sequence[int],
    padding: int | Sequence[int],
    output_padding: int | Sequence[int],
    groups: int,
    dilation: int | Sequence[int],
) -> Tensor:
    check_operands(op, nd, input, weight, bias, "in_channels, out_channels/groups")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
    in_channels = input.shape[-nd - 1]
    if weight.shape[0] % groups:
        raise ValueError(
            f"{op}: in_channels ({weight.shape[0]}, weight shape {tuple(weight.shape)}) must "
            f"be divisible by groups ({groups})"
        )
    if in_channels != weight.shape[0]:
        raise ValueError(
            f"{op}: expected input with {weight.shape[0]} channels (weight shape "
            f"{tuple(weight.shape)}: (in_channels, out_channels/groups, {_KERNELS[nd]})), got "
            f"{in_channels} channels (input shape {tuple(input.shape)})"
        )
    out_channels = weight.shape[1] * groups
    if out_channels == 0:
        raise ValueError(
            f"{op}: expected a weight with at least one output channel, got weight shape "
            f"{tuple(weight.shape)}"
        )
    if bias is not None:
        if tuple(bias.shape) != (out_channels,):
            raise ValueError(
                f"{op}: expected a bias of shape ({out_channels},), one per output channel "
                f"(weight shape {tuple(weight.shape)}, groups={groups}), got shape "
                f"{tuple(bias.shape)}"
            )
    if 0 in input.shape[-nd:]:
        raise ValueError(
            f"{op}: expected an input of non-zero spatial size (only the batch or the channels "
            f"may be 0), got shape {tuple(input.shape)}"
        )
    kernel = tuple(weight.shape[2:])
    # Checked once per distinct settings (a layer's at its construction).
    strides, pads, extras, dilations = transposed_settings(op, nd, stride, padding,
                                                           output_padding, dilation)
    spatial = tuple(input.shape[-nd:])
    out = tuple(
        transposed_output_size(n, k, s, p, e, d)
        for n, k, s, p, e, d in zip(spatial, kernel, strides, pads, extras, dilations, strict=True)
    )
    if any(o <= 0 for o in out):
        raise ValueError(
            f"{op}: output size {out} is too small: (n − 1)·stride − 2·padding + "
            f"dilation·(k − 1) + output_padding + 1 with input size {spatial}, kernel size "
            f"{kernel}, stride {strides}, padding {pads}, output_padding {extras}, dilation "
            f"{dilations}"
        )
    pairs = tuple((p, max(p - e, 0)) for p, e in zip(pads, extras, strict=True))
    beyond = tuple(max(e - p, 0) for p, e in zip(pads, extras, strict=True))
    return ConvTransposeNd(strides, pairs, beyond, dilations, groups, out, op)(
        input, weight, bias
    )


def conv_transpose1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
) -> Tensor:
    """1-D transposed convolution, PyTorch's ``F.conv_transpose1d``: see
    :func:`conv_transpose2d`, along one axis.

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)``, weight ``(C_in, C_out/groups, k)``, bias
        ``(C_out,)`` → output ``(N, C_out, L_out)`` with
        ``L_out = (L − 1)·s − 2p + d·(k − 1) + output_padding + 1``.

    Example::

        >>> F.conv_transpose1d(wally.randn(2, 4, 10), wally.randn(4, 3, 4), stride=2).shape
        wally.Size([2, 3, 22])
    """
    return _conv_transpose(
        "conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding, groups,
        dilation,
    )


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
) -> Tensor:
    """2-D transposed convolution, PyTorch's ``F.conv_transpose2d``.

    Every input pixel adds its value times the kernel into a window of the output:
    ``[Y]n,o,s·i+d·a−p,s·j+d·b−p += Σc [X]n,c,i,j [W]c,o,a,b`` (within each group, ``c`` over
    its input channels), plus ``[b]o``.  It is the adjoint of ``conv2d`` with the same stride,
    padding and dilation: ``⟨conv2d(z, W), x⟩ = ⟨z, conv_transpose2d(x, W)⟩``, which is how it
    is computed.  ``padding`` removes ``p`` rows from both ends of the full output;
    ``output_padding`` (smaller than the stride or the dilation) adds rows at the high end, to
    pick one of the ``s`` input sizes that a strided ``conv2d`` maps to the same size.

    Shape:
        input ``(N, C_in, H, W)`` or ``(C_in, H, W)``, weight ``(C_in, C_out/groups, k_h, k_w)``,
        bias ``(C_out,)`` → output ``(N, C_out, H_out, W_out)`` with, per axis,
        ``n_out = (n − 1)·s − 2p + d·(k − 1) + output_padding + 1``.

    Example::

        >>> x = wally.randn(1, 16, 7, 7)
        >>> F.conv_transpose2d(x, wally.randn(16, 8, 3, 3), stride=2, padding=1,
        ...                    output_padding=1).shape        # doubles the resolution
        wally.Size([1, 8, 14, 14])
    """
    return _conv_transpose(
        "conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding, groups,
        dilation,
    )


def conv_transpose3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
) -> Tensor:
    """3-D transposed convolution, PyTorch's ``F.conv_transpose3d``: see
    :func:`conv_transpose2d`, with one more spatial axis.

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``, weight
        ``(C_in, C_out/groups, k_d, k_h, k_w)``, bias ``(C_out,)`` → output
        ``(N, C_out, D_out, H_out, W_out)`` with, per axis,
        ``n_out = (n − 1)·s − 2p + d·(k − 1) + output_padding + 1``.

    Example::

        >>> F.conv_transpose3d(wally.randn(1, 2, 3, 4, 4), wally.randn(2, 5, 2, 2, 2),
        ...                    stride=2).shape
        wally.Size([1, 5, 6, 8, 8])
    """
    return _conv_transpose(
        "conv_transpose3d", 3, input, weight, bias, stride, padding, output_padding, groups,
        dilation,
    )
