"""dtypes, the random generator and the tensor factories (``zeros``, ``randn``, ``arange`` ...).

Names, arguments and defaults follow PyTorch: factories make float32 unless ``dtype=`` says
otherwise, Python integers make int64, and ``manual_seed`` seeds one global generator.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence
from typing import Any

from wally.backend import ndarray, xp
from wally.dtypes import float32, float64, int64
from wally.tensor import Tensor, to_array

_generator = xp.random.default_rng()


def manual_seed(seed: Any) -> Any:
    """Seed the global generator used by ``rand``, ``randn``, initialisers and dropout.

    As in PyTorch, ``seed`` is any integer from ``-2**63`` to ``2**64 - 1``; a negative one is
    taken modulo ``2**64`` (``-1`` seeds as ``2**64 - 1``), and others raise ``ValueError``.
    """
    global _generator
    try:
        value = int(seed)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"manual_seed: expected an integer seed, got {type(seed).__name__} "
                        f"{str(seed)[:40]}") from None
    if not -(1 << 63) <= value < 1 << 64:
        shown = str(value) if abs(value) < 10**40 else f"an integer of {value.bit_length()} bits"
        raise ValueError(f"manual_seed: the seed must be from -2**63 to 2**64 - 1 (as in "
                         f"PyTorch), got {shown}")
    _generator = xp.random.default_rng(value % (1 << 64))
    return _generator


def generator() -> Any:
    """The global ``numpy.random.Generator`` (reseeded by :func:`manual_seed`)."""
    return _generator


def get_rng_state() -> dict[str, Any]:
    """The global generator's state, JSON-serialisable (for checkpoints)."""
    return dict(_generator.bit_generator.state)


def set_rng_state(state: dict[str, Any]) -> None:
    _generator.bit_generator.state = state


def _size(size: Sequence[Any]) -> tuple[Any, ...]:
    """Accept ``zeros(2, 3)``, ``zeros((2, 3))`` and ``zeros([2, 3])`` as PyTorch does."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(n) for n in size)


def _float_dtype(dtype: Any) -> Any:
    return float32 if dtype is None else xp.dtype(dtype)


# The bytes that empty/zeros/ones may still allocate (None: no limit). wally.io.checkpoint sets
# it while it rebuilds a model from a file's config, which a hostile file could make ask for
# terabytes; every allocation is charged at least 64 bytes, so endless empty layers stop too.
_allocation_budget: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "wally_allocation_budget", default=None)


@contextlib.contextmanager
def _allocation_limit(max_bytes: int) -> Iterator[None]:
    """Make :func:`empty`, :func:`zeros` and :func:`ones` raise ``MemoryError`` once they have
    allocated ``max_bytes`` inside this block."""
    token = _allocation_budget.set([max_bytes])
    try:
        yield
    finally:
        _allocation_budget.reset(token)


def _budgeted(shape: tuple[int, ...], dtype: Any) -> tuple[int, ...]:
    budget = _allocation_budget.get()
    if budget is not None:
        budget[0] -= max(64, math.prod(shape) * dtype.itemsize)
        if budget[0] < 0:
            raise MemoryError(f"allocating {shape} {dtype} exceeds the allocation limit")
    return shape


def _wrap(array: ndarray, requires_grad: Any) -> Tensor:
    return Tensor._make(array, requires_grad, None, 0)


def _native(array: ndarray) -> ndarray:
    """``array`` in the machine's byte order: a big-endian ``>f4`` array (FITS files, network
    data) becomes a native float32 copy, so that no op ever sees a byte-swapped dtype (PyTorch
    can't hold one and refuses such arrays)."""
    if array.dtype.isnative:
        return array
    return array.astype(array.dtype.newbyteorder("="))


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (lists of floats become float32; arrays in the
    other byte order, such as big-endian ``>f4``, are converted to the native one)."""
    return _wrap(_native(to_array(data, dtype, copy=True)), requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like :func:`tensor`, but shares memory with ``data`` where it can (not with an array in
    the other byte order, which is converted)."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == xp.dtype(dtype)):
        return data
    return _wrap(_native(to_array(data, dtype)), False)


def from_numpy(array: ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array, keeping its dtype.

    An array in the other byte order (big-endian ``>f4`` on a little-endian machine) is the
    one exception: it is converted to a native copy, which does not share memory (PyTorch
    refuses such arrays; wally's ops would otherwise each see a byte-swapped dtype)."""
    return _wrap(_native(xp.asarray(array)), False)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False) -> Tensor:
    dtype = _float_dtype(dtype)
    return _wrap(xp.zeros(_budgeted(_size(size), dtype), dtype=dtype), requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False) -> Tensor:
    dtype = _float_dtype(dtype)
    return _wrap(xp.ones(_budgeted(_size(size), dtype), dtype=dtype), requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False) -> Tensor:
    dtype = _float_dtype(dtype)
    return _wrap(xp.empty(_budgeted(_size(size), dtype), dtype=dtype), requires_grad)


