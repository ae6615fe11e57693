"""Index ops: gather, scatter, scatter_add, index_select, masked_fill, sort, argsort, topk,
kthvalue and nonzero.

sort, topk and kthvalue compute their indices without a gradient and take their values with
:class:`Gather`, so their gradients scatter back through one rule: dL/dx[..., index[i], ...]
+= g[i] (the chosen element of a tie gets the whole gradient, as in PyTorch).
"""

from __future__ import annotations

import builtins
from typing import Any, NamedTuple

from wally import ops
from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.ops_math import _axis, _tensor
from wally.tensor import Tensor, to_array

__all__ = [
    "gather", "scatter", "scatter_add", "index_select", "masked_fill", "sort", "argsort",
    "topk", "kthvalue", "nonzero", "SortResult", "TopKResult", "KthValueResult",
]


def _return_repr(name: str, result: Any) -> str:
    return f"wally.return_types.{name}(\nvalues={result.values!r},\nindices={result.indices!r})"


class SortResult(NamedTuple):
    """``(values, indices)`` of :func:`sort`, printed as ``torch.return_types.sort`` is."""

    values: Tensor
    indices: Tensor

    def __repr__(self) -> str:
        return _return_repr("sort", self)


class TopKResult(NamedTuple):
    """``(values, indices)`` of :func:`topk`, printed as ``torch.return_types.topk`` is."""

    values: Tensor
    indices: Tensor

    def __repr__(self) -> str:
        return _return_repr("topk", self)


class KthValueResult(NamedTuple):
    """``(values, indices)`` of :func:`kthvalue`, printed as ``torch.return_types.kthvalue`` is."""

    values: Tensor
    indices: Tensor

    def __repr__(self) -> str:
        return _return_repr("kthvalue", self)


def _full_index(index: ndarray, axis: int) -> tuple[ndarray, ...]:
    """The advanced index that addresses x[..., index[i], ...] for every position i of index."""
    grids: list[Any] = list(xp.indices(index.shape, sparse=True))
    grids[axis] = index
    return tuple(grids)


def _index_array(name: str, index: Any) -> ndarray:
    array = index.array if isinstance(index, Tensor) else xp.asarray(index)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an int64 index tensor, got {array.dtype}")
    return array


def _check_index(name: str, input: Tensor, axis: int, index: ndarray,
                 src_shape: tuple[int, ...] | None = None) -> None:
    """PyTorch's rules: one ndim, index.size(d) <= input.size(d) for d != dim (and
    <= src.size(d) for every d), and indices in [0, size)."""
    ndim = builtins.max(input.ndim, 1)
    if index.size == 0 and src_shape is None:  # an empty index selects nothing (torch)
        return
    if builtins.max(index.ndim, 1) != ndim:
        raise ValueError(f"{name}: index must have as many dims as input ({input.ndim}), got "
                         f"index of shape {tuple(index.shape)}")
    shape, ishape = input.shape or (1,), index.shape or (1,)
    for d in range(ndim):
        if d != axis and ishape[d] > shape[d]:
            raise ValueError(f"{name}: index of shape {tuple(index.shape)} is larger than input "
                             f"of shape {tuple(input.shape)} in dim {d}")
        if src_shape is not None and ishape[d] > (src_shape or (1,))[d]:
            raise ValueError(f"{name}: index of shape {tuple(index.shape)} is larger than src "
                             f"of shape {tuple(src_shape)} in dim {d}")
    n = shape[axis]
    if index.size and (index.min() < 0 or index.max() >= n):  # no negatives, as in PyTorch
        bad = int(index.min()) if index.min() < 0 else int(index.max())
        raise IndexError(f"{name}: index {bad} is out of bounds for dim {axis} with size {n}")


def _as_1d(x: ndarray) -> ndarray:
    return x.reshape(1) if x.ndim == 0 else x


