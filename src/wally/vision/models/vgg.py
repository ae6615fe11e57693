"""torchvision's VGG-11/13/16/19, with and without batch normalisation."""

from __future__ import annotations

from typing import Any

from wally import nn
from wally.tensor import Tensor
from wally.vision.models._common import check_no_weights, constant_if_present

__all__ = ["VGG", "make_layers", "cfgs", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
           "vgg16_bn", "vgg19", "vgg19_bn"]

cfgs: dict[str, list[str | int]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512,
          "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512,
          512, 512, 512, "M"],
}
"""The convolution stacks: output channels of each 3×3 convolution, ``"M"`` a 2×2 max pool
(A: VGG-11, B: VGG-13, D: VGG-16, E: VGG-19)."""


def make_layers(cfg: list[str | int], batch_norm: bool = False) -> nn.Sequential:
    """The ``features`` stack for ``cfg``: each number a 3×3 convolution (padding 1) then
    ReLU, with a BatchNorm2d between them when ``batch_norm``."""
    layers: list[nn.Module] = []
    in_channels = 3
    for item in cfg:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        channels = int(item)
        layers.append(nn.Conv2d(in_channels, channels, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(channels))
        layers.append(nn.ReLU(inplace=True))
        in_channels = channels
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """``features``, an adaptive average pool to 7×7, and three fully connected layers.

    Shape:
        ``(N, 3, H, W) → (N, num_classes)`` for ``H, W ≥ 32``.
    """

    def __init__(self, features: nn.Module, num_classes: int = 1000, init_weights: bool = True,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's: He normal (fan out) for convolutions, N(0, 0.01²) for the linear
        layers, zero biases, batch norms at the identity (weight 1, bias 0)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                constant_if_present(module.bias, 0)
            elif isinstance(module, nn.BatchNorm2d):
                constant_if_present(module.weight, 1)
                constant_if_present(module.bias, 0)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                constant_if_present(module.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def _vgg(name: str, cfg: str, batch_norm: bool, weights: Any, kwargs: dict[str, Any]) -> VGG:
    check_no_weights(name, weights, kwargs)
    return VGG(make_layers(cfgs[cfg], batch_norm=batch_norm), **kwargs)


def vgg11(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> VGG:
    """VGG-11 (configuration A); ``weights`` must be None."""
    return _vgg("vgg11", "A", False, weights, kwargs)


def vgg11_bn(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> VGG:
    """VGG-11 with batch normalisation; ``weights`` must be None."""
    return _vgg("vgg11_bn", "A", True, weights, kwargs)


def vgg13(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> VGG:
    """VGG-13 (configuration B); ``weights`` must be None."""
    return _vgg("vgg13", "B", False, weights, kwargs)


def vgg13_bn(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> VGG:
    """VGG-13 with batch normalisation; ``weights`` must be None."""
    return _vgg("vgg13_bn", "B", True, weights, kwargs)


def vgg16(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> VGG:
    """VGG-16 (configuration D); ``weights`` must be None."""
    return _vgg("vgg16", "D", False, weights, kwargs)


def vgg16_bn(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> VGG:
    """VGG-16 with batch normalisation; ``weights`` must be None."""
    return _vgg("vgg16_bn", "D", True, weights, kwargs)


def vgg19(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> VGG:
    """VGG-19 (configuration E); ``weights`` must be None."""
    return _vgg("vgg19", "E", False, weights, kwargs)


def vgg19_bn(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> VGG:
    """VGG-19 with batch normalisation; ``weights`` must be None."""
    return _vgg("vgg19_bn", "E", True, weights, kwargs)
