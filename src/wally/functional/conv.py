"""Convolution (cross-correlation, as in every deep-learning library) in 1, 2 and 3 dimensions.

One N-d ``Function`` serves ``conv1d``, ``conv2d`` and ``conv3d``: im2col gathers every window
into a ``(C·∏k, N·∏out)`` matrix (see :mod:`wally._windows`), and the convolution is then one
contiguous 2-D GEMM per group.  ``unfold`` and ``fold`` expose im2col and its adjoint.

The column matrix is built and multiplied a chunk at a time (a few images, or a few output rows
of one large image), so that it stays in cache, and backward rebuilds it instead of keeping it.
Three layer shapes take other routes to the same result: depthwise layers multiply-add per
kernel tap, shallow 2-D stride-1 layers on small maps use the row layout (:class:`_Rows`:
shifted copies and one GEMM per kernel row, no im2col), and wide 3×3 stride-1 layers on large
maps use Winograd's F(2×2, 3×3) (:mod:`wally._winograd`).  Which one runs each pass
(forward, weight gradient, input gradient) is decided in one place, the ordered table of
:mod:`wally.backends.conv` (``algorithms()`` prints it; ``algorithm(name)`` forces one); its
first entry, the reference, is im2col of the whole batch, one GEMM and col2im
(:func:`_reference_correlate`).
A chunk's columns never take more than the **memory budget**: 256 MiB unless the environment
variable ``WALLY_CONV_MEMORY_BUDGET`` (bytes, or with a ``K``/``M``/``G`` suffix, powers of
1024) says otherwise at import, or :func:`set_memory_budget` / :func:`im2col_budget` change it
(they live in :mod:`wally.backends.conv`; the names here are the same functions).
The smallest chunk is one output row of one image, so a budget below that row's columns is
exceeded by that much.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from wally import backend
from wally._parallel import (
    allocate,
    get_num_threads,
    run_chunks,
    split_threads,
    sum_chunks,
    workspace,
)
from wally._windows import (
    ColumnPlan,
    Pairs,
    check_positive,
    check_rank,
    col2im,
    column_plan,
    conv_settings,
    im2col,
    ntuple,
    output_shape,
    output_size,
    shared_step,
    unfold_settings,
    volume,
)
from wally._winograd import winograd_correlate
from wally.autograd import Function
from wally.backend import ndarray, xp
from wally.backends import accel, tuning
from wally.backends import conv as dispatch

_ALL = slice(None)

if TYPE_CHECKING:
    from wally.tensor import Tensor

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "unfold",
    "fold",
    "set_memory_budget",
    "get_memory_budget",
    "im2col_budget",
]

# The memory budget and the threads it is planned for live in wally.backends.conv (with the
# dispatch table); their old names here stay, as aliases.
DEFAULT_MEMORY_BUDGET = dispatch.DEFAULT_MEMORY_BUDGET
_parse_budget = dispatch._parse_budget
_budget_from_environment = dispatch._budget_from_environment
_budget = dispatch._budget
set_memory_budget = dispatch.set_memory_budget
get_memory_budget = dispatch.get_memory_budget
im2col_budget = dispatch.im2col_budget
_shares = dispatch.shares
_chunk_limit = dispatch.chunk_limit
_workers = dispatch.workers
_padding_limit = dispatch.padding_limit


_KERNELS = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}


class ConvNd(Function):
    """``y = W ⋆ x + b`` over ``len(stride)`` spatial axes, each pass by the kernel that
    :mod:`wally.backends.conv`'s table picks for its geometry (the reference is im2col and one
    GEMM per group; the others are tested against it).

    Inputs ``x (N, C, *spatial)`` (or unbatched ``(C, *spatial)``), ``w (O, C/groups, *k)``,
    ``b (O,)`` or ``None``; ``padding`` is one ``(left, right)`` pair per axis.  Forward keeps
    ``x`` and ``w`` as far as the requested gradients need them, never an im2col matrix: the
    backward rebuilds the columns chunk by chunk.
    """

    def __init__(
        self,
        stride: tuple[int, ...],
        padding: Pairs,
        dilation: tuple[int, ...],
        groups: int,
        op: str = "convolution",
    ) -> None:
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.op = op

    def forward(self, x: ndarray, w: ndarray, b: ndarray | None) -> ndarray:
        self.unbatched = x.ndim == len(self.stride) + 1
        if self.unbatched:
            x = x[None]
        need_x, need_w, _ = self.needs_input_grad
        self.x = x if need_w else None
        # The first layer never needs ``w`` (no image gradient).
        self.w2 = w.reshape(w.shape[0], -1) if need_x else None
        self.input_shape = x.shape
        self.weight_shape = w.shape
        y = correlate(x, w, b, self.stride, self.padding, self.dilation, self.groups, op=self.op)
        return y[0] if self.unbatched else y

    def backward(self, gy: ndarray) -> tuple[ndarray | None, ndarray | None, ndarray | None]:
        if self.unbatched:
            gy = gy[None]
        need_x, need_w, need_b = self.needs_input_grad
        gx = gw = gb = None
        if need_b:
            gb = gy.reshape(*gy.shape[:2], volume(gy.shape[2:])).sum(axis=2).sum(axis=0)
        if need_w:
            assert self.x is not None
            gw = weight_grad(
                self.x, gy, self.weight_shape, self.stride, self.padding, self.dilation,
                self.groups,
            )
        if need_x:
            assert self.w2 is not None
            w = self.w2.reshape(self.weight_shape)
            gx = input_grad(
                gy, w, self.input_shape, self.stride, self.padding, self.dilation, self.groups,
                op=self.op,
            )
            if self.unbatched:
                gx = gx[0]
        return gx, gw, gb


# ----- the reference: im2col → one GEMM → col2im (the table's first entry) --------------------
def _reference_columns(x: ndarray, g: dispatch.Geometry) -> ndarray:
    """``cols (C·∏k, N·∏out)``: every window of the whole batch (:func:`wally._windows.im2col`)."""
    return im2col(x, g.kernel, g.stride, g.padding, g.dilation)


def _reference_correlate(
    x: ndarray, w: ndarray, b: ndarray | None, g: dispatch.Geometry, op: str, what: str
) -> ndarray:
    """``Y (O × N·∏out) = W (O × C·∏k) @ cols (C·∏k × N·∏out)`` per group, plus ``b``.

    **Shape:** ``x (N, C, *spatial)``, ``w (O, C/groups, *k)`` → ``(N, O, *out)``.  Example::

        >>> with wally.backends.conv.algorithm("reference"):
        ...     F.conv2d(wally.ones(1, 1, 3, 3), wally.ones(1, 1, 2, 2)).tolist()
        [[[[4.0, 4.0], [4.0, 4.0]]]]
    """
    out = g.plan().out
    cols = _reference_columns(x, g)
    w2 = w.reshape(w.shape[0], -1)
    y2 = xp.concatenate(
        [
            backend.matmul(w2[o], cols[c])
            for o, c in _group_rows(w.shape[0], cols.shape[0], g.groups)
        ]
    )
    y = allocate(op, what, (x.shape[0], w.shape[0], *out), x.dtype)
    y[...] = y2.reshape(w.shape[0], x.shape[0], *out).swapaxes(0, 1)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * len(out))
    return y


def _reference_weight_grad(x: ndarray, gy: ndarray, g: dispatch.Geometry) -> ndarray:
    """``dW (O × C·∏k) = dY (O × N·∏out) @ colsᵀ`` per group: the forward product, transposed."""
    cols = _reference_columns(x, g)
    out_channels = gy.shape[1]
    gy2 = gy.swapaxes(0, 1).reshape(out_channels, -1)
    gw = xp.concatenate(
        [
            backend.matmul(gy2[o], cols[c].T)
            for o, c in _group_rows(out_channels, cols.shape[0], g.groups)
        ]
    )
    return xp.ascontiguousarray(gw.reshape(g.weight_shape))


def _reference_input_grad(gy: ndarray, w: ndarray, g: dispatch.Geometry) -> ndarray:
    """``dX = col2im(Wᵀ @ dY)``: each window's gradient added back where it was read."""
    out_channels = w.shape[0]
    w2 = w.reshape(out_channels, -1)
    gy2 = gy.swapaxes(0, 1).reshape(out_channels, -1)
    rows = g.channels * volume(g.kernel)
    gcols = xp.concatenate(
        [backend.matmul(w2[o].T, gy2[o]) for o, _ in _group_rows(out_channels, rows, g.groups)]
    )
    return col2im(gcols, g.input_shape, g.kernel, g.stride, g.padding, g.dilation)


# ----- the convolution on arrays, chunk by chunk ----------------------------------------------
Chunk = tuple[slice, slice]  # (images, output rows of the first spatial axis)


def _group_rows(rows_out: int, rows_in: int, groups: int) -> list[tuple[slice, slice]]:
    """Per group: its rows of ``W`` (output channels) and of the columns (channels·taps)."""
    out_step, in_step = rows_out // groups, rows_in // groups
    return [
        (slice(g * out_step, (g + 1) * out_step), slice(g * in_step, (g + 1) * in_step))
        for g in range(groups)
    ]


def _plan_chunks(plan: ColumnPlan, x_shape: Sequence[int], itemsize: int) -> list[Chunk]:
    """Chunks whose columns fit :func:`_chunk_limit`, shared among the threads."""
    return plan.chunks(x_shape[0], x_shape[1], itemsize, _chunk_limit(), split_threads())


