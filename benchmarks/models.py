"""The benchmark's models, built the same way in wally and PyTorch, with the same weights.

LeNet is d2l's layout (§7.6) with ReLU in place of sigmoid; ResNet-18 is
``wally.models.resnet18_cifar`` and a PyTorch twin with the same ``state_dict`` keys.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def wally_lenet() -> Any:
    from wally import nn

    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def torch_lenet() -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def wally_resnet18() -> Any:
    from wally.models import resnet18_cifar

    return resnet18_cifar()


def torch_resnet18() -> Any:
    """d2l's ResNet-18 with the CIFAR stem, module names as in ``wally.models.resnet``."""
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self, in_channels: int, channels: int, shortcut: bool, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
            self.conv3 = nn.Conv2d(in_channels, channels, 1, stride=stride) if shortcut else None
            self.bn1 = nn.BatchNorm2d(channels)
            self.bn2 = nn.BatchNorm2d(channels)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            if self.conv3 is not None:
                x = self.conv3(x)
            return torch.relu(y + x)

    stages = {}
    channels = 64
    for index, width in enumerate((64, 128, 256, 512)):
        first = index == 0
        stages[f"b{index + 2}"] = nn.Sequential(
            Residual(channels, width, not first, 1 if first else 2),
            Residual(width, width, False, 1),
        )
        channels = width
    from collections import OrderedDict

    layers = OrderedDict(
        [("0", nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()))]
    )
    layers.update(stages)
    layers["last"] = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, 10))
    return nn.Sequential(layers)


def copy_weights(wally_model: Any, torch_model: Any) -> None:
    """Load wally's parameters and buffers into the PyTorch model (same keys and shapes)."""
    import torch

    state = {
        key: torch.from_numpy(np.array(value.detach().numpy(), copy=True))
        for key, value in wally_model.state_dict().items()
    }
    torch_model.load_state_dict(state)


def pair(name: str) -> tuple[Any, Any]:
    """``(wally model, PyTorch model)`` with the same initial weights."""
    import wally

    wally.manual_seed(0)
    builders = {"lenet": (wally_lenet, torch_lenet), "resnet18": (wally_resnet18, torch_resnet18)}
    make_wally, make_torch = builders[name]
    wally_model, torch_model = make_wally(), make_torch()
    copy_weights(wally_model, torch_model)
    return wally_model, torch_model
