"""``default_collate``: a list of samples in, one batch out, as ``torch.utils.data``.

Tensors, arrays and numbers are stacked into wally Tensors along a new first dimension; tuples,
lists, named tuples and dicts are collated field by field, so a dataset of ``(image, label)``
pairs gives ``[images, labels]`` batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wally.backend import xp
from wally.creation import from_numpy
from wally.tensor import Tensor


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch.

    - Tensors and ndarrays of equal shape → one Tensor with a new first dimension (dtype kept;
      the result is detached from any graph).
    - Python ints → int64, Python floats → float32 (PyTorch makes float64 here: wally keeps
      float32 so targets match float32 outputs), bools → bool; NumPy scalars keep their dtype.
    - Strings and bytes → the list unchanged.
    - Mappings → a dict of collated values; named tuples → the same named tuple; other
      sequences (tuples included) → a list of collated fields, as PyTorch does.

    >>> images, labels = default_collate([(wally.zeros(1, 2), 3), (wally.ones(1, 2), 5)])
    >>> images.shape, labels
    ((2, 1, 2), tensor([3, 5]))
    """
    if len(batch) == 0:
        raise ValueError("default_collate: got an empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return from_numpy(_stack([x.array for x in batch], "tensors"))
    if isinstance(elem, xp.ndarray):
        if elem.dtype.kind in "OSUV":
            raise TypeError(f"default_collate: cannot batch arrays of dtype {elem.dtype}")
        return from_numpy(_stack(batch, "arrays"))
    if isinstance(elem, xp.generic):
        return from_numpy(xp.asarray(batch, dtype=elem.dtype))
    if isinstance(elem, bool):
        return from_numpy(xp.asarray(batch, dtype=xp.bool_))
    if isinstance(elem, int):
        return from_numpy(xp.asarray(batch, dtype=xp.int64))
    if isinstance(elem, float):
        return from_numpy(xp.asarray(batch, dtype=xp.float32))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, Sequence):
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise RuntimeError("default_collate: each element in the batch should be of equal "
                               f"size, got sizes {sorted({len(sample) for sample in batch})}")
        return [default_collate(list(field)) for field in zip(*batch)]
    raise TypeError(
        "default_collate: batch must contain tensors, arrays, numbers, strings, dicts or lists; "
        f"found {type(elem).__name__}"
    )


def _stack(arrays: Sequence[Any], what: str) -> Any:
    shape = arrays[0].shape
    for array in arrays:
        if array.shape != shape:
            raise RuntimeError(f"default_collate: stack expects {what} of equal shape, got "
                               f"{tuple(shape)} and {tuple(array.shape)}")
    return xp.stack(arrays)


def default_convert(data: Any) -> Any:
    """What a DataLoader with ``batch_size=None`` does to each sample: ndarrays become Tensors,
    containers are converted element by element, everything else is returned unchanged."""
    if isinstance(data, xp.ndarray) and data.dtype.kind not in "OSUV":
        return from_numpy(data)
    if isinstance(data, Mapping):
        return {key: default_convert(value) for key, value in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(value) for value in data))
    if isinstance(data, tuple):
        return [default_convert(value) for value in data]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return [default_convert(value) for value in data]
    return data
