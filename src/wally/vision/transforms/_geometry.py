"""Transforms that move pixels: ``CenterCrop``, ``RandomResizedCrop``, ``RandomRotation``,
``RandomVerticalFlip``.

They take what :mod:`wally.data.transforms` takes: PIL images, NumPy images ``(H, W[, C])``
and Tensors ``(..., H, W)``, and hand back the same kind. Resampling is Pillow's, on PIL images
exactly as torchvision does it; on Tensors plane by plane (uint8 as ``L``, floats as ``F``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from wally.backend import ndarray, xp
from wally.creation import from_numpy
from wally.data._optional import require
from wally.data._random import generator
from wally.data.transforms import (
    InterpolationMode,
    Resize,
    Transform,
    _interpolation,
    _is_pil,
    _Layout,
    _pad,
    _pair,
)

__all__ = ["CenterCrop", "RandomResizedCrop", "RandomRotation", "RandomVerticalFlip", "crop",
           "center_crop"]

_PIL_FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}


def _size(layout: _Layout) -> tuple[int, int]:
    return layout.array.shape[layout.h_axis], layout.array.shape[layout.w_axis]


def crop(img: Any, top: int, left: int, height: int, width: int, name: str = "crop") -> Any:
    """The ``height × width`` window of ``img`` whose top-left pixel is ``(top, left)``.

    Parts of the window outside the image are zeros, as torchvision's ``crop``.
    """
    layout = _Layout(img, name)
    image_height, image_width = _size(layout)
    pad_top, pad_left = max(0, -top), max(0, -left)
    pad_bottom = max(0, top + height - image_height)
    pad_right = max(0, left + width - image_width)
    array = layout.array
    if pad_top or pad_left or pad_bottom or pad_right:
        array = _pad(layout, array, pad_left, pad_top, pad_right, pad_bottom, 0, "constant")
    window = [slice(None)] * array.ndim
    window[layout.h_axis] = slice(top + pad_top, top + pad_top + height)
    window[layout.w_axis] = slice(left + pad_left, left + pad_left + width)
    return layout.wrap(xp.ascontiguousarray(array[tuple(window)]))


def center_crop(img: Any, output_size: int | Sequence[int], name: str = "center_crop") -> Any:
    """The central ``output_size`` window; an image smaller than it is padded with zeros
    around (the extra pixel of an odd difference going right and down), as torchvision."""
    crop_height, crop_width = _pair(output_size, name)
    image_height, image_width = _size(_Layout(img, name))
    # Python's round() halves to even, as torchvision's int(round(...)) does
    top = int(round((image_height - crop_height) / 2.0))
    left = int(round((image_width - crop_width) / 2.0))
    if crop_height > image_height:
        top = -((crop_height - image_height) // 2)
    if crop_width > image_width:
        left = -((crop_width - image_width) // 2)
    return crop(img, top, left, crop_height, crop_width, name)


class CenterCrop(Transform):
    """Crop the central ``size`` window (``int`` for a square, or ``(h, w)``), padding with
    zeros first where the image is smaller.

    Shape:
        ``(H, W[, C])`` or ``(..., H, W)`` → the same with ``H, W = size``.

    >>> CenterCrop(2)(xp.arange(16, dtype="uint8").reshape(4, 4)).tolist()
    [[5, 6], [9, 10]]
    """

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair(size, "CenterCrop")

    def __call__(self, img: Any) -> Any:
        return center_crop(img, self.size, "CenterCrop")

    def _batch(self, batch: tuple[ndarray, bool]) -> tuple[ndarray, bool] | None:
        array, channel_first = batch
        if channel_first:  # (N, C, H, W): one crop of the last two axes
            return center_crop(from_numpy(array), self.size, "CenterCrop").array, True
        return xp.stack([center_crop(image, self.size, "CenterCrop") for image in array]), False

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


def _resize(img: Any, size: tuple[int, int], interpolation: InterpolationMode) -> Any:
    return Resize(list(size), interpolation=interpolation)(img)


class RandomResizedCrop(Transform):
    """Crop a random window of random area and aspect ratio, and resize it to ``size``.

    The window (torchvision's rule, :meth:`get_params`): up to ten tries draw an area
    ``A·U(scale)`` (``A`` the image's area) and an aspect ratio ``exp U(log ratio)``, and take
    the first ``w = round(√(area·ratio))``, ``h = round(√(area/ratio))`` that fits, at a uniform
    position; failing that, the central crop of the whole image clamped to ``ratio``.

    Shape:
        ``(H, W[, C])`` or ``(..., H, W)`` → the same with ``H, W = size``.

    >>> RandomResizedCrop(8)(xp.zeros((20, 30, 3), dtype="uint8")).shape
    wally.Size([8, 8, 3])
    """

    def __init__(self, size: int | Sequence[int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
                 interpolation: Any = InterpolationMode.BILINEAR,
                 antialias: bool | None = True) -> None:
        self.size = _pair(size, "RandomResizedCrop")
        if not isinstance(scale, Sequence) or len(scale) != 2:
            raise TypeError(f"RandomResizedCrop: scale should be a sequence of length 2, got "
                            f"{scale!r}")
        if not isinstance(ratio, Sequence) or len(ratio) != 2:
            raise TypeError(f"RandomResizedCrop: ratio should be a sequence of length 2, got "
                            f"{ratio!r}")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"RandomResizedCrop: scale and ratio should be (min, max), got "
                             f"scale={scale}, ratio={ratio}")
        self.scale, self.ratio = scale, ratio
        self.interpolation = _interpolation(interpolation)
        self.antialias = antialias

    @staticmethod
    def get_params(img: Any, scale: Sequence[float],
                   ratio: Sequence[float]) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of a random window of ``img`` (class docs)."""
        height, width = _size(_Layout(img, "RandomResizedCrop"))
        area = height * width
        rng = generator()
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = area * float(rng.uniform(scale[0], scale[1]))
            aspect_ratio = math.exp(float(rng.uniform(log_ratio[0], log_ratio[1])))
            w = int(round(math.sqrt(target_area * aspect_ratio)))
            h = int(round(math.sqrt(target_area / aspect_ratio)))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img: Any) -> Any:
        top, left, height, width = self.get_params(img, self.scale, self.ratio)
        window = crop(img, top, left, height, width, "RandomResizedCrop")
        return _resize(window, self.size, self.interpolation)

    def __repr__(self) -> str:
        scale = tuple(round(s, 4) for s in self.scale)
        ratio = tuple(round(r, 4) for r in self.ratio)
        return (f"RandomResizedCrop(size={self.size}, scale={scale}, ratio={ratio}, "
                f"interpolation={self.interpolation.value}, antialias={self.antialias})")


class RandomVerticalFlip(Transform):
    """Mirror the image top-bottom with probability ``p`` (one uniform draw per call).

    >>> RandomVerticalFlip(p=1.0)(xp.array([[1], [2]], dtype="uint8")).tolist()
    [[2], [1]]
    """

    def __init__(self, p: float = 0.5) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"RandomVerticalFlip: p must be a probability in [0, 1], got {p}")
        self.p = p

    def __call__(self, img: Any) -> Any:
        layout = _Layout(img, "RandomVerticalFlip")
        if generator().random() < self.p:
            return layout.wrap(xp.ascontiguousarray(xp.flip(layout.array, axis=layout.h_axis)))
        return img

    def __repr__(self) -> str:
        return f"RandomVerticalFlip(p={self.p})"


