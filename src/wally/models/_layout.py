"""What the model builders share: input sizes, feature-map arithmetic, d2l's initialisation.

The builders create eager layers (``Conv2d(in, out, ...)``, ``Linear(in, out)``) rather than
d2l's lazy ones, so a model has its parameters, their shapes and its parameter count as
soon as it is built. The one size d2l leaves to a lazy layer, the input of the first
``Linear`` after ``Flatten``, is worked out here from the input size with the note's
``floor((n + 2p − k)/s + 1)`` per axis.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from wally import nn
from wally._windows import output_size
from wally.nn.module import Module
from wally.nn.parameter import is_lazy

__all__ = [
    "Window",
    "image_size",
    "feature_size",
    "scaled_channels",
    "set_input_size",
    "conv2d",
    "init_cnn",
]

Window = tuple[int, int, int]
"""One sliding-window layer along each spatial axis: ``(kernel_size, stride, padding)``."""

_LARGEST_SEARCHED = 4096


def image_size(model: str, input_size: int | Sequence[int]) -> tuple[int, int]:
    """``input_size`` as ``(H, W)``: an int is a square image, a pair is ``(H, W)``."""
    if isinstance(input_size, numbers.Integral) and not isinstance(input_size, bool):
        size = (int(input_size), int(input_size))
    elif (
        isinstance(input_size, Sequence)
        and len(input_size) == 2
        and all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in input_size)
    ):
        size = (int(input_size[0]), int(input_size[1]))
    else:
        raise TypeError(
            f"{model}: expected input_size to be an int or a pair (H, W) of ints, "
            f"got {input_size!r}"
        )
    if min(size) < 1:
        raise ValueError(f"{model}: input_size must be positive, got {input_size!r}")
    return size


def _after(n: int, windows: Sequence[Window]) -> int:
    """Length of one axis after the windows, or 0 once it has vanished."""
    for kernel_size, stride, padding in windows:
        n = output_size(n, kernel_size, stride, 2 * padding)
        if n < 1:
            return 0
    return n


def feature_size(
    model: str, size: tuple[int, int], windows: Sequence[Window]
) -> tuple[int, int]:
    """``(H, W)`` of the feature map after ``windows`` (convolutions and poolings in order).

    Raises ``ValueError`` naming the model and the smallest input it accepts when the map
    vanishes on the way.

    >>> feature_size("lenet", (28, 28), [(5, 1, 2), (2, 2, 0), (5, 1, 0), (2, 2, 0)])
    (5, 5)
    """
    height, width = _after(size[0], windows), _after(size[1], windows)
    if height < 1 or width < 1:
        smallest = next(
            (n for n in range(1, _LARGEST_SEARCHED) if _after(n, windows) >= 1), None
        )
        need = f"at least {smallest}×{smallest}" if smallest else "a larger input"
        raise ValueError(
            f"{model}: input_size {size[0]}×{size[1]} is too small: its feature maps shrink "
            f"to nothing; {model} needs {need}"
        )
    return height, width


def scaled_channels(model: str, channels: int, width: float) -> int:
    """``round(channels · width)``, at least 1: the channels of a narrower (or wider) layer."""
    if not width > 0:
        raise ValueError(f"{model}: width must be positive, got {width!r}")
    return max(1, round(channels * width))


def set_input_size(model: Module, in_channels: int, size: tuple[int, int]) -> None:
    """Record the ``(C, H, W)`` input the model was built for as ``model.input_size``."""
    model.input_size = (in_channels, *size)


def conv2d(
    in_channels: int | None,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
) -> nn.Module:
    """``Conv2d`` when ``in_channels`` is known, d2l's ``LazyConv2d`` when it is ``None``."""
    if in_channels is None:
        return nn.LazyConv2d(out_channels, kernel_size, stride=stride, padding=padding)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)


def init_cnn(module: Module) -> None:
    """d2l's ``init_cnn``: Xavier-uniform weights for every ``Conv2d`` and ``Linear``.

    ``U(−a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``, which keeps the variance of
    activations and of gradients about constant through sigmoid and ReLU stacks; biases keep
    PyTorch's default. d2l applies it to every model of its CNN chapters, and so do the
    builders here. Lazy layers that have not seen an input yet are left alone.

    Example::

        >>> net = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU()).apply(init_cnn)
    """
    if isinstance(module, nn.Linear | nn.Conv2d) and not is_lazy(module.weight):
        nn.init.xavier_uniform_(module.weight)
