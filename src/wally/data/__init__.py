"""Datasets, samplers, the DataLoader and image transforms: ``torch.utils.data`` plus the parts
of ``torchvision`` that the d2l CNN chapters use.

>>> from wally.data import DataLoader, TensorDataset
>>> X, y = wally.randn(100, 1, 28, 28), wally.randint(0, 10, (100,))
>>> for images, labels in DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True):
...     pass
"""

from wally.data import datasets, transforms
from wally.data._random import generator
from wally.data.cifar import CIFAR10
from wally.data.collate import default_collate, default_convert
from wally.data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from wally.data.digits import Digits
from wally.data.errors import ChecksumError, DatasetFormatError, DatasetNotFoundError
from wally.data.loader import DataLoader
from wally.data.mnist import MNIST, FashionMNIST
from wally.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler
from wally.data.vision import VisionDataset

__all__ = [
    "Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split",
    "DataLoader", "default_collate", "default_convert",
    "Sampler", "SequentialSampler", "RandomSampler", "BatchSampler",
    "MNIST", "FashionMNIST", "CIFAR10", "Digits", "VisionDataset",
    "DatasetNotFoundError", "DatasetFormatError", "ChecksumError",
    "datasets", "transforms", "generator",
]
from wally.data.sequence import lengths_to_mask, pad_collate, pad_series  # noqa: E402
from wally.data.text import AGNews, Fortunes, TokenizedText  # noqa: E402
from wally.data.ucr import UCR  # noqa: E402
from wally.data.vocab import Vocab  # noqa: E402
from wally.data.wally_scenes import WallyPatches, WallyScenes  # noqa: E402

__all__ += ["Fortunes", "AGNews", "TokenizedText", "Vocab"]
