"""The CNNs of d2l's chapters 7 and 8, built as d2l builds them, with PyTorch's state_dict keys.

Each builder returns the model d2l's PyTorch code builds (the same ``nn.Sequential`` nesting,
layer order and attribute names), so ``state_dict()`` keys and shapes equal those of the
d2l code and weights move both ways. Layers are eager, not lazy: a model has its parameters
as soon as it is built, for the input size it records in ``model.input_size``.

============================  =============  ==========  ======================
builder                       d2l section    input       parameters (defaults)
============================  =============  ==========  ======================
:func:`lenet`                 7.6            1×28×28     61,706
:func:`lenet_modern`          8.5 (BNLeNet)  1×28×28     44,878
:func:`alexnet`               8.1            1×224×224   46,764,746
:func:`vgg11`                 8.2            1×224×224   128,806,154
:func:`nin`                   8.3            1×224×224   1,992,166
:func:`googlenet`             8.4            1×96×96     5,977,530
:func:`resnet18`              8.6            1×96×96     11,178,378
:func:`resnet18_cifar`        8.6 (CIFAR)    3×32×32     11,176,970
:func:`densenet`              8.7            1×96×96     758,226
============================  =============  ==========  ======================

Every model records how it was built, so a checkpoint can rebuild it::

    >>> model = get_model("resnet18", num_classes=100)
    >>> config = model_config(model)       # {"name": "resnet18", "kwargs": {...}}, JSON
    >>> same_architecture = get_model(**config)
"""

from wally.models._layout import init_cnn
from wally.models.alexnet import alexnet
from wally.models.densenet import DenseBlock, TransitionBlock, conv_block, densenet
from wally.models.fcn1d import FCN1d, fcn1d
from wally.models.gcn import GCN, LightGCN, gcn, lightgcn
from wally.models.googlenet import Inception, googlenet
from wally.models.lenet import lenet, lenet_modern
from wally.models.nin import nin, nin_block
from wally.models.p4cnn import p4cnn, z2cnn
from wally.models.registry import get_model, list_models, model_config, register_model
from wally.models.resnet import RESNET18_ARCH, Residual, resnet, resnet18, resnet18_cifar
from wally.models.tcn import TCN, TemporalBlock, tcn
from wally.models.textcnn import TextCNN, textcnn
from wally.models.vgg import VGG11_ARCH, vgg, vgg11, vgg_block
from wally.models.wally_finder import p4_wally_finder, wally_finder

__all__ = [
    "get_model",
    "list_models",
    "model_config",
    "register_model",
    "init_cnn",
    "lenet",
    "lenet_modern",
    "alexnet",
    "vgg_block",
    "vgg",
    "vgg11",
    "VGG11_ARCH",
    "nin_block",
    "nin",
    "p4cnn",
    "z2cnn",
    "Inception",
    "googlenet",
    "Residual",
    "resnet",
    "resnet18",
    "resnet18_cifar",
    "RESNET18_ARCH",
    "conv_block",
    "DenseBlock",
    "TransitionBlock",
    "densenet",
    "wally_finder",
    "GCN",
    "LightGCN",
    "gcn",
    "p4_wally_finder",
    "FCN1d",
    "fcn1d",
    "TCN",
    "TemporalBlock",
    "tcn",
    "lightgcn",
    "TextCNN",
    "textcnn",
]