_skinny = dispatch.skinny


def _blocked_product(a: ndarray, b: ndarray, out: ndarray, rows: slice) -> None:
    """``out = a @ b`` for one chunk: ``W @ cols`` forward, ``Wᵀ @ dY`` for the input
    gradient, where ``rows`` are the columns' rows (``C·∏k`` of a group) in the product.

    Where those rows are few (below ``tuning.SKINNY_ROWS``) and the columns long, 4096 columns
    at a time (OpenBLAS is slow on long products by few rows), as one batched product over
    the blocks: one NumPy call, so a thread takes the interpreter lock once for it, not once
    per block (``wally.backends.conv.plans()``, "short-column blocks").
    """
    width = b.shape[1]
    if not _skinny(rows.stop - rows.start, width):
        backend.matmul(a, b, out=out)
        return
    step = tuning.SKINNY_COLUMNS
    blocks, main = width // step, width // step * step
    backend.matmul(a, b[:, :main].reshape(b.shape[0], blocks, step).swapaxes(0, 1),
                   out=out[:, :main].reshape(out.shape[0], blocks, step).swapaxes(0, 1))
    if main < width:
        backend.matmul(a, b[:, main:], out=out[:, main:])


def _weight_product(cols: ndarray, gy2: ndarray) -> ndarray:
    """``cols (K × m) @ gy2ᵀ (m × O)``, a chunk's share of a weight gradient.

    ``(cols @ gy2ᵀ)`` rather than ``gy2 @ colsᵀ``: OpenBLAS runs this orientation several
    times faster for long, skinny chunks.  Short columns (``K`` below 512) multiply 4096
    columns at a time, as :func:`_blocked_product` does, here as one batched product whose
    blocks are summed; small results go through ``dot`` (see ``tuning.GIL_HELD_ENTRIES``).
    """
    depth, width = cols.shape
    out_channels = gy2.shape[0]
    if _skinny(depth, width):
        return _summed_column_blocks(cols, gy2, _weight_product)
    if depth * out_channels <= tuning.GIL_HELD_ENTRIES:
        return backend.dot(cols, gy2.T)
    return backend.matmul(cols, gy2.T)


def _summed_column_blocks(a: ndarray, gy2: ndarray, rest: Any) -> ndarray:
    """``a (..., K, m) @ gy2ᵀ (m, O)`` as one batched product over blocks of
    ``tuning.SKINNY_COLUMNS`` columns, summed, plus ``rest(a[..., tail], gy2[:, tail])`` for
    the columns left over: a weight gradient's products over short or few columns."""
    width, out_channels = a.shape[-1], gy2.shape[0]
    step = tuning.SKINNY_COLUMNS
    blocks, main = width // step, width // step * step
    lead = a.shape[:-1]
    blocked = xp.moveaxis(a[..., :main].reshape(*lead, blocks, step), -2, 0)  # (blocks, ..., step)
    b = gy2[:, :main].reshape(out_channels, blocks, step).transpose(1, 2, 0)  # (blocks, step, O)
    b = b.reshape(blocks, *(1,) * (len(lead) - 1), step, out_channels)
    total = backend.matmul(blocked, b).sum(axis=0)
    if main < width:
        total += rest(a[..., main:], gy2[:, main:])
    return total


def _weight_partial(cols: ndarray, gy2: ndarray) -> ndarray:
    """A chunk's share of a weight gradient as ``(O × K)``: ``gy2 @ colsᵀ`` where the result
    is large (``K·O`` at least ``tuning.WEIGHT_GRAD_DIRECT_ENTRIES``: it is then added to the
    total without a transposed, strided pass), else :func:`_weight_product`'s ``(K × O)``
    seen transposed."""
    depth, width = cols.shape
    if depth * gy2.shape[0] >= tuning.WEIGHT_GRAD_DIRECT_ENTRIES and not _skinny(depth, width):
        return backend.matmul(gy2, cols.T)
    return _weight_product(cols, gy2).T


def _padding_scratch(
    plan: ColumnPlan, images: int, channels: int, dtype: Any
) -> ndarray | None:
    """This thread's zero-bordered block for :meth:`ColumnPlan.pad` (``None`` where the plan
    reads its input in place)."""
    if not plan.needs_copy:
        return None
    size = images * channels * (plan.plane + plan.tail)
    return plan.scratch(images, channels, dtype, workspace("padded", size, dtype))


_pads_rows = dispatch.pads_rows


class _Padding:
    """One thread's zero-bordered input chunks: a padded copy of each job's images, or, where
    :func:`_pads_rows`, of the input rows of each chunk of output rows."""

    def __init__(
        self, plan: ColumnPlan, chunks: list[Chunk], channels: int, dtype: Any, by_rows: bool
    ) -> None:
        self.plan = plan
        self.by_rows = by_rows
        if by_rows:
            count = max(r.stop - r.start for _, r in chunks)
            self.buffer = workspace("padded", channels * plan.rows_length(count), dtype)
        else:
            images = chunks[0][0].stop - chunks[0][0].start
            self.scratch = _padding_scratch(plan, images, channels, dtype)

    def chunks(self, x: ndarray, job: list[Chunk]) -> Iterator[tuple[slice, slice, ndarray, slice]]:
        """``(images, rows, padded block, rows within the block)`` for each chunk of ``job``."""
        plan = self.plan
        if self.by_rows:
            for images, rows in job:
                padded, local = plan.pad_rows(x[images], rows, self.buffer)
                yield images, rows, padded, local
            return
        padded = plan.pad(x[job[0][0]], self.scratch)
        for images, rows in job:
            yield images, rows, padded, rows


def _by_image(chunks: list[Chunk]) -> list[list[Chunk]]:
    """Chunks grouped so that the row chunks of one image stay together (one thread's job)."""
    jobs: list[list[Chunk]] = []
    for chunk in chunks:
        if chunk[1].start == 0:
            jobs.append([])
        jobs[-1].append(chunk)
    return jobs


def _numbered(jobs: list[list[Chunk]]) -> list[list[tuple[int, Chunk]]]:
    """:func:`_by_image`'s jobs with each chunk's index in the whole list (for
    :func:`~wally._parallel.sum_chunks`, which sums the chunks' partials in that order)."""
    numbered: list[list[tuple[int, Chunk]]] = []
    index = 0
    for job in jobs:
        numbered.append([(index + i, chunk) for i, chunk in enumerate(job)])
        index += len(job)
    return numbered


def _width(plan: ColumnPlan, chunks: list[Chunk]) -> int:
    """Columns of the largest chunk."""
    return max((i.stop - i.start) * (r.stop - r.start) * plan.row for i, r in chunks)


