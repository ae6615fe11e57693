"""``torchvision.models``: the architectures torchvision builds, under its names.

These are torchvision's networks (three input channels, ImageNet-sized heads, torchvision's
layer names and initialisation), so a ``state_dict`` saved from torchvision loads unchanged.
They are not d2l's variants of the same names in :mod:`wally.models` (``wally.models.resnet18``
is d2l's one-channel ResNet-18, with other layer names). ``weights=`` (and the older
``pretrained=True``) are refused unless None: wally downloads no weights.

>>> model = resnet18(num_classes=10)
>>> tuple(model(wally.randn(1, 3, 64, 64)).shape)
(1, 10)
"""

from wally.vision.models.alexnet import AlexNet, alexnet
from wally.vision.models.densenet import (
    DenseNet,
    densenet121,
    densenet161,
    densenet169,
    densenet201,
)
from wally.vision.models.googlenet import GoogLeNet, GoogLeNetOutputs, googlenet
from wally.vision.models.resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    wide_resnet50_2,
)
from wally.vision.models.vgg import (
    VGG,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
)

__all__ = ["AlexNet", "alexnet", "VGG", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
           "vgg16_bn", "vgg19", "vgg19_bn", "ResNet", "BasicBlock", "Bottleneck", "resnet18",
           "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
           "wide_resnet50_2", "DenseNet", "densenet121", "densenet161", "densenet169",
           "densenet201", "GoogLeNet", "GoogLeNetOutputs", "googlenet"]
