"""The kernels of a convolution layer, as one grid picture."""

from __future__ import annotations

import math
import os
from typing import Any

from wally.backend import ndarray, xp
from wally.nn.module import Module
from wally.viz._output import Picture, matplotlib_figure, mosaic, save_figure

__all__ = ["plot_kernels", "conv_layer"]


def conv_layer(model: Module, layer: str, where: str) -> Module:
    """The module called ``layer`` (a name from ``named_modules``), which must hold a 4-D
    convolution ``weight``."""
    modules = dict(model.named_modules())
    if layer not in modules:
        names = [name for name, m in modules.items() if _weight(m) is not None]
        raise ValueError(f"{where}: the model has no layer named {layer!r}; its convolution "
                         f"layers are {names}")
    module = modules[layer]
    if _weight(module) is None:
        raise ValueError(f"{where}: layer {layer!r} is a {type(module).__name__}, not a "
                         "convolution with a (out, in, kh, kw) weight")
    return module


def _weight(module: Module) -> ndarray | None:
    weight = getattr(module, "weight", None)
    array = getattr(weight, "array", None)
    return array if array is not None and array.ndim == 4 else None


def plot_kernels(
    model: Module,
    layer: str,
    path: str | os.PathLike[str],
    *,
    mode: str = "auto",
    max_out: int = 64,
    max_in: int = 32,
    cell: int = 0,
) -> Picture:
    """Draw the kernels of convolution ``layer`` as a grid and write it to ``path`` (PNG).

    Modes:
        ``"rgb"``: one tile per output channel, its three input channels shown as colour,
        mid-grey being 0 (each kernel scaled by its own largest magnitude): what a first layer
        looks for. Tiles are laid out ``ceil(sqrt(out))`` to a row.
        ``"channels"``: one row per output channel and one column per input channel, every
        ``kh × kw`` slice in a diverging colour map (blue negative, white 0, red positive) on
        one scale for the whole layer, ``±max|w|``.
        ``"auto"``: ``"rgb"`` where the layer has 3 input channels, else ``"channels"``.

    At most ``max_out`` output and ``max_in`` input channels are drawn (the first ones).
    Tiles are separated by one dark-grey kernel pixel. ``info`` of the returned picture holds
    ``mode``, ``grid`` (rows, columns of tiles), ``kernel_size`` and ``shown`` (out, in).
    """
    module = conv_layer(model, layer, "plot_kernels")
    weight = _weight(module)
    assert weight is not None
    out_channels, in_channels, kh, kw = weight.shape
    if mode == "auto":
        mode = "rgb" if in_channels == 3 else "channels"
    if mode not in ("rgb", "channels"):
        raise ValueError(f"plot_kernels: mode must be 'auto', 'rgb' or 'channels', got {mode!r}")
    if mode == "rgb" and in_channels != 3:
        raise ValueError(f"plot_kernels: mode 'rgb' needs a layer with 3 input channels; "
                         f"{layer!r} has {in_channels}")
    shown_out, shown_in = min(out_channels, max_out), min(in_channels, max_in)
    w = weight[:shown_out, :shown_in].astype(xp.float32)

    if mode == "rgb":
        columns = math.ceil(math.sqrt(shown_out))
        peak = xp.abs(w).reshape(shown_out, -1).max(axis=1).reshape(-1, 1, 1, 1)
        tiles = 0.5 + 0.5 * w / xp.where(peak > 0, peak, 1.0)
        grid = mosaic(tiles.transpose(0, 2, 3, 1), columns, fill=0.25)
        rows = -(-shown_out // columns)
        image, cmap, limits = grid, None, (None, None)  # type: tuple[Any, Any, tuple[Any, Any]]
        caption = f"{layer}: {out_channels} kernels {kh}×{kw}, RGB (grey = 0)"
    else:
        columns, rows = shown_in, shown_out
        grid = mosaic(w.reshape(shown_out * shown_in, kh, kw), columns)
        peak = float(xp.abs(w).max()) or 1.0
        image, cmap, limits = grid, _diverging(), (-peak, peak)
        caption = (f"{layer}: {out_channels}×{in_channels} kernels {kh}×{kw} (rows: out, "
                   f"columns: in), ±{peak:.3g}")
    if shown_out < out_channels or shown_in < in_channels:
        caption += f"; first {shown_out}×{shown_in} shown"

    pixels = cell or max(4, min(24, 640 // max(grid.shape[:2])))
    width_in = max(grid.shape[1] * pixels / 100 + 0.6, 3.2)
    height_in = grid.shape[0] * pixels / 100 + 0.7
    figure = matplotlib_figure((width_in, height_in))
    axes = figure.add_axes((0.3 / width_in, 0.2 / height_in, 1 - 0.6 / width_in,
                            1 - 0.7 / height_in))
    axes.imshow(image, cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest")
    axes.set_axis_off()
    figure.suptitle(caption, fontsize=8, y=1 - 0.08 / height_in, va="top")
    return save_figure(figure, path, {"kernels": axes},
                       {"mode": mode, "grid": (rows, columns), "kernel_size": (kh, kw),
                        "shown": (shown_out, shown_in)})


def _diverging() -> Any:
    from matplotlib import colormaps

    return colormaps["RdBu_r"].with_extremes(bad=(0.25, 0.25, 0.25))
