"""The bundled datasets, in one namespace like ``torchvision.datasets``.

>>> from wally.data import datasets
>>> datasets.FashionMNIST(root="../data", train=True, download=True)  # doctest: +SKIP
"""

from wally.data.cifar import CIFAR10, read_cifar_binary
from wally.data.digits import Digits
from wally.data.errors import ChecksumError, DatasetFormatError, DatasetNotFoundError
from wally.data.mnist import MNIST, FashionMNIST, read_idx
from wally.data.vision import VisionDataset

__all__ = ["MNIST", "FashionMNIST", "CIFAR10", "Digits", "VisionDataset", "read_idx",
           "read_cifar_binary", "DatasetNotFoundError", "DatasetFormatError", "ChecksumError"]
