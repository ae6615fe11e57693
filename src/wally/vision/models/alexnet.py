"""torchvision's AlexNet (the "one weird trick" variant: 64-192-384-256-256 channels)."""

from __future__ import annotations

from typing import Any

from wally import nn
from wally.tensor import Tensor
from wally.vision.models._common import check_no_weights

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """Five convolutions (``features``), an adaptive average pool to 6×6, three fully connected
    layers with dropout (``classifier``): torchvision's layer order, names and default
    initialisation, so its ``state_dict`` loads as it is.

    Shape:
        ``(N, 3, H, W) → (N, num_classes)`` for ``H, W ≥ 63``.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def alexnet(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> AlexNet:
    """torchvision's ``alexnet``: ``AlexNet(**kwargs)``; ``weights`` must be None."""
    check_no_weights("alexnet", weights, kwargs)
    return AlexNet(**kwargs)
