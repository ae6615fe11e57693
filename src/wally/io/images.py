"""Reading image files that users hand to wally, safely (Pillow does the decoding).

What is promised, for any file at all:

* **Only raster formats that decode in-process.** Pillow picks a decoder by the file's
  content, not its name, and some of its plugins start programs (EPS and PostScript run
  Ghostscript, so a PostScript file named ``photo.png`` would run ``gs``). Pillow is only ever
  asked for the formats in :data:`IMAGE_FORMATS`: PNG, JPEG, BMP, GIF, TIFF, WebP and the
  Netpbm family (PBM/PGM/PPM). They are what photographs, scans, screenshots and the datasets'
  own pictures come in; each is decoded by Pillow's own code or a library linked into it (zlib,
  libjpeg, libtiff, libwebp), starts no program, and states in its header the size it decodes
  to. Everything else is refused before decoding, naming the format when it is recognisable:
  EPS/PostScript and PDF (Ghostscript), ICO/CUR/ICNS (containers whose embedded PNG may be far
  larger than the directory says: a 13000×13000 PNG in an ICO), JPEG 2000, PSD, TGA, PCX, DDS
  and Pillow's other rarely used decoders.
* **Regular files only, at most** :data:`MAX_IMAGE_BYTES` **bytes**, checked on the opened file
  before a byte is read (:func:`wally.io.files.open_regular`): a FIFO, ``/dev/zero`` or a
  directory is refused at once. Pillow then gets the file's bytes, not the file: its decoders
  read chunks of whatever length a header claims (a PNG chunk may claim 2 GB), and a file
  object's ``read(n)`` allocates ``n`` bytes before reading.
* **At most** :data:`MAX_IMAGE_PIXELS` **pixels**, checked from the header before anything is
  decoded. For the formats above the header's size is the size decoded (GIF: the logical
  screen; TIFF: the first page; WebP: the canvas), so decoding one image needs at most
  :data:`DECODE_BYTES_PER_PIXEL` bytes a pixel besides the file's bytes: at most
  ``16 · 2**25 + 2**27`` = 671,088,640 bytes (640 MiB) at the cap, measured with the peak RSS
  for every format in the list (WebP's decoder is the hungriest, 16.2 bytes a pixel; PNG 7.5).
  Only the first frame of an animation or the first page of a TIFF is decoded.

Whatever Pillow raises on a corrupt file becomes one :class:`DatasetFormatError` naming the file.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any

from wally.backend import ndarray, xp
from wally.data.errors import DatasetFormatError
from wally.io.files import read_regular

__all__ = ["IMAGE_FORMATS", "MAX_IMAGE_PIXELS", "MAX_IMAGE_BYTES", "DECODE_BYTES_PER_PIXEL",
           "pil_image", "read_image", "image_size"]

MAX_IMAGE_PIXELS = 1 << 25
"""The most pixels an image file may have (33.5 million, 8192 × 4096): far above any image a
CNN here is fed."""
MAX_IMAGE_BYTES = 4 * MAX_IMAGE_PIXELS
"""The largest image file read (128 MiB): an uncompressed RGBA image at the pixel cap."""
DECODE_BYTES_PER_PIXEL = 16
"""What decoding needs per pixel at most, besides the file's bytes (WebP's decoder: 16.2 bytes
a pixel measured at the cap, JPEG 10, PNG, TIFF and GIF 7.5 to 8.7)."""

IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
"""The Pillow formats wally decodes (``PPM`` is Pillow's plugin for PBM, PGM and PPM)."""
_FORMAT_NAMES = "PNG, JPEG, BMP, GIF, TIFF, WebP and PBM/PGM/PPM"

# Formats refused, recognised by their first bytes so that the refusal can name them.
_REFUSED_MAGIC = (
    (b"%!", "PostScript"),
    (b"\xc5\xd0\xd3\xc6", "EPS (encapsulated PostScript)"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO (Windows icon)"),
    (b"\x00\x00\x02\x00", "CUR (Windows cursor)"),
    (b"icns", "ICNS (macOS icon)"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"8BPS", "PSD (Photoshop)"),
    (b"DDS ", "DDS"),
    (b"qoif", "QOI"),
    (b"<?xml", "XML (SVG?)"),
    (b"<svg", "SVG"),
)
_BAND_BYTES = 1 << 22  # rows copied out of Pillow at a time


def pil_image() -> Any:
    """Pillow's ``Image`` module, or an ImportError that says how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading and resizing images needs Pillow, which is not installed: "
                          "pip install pillow  (or pip install 'wally-cnn[data]')") from None
    return Image


def _refused_format(data: bytes) -> str | None:
    for magic, name in _REFUSED_MAGIC:
        if data.startswith(magic):
            return name
    return None


def _open(image_module: Any, path: str | os.PathLike[str], data: bytes) -> Any:
    """Pillow's image for ``data``, opened with the allowed formats only, its size checked."""
    refused = _refused_format(data)
    if refused is not None:
        raise DatasetFormatError(f"{path}: the file holds {refused}, which wally does not "
                                 f"read (it reads {_FORMAT_NAMES} images)")
    try:
        with warnings.catch_warnings():  # the size is checked below, against a lower cap
            warnings.simplefilter("ignore", image_module.DecompressionBombWarning)
            image = image_module.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))
    except image_module.UnidentifiedImageError:
        raise DatasetFormatError(f"{path}: not an image wally reads (it reads {_FORMAT_NAMES} "
                                 "images)") from None
    except image_module.DecompressionBombError as error:
        raise DatasetFormatError(f"{path}: {error}, over wally's limit of "
                                 f"{MAX_IMAGE_PIXELS:,} pixels") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS or width < 1 or height < 1:
        image.close()
        raise DatasetFormatError(
            f"{path}: {width}x{height} pixels, expected from 1x1 to the {MAX_IMAGE_PIXELS:,} "
            "pixels wally reads (a decompression bomb?)")
    return image




