"""``VisionDataset``: images in one array, labels in another, transforms applied on access."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from wally.backend import ndarray
from wally.creation import from_numpy
from wally.data.dataset import Dataset
from wally.data.transforms import ToTensor, Transform

_DEFAULT_TRANSFORM = ToTensor()


class VisionDataset(Dataset[tuple[Any, Any]]):
    """Base of the bundled image datasets.

    Attributes:
        data: all images as stored, ``(N, H, W)`` or ``(N, H, W, C)`` (uint8 for MNIST and
            CIFAR-10), ready for fast batching without per-item transforms.
        targets: the labels, int64 ``(N,)``.
        classes: the class names, indexed by label.

    ``dataset[i]`` is ``(transform(data[i]), target_transform(int(targets[i])))``, where the
    transform sees a copy of the stored image (a NumPy array in the layout above) and defaults
    to :class:`~wally.data.transforms.ToTensor` (a float32 ``(C, H, W)`` Tensor in [0, 1]).
    """

    data: ndarray
    targets: ndarray
    classes: list[str] = []

    def __init__(self, root: Path | None, transform: Callable[[Any], Any] | None,
                 target_transform: Callable[[Any], Any] | None) -> None:
        self.root = root
        self.transform = transform
        self.target_transform = target_transform

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        transform = self.transform if self.transform is not None else _DEFAULT_TRANSFORM
        image = transform(self.data[index].copy())
        target: Any = int(self.targets[index])
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def _get_batch(self, indices: ndarray) -> list[Any] | None:
        """The collated batch for ``indices`` in one array operation, where the transform can
        do that (deterministic transforms only) and the item is not customised."""
        if type(self).__getitem__ is not VisionDataset.__getitem__:
            return None
        if self.target_transform is not None:
            return None
        transform = self.transform if self.transform is not None else _DEFAULT_TRANSFORM
        if not isinstance(transform, Transform):
            return None
        images = transform._batch((self.data[indices], False))
        if images is None:
            return None
        return [from_numpy(images[0]), from_numpy(self.targets[indices])]

    def _split_name(self) -> str:
        return "Train" if getattr(self, "train", True) else "Test"

    def __repr__(self) -> str:
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.root}", f"    Split: {self._split_name()}"]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        return "\n".join(lines)
