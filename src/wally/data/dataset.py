"""Datasets: anything with ``__getitem__`` and ``__len__``, as in ``torch.utils.data``.

A dataset may also offer ``_get_batch(indices)``: the already collated batch for an integer
array of indices, or ``None`` where it cannot make one. :class:`~wally.data.DataLoader` uses it
instead of fetching and stacking items one at a time (the fast path that keeps a LeNet epoch over
60,000 images from waiting on Python loops); the result must equal what the default collation of
the items would give, bit for bit.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from wally.backend import ndarray, xp
from wally.creation import from_numpy
from wally.tensor import Tensor

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """A map-style dataset: ``dataset[i]`` is the ``i``-th sample, ``len(dataset)`` their number.

    Subclasses implement ``__getitem__`` and ``__len__``; ``a + b`` concatenates two datasets.

    >>> class Squares(Dataset):
    ...     def __len__(self): return 4
    ...     def __getitem__(self, i): return i * i
    >>> [Squares()[i] for i in range(4)]
    [0, 1, 4, 9]
    """

    def __getitem__(self, index: int) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: Dataset[Any]) -> ConcatDataset[Any]:
        return ConcatDataset([self, other])


def _as_array(data: Any) -> ndarray:
    return data.array if isinstance(data, Tensor) else xp.asarray(data)


class TensorDataset(Dataset[tuple[Tensor, ...]]):
    """Samples are slices along the first dimension of tensors of equal length.

    ``dataset[i]`` is ``(tensors[0][i], tensors[1][i], ...)``. A DataLoader batches it with one
    fancy index per tensor instead of stacking items.

    >>> features, labels = wally.randn(100, 3), wally.zeros(100, dtype=wally.int64)
    >>> dataset = TensorDataset(features, labels)
    >>> len(dataset), dataset[0][0].shape
    (100, (3,))
    """

    tensors: tuple[Tensor, ...]

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor, got none")
        converted = tuple(t if isinstance(t, Tensor) else from_numpy(xp.asarray(t))
                          for t in tensors)
        for t in converted:
            if t.ndim == 0:
                raise ValueError("TensorDataset: tensors must have a first dimension, got a 0-d "
                                 "tensor")
        sizes = [t.shape[0] for t in converted]
        if any(size != sizes[0] for size in sizes):
            raise ValueError(
                "TensorDataset: all tensors must have the same size in the first dimension, "
                f"got sizes {', '.join(map(str, sizes))}"
            )
        self.tensors = converted

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def _get_batch(self, indices: ndarray) -> list[Tensor] | None:
        # A subclass that changes what an item is, or tensors in a graph, take the slow path.
        if type(self).__getitem__ is not TensorDataset.__getitem__:
            return None
        if any(t.requires_grad for t in self.tensors):
            return None
        return [from_numpy(t.array[indices]) for t in self.tensors]


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices``, in that order.

    >>> Subset(TensorDataset(wally.arange(10)), [7, 3])[1]
    (tensor(3),)
    """

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index: Any) -> T_co:
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]  # type: ignore[index]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)

    def _get_batch(self, indices: ndarray) -> Any:
        get_batch = getattr(self.dataset, "_get_batch", None)
        if get_batch is None or type(self).__getitem__ is not Subset.__getitem__:
            return None
        # Converting the index list once, not once per batch, keeps an epoch O(N).
        cached = self.__dict__.get("_index_cache")
        if cached is None or cached[0] is not self.indices:
            cached = (self.indices, xp.asarray(self.indices, dtype=xp.intp))
            self.__dict__["_index_cache"] = cached
        return get_batch(cached[1][indices])


class ConcatDataset(Dataset[T_co]):
    """Several datasets one after the other.

    >>> len(ConcatDataset([TensorDataset(wally.zeros(3)), TensorDataset(wally.ones(2))]))
    5
    """

    def __init__(self, datasets: Iterable[Dataset[T_co]]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: expected at least one dataset, got none")
        self.cumulative_sizes: list[int] = []
        total = 0
        for dataset in self.datasets:
            total += len(dataset)  # type: ignore[arg-type]
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> T_co:
        if index < 0:
            if -index > len(self):
                raise IndexError(f"ConcatDataset: index {index} out of range for length "
                                 f"{len(self)}")
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        if which == len(self.datasets):
            raise IndexError(f"ConcatDataset: index {index} out of range for length {len(self)}")
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def _split_lengths(total: int, lengths: Sequence[float]) -> list[int]:
    """Turn fractions into lengths as PyTorch does: floor each, then hand out the remainder."""
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for fraction in lengths:
            if not 0 <= fraction <= 1:
                raise ValueError(f"random_split: fraction {fraction} is not within [0, 1]")
        counts = [int(math.floor(total * fraction)) for fraction in lengths]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        return counts
    counts = [int(n) for n in lengths]
    if any(n != length or n < 0 for n, length in zip(counts, lengths)):
        raise ValueError(f"random_split: lengths must be non-negative integers or fractions "
                         f"summing to 1, got {list(lengths)}")
    if sum(counts) != total:
        raise ValueError(f"random_split: the lengths sum to {sum(counts)}, but the dataset has "
                         f"{total} samples")
    return counts


def resolve_generator(generator: Any, owner: str) -> Any:
    """A ``numpy.random.Generator`` from ``None`` (a fresh one seeded from wally's global
    generator), an int seed, or a Generator (used as is)."""
    from wally import creation

    if generator is None:
        return xp.random.default_rng(int(creation.generator().integers(2**63)))
    if isinstance(generator, (int, xp.integer)) and not isinstance(generator, bool):
        return xp.random.default_rng(int(generator))
    if isinstance(generator, xp.random.Generator):
        return generator
    raise TypeError(f"{owner}: generator must be None, an int seed or a numpy.random.Generator, "
                    f"got {type(generator).__name__}")


def random_split(dataset: Dataset[T_co], lengths: Sequence[float],
                 generator: Any = None) -> list[Subset[T_co]]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1 (the
    remainder after flooring goes one by one to the first subsets, as in PyTorch).
    ``generator`` is a ``numpy.random.Generator`` or an int seed; by default the permutation
    comes from wally's global generator, so ``wally.manual_seed`` fixes it.

    >>> train, val = random_split(TensorDataset(wally.arange(10)), [0.8, 0.2], generator=0)
    >>> len(train), len(val)
    (8, 2)
    """
    total = len(dataset)  # type: ignore[arg-type]
    counts = _split_lengths(total, lengths)
    permutation = resolve_generator(generator, "random_split").permutation(total).tolist()
    subsets, start = [], 0
    for count in counts:
        subsets.append(Subset(dataset, permutation[start:start + count]))
        start += count
    return subsets