# ----- gather and scatter ---------------------------------------------------------------------
class Gather(Function):
    """y[i] = x[..., index[i], ...] along ``axis``; dL/dx accumulates g at those places."""

    def __init__(self, axis: int, index: ndarray) -> None:
        self.axis, self.index = axis, index

    def forward(self, x: ndarray) -> ndarray:
        self.shape = x.shape
        return _as_1d(x)[_full_index(_as_1d(self.index), self.axis)].reshape(self.index.shape)

    def backward(self, gy: ndarray) -> ndarray:
        gx = xp.zeros(self.shape or (1,), dtype=gy.dtype)
        xp.add.at(gx, _full_index(_as_1d(self.index), self.axis), _as_1d(gy))
        return gx.reshape(self.shape)


class SortedGather(Gather):
    """The values of sort, topk and kthvalue: a Gather whose index is the first ``count``
    positions of the order along ``axis`` (largest first with ``descending``), kept with the
    index so that tools reading the graph (ONNX export: TopK) know what it computed."""

    def __init__(self, axis: int, index: ndarray, descending: bool, count: int,
                 kth: bool = False) -> None:
        super().__init__(axis, index)
        self.descending, self.count, self.kth = descending, count, kth


class Scatter(Function):
    """y = x with y[..., index[i], ...] = src[i] along ``axis`` (``reduce='add'``: +=).

    Without reduce the overwritten places of x get no gradient, and src gets g gathered at the
    index (where indices repeat, every src element gets it, as in PyTorch)."""

    def __init__(self, axis: int, index: ndarray, reduce: str | None) -> None:
        self.axis, self.index, self.reduce = axis, index, reduce

    def forward(self, x: ndarray, src: Any) -> ndarray:
        self.src_shape = xp.shape(src)
        where = _full_index(_as_1d(self.index), self.axis)
        y = _as_1d(x).copy()
        if xp.ndim(src) == 0:
            values = xp.broadcast_to(xp.asarray(src, dtype=x.dtype), _as_1d(self.index).shape)
        else:
            values = _as_1d(src)[tuple(slice(0, n) for n in _as_1d(self.index).shape)]
        if self.reduce == "add":
            xp.add.at(y, where, values.astype(x.dtype, copy=False))
        elif self.reduce == "multiply":
            xp.multiply.at(y, where, values.astype(x.dtype, copy=False))
        else:
            y[where] = values
        return y.reshape(x.shape)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        if self.reduce == "multiply":
            raise RuntimeError("scatter: the gradient of reduce='multiply' is not implemented "
                               "(as in PyTorch); use reduce=None or 'add'")
        need_x, need_src = self.needs_input_grad
        where = _full_index(_as_1d(self.index), self.axis)
        gx = gsrc = None
        if need_x:
            gx = _as_1d(gy).copy()
            if self.reduce is None:
                gx[where] = 0
            gx = gx.reshape(gy.shape)
        if need_src:
            picked = _as_1d(gy)[where]
            gsrc = xp.zeros(self.src_shape or (1,), dtype=gy.dtype)
            gsrc[tuple(slice(0, n) for n in picked.shape)] = picked
            gsrc = gsrc.reshape(self.src_shape)
        return gx, gsrc


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    """out[i][j][k] = input[index[i][j][k]][j][k] (for dim=0; likewise for other dims).
    **Shape:** the output has index's shape; index has input's ndim and is no larger than input
    in the other dims.

    >>> x = wally.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> wally.gather(x, 1, wally.tensor([[0, 0], [1, 0]]))
    tensor([[1., 1.],
            [4., 3.]])
    """
    input = _tensor("gather", input)
    axis = _axis("gather", dim, input.ndim)
    array = _index_array("gather", index)
    _check_index("gather", input, axis, array)
    if array.size == 0:  # an empty index gathers nothing, whatever its ndim (torch)
        return input.reshape(-1)[0:0].reshape(tuple(array.shape))
    return Gather(axis, array.astype(xp.int64, copy=False))(input)


