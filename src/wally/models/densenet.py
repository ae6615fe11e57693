"""DenseNet and its dense and transition blocks (d2l §8.7 "Densely Connected Networks")."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, overload

from wally import nn
from wally.models._layout import conv2d, feature_size, image_size, init_cnn, set_input_size
from wally.models.registry import register_model
from wally.ops import cat
from wally.tensor import Tensor

__all__ = ["conv_block", "DenseBlock", "TransitionBlock", "densenet"]


def _batch_norm(num_features: int | None) -> nn.Module:
    return nn.LazyBatchNorm2d() if num_features is None else nn.BatchNorm2d(num_features)


def conv_block(num_channels: int, in_channels: int | None = None) -> nn.Sequential:
    """d2l's DenseNet ``conv_block``: BatchNorm → ReLU → 3×3 convolution (padding 1).

    The "pre-activation" order of ResNet v2. Without ``in_channels`` the layers are d2l's
    lazy ones.

    Shape:
        ``(N, in_channels, H, W) → (N, num_channels, H, W)``.
    """
    return nn.Sequential(
        _batch_norm(in_channels), nn.ReLU(),
        conv2d(in_channels, num_channels, kernel_size=3, padding=1),
    )


class DenseBlock(nn.Module):
    """d2l's dense block: ``num_convs`` conv blocks, each fed all the feature maps before it.

    ``x_{i+1} = cat(x_i, conv_block_i(x_i))`` along the channels, so the output has
    ``in_channels + num_convs · num_channels`` channels: ``num_channels`` is the growth rate.
    The conv blocks live in ``self.net`` as in d2l (keys ``net.0.0.weight``, ...).

    Args:
        num_convs: number of conv blocks.
        num_channels: output channels of each conv block (the growth rate).
        in_channels: input channels; without it the layers are d2l's lazy ones.

    Shape:
        ``(N, in_channels, H, W) → (N, in_channels + num_convs · num_channels, H, W)``.

    Example::

        >>> block = DenseBlock(2, 10, in_channels=3)
        >>> block(wally.randn(4, 3, 8, 8)).shape
        wally.Size([4, 23, 8, 8])
    """

    def __init__(self, num_convs: int, num_channels: int, in_channels: int | None = None) -> None:
        super().__init__()
        blocks = []
        for i in range(num_convs):
            block_in = None if in_channels is None else in_channels + i * num_channels
            blocks.append(conv_block(num_channels, block_in))
        self.net = nn.Sequential(*blocks)
        self.out_channels = (
            None if in_channels is None else in_channels + num_convs * num_channels
        )

    def forward(self, x: Tensor) -> Tensor:
        for block in self.net:
            y = block(x)
            x = cat((x, y), dim=1)
        return x


class TransitionBlock(nn.Sequential):
    """d2l's ``transition_block``: BatchNorm → ReLU → 1×1 convolution → 2×2 average pooling.

    Placed between dense blocks, it cuts the channels (the 1×1 convolution, to
    ``num_channels``) and halves the height and width (the pooling). A ``Sequential`` as in
    d2l, so the keys are ``0.weight`` (BatchNorm), ``2.weight`` (convolution), ....

    Args:
        num_channels: output channels.
        in_channels: input channels; without it the layers are d2l's lazy ones.

    Shape:
        ``(N, in_channels, H, W) → (N, num_channels, ⌊H/2⌋, ⌊W/2⌋)``.
    """

    def __init__(self, num_channels: int, in_channels: int | None = None) -> None:
        super().__init__(
            _batch_norm(in_channels), nn.ReLU(),
            conv2d(in_channels, num_channels, kernel_size=1),
            nn.AvgPool2d(kernel_size=2, stride=2),
        )

    # Sequential slices through type(self)(OrderedDict(...)), which this __init__ doesn't take.
    @overload
    def __getitem__(self, idx: slice) -> nn.Sequential: ...

    @overload
    def __getitem__(self, idx: int) -> nn.Module: ...

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)


@register_model
def densenet(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int | Sequence[int] = 96,
    num_channels: int = 64,
    growth_rate: int = 32,
    arch: Sequence[int] = (4, 4, 4, 4),
) -> nn.Sequential:
    """DenseNet as d2l writes it: a ResNet stem, dense blocks joined by transition blocks.

    ::

        0:           conv(1→64, k7, s2, p3) BN ReLU MaxPool(3, 2, p1)     96 → 48 → 24
        dense_blk1:  DenseBlock(4, 32)   64 → 192 channels
        tran_blk1:   TransitionBlock     192 → 96 channels,               24 → 12
        dense_blk2 … tran_blk3 …         (96 → 224 → 112 → 240 → 120 → 248), 12 → 6 → 3
        dense_blk4:  DenseBlock(4, 32)   120 → 248 channels
        last:        BN ReLU AdaptiveAvgPool2d((1, 1)) Flatten Linear(248 → 10)

    Each transition block halves the channels (``num_channels //= 2``) as in d2l. Keys as
    d2l's ``net``: ``0.0.weight``, ``dense_blk1.net.0.0.weight``, ``tran_blk1.2.weight``, …,
    ``last.4.weight``. d2l trains it on Fashion-MNIST resized to 96×96; global pooling lets
    other sizes through (at least 29×29). Weights use d2l's ``init_cnn``.

    Args:
        in_channels: channels of the input images.
        num_classes: outputs of the last layer.
        input_size: ``H`` (square) or ``(H, W)`` the model is meant for.
        num_channels: channels out of the stem.
        growth_rate: channels each conv block adds.
        arch: number of conv blocks in each dense block.

    Parameters: 758,226 at the defaults (plus 6,608 running statistics and 21 counters).

    Shape:
        - Input: ``(N, in_channels, 96, 96)``, recorded as ``model.input_size``.
        - Output: ``(N, num_classes)`` logits.
    """
    size = image_size("densenet", input_size)
    arch = [int(num_convs) for num_convs in arch]
    if not arch:
        raise ValueError("densenet: arch must list at least one dense block")
    feature_size("densenet", size, [(7, 2, 3), (3, 2, 1)] + [(2, 2, 0)] * (len(arch) - 1))
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["0"] = nn.Sequential(
        nn.Conv2d(in_channels, num_channels, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2d(num_channels), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    for i, num_convs in enumerate(arch):
        layers[f"dense_blk{i + 1}"] = DenseBlock(num_convs, growth_rate, in_channels=num_channels)
        num_channels += num_convs * growth_rate
        if i != len(arch) - 1:
            layers[f"tran_blk{i + 1}"] = TransitionBlock(num_channels // 2, num_channels)
            num_channels //= 2
    layers["last"] = nn.Sequential(
        nn.BatchNorm2d(num_channels), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        nn.Linear(num_channels, num_classes),
    )
    net = nn.Sequential(layers)
    net.apply(init_cnn)
    set_input_size(net, in_channels, size)
    return net