def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` of an image file, from its header (nothing is decoded).

    Refuses what :func:`read_image` refuses, except for a corrupt body.
    """
    image_module = pil_image()
    data = read_regular(path, "image", MAX_IMAGE_BYTES)
    try:
        with _open(image_module, path, data) as image:
            return image.size
    except DatasetFormatError:
        raise
    except Exception as error:  # Pillow's header parsers raise many kinds on a corrupt file
        raise DatasetFormatError(
            f"{path}: not an image wally can read ({type(error).__name__}: {error})"
        ) from None


def _as_array(picture: Any) -> ndarray:
    """Pillow's ``L`` or ``RGB`` image as a uint8 array, copied out a band of rows at a time
    (``numpy.asarray`` would first build the whole image as ``bytes``)."""
    width, height = picture.size
    channels = len(picture.getbands())
    out = xp.empty((height, width, channels) if channels > 1 else (height, width), xp.uint8)
    step = max(1, _BAND_BYTES // (width * channels))
    for top in range(0, height, step):
        bottom = min(height, top + step)
        out[top:bottom] = xp.asarray(picture.crop((0, top, width, bottom)), dtype=xp.uint8)
    return out


def read_image(path: str | os.PathLike[str], mode: str = "RGB",
               size: tuple[int, int] | None = None) -> ndarray:
    """An image file as a uint8 array: ``(H, W, 3)`` for ``mode='RGB'``, ``(H, W)`` for
    ``'L'``; resized bilinearly to ``size`` = (width, height) when given.

    Memory: the file's bytes plus at most :data:`DECODE_BYTES_PER_PIXEL` bytes per pixel while
    decoding (module docs), then the array returned.

    Raises:
        OSError: the file is missing or unreadable.
        RefusedFileError: not a regular file, or more than :data:`MAX_IMAGE_BYTES` bytes.
        DatasetFormatError: not in one of :data:`IMAGE_FORMATS` (the message names the format
            when it is recognisable), corrupt, or more than :data:`MAX_IMAGE_PIXELS` pixels.
    """
    image_module = pil_image()
    data = read_regular(path, "image", MAX_IMAGE_BYTES)
    try:
        with _open(image_module, path, data) as image:
            picture = image if image.mode == mode else image.convert(mode)
            if size is not None:
                picture = picture.resize(size, image_module.Resampling.BILINEAR)
            return _as_array(picture)
    except DatasetFormatError:
        raise
    except Exception as error:  # Pillow's decoders raise many kinds on a corrupt file
        raise DatasetFormatError(
            f"{path}: not an image wally can read ({type(error).__name__}: {error})"
        ) from None
