"""Image transforms with torchvision's names: ``Compose``, ``ToTensor``, ``Normalize``, ``Resize``,
``RandomCrop``, ``RandomHorizontalFlip``, ``Lambda``.

Layouts: a NumPy array is an image as stored, ``(H, W)`` or ``(H, W, C)`` (uint8 in [0, 255] or
float); a wally Tensor is an image as a network sees it, ``(..., H, W)`` (channels first, after
``ToTensor``). PIL images are accepted where torchvision accepts them (Pillow is needed only for
``Resize`` and PIL input). Random transforms draw from :func:`wally.data.generator`: wally's
global generator, or inside a DataLoader its per-epoch generator.

>>> transform = Compose([RandomCrop(28, padding=4), ToTensor(), Normalize((0.5,), (0.5,))])
>>> image = wally.backend.xp.zeros((28, 28), dtype="uint8")
>>> transform(image).shape
wally.Size([1, 28, 28])
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any

from wally.backend import ndarray, xp
from wally.creation import from_numpy
from wally.data._optional import require
from wally.data._random import generator
from wally.tensor import Tensor

# A batch in flight through the fast path: an array of N images and whether they are
# channel-first (tensor layout, after ToTensor) or as stored.
_Batch = tuple[ndarray, bool]


class Transform:
    """Base class. ``_batch`` transforms a stack of N images at once and returns what applying
    ``__call__`` to each image and stacking would give, or ``None`` where it cannot (random
    transforms: drawing per batch would change the order of the random draws)."""

    def __call__(self, img: Any) -> Any:
        raise NotImplementedError

    def _batch(self, batch: _Batch) -> _Batch | None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _is_pil(img: Any) -> bool:
    return type(img).__module__.startswith("PIL.") and hasattr(img, "getbands")


def _describe(img: Any) -> str:
    shape = getattr(img, "shape", None)
    return f"{type(img).__name__} of shape {tuple(shape)}" if shape is not None else (
        type(img).__name__)


class Compose(Transform):
    """Apply transforms one after the other.

    >>> Compose([ToTensor(), Lambda(lambda x: x * 2)])(xp.full((2, 2), 255, "uint8")).tolist()
    [[[2.0, 2.0], [2.0, 2.0]]]
    """

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for transform in self.transforms:
            img = transform(img)
        return img

    def _batch(self, batch: _Batch) -> _Batch | None:
        for transform in self.transforms:
            if not isinstance(transform, Transform):
                return None
            result = transform._batch(batch)
            if result is None:
                return None
            batch = result
        return batch

    def __repr__(self) -> str:
        lines = "".join(f"\n    {transform}" for transform in self.transforms)
        return f"Compose({lines}\n)"


class ToTensor(Transform):
    """An image as stored → a channel-first wally Tensor.

    uint8 ``(H, W)`` or ``(H, W, C)`` arrays (and PIL images) become float32 ``(C, H, W)``
    divided by 255, so in [0, 1]; float arrays are transposed the same way but their values and
    dtype are kept, as in torchvision; bool arrays become float32 0/1.

    Shape:
        ``(H, W)`` → ``(1, H, W)``; ``(H, W, C)`` → ``(C, H, W)``.

    >>> ToTensor()(xp.array([[0, 255]], dtype="uint8"))
    tensor([[[0., 1.]]])
    """

    def __call__(self, pic: Any) -> Tensor:
        if _is_pil(pic):
            mode = pic.mode
            pic = xp.asarray(pic)
            if mode == "1":
                pic = pic.astype(xp.uint8) * 255
        if not isinstance(pic, ndarray):
            raise TypeError(f"ToTensor: expected a NumPy array (H, W) or (H, W, C) or a PIL "
                            f"image, got {_describe(pic)}")
        if pic.ndim not in (2, 3):
            raise ValueError(f"ToTensor: expected an image of shape (H, W) or (H, W, C), got "
                             f"shape {pic.shape}")
        array, _ = self._convert(pic[None], channel_first=False)
        return from_numpy(array[0])

    def _batch(self, batch: _Batch) -> _Batch | None:
        array, channel_first = batch
        if channel_first or array.ndim not in (3, 4):
            return None
        return self._convert(array, channel_first)

    @staticmethod
    def _convert(array: ndarray, channel_first: bool) -> _Batch:
        if array.ndim == 3:
            array = array[:, None]
        else:
            array = array.transpose(0, 3, 1, 2)
        if array.dtype == xp.uint8:
            array = array.astype(xp.float32)
            array /= 255
        elif array.dtype == xp.bool_:
            array = array.astype(xp.float32)
        return xp.ascontiguousarray(array), True


class Normalize(Transform):
    """``output[c] = (input[c] - mean[c]) / std[c]`` on a float ``(..., C, H, W)`` Tensor.

    ``mean`` and ``std`` have one value per channel (or one for all); they are cast to the
    input's dtype, so float32 stays float32.

    >>> Normalize((0.5,), (0.25,))(wally.ones(1, 1, 2)).tolist()
    [[[2.0, 2.0]]]
    """

    def __init__(self, mean: Sequence[float] | float, std: Sequence[float] | float,
                 inplace: bool = False) -> None:
        self.mean, self.std = mean, std  # as given, for the printed form (torchvision's)
        self._mean = [float(m) for m in (mean if isinstance(mean, Sequence) else [mean])]
        self._std = [float(s) for s in (std if isinstance(std, Sequence) else [std])]
        if any(s == 0 for s in self._std):
            raise ValueError(f"Normalize: std evaluated to zero, leading to division by zero "
                             f"(std={self._std})")
        self.inplace = inplace

    def __call__(self, tensor: Any) -> Tensor:
        if not isinstance(tensor, Tensor):
            raise TypeError(f"Normalize: expected a Tensor (C, H, W); apply ToTensor first, got "
                            f"{_describe(tensor)}")
        if tensor.ndim < 3:
            raise ValueError(f"Normalize: expected a tensor image of shape (..., C, H, W), got "
                             f"shape {tensor.shape}")
        array = self._normalize(tensor.array)
        if self.inplace:
            tensor.array[...] = array
            tensor._bump_version()
            return tensor
        return from_numpy(array)

    def _batch(self, batch: _Batch) -> _Batch | None:
        array, channel_first = batch
        if not channel_first:
            return None
        return self._normalize(array), True

    def _normalize(self, array: ndarray) -> ndarray:
        if array.dtype.kind != "f":
            raise TypeError(f"Normalize: input tensor should be a float tensor, got {array.dtype}")
        channels = array.shape[-3]
        for name, values in (("mean", self._mean), ("std", self._std)):
            if len(values) not in (1, channels):
                raise ValueError(f"Normalize: {name} has {len(values)} values for an image with "
                                 f"{channels} channels")
        mean = xp.asarray(self._mean, dtype=array.dtype).reshape(-1, 1, 1)
        std = xp.asarray(self._std, dtype=array.dtype).reshape(-1, 1, 1)
        return (array - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class InterpolationMode(enum.Enum):
    """Resampling filters for :class:`Resize` (Pillow's, under torchvision's names)."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL_FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}