def correlate(
    x: ndarray,
    w: ndarray,
    b: ndarray | None,
    stride: tuple[int, ...],
    padding: Pairs,
    dilation: tuple[int, ...],
    groups: int,
    *,
    op: str = "convolution",
    what: str = "output",
) -> ndarray:
    """The convolution of ``x (N, C, *spatial)`` with ``w (O, C/groups, *k)``, plus ``b``.

    Per chunk of images (or of output rows), ``Y (O × m) = W (O × C·∏k) @ cols (C·∏k × m)``
    with ``cols`` from :class:`~wally._windows.ColumnPlan`, then one strided copy of ``Y`` into
    the ``(N, O, *out)`` result, adding the bias on the way.
    """
    batch, channels = x.shape[:2]
    out_channels = w.shape[0]
    if x.size == 0:  # no images, or no input channels: the output is the bias (or empty)
        plan = column_plan(x.shape[2:], w.shape[2:], stride, padding, dilation)
        y = allocate(op, what, (batch, out_channels, *plan.out), x.dtype, zeros=True)
        if b is not None:
            y += b.reshape((1, out_channels) + (1,) * len(plan.out))
        return y
    g = dispatch.Geometry(x.shape, w.shape, stride, padding, dilation, groups, x.dtype)
    kernel = dispatch.choose("forward", g)  # the table: wally.backends.conv.algorithms()
    if kernel == "onednn":
        return _onednn("forward", g, [x, w], g.plan().out, b, op, what)
    if kernel == "reference":
        return _reference_correlate(x, w, b, g, op, what)
    if kernel == "depthwise":
        return _depthwise_correlate(x, w, b, stride, padding, dilation, op, what)
    if kernel == "direct":
        return _direct_correlate(x, w, b, g, op, what)
    if kernel == "winograd":
        return winograd_correlate(x, w, b, padding, op=op, what=what,
                                  share=dispatch.get_memory_budget() // dispatch.shares())
    if kernel == "rows":
        return _rows_correlate(_rows(g), x, w, b, op, what)
    plan = column_plan(x.shape[2:], w.shape[2:], stride, padding, dilation)
    y = allocate(op, what, (batch, out_channels, *plan.out), x.dtype)
    w2 = xp.ascontiguousarray(w).reshape(out_channels, -1)
    chunks = _plan_chunks(plan, x.shape, x.itemsize)
    width = _width(plan, chunks)
    by_rows = _pads_rows(plan, chunks, channels, x.itemsize)
    bias = None if b is None else b.reshape((1, out_channels) + (1,) * len(plan.out))
    group_rows = _group_rows(out_channels, channels * plan.n_taps, groups)

    def work(jobs: Iterator[list[Chunk]]) -> None:
        cols_buffer = workspace("columns", channels * plan.n_taps * width, x.dtype)
        y_buffer = workspace("rows", out_channels * width, x.dtype)
        padding = _Padding(plan, chunks, channels, x.dtype, by_rows)
        for job in jobs:
            for chunk_images, rows, padded, local in padding.chunks(x, job):
                cols = plan.columns(padded, local, cols_buffer)
                y2 = y_buffer[: out_channels * cols.shape[1]].reshape(out_channels, -1)
                for rows_out, rows_in in group_rows:
                    _blocked_product(w2[rows_out], cols[rows_in], y2[rows_out], rows_in)
                n = chunk_images.stop - chunk_images.start
                result = plan.crop(y2.reshape(out_channels, n, -1)).swapaxes(0, 1)
                target = y[chunk_images, :, rows]
                if bias is None:
                    target[...] = result
                else:
                    xp.add(result, bias, out=target)

    run_chunks(work, _by_image(chunks), workers=_workers())
    return y


def _onednn(
    pass_: str, g: dispatch.Geometry, arrays: list[ndarray], shape: Sequence[int],
    b: ndarray | None, op: str, what: str,
) -> ndarray:
    """One pass as oneDNN's primitives (:mod:`wally.backends.onednn`): ``arrays`` are the
    pass's inputs (``x, w``; ``x, dY``; ``dY, w``), the result has ``shape``."""
    step = dispatch.onednn_pass(pass_, g)
    assert step is not None  # the rule's condition
    if pass_ == "forward":
        shape = (g.input_shape[0], g.weight_shape[0], *shape)
    out = allocate(op, what, shape, g.dtype)
    inputs = [xp.ascontiguousarray(a) for a in arrays]
    bias = None if b is None else xp.ascontiguousarray(b)
    return step.run(inputs, out, bias)


def weight_grad(
    x: ndarray,
    gy: ndarray,
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pairs,
    dilation: tuple[int, ...],
    groups: int,
) -> ndarray:
    """``dW = Σ_chunks dY (O × m) @ colsᵀ (m × C·∏k)``, the columns rebuilt chunk by chunk.

    Wide rows need finite inputs: their junk columns meet a zero gradient, and ``0·inf`` would
    be NaN, so a non-finite ``x`` takes exact columns.
    """
    batch, channels = x.shape[:2]
    out_channels = gy.shape[1]
    if x.size == 0:
        return xp.zeros(weight_shape, dtype=gy.dtype)
    g = dispatch.Geometry(x.shape, weight_shape, stride, padding, dilation, groups, x.dtype)
    kernel = dispatch.choose("weight-grad", g)
    if kernel == "onednn":
        return _onednn("weight-grad", g, [x, gy], weight_shape, None, "convolution",
                       "weight gradient")
    if kernel == "reference":
        return _reference_weight_grad(x, gy, g)
    if kernel == "depthwise-direct":
        return _direct_weight_grad(x, gy, g)
    if kernel == "depthwise":
        return _depthwise_weight_grad(x, gy, weight_shape, stride, padding, dilation)
    if kernel == "rows":
        return _rows_weight_grad(_rows(g), x, gy, weight_shape)
    wide = None if bool(xp.isfinite(x.sum())) else False
    plan = column_plan(x.shape[2:], weight_shape[2:], stride, padding, dilation, wide)
    depth = channels * plan.n_taps
    columns = batch * plan.row * (plan.out[0] if plan.out else 1)
    limit = dispatch.weight_grad_limit(depth, columns, x.itemsize)
    chunks = plan.chunks(batch, channels, x.itemsize, limit, split_threads())
    width = _width(plan, chunks)
    by_rows = _pads_rows(plan, chunks, channels, x.itemsize)
    group_rows = _group_rows(out_channels, channels * plan.n_taps, groups)

    # Allocated in the weight's shape, so that the gradient owns its memory (and the leaf can
    # keep it without a copy); accumulated through a 2-D view, chunk after chunk in order.
    full = xp.zeros(weight_shape, dtype=gy.dtype)
    gw = full.reshape(out_channels, -1)

    def fold(products: list[ndarray]) -> None:
        for (rows_out, _), product in zip(group_rows, products, strict=True):
            gw[rows_out] += product

    def work(jobs: Iterator[list[tuple[int, Chunk]]], put: Any) -> None:
        cols_buffer = workspace("columns", channels * plan.n_taps * width, x.dtype)
        gy_buffer = workspace("rows", out_channels * width, gy.dtype)
        padding = _Padding(plan, chunks, channels, x.dtype, by_rows)
        shape = None
        for job in jobs:
            pieces = padding.chunks(x, [chunk for _, chunk in job])
            for (index, _), (chunk_images, rows, padded, local) in zip(job, pieces, strict=True):
                cols = plan.columns(padded, local, cols_buffer)
                block = gy[chunk_images, :, rows].swapaxes(0, 1)  # (O, n, rows, *out[1:])
                size = out_channels * cols.shape[1]
                if plan.wide and block.shape != shape:
                    gy_buffer[:size].fill(0)  # the junk positions of a new chunk shape
                    shape = block.shape
                gy2 = plan.uncrop(block, gy_buffer[:size]).reshape(out_channels, -1)
                put(index, [_weight_partial(cols[rows_in], gy2[rows_out])
                            for rows_out, rows_in in group_rows])

    sum_chunks(work, _numbered(_by_image(chunks)), fold, len(chunks),
               partial_bytes=full.nbytes, workers=_workers())
    return full


def input_grad(
    gy: ndarray,
    w: ndarray,
    input_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pairs,
    dilation: tuple[int, ...],
    groups: int,
    *,
    op: str = "convolution",
) -> ndarray:
    """``dX``, the adjoint of :func:`correlate` in ``x``.

    With stride 1 it is itself a convolution: ``dX = dY ⋆ flip(W)ᵀ``, ``dY`` padded by
    ``d·(k − 1) − p`` on each side and the kernel flipped along every spatial axis, with input
    and output channels swapped (within each group).  Otherwise (or where the padding exceeds
    ``d·(k − 1)``) columns ``Wᵀ @ dY`` are added back, one slice-add per tap.
    """
    if volume(input_shape) == 0:
        return xp.zeros(input_shape, dtype=gy.dtype)
    g = dispatch.Geometry(input_shape, w.shape, stride, padding, dilation, groups, gy.dtype)
    kernel = dispatch.choose("input-grad", g)
    if kernel == "onednn":
        return _onednn("input-grad", g, [gy, w], input_shape, None, op, "input gradient")
    if kernel == "reference":
        return _reference_input_grad(gy, w, g)
    if kernel == "flipped":
        # dY ⋆ flip(W)ᵀ, dY padded by d·(k − 1) − p: a forward convolution, whose kernel the
        # forward rules choose.
        size = w.shape[2:]
        reach = tuple(d * (k - 1) for k, d in zip(size, dilation, strict=True))
        out_channels, per_group = w.shape[:2]
        flipped = w.reshape(groups, out_channels // groups, per_group, *size).swapaxes(1, 2)
        flipped = flipped.reshape(per_group * groups, out_channels // groups, *size)
        flipped = flipped[(Ellipsis,) + (slice(None, None, -1),) * len(size)]
        pads = tuple((r - lo, r - hi) for (lo, hi), r in zip(padding, reach, strict=True))
        return correlate(
            gy, flipped, None, stride, pads, dilation, groups, op=op, what="input gradient"
        )
    if kernel == "depthwise":
        return _depthwise_scatter_input_grad(gy, w, input_shape, stride, padding, dilation, op)
    if kernel == "rows":
        return _rows_input_grad(_rows(g), gy, w, op)
    return _scatter_input_grad(gy, w, input_shape, stride, padding, dilation, groups, op)


def _scatter_input_grad(
    gy: ndarray,
    w: ndarray,
    input_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pairs,
    dilation: tuple[int, ...],
    groups: int,
    op: str = "convolution",
) -> ndarray:
    """``dX`` by columns ``Wᵀ @ dY`` added back per tap (col2im), chunk by chunk; wide rows
    (stride 1, finite weights: the junk columns are ``Wᵀ @ 0``) make each add contiguous."""
    batch, channels = input_shape[:2]
    out_channels = w.shape[0]
    # Wide rows whenever they apply: they turn the per-tap adds into contiguous runs.
    wide = all(s == 1 for s in stride) and bool(xp.isfinite(w.sum()))
    plan = column_plan(input_shape[2:], w.shape[2:], stride, padding, dilation, wide)
    w2 = xp.ascontiguousarray(w).reshape(out_channels, -1)
    group_rows = _group_rows(out_channels, channels * plan.n_taps, groups)
    w_t = [xp.ascontiguousarray(w2[rows_out].T) for rows_out, _ in group_rows]
    chunks = _plan_chunks(plan, input_shape, gy.itemsize)
    width = _width(plan, chunks)
    images = chunks[0][0].stop - chunks[0][0].start
    # A large image's gradient is gathered one chunk of output rows at a time, each chunk's
    # padded rows added into gx (zeroed; neighbouring chunks share kernel-overlap rows) instead
    # of a zero-bordered copy of the whole image.
    by_rows = dispatch.gathers_rows(plan, chunks, channels, gy.itemsize)
    gx = allocate(op, "input gradient", input_shape, gy.dtype, zeros=by_rows)
    center = (_ALL, _ALL) + tuple(
        slice(lo, lo + n) for (lo, _), n in zip(padding, input_shape[2:], strict=True)
    )

    class _Thread:
        """One thread's buffers, and the junk pattern of the last chunk's shape."""

        def __init__(self) -> None:
            self.cols = workspace("columns", channels * plan.n_taps * width, gy.dtype)
            self.rows = workspace("rows", out_channels * width, gy.dtype)
            self.shape: Any = None

        def columns(self, chunk_images: slice, rows: slice, n: int) -> ndarray:
            """``Wᵀ @ dY`` for one chunk: ``(C·∏k, n·rows·row)`` in :attr:`cols`."""
            grad = gy[chunk_images, :, rows].swapaxes(0, 1)  # (O, n, rows, *out[1:])
            m = n * (rows.stop - rows.start) * plan.row
            if plan.wide and grad.shape != self.shape:
                self.rows[: out_channels * m].fill(0)  # the junk positions of a new shape
                self.shape = grad.shape
            gy2 = plan.uncrop(grad, self.rows[: out_channels * m]).reshape(out_channels, m)
            gcols = self.cols[: channels * plan.n_taps * m].reshape(-1, m)
            for (rows_out, rows_in), w_group in zip(group_rows, w_t, strict=True):
                _blocked_product(w_group, gy2[rows_out], gcols[rows_in], rows_in)
            return gcols

    def work_rows(jobs: Iterator[list[Chunk]]) -> None:
        thread = _Thread()
        count = max(r.stop - r.start for _, r in chunks)
        buffer = workspace("padded", channels * plan.rows_length(count), gy.dtype)
        for job in jobs:
            for chunk_images, rows in job:
                gcols = thread.columns(chunk_images, rows, 1)
                flat, block, local = plan.rows_block(1, channels, rows, buffer)
                plan.add_columns(gcols, flat if plan.wide else block, local)
                inside, where = plan.rows_center(rows)
                gx[chunk_images, :, inside] += block[where]

    def work(jobs: Iterator[list[Chunk]]) -> None:
        thread = _Thread()
        size = images * channels * (plan.plane + plan.tail)
        scratch = workspace("padded", size, gy.dtype).reshape(images, channels, -1)
        for job in jobs:
            n = job[0][0].stop - job[0][0].start
            block = scratch[:n]
            block.fill(0)
            padded = block[:, :, : plan.plane].reshape(n, channels, *plan.padded)
            for chunk_images, rows in job:
                gcols = thread.columns(chunk_images, rows, n)
                plan.add_columns(gcols, block if plan.wide else padded, rows)
            gx[job[0][0]] = padded[center]

    run_chunks(work_rows if by_rows else work, _by_image(chunks), workers=_workers())
    return gx


# ----- 2-D, stride 1 down the rows: the batch inside each image row ----------------------------
class _Rows:
    """A 2-D convolution with vertical stride 1 and exact columns, by shifted copies instead of
    im2col.

    Per chunk of ``n`` images the padded input is copied once per horizontal tap ``b`` into
    ``S[c, b, h, i, j] = x_pad[i, c, h, j·s_w + b·d_w]``: image ``i`` sits *inside* row ``h``.
    Kernel row ``a`` then reads padded rows ``h = o + a·d_h`` for every output row ``o``, and
    those rows of ``S`` are one contiguous run: the matrix ``S_a (C·k_w × OH·n·OW)``, a slice
    of ``S`` at offset ``a·d_h·n·OW``, with no copy.  So

        ``Y (O × OH·n·OW) = Σ_a W[:, :, a, :] (O × C·k_w) @ S_a``,

    ``k_h`` GEMMs over ``k_w`` copies of the input, where im2col copies it ``k_h·k_w`` times
    in runs of ``OW`` elements (LeNet's conv2: runs of 10).  ``Y`` comes out as
    ``(O, OH, n, OW)``.
    """

    def __init__(
        self, plan: ColumnPlan, x_shape: Sequence[int], kernel: Sequence[int], itemsize: int
    ) -> None:
        self.plan = plan
        self.batch, self.channels = int(x_shape[0]), int(x_shape[1])
        self.kh, self.kw = int(kernel[0]), int(kernel[1])
        self.padded_rows = plan.padded[0]
        self.out_rows, self.out_cols = plan.out
        self.row_step = plan.dilation[0]
        self.per_image = self.channels * self.kw * self.padded_rows * self.out_cols * itemsize
        limit = min(tuning.ROWS_BYTES, _chunk_limit())
        step = shared_step(self.batch, max(1, min(self.batch, limit // self.per_image)),
                           self.per_image, split_threads())
        self.chunks = [slice(n, min(n + step, self.batch)) for n in range(0, self.batch, step)]
        self.images = step

    def shifted(self, padded: ndarray, out: ndarray) -> ndarray:
        """``S`` as ``(C·k_w, H_pad·n·OW)`` in ``out``, from ``padded (n, C, H_pad, W_pad)``."""
        n = padded.shape[0]
        image, channel, row, col = padded.strides
        shape = (self.channels, self.kw, self.padded_rows, n, self.out_cols)
        strides = (
            channel, self.plan.dilation[1] * col, row, image, self.plan.stride[1] * col
        )
        view = xp.lib.stride_tricks.as_strided(padded, shape, strides, writeable=False)
        s = out[: view.size].reshape(shape)
        s[...] = view
        return s.reshape(self.channels * self.kw, -1)

    def tap_rows(self, s: ndarray, a: int, n: int) -> ndarray:
        """``S_a``: the columns kernel row ``a`` reads, ``(C·k_w, OH·n·OW)``, a view of ``s``."""
        start = a * self.row_step * n * self.out_cols
        return s[:, start : start + self.out_rows * n * self.out_cols]

    def all_tap_rows(self, s: ndarray, n: int) -> ndarray:
        """Every :meth:`tap_rows` at once, ``(k_h, C·k_w, OH·n·OW)``: a strided view of ``s``."""
        step = self.row_step * n * self.out_cols * s.strides[1]
        shape = (self.kh, s.shape[0], self.out_rows * n * self.out_cols)
        return xp.lib.stride_tricks.as_strided(s, shape, (step, *s.strides), writeable=False)

    def weights(self, w: ndarray) -> ndarray:
        """``W`` as ``(k_h, O, C·k_w)``: kernel row ``a``'s matrix at ``[a]``."""
        return xp.ascontiguousarray(w.transpose(2, 0, 1, 3)).reshape(self.kh, w.shape[0], -1)

    def gather_grad(self, gy: ndarray, out: ndarray) -> ndarray:
        """``dY[images] (n, O, OH, OW)`` as ``(O, OH·n·OW)`` in ``out``: ``Y``'s layout."""
        n, o = gy.shape[:2]
        g = out[: gy.size].reshape(o, self.out_rows, n, self.out_cols)
        g[...] = gy.transpose(1, 2, 0, 3)
        return g.reshape(o, -1)


def _rows(g: dispatch.Geometry) -> _Rows:
    """The :class:`_Rows` layout of ``g`` (where the table's ``rows`` rule fits)."""
    return _Rows(g.plan(wide=False), g.input_shape, g.kernel, g.itemsize)


def _rows_correlate(
    rows: _Rows, x: ndarray, w: ndarray, b: ndarray | None, op: str, what: str
) -> ndarray:
    """:func:`correlate` by :class:`_Rows`."""
    out_channels = w.shape[0]
    y = allocate(op, what, (rows.batch, out_channels, rows.out_rows, rows.out_cols), x.dtype)
    w_rows = rows.weights(w)
    bias = None if b is None else b.reshape(1, out_channels, 1, 1)
    width = rows.out_rows * rows.images * rows.out_cols

    def work(chunks: Iterator[slice]) -> None:
        s_buffer = workspace("columns", rows.channels * rows.kw * rows.padded_rows
                             * rows.images * rows.out_cols, x.dtype)
        y_buffer = workspace("rows", out_channels * width, x.dtype)
        t_buffer = workspace("product", out_channels * width, x.dtype)
        scratch = _padding_scratch(rows.plan, rows.images, rows.channels, x.dtype)
        for images in chunks:
            n = images.stop - images.start
            s = rows.shifted(rows.plan.pad(x[images], scratch), s_buffer)
            size = out_channels * rows.out_rows * n * rows.out_cols
            y2 = y_buffer[:size].reshape(out_channels, -1)
            t2 = t_buffer[:size].reshape(out_channels, -1)
            for a in range(rows.kh):
                backend.matmul(w_rows[a], rows.tap_rows(s, a, n), out=y2 if a == 0 else t2)
                if a:
                    y2 += t2
            result = y2.reshape(out_channels, rows.out_rows, n, rows.out_cols).transpose(2, 0, 1, 3)
            if bias is None:
                y[images] = result
            else:
                xp.add(result, bias, out=y[images])

    run_chunks(work, rows.chunks, workers=_workers())
    return y


def _rows_weight_grad(
    rows: _Rows, x: ndarray, gy: ndarray, weight_shape: tuple[int, ...]
) -> ndarray:
    """``dW[:, :, a, :] = Σ_chunks dY (O × m) @ S_aᵀ``, by :class:`_Rows`."""
    out_channels = gy.shape[1]
    width = rows.out_rows * rows.images * rows.out_cols

    total = xp.zeros((rows.kh, rows.channels * rows.kw, out_channels), dtype=gy.dtype)

    def fold(product: ndarray) -> None:
        total[...] += product

    def work(chunks: Iterator[tuple[int, slice]], put: Any) -> None:
        s_buffer = workspace("columns", rows.channels * rows.kw * rows.padded_rows
                             * rows.images * rows.out_cols, x.dtype)
        g_buffer = workspace("rows", out_channels * width, gy.dtype)
        scratch = _padding_scratch(rows.plan, rows.images, rows.channels, x.dtype)
        for index, images in chunks:
            n = images.stop - images.start
            s = rows.shifted(rows.plan.pad(x[images], scratch), s_buffer)
            g2 = rows.gather_grad(gy[images], g_buffer)
            # Every S_a @ dYᵀ in one batched product: the orientation OpenBLAS runs fastest
            # for long, skinny chunks, with a result large enough to release the GIL.
            put(index, _tap_products(rows.all_tap_rows(s, n), g2))

    sum_chunks(work, list(enumerate(rows.chunks)), fold, len(rows.chunks),
               partial_bytes=total.nbytes, workers=_workers())
    shaped = total.reshape(rows.kh, rows.channels, rows.kw, out_channels)
    return xp.ascontiguousarray(shaped.transpose(3, 1, 0, 2))


def _tap_products(taps: ndarray, g2: ndarray) -> ndarray:
    """``taps (k_h, C·k_w, m) @ g2ᵀ (m, O)`` for the row layout's weight gradient.  A result
    of at most ``tuning.GIL_HELD_ENTRIES`` (LeNet's conv1: 5 × 5 × 6) is summed over blocks
    of ``tuning.SKINNY_COLUMNS`` columns, one batched product whose larger result releases the
    interpreter lock, so that two threads' products run at once."""
    kh, depth, width = taps.shape
    if (kh * depth * g2.shape[0] > tuning.GIL_HELD_ENTRIES
            or width < 2 * tuning.SKINNY_COLUMNS):
        return backend.matmul(taps, g2.T)
    return _summed_column_blocks(taps, g2, lambda a, b: backend.matmul(a, b.T))


def _rows_input_grad(rows: _Rows, gy: ndarray, w: ndarray, op: str) -> ndarray:
    """``dX``, the adjoint of :func:`_rows_correlate`: ``dS_a = W[:, :, a, :]ᵀ @ dY`` added into
    ``dS`` at kernel row ``a``'s offset, then each horizontal tap ``b`` of ``dS`` added back
    into the padded gradient (a strided slice-add, as in col2im)."""
    plan = rows.plan
    out_channels = w.shape[0]
    # W[:, :, a, :]ᵀ per kernel row a, (k_h, C·k_w, O), in one copy.
    w_rows_t = xp.ascontiguousarray(w.transpose(2, 1, 3, 0)).reshape(rows.kh, -1, out_channels)
    width = rows.out_rows * rows.images * rows.out_cols
    shifted_size = rows.channels * rows.kw * rows.padded_rows * rows.images * rows.out_cols
    gx = allocate(op, "input gradient", (rows.batch, rows.channels, *plan.spatial), gy.dtype)
    center = (_ALL, _ALL) + tuple(
        slice(lo, lo + n) for (lo, _), n in zip(plan.padding, plan.spatial, strict=True)
    )
    col_step, col_gap = plan.stride[1], plan.dilation[1]
    col_span = (rows.out_cols - 1) * col_step + 1

    def work(chunks: Iterator[slice]) -> None:
        s_buffer = workspace("columns", shifted_size, gy.dtype)
        g_buffer = workspace("rows", out_channels * width, gy.dtype)
        t_buffer = workspace("product", rows.channels * rows.kw * width, gy.dtype)
        size = rows.images * rows.channels * plan.plane
        padded_buffer = workspace("padded", size, gy.dtype)
        for images in chunks:
            n = images.stop - images.start
            g2 = rows.gather_grad(gy[images], g_buffer)
            ds = s_buffer[: rows.channels * rows.kw * rows.padded_rows * n * rows.out_cols]
            ds.fill(0)
            ds2 = ds.reshape(rows.channels * rows.kw, -1)
            t2 = t_buffer[: rows.channels * rows.kw * g2.shape[1]].reshape(ds2.shape[0], -1)
            for a in range(rows.kh):
                backend.matmul(w_rows_t[a], g2, out=t2)
                rows.tap_rows(ds2, a, n)[...] += t2
            shifted = ds.reshape(rows.channels, rows.kw, rows.padded_rows, n, rows.out_cols)
            padded = padded_buffer[: n * rows.channels * plan.plane].reshape(
                n, rows.channels, *plan.padded
            )
            padded.fill(0)
            target = padded.transpose(1, 2, 0, 3)  # (C, H_pad, n, W_pad)
            for b in range(rows.kw):
                start = b * col_gap
                target[:, :, :, start : start + col_span : col_step] += shifted[:, b]
            gx[images] = padded[center]

    run_chunks(work, rows.chunks, workers=_workers())
    return gx


# ----- direct: the taps summed from one padded copy, compiled (wally.backends.accel) --------
def _direct_correlate(
    x: ndarray, w: ndarray, b: ndarray | None, g: dispatch.Geometry, op: str, what: str
) -> ndarray:
    """:func:`correlate` by the compiled kernel :func:`wally._numba_kernels.conv2d_direct`
    (stride 1; 1-D runs as 2-D with one row), one call per chunk of images on
    :func:`~wally._parallel.run_chunks`'s threads.  Each image's sums run in the same order
    whichever chunk holds it: the same bits at any thread count."""
    kernels = accel.kernels()
    if len(g.kernel) == 1:
        x, w = x[:, :, None], w[:, :, None]
    padding, dilation, _ = _direct_2d(g)
    x = xp.ascontiguousarray(x)
    w = xp.ascontiguousarray(w, dtype=x.dtype)
    bias = xp.zeros(0, x.dtype) if b is None else xp.ascontiguousarray(b, dtype=x.dtype)
    plan = column_plan(x.shape[2:], w.shape[2:], (1, 1), padding, dilation, wide=False)
    batch, channels = x.shape[:2]
    (top, bottom), (left, right) = padding
    padded_height, padded_width = plan.padded
    tail = dilation[1] * (w.shape[3] - 1)
    plane = padded_height * padded_width + tail
    length = plan.out[0] * padded_width
    y = allocate(op, what, (batch, w.shape[0], *plan.out), x.dtype)
    step = max(1, -(-batch // (4 * get_num_threads())))
    per_image = w.size * length  # multiply-adds: every weight over the wide rows

    def work(chunks: Iterator[slice]) -> None:
        padded = workspace("padded", channels * plane, x.dtype)
        acc = workspace("rows", length, x.dtype)
        for images in chunks:
            accel.call(kernels.conv2d_direct, per_image * (images.stop - images.start), x, w,
                       bias, images.start, images.stop, top, bottom, left, right, dilation[0],
                       dilation[1], g.groups, y, padded, acc)

    run_chunks(work, [slice(n, min(n + step, batch)) for n in range(0, batch, step)])
    return y.reshape(y.shape[:2] + tuple(g.plan().out))


def _direct_2d(g: dispatch.Geometry) -> tuple[Pairs, tuple[int, ...], tuple[int, ...]]:
    """``g``'s padding, dilation and kernel as the 2-D compiled kernels take them: a 1-D
    convolution runs as 2-D with one row (its arrays get a unit axis before the last)."""
    if len(g.kernel) == 1:
        return ((0, 0), *g.padding), (1, *g.dilation), (1, *g.kernel)
    return g.padding, g.dilation, g.kernel


def _direct_weight_grad(x: ndarray, gy: ndarray, g: dispatch.Geometry) -> ndarray:
    """A depthwise layer's ``dW`` by the compiled kernel
    :func:`wally._numba_kernels.depthwise_weight_grad` (stride 1; 1-D runs as 2-D with one
    row): one call per chunk of ``tuning.DIRECT_GRAD_IMAGES`` images, whose partials are added
    in chunk order, so the bits are the same at every thread count."""
    kernels = accel.kernels()
    weight_shape = g.weight_shape
    if len(g.kernel) == 1:
        x, gy = x[:, :, None], gy[:, :, None]
    padding, dilation, kernel = _direct_2d(g)
    x = xp.ascontiguousarray(x)
    gy = xp.ascontiguousarray(gy, dtype=x.dtype)
    batch, channels = x.shape[:2]
    (top, bottom), (left, right) = padding
    padded_width = x.shape[3] + left + right
    plane = (x.shape[2] + top + bottom) * padded_width + dilation[1] * (kernel[1] - 1)
    total = xp.zeros((channels, *kernel), dtype=x.dtype)
    step = tuning.DIRECT_GRAD_IMAGES
    chunks = [slice(n, min(n + step, batch)) for n in range(0, batch, step)]
    per_image = channels * volume(kernel) * volume(gy.shape[2:])  # multiply-adds

    def fold(part: ndarray) -> None:
        total[...] += part

    def work(jobs: Iterator[tuple[int, slice]], put: Any) -> None:
        padded = workspace("padded", channels * plane, x.dtype)
        acc = workspace("rows", channels * volume(kernel) * gy.shape[3], x.dtype).reshape(
            channels, volume(kernel), gy.shape[3])
        for index, images in jobs:
            part = xp.empty_like(total)
            accel.call(kernels.depthwise_weight_grad, per_image * (images.stop - images.start),
                       x, gy, images.start, images.stop, top, bottom, left, right, dilation[0],
                       dilation[1], part, padded, acc)
            put(index, part)

    sum_chunks(work, list(enumerate(chunks)), fold, len(chunks), partial_bytes=total.nbytes)
    return total.reshape(weight_shape).astype(g.dtype, copy=False)


# ----- depthwise: one multiply-add per kernel tap -----------------------------------------------
def _image_chunks(batch: int, per_image: int) -> list[slice]:
    step = max(1, _chunk_limit() // max(1, per_image))
    return [slice(n, min(n + step, batch)) for n in range(0, batch, step)]


def _depthwise_product(images: int, shape: Sequence[int], dtype: Any) -> ndarray:
    return workspace("product", images * volume(shape), dtype).reshape(images, *shape)


def _tap_weights(w: ndarray, nd: int) -> ndarray:
    """``w (C, 1, *k)`` as ``(∏k, C, 1, …, 1)``: tap ``t``'s weight per channel, broadcastable
    against ``(n, C, *out)``."""
    return xp.ascontiguousarray(w.reshape(w.shape[0], -1).T).reshape(
        -1, w.shape[0], *(1,) * nd
    )


_depthwise_by_rows = dispatch.depthwise_by_rows


def _depthwise_row_step(plan: ColumnPlan, channels: int, itemsize: int) -> int:
    """Output rows per block: the input rows they read and their product within
    :func:`_chunk_limit`."""
    s, d, k = plan.stride[0], plan.dilation[0], plan.kernel_size[0]
    per_row = channels * (s * plan.flat[0] + volume(plan.out[1:])) * itemsize
    halo = channels * d * (k - 1) * plan.flat[0] * itemsize
    return max(1, (_chunk_limit() - halo) // max(1, per_row))


def _depthwise_row_chunks(
    plan: ColumnPlan, batch: int, channels: int, itemsize: int
) -> list[Chunk]:
    """``(one image, a block of output rows)`` chunks, image after image."""
    step, rows = _depthwise_row_step(plan, channels, itemsize), plan.out[0]
    return [
        (slice(n, n + 1), slice(r, min(r + step, rows)))
        for n in range(batch)
        for r in range(0, rows, step)
    ]


class _DepthwiseRows:
    """One thread's padded input rows for a chunk of output rows (:meth:`ColumnPlan.pad_rows`,
    or the input in place where there is no padding) and its product buffer."""

    def __init__(self, plan: ColumnPlan, chunks: list[Chunk], channels: int, dtype: Any) -> None:
        self.plan = plan
        count = max(r.stop - r.start for _, r in chunks)
        if plan.needs_copy:
            self.buffer = workspace("padded", channels * plan.rows_length(count), dtype)
        self.product = workspace("product", channels * count * volume(plan.out[1:]), dtype)

    def padded(self, x: ndarray, images: slice, rows: slice) -> tuple[ndarray, slice]:
        if not self.plan.needs_copy:
            return x[images], rows
        return self.plan.pad_rows(x[images], rows, self.buffer)

    def temp(self, like: ndarray) -> ndarray:
        return self.product[: like.size].reshape(like.shape)


def _depthwise_correlate(
    x: ndarray, w: ndarray, b: ndarray | None, stride: tuple[int, ...], padding: Pairs,
    dilation: tuple[int, ...], op: str, what: str,
) -> ndarray:
    """``y[n, c] = Σ_t w[c, t] · x[n, c, o·s + t·d]``: one multiply and one add per tap."""
    nd = len(stride)
    plan = column_plan(x.shape[2:], w.shape[2:], stride, padding, dilation, wide=False)
    y = allocate(op, what, (x.shape[0], x.shape[1], *plan.out), x.dtype)
    weights = _tap_weights(w, nd)

    def taps(padded: ndarray, rows: slice, total: ndarray, temp: ndarray) -> None:
        for index, tap in enumerate(plan.taps):
            view = padded[(_ALL, _ALL) + plan.tap_view(tap, rows)]
            if index == 0:
                backend.multiply(view, weights[0], out=total)
            else:
                backend.multiply(view, weights[index], out=temp)
                total += temp
        if b is not None:
            total += b.reshape(-1, *(1,) * nd)

    if _depthwise_by_rows(plan, x.shape[1], x.itemsize):
        row_chunks = _depthwise_row_chunks(plan, x.shape[0], x.shape[1], x.itemsize)

        def work_rows(parts: Iterator[Chunk]) -> None:
            scratch = _DepthwiseRows(plan, row_chunks, x.shape[1], x.dtype)
            for images, rows in parts:
                padded, local = scratch.padded(x, images, rows)
                total = y[images, :, rows]
                taps(padded, local, total, scratch.temp(total))

        run_chunks(work_rows, row_chunks, workers=_workers())
        return y

    per_image = x.shape[1] * (volume(plan.padded) + volume(plan.out)) * x.itemsize
    chunks = _image_chunks(x.shape[0], per_image)
    rows = slice(0, plan.out[0])

    def work(parts: Iterator[slice]) -> None:
        step = chunks[0].stop - chunks[0].start
        scratch = _padding_scratch(plan, step, x.shape[1], x.dtype)
        product = _depthwise_product(step, y.shape[1:], x.dtype)
        for images in parts:
            padded = plan.pad(x[images], scratch)
            total = y[images]
            taps(padded, rows, total, product[: len(total)])

    run_chunks(work, chunks, workers=_workers())
    return y


def _depthwise_weight_grad(
    x: ndarray, gy: ndarray, weight_shape: tuple[int, ...], stride: tuple[int, ...],
    padding: Pairs, dilation: tuple[int, ...],
) -> ndarray:
    """``dW[c, t] = Σ_n Σ_o dY[n, c, o] · x[n, c, o·s + t·d]``."""
    plan = column_plan(x.shape[2:], weight_shape[2:], stride, padding, dilation, wide=False)
    channels = x.shape[1]
    gw = xp.zeros((plan.n_taps, channels), dtype=gy.dtype)

    def fold(part: ndarray) -> None:
        gw[...] += part

    def taps(padded: ndarray, rows: slice, grad: ndarray, temp: ndarray) -> ndarray:
        part = xp.empty((plan.n_taps, channels), dtype=gy.dtype)
        for index, tap in enumerate(plan.taps):
            backend.multiply(grad, padded[(_ALL, _ALL) + plan.tap_view(tap, rows)], out=temp)
            part[index] = temp.reshape(len(grad), channels, -1).sum(axis=2).sum(axis=0)
        return part

    if _depthwise_by_rows(plan, channels, x.itemsize):
        # Each block's partial is summed in chunk order (sum_chunks): the same bits at any
        # number of threads.
        row_chunks = _depthwise_row_chunks(plan, x.shape[0], channels, x.itemsize)

        def work_rows(parts: Iterator[tuple[int, Chunk]], put: Any) -> None:
            scratch = _DepthwiseRows(plan, row_chunks, channels, x.dtype)
            for number, (images, rows) in parts:
                padded, local = scratch.padded(x, images, rows)
                grad = gy[images, :, rows]
                put(number, taps(padded, local, grad, scratch.temp(grad)))

        sum_chunks(work_rows, list(enumerate(row_chunks)), fold, len(row_chunks),
                   partial_bytes=gw.nbytes, workers=_workers())
        return xp.ascontiguousarray(gw.T.reshape(weight_shape))

    per_image = channels * (volume(plan.padded) + volume(plan.out)) * x.itemsize
    chunks = _image_chunks(x.shape[0], per_image)
    rows = slice(0, plan.out[0])

    def work(parts: Iterator[tuple[int, slice]], put: Any) -> None:
        step = chunks[0].stop - chunks[0].start
        scratch = _padding_scratch(plan, step, channels, x.dtype)
        product = _depthwise_product(step, gy.shape[1:], gy.dtype)
        for number, images in parts:
            padded = plan.pad(x[images], scratch)
            grad = gy[images]
            put(number, taps(padded, rows, grad, product[: len(grad)]))

    sum_chunks(work, list(enumerate(chunks)), fold, len(chunks), partial_bytes=gw.nbytes,
               workers=_workers())
    return xp.ascontiguousarray(gw.T.reshape(weight_shape))


# One block of the row-chunked depthwise input gradient: the image, the input rows it writes,
# the output rows that reach them and the padded rows [start, stop) its block covers.
_InputRows = tuple[slice, slice, slice, int, int]


def _depthwise_input_row_chunks(
    plan: ColumnPlan, batch: int, channels: int, itemsize: int
) -> list[_InputRows]:
    """Blocks of input rows of each image, and the output rows that scatter into them."""
    s, d, k = plan.stride[0], plan.dilation[0], plan.kernel_size[0]
    lo, height, reach = plan.padding[0][0], plan.spatial[0], d * (k - 1)
    step = _depthwise_row_step(plan, channels, itemsize) * s
    chunks: list[_InputRows] = []
    for n in range(batch):
        for a in range(0, height, step):
            z = min(a + step, height)
            first = max(0, -(-(a + lo - reach) // s))
            last = max(first, min(plan.out[0], (z + lo - 1) // s + 1))
            start, stop = a + lo, z + lo
            if last > first:
                start, stop = min(start, first * s), max(stop, (last - 1) * s + reach + 1)
            chunks.append((slice(n, n + 1), slice(a, z), slice(first, last), start, stop))
    return chunks


def _depthwise_scatter_input_grad(
    gy: ndarray, w: ndarray, input_shape: tuple[int, ...], stride: tuple[int, ...],
    padding: Pairs, dilation: tuple[int, ...], op: str,
) -> ndarray:
    """``dX[n, c, o·s + t·d] += w[c, t] · dY[n, c, o]``, one strided slice-add per tap."""
    nd = len(stride)
    plan = column_plan(input_shape[2:], w.shape[2:], stride, padding, dilation, wide=False)
    channels = input_shape[1]
    weights = _tap_weights(w, nd)
    gx = allocate(op, "input gradient", input_shape, gy.dtype)
    inner = tuple(
        slice(lo, lo + n) for (lo, _), n in zip(padding[1:], input_shape[3:], strict=True)
    )

    def taps(grad: ndarray, block: ndarray, first: int, temp: ndarray) -> None:
        rows = slice(0, grad.shape[2])
        for index, tap in enumerate(plan.taps):
            backend.multiply(grad, weights[index], out=temp)
            view = plan.tap_view(tap, rows)
            head = view[0]
            shifted = slice(head.start + first, head.stop + first, head.step)
            block[(_ALL, _ALL, shifted) + view[1:]] += temp

    if _depthwise_by_rows(plan, channels, gy.itemsize):
        # Each block of input rows adds up, tap after tap, what the output rows that reach it
        # scatter (the rows around it are recomputed by its neighbours): the same bits.
        row_chunks = _depthwise_input_row_chunks(plan, input_shape[0], channels, gy.itemsize)
        lo = padding[0][0]

        def work_rows(parts: Iterator[_InputRows]) -> None:
            length = max(stop - start for *_, start, stop in row_chunks) * plan.flat[0]
            count = max(o.stop - o.start for _, _, o, _, _ in row_chunks)
            buffer = workspace("padded", channels * length, gy.dtype)
            product = workspace("product", channels * count * volume(plan.out[1:]), gy.dtype)
            for images, inputs, outputs, start, stop in parts:
                block = buffer[: channels * (stop - start) * plan.flat[0]]
                block = block.reshape(1, channels, stop - start, *plan.padded[1:])
                block.fill(0)
                if outputs.stop > outputs.start:
                    grad = gy[images, :, outputs]
                    temp = product[: grad.size].reshape(grad.shape)
                    taps(grad, block, outputs.start * plan.stride[0] - start, temp)
                kept = slice(inputs.start + lo - start, inputs.stop + lo - start)
                gx[images, :, inputs] = block[(_ALL, _ALL, kept) + inner]

        run_chunks(work_rows, row_chunks, workers=_workers())
        return gx

    per_image = channels * (volume(plan.padded) + volume(plan.out)) * gy.itemsize
    chunks = _image_chunks(input_shape[0], per_image)
    center = (_ALL, _ALL) + tuple(
        slice(lo, lo + n) for (lo, _), n in zip(padding, input_shape[2:], strict=True)
    )

    def work(parts: Iterator[slice]) -> None:
        step = chunks[0].stop - chunks[0].start
        size = step * channels * volume(plan.padded)
        scratch = workspace("padded", size, gy.dtype).reshape(step, channels, *plan.padded)
        product = _depthwise_product(step, gy.shape[1:], gy.dtype)
        for images in parts:
            grad = gy[images]
            block, temp = scratch[: len(grad)], product[: len(grad)]
            block.fill(0)
            taps(grad, block, 0, temp)
            gx[images] = block[center]

    run_chunks(work, chunks, workers=_workers())
    return gx


def _check_float(op: str, name: str, t: Any) -> None:
    if t.dtype.kind != "f":
        hint = "; convert it first, e.g. x.float()" if name == "input" else ""
        raise TypeError(f"{op}: expected a floating-point {name}, got dtype {t.dtype}{hint}")


@functools.cache
def _tensor_type() -> type:
    from wally.tensor import Tensor  # not at import: wally.tensor imports this module

    return Tensor


def _check_tensor(op: str, name: str, t: Any, optional: bool = False) -> None:
    """PyTorch's ``conv2d() received an invalid combination of arguments``, said plainly."""
    if not isinstance(t, _tensor_type()) and not (optional and t is None):
        expected = "a Tensor or None" if optional else "a Tensor"
        raise TypeError(
            f"{op}: expected {name} to be {expected}, got {type(t).__name__}"
            + (" (wrap it with wally.tensor(...))" if isinstance(t, list | tuple) else "")
        )


def check_operands(op: str, nd: int, input: Any, weight: Any, bias: Any,
                   weight_layout: str) -> None:
    """What every convolution (plain or transposed) asks of its operands: tensors, a
    ``(N, C, *spatial)`` or unbatched input, an ``nd + 2``-D weight laid out as
    ``weight_layout``, floating point, and one dtype for input, weight and bias."""
    _check_tensor(op, "input", input)
    _check_tensor(op, "weight", weight)
    _check_tensor(op, "bias", bias, optional=True)
    check_rank(op, nd, input)
    if weight.ndim != nd + 2:
        raise ValueError(
            f"{op}: expected a {nd + 2}-D weight ({weight_layout}, {_KERNELS[nd]}), got shape "
            f"{tuple(weight.shape)}"
        )
    _check_float(op, "input", input)
    _check_float(op, "weight", weight)
    if weight.dtype != input.dtype:
        raise TypeError(
            f"{op}: input dtype {input.dtype} and weight dtype {weight.dtype} should be the same"
        )
    if bias is not None:
        _check_float(op, "bias", bias)
        if bias.dtype != input.dtype:
            raise TypeError(
                f"{op}: input dtype {input.dtype} and bias dtype {bias.dtype} should be the same"
            )


def check_groups(op: str, groups: Any) -> None:
    """``groups``: a positive integer (layers at construction, functions at the call)."""
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")


def _conv(
    op: str,
    nd: int,
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: int | Sequence[int],
    padding: str | int | Sequence[int],
    dilation: int | Sequence[int],
    groups: int,
) -> Tensor:
    check_operands(op, nd, input, weight, bias, "out_channels, in_channels/groups")
    if bias is not None:
        if tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(
                f"{op}: expected a bias of shape ({weight.shape[0]},), one per output channel, "
                f"got shape {tuple(bias.shape)}"
            )
    check_groups(op, groups)
    out_channels = weight.shape[0]
    in_channels = input.shape[-nd - 1]
    if out_channels == 0:
        raise ValueError(
            f"{op}: expected a weight with at least one output channel, got weight shape "
            f"{tuple(weight.shape)}"
        )
    if 0 in input.shape[-nd:]:
        raise ValueError(
            f"{op}: expected an input of non-zero spatial size (only the batch or the channels "
            f"may be 0), got shape {tuple(input.shape)}"
        )
    if out_channels % groups:
        raise ValueError(
            f"{op}: out_channels ({out_channels}, weight shape {tuple(weight.shape)}) must be "
            f"divisible by groups ({groups})"
        )
    if in_channels % groups:
        raise ValueError(
            f"{op}: in_channels ({in_channels}, input shape {tuple(input.shape)}) must be "
            f"divisible by groups ({groups})"
        )
    if in_channels != weight.shape[1] * groups:
        raise ValueError(
            f"{op}: expected input with {weight.shape[1] * groups} channels (weight shape "
            f"{tuple(weight.shape)}, groups={groups}), got {in_channels} channels (input shape "
            f"{tuple(input.shape)})"
        )
    kernel = tuple(weight.shape[2:])
    spatial = tuple(input.shape[-nd:])
    # repr tells 1 from True and 1.0 (which the checks reject), and lists need no hashing.
    key = (op, nd, kernel, spatial, repr((stride, padding, dilation)))
    geometry = _GEOMETRY.get(key)
    if geometry is None:
        # The settings were checked once (at a layer's construction, or the first such call).
        geometry = conv_settings(op, nd, kernel, stride, padding, dilation)
        strides, pairs, dilations = geometry
        output_shape(op, spatial, kernel, strides, pairs, dilations)
        if len(_GEOMETRY) > 1024:
            _GEOMETRY.clear()
        _GEOMETRY[key] = geometry
    return ConvNd(*geometry, groups, op)(input, weight, bias)


# A layer passes the same arguments on every call: the window fit is checked once per shape.
_GEOMETRY: dict[tuple[Any, ...], tuple[tuple[int, ...], Pairs, tuple[int, ...]]] = {}


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """1-D cross-correlation over sequences (audio, text, time series), PyTorch's ``F.conv1d``.

    ``[H]i,d = Σa Σc [V]a,c,d [X]s·i+r·a−p,c + [b]d`` with ``s`` the stride, ``r`` the
    dilation and ``p`` the left padding: the note's ``[H]i,j,d = Σa Σb Σc [V]a,b,c,d
    [X]i+a,j+b,c`` along one axis.  ``padding`` is an int, ``'valid'`` or ``'same'``; see
    :func:`conv2d` for the other arguments.

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)``, weight ``(C_out, C_in/groups, k)``, bias
        ``(C_out,)`` → output ``(N, C_out, L_out)`` with
        ``L_out = floor((L + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> x = wally.randn(8, 4, 100)           # 8 sequences, 4 channels, length 100
        >>> F.conv1d(x, wally.randn(16, 4, 5), padding="same").shape
        wally.Size([8, 16, 100])
    """
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation with channels, PyTorch's ``F.conv2d``.

    The note's layer: ``[H]i,j,d = Σa Σb Σc [V]a,b,c,d [X]i+a,j+b,c`` (+ a bias per output
    channel ``d``), where ``c`` runs over input channels and ``(a, b)`` over the kernel.  With
    stride ``s``, dilation ``r`` and padding ``p`` the input index is ``s·i + r·a − p``.  What is
    computed is cross-correlation: the kernel is not flipped, unlike the mathematical
    ``(f*g)(i, j) = Σa Σb f(a, b) g(i − a, j − b)``.

    Arguments follow PyTorch: ``stride``, ``padding`` (an int, a pair, ``'valid'`` for none or
    ``'same'`` to keep the size; ``'same'`` needs stride 1 and pads an even kernel one more on
    the right), ``dilation`` (gaps between kernel taps: the receptive field grows to
    ``r·(k − 1) + 1``) and ``groups`` (channels split into ``groups`` independent convolutions;
    ``groups = C_in`` is a depthwise convolution).

    Cost: ``k_h·k_w·(C_in/groups)·C_out + C_out`` parameters, ``k_h·k_w·(C_in/groups)·C_out``
    multiply-adds per output position.

    Shape:
        input ``(N, C_in, H, W)`` or ``(C_in, H, W)``, weight ``(C_out, C_in/groups, k_h, k_w)``,
        bias ``(C_out,)`` → output ``(N, C_out, H_out, W_out)`` with, per axis,
        ``n_out = floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> x = wally.randn(256, 1, 28, 28)      # a batch of MNIST digits
        >>> w = wally.randn(6, 1, 5, 5)          # LeNet's first layer
        >>> F.conv2d(x, w, padding=2).shape
        wally.Size([256, 6, 28, 28])
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """3-D cross-correlation over volumes or video, PyTorch's ``F.conv3d``.

    ``[H]i,j,l,d = Σa Σb Σe Σc [V]a,b,e,c,d [X]i+a,j+b,l+e,c + [b]d``: the note's
    ``[H]i,j,d = Σa Σb Σc [V]a,b,c,d [X]i+a,j+b,c`` with one more spatial axis (stride,
    padding and dilation enter as in :func:`conv2d`).

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``, weight
        ``(C_out, C_in/groups, k_d, k_h, k_w)``, bias ``(C_out,)`` → output
        ``(N, C_out, D_out, H_out, W_out)`` with, per axis,
        ``n_out = floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> x = wally.randn(2, 3, 8, 32, 32)     # two 8-frame clips
        >>> F.conv3d(x, wally.randn(4, 3, 3, 3, 3), padding=1).shape
        wally.Size([2, 4, 8, 32, 32])
    """
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def _blocks(
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Pairs,
    dilation: Sequence[int],
) -> int:
    """The number of sliding windows (``L`` of :func:`unfold`), also for an empty batch."""
    return volume(
        [
            output_size(n, k, s, lo + hi, d)
            for n, k, s, (lo, hi), d in zip(spatial, kernel, stride, padding, dilation, strict=True)
        ]
    )


class Unfold(Function):
    """im2col with PyTorch's layout: ``(N, C, *spatial)`` → ``(N, C·∏k, L)``."""

    def __init__(
        self,
        kernel_size: tuple[int, ...],
        stride: tuple[int, ...],
        padding: Pairs,
        dilation: tuple[int, ...],
    ) -> None:
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation

    def forward(self, x: ndarray) -> ndarray:
        self.unbatched = x.ndim == len(self.kernel_size) + 1
        if self.unbatched:
            x = x[None]
        self.input_shape = x.shape
        cols = im2col(x, self.kernel_size, self.stride, self.padding, self.dilation)
        blocks = _blocks(x.shape[2:], self.kernel_size, self.stride, self.padding, self.dilation)
        y = xp.ascontiguousarray(cols.reshape(cols.shape[0], x.shape[0], blocks).swapaxes(0, 1))
        return y[0] if self.unbatched else y

    def backward(self, gy: ndarray) -> ndarray:
        if self.unbatched:
            gy = gy[None]
        gcols = xp.ascontiguousarray(gy.swapaxes(0, 1)).reshape(gy.shape[1], -1)
        gx = col2im(
            gcols, self.input_shape, self.kernel_size, self.stride, self.padding, self.dilation
        )
        return gx[0] if self.unbatched else gx


class Fold(Function):
    """col2im with PyTorch's layout: ``(N, C·∏k, L)`` → ``(N, C, *output_size)``; the adjoint
    of :class:`Unfold`."""

    def __init__(
        self,
        output_size: tuple[int, ...],
        kernel_size: tuple[int, ...],
        stride: tuple[int, ...],
        padding: Pairs,
        dilation: tuple[int, ...],
    ) -> None:
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation

    def forward(self, x: ndarray) -> ndarray:
        self.unbatched = x.ndim == 2
        if self.unbatched:
            x = x[None]
        batch, rows = x.shape[:2]
        taps = 1
        for k in self.kernel_size:
            taps *= k
        shape = (batch, rows // taps, *self.output_size)
        cols = xp.ascontiguousarray(x.swapaxes(0, 1)).reshape(rows, -1)
        y = col2im(cols, shape, self.kernel_size, self.stride, self.padding, self.dilation)
        return y[0] if self.unbatched else y

    def backward(self, gy: ndarray) -> ndarray:
        if self.unbatched:
            gy = gy[None]
        cols = im2col(gy, self.kernel_size, self.stride, self.padding, self.dilation)
        blocks = _blocks(gy.shape[2:], self.kernel_size, self.stride, self.padding, self.dilation)
        gx = xp.ascontiguousarray(cols.reshape(cols.shape[0], gy.shape[0], blocks).swapaxes(0, 1))
        return gx[0] if self.unbatched else gx


def unfold(
    input: Tensor,
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    stride: int | Sequence[int] = 1,
) -> Tensor:
    """Extract every sliding window as a column (im2col), PyTorch's ``F.unfold``.

    Column ``l`` (a window position, in row-major order) holds the window's values, channel by
    channel and kernel tap by kernel tap: ``[Y]n,(c,a,b),l = [X]n,c,s·i+r·a−p,s·j+r·b−p``
    where ``l = i·W_out + j``.  A convolution is then ``W.view(C_out, -1) @ unfold(x)``.

    Shape:
        input ``(N, C, H, W)`` or ``(C, H, W)`` → output ``(N, C·k_h·k_w, L)`` or
        ``(C·k_h·k_w, L)`` with ``L = H_out·W_out`` and, per axis,
        ``n_out = floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> F.unfold(wally.randn(2, 3, 5, 5), kernel_size=3).shape
        wally.Size([2, 27, 9])
    """
    _check_tensor("unfold", "input", input)
    _check_float("unfold", "input", input)
    if input.ndim not in (3, 4):
        raise ValueError(
            f"unfold: expected a 3-D or 4-D input (C, H, W) or (N, C, H, W), got shape "
            f"{tuple(input.shape)}"
        )
    kernel, dilations, pairs, strides = unfold_settings(
        "unfold", kernel_size, dilation, padding, stride
    )
    output_shape("unfold", input.shape[-2:], kernel, strides, pairs, dilations)
    return Unfold(kernel, strides, pairs, dilations)(input)


def fold(
    input: Tensor,
    output_size: int | Sequence[int],
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    stride: int | Sequence[int] = 1,
) -> Tensor:
    """Sum sliding-window columns back into an image (col2im), PyTorch's ``F.fold``.

    The adjoint of :func:`unfold`: every entry ``[Y]n,(c,a,b),l`` is added to the pixel it
    would have been read from, so overlapping windows add up and padding is dropped.
    ``fold(unfold(x))`` multiplies each pixel by the number of windows that cover it.

    Shape:
        input ``(N, C·k_h·k_w, L)`` or ``(C·k_h·k_w, L)`` → output ``(N, C, *output_size)`` or
        ``(C, *output_size)``, where ``L`` must equal the number of windows that
        ``output_size`` holds, ``∏ floor((n + 2p − d·(k − 1) − 1)/s) + 1``.

    Example::

        >>> cols = F.unfold(wally.ones(1, 1, 4, 4), kernel_size=2)
        >>> F.fold(cols, output_size=(4, 4), kernel_size=2)[0, 0, 0]
        tensor([1., 2., 2., 1.])
    """
    _check_tensor("fold", "input", input)
    _check_float("fold", "input", input)
    if input.ndim not in (2, 3):
        raise ValueError(
            f"fold: expected a 2-D or 3-D input (C·kH·kW, L) or (N, C·kH·kW, L), got shape "
            f"{tuple(input.shape)}"
        )
    size = ntuple(output_size, 2, "output_size", "fold")
    check_positive(size, "output_size", "fold")
    kernel, dilations, pairs, strides = unfold_settings(
        "fold", kernel_size, dilation, padding, stride
    )
    rows, length = input.shape[-2:]
    taps = kernel[0] * kernel[1]
    if rows % taps:
        raise ValueError(
            f"fold: expected input's dimension {input.ndim - 2} to be divisible by the number "
            f"of kernel taps {kernel[0]}·{kernel[1]} = {taps}, got {rows} (input shape "
            f"{tuple(input.shape)})"
        )
    blocks = output_shape("fold", size, kernel, strides, pairs, dilations)
    if blocks[0] * blocks[1] != length:
        raise ValueError(
            f"fold: output_size={size}, kernel_size={kernel}, dilation={dilations}, "
            f"padding={tuple(p for p, _ in pairs)}, stride={strides} give {blocks[0]}·"
            f"{blocks[1]} = {blocks[0] * blocks[1]} windows, but the input has L={length} "
            f"(input shape {tuple(input.shape)})"
        )
    return Fold(size, kernel, strides, pairs, dilations)(input)
