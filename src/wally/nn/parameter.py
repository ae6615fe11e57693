"""``Parameter``: a tensor that a :class:`~wally.nn.Module` registers as learnable.

Assigning a ``Parameter`` to a module attribute (``self.weight = Parameter(...)``) is what puts
it in ``module.parameters()`` and ``module.state_dict()``; a plain ``Tensor`` stays a plain
attribute.

Lazy layers (``LazyLinear``, ``LazyConv2d``, ``LazyBatchNorm2d``) hold
:class:`UninitializedParameter` / :class:`UninitializedBuffer` placeholders until the first
forward pass tells them the input size. ``materialize(shape)`` then turns the placeholder, in
place, into an ordinary ``Parameter`` (or ``Tensor``): the same Python object, so an optimiser
built before the dry run still holds the right parameter.
"""

from __future__ import annotations

import copy
from typing import Any

from wally.backend import ndarray, xp
from wally.tensor import Tensor, to_array

__all__ = ["Parameter", "UninitializedParameter", "UninitializedBuffer"]

# Tensor keeps its array in a slot; lazy placeholders shadow ``array`` with a property that
# raises, so they reach the real storage through the slot's descriptor.
_ARRAY_SLOT: Any = Tensor.__dict__["array"]


def _raw_array(t: Tensor) -> ndarray:
    """``t.array`` without the check that lazy placeholders make (for module bookkeeping)."""
    return _ARRAY_SLOT.__get__(t, type(t))


def _set_raw_array(t: Tensor, array: ndarray) -> None:
    _ARRAY_SLOT.__set__(t, array)


class Parameter(Tensor):
    """A tensor that is a module's learnable parameter.

    ``Parameter(data)`` wraps ``data``'s array **without copying** and is a leaf that requires
    grad (unless ``requires_grad=False``). ``Parameter()`` holds an empty float32 tensor.

    Shape:
        That of ``data``.

    Example::

        >>> w = nn.Parameter(wally.zeros(2, 3))
        >>> w.requires_grad, w.shape
        (True, (2, 3))
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            array = xp.empty((0,), dtype=xp.float32)
        elif isinstance(data, Tensor):
            array = _raw_array(data)
        else:
            array = to_array(data)
        self._init(array, requires_grad, None, 0)
        if isinstance(data, Tensor):  # the same memory: the same version
            self._version_counter = data._counter()

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict[int, Any]) -> Parameter:
        result = type(self)(_raw_array(self).copy(), self.requires_grad)
        if self.grad is not None:
            result.grad = copy.deepcopy(self.grad, memo)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (type(self), (_raw_array(self), self.requires_grad))


class _UninitializedMixin:
    """A placeholder whose shape is not known yet; any use of its values raises.

    It stores an empty array of the requested dtype, so that ``module.to(float64)`` before the
    dry run still decides the dtype the parameter will be materialised with.
    """

    __slots__ = ()
    cls_to_become: type[Tensor] = Tensor

    def _uninitialized_error(self) -> ValueError:
        return ValueError(
            f"{type(self).__name__} has no shape or values yet: a lazy layer creates them at "
            "its first forward pass. Run one batch through the model (a dry run) before "
            "reading parameter shapes, counting parameters or initialising them."
        )

    @property
    def array(self) -> ndarray:
        raise self._uninitialized_error()

    @array.setter
    def array(self, value: ndarray) -> None:
        _set_raw_array(self, value)  # type: ignore[arg-type]

    @property
    def dtype(self) -> Any:
        return _raw_array(self).dtype  # type: ignore[arg-type]

    @property
    def shape(self) -> tuple[int, ...]:
        raise self._uninitialized_error()

    def materialize(self, shape: Any, device: Any = None, dtype: Any = None) -> None:
        """Give the placeholder storage of ``shape`` (uninitialised values) and make it a
        plain ``Parameter`` (or ``Tensor`` for a buffer), in place.

        The layer's ``reset_parameters`` fills the values afterwards.
        """
        if isinstance(shape, int):
            shape = (shape,)
        dtype = _raw_array(self).dtype if dtype is None else xp.dtype(dtype)  # type: ignore[arg-type]
        _set_raw_array(self, xp.empty(tuple(int(n) for n in shape), dtype=dtype))  # type: ignore[arg-type]
        self.__class__ = self.cls_to_become  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        result = type(self)(requires_grad=self.requires_grad, dtype=self.dtype)  # type: ignore
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (type(self), (self.requires_grad, None, self.dtype))  # type: ignore[attr-defined]


class UninitializedParameter(_UninitializedMixin, Parameter):
    """A parameter whose shape a lazy layer infers at its first forward pass.

    Reading its ``shape`` or values raises a ``ValueError`` that says to run a dry run first;
    ``materialize(shape)`` turns it into an ordinary :class:`Parameter` in place.

    Shape:
        None until materialised.

    Example::

        >>> w = nn.UninitializedParameter()
        >>> w.materialize((3, 4))
        >>> type(w).__name__, w.shape
        ('Parameter', (3, 4))
    """

    __slots__ = ()
    cls_to_become = Parameter

    def __init__(self, requires_grad: bool = True, device: Any = None, dtype: Any = None) -> None:
        dtype = xp.float32 if dtype is None else xp.dtype(dtype)
        self._init(xp.empty((0,), dtype=dtype), requires_grad, None, 0)


class UninitializedBuffer(_UninitializedMixin, Tensor):
    """A buffer (e.g. BatchNorm's ``running_mean``) whose shape a lazy layer infers at its first
    forward pass; ``materialize(shape)`` turns it into an ordinary ``Tensor`` in place.

    Shape:
        None until materialised.

    Example::

        >>> b = nn.UninitializedBuffer()
        >>> b.materialize(5)
        >>> b.shape
        wally.Size([5])
    """

    __slots__ = ()
    cls_to_become = Tensor

    def __init__(self, requires_grad: bool = False, device: Any = None, dtype: Any = None) -> None:
        dtype = xp.float32 if dtype is None else xp.dtype(dtype)
        self._init(xp.empty((0,), dtype=dtype), requires_grad, None, 0)


def is_lazy(value: Any) -> bool:
    """Whether ``value`` is a lazy placeholder that has not been materialised yet."""
    return isinstance(value, _UninitializedMixin)
