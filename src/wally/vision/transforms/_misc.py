"""``Pad``, ``RandomGrayscale``, ``RandomApply`` and ``ToPILImage``, with torchvision's
signatures, semantics and printed forms."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from wally.data._random import generator
from wally.data.transforms import Transform, _Layout, _pad, _padding
from wally.vision.transforms._color import rgb_to_grayscale
from wally.vision.transforms.functional import to_pil_image

__all__ = ["Pad", "RandomGrayscale", "RandomApply", "ToPILImage"]

_MODES = ("constant", "edge", "reflect", "symmetric")  # torchvision's names are NumPy's


class Pad(Transform):
    """Pad every side: ``padding`` is an int (all sides), ``(left/right, top/bottom)`` or
    ``(left, top, right, bottom)``; ``padding_mode`` ``'constant'`` (with ``fill``, a number or
    one per channel), ``'edge'``, ``'reflect'`` (mirror without the edge pixel) or
    ``'symmetric'`` (with it).

    Shape:
        ``(H, W)`` → ``(H + top + bottom, W + left + right)`` (channel axes unchanged).
    """

    def __init__(self, padding: int | Sequence[int], fill: Any = 0,
                 padding_mode: str = "constant") -> None:
        if padding_mode not in _MODES:
            raise ValueError(f"Pad: padding_mode should be one of {_MODES}, got "
                             f"{padding_mode!r}")
        self._sides = _padding(padding, "Pad")
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img: Any) -> Any:
        layout = _Layout(img, "Pad")
        return layout.wrap(_pad(layout, layout.array, *self._sides, self.fill,
                                self.padding_mode))

    def __repr__(self) -> str:
        return (f"Pad(padding={self.padding}, fill={self.fill}, "
                f"padding_mode={self.padding_mode})")


class RandomGrayscale(Transform):
    """With probability ``p`` (one uniform draw), the grey image in as many channels as the
    input has (:func:`~wally.vision.transforms.functional.rgb_to_grayscale`)."""

    def __init__(self, p: float = 0.1) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"RandomGrayscale: p must be a probability in [0, 1], got {p}")
        self.p = p

    def __call__(self, img: Any) -> Any:
        layout = _Layout(img, "RandomGrayscale")
        if layout.kind == "pil":
            channels = len(img.getbands())
        else:
            channels = 1 if layout.c_axis is None else layout.array.shape[layout.c_axis]
        if generator().random() < self.p:
            return rgb_to_grayscale(img, num_output_channels=channels)
        return img

    def __repr__(self) -> str:
        return f"RandomGrayscale(p={self.p})"


class RandomApply(Transform):
    """Apply all of ``transforms`` in turn with probability ``p``, else none (one draw)."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]], p: float = 0.5) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"RandomApply: p must be a probability in [0, 1], got {p}")
        self.transforms, self.p = list(transforms), p

    def __call__(self, img: Any) -> Any:
        if self.p < generator().random():
            return img
        for transform in self.transforms:
            img = transform(img)
        return img

    def __repr__(self) -> str:
        lines = [f"\n    p={self.p}"] + [f"\n    {transform}" for transform in self.transforms]
        return f"RandomApply({''.join(lines)}\n)"


class ToPILImage(Transform):
    """A Tensor ``(C, H, W)`` or NumPy image ``(H, W[, C])`` → a PIL image
    (:func:`~wally.vision.transforms.functional.to_pil_image`)."""

    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode

    def __call__(self, pic: Any) -> Any:
        return to_pil_image(pic, self.mode)

    def __repr__(self) -> str:
        return "ToPILImage()" if self.mode is None else f"ToPILImage(mode={self.mode})"
