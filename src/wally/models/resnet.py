"""ResNet-18 and its residual block (d2l §8.6 "Residual Networks (ResNet) and ResNeXt")."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from wally import nn
from wally.models._layout import conv2d, feature_size, image_size, init_cnn, set_input_size
from wally.models.registry import register_model
from wally.nn import functional as F
from wally.tensor import Tensor

__all__ = ["Residual", "resnet", "resnet18", "resnet18_cifar", "RESNET18_ARCH"]

RESNET18_ARCH = ((2, 64), (2, 128), (2, 256), (2, 512))
"""``(num_residuals, num_channels)`` of ResNet-18's four stages, as d2l's ``ResNet18``."""


class Residual(nn.Module):
    """d2l's residual block: ``y = ReLU(x' + BN(conv(ReLU(BN(conv(x))))))``.

    Two 3×3 convolutions, each followed by batch normalisation, the first by ReLU too; the
    input ``x`` is added back before the last ReLU, so the block learns the residual
    ``f(x) − x``. ``x' = x``, or with ``use_1x1conv`` a 1×1 convolution of stride ``strides``
    that matches the channels and size of the main branch (``x' = conv3(x)``). Attribute
    names (``conv1``, ``conv2``, ``conv3``, ``bn1``, ``bn2``) are d2l's, and so are the
    ``state_dict`` keys.

    Args:
        num_channels: output channels.
        use_1x1conv: add the 1×1 convolution on the shortcut (needed when the channels or the
            size change).
        strides: stride of the first 3×3 convolution (and of the 1×1 one).
        in_channels: input channels; without it the convolutions reading the input are d2l's
            ``LazyConv2d``.

    Shape:
        ``(N, in_channels, H, W) → (N, num_channels, ⌊(H − 1)/strides⌋ + 1, ...)``.

    Example::

        >>> block = Residual(6, use_1x1conv=True, strides=2, in_channels=3)
        >>> block(wally.randn(4, 3, 6, 6)).shape
        wally.Size([4, 6, 3, 3])
    """

    conv3: nn.Module | None

    def __init__(
        self,
        num_channels: int,
        use_1x1conv: bool = False,
        strides: int = 1,
        in_channels: int | None = None,
    ) -> None:
        super().__init__()
        if not use_1x1conv and (
            strides != 1 or (in_channels is not None and in_channels != num_channels)
        ):
            raise ValueError(
                f"Residual: without use_1x1conv the shortcut adds the input as it is, so it "
                f"needs strides=1 and in_channels == num_channels, got strides={strides}, "
                f"in_channels={in_channels}, num_channels={num_channels}"
            )
        self.conv1 = conv2d(in_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = conv2d(in_channels, num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return F.relu(y + x)


def _stage(
    num_residuals: int, num_channels: int, in_channels: int, first_block: bool
) -> nn.Sequential:
    """d2l's ``ResNet.block``: the first residual halves the size (except in the first stage)."""
    blocks: list[nn.Module] = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blocks.append(Residual(num_channels, use_1x1conv=True, strides=2,
                                   in_channels=in_channels))
        else:
            blocks.append(Residual(num_channels, in_channels=in_channels))
        in_channels = num_channels
    return nn.Sequential(*blocks)


def _resnet(
    name: str,
    arch: Sequence[Sequence[int]],
    in_channels: int,
    num_classes: int,
    input_size: int | Sequence[int] | None,
    cifar: bool,
) -> nn.Sequential:
    size = image_size(name, input_size if input_size is not None else (32 if cifar else 96))
    stages = [(int(num_residuals), int(num_channels)) for num_residuals, num_channels in arch]
    if not stages:
        raise ValueError(f"{name}: arch must have at least one (num_residuals, num_channels) stage")
    if stages[0][1] != 64:
        # d2l's first stage has no 1×1 shortcut, so it must keep the stem's 64 channels.
        raise ValueError(
            f"{name}: the first stage must have 64 channels, as the stem does, got arch {arch}"
        )
    if cifar:
        stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=3, padding=1),
            nn.BatchNorm2d(64), nn.ReLU(),
        )
        windows = [(3, 1, 1)]
    else:
        stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
            nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        windows = [(7, 2, 3), (3, 2, 1)]
    windows += [(3, 2, 1)] * (len(stages) - 1)
    feature_size(name, size, windows)
    layers: OrderedDict[str, nn.Module] = OrderedDict([("0", stem)])
    channels = 64
    for i, (num_residuals, num_channels) in enumerate(stages):
        layers[f"b{i + 2}"] = _stage(num_residuals, num_channels, channels, first_block=(i == 0))
        channels = num_channels
    layers["last"] = nn.Sequential(
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(channels, num_classes)
    )
    net = nn.Sequential(layers)
    net.apply(init_cnn)
    set_input_size(net, in_channels, size)
    return net


