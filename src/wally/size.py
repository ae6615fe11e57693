"""``Size``: what ``Tensor.shape`` and ``Tensor.size()`` return, as ``torch.Size``.

A tuple of ints, so ``x.shape == (2, 3)``, unpacking and NumPy calls work as with any tuple;
slicing it, adding a tuple to it or repeating it gives a ``Size`` again, and ``numel()`` is
the number of elements. It prints as ``wally.Size([2, 3])`` (an expression that evaluates back
to it after ``import wally``), and as ``torch.Size([2, 3])`` under :func:`wally.alias_torch`,
exactly as the d2l book shows.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from typing import Any, SupportsIndex, overload


class Size(tuple[int, ...]):
    """The sizes of a tensor's dimensions.

    >>> wally.zeros(2, 3).shape
    wally.Size([2, 3])
    >>> wally.Size([2, 3]).numel()
    6
    """

    def __new__(cls, sizes: Iterable[Any] = ()) -> Size:
        values = []
        for index, n in enumerate(sizes):
            try:
                values.append(operator.index(n))
            except TypeError:
                raise TypeError(f"Size() takes an iterable of 'int' (item {index} is "
                                f"'{type(n).__name__}')") from None
        return super().__new__(cls, values)

    def numel(self) -> int:
        """The number of elements of a tensor of this size (1 for ``Size([])``)."""
        return math.prod(self)

    @overload
    def __getitem__(self, index: SupportsIndex) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> Size: ...

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        return Size(item) if isinstance(index, slice) else item

    def __add__(self, other: Any) -> Size:
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple(self) + tuple(other))

    def __radd__(self, other: Any) -> Size:
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple(other) + tuple(self))

    def __mul__(self, times: SupportsIndex) -> Size:
        return Size(tuple(self) * operator.index(times))

    __rmul__ = __mul__

    def __repr__(self) -> str:
        from wally._alias import prefix

        return f"{prefix()}.Size({list(self)})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (Size, (tuple(self),))
