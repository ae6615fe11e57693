"""``torchvision.datasets``: MNIST, Fashion-MNIST and CIFAR-10 as torchvision hands them out.

The files are found and read by :mod:`wally.data` (bounded, checked, never unpickled); these
classes differ only in what torchvision code expects of them:

================  ==============================  ==========================================
                  ``wally.data``                  ``wally.vision.datasets`` (torchvision's)
================  ==============================  ==========================================
``root``          optional (a cache folder)       required
``dataset[i]``    ``ToTensor()`` of the array     a PIL image before ``transform`` (which
                  unless ``transform`` is given   defaults to none), so ``ToTensor()`` works
``.data``         NumPy array                     MNIST: uint8 Tensor ``(N, 28, 28)``;
                                                  CIFAR-10: NumPy uint8 ``(N, 32, 32, 3)``
``.targets``      NumPy int64 array               MNIST: int64 Tensor; CIFAR-10: list of int
================  ==============================  ==========================================

>>> train = FashionMNIST(root="../data", train=True, transform=transforms.ToTensor(),
...                      download=True)                                  # doctest: +SKIP
>>> image, label = train[0]; tuple(image.shape), label                   # doctest: +SKIP
((1, 28, 28), 9)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wally.backend import ndarray
from wally.creation import from_numpy
from wally.data import cifar, mnist
from wally.data._optional import require
from wally.data.transforms import Transform
from wally.vision.folder import DatasetFolder, ImageFolder
from wally.vision.vision_dataset import StandardTransform, VisionDataset, standard_transform_repr

__all__ = ["MNIST", "FashionMNIST", "CIFAR10", "ImageFolder", "DatasetFolder", "VisionDataset",
           "StandardTransform"]


def _root(root: Any, name: str) -> str | os.PathLike[str]:
    if not isinstance(root, str | os.PathLike):
        raise TypeError(f"{name}: root must be a folder (str or path), got "
                        f"{type(root).__name__} {root!r}")
    return os.path.expanduser(root) if isinstance(root, str) else root


class _TorchvisionItems:
    """What the three datasets share: PIL items, torchvision's repr, the loader's fast path.

    ``_images`` (the stored NumPy images) and ``_labels`` (int64) are kept beside the public
    ``data``/``targets`` so that a batch is still sliced in one array operation.
    """

    _images: ndarray
    _labels: ndarray
    root: Any
    train: bool
    transform: Callable[[Any], Any] | None
    target_transform: Callable[[Any], Any] | None

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image_module = require("PIL.Image", f"{type(self).__name__}[index] (a PIL image)")
        image: Any = image_module.fromarray(self._images[index])
        target: Any = int(self._labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def _get_batch(self, indices: ndarray) -> list[Any] | None:
        """The collated batch in one array operation where every transform has an array
        form that gives what it gives on the PIL image (``ToTensor``, ``Resize``,
        ``Normalize``, ...); else None, and the loader takes the items one by one."""
        if self.target_transform is not None or not isinstance(self.transform, Transform):
            return None
        images = self.transform._batch((self._images[indices], False))
        if images is None:
            return None
        return [from_numpy(images[0]), from_numpy(self._labels[indices])]

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train is True else 'Test'}"

    def __repr__(self) -> str:
        body = [f"Number of datapoints: {len(self)}", f"Root location: {self.root}",
                *self.extra_repr().splitlines()]
        if self.transform is not None or self.target_transform is not None:
            body.append(standard_transform_repr(self.transform, self.target_transform))
        return "\n".join([f"Dataset {type(self).__name__}"] + ["    " + line for line in body])


class MNIST(_TorchvisionItems, mnist.MNIST):
    """MNIST with torchvision's interface (module docs).

    Args:
        root: the folder holding ``MNIST/`` (``MNIST/raw/`` as torchvision lays it out, or the
            files directly in ``MNIST/`` as :class:`wally.data.MNIST` does).
        train: the 60,000 training images (else the 10,000 test images).
        transform: applied to each item's image, a PIL ``L`` image.
        target_transform: applied to each label, an int.
        download: fetch the missing files into ``<root>/MNIST`` (MD5 verified).

    ``data`` is a uint8 Tensor ``(N, 28, 28)``, ``targets`` an int64 Tensor ``(N,)``.

    >>> MNIST("../data", train=False, download=True)[0][1]               # doctest: +SKIP
    7
    """

    def __init__(self, root: str | os.PathLike[str], train: bool = True,
                 transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None,
                 download: bool = False) -> None:
        root = _root(root, type(self).__name__)
        super().__init__(root, train, transform, target_transform, download)
        self.root = root
        self._images, self._labels = self.data, self.targets
        self.data = from_numpy(self._images)  # type: ignore[assignment]
        self.targets = from_numpy(self._labels)  # type: ignore[assignment]

    @property
    def raw_folder(self) -> str:
        return os.path.join(self.root, type(self).__name__, "raw")


class FashionMNIST(MNIST, mnist.FashionMNIST):
    """Fashion-MNIST with torchvision's interface: as :class:`MNIST`, in ``<root>/FashionMNIST``.

    Where ``root`` lacks the files, Debian's ``dataset-fashion-mnist`` package's copy
    (``/usr/share/datasets/fashion-mnist``) is read, as by :class:`wally.data.FashionMNIST`.

    >>> FashionMNIST("../data", train=False).classes[9]                  # doctest: +SKIP
    'Ankle boot'
    """


class CIFAR10(_TorchvisionItems, cifar.CIFAR10):
    """CIFAR-10 with torchvision's interface, from the *binary* distribution (no pickle).

    Args:
        root: the folder holding ``cifar-10-batches-bin/`` or ``cifar-10-binary.tar.gz``
            directly (torchvision's layout, where a download also goes), or a ``CIFAR10/``
            folder holding them (:class:`wally.data.CIFAR10`'s). torchvision's own
            ``cifar-10-batches-py/`` holds pickles, which wally never loads: it is refused with
            a message saying what to put there instead.
        train, transform, target_transform, download: as :class:`MNIST` (items are PIL
            ``RGB`` images).

    ``data`` is a NumPy uint8 array ``(N, 32, 32, 3)``, ``targets`` a list of ints, as in
    torchvision.

    >>> CIFAR10("../data", train=False, download=True).data.shape        # doctest: +SKIP
    (10000, 32, 32, 3)
    """

    def __init__(self, root: str | os.PathLike[str], train: bool = True,
                 transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None,
                 download: bool = False) -> None:
        root = _root(root, type(self).__name__)
        super().__init__(root, train, transform, target_transform, download)
        self.root = root
        self._images, self._labels = self.data, self.targets
        self.targets = [int(label) for label in self._labels]  # type: ignore[assignment]

    def _folder(self, root: str | os.PathLike[str] | None) -> Path:
        assert root is not None  # torchvision's signature makes it required
        ours = super()._folder(root)
        if any((ours / name).exists() for name in (self.base_folder, self.archive)):
            return ours
        return Path(root)

    def _not_found(self, reason: str) -> str:
        message = super()._not_found(reason)
        pickled = self.folder / "cifar-10-batches-py"
        if pickled.exists():
            message += (f"\n{pickled} holds the Python (pickle) version, which wally never "
                        "loads: pickles can run code. Put the binary version beside it.")
        return message
