"""Reading image files that users hand to wally, safely (Pillow does the decoding).

Pillow gets the file's bytes, not the file: its decoders read chunks of whatever length a
header claims (a PNG chunk may claim 2 GB), and a file object's ``read(n)`` allocates ``n``
bytes before reading. The pixel count is checked from the header before anything is decoded,
and whatever Pillow raises on a corrupt file becomes one :class:`DatasetFormatError`.
"""

from __future__ import annotations

import io
import os
from typing import Any

from wally.backend import ndarray, xp
from wally.data.errors import DatasetFormatError

MAX_IMAGE_PIXELS = 1 << 25  # 33.5 megapixels: far above any image a CNN here is fed
MAX_IMAGE_BYTES = 4 * MAX_IMAGE_PIXELS


def pil_image() -> Any:
    """Pillow's ``Image`` module, or an ImportError that says how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading and resizing images needs Pillow, which is not installed: "
                          "pip install pillow  (or pip install 'wally-cnn[data]')") from None
    return Image


def read_image(path: str | os.PathLike[str], mode: str = "RGB",
               size: tuple[int, int] | None = None) -> ndarray:
    """An image file as a uint8 array: ``(H, W, 3)`` for ``mode='RGB'``, ``(H, W)`` for
    ``'L'``; resized bilinearly to ``size`` = (width, height) when given.

    Raises:
        OSError: the file is missing or unreadable.
        DatasetFormatError: not an image Pillow can decode, or larger than
            :data:`MAX_IMAGE_PIXELS` pixels / :data:`MAX_IMAGE_BYTES` bytes.
    """
    image_module = pil_image()
    with open(path, "rb") as file:
        length = os.fstat(file.fileno()).st_size
        if length > MAX_IMAGE_BYTES:
            raise DatasetFormatError(f"{path}: {length:,} bytes, more than the "
                                     f"{MAX_IMAGE_BYTES:,} wally reads from an image file")
        data = file.read()
    try:
        with image_module.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise DatasetFormatError(
                    f"{path}: {image.width}x{image.height} pixels, more than the "
                    f"{MAX_IMAGE_PIXELS:,} wally reads (a decompression bomb?)")
            picture = image.convert(mode)
            if size is not None:
                picture = picture.resize(size, image_module.Resampling.BILINEAR)
            return xp.asarray(picture, dtype=xp.uint8)
    except DatasetFormatError:
        raise
    except Exception as error:  # Pillow's decoders raise many kinds on a corrupt file
        raise DatasetFormatError(
            f"{path}: not an image wally can read ({type(error).__name__}: {error})"
        ) from None
