"""The tensor factories (``zeros``, ``randn``, ``arange`` ...).

Names, arguments and defaults follow PyTorch: factories make float32 unless ``dtype=`` says
otherwise, Python integers make int64, and the random ones draw from the global generator of
:mod:`wally.random` (``manual_seed``, ``get_rng_state``; imported here too, as before).
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import math
import operator
from collections.abc import Iterator, Sequence
from typing import Any

from wally.backend import ndarray, xp
from wally.dtypes import float32, float64, int64
from wally.random import generator, get_rng_state, manual_seed, set_rng_state
from wally.tensor import Tensor, to_array


def _size(size: Sequence[Any], op: str = "size", keyword: Any = None) -> tuple[int, ...]:
    """Accept ``zeros(2, 3)``, ``zeros((2, 3))``, ``zeros([2, 3])`` and ``zeros(size=(2, 3))``
    as PyTorch does; refuse a size that is not whole numbers, or is negative."""
    if keyword is not None:
        if size:
            raise TypeError(f"{op}() got multiple values for argument 'size'")
        size = (keyword,)
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = []
    for n in size:
        if isinstance(n, (builtins.float, builtins.bool)) or not hasattr(n, "__index__"):
            raise TypeError(f"{op}(): argument 'size' must be a tuple of ints, got "
                            f"{type(n).__name__} {str(n)[:40]} in {tuple(size)!r:.80}")
        shape.append(operator.index(n))
    if any(n < 0 for n in shape):
        raise RuntimeError(f"{op}(): trying to create a tensor with a negative dimension: "
                           f"size {shape}")
    return tuple(shape)


def _float_dtype(dtype: Any) -> Any:
    return xp.dtype(float32 if dtype is None else dtype)


def _random_dtype(dtype: Any, op: str) -> Any:
    """The dtype a random float factory makes (float32 unless told), refusing integers as
    PyTorch does."""
    dtype = _float_dtype(dtype)
    if dtype.kind not in "fc":
        raise TypeError(f"{op}(): expected a floating point dtype, got {dtype}")
    return dtype


def _check_device(device: Any) -> None:
    """``device=`` is accepted as in PyTorch; anything but the CPU is refused clearly."""
    if device is not None:
        from wally.device import device as device_class

        device_class(device)


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


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False,
           pin_memory: Any = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (lists of floats become float32; arrays in the
    other byte order, such as big-endian ``>f4``, are converted to the native one)."""
    _check_device(device)
    return _wrap(_native(to_array(data, dtype, copy=True)), requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like :func:`tensor`, but shares memory with ``data`` where it can (not with an array in
    the other byte order, which is converted)."""
    _check_device(device)
    if isinstance(data, Tensor) and (dtype is None or data.dtype == xp.dtype(dtype)):
        return data
    return _wrap(_native(to_array(data, dtype)), False)


def from_numpy(array: ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array, keeping its dtype.

    An array in the other byte order (big-endian ``>f4`` on a little-endian machine) is the
    one exception: it is converted to a native copy, which does not share memory (PyTorch
    refuses such arrays; wally's ops would otherwise each see a byte-swapped dtype)."""
    return _wrap(_native(xp.asarray(array)), False)


# Keywords PyTorch's factories take that change nothing on wally's CPU arrays, with the value
# each must keep (``pin_memory=True`` or ``out=`` are refused rather than silently ignored).
_INERT_KEYWORDS = {"layout": None, "pin_memory": False, "memory_format": None, "out": None,
                   "generator": None}


def _keywords(op: str, keywords: dict[str, Any], allowed: tuple[str, ...] = ()) -> Any:
    """The ``size=`` keyword of a factory, after checking the others it was given."""
    size = keywords.pop("size", None) if "size" in allowed else None
    for name, value in keywords.items():
        if name not in _INERT_KEYWORDS:
            raise TypeError(f"{op}() got an unexpected keyword argument {name!r}")
        inert = _INERT_KEYWORDS[name]
        if value is not inert and value != inert and not (
                name in ("layout", "memory_format") and "strided" in str(value)
                or name == "memory_format" and "preserve" in str(value)):
            raise ValueError(f"{op}(): {name}={value!r} is not supported by wally "
                             f"(expected {name}={inert!r})")
    return size


def _filled(fill: Any, op: str, size: Sequence[Any], keywords: dict[str, Any], dtype: Any,
            device: Any, requires_grad: Any) -> Tensor:
    shape = _size(size, op, _keywords(op, keywords, ("size",)))
    _check_device(device)
    dtype = _float_dtype(dtype)
    return _wrap(fill(_budgeted(shape, dtype), dtype=dtype), requires_grad)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False,
          **keywords: Any) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)``, ``zeros((2, 3))`` or ``zeros(size=(2, 3))``; float32
    unless ``dtype=`` says otherwise.

    **Shape:** ``size``.

    >>> wally.zeros(size=(2, 3), requires_grad=True).shape
    wally.Size([2, 3])
    """
    return _filled(xp.zeros, "zeros", size, keywords, dtype, device, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False,
         **keywords: Any) -> Tensor:
    """A tensor of ones, sized as :func:`zeros` is."""
    return _filled(xp.ones, "ones", size, keywords, dtype, device, requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False,
          **keywords: Any) -> Tensor:
    """An uninitialised tensor, sized as :func:`zeros` is."""
    return _filled(xp.empty, "empty", size, keywords, dtype, device, requires_grad)


def full(size: Sequence[Any], fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: Any = False, **keywords: Any) -> Tensor:
    """A tensor of ``size`` holding ``fill_value`` everywhere; the dtype follows the value as in
    PyTorch (a float makes float32, an int int64, a bool bool)."""
    _keywords("full", keywords)
    _check_device(device)
    if dtype is None:
        dtype = to_array(fill_value).dtype
    shape = _budgeted(_size((size,), "full"), xp.dtype(dtype))
    return _wrap(xp.full(shape, fill_value, dtype=dtype), requires_grad)


def eye(n: Any, m: Any = None, dtype: Any = None, device: Any = None,
        requires_grad: Any = False, **keywords: Any) -> Tensor:
    """The ``n`` x ``m`` identity matrix (``m`` defaults to ``n``)."""
    _keywords("eye", keywords)
    _check_device(device)
    rows, columns = _size((n, n if m is None else m), "eye")
    return _wrap(xp.eye(rows, columns, dtype=_float_dtype(dtype)), requires_grad)


def _like(fill: Any, op: str, input: Tensor, dtype: Any, device: Any, requires_grad: Any,
          keywords: dict[str, Any]) -> Tensor:
    _keywords(op, keywords)
    _check_device(device)
    dtype = input.dtype if dtype is None else xp.dtype(dtype)
    return _wrap(fill(input.array.shape, dtype=dtype), requires_grad)


def zeros_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: Any = False,
               **keywords: Any) -> Tensor:
    """Zeros of ``input``'s shape, and of its dtype unless ``dtype=`` says otherwise."""
    return _like(xp.zeros, "zeros_like", input, dtype, device, requires_grad, keywords)


