"""Batching variable-length series: pad to the longest, and say how long each one was.

A series is a ``(C, T)`` tensor (PyTorch's ``Conv1d`` layout); series of one batch may have
different ``T``. :func:`pad_collate` pads them on the right with zeros to ``(N, C, T_max)`` and
returns their true lengths, an int64 ``(N,)`` tensor, beside them: the model receives both,
``model(x, lengths)`` (a batch's inputs ``(x, lengths)`` are passed to the model as its
arguments by :func:`wally.train.fit` and :func:`wally.train.evaluate`). Models that take
lengths mask the padding out of every statistic that could see it
(:func:`wally.nn.functional.masked_global_avg_pool1d`, :func:`lengths_to_mask`).

>>> loader = DataLoader(UCR("JapaneseVowels", root="data"), batch_size=32, collate_fn=pad_collate)
>>> (x, lengths), y = next(iter(loader))
>>> x.shape, lengths.dtype, y.shape
(wally.Size([32, 12, 26]), wally.int64, wally.Size([32]))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wally.backend import xp
from wally.creation import from_numpy
from wally.tensor import Tensor

__all__ = ["pad_collate", "pad_series", "lengths_to_mask"]


def pad_series(series: Sequence[Any], padding_value: float = 0.0) -> tuple[Tensor, Tensor]:
    """Pad ``(C, T_i)`` series on the right (time axis) into one ``(N, C, T_max)`` tensor,
    and their lengths ``T_i`` as int64 ``(N,)``. The values are copied (no graph): this is for
    data loading; :func:`wally.nn.utils.rnn.pad_sequence` is the differentiable primitive.

    Shape:
        ``series[i]``: ``(C, T_i)`` → ``(N, C, T_max)``, ``(N,)``.

    Example::

        >>> x, lengths = pad_series([wally.ones(2, 3), wally.ones(2, 1)])
        >>> x.shape, lengths
        (wally.Size([2, 2, 3]), tensor([3, 1]))
    """
    arrays = [s.array if isinstance(s, Tensor) else xp.asarray(s) for s in series]
    if not arrays:
        raise ValueError("pad_collate: got an empty batch")
    for i, a in enumerate(arrays):
        if a.ndim != 2:
            raise ValueError(f"pad_collate: expected each series as (C, T), got shape "
                             f"{tuple(a.shape)} for item {i}")
        if a.shape[0] != arrays[0].shape[0]:
            raise ValueError(f"pad_collate: item {i} has {a.shape[0]} channels, expected "
                             f"{arrays[0].shape[0]} like item 0 (shapes {tuple(a.shape)} and "
                             f"{tuple(arrays[0].shape)})")
        if a.shape[1] == 0:
            raise ValueError(f"pad_collate: item {i} has length 0")
    lengths = xp.asarray([a.shape[1] for a in arrays], dtype=xp.int64)
    dtype = xp.result_type(*arrays)
    out = xp.full((len(arrays), arrays[0].shape[0], int(lengths.max())), padding_value,
                  dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, :, : a.shape[1]] = a
    return from_numpy(out), from_numpy(lengths)


def pad_collate(batch: Sequence[tuple[Any, Any]]) -> tuple[tuple[Tensor, Tensor], Tensor]:
    """A DataLoader ``collate_fn`` for ``(x, y)`` items with ``x`` a ``(C, T_i)`` series and
    ``y`` a class index: ``((x, lengths), y)`` with ``x`` zero-padded on the right.

    Shape:
        ``x``: ``(N, C, T_max)``, ``lengths``: int64 ``(N,)``, ``y``: int64 ``(N,)``.
    """
    if not batch:
        raise ValueError("pad_collate: got an empty batch")
    x, lengths = pad_series([item[0] for item in batch])
    targets = [int(item[1].item() if isinstance(item[1], Tensor) else item[1]) for item in batch]
    return (x, lengths), from_numpy(xp.asarray(targets, dtype=xp.int64))


def lengths_to_mask(lengths: Tensor | Any, max_length: int | None = None) -> Tensor:
    """``mask[n, t] = t < lengths[n]``: True on a series' own steps, False on its padding.

    Shape:
        ``lengths``: ``(N,)`` integers → bool ``(N, T_max)``, ``T_max = max_length`` or the
        largest length.

    Example::

        >>> lengths_to_mask(wally.tensor([3, 1]))
        tensor([[ True,  True,  True],
                [ True, False, False]])
    """
    array = lengths.array if isinstance(lengths, Tensor) else xp.asarray(lengths)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ValueError(f"lengths_to_mask: expected a 1-D integer tensor of lengths, got "
                         f"shape {tuple(array.shape)} dtype {array.dtype}")
    longest = int(array.max()) if max_length is None else int(max_length)
    if array.size and (array.min() < 1 or array.max() > longest):
        raise ValueError(f"lengths_to_mask: lengths must lie in 1..{longest}, got "
                         f"{int(array.min())}..{int(array.max())}")
    return from_numpy(xp.arange(longest)[None, :] < array[:, None])
