"""torchvision's ``VisionDataset`` and ``StandardTransform``: the base that torchvision code
subclasses for its own datasets, and the printed form every dataset here shares.

>>> class Squares(VisionDataset):
...     def __getitem__(self, index): return self.transforms(index, index * index)
...     def __len__(self): return 4
>>> Squares(None, target_transform=str)[3]
(3, '9')
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from wally.data.dataset import Dataset

__all__ = ["VisionDataset", "StandardTransform", "standard_transform_repr"]


def standard_transform_repr(transform: Any, target_transform: Any) -> str:
    """torchvision's ``StandardTransform`` repr (its later lines are not indented)."""
    body = ["StandardTransform"]
    for head, value in (("Transform: ", transform), ("Target transform: ", target_transform)):
        if value is not None:
            lines = repr(value).splitlines()
            body += [head + lines[0]] + [" " * len(head) + line for line in lines[1:]]
    return "\n".join(body)


class StandardTransform:
    """``(input, target) → (transform(input), target_transform(target))``, either optional."""

    def __init__(self, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None) -> None:
        self.transform, self.target_transform = transform, target_transform

    def __call__(self, input: Any, target: Any) -> tuple[Any, Any]:
        if self.transform is not None:
            input = self.transform(input)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return input, target

    def __repr__(self) -> str:
        return standard_transform_repr(self.transform, self.target_transform)


class VisionDataset(Dataset[Any]):
    """A dataset with a ``root`` folder and either ``transforms`` (a callable of the image and
    the target together) or ``transform`` / ``target_transform`` (combined into a
    :class:`StandardTransform` as ``self.transforms``); subclasses define ``__getitem__`` and
    ``__len__``, and may add lines to the printed form with ``extra_repr``.
    """

    _repr_indent = 4

    def __init__(self, root: str | os.PathLike[str] | None = None,
                 transforms: Callable[[Any, Any], Any] | None = None,
                 transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None) -> None:
        self.root = os.path.expanduser(root) if isinstance(root, str) else root
        separate = transform is not None or target_transform is not None
        if transforms is not None and separate:
            raise ValueError(f"{type(self).__name__}: only transforms or "
                             "transform/target_transform can be passed as argument")
        self.transform, self.target_transform = transform, target_transform
        self.transforms = StandardTransform(transform, target_transform) if separate else (
            transforms)

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} defines no __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} defines no __len__")

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        body = [f"Number of datapoints: {len(self)}"]
        if self.root is not None:
            body.append(f"Root location: {self.root}")
        body += self.extra_repr().splitlines()
        if self.transforms is not None:
            body.append(repr(self.transforms))
        indent = " " * self._repr_indent
        return "\n".join([f"Dataset {type(self).__name__}"] + [indent + line for line in body])
