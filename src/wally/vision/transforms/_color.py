"""Transforms of pixel values and types: ``PILToTensor``, ``ConvertImageDtype``, ``Grayscale``,
``ColorJitter``, and the ``adjust_*`` functions they use.

On PIL images they call Pillow as torchvision does (``ImageEnhance``, ``convert``), so results
are equal pixel for pixel; on Tensors ``(..., C, H, W)`` they follow torchvision's tensor
formulas: a blend ``ratio·img1 + (1 − ratio)·img2`` clamped to ``[0, 1]`` (``[0, 255]`` for
uint8), the ITU-R 601 grey ``0.2989 R + 0.587 G + 0.114 B``, and a hue shift in HSV.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wally.backend import ndarray, xp
from wally.creation import from_numpy
from wally.data._optional import require
from wally.data._random import generator
from wally.data.transforms import Transform, _describe, _is_pil
from wally.tensor import Tensor

__all__ = ["PILToTensor", "ConvertImageDtype", "Grayscale", "ColorJitter", "pil_to_tensor",
           "convert_image_dtype", "rgb_to_grayscale", "adjust_brightness", "adjust_contrast",
           "adjust_saturation", "adjust_hue"]

_GREY_WEIGHTS = (0.2989, 0.587, 0.114)
_PIL_DTYPES = {"I": xp.int32, "I;16": xp.int16, "F": xp.float32}


def pil_to_tensor(pic: Any) -> Tensor:
    """A PIL image as a Tensor ``(C, H, W)`` of its own values (uint8 for ``L``/``RGB``,
    int32 for ``I``, float32 for ``F``), not rescaled."""
    if not _is_pil(pic):
        raise TypeError(f"PILToTensor: expected a PIL image, got {_describe(pic)}")
    dtype = _PIL_DTYPES.get(pic.mode, xp.uint8)
    array = xp.array(pic, dtype=dtype, copy=True)
    array = array.reshape(pic.height, pic.width, len(pic.getbands()))
    return from_numpy(xp.ascontiguousarray(array.transpose(2, 0, 1)))


class PILToTensor(Transform):
    """A PIL image → a Tensor ``(C, H, W)`` of the same dtype and values (:func:`pil_to_tensor`).

    Shape:
        ``H × W`` with ``C`` bands → ``(C, H, W)``.
    """

    def __call__(self, pic: Any) -> Tensor:
        return pil_to_tensor(pic)


def _max_value(dtype: Any) -> int:
    return int(xp.iinfo(dtype).max)


def convert_image_dtype(image: Tensor, dtype: Any = xp.float32) -> Tensor:
    """``image`` in ``dtype``, its values rescaled to the new type's range (torchvision's rule):

    integer → float: ``x / max_in``; float → integer: ``⌊x · (max_out + 1 − 0.001)⌋``;
    integer → integer: ``x // ((max_in + 1) / (max_out + 1))`` going down, ``x · ((max_out + 1) /
    (max_in + 1))`` going up; float → float: a plain cast.
    """
    if not isinstance(image, Tensor):
        raise TypeError(f"ConvertImageDtype: expected a Tensor, got {_describe(image)}")
    target = xp.dtype(dtype)
    array = image.array
    if array.dtype == target:
        return image
    if array.dtype.kind == "f":
        if target.kind == "f":
            return from_numpy(array.astype(target))
        if (array.dtype == xp.float32 and target in (xp.int32, xp.int64)) or (
                array.dtype == xp.float64 and target == xp.int64):
            raise RuntimeError(f"ConvertImageDtype: the cast from {array.dtype} to {target} "
                               "cannot be performed safely")
        scaled = array * (_max_value(target) + 1.0 - 1e-3)
        return from_numpy(scaled.astype(target))
    if target.kind == "f":
        return from_numpy(array.astype(target) / target.type(_max_value(array.dtype)))
    input_max, output_max = _max_value(array.dtype), _max_value(target)
    if input_max > output_max:
        factor = (input_max + 1) // (output_max + 1)
        return from_numpy((array // factor).astype(target))
    factor = (output_max + 1) // (input_max + 1)
    return from_numpy(array.astype(target) * target.type(factor))


class ConvertImageDtype(Transform):
    """Convert a tensor image to ``dtype``, rescaling its values (:func:`convert_image_dtype`).

    >>> ConvertImageDtype(wally.float32)(wally.tensor([[[0, 255]]], dtype=wally.uint8)).tolist()
    [[[0.0, 1.0]]]
    """

    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype

    def __call__(self, image: Any) -> Tensor:
        return convert_image_dtype(image, self.dtype)


def _channels_first(img: Any, name: str) -> ndarray:
    if not isinstance(img, Tensor):
        raise TypeError(f"{name}: expected a PIL image or a Tensor (..., C, H, W), got "
                        f"{_describe(img)}")
    array = img.array
    if array.ndim < 3 or array.shape[-3] not in (1, 3):
        raise ValueError(f"{name}: expected a tensor image (..., C, H, W) with 1 or 3 "
                         f"channels, got shape {tuple(array.shape)}")
    return array


def _grey(array: ndarray) -> ndarray:
    """The grey plane ``(..., 1, H, W)`` in float (float32 for integer input)."""
    values = array.astype(xp.float32) if array.dtype.kind != "f" else array
    red, green, blue = values[..., 0:1, :, :], values[..., 1:2, :, :], values[..., 2:3, :, :]
    weights = [values.dtype.type(w) for w in _GREY_WEIGHTS]
    return weights[0] * red + weights[1] * green + weights[2] * blue


def rgb_to_grayscale(img: Any, num_output_channels: int = 1) -> Any:
    """The grey image, ``L = 0.2989 R + 0.587 G + 0.114 B`` on Tensors (cast back to the input
    dtype, so uint8 truncates), Pillow's ``convert("L")`` on PIL images; repeated in
    ``num_output_channels`` (1 or 3) channels. A one-channel tensor is returned as it is,
    in one channel whatever ``num_output_channels`` says, as torchvision does."""
    if num_output_channels not in (1, 3):
        raise ValueError(f"Grayscale: num_output_channels should be 1 or 3, got "
                         f"{num_output_channels}")
    if _is_pil(img):
        grey = img.convert("L")
        if num_output_channels == 1:
            return grey
        image_module = require("PIL.Image", "Grayscale")
        plane = xp.asarray(grey)
        return image_module.fromarray(xp.ascontiguousarray(xp.stack([plane] * 3, axis=2)))
    array = _channels_first(img, "Grayscale")
    if array.shape[-3] == 1:  # already grey: torchvision returns it as it is, in 1 channel
        return from_numpy(array.copy())
    grey = _grey(array).astype(array.dtype)
    if num_output_channels == 3:
        grey = xp.concatenate([grey] * 3, axis=-3)
    return from_numpy(xp.ascontiguousarray(grey))


class Grayscale(Transform):
    """Convert to grey (:func:`rgb_to_grayscale`), in 1 or 3 channels.

    Shape:
        ``(..., 3, H, W)`` → ``(..., num_output_channels, H, W)``.
    """

    def __init__(self, num_output_channels: int = 1) -> None:
        if num_output_channels not in (1, 3):
            raise ValueError(f"Grayscale: num_output_channels should be 1 or 3, got "
                             f"{num_output_channels}")
        self.num_output_channels = num_output_channels

    def __call__(self, img: Any) -> Any:
        return rgb_to_grayscale(img, self.num_output_channels)

    def __repr__(self) -> str:
        return f"Grayscale(num_output_channels={self.num_output_channels})"


def _blend(image: ndarray, other: ndarray, ratio: float) -> ndarray:
    bound = 1.0 if image.dtype.kind == "f" else 255.0
    values = image.astype(xp.float32) if image.dtype.kind != "f" else image
    mixed = values.dtype.type(ratio) * values + values.dtype.type(1.0 - ratio) * other
    return xp.clip(mixed, 0, bound).astype(image.dtype)


def _check_factor(factor: float, name: str) -> None:
    if factor < 0:
        raise ValueError(f"{name}: factor is not non-negative, got {factor}")


def adjust_brightness(img: Any, brightness_factor: float) -> Any:
    """``img · f``, clamped (Pillow's ``ImageEnhance.Brightness`` on PIL images)."""
    _check_factor(brightness_factor, "adjust_brightness")
    if _is_pil(img):
        return require("PIL.ImageEnhance", "ColorJitter").Brightness(img).enhance(
            brightness_factor)
    array = _channels_first(img, "adjust_brightness")
    return from_numpy(_blend(array, xp.zeros((), dtype=xp.float32), brightness_factor))


def adjust_contrast(img: Any, contrast_factor: float) -> Any:
    """A blend with the image's mean grey level (``ImageEnhance.Contrast`` on PIL images)."""
    _check_factor(contrast_factor, "adjust_contrast")
    if _is_pil(img):
        return require("PIL.ImageEnhance", "ColorJitter").Contrast(img).enhance(contrast_factor)
    array = _channels_first(img, "adjust_contrast")
    grey = _grey(array) if array.shape[-3] == 3 else array.astype(xp.float32)
    if array.dtype.kind != "f" and array.shape[-3] == 3:
        grey = xp.floor(grey)  # torchvision casts the grey plane back to uint8 first
    mean = grey.mean(axis=(-3, -2, -1), keepdims=True)
    return from_numpy(_blend(array, mean, contrast_factor))


def adjust_saturation(img: Any, saturation_factor: float) -> Any:
    """A blend with the grey image (``ImageEnhance.Color`` on PIL images)."""
    _check_factor(saturation_factor, "adjust_saturation")
    if _is_pil(img):
        return require("PIL.ImageEnhance", "ColorJitter").Color(img).enhance(saturation_factor)
    array = _channels_first(img, "adjust_saturation")
    if array.shape[-3] == 1:
        return img
    grey = _grey(array)
    if array.dtype.kind != "f":
        grey = xp.floor(grey)
    return from_numpy(_blend(array, grey, saturation_factor))


def _rgb_to_hsv(rgb: ndarray) -> ndarray:
    red, green, blue = rgb[..., 0, :, :], rgb[..., 1, :, :], rgb[..., 2, :, :]
    value = rgb.max(axis=-3)
    chroma = value - rgb.min(axis=-3)
    grey = chroma == 0
    saturation = chroma / xp.where(grey, 1, value)
    span = xp.where(grey, 1, chroma)
    # the hue sector (0 red, 2 green, 4 blue) plus the offset inside it, in sixths of a turn
    hue = xp.where(value == red, (green - blue) / span,
                   xp.where(value == green, 2.0 + (blue - red) / span,
                            4.0 + (red - green) / span))
    hue = xp.where(grey, 0, hue)
    hue = xp.fmod(hue / 6.0 + 1.0, 1.0)
    return xp.stack([hue, saturation, value], axis=-3).astype(rgb.dtype)


def _hsv_to_rgb(hsv: ndarray) -> ndarray:
    hue, saturation, value = hsv[..., 0, :, :], hsv[..., 1, :, :], hsv[..., 2, :, :]
    sector = xp.floor(hue * 6.0)
    offset = hue * 6.0 - sector
    sector = sector.astype(xp.int64) % 6
    p = xp.clip(value * (1.0 - saturation), 0.0, 1.0)
    q = xp.clip(value * (1.0 - saturation * offset), 0.0, 1.0)
    t = xp.clip(value * (1.0 - saturation * (1.0 - offset)), 0.0, 1.0)
    # (red, green, blue) in each of the six sectors
    table = [(value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value),
             (value, p, q)]
    channels = [xp.select([sector == k for k in range(6)], [row[c] for row in table])
                for c in range(3)]
    return xp.stack(channels, axis=-3).astype(hsv.dtype)


def adjust_hue(img: Any, hue_factor: float) -> Any:
    """Turn the hue by ``hue_factor`` of a full turn (in ``[-0.5, 0.5]``), in HSV; grey
    images are returned unchanged."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"adjust_hue: hue_factor ({hue_factor}) is not in [-0.5, 0.5]")
    if _is_pil(img):
        if img.mode in {"L", "1", "I", "F"}:
            return img
        image_module = require("PIL.Image", "ColorJitter")
        hue, saturation, value = img.convert("HSV").split()
        # Pillow's hue is a byte: the shift wraps around, as a turn should
        shift = int(hue_factor * 255) % 256
        shifted = ((xp.asarray(hue).astype(xp.int64) + shift) % 256).astype(xp.uint8)
        merged = image_module.merge("HSV", (image_module.fromarray(shifted), saturation, value))
        return merged.convert(img.mode)
    array = _channels_first(img, "adjust_hue")
    if array.shape[-3] == 1:
        return img
    values = array.astype(xp.float32) / 255 if array.dtype.kind != "f" else array
    hsv = _rgb_to_hsv(values)
    hsv[..., 0, :, :] = xp.fmod(hsv[..., 0, :, :] + hsv.dtype.type(hue_factor), 1.0)
    hsv[..., 0, :, :] = xp.where(hsv[..., 0, :, :] < 0, hsv[..., 0, :, :] + 1.0,
                                 hsv[..., 0, :, :])
    rgb = _hsv_to_rgb(hsv)
    if array.dtype.kind != "f":
        return convert_image_dtype(from_numpy(rgb), array.dtype)
    return from_numpy(rgb)


def _jitter_range(value: Any, name: str, center: float, bound: tuple[float, float],
                  clip_first_on_zero: bool = True) -> tuple[float, float] | None:
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"ColorJitter: if {name} is a single number, it must be non "
                             f"negative, got {value}")
        low, high = center - float(value), center + float(value)
        if clip_first_on_zero:
            low = max(low, 0.0)
    elif isinstance(value, Sequence) and len(value) == 2:
        low, high = float(value[0]), float(value[1])
    else:
        raise TypeError(f"ColorJitter: {name} should be a single number or a list/tuple with "
                        f"length 2, got {value!r}")
    if not bound[0] <= low <= high <= bound[1]:
        raise ValueError(f"ColorJitter: {name} values should be between {bound}, but got "
                         f"{[low, high]}")
    return None if low == high == center else (low, high)


class ColorJitter(Transform):
    """Change brightness, contrast, saturation and hue by random factors, in a random order.

    A number ``b`` means the factor range ``[max(0, 1 − b), 1 + b]`` (hue: ``[−h, h]`` with
    ``h ≤ 0.5``); a pair is the range itself. Each call draws the order (a permutation of the
    four) and then one uniform factor per range that is set, and applies
    :func:`adjust_brightness`, :func:`adjust_contrast`, :func:`adjust_saturation` and
    :func:`adjust_hue` in that order.
    """

    def __init__(self, brightness: Any = 0, contrast: Any = 0, saturation: Any = 0,
                 hue: Any = 0) -> None:
        infinity = float("inf")
        self.brightness = _jitter_range(brightness, "brightness", 1, (0, infinity))
        self.contrast = _jitter_range(contrast, "contrast", 1, (0, infinity))
        self.saturation = _jitter_range(saturation, "saturation", 1, (0, infinity))
        self.hue = _jitter_range(hue, "hue", 0, (-0.5, 0.5), clip_first_on_zero=False)

    @staticmethod
    def get_params(brightness: Sequence[float] | None, contrast: Sequence[float] | None,
                   saturation: Sequence[float] | None, hue: Sequence[float] | None
                   ) -> tuple[list[int], float | None, float | None, float | None,
                              float | None]:
        """The order of the four adjustments and their factors (None where off)."""
        rng = generator()
        order = [int(k) for k in rng.permutation(4)]
        factors = [None if bounds is None else float(rng.uniform(bounds[0], bounds[1]))
                   for bounds in (brightness, contrast, saturation, hue)]
        return order, factors[0], factors[1], factors[2], factors[3]

    def __call__(self, img: Any) -> Any:
        order, *factors = self.get_params(self.brightness, self.contrast, self.saturation,
                                          self.hue)
        adjust = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
        for k in order:
            factor = factors[k]
            if factor is not None:
                img = adjust[k](img, factor)
        return img

    def __repr__(self) -> str:
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue})")
