"""Resampling layers: ``Upsample`` (and its 2-D nearest and bilinear forms), ``PixelShuffle``,
``PixelUnshuffle`` and ``ChannelShuffle``.  None holds parameters; each calls the function of
the same name in :mod:`wally.nn.functional`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wally import functional as F
from wally.nn.module import Module
from wally.tensor import Tensor

__all__ = [
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "PixelShuffle",
    "PixelUnshuffle",
    "ChannelShuffle",
]


class Upsample(Module):
    """Resize by ``size`` or ``scale_factor``, PyTorch's ``nn.Upsample``: calls
    :func:`wally.nn.functional.interpolate` with the layer's settings.

    Shape:
        input ``(N, C, *spatial)`` (1-3 spatial axes) → output ``(N, C, *size)``, ``size`` being
        given or ``⌊n·scale_factor⌋`` per axis.

    Example::

        >>> nn.Upsample(scale_factor=2, mode="bilinear")(wally.randn(1, 3, 4, 4)).shape
        wally.Size([1, 3, 8, 8])
    """

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None:
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        self.scale_factor: Any
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None  # type: ignore[arg-type]
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.interpolate(
            input, self.size, self.scale_factor, self.mode, self.align_corners,
            recompute_scale_factor=self.recompute_scale_factor,
        )

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """2-D nearest-neighbour upsampling, PyTorch's ``nn.UpsamplingNearest2d``:
    ``Upsample(mode='nearest')``.

    Shape:
        input ``(N, C, H, W)`` → output ``(N, C, H_out, W_out)``.

    Example::

        >>> nn.UpsamplingNearest2d(scale_factor=2)(wally.randn(1, 1, 2, 2)).shape
        wally.Size([1, 1, 4, 4])
    """

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
    ) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """2-D bilinear upsampling with ``align_corners=True``, PyTorch's
    ``nn.UpsamplingBilinear2d`` (the corner pixels' centres stay put).

    Shape:
        input ``(N, C, H, W)`` → output ``(N, C, H_out, W_out)``.

    Example::

        >>> nn.UpsamplingBilinear2d(size=(3, 3))(wally.ones(1, 1, 2, 2)).shape
        wally.Size([1, 1, 3, 3])
    """

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
    ) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """Channels to space, PyTorch's ``nn.PixelShuffle`` (sub-pixel convolution upsampling);
    see :func:`wally.nn.functional.pixel_shuffle`.

    Shape:
        input ``(*, C·r², H, W)`` → output ``(*, C, H·r, W·r)``.

    Example::

        >>> nn.PixelShuffle(3)(wally.randn(1, 9, 4, 4)).shape
        wally.Size([1, 1, 12, 12])
    """

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """Space to channels, PyTorch's ``nn.PixelUnshuffle``, the inverse of
    :class:`PixelShuffle`.

    Shape:
        input ``(*, C, H·r, W·r)`` → output ``(*, C·r², H, W)``.

    Example::

        >>> nn.PixelUnshuffle(2)(wally.randn(1, 1, 4, 4)).shape
        wally.Size([1, 4, 2, 2])
    """

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class ChannelShuffle(Module):
    """Interleave the channels of ``groups`` groups (ShuffleNet), PyTorch's
    ``nn.ChannelShuffle``; see :func:`wally.nn.functional.channel_shuffle`.

    Shape:
        input ``(N, C, *)`` → output of the same shape.

    Example::

        >>> nn.ChannelShuffle(2)(wally.randn(1, 4, 2, 2)).shape
        wally.Size([1, 4, 2, 2])
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input: Tensor) -> Tensor:
        return F.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
