"""torchvision's DenseNet-121/161/169/201.

Unlike d2l's DenseNet (:func:`wally.models.densenet`: conv-then-norm blocks in a plain
``Sequential``, one input channel), these are torchvision's: pre-activation bottleneck layers
(``norm1 → relu1 → conv1`` 1×1, ``norm2 → relu2 → conv2`` 3×3) named ``denselayerN`` inside
``denseblockN``, transitions ``transitionN``, and a final ``norm5``, so a torchvision
``state_dict`` loads as it is.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import wally
from wally import nn
from wally.nn import functional as F
from wally.tensor import Tensor
from wally.vision.models._common import check_no_weights, constant_if_present

__all__ = ["DenseNet", "densenet121", "densenet161", "densenet169", "densenet201"]


class _DenseLayer(nn.Module):
    """``conv2(relu2(norm2(conv1(relu1(norm1(cat(features)))))))``: ``growth_rate`` new
    channels from everything the block has made so far (dropout ``drop_rate`` after)."""

    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int,
                 drop_rate: float, memory_efficient: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1,
                               stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1,
                               padding=1, bias=False)
        self.drop_rate = float(drop_rate)
        # accepted for torchvision's signature; wally has no activation checkpointing
        self.memory_efficient = memory_efficient

    def forward(self, features: Tensor | list[Tensor]) -> Tensor:
        inputs = [features] if isinstance(features, Tensor) else features
        bottleneck = self.conv1(self.relu1(self.norm1(wally.cat(inputs, 1))))
        new_features = self.conv2(self.relu2(self.norm2(bottleneck)))
        if self.drop_rate > 0:
            new_features = F.dropout(new_features, p=self.drop_rate, training=self.training)
        return new_features


class _DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers, each reading the block's input and every earlier layer's
    output; the block returns them all, concatenated along the channels."""

    def __init__(self, num_layers: int, num_input_features: int, bn_size: int,
                 growth_rate: int, drop_rate: float, memory_efficient: bool = False) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", _DenseLayer(
                num_input_features + i * growth_rate, growth_rate=growth_rate,
                bn_size=bn_size, drop_rate=drop_rate, memory_efficient=memory_efficient))

    def forward(self, init_features: Tensor) -> Tensor:
        features = [init_features]
        for layer in self.values():
            features.append(layer(features))
        return wally.cat(features, 1)


class _Transition(nn.Sequential):
    """Between blocks: norm, ReLU, a 1×1 convolution (halving the channels), 2×2 average pool."""

    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1,
                              bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    """A 7×7 stride-2 stem and max pool, dense blocks of ``block_config`` layers joined by
    transitions, a final batch norm, ReLU, global average pool and ``classifier``.

    Shape:
        ``(N, 3, H, W) → (N, num_classes)`` for ``H, W ≥ 29``.
    """

    def __init__(self, growth_rate: int = 32,
                 block_config: tuple[int, int, int, int] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, drop_rate: float = 0,
                 num_classes: int = 1000, memory_efficient: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3,
                                bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]))
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", _DenseBlock(
                num_layers=num_layers, num_input_features=num_features, bn_size=bn_size,
                growth_rate=growth_rate, drop_rate=drop_rate,
                memory_efficient=memory_efficient))
            num_features += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}",
                                         _Transition(num_features, num_features // 2))
                num_features //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's: He normal (fan in) for convolutions, batch norms at the identity,
        the classifier's weight as ``nn.Linear`` makes it and its bias 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                constant_if_present(module.weight, 1)
                constant_if_present(module.bias, 0)
            elif isinstance(module, nn.Linear):
                constant_if_present(module.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.features(x))
        return self.classifier(F.adaptive_avg_pool2d(out, (1, 1)).flatten(1))


def _densenet(name: str, growth_rate: int, block_config: tuple[int, int, int, int],
              num_init_features: int, weights: Any, kwargs: dict[str, Any]) -> DenseNet:
    check_no_weights(name, weights, kwargs)
    return DenseNet(growth_rate, block_config, num_init_features, **kwargs)


def densenet121(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> DenseNet:
    """DenseNet-121: growth 32, blocks (6, 12, 24, 16); ``weights`` must be None."""
    return _densenet("densenet121", 32, (6, 12, 24, 16), 64, weights, kwargs)


def densenet161(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> DenseNet:
    """DenseNet-161: growth 48, blocks (6, 12, 36, 24), 96 stem features; ``weights`` must be
    None."""
    return _densenet("densenet161", 48, (6, 12, 36, 24), 96, weights, kwargs)


def densenet169(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> DenseNet:
    """DenseNet-169: growth 32, blocks (6, 12, 32, 32); ``weights`` must be None."""
    return _densenet("densenet169", 32, (6, 12, 32, 32), 64, weights, kwargs)


def densenet201(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> DenseNet:
    """DenseNet-201: growth 32, blocks (6, 12, 48, 32); ``weights`` must be None."""
    return _densenet("densenet201", 32, (6, 12, 48, 32), 64, weights, kwargs)
