"""The receptive field of one unit, drawn on the input image: the analytic box beside the
effective field (how strongly each input pixel moves that unit)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from wally.backend import xp
from wally.nn.module import Module
from wally.viz._output import Picture, as_batch, as_image, matplotlib_figure, save_figure

__all__ = ["plot_receptive_field", "BOX_COLOR"]

BOX_COLOR = (0.0, 1.0, 1.0)
"""The analytic box's colour (cyan), drawn without anti-aliasing so its pixels are exact."""


def _grey(picture: Any) -> Any:
    return picture if picture.ndim == 2 else picture @ xp.asarray([0.299, 0.587, 0.114],
                                                                   dtype=xp.float32)


def plot_receptive_field(
    model: Module,
    layer: str | None,
    image: Any,
    path: str | os.PathLike[str],
    *,
    unit: Sequence[int] | None = None,
    channel: int | None = None,
) -> Picture:
    """Draw the receptive field of one output unit of ``layer`` on ``image``.

    Left: the image with the **analytic** receptive field of the unit, the box that
    :func:`wally.analysis.receptive_field` computes from kernel sizes, strides, padding and
    dilation (``r_out = r_in + (k − 1)·d·j_in``, ``j_out = j_in·s``), in cyan. Right: the
    **effective** receptive field, ``|∂ unit / ∂ x|`` summed over colour channels
    (:func:`wally.analysis.input_gradient`, back-propagated from that unit alone, on the trained
    weights and this image), as a heatmap over the greyed image, with the same box. The
    gradient vanishes outside the box, and is usually concentrated near its centre.

    Args:
        model: any model whose ``layer`` (a name from ``named_modules``; ``None`` or ``""``:
            the model's output) gives spatial maps.
        image: ``(H, W, 3)`` or ``(3, H, W)``; the field is computed for this input size.
        unit: ``(row, col)`` of the unit in the layer's output; default the centre.
        channel: back-propagate from this channel only (default: the sum over channels).

    ``info`` holds ``unit``, ``box`` (``((row0, row1), (col0, col1))``, inclusive, possibly
    reaching into the padding), ``field`` (size, jump, start) and ``output_shape``.
    """
    from wally.analysis import input_gradient, receptive_field

    picture = as_image(image)
    x = as_batch(image)
    size = tuple(x.shape[1:])
    name = layer or ""
    field = receptive_field(model, size, name)
    if field is None:
        raise ValueError(f"plot_receptive_field: the output of {name or 'the model'!r} does "
                         "not depend on the input")
    if len(field.axes) != 2 or field.is_global:
        raise ValueError(f"plot_receptive_field: {name or 'the model'!r} has no spatial "
                         "output units (its field covers the whole input)")
    output_shape = _output_shape(model, x, name)
    if unit is None:
        unit = tuple((n - 1) // 2 for n in output_shape[-2:])
    unit = tuple(int(i) for i in unit)
    if len(unit) != 2 or not all(0 <= i < n for i, n in zip(unit, output_shape[-2:])):
        raise ValueError(f"plot_receptive_field: unit {tuple(unit)} is outside the layer's "
                         f"{output_shape[-2]}×{output_shape[-1]} output")
    was_training = model.training
    model.eval()  # the trained network as it is used: batch norm on its running statistics
    try:
        gradient = input_gradient(model, x, name or None, unit, channel)
    finally:
        model.train(was_training)
    (row0, row1), (col0, col1) = field.box(unit)
    magnitude = xp.abs(gradient[0]).sum(axis=0)

    from matplotlib.patches import Rectangle

    height, width = picture.shape[:2]
    panel_w = 4.6
    panel_h = panel_w * height / width
    figure = matplotlib_figure((2 * panel_w + 0.3, panel_h + 0.8))
    left = figure.add_axes((0.02, 0.04, 0.46, panel_h / (panel_h + 0.8)))
    right = figure.add_axes((0.52, 0.04, 0.46, panel_h / (panel_h + 0.8)))
    left.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1,
                interpolation="nearest")
    right.imshow(_grey(picture), cmap="gray", vmin=0, vmax=1, interpolation="nearest",
                 alpha=0.35)
    peak = float(magnitude.max())
    heat = xp.where(magnitude > 0, magnitude / (peak or 1.0), xp.nan)
    right.imshow(heat, cmap="magma", vmin=0, vmax=1, interpolation="nearest", alpha=0.9)
    for axes in (left, right):
        axes.add_patch(Rectangle((col0 - 0.5, row0 - 0.5), col1 - col0 + 1, row1 - row0 + 1,
                                 fill=False, edgecolor=BOX_COLOR, linewidth=2,
                                 antialiased=False))
        axes.set_xlim(-0.5, width - 0.5)
        axes.set_ylim(height - 0.5, -0.5)
        axes.set_axis_off()
    label = name or "output"
    left.set_title(f"analytic field of {label}{list(unit)}: {field.size[0]}×{field.size[1]}, "
                   f"jump {field.jump[0]}", fontsize=9)
    right.set_title(f"effective field: |∂{label}{list(unit)}/∂x|", fontsize=9)
    return save_figure(figure, path, {"analytic": left, "effective": right},
                       {"unit": unit, "box": ((row0, row1), (col0, col1)),
                        "field": field.to_dict(), "output_shape": tuple(output_shape),
                        "gradient_peak": peak})


def _output_shape(model: Module, x: Any, layer: str) -> tuple[int, ...]:
    from wally.viz.feature_maps import layer_outputs

    if not layer:
        from wally.autograd import no_grad

        was_training = model.training
        model.eval()
        try:
            with no_grad():
                out = model(x)
        finally:
            model.train(was_training)
        return tuple(out.shape[1:])
    return tuple(layer_outputs(model, x, [layer])[layer].shape)