def scatter(input: Tensor, dim: int, index: Tensor, src: Any = None, *, value: Any = None,
            reduce: str | None = None) -> Tensor:
    """out = input, then out[index[i][j][k]][j][k] = src[i][j][k] (dim=0; likewise for other
    dims), or ``value`` there. With repeated indices the last write wins (PyTorch leaves it
    unspecified). ``reduce='add'`` or ``'multiply'`` combines instead of writing.
    **Shape:** the output has input's; index no larger than src in any dim.

    >>> wally.scatter(wally.zeros(3), 0, wally.tensor([2, 0]), wally.tensor([5.0, 6.0]))
    tensor([6., 0., 5.])
    """
    input = _tensor("scatter", input)
    if src is None and value is None:
        raise TypeError("scatter: expected src (a tensor) or value (a number), got neither")
    if src is not None and value is not None:
        raise TypeError("scatter: expected src or value, got both")
    if reduce not in (None, "add", "multiply"):
        raise ValueError(f"scatter: reduce must be None, 'add' or 'multiply', got {reduce!r}")
    if src is not None and not isinstance(src, Tensor):
        value, src = src, None  # scatter(x, dim, index, 1.5): a number in src's place
    axis = _axis("scatter", dim, input.ndim)
    array = _index_array("scatter", index).astype(xp.int64, copy=False)
    if src is not None:
        _check_index("scatter", input, axis, array, tuple(src.shape))
        if src.dtype != input.dtype:
            raise TypeError(f"scatter: expected src of dtype {input.dtype}, got {src.dtype}")
        return Scatter(axis, array, reduce)(input, src)
    _check_index("scatter", input, axis, array)
    return Scatter(axis, array, reduce)(input, to_array(value, input.dtype))


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """out = input, then out[index[i][j][k]][j][k] += src[i][j][k] (dim=0), accumulating
    repeated indices. dL/dinput = g, dL/dsrc = g gathered at index.
    **Shape:** the output has input's.

    >>> wally.scatter_add(wally.zeros(2), 0, wally.tensor([1, 1]), wally.tensor([1.0, 2.0]))
    tensor([0., 3.])
    """
    input, src = _tensor("scatter_add", input), _tensor("scatter_add", src)
    axis = _axis("scatter_add", dim, input.ndim)
    array = _index_array("scatter_add", index).astype(xp.int64, copy=False)
    _check_index("scatter_add", input, axis, array, tuple(src.shape))
    if src.dtype != input.dtype:
        raise TypeError(f"scatter_add: expected src of dtype {input.dtype}, got {src.dtype}")
    return Scatter(axis, array, "add")(input, src)


class IndexSelect(Function):
    def __init__(self, axis: int, index: ndarray) -> None:
        self.axis, self.index = axis, index

    def forward(self, x: ndarray) -> ndarray:
        self.shape = x.shape
        return xp.take(x, self.index, axis=self.axis)

    def backward(self, gy: ndarray) -> ndarray:
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        where: Any = (slice(None),) * self.axis + (self.index,)
        xp.add.at(gx, where, gy)
        return gx


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """The slices input[..., index[i], ...] along ``dim``, in index's order (repeats allowed;
    their gradients add up). **Shape:** input's, with dim's size replaced by len(index).

    >>> wally.index_select(wally.tensor([[1.0, 2.0, 3.0]]), 1, wally.tensor([2, 0]))
    tensor([[3., 1.]])
    """
    input = _tensor("index_select", input)
    axis = _axis("index_select", dim, input.ndim)
    array = _index_array("index_select", index)
    if array.ndim > 1:
        raise ValueError(f"index_select: index must be 0-D or 1-D, got shape "
                         f"{tuple(array.shape)}")
    n = (input.shape or (1,))[axis]
    if array.size and (array.min() < 0 or array.max() >= n):
        bad = int(array.min()) if array.min() < 0 else int(array.max())
        raise IndexError(f"index_select: index {bad} is out of range for dim {dim} of size {n}")
    array = array.reshape(-1).astype(xp.int64, copy=False)
    if input.ndim == 0:
        return ops.reshape(IndexSelect(0, array)(ops.reshape(input, (1,))), array.shape[:0])
    return IndexSelect(axis, array)(input)


