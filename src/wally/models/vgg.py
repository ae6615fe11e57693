"""VGG (d2l §8.2 "Networks Using Blocks (VGG)")."""

from __future__ import annotations

from collections.abc import Sequence

from wally import nn
from wally.models._layout import (
    Window,
    conv2d,
    feature_size,
    image_size,
    init_cnn,
    scaled_channels,
    set_input_size,
)
from wally.models.registry import register_model

__all__ = ["vgg_block", "vgg", "vgg11"]

VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def vgg_block(num_convs: int, out_channels: int, in_channels: int | None = None) -> nn.Sequential:
    """d2l's VGG block: ``num_convs`` × (3×3 convolution with padding 1, ReLU), then a 2×2 max-pool.

    The convolutions keep the height and width; the pool halves them. With ``in_channels``
    the first convolution is an eager ``Conv2d``, without it d2l's ``LazyConv2d``.

    Shape:
        ``(N, in_channels, H, W) → (N, out_channels, ⌊H/2⌋, ⌊W/2⌋)``.
    """
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers += [conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def _vgg(
    name: str,
    arch: Sequence[Sequence[int]],
    in_channels: int,
    num_classes: int,
    input_size: int | Sequence[int],
    hidden_features: int,
    dropout: float,
) -> nn.Sequential:
    size = image_size(name, input_size)
    arch = [(int(num_convs), int(out_channels)) for num_convs, out_channels in arch]
    if not arch:
        raise ValueError(f"{name}: arch must have at least one (num_convs, out_channels) block")
    windows: list[Window] = []
    blocks: list[nn.Module] = []
    channels = in_channels
    for num_convs, out_channels in arch:
        blocks.append(vgg_block(num_convs, out_channels, in_channels=channels))
        windows += [(3, 1, 1)] * num_convs + [(2, 2, 0)]
        channels = out_channels
    height, width = feature_size(name, size, windows)
    net = nn.Sequential(
        *blocks, nn.Flatten(),
        nn.Linear(channels * height * width, hidden_features), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden_features, hidden_features), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden_features, num_classes),
    )
    net.apply(init_cnn)
    set_input_size(net, in_channels, size)
    return net


@register_model
def vgg(
    arch: Sequence[Sequence[int]],
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int | Sequence[int] = 224,
    hidden_features: int = 4096,
    dropout: float = 0.5,
) -> nn.Sequential:
    """d2l's ``VGG(arch)``: one :func:`vgg_block` per ``(num_convs, out_channels)`` of ``arch``,
    then Flatten and three linear layers (hidden ones with ReLU and Dropout).

    Keys as d2l's ``net``: ``0.0.weight`` (first block's first convolution) …, then
    ``{len(arch) + 1}.weight``, ``{len(arch) + 4}.weight``, ``{len(arch) + 7}.weight`` for the
    linear layers. The first linear layer's input follows ``input_size``, which each block
    halves. Weights use d2l's ``init_cnn``.

    Args:
        arch: ``(num_convs, out_channels)`` per block, e.g. :data:`VGG11_ARCH`.
        in_channels: channels of the input images.
        num_classes: outputs of the last layer.
        input_size: ``H`` (square) or ``(H, W)``; at least ``2 ** len(arch)``.
        hidden_features: width of the two hidden linear layers (4096 in d2l).
        dropout: drop probability after each hidden linear layer.

    Shape:
        - Input: ``(N, in_channels, *input_size)``, recorded as ``model.input_size``.
        - Output: ``(N, num_classes)`` logits.
    """
    return _vgg("vgg", arch, in_channels, num_classes, input_size, hidden_features, dropout)


@register_model
def vgg11(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int | Sequence[int] = 224,
    width: float = 1.0,
    hidden_features: int = 4096,
    dropout: float = 0.5,
) -> nn.Sequential:
    """VGG-11 as d2l builds it: ``VGG(arch=((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)))``.

    Eight 3×3 convolutions in five blocks, each block ending in a 2×2 max-pool (224 → 7),
    then Linear(25088→4096) ReLU Dropout, Linear(4096→4096) ReLU Dropout, Linear(4096→10).
    Keys ``0.0.weight`` … ``4.2.bias``, ``6.weight``, ``9.weight``, ``12.weight``.

    d2l trains it on Fashion-MNIST at 224×224 with the channels divided by four, which is
    ``vgg11(width=0.25)`` here (the keys stay the same). On a CPU, a smaller ``input_size``
    (a multiple of 32: each block halves it) and ``hidden_features`` help further: most of
    the default model's parameters are in the first linear layer.

    Args:
        in_channels: channels of the input images.
        num_classes: outputs of the last layer.
        input_size: ``H`` (square) or ``(H, W)``; at least 32.
        width: multiplier of the convolution channels (64, 128, 256, 512, 512).
        hidden_features: width of the two hidden linear layers.
        dropout: drop probability after each hidden linear layer.

    Parameters: 128,806,154 at the defaults (102,764,544 of them in the first linear layer);
    ``width=0.25``: 43,093,322.

    Shape:
        - Input: ``(N, in_channels, 224, 224)``, recorded as ``model.input_size``.
        - Output: ``(N, num_classes)`` logits.
    """
    arch = [(n, scaled_channels("vgg11", c, width)) for n, c in VGG11_ARCH]
    return _vgg("vgg11", arch, in_channels, num_classes, input_size, hidden_features, dropout)
