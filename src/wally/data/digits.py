"""scikit-learn's bundled 8×8 handwritten digits, as a small offline MNIST stand-in."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wally.backend import ndarray, xp
from wally.data._optional import require
from wally.data.vision import VisionDataset


class Digits(VisionDataset):
    """1,797 grey 8×8 digits (UCI optdigits) shipped with scikit-learn: nothing to download.

    The images are stored as float32 ``(N, 8, 8)`` in [0, 1] (the original 0..16 counts divided
    by 16, exactly), so the default ``ToTensor()`` gives float32 ``(1, 8, 8)`` items in [0, 1];
    ``targets`` are int64. The split is deterministic: a permutation drawn from
    ``numpy.random.default_rng(seed)``, its first ``ceil(test_fraction · N)`` indices the test
    set, the rest the training set, each kept in the original order.

    Args:
        root: accepted for symmetry with the other datasets; unused.
        train: the training part of the split (else the test part).
        transform, target_transform: as for :class:`MNIST` (images are float ``(8, 8)``).
        test_fraction: the share of samples in the test part, in (0, 1).
        seed: the seed of the split.

    Needs scikit-learn (``pip install scikit-learn``).

    >>> train, test = Digits(train=True), Digits(train=False)
    >>> len(train), len(test), train[0][0].shape
    (1437, 360, (1, 8, 8))
    """

    name = "Digits"
    classes = [str(i) for i in range(10)]

    def __init__(self, root: str | os.PathLike[str] | None = None, train: bool = True,
                 transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None,
                 test_fraction: float = 0.2, seed: int = 0) -> None:
        if not 0 < test_fraction < 1:
            raise ValueError(f"Digits: test_fraction must be in (0, 1), got {test_fraction}")
        images, labels = _load_digits()
        super().__init__(Path(root) if root is not None else None, transform, target_transform)
        self.train = train
        self.test_fraction = test_fraction
        self.seed = seed
        total = len(labels)
        order = xp.random.default_rng(seed).permutation(total)
        test_count = math.ceil(total * test_fraction)
        indices = xp.sort(order[test_count:] if train else order[:test_count])
        self.indices = indices
        self.data = (images[indices] / 16).astype(xp.float32)
        self.targets = labels[indices].astype(xp.int64)


@functools.lru_cache(maxsize=1)
def _load_digits() -> tuple[ndarray, ndarray]:
    """scikit-learn's images (0..16 counts) and labels, read once per process."""
    bunch = require("sklearn.datasets", "wally.data.Digits").load_digits()
    images, labels = xp.asarray(bunch.images), xp.asarray(bunch.target)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels
