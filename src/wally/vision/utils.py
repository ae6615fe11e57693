"""``torchvision.utils``: ``make_grid`` and ``save_image``.

>>> tuple(make_grid(wally.rand(10, 3, 8, 8), nrow=5).shape)
(3, 22, 52)
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import IO, Any

from wally.backend import ndarray, xp
from wally.creation import from_numpy
from wally.data._optional import require
from wally.io.atomic import atomic_write
from wally.tensor import Tensor

__all__ = ["make_grid", "save_image"]


def _as_batch(tensor: Any) -> ndarray:
    """``tensor`` (a Tensor or a list of ``(C, H, W)`` Tensors) as an array ``(N, C, H, W)``
    with C = 3 where it had one channel, as torchvision reshapes it."""
    if isinstance(tensor, list | tuple):
        if not tensor or not all(isinstance(t, Tensor) for t in tensor):
            raise TypeError("make_grid: expected a Tensor or a non-empty list of Tensors, got "
                            f"{[type(t).__name__ for t in tensor]}")
        array = xp.stack([t.array for t in tensor])
    elif isinstance(tensor, Tensor):
        array = tensor.array
    else:
        raise TypeError(f"make_grid: expected a Tensor or a list of Tensors, got "
                        f"{type(tensor).__name__}")
    if array.ndim == 2:
        array = array[None]
    if array.ndim == 3:
        array = (xp.concatenate([array] * 3) if array.shape[0] == 1 else array)[None]
    if array.ndim != 4:
        raise ValueError(f"make_grid: expected a tensor of 2, 3 or 4 dimensions, got shape "
                         f"{tuple(array.shape)}")
    if array.shape[1] == 1:
        array = xp.concatenate([array] * 3, axis=1)
    return array


def _scale(array: ndarray, value_range: tuple[float, float] | None) -> ndarray:
    """``(clamp(x, low, high) − low) / max(high − low, 1e-5)``, the range defaulting to the
    array's own min and max."""
    if value_range is None:
        low, high = float(array.min()), float(array.max())
    else:
        low, high = value_range
    clamped = xp.clip(array, low, high)
    return (clamped - array.dtype.type(low)) / array.dtype.type(max(high - low, 1e-5))


def make_grid(tensor: Any, nrow: int = 8, padding: int = 2, normalize: bool = False,
              value_range: tuple[float, float] | None = None, scale_each: bool = False,
              pad_value: float = 0.0) -> Tensor:
    """Tile a batch of images into one image, ``nrow`` to a row, ``padding`` pixels of
    ``pad_value`` around each, as torchvision.

    ``normalize`` scales to [0, 1] by ``value_range`` (default: the min and max of the whole
    batch, or of each image with ``scale_each``). One-channel images become three (grey RGB),
    and a single image is returned as it is (after that and ``normalize``). The grid is a new
    Tensor, not connected to the autograd graph.

    Shape:
        ``(N, C, H, W)`` → ``(C, rows·(H + p) + p, columns·(W + p) + p)`` with
        ``columns = min(nrow, N)``, ``rows = ⌈N / columns⌉``, ``p = padding``.
    """
    if value_range is not None and (not isinstance(value_range, tuple | list)
                                    or len(value_range) != 2):
        raise TypeError(f"make_grid: value_range has to be a tuple (min, max) if specified, "
                        f"got {value_range!r}")
    array = _as_batch(tensor)
    if normalize:
        array = array.astype(xp.float32) if array.dtype.kind != "f" else array
        if scale_each:
            array = xp.stack([_scale(image, value_range) for image in array])
        else:
            array = _scale(array, value_range)
    if array.shape[0] == 1:
        return from_numpy(xp.ascontiguousarray(array[0]))
    count, channels, height, width = array.shape
    columns = min(nrow, count)
    rows = int(math.ceil(count / columns))
    cell_height, cell_width = height + padding, width + padding
    grid = xp.full((channels, cell_height * rows + padding, cell_width * columns + padding),
                   pad_value, dtype=array.dtype)
    for k in range(count):
        row, column = divmod(k, columns)
        top, left = row * cell_height + padding, column * cell_width + padding
        grid[:, top:top + height, left:left + width] = array[k]
    return from_numpy(grid)


def save_image(tensor: Any, fp: str | os.PathLike[str] | IO[bytes], format: str | None = None,
               **kwargs: Any) -> None:
    """Write ``make_grid(tensor, **kwargs)`` as an image file (Pillow), values in [0, 1]
    mapped to bytes by ``clamp(x · 255 + 0.5, 0, 255)`` and truncation, as torchvision.

    A path is written atomically (a temporary file, then a rename: readers see the old file or
    the whole new one); the format comes from ``format`` or the file's suffix. A file object
    is written to directly.
    """
    image_module = require("PIL.Image", "save_image")
    grid = make_grid(tensor, **kwargs).array
    pixels = xp.clip(grid * 255 + 0.5, 0, 255).transpose(1, 2, 0).astype(xp.uint8)
    picture = image_module.fromarray(xp.ascontiguousarray(pixels))
    if isinstance(fp, str | os.PathLike):
        path = Path(fp)
        name = format or image_module.registered_extensions().get(path.suffix.lower())
        if name is None:
            raise ValueError(f"save_image: cannot tell the image format of {str(path)!r} from "
                             f"its suffix; pass format= (e.g. 'PNG')")
        buffer = io.BytesIO()
        picture.save(buffer, format=name)
        atomic_write(path, buffer.getvalue())
    else:
        picture.save(fp, format=format)
