"""The study note's parameter argument: from a fully connected layer to a convolution.

A hidden map ``H`` of the image's size computed from an image ``X`` of ``height × width``
pixels (``c_in`` channels in, ``c_out`` out) by

* a **fully connected** layer, ``[H]i,j = [U]i,j + Σk Σl [W]i,j,k,l [X]k,l``: one weight
  per pair of pixels, ``(h·w·c_in)·(h·w·c_out)`` weights and ``h·w·c_out`` biases;
* re-indexed by offsets ``k = i + a, l = j + b`` and made **translation invariant**, ``V``
  and ``U`` no longer depending on ``(i, j)``: ``[H]i,j = u + Σa Σb [V]a,b [X]i+a,j+b``,
  one weight per offset. The note counts ``h·w`` offsets (offsets taken modulo the image
  size); without wrapping around, ``|a| < h, |b| < w`` gives ``(2h − 1)(2w − 1)``;
* made **local** instead, each position keeping its own window
  ``|a|, |b| ≤ Δ`` (a *locally connected* layer: translation invariance dropped):
  ``h·w·(2Δ + 1)²·c_in·c_out`` weights;
* both: the **convolution** ``[H]i,j = u + Σ_{a=−Δ..Δ} Σ_{b=−Δ..Δ} [V]a,b [X]i+a,j+b``,
  ``(2Δ + 1)²·c_in·c_out`` weights and ``c_out`` biases, whatever the image size.

For the note's 1000 × 1000 image: 10¹² weights, 10⁶ with translation invariance (10⁶ times
fewer), and ``(2Δ + 1)² = 441`` with locality too (Δ = 10; another 10⁶/441 ≈ 2,268 times
fewer; the note writes the factor as 10⁶/Δ²).

Example::

    >>> counts = parameter_counts(1000, delta=10)
    >>> counts.convolutional.weights, counts.reduction("fully_connected", "convolutional")
    (441, 2267573696.145125)
    >>> print(counts)                        # the table ``wally explain params`` prints
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LayerCount", "ParameterCounts", "parameter_counts"]


@dataclass(frozen=True)
class LayerCount:
    """The parameters of one way of computing the hidden map."""

    key: str
    name: str
    equation: str
    weights: int
    biases: int

    @property
    def total(self) -> int:
        return self.weights + self.biases


@dataclass(frozen=True)
class ParameterCounts:
    """The note's four layers (:func:`parameter_counts`), in the order of the argument."""

    height: int
    width: int
    delta: int
    in_channels: int
    out_channels: int
    fully_connected: LayerCount
    translation_invariant: LayerCount
    locally_connected: LayerCount
    convolutional: LayerCount
    weights_without_wraparound: int

    @property
    def layers(self) -> list[LayerCount]:
        return [self.fully_connected, self.translation_invariant, self.locally_connected,
                self.convolutional]

    def reduction(self, larger: str, smaller: str) -> float:
        """How many times fewer weights ``smaller`` has than ``larger`` (attribute names)."""
        big: LayerCount = getattr(self, larger)
        small: LayerCount = getattr(self, smaller)
        return big.weights / small.weights

    def to_dict(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "width": self.width,
            "delta": self.delta,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "layers": {
                layer.key: {"name": layer.name, "equation": layer.equation,
                            "weights": layer.weights, "biases": layer.biases,
                            "total": layer.total}
                for layer in self.layers
            },
            "translation_invariant_weights_without_wraparound": self.weights_without_wraparound,
            "reductions": {
                "translation_invariance": self.reduction("fully_connected",
                                                         "translation_invariant"),
                "locality": self.reduction("translation_invariant", "convolutional"),
                "locality_alone": self.reduction("fully_connected", "locally_connected"),
                "both": self.reduction("fully_connected", "convolutional"),
            },
        }

    def __str__(self) -> str:
        h, w, d = self.height, self.width, self.delta
        window = (2 * d + 1) ** 2
        head = (
            f"One layer from a {h}×{w} image with {self.in_channels} channel(s) to a {h}×{w} "
            f"hidden map with {self.out_channels} channel(s), window half-width Δ = {d}"
        )
        columns = ["layer", "equation", "weights", "biases", "× fewer weights than FC"]
        rows = [columns] + [
            [layer.name, layer.equation, f"{layer.weights:,}", f"{layer.biases:,}",
             _factor(self.fully_connected.weights / layer.weights)]
            for layer in self.layers
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
        lines = [
            "  ".join(c.ljust(wd) if i < 2 else c.rjust(wd)
                      for i, (c, wd) in enumerate(zip(r, widths, strict=True))).rstrip()
            for r in rows
        ]
        rule = "-" * max(len(line) for line in lines)
        invariance = self.reduction("fully_connected", "translation_invariant")
        locality = self.reduction("translation_invariant", "convolutional")
        both = self.reduction("fully_connected", "convolutional")
        notes = [
            f"translation invariance: {_factor(invariance)}× fewer weights (h·w = {h * w:,}: "
            "one weight per offset (a, b) instead of one per pair of pixels; offsets modulo "
            f"the image size, as the note counts, or {self.weights_without_wraparound:,} "
            f"weights for |a| < {h}, |b| < {w})",
            f"locality: {_factor(locality)}× fewer again (h·w/(2Δ+1)² = {h * w:,}/{window:,}; "
            f"the note rounds (2Δ+1)² to Δ²); alone, without invariance, the same factor "
            "takes the fully connected layer to the locally connected one",
            f"both: {_factor(both)}× fewer weights than the fully connected layer",
        ]
        return "\n".join([head, rule, lines[0], rule, *lines[1:], rule, *notes])


def _factor(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.3g}"


def _image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        size = (image_size, image_size)
    elif isinstance(image_size, Sequence) and len(image_size) == 2:
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise TypeError(
            f"parameter_counts: image_size must be an int or a pair (height, width), "
            f"got {image_size!r}"
        )
    if min(size) < 1:
        raise ValueError(f"parameter_counts: image_size must be positive, got {image_size!r}")
    return size


def parameter_counts(
    image_size: int | Sequence[int] = 1000,
    delta: int = 10,
    in_channels: int = 1,
    out_channels: int = 1,
) -> ParameterCounts:
    """Parameters of a fully connected, a translation-invariant, a locally connected and a
    convolutional layer from a ``image_size`` image to a hidden map of the same size, with
    windows ``|a|, |b| ≤ delta`` (the module docstring has the equations and counts).

    Args:
        image_size: ``n`` for ``n × n`` pixels, or ``(height, width)``.
        delta: the window's half-width Δ ≥ 1; the kernel is ``(2Δ + 1) × (2Δ + 1)``. Δ = 0
            is refused: a 1×1 window sees no neighbour, so there is no locality to argue
            about (the note's argument needs a window around each pixel).
        in_channels, out_channels: channels of the image and of the hidden map.

    Example::

        >>> parameter_counts(1000).fully_connected.weights
        1000000000000
    """
    height, width = _image_size(image_size)
    for name, value, least in (("delta", delta, 1), ("in_channels", in_channels, 1),
                               ("out_channels", out_channels, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"parameter_counts: {name} must be an integer ≥ {least}, "
                             f"got {value!r}")
    pixels = height * width
    window = (2 * delta + 1) ** 2
    c_in, c_out = in_channels, out_channels
    return ParameterCounts(
        height=height,
        width=width,
        delta=delta,
        in_channels=c_in,
        out_channels=c_out,
        fully_connected=LayerCount(
            "fully_connected", "fully connected",
            "[H]i,j = [U]i,j + Σk Σl [W]i,j,k,l [X]k,l",
            pixels * c_in * pixels * c_out, pixels * c_out,
        ),
        translation_invariant=LayerCount(
            "translation_invariant", "translation invariant",
            "[H]i,j = u + Σa Σb [V]a,b [X]i+a,j+b",
            pixels * c_in * c_out, c_out,
        ),
        locally_connected=LayerCount(
            "locally_connected", "locally connected",
            "[H]i,j = [U]i,j + Σ|a|,|b|≤Δ [V]i,j,a,b [X]i+a,j+b",
            pixels * window * c_in * c_out, pixels * c_out,
        ),
        convolutional=LayerCount(
            "convolutional", "convolution",
            "[H]i,j = u + Σ|a|,|b|≤Δ [V]a,b [X]i+a,j+b",
            window * c_in * c_out, c_out,
        ),
        weights_without_wraparound=(2 * height - 1) * (2 * width - 1) * c_in * c_out,
    )
