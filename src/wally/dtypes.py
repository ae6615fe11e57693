"""The dtypes, under PyTorch's names: ``wally.float32``, ``wally.int64`` ...

Each is a :class:`dtype` standing for one NumPy dtype. It prints as PyTorch's does
(``wally.float32``, or ``torch.float32`` under :func:`wally.alias_torch`), and everywhere else
it is that NumPy dtype: it compares and hashes equal to it (``t.dtype == numpy.float32``,
``t.dtype == t.numpy().dtype``), NumPy accepts it (``numpy.zeros(2, dtype=wally.float32)``),
and NumPy's attributes (``kind``, ``itemsize``, ``name``) read through it.
"""

from __future__ import annotations

import builtins
from typing import Any

from wally.backend import xp


class dtype:  # noqa: N801 - PyTorch's name
    """The element type of a tensor (``torch.dtype``): one per NumPy dtype, so ``is`` works.

    >>> wally.zeros(2).dtype
    wally.float32
    >>> wally.zeros(2).dtype == numpy.float32
    True
    """

    __slots__ = ("dtype",)
    dtype: Any  # the NumPy dtype; the attribute NumPy itself reads to accept this object

    def __new__(cls, numpy_dtype: Any) -> dtype:
        return of(numpy_dtype)

    @property
    def is_floating_point(self) -> builtins.bool:
        return builtins.bool(self.dtype.kind == "f")

    @property
    def is_complex(self) -> builtins.bool:
        return builtins.bool(self.dtype.kind == "c")

    @property
    def is_signed(self) -> builtins.bool:
        return builtins.bool(self.dtype.kind in "ifc")

    @property
    def itemsize(self) -> builtins.int:
        return builtins.int(self.dtype.itemsize)

    def __getattr__(self, name: str) -> Any:
        # Only reached for what this class lacks: NumPy's attributes (kind, char, type, ...).
        return getattr(object.__getattribute__(self, "dtype"), name)

    def __eq__(self, other: object) -> builtins.bool:
        if isinstance(other, dtype):
            return self is other
        try:
            return builtins.bool(self.dtype == xp.dtype(other))  # type: ignore[call-overload]
        except TypeError:
            return NotImplemented

    def __hash__(self) -> builtins.int:
        return hash(self.dtype)  # as the NumPy dtype's, so either finds the other in a dict

    def __repr__(self) -> str:
        from wally._alias import prefix

        return f"{prefix()}.{_NAMES.get(self.dtype.name, self.dtype.name)}"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (of, (self.dtype.str,))


_BY_NUMPY: dict[Any, dtype] = {}
# The name PyTorch prints where it differs from NumPy's.
_NAMES = {"complex64": "complex64", "complex128": "complex128"}


def of(numpy_dtype: Any) -> dtype:
    """The :class:`dtype` of a NumPy dtype (or anything NumPy reads as one)."""
    key = xp.dtype(numpy_dtype)
    found = _BY_NUMPY.get(key)
    if found is None:
        found = object.__new__(dtype)
        object.__setattr__(found, "dtype", key)
        if key.isnative:  # byte-swapped dtypes are converted on the way in; keep no entry
            _BY_NUMPY[key] = found
    return found


float16 = half = of("float16")
float32 = float = of("float32")
float64 = double = of("float64")
complex64 = cfloat = of("complex64")
complex128 = cdouble = of("complex128")
int8 = of("int8")
uint8 = of("uint8")
int16 = short = of("int16")
int32 = int = of("int32")
int64 = long = of("int64")
bool = of("bool")


__all__ = [
    "dtype", "float16", "half", "float32", "float", "float64", "double", "complex64", "cfloat",
    "complex128", "cdouble", "int8", "uint8", "int16", "short", "int32", "int", "int64", "long",
    "bool",
]
