"""What the explorer shows, computed from the model: every layer's maps, one unit's equation.

A forward pass with a hook on every leaf module records, in call order, each layer's input and
output. One unit's explanation recomputes its value from those numbers by the layer's own
equation, in float64, beside the value wally's forward pass gave (float32):

* convolution (the note's equation, with the stride ``s``, the dilation ``δ`` and the input
  ``X`` padded by ``p``)::

      [H]d,i,j = [b]d + Σc Σa Σb [V]d,c,a,b · [X]c, s·i+δ·a, s·j+δ·b

* max pooling: the largest value of the window, and where it is (the winner);
  average pooling: the window's mean;
* batch normalisation (evaluation mode): ``(x − μ) / √(σ² + ε) · γ + β``;
* ``Linear``: ``[y]d = [b]d + Σk [W]d,k · [x]k``;
* an elementwise activation: ``f(x)`` at the same position.

Maps travel as bytes (``uint8``, one per unit, scaled to the layer's range) and are drawn by
the page on canvases.
"""

from __future__ import annotations

import base64
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from wally import nn
from wally._windows import conv_settings, pool_settings
from wally.autograd import no_grad
from wally.backend import ndarray, xp
from wally.nn.module import Module
from wally.tensor import Tensor

MAX_SIDE = 256
"""A fully convolutional model (no ``Linear``, so any input size) sees the input scaled down so
that its longer side is at most this many pixels: every layer's maps then stay small enough to
draw in a browser (the finder's first layer: 16 maps of at most 254 × 254)."""

_ELEMENTWISE = {
    "ReLU": "max(0, x)", "Sigmoid": "1 / (1 + e^(−x))", "Tanh": "tanh(x)",
    "LeakyReLU": "max(0, x) + slope · min(0, x)", "GELU": "x · Φ(x)", "SiLU": "x · σ(x)",
    "ELU": "x if x > 0 else α(eˣ − 1)", "ReLU6": "min(max(0, x), 6)", "Identity": "x",
    "Dropout": "x (evaluation mode)", "Hardtanh": "clamp(x, −1, 1)", "Softplus": "log(1 + eˣ)",
}


def encode(values: ndarray, lo: float, hi: float) -> str:
    """``values`` scaled from ``[lo, hi]`` to bytes 0..255, as base64 (what the page draws)."""
    span = hi - lo if hi > lo else 1.0
    scaled = xp.clip((values.astype(xp.float64) - lo) / span * 255.0, 0, 255)
    return base64.b64encode(xp.round(scaled).astype(xp.uint8).tobytes()).decode("ascii")


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _nested(array: ndarray) -> Any:
    """An array as nested lists of floats (``None`` for a non-finite value)."""
    if array.ndim == 0:
        return _number(array)
    return [_nested(a) for a in array]


@dataclass
class Layer:
    """One call of a leaf module: its dotted name, the module, its input and output arrays."""

    index: int
    name: str
    module: Module
    input: ndarray
    output: ndarray
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return type(self.module).__name__


def _leaves(model: Module) -> list[tuple[str, Module]]:
    return [(name, m) for name, m in model.named_modules()
            if not any(True for _ in m.children())]


def run_layers(model: Module, x: ndarray) -> tuple[list[Layer], ndarray]:
    """The model's output for the batch ``x`` ``(1, C, H, W)`` and every leaf layer's call, in
    call order, with its input and output (a layer called twice gives two entries)."""
    calls: list[Layer] = []
    handles = []

    def hook(name: str) -> Any:
        def record(module: Module, args: tuple[Any, ...], output: Any) -> None:
            if args and isinstance(args[0], Tensor) and isinstance(output, Tensor):
                calls.append(Layer(len(calls), name, module, args[0].array.copy(),
                                   output.array.copy()))
        return record

    for name, module in _leaves(model):
        handles.append(module.register_forward_hook(hook(name)))
    try:
        with no_grad():
            out = model(Tensor(x))
    finally:
        for handle in handles:
            handle.remove()
    return calls, out.array


