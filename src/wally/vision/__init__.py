"""``torchvision`` on wally: ``datasets``, ``transforms``, ``utils`` and ``models`` under
torchvision's names, signatures and defaults, so torchvision code runs unchanged (what
``wally.alias_torch()`` maps ``torchvision`` to).

>>> from wally.vision import datasets, transforms
>>> trans = transforms.Compose([transforms.Resize(64), transforms.ToTensor()])
>>> train = datasets.FashionMNIST(root="../data", train=True, transform=trans,
...                               download=True)                         # doctest: +SKIP
"""

from wally.vision import datasets, models, transforms, utils

__all__ = ["datasets", "models", "transforms", "utils"]