def _interpolation(mode: Any) -> InterpolationMode:
    if isinstance(mode, InterpolationMode):
        return mode
    if isinstance(mode, str):
        return InterpolationMode(mode.lower())
    if isinstance(mode, int):  # a Pillow constant such as Image.BILINEAR
        names = {number: name for name, number in _PIL_FILTERS.items()}
        if mode in names:
            return InterpolationMode(names[mode])
    raise ValueError(f"Resize: unknown interpolation {mode!r}; expected one of "
                     f"{[m.value for m in InterpolationMode]}")


def _resized_size(height: int, width: int, size: Sequence[int],
                  max_size: int | None) -> tuple[int, int]:
    """torchvision's rule: one number sets the shorter side (aspect kept), two set (h, w)."""
    if len(size) == 2:
        return size[0], size[1]
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size[0], int(size[0] * long / short)
    if max_size is not None:
        if max_size <= size[0]:
            raise ValueError(f"Resize: max_size = {max_size} must be strictly greater than the "
                             f"requested size for the smaller edge, {size[0]}")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if width <= height else (new_short, new_long)


class Resize(Transform):
    """Resize an image with Pillow (bilinear by default, antialiased when shrinking).

    ``size=(h, w)`` sets both sides; ``size=s`` (an int) sets the shorter side to ``s`` and the
    longer to ``int(s * long / short)``, as torchvision. uint8 images are resized as Pillow
    ``L``/``RGB``/``RGBA`` images (or channel by channel); float images channel by channel in
    Pillow's float32 ``F`` mode, then cast back to their dtype. Works on NumPy images
    ``(H, W[, C])``, Tensors ``(..., H, W)`` and PIL images. ``antialias`` is accepted for
    torchvision compatibility: Pillow always antialiases.

    Shape:
        ``(H, W)`` → ``(h, w)`` with ``(h, w)`` as above (channel axes unchanged).

    >>> Resize(14)(xp.zeros((28, 56), dtype="uint8")).shape
    wally.Size([14, 28])
    """

    def __init__(self, size: int | Sequence[int], interpolation: Any = InterpolationMode.BILINEAR,
                 max_size: int | None = None, antialias: bool | None = True) -> None:
        sizes = [size] if isinstance(size, (int, xp.integer)) else list(size)
        if len(sizes) not in (1, 2) or any(int(s) <= 0 for s in sizes):
            raise ValueError(f"Resize: size must be a positive int or a (height, width) pair, got "
                             f"{size!r}")
        if len(sizes) == 2 and max_size is not None:
            raise ValueError("Resize: max_size is only supported when size is a single int")
        self.size = size
        self._sizes = [int(s) for s in sizes]
        self.interpolation = _interpolation(interpolation)
        self.max_size = max_size
        self.antialias = antialias

    def __call__(self, img: Any) -> Any:
        if _is_pil(img):
            height, width = img.height, img.width
            new_height, new_width = _resized_size(height, width, self._sizes, self.max_size)
            return img.resize((new_width, new_height), _PIL_FILTERS[self.interpolation.value])
        if isinstance(img, Tensor):
            if img.ndim < 2:
                raise ValueError(f"Resize: expected a tensor image (..., H, W), got shape "
                                 f"{img.shape}")
            return from_numpy(self._resize(img.array, channel_first=True))
        if isinstance(img, ndarray):
            if img.ndim not in (2, 3):
                raise ValueError(f"Resize: expected an image of shape (H, W) or (H, W, C), got "
                                 f"shape {img.shape}")
            return self._resize(img, channel_first=False)
        raise TypeError(f"Resize: expected a NumPy array, a Tensor or a PIL image, got "
                        f"{_describe(img)}")

    def _batch(self, batch: _Batch) -> _Batch | None:
        array, channel_first = batch
        return xp.stack([self._resize(image, channel_first) for image in array]), channel_first

    def _resize(self, array: ndarray, channel_first: bool) -> ndarray:
        image_module = require("PIL.Image", "transforms.Resize")
        if channel_first:
            height, width = array.shape[-2:]
        else:
            height, width = array.shape[:2]
        new_height, new_width = _resized_size(height, width, self._sizes, self.max_size)
        resample = _PIL_FILTERS[self.interpolation.value]

        def resize_plane(plane: ndarray) -> ndarray:
            if plane.dtype == xp.uint8:
                picture = image_module.fromarray(plane)
                return xp.asarray(picture.resize((new_width, new_height), resample))
            if plane.dtype.kind != "f":
                raise TypeError(f"Resize: expected a uint8 or float image, got {plane.dtype}")
            picture = image_module.fromarray(xp.ascontiguousarray(plane, dtype=xp.float32))
            return xp.asarray(picture.resize((new_width, new_height), resample)).astype(
                plane.dtype, copy=False)

        if channel_first:
            planes = array.reshape((-1, height, width))
            out = xp.stack([resize_plane(plane) for plane in planes])
            return out.reshape(array.shape[:-2] + (new_height, new_width))
        if array.ndim == 2:
            return resize_plane(array)
        if array.dtype == xp.uint8 and array.shape[2] in (3, 4):
            return resize_plane(xp.ascontiguousarray(array))
        return xp.stack([resize_plane(array[:, :, c]) for c in range(array.shape[2])], axis=2)

    def __repr__(self) -> str:
        return (f"Resize(size={self.size}, interpolation={self.interpolation.value}, "
                f"max_size={self.max_size}, antialias={self.antialias})")