class MaskedFill(Function):
    """y = value where mask, else x; dL/dx = g where not mask, dL/dvalue = Σ g over the mask."""

    def __init__(self, mask: ndarray) -> None:
        self.mask = mask

    def forward(self, x: ndarray, value: ndarray) -> ndarray:
        return xp.where(self.mask, value.astype(x.dtype, copy=False), x)

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ...]:
        need_x, need_value = self.needs_input_grad
        zero = xp.zeros((), dtype=gy.dtype)
        gx = xp.where(self.mask, zero, gy) if need_x else None
        gv = xp.where(self.mask, gy, zero).sum() if need_value else None
        return gx, gv


def masked_fill(input: Tensor, mask: Tensor, value: Any) -> Tensor:
    """y = value where mask is True, else x (x and mask broadcast together; value a number or a
    0-d tensor, which gets the gradient Σ g over the mask). **Shape:** the broadcast shape of
    input and mask (in place, ``masked_fill_``, the mask must broadcast to the input's).

    >>> wally.masked_fill(wally.zeros(3), wally.tensor([True, False, True]), 1.0)
    tensor([1., 0., 1.])
    """
    input = _tensor("masked_fill", input)
    mask_array = mask.array if isinstance(mask, Tensor) else xp.asarray(mask)
    if mask_array.dtype != xp.bool_:
        raise TypeError(f"masked_fill: expected a bool mask, got {mask_array.dtype}")
    try:
        shape = xp.broadcast_shapes(mask_array.shape, input.shape)
    except ValueError:
        raise ValueError(f"masked_fill: mask of shape {tuple(mask_array.shape)} cannot be "
                         f"broadcast with the input's shape {tuple(input.shape)}") from None
    if shape != tuple(input.shape):  # out of place, input and mask broadcast together (torch)
        input = input.expand(*shape)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"masked_fill: expected value to be a number or a 0-d tensor, got "
                             f"shape {tuple(value.shape)}")
        if value.dtype != input.dtype:
            value = ops.cast(value, input.dtype)
    else:
        value = to_array(value, input.dtype)
    return MaskedFill(mask_array)(input, value)


# ----- sorting --------------------------------------------------------------------------------
def _sort_indices(x: ndarray, axis: int, descending: bool) -> ndarray:
    """A stable order along ``axis`` (NaN counts as the largest value, as in PyTorch)."""
    if not descending:
        return xp.argsort(x, axis=axis, kind="stable")
    # Stable descending: sort the reversed array ascending (ties come out in reverse order),
    # then reverse the result, which puts ties back in their original order.
    n = x.shape[axis]
    order = xp.argsort(xp.flip(x, axis), axis=axis, kind="stable")
    return n - 1 - xp.flip(order, axis)


def _sorted_take(name: str, input: Tensor, dim: Any, descending: bool,
                 count: int | None) -> tuple[Tensor, Tensor]:
    input = _tensor(name, input)
    axis = _axis(name, dim, input.ndim)
    x = _as_1d(input.array)
    order = _sort_indices(x, axis, descending)
    if count is not None and input.ndim > 0:  # a 0-d input is its own result (PyTorch's)
        order = xp.take(order, xp.arange(count), axis=axis)
    if input.ndim == 0:
        order = order.reshape(())
    order = order.astype(xp.int64, copy=False)
    count = x.shape[axis] if count is None else count
    values = SortedGather(axis, order, descending, count)(input)
    return values, Tensor._make(order, False, None, 0)


def sort(input: Tensor, dim: int = -1, descending: bool = False,
         stable: bool = False) -> SortResult:
    """The values along ``dim`` in order, and where each came from: values = gather(x, dim,
    indices). Always stable here (equal values keep their order; NaN sorts as the largest).
    **Shape:** both outputs have the input's.

    >>> wally.sort(wally.tensor([3.0, 1.0, 2.0]))
    wally.return_types.sort(
    values=tensor([1., 2., 3.]),
    indices=tensor([1, 2, 0]))
    """
    return SortResult(*_sorted_take("sort", input, dim, bool(descending), None))


