"""The fully convolutional network for time-series classification (Wang, Yan and Oates, 2017,
"Time series classification from scratch with deep neural networks: a strong baseline").

::

    Conv1d(C, 128, k8, same)  BatchNorm1d  ReLU      (N, C, T)   → (N, 128, T)
    Conv1d(128, 256, k5, same) BatchNorm1d ReLU                  → (N, 256, T)
    Conv1d(256, 128, k3, same) BatchNorm1d ReLU                  → (N, 128, T)
    global average pooling over time, Linear(128, classes)       → (N, classes)

No pooling and no striding: every block keeps the length, so any length works (the receptive
field of an output step is 1 + 7 + 4 + 2 = 14 steps, centred; the logits see the whole series).
"""

from __future__ import annotations

from typing import Any

from wally import nn
from wally.functional.causal import steps_mask
from wally.models.registry import register_model
from wally.tensor import Tensor

__all__ = ["FCN1d", "fcn1d"]


def check_series(model: nn.Module, x: Any, in_channels: int,
                 lengths: Tensor | None) -> None:
    """Refuse anything but a ``(N, in_channels, T)`` series batch, naming the model."""
    name = type(model).__name__
    if not isinstance(x, Tensor) or x.ndim != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a batch of series (N, {in_channels}, T), got {shape}")
    if x.shape[1] != in_channels:
        raise ValueError(f"{name}: expected {in_channels} channels, got {x.shape[1]} (input "
                         f"shape {tuple(x.shape)}; a univariate series is (N, 1, T))")
    if lengths is not None and tuple(lengths.shape) != (x.shape[0],):
        raise ValueError(f"{name}: expected lengths of shape ({x.shape[0]},), one per series, "
                         f"got {tuple(lengths.shape)}")


def time_mask(lengths: Tensor, x: Tensor) -> Tensor:
    """``(N, 1, T)`` ones on each series' own steps, zeros on its padding, in ``x``'s dtype
    (:func:`wally.functional.causal.steps_mask`: ONNX export computes it from ``lengths``)."""
    return steps_mask(lengths, x.shape[2], x.dtype).reshape(x.shape[0], 1, x.shape[2])


class FCN1d(nn.Module):
    """Wang et al.'s FCN (module docstring). ``model(x)`` or ``model(x, lengths)``: with
    lengths (right-padded batches, :func:`wally.data.pad_collate`) every block's output is
    zeroed on the padding and the average counts only a series' own steps, so in evaluation a
    series gets the same logits padded or alone.

    Shape:
        ``x``: ``(N, C, T)``, ``lengths``: ``(N,)`` → ``(N, num_classes)``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2,
                 channels: tuple[int, ...] = (128, 256, 128),
                 kernels: tuple[int, ...] = (8, 5, 3)) -> None:
        super().__init__()
        self.in_channels = in_channels
        blocks = []
        width = in_channels
        for out, k in zip(channels, kernels, strict=True):
            blocks.append(nn.Sequential(nn.Conv1d(width, out, k, padding="same"),
                                        nn.BatchNorm1d(out), nn.ReLU()))
            width = out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.MaskedGlobalAvgPool1d()
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        check_series(self, x, self.in_channels, lengths)
        mask = None if lengths is None else time_mask(lengths, x)
        for block in self.blocks:
            x = block(x)
            if mask is not None:
                x = x * mask
        return self.fc(self.pool(x, lengths))


@register_model(spatial_dims=1)
def fcn1d(in_channels: int = 1, num_classes: int = 2, input_size: int = 150) -> FCN1d:
    """Wang et al.'s FCN for time series: three Conv1d–BatchNorm–ReLU blocks of 128, 256 and
    128 channels with kernels 8, 5 and 3 ('same' padding), global average pooling and a linear
    layer. ``input_size`` is the series length ``model.input_size = (C, T)`` records for
    summaries and export (any length can be fed).

    Example::

        >>> model = fcn1d(in_channels=1, num_classes=2, input_size=150)   # UCR GunPoint
        >>> model(wally.randn(4, 1, 150)).shape
        wally.Size([4, 2])
    """
    if isinstance(input_size, list | tuple) and len(input_size) == 1:
        input_size = input_size[0]
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise TypeError(f"fcn1d: expected input_size to be a positive int (the series length), "
                        f"got {input_size!r}")
    model = FCN1d(in_channels, num_classes)
    model.input_size = (in_channels, input_size)
    return model