def ones_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: Any = False,
              **keywords: Any) -> Tensor:
    """Ones of ``input``'s shape, and of its dtype unless ``dtype=`` says otherwise."""
    return _like(xp.ones, "ones_like", input, dtype, device, requires_grad, keywords)


def empty_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: Any = False,
               **keywords: Any) -> Tensor:
    """An uninitialised tensor of ``input``'s shape and dtype."""
    return _like(xp.empty, "empty_like", input, dtype, device, requires_grad, keywords)


def full_like(input: Tensor, fill_value: Any, dtype: Any = None, device: Any = None,
              requires_grad: Any = False, **keywords: Any) -> Tensor:
    """``fill_value`` everywhere, in ``input``'s shape and dtype."""
    return _like(lambda shape, dtype: xp.full(shape, fill_value, dtype=dtype), "full_like",
                 input, dtype, device, requires_grad, keywords)


def _sample(draw: Any, op: str, size: Sequence[Any], keywords: dict[str, Any], dtype: Any,
            device: Any, requires_grad: Any) -> Tensor:
    shape = _size(size, op, _keywords(op, keywords, ("size",)))
    _check_device(device)
    dtype = _random_dtype(dtype, op)
    # NumPy draws float32 and float64 directly; half precision is rounded from float32.
    array = draw(shape, dtype=dtype if dtype.itemsize >= 4 else float32)
    return _wrap(array.astype(dtype, copy=False), requires_grad)


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False,
         **keywords: Any) -> Tensor:
    """Uniform samples on [0, 1), sized as :func:`zeros` is (``rand(size=(8, 8))`` too)."""
    return _sample(generator().random, "rand", size, keywords, dtype, device, requires_grad)


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False,
          **keywords: Any) -> Tensor:
    """Standard normal samples, sized as :func:`zeros` is."""
    return _sample(generator().standard_normal, "randn", size, keywords, dtype, device,
                   requires_grad)


def rand_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: Any = False,
              **keywords: Any) -> Tensor:
    """Uniform samples on [0, 1) in ``input``'s shape and dtype."""
    return rand(input.array.shape, dtype=input.dtype if dtype is None else dtype, device=device,
                requires_grad=requires_grad, **keywords)