def argsort(input: Tensor, dim: int = -1, descending: bool = False,
            stable: bool = False) -> Tensor:
    """The indices that sort ``input`` along ``dim`` (stable), an int64 tensor without grad.
    **Shape:** the input's.

    >>> wally.argsort(wally.tensor([3.0, 1.0, 2.0]))
    tensor([1, 2, 0])
    """
    input = _tensor("argsort", input)
    axis = _axis("argsort", dim, input.ndim)
    order = _sort_indices(_as_1d(input.array), axis, bool(descending)).reshape(input.shape)
    return Tensor._make(order.astype(xp.int64, copy=False), False, None, 0)


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True,
         sorted: bool = True) -> TopKResult:
    """The ``k`` largest (``largest=False``: smallest) values along ``dim`` and their indices,
    in sorted order (also with ``sorted=False``); among ties the earliest index comes first.
    **Shape:** the input's with dim's size k.

    >>> values, indices = wally.topk(wally.tensor([1.0, 3.0, 2.0]), 2)
    >>> values, indices
    (tensor([3., 2.]), tensor([1, 2]))
    """
    input = _tensor("topk", input)
    axis = _axis("topk", dim, input.ndim)
    n = (input.shape or (1,))[axis]
    if not isinstance(k, (int, xp.integer)) or not 0 <= k <= n:
        raise ValueError(f"topk: k must be in [0, {n}] (the size of dim {dim}), got {k!r}")
    return TopKResult(*_sorted_take("topk", input, dim, bool(largest), int(k)))


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> KthValueResult:
    """The k-th smallest value along ``dim`` (k counts from 1) and its index; among ties the
    earliest index. **Shape:** dim removed (kept as 1 with ``keepdim``).

    >>> wally.kthvalue(wally.tensor([3.0, 1.0, 2.0]), 2)
    wally.return_types.kthvalue(
    values=tensor(2.),
    indices=tensor(2))
    """
    input = _tensor("kthvalue", input)
    axis = _axis("kthvalue", dim, input.ndim)
    n = (input.shape or (1,))[axis]
    if not isinstance(k, (int, xp.integer)) or not 1 <= k <= n:
        raise ValueError(f"kthvalue: k must be in [1, {n}] (the size of dim {dim}), got {k!r}")
    order = _sort_indices(_as_1d(input.array), axis, False)
    order = xp.take(order, xp.array([int(k) - 1]), axis=axis).astype(xp.int64, copy=False)
    if input.ndim == 0:
        order = order.reshape(())
    values = SortedGather(axis, order, False, int(k), kth=True)(input)
    indices = Tensor._make(order, False, None, 0)
    if not keepdim and input.ndim > 0:
        shape = input.shape[:axis] + input.shape[axis + 1:]
        return KthValueResult(ops.reshape(values, shape), ops.reshape(indices, shape))
    return KthValueResult(values, indices)


def nonzero(input: Tensor, *, as_tuple: bool = False) -> Any:
    """The indices of the non-zero elements, in row-major order: an (n, ndim) int64 tensor, or
    with ``as_tuple`` one 1-D tensor per dim (a 0-d input counts as 1-D there).
    **Shape:** (n, input.ndim).

    >>> wally.nonzero(wally.tensor([[0.0, 1.0], [2.0, 0.0]]))
    tensor([[0, 1],
            [1, 0]])
    """
    input = _tensor("nonzero", input)
    if as_tuple:
        found = xp.nonzero(_as_1d(input.array))
        return tuple(Tensor._make(i.astype(xp.int64), False, None, 0) for i in found)
    return Tensor._make(xp.argwhere(input.array).astype(xp.int64), False, None, 0)
