"""``torchvision.transforms.functional``: the transforms' deterministic parts as functions.

>>> image = wally.backend.xp.zeros((4, 6), dtype="uint8")
>>> center_crop(hflip(image), 2).shape
wally.Size([2, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wally.backend import xp
from wally.data._optional import require
from wally.data.transforms import (
    InterpolationMode,
    Normalize,
    Resize,
    ToTensor,
    _describe,
    _is_pil,
    _Layout,
)
from wally.tensor import Tensor
from wally.vision.transforms._color import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    convert_image_dtype,
    pil_to_tensor,
    rgb_to_grayscale,
)
from wally.vision.transforms._geometry import center_crop, crop, rotate

__all__ = ["to_tensor", "pil_to_tensor", "to_pil_image", "convert_image_dtype", "normalize",
           "resize", "crop", "center_crop", "resized_crop", "hflip", "vflip", "rotate",
           "rgb_to_grayscale", "adjust_brightness", "adjust_contrast", "adjust_saturation",
           "adjust_hue"]


def to_tensor(pic: Any) -> Tensor:
    """:class:`~wally.data.transforms.ToTensor` as a function."""
    return ToTensor()(pic)


def normalize(tensor: Tensor, mean: Sequence[float], std: Sequence[float],
              inplace: bool = False) -> Tensor:
    """``(tensor[c] − mean[c]) / std[c]`` (:class:`~wally.data.transforms.Normalize`)."""
    return Normalize(mean, std, inplace)(tensor)


def resize(img: Any, size: int | Sequence[int],
           interpolation: Any = InterpolationMode.BILINEAR, max_size: int | None = None,
           antialias: bool | None = True) -> Any:
    """:class:`~wally.data.transforms.Resize` as a function."""
    return Resize(size, interpolation, max_size, antialias)(img)


def resized_crop(img: Any, top: int, left: int, height: int, width: int,
                 size: int | Sequence[int], interpolation: Any = InterpolationMode.BILINEAR,
                 antialias: bool | None = True) -> Any:
    """:func:`crop`, then :func:`resize` to ``size``."""
    return resize(crop(img, top, left, height, width, "resized_crop"), size, interpolation,
                  antialias=antialias)


def _flip(img: Any, name: str, horizontal: bool) -> Any:
    layout = _Layout(img, name)
    axis = layout.w_axis if horizontal else layout.h_axis
    return layout.wrap(xp.ascontiguousarray(xp.flip(layout.array, axis=axis)))


def hflip(img: Any) -> Any:
    """The image mirrored left-right."""
    return _flip(img, "hflip", True)


def vflip(img: Any) -> Any:
    """The image mirrored top-bottom."""
    return _flip(img, "vflip", False)


def to_pil_image(pic: Any, mode: str | None = None) -> Any:
    """A Tensor ``(C, H, W)`` or NumPy image ``(H, W[, C])`` as a PIL image: floats are
    multiplied by 255 and truncated to uint8, as torchvision; one channel gives ``L``, three
    ``RGB``, four ``RGBA``."""
    image_module = require("PIL.Image", "to_pil_image")
    if _is_pil(pic):
        return pic if mode is None else pic.convert(mode)
    if isinstance(pic, Tensor):
        array = pic.array
        if array.ndim not in (2, 3):
            raise ValueError(f"to_pil_image: expected a 2-D or 3-D tensor image, got shape "
                             f"{tuple(array.shape)}")
        array = array[None] if array.ndim == 2 else array
        array = array.transpose(1, 2, 0)
    elif isinstance(pic, xp.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"to_pil_image: expected a 2-D or 3-D image, got shape "
                             f"{pic.shape}")
        array = pic[:, :, None] if pic.ndim == 2 else pic
    else:
        raise TypeError(f"to_pil_image: expected a Tensor, a NumPy array or a PIL image, got "
                        f"{_describe(pic)}")
    if array.dtype.kind == "f":
        array = (array * 255).astype(xp.uint8)
    if array.shape[2] not in (1, 3, 4):
        raise ValueError(f"to_pil_image: expected 1, 3 or 4 channels, got {array.shape[2]}")
    array = xp.ascontiguousarray(array[:, :, 0] if array.shape[2] == 1 else array)
    picture = image_module.fromarray(array)
    return picture if mode is None else picture.convert(mode)