def _window_settings(module: Module) -> tuple[Any, ...]:
    """``(kernel, stride, padding, dilation)`` of a 2-d window layer as the layer itself reads
    them (:mod:`wally._windows`, ``padding='same'`` included): each ``(rows, cols)``, the
    padding as ``((top, bottom), (left, right))``."""
    if isinstance(module, nn.Conv2d):
        kernel = tuple(int(k) for k in module.kernel_size)
        stride, padding, dilation = conv_settings(type(module).__name__, 2, kernel, module.stride,
                                                  module.padding, module.dilation)
        return kernel, stride, padding, dilation
    kernel, stride, pads, dilation = pool_settings(type(module).__name__, 2, module.kernel_size,
                                                   module.stride, module.padding,
                                                   getattr(module, "dilation", 1))
    return kernel, stride, tuple((p, p) for p in pads), dilation


def _padded(x: ndarray, padding: Any, fill: float = 0.0) -> ndarray:
    """``x`` ``(C, H, W)`` inside ``padding`` (``((top, bottom), (left, right))``) of ``fill``."""
    return xp.pad(x, ((0, 0), *padding), constant_values=fill)


def _starts(padding: Any) -> list[int]:
    """The padding before the first row and column (what the page shows as the padding)."""
    return [int(before) for before, _ in padding]


def _window(x: ndarray, i: int, j: int, kernel: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int]) -> tuple[ndarray, list[int], list[int]]:
    """The window ``x[:, s·i + δ·a, s·j + δ·b]`` of a padded ``x``, and its rows and columns."""
    rows = [stride[0] * i + dilation[0] * a for a in range(kernel[0])]
    cols = [stride[1] * j + dilation[1] * b for b in range(kernel[1])]
    return x[:, rows][:, :, cols], rows, cols


