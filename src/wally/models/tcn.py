"""The temporal convolutional network (Bai, Kolter and Koltun, 2018, "An empirical evaluation of
generic convolutional and recurrent networks for sequence modeling").

A stack of residual blocks; block ``i`` holds two causal convolutions of kernel ``k`` and
dilation ``2^i``, each followed by ReLU and dropout, and adds its input (through a 1×1
convolution where the widths differ)::

    x ─┬─ CausalConv1d(k, d) ─ ReLU ─ Dropout ─ CausalConv1d(k, d) ─ ReLU ─ Dropout ─(+)─ ReLU
       └────────────────── (Conv1d 1×1 when in ≠ out) ──────────────────────────────┘

Every layer is causal, so output step ``t`` of the stack sees input steps ``t − R + 1, ..., t``
only, with the receptive field ``R = 1 + 2·(k − 1)·(2^L − 1)`` for ``L`` blocks (each block
reaches back ``2·(k − 1)·2^i``). The classifier reads the last step (of each series' own
length), which has seen the whole series when ``T ≤ R``.

As Bai et al. do, each causal convolution has weight normalisation
(:func:`wally.nn.utils.parametrizations.weight_norm`, ``w = g · v / ‖v‖`` with one length per
output channel), so its parameters are ``...parametrizations.weight.original0`` (``g``) and
``original1`` (``v``); it changes how training moves the weights, not what the network
computes, so receptive fields and ONNX export (the effective weight ``w`` as an initializer)
are those of the plain network; a summary counts the ``g`` too (one per output channel) and
shows each convolution's ``ParametrizationList``. ``weight_norm=False`` builds the plain
network.
"""

from __future__ import annotations

from collections.abc import Sequence

from wally import nn
from wally.backend import xp
from wally.creation import from_numpy
from wally.functional.causal import steps_mask
from wally.models.fcn1d import check_series
from wally.models.registry import register_model
from wally.tensor import Tensor

__all__ = ["TemporalBlock", "TCN", "tcn", "tcn_receptive_field"]


def tcn_receptive_field(levels: int, kernel_size: int) -> int:
    """``R = 1 + 2·(k − 1)·(2^L − 1)``: the steps one output of an ``L``-block TCN sees."""
    return 1 + 2 * (kernel_size - 1) * (2**levels - 1)


class TemporalBlock(nn.Module):
    """One residual block of causal convolutions (module docstring).

    Shape:
        ``(N, in_channels, T) → (N, out_channels, T)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int,
                 dropout: float = 0.2, weight_norm: bool = True) -> None:
        super().__init__()

        def conv(width: int) -> nn.Module:
            layer = nn.CausalConv1d(width, out_channels, kernel_size, dilation=dilation)
            return nn.utils.parametrizations.weight_norm(layer) if weight_norm else layer

        self.net = nn.Sequential(
            conv(in_channels), nn.ReLU(), nn.Dropout(dropout),
            conv(out_channels), nn.ReLU(), nn.Dropout(dropout),
        )
        self.downsample = (nn.Conv1d(in_channels, out_channels, 1)
                           if in_channels != out_channels else None)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.net(x) + residual)


class TCN(nn.Module):
    """Residual blocks of dilated causal convolutions, then a linear classifier on the last
    step: ``model(x)`` reads step ``T − 1``, ``model(x, lengths)`` step ``lengths[n] − 1`` of
    series ``n`` (right padding, :func:`wally.data.pad_collate`, never reaches it: causal).

    Shape:
        ``x``: ``(N, C, T)``, ``lengths``: ``(N,)`` → ``(N, num_classes)``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2,
                 channels: Sequence[int] = (32,) * 6, kernel_size: int = 3,
                 dropout: float = 0.1, weight_norm: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.kernel_size = kernel_size
        blocks = []
        width = in_channels
        for i, out in enumerate(channels):
            blocks.append(TemporalBlock(width, out, kernel_size, 2**i, dropout, weight_norm))
            width = out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(width, num_classes)

    @property
    def receptive_field(self) -> int:
        """The input steps one output step of ``blocks`` sees, :func:`tcn_receptive_field`."""
        return tcn_receptive_field(len(self.blocks), self.kernel_size)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        check_series(self, x, self.in_channels, lengths)
        h = self.blocks(x)
        if lengths is None:  # the last step, as a selection ONNX can export
            last_step = from_numpy(xp.asarray([h.shape[2] - 1], dtype=xp.int64))
            return self.fc(h.index_select(2, last_step).flatten(1))
        n, steps = h.shape[0], h.shape[2]  # step lengths[n] - 1 alone, in tensor ops (ONNX)
        last = steps_mask(lengths, steps, h.dtype) - steps_mask(lengths - 1, steps, h.dtype)
        return self.fc((h * last.reshape(n, 1, steps)).sum(dim=-1))


@register_model(spatial_dims=1)
def tcn(in_channels: int = 1, num_classes: int = 2, input_size: int = 150,
        channels: Sequence[int] = (32,) * 6, kernel_size: int = 3,
        dropout: float = 0.1, weight_norm: bool = True) -> TCN:
    """Bai et al.'s TCN for series classification: ``len(channels)`` residual blocks of two
    dilated causal convolutions (dilations 1, 2, 4, ...) with weight normalisation (unless
    ``weight_norm=False``), ReLU and dropout, and a linear layer on the last step. The
    defaults (6 blocks of 32 channels, kernel 3) see
    ``1 + 2·2·63 = 253`` steps. ``input_size`` is the series length ``model.input_size =
    (C, T)`` records for summaries and export (any length can be fed).

    Example::

        >>> model = tcn(in_channels=12, num_classes=9, input_size=29)
        >>> model(wally.randn(4, 12, 29)).shape, model.receptive_field
        (wally.Size([4, 9]), 253)
    """
    if isinstance(input_size, list | tuple) and len(input_size) == 1:
        input_size = input_size[0]
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise TypeError(f"tcn: expected input_size to be a positive int (the series length), "
                        f"got {input_size!r}")
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
        raise ValueError(f"tcn: kernel_size must be a positive integer, got {kernel_size!r}")
    if not channels:
        raise ValueError("tcn: expected at least one block (channels is empty)")
    if not isinstance(weight_norm, bool):
        raise TypeError(f"tcn: expected weight_norm to be True or False, got {weight_norm!r}")
    model = TCN(in_channels, num_classes, tuple(channels), kernel_size, dropout, weight_norm)
    model.input_size = (in_channels, input_size)
    return model
