"""Network in Network (d2l §8.3 "Network in Network (NiN)")."""

from __future__ import annotations

from collections.abc import Sequence

from wally import nn
from wally.models._layout import conv2d, feature_size, image_size, init_cnn, set_input_size
from wally.models.registry import register_model

__all__ = ["nin_block", "nin"]


def nin_block(
    out_channels: int,
    kernel_size: int,
    strides: int,
    padding: int,
    in_channels: int | None = None,
) -> nn.Sequential:
    """d2l's NiN block: a ``kernel_size`` convolution, then two 1×1 convolutions, each with ReLU.

    The 1×1 convolutions act as a per-pixel MLP over the channels (the note's
    ``corr2d_multi_in_out_1x1``). ``strides`` is d2l's name for the first convolution's
    stride. With ``in_channels`` that convolution is an eager ``Conv2d``, without it d2l's
    ``LazyConv2d``.

    Shape:
        ``(N, in_channels, H, W) → (N, out_channels, H', W')`` with
        ``H' = ⌊(H + 2·padding − kernel_size) / strides⌋ + 1``.
    """
    return nn.Sequential(
        conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )


@register_model
def nin(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int | Sequence[int] = 224,
    dropout: float = 0.5,
) -> nn.Sequential:
    """NiN as d2l writes it: four NiN blocks and global average pooling, no linear layer.

    ::

        nin_block(96, k11, s4, p0)  MaxPool(3, 2)     224 → 54 → 26
        nin_block(256, k5, s1, p2)  MaxPool(3, 2)      26 → 26 → 12
        nin_block(384, k3, s1, p1)  MaxPool(3, 2)      12 → 12 → 5   Dropout(0.5)
        nin_block(10, k3, s1, p1)   AdaptiveAvgPool2d((1, 1))  Flatten

    The last block has one channel per class, averaged over the image into the logits.
    Keys as d2l's ``net``: ``0.0.weight`` … ``7.4.bias``. Global pooling makes the model
    accept any input of at least 67×67; d2l trains it at 224×224, which ``input_size``
    records (a smaller one, e.g. 96, is 5× cheaper). Weights use d2l's ``init_cnn``.

    Args:
        in_channels: channels of the input images.
        num_classes: outputs (channels of the last block).
        input_size: ``H`` (square) or ``(H, W)`` the model is meant for; at least 67.
        dropout: drop probability before the last block.

    Parameters: 1,992,166 at the defaults.

    Shape:
        - Input: ``(N, in_channels, 224, 224)``, recorded as ``model.input_size``.
        - Output: ``(N, num_classes)`` logits.
    """
    size = image_size("nin", input_size)
    feature_size(
        "nin", size, [(11, 4, 0), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 2, 0), (3, 1, 1)]
    )
    net = nn.Sequential(
        nin_block(96, kernel_size=11, strides=4, padding=0, in_channels=in_channels),
        nn.MaxPool2d(3, stride=2),
        nin_block(256, kernel_size=5, strides=1, padding=2, in_channels=96),
        nn.MaxPool2d(3, stride=2),
        nin_block(384, kernel_size=3, strides=1, padding=1, in_channels=256),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(dropout),
        nin_block(num_classes, kernel_size=3, strides=1, padding=1, in_channels=384),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )
    net.apply(init_cnn)
    set_input_size(net, in_channels, size)
    return net