@dataclass
class Explorer:
    """The explorer's state: the model, the current input, every layer's call, the summary."""

    model: Module
    classes: list[str] | None = None
    image: ndarray | None = None  # uint8 (H, W, 3): the input as the model sees it
    x: ndarray | None = None  # the model's input batch (1, C, H, W)
    layers: list[Layer] = field(default_factory=list)
    output: ndarray | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def fully_convolutional(self) -> bool:
        return not any(isinstance(m, nn.Linear) for m in self.model.modules())

    # ----- the input -------------------------------------------------------------------------
    def set_image(self, image: ndarray) -> None:
        """A new input: ``image`` uint8 ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``."""
        from wally.cli._model_source import image_for_model

        image = xp.asarray(image)
        if image.dtype != xp.uint8:
            raise TypeError(f"explore: the image must be uint8, got {image.dtype}")
        if image.ndim == 2:
            image = xp.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError(f"explore: expected an image (H, W), (H, W, 3) or (H, W, 4), got "
                             f"shape {tuple(image.shape)}")
        image = xp.ascontiguousarray(image[:, :, :3])
        if self.fully_convolutional and max(image.shape[:2]) > MAX_SIDE:
            from wally.io.images import pil_image

            pil = pil_image()
            scale = MAX_SIDE / max(image.shape[:2])
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            image = xp.asarray(pil.fromarray(image).resize(size, pil.Resampling.BILINEAR))
        x = image_for_model(self.model, image)
        first = next((m for m in self.model.modules() if isinstance(m, nn.Conv2d)), None)
        if getattr(self.model, "input_size", None) is None and first is not None \
                and first.in_channels == 1:  # a model built by hand: its first convolution says
            luma = xp.asarray([0.299, 0.587, 0.114], dtype=xp.float32).reshape(1, 3, 1, 1)
            x = (x * luma).sum(axis=1, keepdims=True, dtype=xp.float32)
        with self.lock:
            try:
                layers, output = run_layers(self.model, x)
            except ValueError as error:
                raise ValueError(f"explore: the model cannot take this {image.shape[1]}×"
                                 f"{image.shape[0]} image: {error}") from None
            # what the page shows is what the model sees: boxes land on the right pixels
            seen = xp.clip(x[0].transpose(1, 2, 0) * 255.0, 0, 255).round().astype(xp.uint8)
            seen = xp.repeat(seen, 3, axis=2) if seen.shape[2] == 1 else seen
            self.image, self.x, self.layers, self.output = seen, x, layers, output
            self._attach_summary()

    def default_image(self) -> ndarray:
        """What the page shows first: a generated crowd scene (160 × 120, or the model's input
        size if larger) for a fully convolutional RGB model such as the finder, else the first
        test image of the ``synthetic`` set, resized to the model's input size."""
        from wally.io.images import pil_image

        first = next((m for m in self.model.modules() if isinstance(m, nn.Conv2d)), None)
        size = getattr(self.model, "input_size", None) or \
            (first.in_channels if first is not None else 3, 32, 32)
        height, width = (min(int(n), MAX_SIDE) for n in size[1:3])
        if self.fully_convolutional and int(size[0]) == 3:
            from wally.data.wally_scenes import make_scene

            return make_scene(xp.random.default_rng(0), max(height, 120), max(width, 160)).image
        from wally.cli._images import synthetic

        digit = synthetic(train=False)[0][0]
        if digit.shape != (height, width):
            pil = pil_image()
            digit = xp.asarray(pil.fromarray(digit).resize((width, height),
                                                           pil.Resampling.BILINEAR))
        return digit

    def _attach_summary(self) -> None:
        from wally.analysis.summary import summary

        assert self.x is not None
        rows = summary(self.model, input_data=Tensor(self.x), verbose=0).layers
        by_name = {row.name: row for row in rows if row.kind == "layer"}
        for layer in self.layers:
            row = by_name.get(layer.name)
            layer.summary = {} if row is None else {
                "params": row.params, "macs": row.macs,
                "receptive_field": row.receptive_field,
            }

    # ----- what the page gets ----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The input, every layer's maps and the prediction, as JSON-ready values."""
        assert self.image is not None and self.x is not None and self.output is not None
        x = self.x[0]
        lo, hi = float(x.min()), float(x.max())
        return {
            "model": _model_name(self.model),
            "image": {"height": int(self.image.shape[0]), "width": int(self.image.shape[1]),
                      "rgb": base64.b64encode(self.image.tobytes()).decode("ascii")},
            "input": {"shape": list(x.shape), "min": lo, "max": hi,
                      "maps": [encode(c, lo, hi) for c in x]},
            "layers": [self._layer_state(layer) for layer in self.layers],
            "prediction": self.prediction(),
        }

    def _layer_state(self, layer: Layer) -> dict[str, Any]:
        out = layer.output[0]
        finite = out[xp.isfinite(out)]
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 0.0
        if out.ndim == 3:
            maps = [encode(c, lo, hi) for c in out]
        else:
            maps = [encode(out.reshape(1, -1), lo, hi)]
        field_ = layer.summary.get("receptive_field")
        return {
            "index": layer.index, "name": layer.name, "type": layer.type,
            "repr": repr(layer.module), "input_shape": list(layer.input.shape),
            "output_shape": list(layer.output.shape), "params": layer.summary.get("params"),
            "macs": layer.summary.get("macs"), "min": lo, "max": hi, "maps": maps,
            "receptive_field": None if field_ is None else field_.to_dict(),
            "slides": isinstance(layer.module, nn.Conv2d),
        }

    def prediction(self) -> dict[str, Any]:
        """Class probabilities (softmax of a ``(1, K)`` output), or for a map of logits
        ``(1, 1, h, w)`` (the finder) the sigmoid heatmap and the best window's box."""
        out = self.output
        assert out is not None
        if out.ndim == 2:
            logits = out[0].astype(xp.float64)
            e = xp.exp(logits - logits.max())
            p = e / e.sum()
            names = self.classes if self.classes and len(self.classes) == p.size else \
                [str(k) for k in range(p.size)]
            order = [int(k) for k in xp.argsort(-p, kind="stable")]
            return {"kind": "classes", "probabilities": [float(v) for v in p],
                    "classes": names, "best": order[0], "best_name": names[order[0]]}
        if out.ndim == 4 and out.shape[1] == 1:
            heat = 1.0 / (1.0 + xp.exp(-out[0, 0].astype(xp.float64)))
            row, col = (int(v) for v in xp.unravel_index(int(xp.argmax(heat)), heat.shape))
            field_ = self.layers[-1].summary.get("receptive_field") if self.layers else None
            box = None
            if field_ is not None and not field_.is_global:
                (y0, y1), (x0, x1) = field_.box((row, col))
                box = [x0, y0, x1 + 1, y1 + 1]
            return {"kind": "heatmap", "height": int(heat.shape[0]),
                    "width": int(heat.shape[1]), "heatmap": encode(heat, 0.0, 1.0),
                    "best": [row, col], "confidence": float(heat[row, col]), "box": box,
                    "field": None if field_ is None else field_.to_dict()}
        return {"kind": "output", "shape": list(out.shape)}

    def layer(self, index: int) -> Layer:
        if not 0 <= index < len(self.layers):
            raise ValueError(f"explore: no layer {index}; the model has layers 0 to "
                             f"{len(self.layers) - 1}")
        return self.layers[index]

    def unit(self, index: int, channel: int, i: int = 0, j: int = 0) -> dict[str, Any]:
        """One unit of layer ``index``: its value, the equation that gives it with the real
        numbers, its receptive field (analytic box and effective field on this input)."""
        layer = self.layer(index)
        out = layer.output[0]
        position = (channel, i, j) if out.ndim == 3 else (channel,)
        if len(position) != out.ndim or any(not 0 <= p < n for p, n in zip(position, out.shape)):
            raise ValueError(f"explore: unit {position} is not in layer {layer.name!r}'s "
                             f"output of shape {tuple(out.shape)}")
        result: dict[str, Any] = {"layer": index, "name": layer.name, "type": layer.type,
                                  "unit": list(position), "value": _number(out[position])}
        result.update(explain(layer, position))
        result["field"] = self._fields(layer, position)
        return result

    def _fields(self, layer: Layer, position: tuple[int, ...]) -> dict[str, Any] | None:
        from wally.analysis.effective_field import gradient_map

        assert self.x is not None
        analytic = layer.summary.get("receptive_field")
        spatial = tuple(self.x.shape[2:])
        box = None
        if analytic is not None and len(position) == 3 and not analytic.is_global:
            box = [list(b) for b in analytic.clipped_box(position[1:], spatial)]
        elif analytic is not None:
            box = [[0, n - 1] for n in spatial]
        try:
            with self.lock:
                G, _ = gradient_map(self.model, self.x, layer.name or None,
                                    position[1:] if len(position) == 3 else None, position[0])
        except ValueError:
            G = None
        if G is not None and layer.name in {other.name for other in self.layers
                                            if other is not layer}:
            G = None  # a layer called twice: its name doesn't say which call
        effective = None
        if G is not None and float(G.max()) > 0:
            effective = encode(G / G.max(), 0.0, 1.0)
        return {"box": box, "height": spatial[0], "width": spatial[1],
                "analytic": None if analytic is None else analytic.to_dict(),
                "effective": effective}

    def slide(self, index: int, out_channel: int, in_channel: int) -> dict[str, Any]:
        """A convolution's kernel ``(out_channel, in_channel)`` sliding over that input
        channel, padded: the channel, the kernel, and each output position's partial sum
        ``Σa Σb [V]d,c,a,b [X]c, s·i+δ·a, s·j+δ·b`` (that channel's share of the unit)."""
        layer = self.layer(index)
        module = layer.module
        if not isinstance(module, nn.Conv2d):
            raise ValueError(f"explore: layer {layer.name!r} is a {layer.type}, not a Conv2d")
        weight = module.weight.array
        if not 0 <= out_channel < weight.shape[0]:
            raise ValueError(f"explore: {layer.name!r} has output channels 0 to "
                             f"{weight.shape[0] - 1}, not {out_channel}")
        per_group = weight.shape[1]
        group = out_channel // (weight.shape[0] // module.groups)
        channels = range(group * per_group, (group + 1) * per_group)
        if in_channel not in channels:
            raise ValueError(f"explore: output channel {out_channel} of {layer.name!r} sees "
                             f"input channels {channels.start} to {channels.stop - 1}, not "
                             f"{in_channel}")
        kernel, stride, padding, dilation = _window_settings(module)
        x = _padded(layer.input[0, in_channel:in_channel + 1].astype(xp.float64), padding)
        v = weight[out_channel, in_channel - channels.start].astype(xp.float64)
        rows, cols = layer.output.shape[2:]
        partial = xp.zeros((rows, cols))
        for a in range(kernel[0]):  # one tap of the kernel at a time, over every position
            for b in range(kernel[1]):
                r, c = dilation[0] * a, dilation[1] * b
                partial += v[a, b] * x[0, r:r + stride[0] * (rows - 1) + 1:stride[0],
                                       c:c + stride[1] * (cols - 1) + 1:stride[1]]
        return {"layer": index, "name": layer.name, "out_channel": out_channel,
                "in_channel": in_channel, "kernel_size": list(kernel), "stride": list(stride),
                "padding": _starts(padding), "dilation": list(dilation),
                "input": _nested(x[0]), "kernel": _nested(v), "partial": _nested(partial),
                "output_shape": [rows, cols], "in_channels": [channels.start, channels.stop]}


