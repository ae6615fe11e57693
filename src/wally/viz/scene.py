"""The found-Wally picture: the scene with the box, the heatmap over it, and a close-up."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from wally.backend import xp
from wally.viz._output import Picture, as_image, matplotlib_figure, save_figure

__all__ = ["plot_detection", "FOUND_COLOR", "TRUTH_COLOR"]

FOUND_COLOR = (0.0, 1.0, 0.0)
"""The found box's colour (lime), drawn without anti-aliasing."""
TRUTH_COLOR = (1.0, 0.0, 1.0)
"""The true box's colour (magenta, dashed), where the truth is known."""


def plot_detection(
    image: Any,
    detection: Any,
    path: str | os.PathLike[str],
    *,
    truth: Sequence[float] | None = None,
    title: str | None = None,
) -> Picture:
    """Draw where the finder found Wally, and write it to ``path`` (PNG).

    Three panels: the scene with the found box (lime) and, when ``truth`` (a box
    ``(x0, y0, x1, y1)``) is given, the true box (magenta, dashed); the heatmap, the sigmoid of
    the logits placed over the patch centre of each unit, over the greyed scene; and a
    close-up of the found box.

    Args:
        image: the scene, ``(H, W, 3)`` uint8 or ``(3, H, W)`` float.
        detection: a :class:`wally.apps.finder.Detection`.

    Boxes are in pixel coordinates (pixel ``(r, c)`` covers ``[c, c + 1) × [r, r + 1)``).
    ``info`` holds ``box``, ``center``, ``confidence`` and ``heatmap_extent``.
    """
    from matplotlib.patches import Rectangle

    picture = as_image(image)
    height, width = picture.shape[:2]
    heat = detection.heatmap
    rows, cols = heat.shape
    first_x, first_y = detection.unit_center(0, 0)
    jx, jy = detection.jump[1], detection.jump[0]
    # imshow puts pixel c on [c − ½, c + ½]: pixel coordinates are shifted by −½ there
    extent = (first_x - jx / 2 - 0.5, first_x + jx * (cols - 0.5) - 0.5,
              first_y + jy * (rows - 0.5) - 0.5, first_y - jy / 2 - 0.5)
    probability = 1.0 / (1.0 + xp.exp(-xp.clip(heat.astype(xp.float64), -60, 60)))

    x0, y0, x1, y1 = (float(v) for v in detection.box)
    panel_h = 4.2
    panel_w = panel_h * width / height
    zoom_w = 2.0
    figure_w = 2 * panel_w + zoom_w + 0.6
    figure = matplotlib_figure((figure_w, panel_h + 0.9))
    bottom, tall = 0.05, panel_h / (panel_h + 0.9)
    scene_axes = figure.add_axes((0.1 / figure_w, bottom, panel_w / figure_w, tall))
    heat_axes = figure.add_axes(((0.3 + panel_w) / figure_w, bottom, panel_w / figure_w, tall))
    zoom_axes = figure.add_axes(((0.5 + 2 * panel_w) / figure_w, bottom + tall * 0.25,
                                 zoom_w / figure_w, tall * 0.75))

    grey = picture if picture.ndim == 2 else picture @ xp.asarray([0.299, 0.587, 0.114],
                                                                   dtype=xp.float32)
    scene_axes.imshow(picture, interpolation="nearest")
    heat_axes.imshow(grey, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    from matplotlib import colormaps

    overlay = colormaps["autumn_r"](probability)  # yellow → red as P(Wally) grows
    overlay[..., 3] = 0.9 * xp.sqrt(probability)  # where he is not, the scene shows through
    heat_axes.imshow(overlay, extent=extent, interpolation="nearest")
    zoom_axes.imshow(picture, interpolation="nearest")

    def box_patch(box: Sequence[float], color: Any, style: str = "-") -> Any:
        bx0, by0, bx1, by1 = (float(v) for v in box)
        return Rectangle((bx0 - 0.5, by0 - 0.5), bx1 - bx0, by1 - by0, fill=False,
                         edgecolor=color, linewidth=2, linestyle=style, antialiased=False)

    for axes in (scene_axes, heat_axes, zoom_axes):
        if truth is not None:
            axes.add_patch(box_patch(truth, TRUTH_COLOR, "--"))
        axes.add_patch(box_patch(detection.box, FOUND_COLOR))
        axes.set_xticks([])
        axes.set_yticks([])
    for axes in (scene_axes, heat_axes):
        axes.set_xlim(-0.5, width - 0.5)
        axes.set_ylim(height - 0.5, -0.5)
    cx, cy = detection.center
    reach = max(x1 - x0, y1 - y0)
    zoom_axes.set_xlim(cx - reach - 0.5, cx + reach - 0.5)
    zoom_axes.set_ylim(cy + reach - 0.5, cy - reach - 0.5)

    scene_axes.set_title(title or f"found at ({cx:.0f}, {cy:.0f}), confidence "
                                  f"{detection.confidence:.3f}", fontsize=9)
    heat_axes.set_title(f"heatmap: P(Wally) per window, {cols}×{rows} windows, every "
                        f"{jx} px", fontsize=9)
    zoom_axes.set_title("close-up", fontsize=9)
    if truth is not None:
        tx, ty = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2
        off = math.hypot(cx - tx, cy - ty)
        zoom_axes.text(0.5, -0.08, f"{off:.1f} px from the true centre", ha="center",
                       va="top", fontsize=8, transform=zoom_axes.transAxes)
    return save_figure(figure, path,
                       {"scene": scene_axes, "heatmap": heat_axes, "zoom": zoom_axes},
                       {"box": detection.box, "center": detection.center,
                        "confidence": detection.confidence, "heatmap_extent": extent})