def randn_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: Any = False,
               **keywords: Any) -> Tensor:
    """Standard normal samples in ``input``'s shape and dtype."""
    return randn(input.array.shape, dtype=input.dtype if dtype is None else dtype,
                 device=device, requires_grad=requires_grad, **keywords)


def randint(*args: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False,
            **keywords: Any) -> Tensor:
    """Integers drawn uniformly from [low, high): ``randint(high, size)``,
    ``randint(low, high, size)`` or with keywords, as in PyTorch; int64 unless told."""
    named = {name: keywords.pop(name) for name in ("low", "high", "size") if name in keywords}
    _keywords("randint", keywords)
    _check_device(device)
    if len(args) == 2 and "high" not in named and "size" not in named:
        args = (0, *args)  # randint(high, size)
    elif len(args) == 1 and "high" not in named:
        args = (0, *args)  # randint(high, size=...)
    values = dict(zip(("low", "high", "size"), args))
    for name, value in named.items():
        if name in values:
            raise TypeError(f"randint() got multiple values for argument {name!r}")
        values[name] = value
    if "high" not in values or "size" not in values:
        raise TypeError("randint() needs high and size: randint(high, size) or "
                        f"randint(low, high, size), got {len(args)} positional arguments and "
                        f"keywords {sorted(named)}")
    low, high = values.get("low", 0), values["high"]
    if not low < high:
        raise RuntimeError(f"randint(): expected low < high, got low={low}, high={high}")
    array = generator().integers(low, high, size=_size((values["size"],), "randint"),
                                dtype=xp.int64)
    return _wrap(array.astype(int64 if dtype is None else dtype, copy=False), requires_grad)


def randperm(n: Any, dtype: Any = None, device: Any = None, requires_grad: Any = False,
             **keywords: Any) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64 unless told)."""
    _keywords("randperm", keywords)
    _check_device(device)
    (count,) = _size((n,), "randperm")
    return _wrap(generator().permutation(count).astype(int64 if dtype is None else dtype),
                 requires_grad)


def normal(mean: Any = 0.0, std: Any = 1.0, size: Any = None, dtype: Any = None,
           device: Any = None, requires_grad: Any = False, **keywords: Any) -> Tensor:
    """Normal samples ``mean + std · N(0, 1)``, as ``torch.normal(mean, std, size)``.

    ``mean`` and ``std`` may also be tensors (then ``size`` is their broadcast shape, and the
    dtype is theirs, float64 if either is); otherwise the dtype is float32 unless told.
    """
    _keywords("normal", keywords)
    _check_device(device)
    operands = [m for m in (mean, std) if isinstance(m, (Tensor, ndarray))]
    mean_array, std_array = to_array(mean), to_array(std)
    if size is None:
        size = xp.broadcast_shapes(mean_array.shape, std_array.shape)
    if dtype is None:
        floats = [to_array(m).dtype for m in operands if to_array(m).dtype.kind == "f"]
        dtype = xp.result_type(*floats) if floats else float32
    dtype = _random_dtype(dtype, "normal")
    noise = generator().standard_normal(_size((size,), "normal"),
                                       dtype=float32 if dtype == float32 else float64)
    return _wrap((mean_array + std_array * noise).astype(dtype, copy=False), requires_grad)


def arange(start: Any = 0, end: Any = None, step: Any = 1, dtype: Any = None,
           device: Any = None, requires_grad: Any = False, **keywords: Any) -> Tensor:
    """``[start, start + step, ...)`` below ``end``: int64 when every argument is an integer,
    else float32 (PyTorch's default float, even for a float64 tensor argument)."""
    _keywords("arange", keywords)
    _check_device(device)
    if end is None:
        start, end = 0, start
    # the bounds as Python numbers (a Python float stays a double, as torch's Scalar does)
    bounds = [v.item() if hasattr(v, "item") else v for v in (start, end, step)]
    if dtype is None:
        dtype = int64 if all(to_array(v).dtype.kind in "iub" for v in bounds) else float32
    if bounds[2] == 0:
        raise RuntimeError("arange(): step must be nonzero")
    return _wrap(xp.arange(*bounds).astype(dtype, copy=False), requires_grad)


def linspace(start: Any, end: Any, steps: Any, dtype: Any = None, device: Any = None,
             requires_grad: Any = False, **keywords: Any) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive; float32 unless told
    (an integer dtype truncates, as PyTorch's does)."""
    _keywords("linspace", keywords)
    _check_device(device)
    (count,) = _size((steps,), "linspace")
    values = xp.linspace(to_array(start).item(), to_array(end).item(), count)
    return _wrap(values.astype(_float_dtype(dtype)), requires_grad)


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