def _model_name(model: Module) -> str:
    from wally.models import model_config

    try:
        return str(model_config(model)["name"])
    except (ValueError, KeyError, TypeError):
        return type(model).__name__


def explain(layer: Layer, position: tuple[int, ...]) -> dict[str, Any]:
    """The equation that gives ``layer``'s unit at ``position`` (``(d, i, j)`` or ``(d,)``),
    with its numbers: ``kind``, the terms, and ``computed`` (float64) to set beside
    ``value``."""
    module, x = layer.module, layer.input[0]
    if isinstance(module, nn.Conv2d) and len(position) == 3 and module.padding_mode == "zeros":
        return _explain_conv(module, x, position)
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d) and len(position) == 3:
        return _explain_pool(module, x, position)
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d) and not module.training \
            and module.running_mean is not None and module.running_var is not None:
        d = position[0]
        mean, var = float(module.running_mean.array[d]), float(module.running_var.array[d])
        gamma = float(module.weight.array[d]) if module.weight is not None else 1.0
        beta = float(module.bias.array[d]) if module.bias is not None else 0.0
        value = float(x[position])
        computed = (value - mean) / math.sqrt(var + module.eps) * gamma + beta
        return {"kind": "batchnorm", "equation": "y = (x − μ) / √(σ² + ε) · γ + β",
                "x": value, "mean": mean, "var": var, "eps": module.eps, "gamma": gamma,
                "beta": beta, "computed": computed}
    if isinstance(module, nn.AdaptiveAvgPool2d) and len(position) == 3:
        d, i, j = position
        (height, width), (rows, cols) = x.shape[1:], layer.output.shape[2:]
        r0, r1 = i * height // rows, -(-(i + 1) * height // rows)
        c0, c1 = j * width // cols, -(-(j + 1) * width // cols)
        window = x[d, r0:r1, c0:c1].astype(xp.float64)
        return {"kind": "adaptive", "equation": "[H]d,i,j = the mean of the window rows "
                "⌊i·H/h⌋…⌈(i+1)·H/h⌉ − 1, columns ⌊j·W/w⌋…⌈(j+1)·W/w⌉ − 1",
                "rows": [r0, r1 - 1], "cols": [c0, c1 - 1], "count": int(window.size),
                "computed": float(window.mean())}
    if isinstance(module, nn.Linear) and len(position) == 1:
        d = position[0]
        inputs = x.reshape(-1).astype(xp.float64)
        w = module.weight.array[d].astype(xp.float64)
        bias = float(module.bias.array[d]) if module.bias is not None else 0.0
        terms = w * inputs
        top = [int(k) for k in xp.argsort(-xp.abs(terms), kind="stable")[:12]]
        return {"kind": "linear", "equation": "[y]d = [b]d + Σk [W]d,k · [x]k",
                "bias": bias, "inputs": int(inputs.size), "sum": float(terms.sum()),
                "top": [{"k": k, "w": float(w[k]), "x": float(inputs[k]),
                         "product": float(terms[k])} for k in top],
                "computed": float(terms.sum()) + bias}
    if isinstance(module, nn.Flatten) and len(position) == 1:
        source = [int(v) for v in xp.unravel_index(position[0], x.shape)]
        return {"kind": "flatten", "equation": "[y]k = [X]c,i,j with k = (c·H + i)·W + j",
                "source": source, "computed": float(x[tuple(source)])}
    name = type(module).__name__
    if name in _ELEMENTWISE and x.shape == layer.output[0].shape:
        value = float(x[position])
        computed = _elementwise(module, value)
        return {"kind": "elementwise", "equation": f"y = {_ELEMENTWISE[name]}", "x": value,
                "computed": computed}
    return {"kind": "other", "equation": None, "computed": None}