def _pair(size: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(size, (int, xp.integer)):
        return int(size), int(size)
    values = [int(s) for s in size]
    if len(values) == 1:
        return values[0], values[0]
    if len(values) != 2:
        raise ValueError(f"{name}: size must be an int or a (height, width) pair, got {size!r}")
    return values[0], values[1]


def _padding(padding: int | Sequence[int],
             name: str = "RandomCrop") -> tuple[int, int, int, int]:
    """torchvision's padding forms → (left, top, right, bottom)."""
    if isinstance(padding, (int, xp.integer)):
        values = [int(padding)] * 4
    else:
        values = [int(p) for p in padding]
        if len(values) == 1:
            values = values * 4
        elif len(values) == 2:
            values = [values[0], values[1], values[0], values[1]]
        elif len(values) != 4:
            raise ValueError(f"{name}: padding must be an int or a sequence of 1, 2 or 4 "
                             f"ints, got {padding!r}")
    if any(v < 0 for v in values):
        raise ValueError(f"{name}: padding must be non-negative, got {padding!r}")
    return values[0], values[1], values[2], values[3]


class _Layout:
    """Where height, width and channels are in an image, and how to hand the result back."""

    def __init__(self, img: Any, name: str) -> None:
        self.original, self.name = img, name
        if _is_pil(img):
            self.kind, array = "pil", xp.asarray(img)
        elif isinstance(img, Tensor):
            self.kind, array = "tensor", img.array
        elif isinstance(img, ndarray):
            self.kind, array = "array", img
        else:
            raise TypeError(f"{name}: expected a NumPy array, a Tensor or a PIL image, got "
                            f"{_describe(img)}")
        if self.kind == "tensor":
            if array.ndim < 2:
                raise ValueError(f"{name}: expected a tensor image (..., H, W), got shape "
                                 f"{array.shape}")
            self.h_axis, self.w_axis = array.ndim - 2, array.ndim - 1
            self.c_axis: int | None = array.ndim - 3 if array.ndim >= 3 else None
        else:
            if array.ndim not in (2, 3):
                raise ValueError(f"{name}: expected an image of shape (H, W) or (H, W, C), got "
                                 f"shape {array.shape}")
            self.h_axis, self.w_axis = 0, 1
            self.c_axis = 2 if array.ndim == 3 else None
        self.array = array

    def wrap(self, array: ndarray) -> Any:
        if self.kind == "tensor":
            return from_numpy(array)
        if self.kind == "pil":
            return require("PIL.Image", "PIL input").fromarray(array)
        return array


def _pad(layout: _Layout, array: ndarray, left: int, top: int, right: int, bottom: int,
         fill: Any, mode: Any) -> ndarray:
    widths = [(0, 0)] * array.ndim
    widths[layout.h_axis], widths[layout.w_axis] = (top, bottom), (left, right)
    if mode != "constant":
        return xp.pad(array, widths, mode=mode)
    shape = tuple(n + before + after for n, (before, after) in zip(array.shape, widths))
    out = xp.empty(shape, dtype=array.dtype)
    fill_values = xp.asarray(fill)
    if fill_values.ndim:  # one value per channel
        if layout.c_axis is None or fill_values.size not in (1, array.shape[layout.c_axis]):
            raise ValueError(f"{layout.name}: fill {fill!r} does not match an image of shape "
                             f"{array.shape}")
        broadcast = [1] * array.ndim
        if layout.c_axis is not None:
            broadcast[layout.c_axis] = -1
        fill_values = fill_values.reshape(broadcast)
    out[...] = fill_values.astype(array.dtype)
    inside = [slice(None)] * array.ndim
    inside[layout.h_axis] = slice(top, top + array.shape[layout.h_axis])
    inside[layout.w_axis] = slice(left, left + array.shape[layout.w_axis])
    out[tuple(inside)] = array
    return out


class RandomCrop(Transform):
    """Crop a random ``size`` window, after optional padding, as torchvision.

    ``padding`` is an int (all sides), ``(left/right, top/bottom)`` or
    ``(left, top, right, bottom)``; ``pad_if_needed`` pads an image smaller than ``size`` on
    both sides; ``padding_mode`` is ``'constant'`` (with ``fill``, a number or one per
    channel), ``'edge'``, ``'reflect'`` or ``'symmetric'``. The window's top-left corner
    ``(i, j)`` is drawn uniformly (two integer draws; none when the window is the whole image).

    Shape:
        ``(H, W[, C])`` or ``(..., H, W)`` → the same with ``H, W = size``.

    >>> RandomCrop(24, padding=2)(xp.zeros((28, 28, 3), dtype="uint8")).shape
    wally.Size([24, 24, 3])
    """

    _MODES = ("constant", "edge", "reflect", "symmetric")

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] | None = None,
                 pad_if_needed: bool = False, fill: Any = 0,
                 padding_mode: str = "constant") -> None:
        if padding_mode not in self._MODES:
            raise ValueError(f"RandomCrop: padding_mode must be one of {self._MODES}, got "
                             f"{padding_mode!r}")
        self.size = _pair(size, "RandomCrop")
        self.padding = padding
        self._padding = None if padding is None else _padding(padding)
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    def __call__(self, img: Any) -> Any:
        layout = _Layout(img, "RandomCrop")
        array = layout.array
        if self._padding is not None:
            array = _pad(layout, array, *self._padding, self.fill, self.padding_mode)
        crop_height, crop_width = self.size
        if self.pad_if_needed and array.shape[layout.w_axis] < crop_width:
            extra = crop_width - array.shape[layout.w_axis]
            array = _pad(layout, array, extra, 0, extra, 0, self.fill, self.padding_mode)
        if self.pad_if_needed and array.shape[layout.h_axis] < crop_height:
            extra = crop_height - array.shape[layout.h_axis]
            array = _pad(layout, array, 0, extra, 0, extra, self.fill, self.padding_mode)
        top, left = self.get_params(array.shape[layout.h_axis], array.shape[layout.w_axis],
                                    self.size)
        window = [slice(None)] * array.ndim
        window[layout.h_axis] = slice(top, top + crop_height)
        window[layout.w_axis] = slice(left, left + crop_width)
        return layout.wrap(xp.ascontiguousarray(array[tuple(window)]))

    @staticmethod
    def get_params(height: int, width: int, size: tuple[int, int]) -> tuple[int, int]:
        """The random top-left corner ``(i, j)`` of a ``size`` window in a ``height × width``
        image (``(0, 0)``, with no draw, when the window is the whole image)."""
        crop_height, crop_width = size
        if height < crop_height or width < crop_width:
            raise ValueError(f"RandomCrop: required crop size {(crop_height, crop_width)} is "
                             f"larger than the (padded) input image size {(height, width)}")
        if height == crop_height and width == crop_width:
            return 0, 0
        rng = generator()
        top = int(rng.integers(0, height - crop_height + 1))
        left = int(rng.integers(0, width - crop_width + 1))
        return top, left

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip(Transform):
    """Mirror the image left-right with probability ``p`` (one uniform draw per call).

    >>> RandomHorizontalFlip(p=1.0)(xp.array([[1, 2, 3]], dtype="uint8"))
    array([[3, 2, 1]], dtype=uint8)
    """

    def __init__(self, p: float = 0.5) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p}")
        self.p = p

    def __call__(self, img: Any) -> Any:
        layout = _Layout(img, "RandomHorizontalFlip")
        if generator().random() < self.p:
            return layout.wrap(xp.ascontiguousarray(xp.flip(layout.array, axis=layout.w_axis)))
        return img

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Lambda(Transform):
    """Apply a user function as a transform.

    >>> Lambda(lambda x: x + 1)(1)
    2
    """

    def __init__(self, lambd: Callable[[Any], Any]) -> None:
        if not callable(lambd):
            raise TypeError(f"Lambda: argument should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img: Any) -> Any:
        return self.lambd(img)


__all__ = ["Compose", "ToTensor", "Normalize", "Resize", "RandomCrop", "RandomHorizontalFlip",
           "Lambda", "InterpolationMode"]
