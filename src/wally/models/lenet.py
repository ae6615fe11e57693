"""LeNet-5 (d2l §7.6) and LeNet with batch normalisation (d2l §8.5)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from wally import nn
from wally.models._layout import feature_size, image_size, init_cnn, set_input_size
from wally.models.registry import register_model

__all__ = ["lenet", "lenet_modern"]


@register_model
def lenet(
    in_channels: int = 1, num_classes: int = 10, input_size: int | Sequence[int] = 28
) -> nn.Sequential:
    """LeNet-5 as d2l writes it (§7.6 "Convolutional Neural Networks (LeNet)").

    Two convolutions with sigmoid and 2×2 average pooling, then three fully connected layers::

        conv(1→6, k5, p2) Sigmoid AvgPool(2, 2)    28×28 → 28×28 → 14×14
        conv(6→16, k5)    Sigmoid AvgPool(2, 2)    14×14 → 10×10 → 5×5
        Flatten  Linear(400→120) Sigmoid  Linear(120→84) Sigmoid  Linear(84→10)

    A plain ``nn.Sequential`` whose ``state_dict`` keys are those of d2l's ``net``
    (``0.weight`` … ``11.bias``). d2l's lazy layers are eager here, with their input sizes
    written out, so the model has its parameters as soon as it is built; the first
    ``Linear``'s 400 inputs are ``16 · 5 · 5`` at a 28×28 input and follow ``input_size``.
    Weights are initialised with d2l's :func:`~wally.models.init_cnn`.

    Args:
        in_channels: channels of the input images (1 for Fashion-MNIST).
        num_classes: outputs of the last layer.
        input_size: ``H`` (square) or ``(H, W)`` of the input; at least 12×12.

    Parameters: 61,706 at the defaults.

    Shape:
        - Input: ``(N, in_channels, 28, 28)``, recorded as ``model.input_size = (1, 28, 28)``.
        - Output: ``(N, num_classes)`` logits.

    Example::

        >>> net = lenet()
        >>> net(wally.randn(2, 1, 28, 28)).shape
        wally.Size([2, 10])
    """
    size = image_size("lenet", input_size)
    height, width = feature_size("lenet", size, [(5, 1, 2), (2, 2, 0), (5, 1, 0), (2, 2, 0)])
    net = nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * height * width, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, num_classes),
    )
    net.apply(init_cnn)
    set_input_size(net, in_channels, size)
    return net


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
_POOLS: dict[str, Callable[..., nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


@register_model
def lenet_modern(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int | Sequence[int] = 28,
    activation: str = "relu",
    pool: str = "max",
) -> nn.Sequential:
    """LeNet with batch normalisation (d2l §8.5 "Batch Normalization", ``BNLeNet``), modernised.

    d2l's ``BNLeNet`` layout, each convolution and hidden linear layer followed by batch
    normalisation and then the activation (conv → BN → act → pool), with ReLU and max-pooling
    in place of sigmoid and average pooling by default::

        conv(1→6, k5)   BatchNorm2d(6)  ReLU MaxPool(2, 2)    28×28 → 24×24 → 12×12
        conv(6→16, k5)  BatchNorm2d(16) ReLU MaxPool(2, 2)    12×12 → 8×8 → 4×4
        Flatten  Linear(256→120) BatchNorm1d(120) ReLU
                 Linear(120→84)  BatchNorm1d(84)  ReLU  Linear(84→10)

    ``state_dict`` keys ``0.weight`` … ``15.bias`` (with the BatchNorm buffers) as d2l's
    ``net``. ``activation="sigmoid", pool="avg"`` gives d2l's ``BNLeNet`` exactly; the keys and
    shapes don't depend on either choice. Weights are initialised with d2l's ``init_cnn``.

    Args:
        in_channels: channels of the input images.
        num_classes: outputs of the last layer.
        input_size: ``H`` (square) or ``(H, W)`` of the input; at least 16×16.
        activation: ``"relu"`` or ``"sigmoid"``.
        pool: ``"max"`` or ``"avg"``.

    Parameters: 44,878 at the defaults (plus 452 running statistics).

    Shape:
        - Input: ``(N, in_channels, 28, 28)``, recorded as ``model.input_size``.
        - Output: ``(N, num_classes)`` logits.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"lenet_modern: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
        )
    if pool not in _POOLS:
        raise ValueError(f"lenet_modern: pool must be one of {sorted(_POOLS)}, got {pool!r}")
    act, pool_layer = _ACTIVATIONS[activation], _POOLS[pool]
    size = image_size("lenet_modern", input_size)
    height, width = feature_size(
        "lenet_modern", size, [(5, 1, 0), (2, 2, 0), (5, 1, 0), (2, 2, 0)]
    )
    net = nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5), nn.BatchNorm2d(6),
        act(), pool_layer(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16),
        act(), pool_layer(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(16 * height * width, 120), nn.BatchNorm1d(120),
        act(), nn.Linear(120, 84), nn.BatchNorm1d(84),
        act(), nn.Linear(84, num_classes),
    )
    net.apply(init_cnn)
    set_input_size(net, in_channels, size)
    return net