def _elementwise(module: Module, value: float) -> float:
    """``f(x)`` for one number: by its formula for the common activations, else the module."""
    name = type(module).__name__
    if name == "ReLU":
        return max(0.0, value)
    if name == "Sigmoid":
        return 1.0 / (1.0 + math.exp(-value)) if value >= 0 else \
            math.exp(value) / (1.0 + math.exp(value))
    if name == "Tanh":
        return math.tanh(value)
    if name == "LeakyReLU":
        return value if value >= 0 else module.negative_slope * value
    with no_grad():
        return float(module(Tensor(xp.asarray([value], dtype=xp.float32))).array[0])


def _explain_conv(module: nn.Conv2d, x: ndarray, position: tuple[int, ...]) -> dict[str, Any]:
    d, i, j = position
    kernel, stride, padding, dilation = _window_settings(module)
    weight = module.weight.array
    per_group = weight.shape[1]
    group = d // (weight.shape[0] // module.groups)
    first = group * per_group
    padded = _padded(x[first:first + per_group].astype(xp.float64), padding)
    window, rows, cols = _window(padded, i, j, kernel, stride, dilation)
    v = weight[d].astype(xp.float64)
    bias = float(module.bias.array[d]) if module.bias is not None else 0.0
    per_channel = (window * v).sum(axis=(1, 2))
    return {
        "kind": "conv",
        "equation": "[H]d,i,j = [b]d + Σc Σa Σb [V]d,c,a,b · [X]c, s·i+δ·a, s·j+δ·b",
        "kernel_size": list(kernel), "stride": list(stride), "padding": _starts(padding),
        "dilation": list(dilation), "groups": module.groups, "first_channel": first,
        # the window's rows and columns in the unpadded input (negative or past the end: padding)
        "rows": [r - padding[0][0] for r in rows], "cols": [c - padding[1][0] for c in cols],
        "window": _nested(window), "kernel": _nested(v), "bias": bias,
        "per_channel": [float(s) for s in per_channel],
        "computed": float(per_channel.sum()) + bias,
    }


