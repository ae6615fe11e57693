"""The feature maps of a layer (its convolution's output) and its activation maps (the same
after the activation function), for one input image: the note's two terms, side by side."""

from __future__ import annotations

import math
import os
from typing import Any

from wally.autograd import no_grad
from wally.backend import ndarray, xp
from wally.nn.module import Module
from wally.viz._output import Picture, as_batch, as_image, matplotlib_figure, mosaic, save_figure

__all__ = ["plot_feature_maps", "layer_outputs", "next_activation"]

_ACTIVATIONS = ("ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softplus", "ReLU6", "SiLU",
                "ELU", "Hardtanh")


def next_activation(model: Module, layer: str) -> str | None:
    """The name of the first activation module after ``layer`` in ``named_modules`` order
    (across a batch norm, say), or ``None`` when another convolution comes first."""
    seen = False
    for name, module in model.named_modules():
        if not seen:
            seen = name == layer
            continue
        if name.startswith(layer + "."):  # inside the layer itself
            continue
        kind = type(module).__name__
        if kind in _ACTIVATIONS:
            return name
        if kind.startswith("Conv") or kind == "Linear":
            return None
    return None


def layer_outputs(model: Module, image: Any, layers: list[str]) -> dict[str, ndarray]:
    """The outputs of the named layers for one image, batch element 0: ``{name: (C, h, w)}``.
    Runs the model once in eval mode without gradients."""
    modules = dict(model.named_modules())
    for name in layers:
        if name not in modules:
            raise ValueError(f"plot_feature_maps: the model has no layer named {name!r}; "
                             f"layers: {[n for n in modules if n]}")
    captured: dict[str, ndarray] = {}
    handles = []
    for name in layers:

        def keep(module: Module, args: Any, output: Any, name: str = name) -> None:
            first = output[0] if isinstance(output, tuple | list) else output
            if name not in captured:
                captured[name] = xp.array(first.array[0])

        handles.append(modules[name].register_forward_hook(keep))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(as_batch(image))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    for name in layers:
        if name not in captured:
            raise ValueError(f"plot_feature_maps: layer {name!r} was not called by the model")
        if captured[name].ndim != 3:
            raise ValueError(f"plot_feature_maps: layer {name!r} gives shape "
                             f"{captured[name].shape} per image, not maps (C, h, w)")
    return captured


def _normalised(maps: ndarray, signed: bool) -> ndarray:
    """Each map on its own scale: ``[−m, m] → [0, 1]`` (signed) or ``[min, max] → [0, 1]``."""
    flat = maps.reshape(len(maps), -1)
    if signed:
        peak = xp.abs(flat).max(axis=1)
        return 0.5 + 0.5 * maps / xp.where(peak > 0, peak, 1.0)[:, None, None]
    low, high = flat.min(axis=1), flat.max(axis=1)
    span = xp.where(high > low, high - low, 1.0)
    return (maps - low[:, None, None]) / span[:, None, None]


def plot_feature_maps(
    model: Module,
    layer: str,
    image: Any,
    path: str | os.PathLike[str],
    *,
    activation: str | None = "auto",
    max_maps: int = 32,
) -> Picture:
    """Draw ``layer``'s feature maps and the matching activation maps for ``image``.

    Left, the input image. Middle, the feature maps: the output of ``layer`` (a convolution:
    ``[H]_{i,j,d}``), each map on its own symmetric scale (blue negative, white 0, red
    positive). Right, the activation maps: the output of ``activation`` (default the first
    activation module after ``layer``, across a batch norm; ``None`` for none), each map from
    its minimum (black) to its maximum (yellow). At most ``max_maps`` channels are drawn.

    ``info`` holds ``feature_layer``, ``activation_layer``, ``channels`` (drawn), ``grid``
    (rows, columns) and ``map_size`` (h, w).
    """
    if activation == "auto":
        activation = next_activation(model, layer)
    names = [layer] + ([activation] if activation else [])
    outputs = layer_outputs(model, image, names)
    features = outputs[layer]
    channels = min(len(features), max_maps)
    columns = math.ceil(math.sqrt(channels))
    rows = -(-channels // columns)
    h, w = features.shape[1:]

    from matplotlib import colormaps

    diverging = colormaps["RdBu_r"].with_extremes(bad=(0.25, 0.25, 0.25))
    sequential = colormaps["inferno"].with_extremes(bad=(0.25, 0.25, 0.25))
    gap = max(1, round(max(h, w) / 40))  # still visible when a big map is drawn small
    picture = as_image(image)
    panels = [("input", picture, None, f"input {picture.shape[1]}×{picture.shape[0]}"),
              ("features", mosaic(_normalised(features[:channels], True), columns, gap),
               diverging, f"feature maps: {layer} ({len(features)}×{h}×{w})")]
    if activation:
        maps = outputs[activation]
        panels.append(("activations", mosaic(_normalised(maps[:channels], False), columns, gap),
                       sequential, f"activation maps: {activation} ({len(maps)}×"
                                   f"{maps.shape[1]}×{maps.shape[2]})"))
    panel_w = 4.2
    tallest = max(p[1].shape[0] / p[1].shape[1] for p in panels)
    figure_h = panel_w * 0.96 * tallest + 0.6
    figure = matplotlib_figure((panel_w * len(panels), figure_h))
    axes_by_name = {}
    for k, (name, picture, cmap, title) in enumerate(panels):
        axes = figure.add_axes((k / len(panels) + 0.01, 0.1 / figure_h, 1 / len(panels) - 0.02,
                                1 - 0.5 / figure_h))
        axes.imshow(picture, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="antialiased")
        axes.set_title(title, fontsize=9)
        axes.set_axis_off()
        axes_by_name[name] = axes
    return save_figure(figure, path, axes_by_name,
                       {"feature_layer": layer, "activation_layer": activation,
                        "channels": channels, "grid": (rows, columns), "map_size": (h, w)})
