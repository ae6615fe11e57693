"""The datasets the command line trains and evaluates on, shaped to fit the model.

Every dataset is read as its images at their native size (uint8, or float in [0, 1]) and turned,
one batch at a time, into what the model was built for, ``model.input_size = (C, H, W)``:

1. pixels become float32 in [0, 1] (uint8 / 255; scikit-learn's digits are already 0..16 / 16);
   nothing else is normalised, as in d2l;
2. channels: grey becomes RGB by repetition, RGB becomes grey by the ITU-R 601 luma weights
   (what Pillow's ``convert("L")`` uses);
3. size: ``digits`` (8×8) is upsampled by the largest whole factor that fits (nearest
   neighbour, so each pixel becomes a k×k block) and padded with zeros to the model's size:
   8×8 → ×3 = 24×24 → pad 2 on each side = 28×28 for LeNet, ×12 = 96×96 for ResNet-18. The
   other datasets are resized bilinearly (Pillow), as d2l's ``Resize`` does, when their size
   is not already the model's.

``synthetic`` is a generated 10-class set of 28×28 grey images (6,000 for training, 1,000 for
testing): each class is a fixed random figure of four strokes, drawn shifted by up to 2 pixels,
at a random contrast, under Gaussian noise. It needs no download and is always the same, so tests
and demonstrations can train on it anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wally.backend import ndarray, xp
from wally.cli._datasets import DATASETS
from wally.creation import from_numpy
from wally.data.dataset import Dataset
from wally.io.images import pil_image, read_image
from wally.tensor import Tensor

_LUMA = (0.299, 0.587, 0.114)
"""ITU-R 601 luma weights (what Pillow's ``convert("L")`` uses). Image files are read by
:func:`wally.io.images.read_image`: its allow-list of formats, pixel cap and memory bound."""
_SYNTHETIC_COUNTS = {True: 6000, False: 1000}
_SYNTHETIC_SEEDS = {True: 1, False: 2}
SYNTHETIC_CLASSES = [f"figure {i}" for i in range(10)]


# ----- reading the native images ---------------------------------------------------------------
def _stroke_figures(count: int, canvas: int, seed: int) -> ndarray:
    """``count`` figures of four soft strokes each, float32 (count, canvas, canvas) in [0, 1]."""
    rng = xp.random.default_rng(seed)
    rows, cols = xp.mgrid[0:canvas, 0:canvas].astype(xp.float32)
    figures = xp.zeros((count, canvas, canvas), dtype=xp.float32)
    margin = canvas // 5
    for figure in figures:
        for _ in range(4):
            (r0, c0), (r1, c1) = rng.uniform(margin, canvas - margin, size=(2, 2))
            for t in xp.linspace(0.0, 1.0, 24):
                r, c = r0 + t * (r1 - r0), c0 + t * (c1 - c0)
                blob = xp.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 2.0)
                xp.maximum(figure, blob, out=figure)
    return figures


def synthetic(train: bool) -> tuple[ndarray, ndarray]:
    """The ``synthetic`` split: uint8 images (N, 28, 28) and int64 labels (N,)."""
    count, size, shift = _SYNTHETIC_COUNTS[train], 28, 2
    figures = _stroke_figures(10, size + 2 * shift, seed=0)
    rng = xp.random.default_rng(_SYNTHETIC_SEEDS[train])
    labels = rng.integers(0, 10, size=count).astype(xp.int64)
    offsets = rng.integers(0, 2 * shift + 1, size=(count, 2))
    contrast = rng.uniform(0.6, 1.0, size=count).astype(xp.float32)
    images = xp.empty((count, size, size), dtype=xp.float32)
    for n in range(count):
        r, c = offsets[n]
        images[n] = figures[labels[n], r:r + size, c:c + size] * contrast[n]
    images += rng.normal(0.0, 0.15, size=images.shape).astype(xp.float32)
    return (xp.clip(images, 0.0, 1.0) * 255).round().astype(xp.uint8), labels


def read_images(name: str, train: bool, data_dir: str | None = None,
                download: bool = False) -> tuple[ndarray, ndarray, list[str]]:
    """A split's native images ``(N, H, W)`` or ``(N, H, W, C)``, labels and class names.

    Raises the dataset's own errors (``DatasetNotFoundError``, ``DatasetFormatError``,
    ``ImportError`` for scikit-learn).
    """
    if name == "synthetic":
        images, labels = synthetic(train)
        return images, labels, list(SYNTHETIC_CLASSES)
    from wally import data

    if name == "digits":
        dataset: Any = data.Digits(root=data_dir, train=train)
    else:
        kind = {"mnist": data.MNIST, "fashion-mnist": data.FashionMNIST,
                "cifar10": data.CIFAR10}[name]
        dataset = kind(root=data_dir, train=train, download=download)
    return dataset.data, dataset.targets, list(dataset.classes)


# ----- shaping images for the model ------------------------------------------------------------
def _as_float_nchw(images: ndarray) -> ndarray:
    """Native images (N, H, W) or (N, H, W, C), uint8 or float, as float32 (N, C, H, W)."""
    array = images.astype(xp.float32) / 255 if images.dtype == xp.uint8 else images.astype(
        xp.float32)
    return array[:, None] if array.ndim == 3 else array.transpose(0, 3, 1, 2)


def _convert_channels(array: ndarray, channels: int) -> ndarray:
    have = array.shape[1]
    if have == channels:
        return array
    if have == 1:
        return xp.repeat(array, channels, axis=1)
    if have == 3 and channels == 1:
        weights = xp.asarray(_LUMA, dtype=xp.float32).reshape(1, 3, 1, 1)
        return (array * weights).sum(axis=1, keepdims=True, dtype=xp.float32)
    raise ValueError(f"cannot turn {have}-channel images into the {channels} channels the "
                     "model takes")


def _upsample_and_pad(array: ndarray, size: tuple[int, int]) -> ndarray:
    height, width = array.shape[2:]
    factor = max(1, min(size[0] // height, size[1] // width))
    array = xp.repeat(xp.repeat(array, factor, axis=2), factor, axis=3)
    if array.shape[2] > size[0] or array.shape[3] > size[1]:
        return _resize(array, size)
    pad_h, pad_w = size[0] - array.shape[2], size[1] - array.shape[3]
    return xp.pad(array, ((0, 0), (0, 0), (pad_h // 2, pad_h - pad_h // 2),
                          (pad_w // 2, pad_w - pad_w // 2)))


def _resize(array: ndarray, size: tuple[int, int]) -> ndarray:
    """Bilinear resize of every plane with Pillow (antialiased when shrinking)."""
    image_module = pil_image()
    bilinear = image_module.Resampling.BILINEAR
    n, c = array.shape[:2]
    out = xp.empty((n, c, *size), dtype=xp.float32)
    for i in range(n):
        for j in range(c):
            plane = image_module.fromarray(xp.ascontiguousarray(array[i, j]))  # mode "F"
            out[i, j] = xp.asarray(plane.resize((size[1], size[0]), bilinear))
    return out


def to_model_input(images: ndarray, dataset: str, channels: int,
                   size: Sequence[int]) -> ndarray:
    """Native images of ``dataset`` as the float32 (N, channels, H, W) batch a model takes."""
    target = (int(size[0]), int(size[1]))
    array = _convert_channels(_as_float_nchw(images), channels)
    if array.shape[2:] == target:
        return xp.ascontiguousarray(array)
    if dataset == "digits":
        return _upsample_and_pad(array, target)
    return _resize(array, target)


class ImageSet(Dataset[tuple[Tensor, int]]):
    """Native images and labels, shaped for the model batch by batch.

    ``dataset[i]`` is ``(image (C, H, W), label)``; a DataLoader takes whole batches through
    ``_get_batch`` (one array operation per batch where no resize is needed).
    """

    def __init__(self, images: ndarray, labels: ndarray, classes: list[str], dataset: str,
                 input_size: Sequence[int]) -> None:
        self.images = images
        self.labels = labels.astype(xp.int64)
        self.classes = classes
        self.dataset = dataset
        self.input_size = tuple(int(n) for n in input_size)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        images, _ = self._get_batch(xp.asarray([index]))
        return images[0], int(self.labels[index])

    def _get_batch(self, indices: ndarray) -> list[Tensor]:
        channels, height, width = self.input_size
        batch = to_model_input(self.images[indices], self.dataset, channels, (height, width))
        return [from_numpy(batch), from_numpy(self.labels[indices])]


def load(name: str, train: bool, input_size: Sequence[int], *, data_dir: str | None = None,
         download: bool = False, limit: int | None = None) -> ImageSet:
    """The split of ``name`` for a model taking ``input_size = (C, H, W)``; the first
    ``limit`` examples only, when given."""
    images, labels, classes = read_images(name, train, data_dir, download)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return ImageSet(images, labels, classes, name, input_size)


def read_image_file(path: str | Path, dataset: str | None, input_size: Sequence[int],
                    invert: bool = False) -> ndarray:
    """An image file as the (1, C, H, W) batch the model takes, prepared the way ``dataset``'s
    images were in training: converted to the dataset's channels, resized to its native size,
    then shaped like a batch of it (digits: 8×8, then upsampled and padded)."""
    channels, height, width = (int(n) for n in input_size)
    info = DATASETS.get(dataset or "")
    mode = "L" if (info.channels if info else channels) == 1 else "RGB"
    native = (info.size, info.size) if info else (height, width)
    array = read_image(path, mode, size=(native[1], native[0]))[None]
    if invert:
        array = 255 - array
    return to_model_input(array, dataset or "", channels, (height, width))