def _explain_pool(module: Module, x: ndarray, position: tuple[int, ...]) -> dict[str, Any]:
    d, i, j = position
    kernel, stride, padding, dilation = _window_settings(module)
    is_max = isinstance(module, nn.MaxPool2d)
    fill = -math.inf if is_max else 0.0
    padded = _padded(x[d:d + 1].astype(xp.float64), padding, fill)
    window, rows, cols = _window(padded, i, j, kernel, stride, dilation)
    rows = [r - padding[0][0] for r in rows]
    cols = [c - padding[1][0] for c in cols]
    inside = [(a, b) for a in range(kernel[0]) for b in range(kernel[1])
              if 0 <= rows[a] < x.shape[1] and 0 <= cols[b] < x.shape[2]]
    base = {"kernel_size": list(kernel), "stride": list(stride), "padding": _starts(padding),
            "rows": rows, "cols": cols, "window": _nested(window[0])}
    if is_max:
        a, b = (int(v) for v in xp.unravel_index(int(xp.argmax(window[0])), kernel))
        return {**base, "kind": "maxpool", "equation": "[H]d,i,j = max over the window",
                "winner": [a, b], "winner_input": [rows[a], cols[b]],
                "computed": float(window[0, a, b])}
    count = kernel[0] * kernel[1] if getattr(module, "count_include_pad", True) else len(inside)
    divisor = getattr(module, "divisor_override", None) or count
    return {**base, "kind": "avgpool", "equation": "[H]d,i,j = (1/n) Σa Σb [X]d, s·i+a, s·j+b",
            "divisor": divisor, "computed": float(window[0].sum()) / divisor}