def _degrees(degrees: Any) -> list[float]:
    if isinstance(degrees, int | float):
        if degrees < 0:
            raise ValueError(f"RandomRotation: if degrees is a single number, it must be "
                             f"positive, got {degrees}")
        return [-float(degrees), float(degrees)]
    if not isinstance(degrees, Sequence) or len(degrees) != 2:
        raise ValueError(f"RandomRotation: degrees must be a number or a sequence of 2 "
                         f"numbers, got {degrees!r}")
    return [float(d) for d in degrees]


def rotate(img: Any, angle: float, interpolation: Any = InterpolationMode.NEAREST,
           expand: bool = False, center: Sequence[int] | None = None, fill: Any = 0) -> Any:
    """``img`` turned ``angle`` degrees counter-clockwise about ``center`` (``(x, y)``, default
    the image's centre) with Pillow's ``Image.rotate``; ``expand`` grows the canvas to hold the
    whole turned image; uncovered pixels get ``fill`` (a number or one per channel)."""
    image_module = require("PIL.Image", "RandomRotation")
    resample = _PIL_FILTERS[_interpolation(interpolation).value]
    centre = None if center is None else tuple(center)
    if _is_pil(img):
        bands = len(img.getbands())
        fillcolor = _fill_for(fill, bands, "RandomRotation")
        return img.rotate(angle, resample, expand, centre, fillcolor=fillcolor)
    layout = _Layout(img, "RandomRotation")
    array = layout.array
    if layout.kind == "tensor":
        planes = array.reshape((-1,) + array.shape[-2:])
        channels = array.shape[-3] if array.ndim >= 3 else 1
    else:
        planes = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        channels = 1 if array.ndim == 2 else array.shape[2]
    fills = _fill_for(fill, channels, "RandomRotation")
    fills = fills if isinstance(fills, tuple) else (fills,) * channels
    turned = []
    for k, plane in enumerate(planes):
        value = fills[k % channels]
        if plane.dtype == xp.uint8:
            picture = image_module.fromarray(xp.ascontiguousarray(plane))
        elif plane.dtype.kind == "f":
            picture = image_module.fromarray(xp.ascontiguousarray(plane, dtype=xp.float32))
        else:
            raise TypeError(f"RandomRotation: expected a uint8 or float image, got {plane.dtype}")
        out = picture.rotate(angle, resample, expand, centre, fillcolor=value)
        turned.append(xp.asarray(out).astype(plane.dtype, copy=False))
    stacked = xp.stack(turned)
    if layout.kind == "tensor":
        return layout.wrap(stacked.reshape(array.shape[:-2] + stacked.shape[-2:]))
    return layout.wrap(stacked[0] if array.ndim == 2 else stacked.transpose(1, 2, 0).copy())