def full(
    size: Sequence[Any], fill_value: Any, dtype: Any = None, device: Any = None,
    requires_grad: Any = False,
) -> Tensor:
    if dtype is None:
        dtype = to_array(fill_value).dtype
    return _wrap(xp.full(_size((size,)), fill_value, dtype=dtype), requires_grad)


def eye(n: Any, m: Any = None, dtype: Any = None, device: Any = None,
        requires_grad: Any = False) -> Tensor:
    return _wrap(xp.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def zeros_like(input: Tensor, dtype: Any = None, device: Any = None,
               requires_grad: Any = False) -> Tensor:
    return _wrap(xp.zeros(input.shape, dtype=dtype or input.dtype), requires_grad)


def ones_like(input: Tensor, dtype: Any = None, device: Any = None,
              requires_grad: Any = False) -> Tensor:
    return _wrap(xp.ones(input.shape, dtype=dtype or input.dtype), requires_grad)


def full_like(input: Tensor, fill_value: Any, dtype: Any = None, device: Any = None,
              requires_grad: Any = False) -> Tensor:
    return _wrap(xp.full(input.shape, fill_value, dtype=dtype or input.dtype), requires_grad)


def empty_like(input: Tensor, dtype: Any = None, device: Any = None,
               requires_grad: Any = False) -> Tensor:
    return _wrap(xp.empty(input.shape, dtype=dtype or input.dtype), requires_grad)


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False) -> Tensor:
    """Uniform samples on [0, 1)."""
    dtype = _float_dtype(dtype)
    array = _generator.random(_size(size), dtype=dtype if dtype.itemsize >= 4 else float32)
    return _wrap(array.astype(dtype, copy=False), requires_grad)


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False) -> Tensor:
    """Standard normal samples."""
    dtype = _float_dtype(dtype)
    array = _generator.standard_normal(_size(size), dtype=dtype if dtype.itemsize >= 4 else float32)
    return _wrap(array.astype(dtype, copy=False), requires_grad)


def rand_like(input: Tensor, dtype: Any = None, device: Any = None,
              requires_grad: Any = False) -> Tensor:
    return rand(input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def randn_like(input: Tensor, dtype: Any = None, device: Any = None,
               requires_grad: Any = False) -> Tensor:
    return randn(input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def randint(
    low: Any, high: Any = None, size: Any = None, dtype: Any = None, device: Any = None
) -> Tensor:
    """Integers drawn uniformly from [low, high); ``randint(high, size)`` as in PyTorch."""
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    array = _generator.integers(low, high, size=_size((size,)), dtype=xp.int64)
    return _wrap(array.astype(dtype or int64, copy=False), False)


def randperm(n: Any, dtype: Any = None, device: Any = None) -> Tensor:
    return _wrap(_generator.permutation(n).astype(dtype or int64), False)


def normal(mean: Any = 0.0, std: Any = 1.0, size: Any = None, dtype: Any = None,
           device: Any = None, requires_grad: Any = False) -> Tensor:
    """Normal samples ``mean + std · N(0, 1)``, as ``torch.normal(mean, std, size)``.

    ``mean`` and ``std`` may also be tensors (then ``size`` is their broadcast shape).
    """
    mean_array, std_array = to_array(mean), to_array(std)
    if size is None:
        size = xp.broadcast_shapes(mean_array.shape, std_array.shape)
    if dtype is None:  # a tensor mean or std gives its float dtype (0-d ones too)
        floats = [to_array(m).dtype for m in (mean, std)
                  if isinstance(m, (Tensor, ndarray)) and to_array(m).dtype.kind == "f"]
        dtype = xp.result_type(*floats) if floats else None
    dtype = _float_dtype(dtype)
    noise = _generator.standard_normal(_size((size,)), dtype=float32 if dtype == float32
                                       else float64)
    return _wrap((mean_array + std_array * noise).astype(dtype, copy=False), requires_grad)


def arange(
    start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
    requires_grad: Any = False,
) -> Tensor:
    """``[start, start + step, ...)`` below ``end``: int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    values = [to_array(v) for v in (start, end, step)]
    if dtype is None:
        dtype = int64 if all(v.dtype.kind in "iub" for v in values) else float32
    return _wrap(xp.arange(start, end, step).astype(dtype, copy=False), requires_grad)


def linspace(start: Any, end: Any, steps: Any, dtype: Any = None, device: Any = None) -> Tensor:
    return _wrap(xp.linspace(start, end, steps).astype(_float_dtype(dtype)), False)


def is_tensor(obj: Any) -> Any:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> Any:
    return input.numel()


def is_floating_point(input: Tensor) -> Any:
    return input.is_floating_point()


__all__ = [
    "manual_seed", "get_rng_state", "set_rng_state",
    "tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "eye", "zeros_like",
    "ones_like", "full_like", "empty_like", "rand", "randn", "rand_like", "randn_like",
    "randint", "randperm", "normal", "arange", "linspace", "is_tensor", "numel",
    "is_floating_point",
]
