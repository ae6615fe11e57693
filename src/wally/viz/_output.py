"""What every picture shares: matplotlib on demand, a figure without pyplot, an atomic PNG.

Figures are made with ``matplotlib.figure.Figure`` and rendered by the Agg canvas directly, so
drawing a picture never touches pyplot's global state or the user's backend (a notebook keeps
its own). The PNG is written from the very pixels that were measured for :class:`Picture`, so
its coordinate maps are exact.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wally.backend import ndarray, xp
from wally.io.atomic import atomic_write

EXTRA = "wally-cnn[train]"  # the extra that brings matplotlib and Pillow


def matplotlib_figure(figsize: tuple[float, float], dpi: int = 100) -> Any:
    """A new ``matplotlib.figure.Figure`` on an Agg canvas; a clear error without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "wally.viz draws its pictures with matplotlib, which is not installed: "
            f"pip install matplotlib  (or pip install '{EXTRA}')"
        ) from None
    figure = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


@dataclass(frozen=True)
class Panel:
    """One axes of a picture: where it lies in the PNG and how its data coordinates map there.

    ``bbox`` is ``(left, top, right, bottom)`` in PNG pixels. A data point ``(x, y)`` is drawn
    at PNG pixel ``(column, row) = to_pixel(x, y)`` (linear axes; for an image panel, ``x`` and
    ``y`` are the image's column and row coordinates, pixel ``(r, c)`` spanning
    ``[c − ½, c + ½] × [r − ½, r + ½]``).
    """

    bbox: tuple[float, float, float, float]
    scale: tuple[float, float]
    offset: tuple[float, float]

    def to_pixel(self, x: float, y: float) -> tuple[int, int]:
        column = self.scale[0] * x + self.offset[0]
        row = self.scale[1] * y + self.offset[1]
        return int(xp.floor(column)), int(xp.floor(row))


@dataclass
class Picture:
    """A written picture: its path, its size in pixels, its panels by name, and anything else
    a caller may want to check (``info``)."""

    path: Path
    width: int
    height: int
    panels: dict[str, Panel] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def _repr_png_(self) -> bytes:
        """The PNG's bytes, so that a picture ending a Jupyter cell is shown inline."""
        return self.path.read_bytes()


def _panel(axes: Any, height: int) -> Panel:
    box = axes.get_window_extent()
    origin = axes.transData.transform((0.0, 0.0))
    unit = axes.transData.transform((1.0, 1.0))
    scale = (float(unit[0] - origin[0]), float(origin[1] - unit[1]))
    return Panel(
        bbox=(float(box.x0), height - float(box.y1), float(box.x1), height - float(box.y0)),
        scale=scale,
        offset=(float(origin[0]), height - float(origin[1])),
    )


def save_figure(figure: Any, path: str | os.PathLike[str], axes: dict[str, Any],
                info: dict[str, Any] | None = None) -> Picture:
    """Render ``figure``, write it to ``path`` as a PNG atomically (temporary file, then
    ``os.replace``), and describe the panels ``axes`` (name → matplotlib axes)."""
    from PIL import Image  # matplotlib depends on Pillow, so it is here when matplotlib is

    canvas = figure.canvas
    canvas.draw()
    rgba = xp.asarray(canvas.buffer_rgba())
    height, width = rgba.shape[:2]
    panels = {name: _panel(ax, height) for name, ax in axes.items()}
    buffer = io.BytesIO()
    Image.fromarray(xp.ascontiguousarray(rgba[..., :3])).save(buffer, format="PNG")
    target = Path(path)
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, buffer.getvalue())
    return Picture(path=target, width=int(width), height=int(height), panels=panels,
                   info=dict(info or {}))


def as_image(image: Any) -> ndarray:
    """An image for ``imshow``: float ``(H, W, 3)`` in [0, 1] or ``(H, W)``, from a Tensor or
    array ``(1, C, H, W)`` (unambiguous), ``(3, H, W)``, ``(1, H, W)``, ``(H, W, 3)`` or ``(H, W)``
    (uint8 in [0, 255] or float in [0, 1])."""
    array = xp.asarray(getattr(image, "array", image))
    if array.ndim == 4:  # a batch is (N, C, H, W): no guessing, even for a 1-pixel-wide image
        array = array[0].transpose(1, 2, 0)
    elif array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[2] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise ValueError(f"wally.viz: expected an image (H, W, 3), (3, H, W) or (H, W), got "
                         f"shape {array.shape}")
    if array.dtype == xp.uint8:
        return array.astype(xp.float32) / 255.0
    return xp.clip(array.astype(xp.float32), 0.0, 1.0)


def as_batch(image: Any) -> Any:
    """An image as the float32 ``(1, C, H, W)`` Tensor a model takes (see :func:`as_image`)."""
    from wally.tensor import Tensor

    picture = as_image(image)
    chw = picture[None] if picture.ndim == 2 else picture.transpose(2, 0, 1)
    return Tensor(xp.ascontiguousarray(chw[None], dtype=xp.float32))


def mosaic(tiles: ndarray, columns: int, gap: int = 1, fill: float = float("nan")) -> ndarray:
    """Tiles ``(n, h, w)`` or ``(n, h, w, 3)`` laid out in rows of ``columns``, ``gap`` pixels
    of ``fill`` between them (NaN: drawn in the colour map's "bad" colour)."""
    n, h, w = tiles.shape[:3]
    rows = -(-n // columns)
    shape = (rows * (h + gap) - gap, columns * (w + gap) - gap, *tiles.shape[3:])
    out = xp.full(shape, fill, dtype=xp.float32)
    for k in range(n):
        r, c = divmod(k, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tiles[k]
    return out


def read_image(path: str | os.PathLike[str]) -> ndarray:
    """An image file as uint8 ``(H, W, 3)`` RGB (needs Pillow); see :mod:`wally.io.images`."""
    from wally.io.images import read_image as read

    return read(path, "RGB")
