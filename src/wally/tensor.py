"""``Tensor``: one NumPy array, plus what autograd needs to send gradients back to it.

Every method that computes something is one line that calls :mod:`wally.ops`, where the
differentiable ops live as small ``Function`` classes; nothing is monkey-patched on later, so
``Tensor.__add__`` below is where ``+`` is defined.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Any, NamedTuple

from wally import _alias, autograd, dtypes
from wally.backend import ndarray, xp
from wally.random import generator
from wally.size import Size

_DEFAULT_FLOAT = xp.dtype("float32")


def to_array(data: Any, dtype: Any = None, copy: bool = False) -> ndarray:
    """Convert ``data`` to an array with PyTorch's dtype rules.

    NumPy arrays and tensors keep their dtype; Python floats (and lists of them) become float32,
    Python ints int64 and bools bool.
    """
    if isinstance(data, Tensor):
        array = data.array
    elif isinstance(data, (ndarray, xp.generic)):
        array = xp.asarray(data)
    else:
        if isinstance(data, (list, tuple)) and data and any(isinstance(v, Tensor) for v in data):
            data = [v.array if isinstance(v, Tensor) else v for v in data]
        array = xp.asarray(data)
        if dtype is None and array.dtype == xp.float64:
            array = array.astype(_DEFAULT_FLOAT)
            copy = False
    if dtype is not None:
        return array.astype(dtype, copy=copy)
    return array.copy() if copy else array


class MaxResult(NamedTuple):
    """``(values, indices)``, as returned by ``Tensor.max(dim)`` and ``Tensor.min(dim)``."""

    values: Tensor
    indices: Tensor


class Tensor:
    """A multi-dimensional array with automatic differentiation, like ``torch.Tensor``.

    >>> x = wally.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([[2., 4.],
            [6., 8.]])
    """

    __slots__ = ("array", "requires_grad", "grad", "_ctx", "_out_idx", "_retains_grad",
                 "_version_counter", "__weakref__")
    # NumPy defers ``ndarray + Tensor`` to ``Tensor.__radd__`` instead of looping over elements.
    __array_ufunc__ = None
    __array_priority__ = 1000

    array: ndarray
    requires_grad: builtins.bool
    grad: Tensor | None
    _ctx: autograd.Function | None
    _out_idx: builtins.int
    _retains_grad: builtins.bool
    _version_counter: autograd.Version | None  # made on first need; shared with views

    def __init__(self, data: Any = None, dtype: Any = None,
                 requires_grad: builtins.bool = False) -> None:
        array = to_array([] if data is None else data, dtype)
        if isinstance(data, Tensor) and data.requires_grad:
            raise TypeError(
                "Tensor(t) with a tensor that requires grad: use t.detach() or t.clone()"
            )
        self._init(array, requires_grad, None, 0)

    def _init(self, array: ndarray, requires_grad: builtins.bool,
              ctx: autograd.Function | None, out_idx: builtins.int) -> None:
        if requires_grad and array.dtype.kind not in "fc":
            raise RuntimeError(
                f"only tensors of floating point dtype can require gradients, got {array.dtype}"
            )
        self.array = array
        self.requires_grad = requires_grad
        self.grad = None
        self._ctx = ctx
        self._out_idx = out_idx
        self._retains_grad = False
        self._version_counter = None

    @staticmethod
    def _make(array: ndarray, requires_grad: builtins.bool,
              ctx: autograd.Function | None, out_idx: builtins.int) -> Tensor:
        """Wrap an array without any conversion (the fast path every op takes)."""
        t = object.__new__(Tensor)
        t._init(array, requires_grad, ctx, out_idx)
        return t

    # ----- what a tensor is -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[builtins.int, ...]:  # a Size
        return tuple.__new__(Size, self.array.shape)  # the array's ints, already checked

    @property
    def dtype(self) -> Any:
        return dtypes.of(self.array.dtype)  # a wally.dtype: prints as PyTorch's, equals NumPy's

    @property
    def ndim(self) -> builtins.int:
        return self.array.ndim

    @property
    def device(self) -> Any:
        from wally.device import device

        return device("cpu")

    @property
    def is_leaf(self) -> builtins.bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> autograd.Function | None:
        return self._ctx

    @property
    def data(self) -> Tensor:
        """The same memory, detached from the graph (PyTorch's ``.data``).

        Unlike PyTorch's, it shares this tensor's version: an in-place write through ``.data``
        is seen by the graph's check, never silently used by a backward pass.
        """
        return self._view_detached()

    @data.setter
    def data(self, value: Any) -> None:
        # New memory: the graph keeps the old arrays, so nothing it saved changes.
        self.array = to_array(value)
        self._version_counter = autograd.Version(self._version + 1)

    # ----- versions of memory (autograd's in-place check) ---------------------------------------
    def _counter(self) -> autograd.Version:
        counter = self._version_counter
        if counter is None:
            counter = self._version_counter = autograd.Version()
        return counter

    @property
    def _version(self) -> builtins.int:
        """How many in-place writes this tensor's memory has had (PyTorch's ``_version``)."""
        counter = self._version_counter
        return 0 if counter is None else counter.value

    def _bump_version(self) -> None:
        """Note an in-place write into this tensor's memory."""
        self._counter().value += 1

    def _view_detached(self) -> Tensor:
        view = Tensor._make(self.array, False, None, 0)
        view._version_counter = self._counter()
        return view

    @property
    def T(self) -> Tensor:  # noqa: N802 - PyTorch's name
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:  # noqa: N802 - PyTorch's name
        return self.transpose(-2, -1)

    def size(self, dim: builtins.int | None = None) -> Any:
        return self.shape if dim is None else self.array.shape[dim]

    def dim(self) -> builtins.int:
        return self.ndim

    def numel(self) -> builtins.int:
        return builtins.int(self.array.size)

    def element_size(self) -> builtins.int:
        return builtins.int(self.array.itemsize)

    def is_floating_point(self) -> builtins.bool:
        return builtins.bool(self.array.dtype.kind == "f")

    def __len__(self) -> builtins.int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self) -> str:
        array = self.array
        # PyTorch prints "1., 2." for whole numbers and four fixed decimals otherwise.
        whole = array.dtype.kind != "f" or not array.size or bool(
            xp.all(xp.isfinite(array) & (array == xp.round(array)))
        )
        body = xp.array2string(array, separator=", ", prefix="tensor(", precision=4,
                               threshold=1000, edgeitems=3,
                               floatmode="maxprec" if whole else "fixed")
        extras = []
        if self.array.dtype not in (_DEFAULT_FLOAT, xp.int64, xp.bool_):
            extras.append(f"dtype={_alias.prefix()}.{self.array.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.name}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __format__(self, spec: str) -> str:
        if self.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __array__(self, dtype: Any = None, copy: Any = None) -> ndarray:
        return self.array if dtype is None else self.array.astype(dtype)

    __hash__ = object.__hash__

    # ----- leaving the graph and the framework ------------------------------------------------
    def item(self) -> Any:
        if self.array.size != 1:
            raise ValueError(
                f"item(): a Tensor with {self.array.size} elements cannot be converted to a scalar"
            )
        return self.array.item()

    def tolist(self) -> Any:
        return self.array.tolist()

    def numpy(self, force: builtins.bool = False) -> ndarray:
        if self.requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. "
                "Use tensor.detach().numpy() instead."
            )
        return self.array

    def __float__(self) -> builtins.float:
        return builtins.float(self.item())

    def __int__(self) -> builtins.int:
        return builtins.int(self.item())

    def __index__(self) -> builtins.int:
        if self.array.dtype.kind not in "iub" or self.array.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return builtins.int(self.item())

    def __bool__(self) -> builtins.bool:
        if self.array.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self.array.size} values is ambiguous"
            )
        return builtins.bool(self.array.item())

    def detach(self) -> Tensor:
        """The same memory (and version) outside the graph."""
        return self._view_detached()

    def detach_(self) -> Tensor:
        self._ctx = None
        self.requires_grad = False
        return self

    def clone(self) -> Tensor:
        return ops.clone(self)

    def contiguous(self) -> Tensor:
        return self if self.array.flags.c_contiguous else ops.clone(self)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """``to(dtype)``, ``to(device)`` or ``to(other)``; only the CPU exists."""
        dtype = kwargs.get("dtype")
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif isinstance(arg, (xp.dtype, dtypes.dtype, type)):
                dtype = arg
            else:
                from wally.device import device

                device(arg)  # validates: a CUDA device raises a clear error
        return self if dtype is None else self.type(dtype)

    def cpu(self) -> Tensor:
        return self

    def cuda(self, *args: Any, **kwargs: Any) -> Tensor:
        from wally.device import device

        device("cuda")
        return self

    def type(self, dtype: Any = None) -> Any:
        if dtype is None:
            return f"wally.{self.array.dtype}"
        dtype = xp.dtype(dtype)
        return self if dtype == self.array.dtype else ops.cast(self, dtype)

    def float(self) -> Tensor:
        return self.type(xp.float32)

    def double(self) -> Tensor:
        return self.type(xp.float64)

    def half(self) -> Tensor:
        return self.type(xp.float16)

    def long(self) -> Tensor:
        return self.type(xp.int64)

    def int(self) -> Tensor:
        return self.type(xp.int32)

    def bool(self) -> Tensor:
        return self.type(xp.bool_)

    # ----- gradients --------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: builtins.bool = True) -> Tensor:
        if requires_grad and self.array.dtype.kind not in "fc":
            raise RuntimeError(
                f"only tensors of floating point dtype can require gradients, got {self.dtype}"
            )
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        if self._ctx is not None:
            self._retains_grad = True

    def backward(self, gradient: Any = None, retain_graph: builtins.bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``gradient`` is d(loss)/d(self); it may be left out when ``self`` has one element.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn"
            )
        if gradient is None:
            if self.array.size != 1:
                raise RuntimeError(
                    "grad can be implicitly created only for scalar outputs, "
                    f"got shape {tuple(self.shape)}"
                )
            grad = xp.ones(self.shape, dtype=self.dtype)
        else:
            grad = to_array(gradient, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward(): gradient has shape {grad.shape}, expected {tuple(self.shape)}"
                )
        autograd.run_backward(self, grad, retain_graph)

    def _accumulate_grad(self, g: ndarray, owned: builtins.bool = False) -> None:
        if self.grad is None:
            # A copy, unless autograd hands over an array that nothing else holds (``owned``):
            # one array may be routed to several tensors, and users zero grads in place.
            if not owned or g.dtype != self.dtype:
                g = xp.array(g, dtype=self.dtype)
            self.grad = Tensor._make(g, False, None, 0)
        else:
            self.grad.array = self.grad.array + g

    # ----- in place ---------------------------------------------------------------------------
    def _in_place(self, op: Any, *operands: Any) -> Tensor:
        """``self = op(self, *operands)``, keeping this Python object (the tail of ``+=`` etc.)."""
        records = autograd.is_grad_enabled() and (
            self.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in operands)
        )
        if not records:
            # Nothing to record: write into the existing memory, so views and optimisers see it.
            result = op(self.detach(), *operands).array
            self._check_in_place_shape(result.shape)
            if self.array.flags.writeable:
                xp.copyto(self.array, result, casting="unsafe")
            else:
                self.array = result.astype(self.dtype)
            self._bump_version()
            return self
        return self._record_in_place(op, *operands)

    def _check_in_place_shape(self, shape: tuple[builtins.int, ...]) -> None:
        if tuple(shape) != tuple(self.shape):  # an in-place result keeps self's shape (torch)
            raise RuntimeError(f"output with shape {tuple(self.shape)} doesn't match the "
                               f"broadcast shape {tuple(shape)}")

    def _record_in_place(self, op: Any, *operands: Any) -> Tensor:
        """Make this tensor ``op(previous self, *operands)`` in the graph, keeping its identity."""
        if self.requires_grad and self._ctx is None:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation; "
                "wrap the update in `with wally.no_grad():`"
            )
        # The op reads the previous version of self, which the graph keeps as its own node input.
        # The result is new memory; the old memory counts as written (as in PyTorch), so nodes
        # that kept ``self`` refuse to run backward with the wrong values.
        old = self._counter()
        previous = Tensor._make(self.array, self.requires_grad, self._ctx, self._out_idx)
        previous._version_counter = old
        result = op(previous, *operands)
        self._check_in_place_shape(result.shape)
        old.value += 1
        node = result._ctx
        if node is not None and node._saved is not None:  # its own copy of self is current
            node._saved = [(c, c.value if c is old else v, *rest)
                           for c, v, *rest in node._saved]
        self.array, self._ctx, self._out_idx = result.array, result._ctx, result._out_idx
        self.requires_grad = result.requires_grad
        self._version_counter = autograd.Version(old.value)
        return self

    def __iadd__(self, other: Any) -> Tensor:
        return self._in_place(ops.add, other)

    def __isub__(self, other: Any) -> Tensor:
        return self._in_place(ops.sub, other)

    def __imul__(self, other: Any) -> Tensor:
        return self._in_place(ops.mul, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._in_place(ops.div, other)

    def add_(self, other: Any, alpha: Any = 1) -> Tensor:
        return self._in_place(ops.add, other, alpha)

    def sub_(self, other: Any, alpha: Any = 1) -> Tensor:
        return self._in_place(ops.sub, other, alpha)

    def mul_(self, other: Any) -> Tensor:
        return self._in_place(ops.mul, other)

    def div_(self, other: Any) -> Tensor:
        return self._in_place(ops.div, other)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        return self._in_place(ops.clamp, min, max)

    def relu_(self) -> Tensor:
        return self._in_place(ops.relu)

    def sigmoid_(self) -> Tensor:
        return self._in_place(ops.sigmoid)

    def tanh_(self) -> Tensor:
        return self._in_place(ops.tanh)

    def exp_(self) -> Tensor:
        return self._in_place(ops.exp)

    def neg_(self) -> Tensor:
        return self._in_place(ops.neg)

    def pow_(self, exponent: Any) -> Tensor:
        return self._in_place(ops.pow, exponent)

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def fill_(self, value: Any) -> Tensor:
        """Set every element to ``value``; the old values get no gradient (PyTorch's rule)."""
        return self._in_place(ops.fill, value)

    def copy_(self, src: Any) -> Tensor:
        """Write ``src`` (broadcast, cast to this dtype) into this tensor; gradients flow to
        ``src``, none to the old values."""
        if not isinstance(src, Tensor):
            src = to_array(src)
        return self._in_place(ops.copy_into, src)

    def normal_(self, mean: Any = 0.0, std: Any = 1.0) -> Tensor:
        noise = generator().standard_normal(self.shape)
        return self.copy_(mean + std * noise)

    def uniform_(self, a: Any = 0.0, b: Any = 1.0) -> Tensor:
        return self.copy_(generator().uniform(a, b, self.shape))

    # ----- arithmetic -------------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __pow__(self, exponent: Any) -> Tensor:
        return ops.pow(self, exponent)

    def __rpow__(self, base: Any) -> Tensor:
        return ops.pow(base, self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return ops.abs(self)

    def __floordiv__(self, other: Any) -> Tensor:
        return ops.compare(xp.floor_divide, self, other)

    def __mod__(self, other: Any) -> Tensor:
        return ops.compare(xp.remainder, self, other)

    def add(self, other: Any, alpha: Any = 1) -> Tensor:
        return ops.add(self, other if alpha == 1 else ops.mul(other, alpha))

    def sub(self, other: Any, alpha: Any = 1) -> Tensor:
        return ops.sub(self, other if alpha == 1 else ops.mul(other, alpha))

    def mul(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        return ops.div(self, other, rounding_mode=rounding_mode)

    def pow(self, exponent: Any) -> Tensor:
        return ops.pow(self, exponent)

    def matmul(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def mm(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def neg(self) -> Tensor:
        return ops.neg(self)

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def abs(self) -> Tensor:
        return ops.abs(self)

    def sin(self) -> Tensor:
        return ops.sin(self)

    def cos(self) -> Tensor:
        return ops.cos(self)

    def sign(self) -> Tensor:
        return ops.sign(self)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        return ops.clamp(self, min, max)

    clip = clamp

    def relu(self) -> Tensor:
        return ops.relu(self)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def softmax(self, dim: builtins.int, dtype: Any = None) -> Tensor:
        from wally.ops_math import softmax

        return softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim: builtins.int, dtype: Any = None) -> Tensor:
        from wally.ops_math import log_softmax

        return log_softmax(self, dim, dtype=dtype)

    # ----- layersB: activation methods that torch.Tensor has -----
    def prelu(self, weight: Tensor) -> Tensor:
        from wally.ops_math import prelu

        return prelu(self, weight)

    # ----- comparisons (no gradient) ----------------------------------------------------------
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.compare(xp.equal, self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.compare(xp.not_equal, self, other)

    def __lt__(self, other: Any) -> Tensor:
        return ops.compare(xp.less, self, other)

    def __le__(self, other: Any) -> Tensor:
        return ops.compare(xp.less_equal, self, other)

    def __gt__(self, other: Any) -> Tensor:
        return ops.compare(xp.greater, self, other)

    def __ge__(self, other: Any) -> Tensor:
        return ops.compare(xp.greater_equal, self, other)

    def __and__(self, other: Any) -> Tensor:
        return ops.compare(xp.logical_and if self.dtype == xp.bool_ else xp.bitwise_and,
                           self, other)

    def __or__(self, other: Any) -> Tensor:
        return ops.compare(xp.logical_or if self.dtype == xp.bool_ else xp.bitwise_or,
                           self, other)

    def __invert__(self) -> Tensor:
        return ops.compare(xp.logical_not if self.dtype == xp.bool_ else xp.invert, self)

    def eq(self, other: Any) -> Tensor:
        return ops.compare(xp.equal, self, other)

    def ne(self, other: Any) -> Tensor:
        return ops.compare(xp.not_equal, self, other)

    def lt(self, other: Any) -> Tensor:
        return ops.compare(xp.less, self, other)

    def le(self, other: Any) -> Tensor:
        return ops.compare(xp.less_equal, self, other)

    def gt(self, other: Any) -> Tensor:
        return ops.compare(xp.greater, self, other)

    def ge(self, other: Any) -> Tensor:
        return ops.compare(xp.greater_equal, self, other)

    def isnan(self) -> Tensor:
        return ops.compare(xp.isnan, self)

    def isfinite(self) -> Tensor:
        return ops.compare(xp.isfinite, self)

    def all(self, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
        return ops.all(self, dim, keepdim)

    def any(self, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
        return ops.any(self, dim, keepdim)

    # ----- reductions -------------------------------------------------------------------------
    def sum(self, dim: Any = None, keepdim: builtins.bool = False, dtype: Any = None,
            axis: Any = None) -> Tensor:
        return ops.sum(self, dim if axis is None else axis, keepdim, dtype)

    def mean(self, dim: Any = None, keepdim: builtins.bool = False, dtype: Any = None,
             axis: Any = None) -> Tensor:
        return ops.mean(self, dim if axis is None else axis, keepdim, dtype)

    def var(self, dim: Any = None, unbiased: Any = None, keepdim: builtins.bool = False, *,
            correction: Any = None) -> Tensor:
        return ops.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim: Any = None, unbiased: Any = None, keepdim: builtins.bool = False, *,
            correction: Any = None) -> Tensor:
        return ops.std(self, dim, unbiased, keepdim, correction=correction)

    def max(self, dim: Any = None, keepdim: builtins.bool = False) -> Any:
        return ops.max(self, dim, keepdim)

    def min(self, dim: Any = None, keepdim: builtins.bool = False) -> Any:
        return ops.min(self, dim, keepdim)

    def amax(self, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
        return ops.amax(self, dim, keepdim)

    def amin(self, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
        return ops.amin(self, dim, keepdim)

    def argmax(self, dim: Any = None, keepdim: builtins.bool = False, axis: Any = None) -> Tensor:
        return ops.argmax(self, dim if axis is None else axis, keepdim)

    def argmin(self, dim: Any = None, keepdim: builtins.bool = False, axis: Any = None) -> Tensor:
        return ops.argmin(self, dim if axis is None else axis, keepdim)

    # ----- shape ------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        return ops.reshape(self, ops.shape_arg(shape))

    def view(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and not isinstance(shape[0], (builtins.int, tuple, list)):
            return self.type(shape[0])  # view(dtype)
        return ops.reshape(self, ops.shape_arg(shape))

    def view_as(self, other: Tensor) -> Tensor:
        return ops.reshape(self, other.shape)

    def reshape_as(self, other: Tensor) -> Tensor:
        return ops.reshape(self, other.shape)

    def flatten(self, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> Tensor:
        return ops.flatten(self, start_dim, end_dim)

    def unflatten(self, dim: builtins.int, sizes: Any) -> Tensor:
        return ops.unflatten(self, dim, sizes)

    def squeeze(self, dim: Any = None) -> Tensor:
        return ops.squeeze(self, dim)

    def unsqueeze(self, dim: builtins.int) -> Tensor:
        return ops.unsqueeze(self, dim)

    def transpose(self, dim0: builtins.int, dim1: builtins.int) -> Tensor:
        return ops.transpose(self, dim0, dim1)

    def t(self) -> Tensor:
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dimensions, got {self.ndim}")
        return self.T

    def permute(self, *dims: Any) -> Tensor:
        return ops.permute(self, ops.shape_arg(dims))

    def expand(self, *sizes: Any) -> Tensor:
        return ops.expand(self, ops.shape_arg(sizes))

    def expand_as(self, other: Tensor) -> Tensor:
        return ops.expand(self, other.shape)

    def repeat(self, *sizes: Any) -> Tensor:
        return ops.repeat(self, ops.shape_arg(sizes))

    def flip(self, *args: Any, dims: Any = None) -> Tensor:
        """``x.flip(0, 1)``, ``x.flip((0, 1))`` or ``x.flip(dims=(0, 1))``, as in PyTorch."""
        return ops.flip(self, ops.shape_arg(args) if dims is None else dims)

    def chunk(self, chunks: builtins.int, dim: builtins.int = 0) -> tuple[Tensor, ...]:
        return ops.chunk(self, chunks, dim)

    def split(self, split_size: Any, dim: builtins.int = 0) -> tuple[Tensor, ...]:
        return ops.split(self, split_size, dim)

    # ----- tensorops: maths, index, layout and norm methods ----------------------------------
    # (wally.ops_math, ops_index, ops_shape, linalg: imported at call time, as they import Tensor)
    def sinh(self) -> Tensor:
        from wally import ops_math

        return ops_math.sinh(self)

    def cosh(self) -> Tensor:
        from wally import ops_math

        return ops_math.cosh(self)

    def erf(self) -> Tensor:
        from wally import ops_math

        return ops_math.erf(self)

    def square(self) -> Tensor:
        from wally import ops_math

        return ops_math.square(self)

    def floor(self) -> Tensor:
        from wally import ops_math

        return ops_math.floor(self)

    def ceil(self) -> Tensor:
        from wally import ops_math

        return ops_math.ceil(self)

    def round(self, decimals: builtins.int = 0) -> Tensor:
        from wally import ops_math

        return ops_math.round(self, decimals=decimals)

    def trunc(self) -> Tensor:
        from wally import ops_math

        return ops_math.trunc(self)

    def clamp_min(self, min: Any) -> Tensor:
        return ops.clamp(self, min=min)

    def clamp_max(self, max: Any) -> Tensor:
        return ops.clamp(self, max=max)

    def isinf(self) -> Tensor:
        return ops.compare(xp.isinf, self)

    def isclose(self, other: Any, rtol: builtins.float = 1e-05, atol: builtins.float = 1e-08,
                equal_nan: builtins.bool = False) -> Tensor:
        from wally import ops_math

        return ops_math.isclose(self, other, rtol, atol, equal_nan)

    def allclose(self, other: Any, rtol: builtins.float = 1e-05, atol: builtins.float = 1e-08,
                 equal_nan: builtins.bool = False) -> builtins.bool:
        return ops.allclose(self, other, rtol, atol, equal_nan)

    def equal(self, other: Tensor) -> builtins.bool:
        return ops.equal(self, other)

    def cumsum(self, dim: builtins.int, dtype: Any = None) -> Tensor:
        from wally import ops_math

        return ops_math.cumsum(self, dim, dtype)

    def cumprod(self, dim: builtins.int, dtype: Any = None) -> Tensor:
        from wally import ops_math

        return ops_math.cumprod(self, dim, dtype)

    def prod(self, dim: Any = None, keepdim: builtins.bool = False, dtype: Any = None) -> Tensor:
        from wally import ops_math

        return ops_math.prod(self, dim, keepdim, dtype)

    def logsumexp(self, dim: Any, keepdim: builtins.bool = False) -> Tensor:
        from wally import ops_math

        return ops_math.logsumexp(self, dim, keepdim)

    def bmm(self, mat2: Tensor) -> Tensor:
        from wally import ops_math

        return ops_math.bmm(self, mat2)

    def baddbmm(self, batch1: Tensor, batch2: Tensor, *, beta: Any = 1,
                alpha: Any = 1) -> Tensor:
        from wally import ops_math

        return ops_math.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def gather(self, dim: builtins.int, index: Tensor) -> Tensor:
        from wally import ops_index

        return ops_index.gather(self, dim, index)

    def scatter(self, dim: builtins.int, index: Tensor, src: Any = None, *, value: Any = None,
                reduce: str | None = None) -> Tensor:
        from wally import ops_index

        return ops_index.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_add(self, dim: builtins.int, index: Tensor, src: Tensor) -> Tensor:
        from wally import ops_index

        return ops_index.scatter_add(self, dim, index, src)

    def index_select(self, dim: builtins.int, index: Tensor) -> Tensor:
        from wally import ops_index

        return ops_index.index_select(self, dim, index)

    def masked_fill(self, mask: Tensor, value: Any) -> Tensor:
        from wally import ops_index

        return ops_index.masked_fill(self, mask, value)

    def sort(self, dim: builtins.int = -1, descending: builtins.bool = False,
             stable: builtins.bool = False) -> Any:
        from wally import ops_index

        return ops_index.sort(self, dim, descending, stable)

    def argsort(self, dim: builtins.int = -1, descending: builtins.bool = False,
                stable: builtins.bool = False) -> Tensor:
        from wally import ops_index

        return ops_index.argsort(self, dim, descending, stable)

    def topk(self, k: builtins.int, dim: builtins.int = -1, largest: builtins.bool = True,
             sorted: builtins.bool = True) -> Any:
        from wally import ops_index

        return ops_index.topk(self, k, dim, largest, sorted)

    def kthvalue(self, k: builtins.int, dim: builtins.int = -1,
                 keepdim: builtins.bool = False) -> Any:
        from wally import ops_index

        return ops_index.kthvalue(self, k, dim, keepdim)

    def nonzero(self, *, as_tuple: builtins.bool = False) -> Any:
        from wally import ops_index

        return ops_index.nonzero(self, as_tuple=as_tuple)

    def roll(self, shifts: Any, dims: Any = None) -> Tensor:
        from wally import ops_shape

        return ops_shape.roll(self, shifts, dims)

    def rot90(self, k: builtins.int = 1, dims: Any = (0, 1)) -> Tensor:
        from wally import ops_shape

        return ops_shape.rot90(self, k, dims)

    def tril(self, diagonal: builtins.int = 0) -> Tensor:
        from wally import ops_shape

        return ops_shape.tril(self, diagonal)

    def triu(self, diagonal: builtins.int = 0) -> Tensor:
        from wally import ops_shape

        return ops_shape.triu(self, diagonal)

    def diag(self, diagonal: builtins.int = 0) -> Tensor:
        from wally import ops_shape

        return ops_shape.diag(self, diagonal)

    def unbind(self, dim: builtins.int = 0) -> tuple[Tensor, ...]:
        from wally import ops_shape

        return ops_shape.unbind(self, dim)

    def tile(self, *dims: Any) -> Tensor:
        from wally import ops_shape

        return ops_shape.tile(self, ops.shape_arg(dims))

    def norm(self, p: Any = "fro", dim: Any = None, keepdim: builtins.bool = False,
             dtype: Any = None) -> Tensor:
        from wally import linalg

        return linalg.tensor_norm(self, p, dim, keepdim, dtype)

    # in place: the versions bump, so a node that kept the old values refuses to backward
    def masked_fill_(self, mask: Tensor, value: Any) -> Tensor:
        from wally import ops_index

        return self._in_place(ops_index.masked_fill, mask, value)

    def scatter_(self, dim: builtins.int, index: Tensor, src: Any = None, *, value: Any = None,
                 reduce: str | None = None) -> Tensor:
        from wally import ops_index

        return self._in_place(lambda t, s: ops_index.scatter(t, dim, index, s, value=value,
                                                             reduce=reduce), src)

    def scatter_add_(self, dim: builtins.int, index: Tensor, src: Tensor) -> Tensor:
        from wally import ops_index

        return self._in_place(lambda t, s: ops_index.scatter_add(t, dim, index, s), src)

    def clamp_min_(self, min: Any) -> Tensor:
        return self._in_place(ops.clamp, min, None)

    def clamp_max_(self, max: Any) -> Tensor:
        return self._in_place(ops.clamp, None, max)

    def floor_(self) -> Tensor:
        return self._in_place(Tensor.floor)

    def ceil_(self) -> Tensor:
        return self._in_place(Tensor.ceil)

    def round_(self, decimals: builtins.int = 0) -> Tensor:
        return self._in_place(Tensor.round, decimals)

    def trunc_(self) -> Tensor:
        return self._in_place(Tensor.trunc)

    def sinh_(self) -> Tensor:
        return self._in_place(Tensor.sinh)

    def cosh_(self) -> Tensor:
        return self._in_place(Tensor.cosh)

    def erf_(self) -> Tensor:
        return self._in_place(Tensor.erf)

    def square_(self) -> Tensor:
        return self._in_place(Tensor.square)

    def tril_(self, diagonal: builtins.int = 0) -> Tensor:
        return self._in_place(Tensor.tril, diagonal)

    def triu_(self, diagonal: builtins.int = 0) -> Tensor:
        return self._in_place(Tensor.triu, diagonal)

    def cumsum_(self, dim: builtins.int) -> Tensor:
        return self._in_place(Tensor.cumsum, dim)

    def cumprod_(self, dim: builtins.int) -> Tensor:
        return self._in_place(Tensor.cumprod, dim)

    # ----- end tensorops ----------------------------------------------------------------------

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        ops.setitem(self, index, value)


from wally import ops  # noqa: E402  (ops needs Tensor; Tensor's methods need ops at call time)
