"""``ImageFolder`` and ``DatasetFolder``: one folder per class, as torchvision reads them.

``root/dog/xxx.png``, ``root/cat/123.jpg``, …: the classes are the sub-folders, sorted (their
index is the label), and the samples every file under each of them whose name ends in one of
``extensions`` (or that ``is_valid_file`` accepts), sorted. Images are read by
:func:`wally.io.images.read_image`: regular files of bounded size in the raster formats that
decode in-process only, so a hostile file is refused with a message naming it.

>>> dataset = ImageFolder("photos/train", transform=transforms.ToTensor())  # doctest: +SKIP
>>> dataset.classes, dataset[0][1]                                          # doctest: +SKIP
(['cat', 'dog'], 0)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from wally.vision.vision_dataset import VisionDataset

__all__ = ["IMG_EXTENSIONS", "DatasetFolder", "ImageFolder", "default_loader", "find_classes",
           "make_dataset", "has_file_allowed_extension"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
"""The file name endings ImageFolder takes (torchvision's list), compared case-insensitively."""


def default_loader(path: str) -> Any:
    """The image at ``path`` as a PIL ``RGB`` image, read within wally's bounds."""
    from wally.data._optional import require
    from wally.io.images import read_image

    return require("PIL.Image", "ImageFolder").fromarray(read_image(path, "RGB"))


def has_file_allowed_extension(filename: str, extensions: str | tuple[str, ...]) -> bool:
    """Whether ``filename`` ends in one of ``extensions`` (ignoring case)."""
    endings = extensions if isinstance(extensions, str) else tuple(extensions)
    return filename.lower().endswith(endings)


def find_classes(directory: str | os.PathLike[str]) -> tuple[list[str], dict[str, int]]:
    """The sorted names of the sub-folders of ``directory``, and each name's index."""
    classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    if not classes:
        raise FileNotFoundError(f"ImageFolder: couldn't find any class folder in {directory}")
    return classes, {name: index for index, name in enumerate(classes)}


def make_dataset(directory: str | os.PathLike[str], class_to_idx: dict[str, int] | None = None,
                 extensions: str | tuple[str, ...] | None = None,
                 is_valid_file: Callable[[str], bool] | None = None,
                 allow_empty: bool = False) -> list[tuple[str, int]]:
    """``(path, class_index)`` of every accepted file under each class folder, classes in
    sorted order and files sorted within each folder (links to folders are not followed
    below a class folder, so a link loop cannot make the walk endless)."""
    directory = os.path.expanduser(directory)
    if class_to_idx is None:
        _, class_to_idx = find_classes(directory)
    elif not class_to_idx:
        raise ValueError("ImageFolder: 'class_to_index' must have at least one entry to "
                         "collect any samples")
    if (extensions is None) == (is_valid_file is None):
        raise ValueError("ImageFolder: both extensions and is_valid_file cannot be None or not "
                         "None at the same time")
    accept: Callable[[str], bool]
    if extensions is not None:
        allowed = extensions

        def accept(path: str) -> bool:
            return has_file_allowed_extension(path, allowed)
    else:
        assert is_valid_file is not None
        accept = is_valid_file
    samples = []
    found = set()
    for name in sorted(class_to_idx):
        folder = os.path.join(directory, name)
        if not os.path.isdir(folder):
            continue
        for parent, _, files in sorted(os.walk(folder)):
            for file in sorted(files):
                path = os.path.join(parent, file)
                if accept(path):
                    samples.append((path, class_to_idx[name]))
                    found.add(name)
    empty = set(class_to_idx) - found
    if empty and not allow_empty:
        message = f"ImageFolder: found no valid file for the classes {', '.join(sorted(empty))}."
        if extensions is not None:
            endings = extensions if isinstance(extensions, str) else ", ".join(extensions)
            message += f" Supported extensions are: {endings}"
        raise FileNotFoundError(message)
    return samples


class DatasetFolder(VisionDataset):
    """Samples ``loader(path)`` of every accepted file under ``root``'s class folders.

    Attributes: ``classes``, ``class_to_idx``, ``samples`` (``(path, class_index)`` pairs),
    ``targets`` (the class indices), as torchvision's.
    """

    def __init__(self, root: str | os.PathLike[str], loader: Callable[[str], Any],
                 extensions: tuple[str, ...] | None = None,
                 transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None,
                 is_valid_file: Callable[[str], bool] | None = None,
                 allow_empty: bool = False) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        assert self.root is not None
        self.classes, self.class_to_idx = self.find_classes(self.root)
        self.samples = self.make_dataset(self.root, self.class_to_idx, extensions,
                                         is_valid_file, allow_empty)
        self.loader = loader
        self.extensions = extensions
        self.targets = [target for _, target in self.samples]

    @staticmethod
    def make_dataset(directory: str | os.PathLike[str], class_to_idx: dict[str, int],
                     extensions: tuple[str, ...] | None = None,
                     is_valid_file: Callable[[str], bool] | None = None,
                     allow_empty: bool = False) -> list[tuple[str, int]]:
        """:func:`make_dataset` (override to change how samples are found)."""
        return make_dataset(directory, class_to_idx, extensions, is_valid_file, allow_empty)

    def find_classes(self, directory: str | os.PathLike[str]
                     ) -> tuple[list[str], dict[str, int]]:
        """:func:`find_classes` (override to change how classes are found)."""
        return find_classes(directory)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[index]
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __len__(self) -> int:
        return len(self.samples)


class ImageFolder(DatasetFolder):
    """A :class:`DatasetFolder` of images (files ending in :data:`IMG_EXTENSIONS` unless
    ``is_valid_file`` decides), each a PIL ``RGB`` image; ``imgs`` is ``samples``."""

    def __init__(self, root: str | os.PathLike[str],
                 transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None,
                 loader: Callable[[str], Any] = default_loader,
                 is_valid_file: Callable[[str], bool] | None = None,
                 allow_empty: bool = False) -> None:
        super().__init__(root, loader, IMG_EXTENSIONS if is_valid_file is None else None,
                         transform, target_transform, is_valid_file, allow_empty)
        self.imgs = self.samples
