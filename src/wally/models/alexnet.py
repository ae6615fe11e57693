"""AlexNet (d2l §8.1 "Deep Convolutional Neural Networks (AlexNet)")."""

from __future__ import annotations

from collections.abc import Sequence

from wally import nn
from wally.models._layout import (
    feature_size,
    image_size,
    init_cnn,
    scaled_channels,
    set_input_size,
)
from wally.models.registry import register_model

__all__ = ["alexnet"]


@register_model
def alexnet(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int | Sequence[int] = 224,
    width: float = 1.0,
    hidden_features: int = 4096,
    dropout: float = 0.5,
) -> nn.Sequential:
    """AlexNet as d2l writes it: five convolutions, three max-pools, three linear layers.

    ::

        conv(1→96, k11, s4, p1) ReLU MaxPool(3, 2)    224 → 54 → 26
        conv(96→256, k5, p2)    ReLU MaxPool(3, 2)     26 → 26 → 12
        conv(256→384, k3, p1) ReLU  conv(384→384, k3, p1) ReLU
        conv(384→256, k3, p1) ReLU  MaxPool(3, 2)      12 → 12 → 5
        Flatten Linear(6400→4096) ReLU Dropout(0.5)
                Linear(4096→4096) ReLU Dropout(0.5) Linear(4096→10)

    A plain ``nn.Sequential`` with d2l's keys (``0.weight`` … ``20.bias``). d2l trains it on
    Fashion-MNIST resized to 224×224. On a CPU, a smaller ``input_size`` (at least 65; the
    first linear layer follows it), ``width`` (scales the convolution channels) and
    ``hidden_features`` make it trainable, e.g. ``alexnet(input_size=67, width=0.25,
    hidden_features=512)``; the keys stay the same. Weights use d2l's ``init_cnn``.

    Args:
        in_channels: channels of the input images.
        num_classes: outputs of the last layer.
        input_size: ``H`` (square) or ``(H, W)`` of the input.
        width: multiplier of the convolution channels (96, 256, 384, 384, 256).
        hidden_features: width of the two hidden linear layers.
        dropout: drop probability after each hidden linear layer.

    Parameters: 46,764,746 at the defaults (26,218,496 of them in the first linear layer).

    Shape:
        - Input: ``(N, in_channels, 224, 224)``, recorded as ``model.input_size``.
        - Output: ``(N, num_classes)`` logits.
    """
    size = image_size("alexnet", input_size)
    height, width_out = feature_size(
        "alexnet", size,
        [(11, 4, 1), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1), (3, 2, 0)],
    )
    c1, c2, c3, c4, c5 = (scaled_channels("alexnet", c, width) for c in (96, 256, 384, 384, 256))
    net = nn.Sequential(
        nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, padding=1),
        nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c1, c2, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(c4, c5, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
        nn.Linear(c5 * height * width_out, hidden_features), nn.ReLU(), nn.Dropout(p=dropout),
        nn.Linear(hidden_features, hidden_features), nn.ReLU(), nn.Dropout(p=dropout),
        nn.Linear(hidden_features, num_classes),
    )
    net.apply(init_cnn)
    set_input_size(net, in_channels, size)
    return net
