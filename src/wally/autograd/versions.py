"""In-place checks (PyTorch's "modified by an inplace operation" error).

Every tensor's memory carries a :class:`Version` (shared by the tensors that view the same
memory) that each in-place write bumps. When a node is recorded, :func:`saved_versions` finds
which input and output tensors its ``forward`` kept (an attribute holding their memory, such as
``self.y``) and notes their versions; :func:`check_versions` refuses to run the node's backward
if one has changed since, because it would compute with the new values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wally.backend import ndarray

if TYPE_CHECKING:
    from wally.autograd.function import Function
    from wally.tensor import Tensor

__all__ = ["Version"]


def tensor_class() -> type[Tensor]:
    """``wally.tensor.Tensor``, imported on first use (the tensor module imports autograd)."""
    global _TENSOR
    if _TENSOR is None:
        from wally.tensor import Tensor

        _TENSOR = Tensor
    return _TENSOR


_TENSOR: type[Tensor] | None = None


class Version:
    """The version of one piece of memory: how many in-place writes it has had.

    Shared by every tensor that views the memory (``x``, ``x[0]``, ``x.view(-1)``,
    ``x.detach()``, ``x.data``); read as ``tensor._version``, as in PyTorch.
    """

    __slots__ = ("value",)

    def __init__(self, value: int = 0) -> None:
        self.value = value


def _root(array: Any) -> Any:
    """The object that owns ``array``'s memory (itself, or the end of its ``base`` chain)."""
    while True:
        base = array.base
        if base is None:
            return array
        if not isinstance(base, ndarray):
            return base
        array = base


def share_versions(outputs: Any, inputs: Any) -> None:
    """Give each output that views an input's memory that input's version counter."""
    roots = None
    for y in outputs:
        if y.array.base is None:
            continue
        if roots is None:
            tensor = _TENSOR or tensor_class()
            roots = [(_root(x.array), x) for x in inputs if isinstance(x, tensor)]
        root = _root(y.array)
        for r, x in roots:
            if r is root:
                y._version_counter = x._counter()
                break


def kept_arrays(fn: Function) -> list[Any]:
    """The memory owners of the arrays ``fn.forward`` kept as attributes (or in a tuple or list
    attribute). Called right after ``forward``, before ``__call__`` adds its own attributes."""
    kept: list[Any] = []
    for value in fn.__dict__.values():
        kind = type(value)
        if kind is ndarray:
            kept.append(value if value.base is None else _root(value))
        elif (kind is tuple or kind is list) and value and type(value[0]) is not bool:
            kept.extend(v if v.base is None else _root(v) for v in value
                        if isinstance(v, ndarray))
    return kept


def saved_versions(kept: list[Any], inputs: Any, outputs: Any) -> list[Any] | None:
    """The (counter, version, shape, dtype, producer, index) of every input or output whose
    memory is in ``kept`` (no tensor itself: an output held by its own node would make a cycle).

    A node keeps a tensor when one of its attributes is that tensor's array or a view of its
    memory. Arrays that ``forward`` computed afresh (a mask, a padded copy) share no memory with
    a tensor and are not counted.
    """
    saved = None
    Tensor = _TENSOR or tensor_class()  # noqa: N806 - the class, imported late
    for t in (*inputs, *outputs):
        if isinstance(t, Tensor):
            array = t.array
            root = array if array.base is None else _root(array)
            for k in kept:
                if k is root:
                    counter = t._counter()
                    producer = t._ctx.name if t._ctx is not None else None
                    entry = (counter, counter.value, array.shape, array.dtype, producer,
                             t._out_idx)
                    saved = [entry] if saved is None else [*saved, entry]
                    break
    return saved


_DTYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
                "int64": "LongTensor", "int32": "IntTensor", "bool": "BoolTensor"}


def check_versions(fn: Function) -> None:
    """Refuse to run ``fn.backward`` if a tensor it kept was written in place since (PyTorch's
    message, naming the op whose backward needs it)."""
    for counter, version, shape, dtype, producer, index in fn._saved or ():
        if counter.value != version:
            kind = _DTYPE_NAMES.get(str(dtype), f"Tensor[{dtype}]")
            where = f", which is output {index} of {producer}Backward" if producer else ""
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [wally.{kind} {list(shape)}]{where}, is at version "
                f"{counter.value}; expected version {version} instead. {fn.name}Backward needs "
                "its value from the forward pass: make the in-place change out of place "
                "(y = y + 1 instead of y += 1), or .clone() the tensor before changing it."
            )