def _fill_for(fill: Any, bands: int, name: str) -> Any:
    """torchvision's fill for Pillow: a number for one band, a tuple (one per band) else."""
    if fill is None:
        fill = 0
    if isinstance(fill, int | float):
        return fill if bands == 1 else tuple([fill] * bands)
    values = tuple(fill)
    if len(values) == 1:
        values = values * bands
    if len(values) != bands:
        raise ValueError(f"{name}: fill {fill!r} has {len(values)} values for an image with "
                         f"{bands} channels")
    return values[0] if bands == 1 else values


class RandomRotation(Transform):
    """Turn the image by an angle drawn uniformly from ``degrees`` (``d`` means ``[-d, d]``),
    counter-clockwise, with :func:`rotate` (nearest neighbour by default, as torchvision).

    Shape:
        ``(H, W[, C])`` or ``(..., H, W)`` → the same, or larger with ``expand=True``.

    >>> RandomRotation(30)(xp.zeros((8, 8), dtype="uint8")).shape
    wally.Size([8, 8])
    """

    def __init__(self, degrees: Any, interpolation: Any = InterpolationMode.NEAREST,
                 expand: bool = False, center: Sequence[int] | None = None,
                 fill: Any = 0) -> None:
        self.degrees = _degrees(degrees)
        self.interpolation = _interpolation(interpolation)
        if center is not None and len(center) != 2:
            raise ValueError(f"RandomRotation: center must be a sequence of 2 numbers (x, y), "
                             f"got {center!r}")
        if fill is not None and not isinstance(fill, int | float | Sequence):
            raise TypeError(f"RandomRotation: fill should be a number or a sequence, got "
                            f"{type(fill).__name__}")
        self.expand, self.center, self.fill = expand, center, fill

    @staticmethod
    def get_params(degrees: Sequence[float]) -> float:
        """The angle, uniform in ``[degrees[0], degrees[1]]``."""
        return float(generator().uniform(float(degrees[0]), float(degrees[1])))

    def __call__(self, img: Any) -> Any:
        angle = self.get_params(self.degrees)
        return rotate(img, angle, self.interpolation, self.expand, self.center, self.fill)

    def __repr__(self) -> str:
        text = (f"RandomRotation(degrees={self.degrees}, interpolation="
                f"{self.interpolation.value}, expand={self.expand}")
        if self.center is not None:
            text += f", center={self.center}"
        if self.fill is not None:
            text += f", fill={self.fill}"
        return text + ")"
