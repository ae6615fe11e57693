"""P4CNN and its plain twin Z2CNN (Cohen & Welling 2016, §8.1 on rotated MNIST), small.

``p4cnn`` lifts the image to p4 (:class:`~wally.nn.P4ConvZ2`), stacks group convolutions
(:class:`~wally.nn.P4ConvP4`), pools over the four rotations (:class:`~wally.nn.RotationPool`)
and then over all positions, so its logits are **exactly invariant to 90° turns** of the input:
every layer before the rotation pool is p4-equivariant, the rotation pool leaves a map that
turns with the input, and a global pool does not care where a value sits::

    p4cnn(rot x) = p4cnn(x)        (to rounding, for every input size)

That needs every layer's geometry to be symmetric under a quarter turn, so the builder allows
only what keeps it: odd kernels, stride 1, padding ``k // 2`` on every side, no spatial pooling
before the global one (a 2×2 pool on an odd-sized map drops its last row and column, which a
turn moves to the first).

``z2cnn`` is the same network with ordinary convolutions of twice the channels, which has
about the same number of parameters (a p4 layer of ``c`` fields has ``c·c'·4·k²`` weights, a
plain one of ``2c`` channels ``2c·2c'·k²``): the baseline of the paper's comparison.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from wally import nn
from wally.models._layout import image_size, set_input_size
from wally.models.registry import register_model
from wally.nn.module import Module

__all__ = ["p4cnn", "z2cnn"]


def _check(name: str, channels: Sequence[int], kernel_size: int, pool: str) -> list[int]:
    widths = [int(c) for c in channels]
    if not widths or any(c < 1 for c in widths):
        raise ValueError(f"{name}: channels must be one or more positive ints, got "
                         f"{channels!r}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{name}: kernel_size must be odd (a turned even kernel does not "
                         f"land on its own window centre), got {kernel_size}")
    if pool not in ("max", "mean"):
        raise ValueError(f"{name}: pool must be 'max' or 'mean', got {pool!r}")
    return widths


@register_model
def p4cnn(
    in_channels: int = 1,
    num_classes: int = 10,
    channels: Sequence[int] = (8, 16, 32),
    kernel_size: int = 3,
    pool: str = "max",
    input_size: int | Sequence[int] = 28,
) -> nn.Sequential:
    """A p4 group-convolutional classifier whose logits are invariant to 90° turns.

    ::

        lift    P4ConvZ2(C_in → c1, k, p = k//2)  P4BatchNorm2d  ReLU     (N, 4·c1, H, W)
        blockL  P4ConvP4(c_(L-1) → c_L, k, p = k//2)  P4BatchNorm2d  ReLU (N, 4·c_L, H, W)
        rotation_pool  RotationPool(pool)                                 (N, c_L, H, W)
        spatial_pool   AdaptiveAvgPool2d(1)  Flatten                     (N, c_L)
        fc             Linear(c_L → num_classes)

    Args:
        in_channels: channels of the input images.
        num_classes: outputs.
        channels: fields of each p4 layer (each field is 4 maps).
        kernel_size: odd.
        pool: over the rotations, ``"max"`` (Cohen & Welling's choice) or ``"mean"``.
        input_size: ``H`` or ``(H, W)``, only recorded (``model.input_size``): the network
            takes any size.

    Parameters: 23,610 at the defaults.

    Shape:
        - Input: ``(N, in_channels, H, W)``.  - Output: ``(N, num_classes)``.

    Example::

        >>> net = p4cnn().eval()
        >>> x = wally.randn(2, 1, 28, 28)
        >>> bool(((net(x) - net(wally.rot90(x, 1, (2, 3)))).abs() < 1e-5).all())
        True
    """
    widths = _check("p4cnn", channels, kernel_size, pool)
    size = image_size("p4cnn", input_size)
    layers: list[tuple[str, Module]] = []
    previous = in_channels
    for index, width in enumerate(widths):
        conv = (nn.P4ConvZ2 if index == 0 else nn.P4ConvP4)(
            previous, width, kernel_size, padding=kernel_size // 2)
        name = "lift" if index == 0 else f"block{index}"
        layers += [(f"{name}_conv", conv), (f"{name}_bn", nn.P4BatchNorm2d(width)),
                   (f"{name}_relu", nn.ReLU())]
        previous = width
    layers += [("rotation_pool", nn.RotationPool(pool)),
               ("spatial_pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
               ("fc", nn.Linear(previous, num_classes))]
    net = nn.Sequential(OrderedDict(layers))
    set_input_size(net, in_channels, size)
    return net


@register_model
def z2cnn(
    in_channels: int = 1,
    num_classes: int = 10,
    channels: Sequence[int] = (16, 32, 64),
    kernel_size: int = 3,
    input_size: int | Sequence[int] = 28,
) -> nn.Sequential:
    """:func:`p4cnn`'s plain twin: the same stack with ``Conv2d`` and ``BatchNorm2d``, no
    rotation pool, twice the channels by default (about the same parameter count). Its
    logits change when the input is turned.

    Parameters: 24,170 at the defaults (p4cnn: 23,610).

    Shape:
        - Input: ``(N, in_channels, H, W)``.  - Output: ``(N, num_classes)``.

    Example::

        >>> z2cnn()(wally.randn(2, 1, 28, 28)).shape
        wally.Size([2, 10])
    """
    widths = _check("z2cnn", channels, kernel_size, "max")
    size = image_size("z2cnn", input_size)
    layers: list[tuple[str, Module]] = []
    previous = in_channels
    for index, width in enumerate(widths):
        name = "conv1" if index == 0 else f"block{index}"
        layers += [(f"{name}_conv", nn.Conv2d(previous, width, kernel_size,
                                              padding=kernel_size // 2)),
                   (f"{name}_bn", nn.BatchNorm2d(width)), (f"{name}_relu", nn.ReLU())]
        previous = width
    layers += [("spatial_pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
               ("fc", nn.Linear(previous, num_classes))]
    net = nn.Sequential(OrderedDict(layers))
    set_input_size(net, in_channels, size)
    return net