@register_model
def resnet(
    arch: Sequence[Sequence[int]],
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int | Sequence[int] | None = None,
    cifar: bool = False,
) -> nn.Sequential:
    """d2l's ``ResNet(arch)``: a stem, one stage of :class:`Residual` blocks per
    ``(num_residuals, num_channels)`` of ``arch``, global average pooling and a linear layer.

    d2l's stem (``b1``) is conv(7×7, stride 2, padding 3) → BN → ReLU → MaxPool(3, 2, p1),
    a 4× reduction for its 96×96 inputs. ``cifar=True`` swaps it for the stem used on 32×32
    CIFAR images, conv(3×3, padding 1) → BN → ReLU with no pooling (the keys ``0.0.weight``,
    ``0.1.weight``, ... stay the same, only the first kernel's shape changes). Every stage
    but the first halves the height and width.

    Keys as d2l's ``net``: ``0.*`` (stem), ``b2.0.conv1.weight`` … (stages ``b2``, ``b3``,
    …), ``last.2.weight`` (the linear layer). Weights use d2l's ``init_cnn``.

    Args:
        arch: ``(num_residuals, num_channels)`` per stage, e.g. :data:`RESNET18_ARCH`.
        in_channels: channels of the input images.
        num_classes: outputs of the last layer.
        input_size: ``H`` (square) or ``(H, W)`` the model is meant for; ``None`` means 96
            (32 with ``cifar``). Global pooling lets any size through.
        cifar: use the 3×3 CIFAR stem without max-pooling.

    Shape:
        - Input: ``(N, in_channels, *input_size)``, recorded as ``model.input_size``.
        - Output: ``(N, num_classes)`` logits.
    """
    return _resnet("resnet", arch, in_channels, num_classes, input_size, cifar)


@register_model
def resnet18(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int | Sequence[int] | None = None,
    cifar: bool = False,
) -> nn.Sequential:
    """ResNet-18 as d2l builds it: ``ResNet(((2, 64), (2, 128), (2, 256), (2, 512)))``.

    The stem, four stages of two :class:`Residual` blocks (the first block of stages 2–4
    halves the size with a strided 1×1 shortcut), global average pooling, Linear(512→10):
    17 convolutions and a linear layer, 18 layers with weights. d2l trains it on
    Fashion-MNIST resized to 96×96 (96 → 24 after the stem → 3 before pooling).
    ``cifar=True`` (or :func:`resnet18_cifar`) uses a 3×3 stem without max-pooling for 32×32
    inputs. See :func:`resnet` for the keys. Weights use d2l's ``init_cnn``.

    Args:
        in_channels: channels of the input images.
        num_classes: outputs of the last layer.
        input_size: ``H`` (square) or ``(H, W)``; ``None`` means 96 (32 with ``cifar``).
        cifar: use the 3×3 CIFAR stem without max-pooling.

    Parameters: 11,178,378 at the defaults (plus 7,808 running statistics and 17 counters);
    11,175,818 with ``cifar=True``.

    Shape:
        - Input: ``(N, in_channels, 96, 96)``, recorded as ``model.input_size``.
        - Output: ``(N, num_classes)`` logits.
    """
    return _resnet("resnet18", RESNET18_ARCH, in_channels, num_classes, input_size, cifar)


@register_model
def resnet18_cifar(
    in_channels: int = 3, num_classes: int = 10, input_size: int | Sequence[int] = 32
) -> nn.Sequential:
    """ResNet-18 for 32×32 colour images (CIFAR-10): ``resnet18(3, 10, 32, cifar=True)``.

    d2l's ResNet-18 with the 3×3, stride-1 stem and no max-pooling, so that the four stages
    see 32, 16, 8 and 4 pixels. Keys are those of :func:`resnet18`.

    Parameters: 11,176,970 at the defaults.

    Shape:
        - Input: ``(N, 3, 32, 32)``, recorded as ``model.input_size``.
        - Output: ``(N, num_classes)`` logits.
    """
    return _resnet("resnet18_cifar", RESNET18_ARCH, in_channels, num_classes, input_size, True)
