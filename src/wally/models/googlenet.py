"""GoogLeNet and its Inception block (d2l §8.4 "Multi-Branch Networks (GoogLeNet)")."""

from __future__ import annotations

from collections.abc import Sequence

from wally import nn
from wally.models._layout import conv2d, feature_size, image_size, init_cnn, set_input_size
from wally.models.registry import register_model
from wally.nn import functional as F
from wally.ops import cat
from wally.tensor import Tensor

__all__ = ["Inception", "googlenet"]


class Inception(nn.Module):
    """d2l's Inception block: four branches side by side, concatenated along the channels.

    ::

        b1: 1×1 conv (c1)
        b2: 1×1 conv (c2[0]) → 3×3 conv, padding 1 (c2[1])
        b3: 1×1 conv (c3[0]) → 5×5 conv, padding 2 (c3[1])
        b4: 3×3 max-pool, stride 1, padding 1 → 1×1 conv (c4)

    every convolution followed by ReLU. The 1×1 convolutions before the 3×3 and 5×5 ones cut
    the channels, and with them the cost ``k·k·c_in·c_out`` per position. Attribute names
    (``b1_1``, ``b2_1``, ``b2_2``, ``b3_1``, ``b3_2``, ``b4_1``, ``b4_2``) are d2l's, so
    ``state_dict`` keys are too.

    Args:
        c1, c2, c3, c4: output channels of the branches, as in d2l (``c2``, ``c3`` are pairs).
        in_channels: input channels; without it the convolutions reading the input are d2l's
            ``LazyConv2d``.

    Shape:
        ``(N, in_channels, H, W) → (N, c1 + c2[1] + c3[1] + c4, H, W)``.

    Example::

        >>> block = Inception(64, (96, 128), (16, 32), 32, in_channels=192)
        >>> block(wally.randn(2, 192, 12, 12)).shape
        wally.Size([2, 256, 12, 12])
    """

    def __init__(
        self,
        c1: int,
        c2: Sequence[int],
        c3: Sequence[int],
        c4: int,
        in_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.b1_1 = conv2d(in_channels, c1, kernel_size=1)
        self.b2_1 = conv2d(in_channels, c2[0], kernel_size=1)
        self.b2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.b3_1 = conv2d(in_channels, c3[0], kernel_size=1)
        self.b3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = conv2d(in_channels, c4, kernel_size=1)
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x: Tensor) -> Tensor:
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return cat((b1, b2, b3, b4), dim=1)


def _inceptions(
    in_channels: int, specs: Sequence[tuple[int, tuple[int, int], tuple[int, int], int]]
) -> tuple[list[nn.Module], int]:
    """Inception blocks chained from ``in_channels``, and the channels they end with."""
    blocks: list[nn.Module] = []
    for c1, c2, c3, c4 in specs:
        block = Inception(c1, c2, c3, c4, in_channels=in_channels)
        blocks.append(block)
        in_channels = block.out_channels
    return blocks, in_channels


@register_model
def googlenet(
    in_channels: int = 1, num_classes: int = 10, input_size: int | Sequence[int] = 96
) -> nn.Sequential:
    """GoogLeNet as d2l writes it: a stem, nine Inception blocks, global average pooling.

    d2l's ``GoogleNet.net`` is ``Sequential(b1, b2, b3, b4, b5, LazyLinear(num_classes))``::

        b1: conv(1→64, k7, s2, p3) ReLU MaxPool(3, 2, p1)             96 → 48 → 24
        b2: conv(64→64, k1) ReLU conv(64→192, k3, p1) ReLU MaxPool(3, 2, p1)    24 → 12
        b3: Inception ×2 (→ 256, → 480) MaxPool(3, 2, p1)                        12 → 6
        b4: Inception ×5 (→ 512, 512, 512, 528, 832) MaxPool(3, 2, p1)           6 → 3
        b5: Inception ×2 (→ 832, → 1024) AdaptiveAvgPool2d((1, 1)) Flatten
        Linear(1024 → 10)

    Keys as d2l's: ``0.0.weight``, ``2.0.b1_1.weight``, …, ``5.weight``. d2l trains it on
    Fashion-MNIST resized to 96×96; global pooling lets any input size through (it is
    recorded in ``model.input_size``). Weights use d2l's ``init_cnn``.

    Args:
        in_channels: channels of the input images.
        num_classes: outputs of the last layer.
        input_size: ``H`` (square) or ``(H, W)`` the model is meant for.

    Parameters: 5,977,530 at the defaults.

    Shape:
        - Input: ``(N, in_channels, 96, 96)``, recorded as ``model.input_size``.
        - Output: ``(N, num_classes)`` logits.
    """
    size = image_size("googlenet", input_size)
    feature_size("googlenet", size, [(7, 2, 3), (3, 2, 1), (3, 2, 1), (3, 2, 1), (3, 2, 1)])
    b1 = nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
        nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    b2 = nn.Sequential(
        nn.Conv2d(64, 64, kernel_size=1), nn.ReLU(),
        nn.Conv2d(64, 192, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    blocks3, channels = _inceptions(192, [
        (64, (96, 128), (16, 32), 32),
        (128, (128, 192), (32, 96), 64),
    ])
    b3 = nn.Sequential(*blocks3, nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    blocks4, channels = _inceptions(channels, [
        (192, (96, 208), (16, 48), 64),
        (160, (112, 224), (24, 64), 64),
        (128, (128, 256), (24, 64), 64),
        (112, (144, 288), (32, 64), 64),
        (256, (160, 320), (32, 128), 128),
    ])
    b4 = nn.Sequential(*blocks4, nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    blocks5, channels = _inceptions(channels, [
        (256, (160, 320), (32, 128), 128),
        (384, (192, 384), (48, 128), 128),
    ])
    b5 = nn.Sequential(*blocks5, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
    net = nn.Sequential(b1, b2, b3, b4, b5, nn.Linear(channels, num_classes))
    net.apply(init_cnn)
    set_input_size(net, in_channels, size)
    return net
