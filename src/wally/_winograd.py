"""Winograd's minimal filtering F(2×2, 3×3) for 3×3, stride-1 convolutions (Lavin & Gray 2015).

Each 2×2 block of outputs is computed from the 4×4 input tile that covers it (tiles overlap by
two pixels, so they start every second row and column) with 16 multiplies per channel pair
instead of 36::

    U = G g Gᵀ               g: one 3×3 kernel slice w[o, c]          → 4×4
    V = Bᵀ d B               d: one 4×4 input tile of channel c        → 4×4
    M[ξ, ν] = Σ_c U[ξ, ν]o,c · V[ξ, ν]c,tile                           (16 GEMMs)
    Y = Aᵀ M A               → the 2×2 outputs of that tile

with ::

    Bᵀ = [[1,  0, -1,  0],      G = [[1,    0,   0 ],      Aᵀ = [[1, 1,  1,  0],
          [0,  1,  1,  0],           [1/2,  1/2, 1/2],            [0, 1, -1, -1]]
          [0, -1,  1,  0],           [1/2, -1/2, 1/2],
          [0,  1,  0, -1]]           [0,    0,   1 ]]

The sum over channels at each of the 16 tile positions ``(ξ, ν)`` is one GEMM, so the
multiplies drop 2.25× (16 instead of 36 per output block and channel pair); the transforms
cost additions that grow with the image but not with the channel product, which is why this
pays off where maps are large relative to the channel count (see :func:`worth_it`).

Layout: a chunk of images (or of tile rows of one image) is zero-padded and turned
channels-last, ``(rows, cols, images, C)``, so that every addition of the two transforms runs
over long contiguous runs of channels; the transposed weights are ``(16, C, O)`` and each
GEMM is ``V (tiles × C) @ U (C × O)``.  The bias is added to ``M[1, 1]`` (every output of a
tile takes ``M[1, 1]`` once with a plus sign).

With the accelerator's ``winograd`` kernel switched on (:mod:`wally.backends.accel`, off by
default), steps 1-2 and 4-5 of each chunk are one compiled call each
(:func:`wally._numba_kernels.winograd_input` and ``winograd_output``), which add the same
values in the same order as the NumPy steps here: the same bits, 10-20% faster at one thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from wally import backend
from wally._parallel import (
    allocate,
    one_blas_thread,
    run_chunks,
    split_threads,
    workspace,
)
from wally.backend import ndarray, xp
from wally.backends import accel, tuning

__all__ = ["winograd_correlate", "transform_weights", "worth_it"]

Pairs = tuple[tuple[int, int], ...]  # ((top, bottom), (left, right))
Chunk = tuple[slice, slice]  # (images, tile rows)

_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))


def transform_weights(w: ndarray, out: ndarray | None = None) -> ndarray:
    """``U = G g Gᵀ`` for every ``(o, c)``, as a ``(16, C, O)`` view (position ``4ξ + ν``).

    One GEMM ``(G ⊗ G) (16 × 9) @ wᵀ (9 × O·C)``, since ``U[ξ, ν] = Σ_ab G[ξ, a] g[a, b]
    G[ν, b]``, reading ``w`` in place (``wᵀ`` is a transposed view, no copy) and writing a
    ``(16, O, C)`` array into ``out`` (a flat buffer of at least ``16·C·O`` values) if given;
    the GEMMs read its ``(C, O)`` matrices transposed.  Computed in float32 for float16.
    """
    out_channels, channels = w.shape[:2]
    dtype = _compute_dtype(w.dtype)
    g = xp.asarray(_G, dtype=dtype)
    taps = w.reshape(out_channels * channels, 9).astype(dtype, copy=False)
    if out is None:
        out = xp.empty(16 * channels * out_channels, dtype=dtype)
    u = out[: 16 * channels * out_channels].reshape(16, out_channels * channels)
    with one_blas_thread(16 * 9 * out_channels * channels):
        backend.matmul(xp.kron(g, g), taps.T, out=u)
    return u.reshape(16, out_channels, channels).transpose(0, 2, 1)


def _compute_dtype(dtype: Any) -> Any:
    return xp.float32 if xp.dtype(dtype).itemsize < 4 else xp.dtype(dtype)


def worth_it(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    padding: Pairs,
    dtype: Any,
) -> bool:
    """Whether :func:`winograd_correlate` should beat the other kernels for this 3×3 problem.

    The GEMMs save ``∝ N·H_out·W_out·C·O`` multiplies; the weight transform and each chunk's
    calls cost about the same whatever the batch, the data transforms ``∝ N·H_out·W_out·(C + O)``.
    So it needs enough channels (32 break even, 16 lose 1.7×, at 1 thread) and enough
    multiply-adds over the whole batch, ``N·H_out·W_out·C·O ≥ tuning.WINOGRAD_MIN_MACS``
    (2²⁶, about 67 million: 64 channels on 32×32 at batch 16, 128 on 16×16 at batch 16 and
    512 on 4×4 at batch 16 all sit there; see ``wally.backends.tuning``).
    """
    if len(x_shape) != 4 or len(w_shape) != 4 or tuple(w_shape[2:]) != (3, 3):
        return False
    if w_shape[1] != x_shape[1] or xp.dtype(dtype).kind != "f":
        return False
    (top, bottom), (left, right) = padding
    out_h = x_shape[2] + top + bottom - 2
    out_w = x_shape[3] + left + right - 2
    pixels = x_shape[0] * max(out_h, 0) * max(out_w, 0)
    channels, out_channels = x_shape[1], w_shape[0]
    return (min(channels, out_channels) >= tuning.WINOGRAD_MIN_CHANNELS
            and pixels * channels * out_channels >= tuning.WINOGRAD_MIN_MACS)


def winograd_correlate(
    x: ndarray,
    w: ndarray,
    b: ndarray | None,
    padding: Pairs,
    *,
    u: ndarray | None = None,
    op: str = "winograd_correlate",
    what: str = "output",
    share: int | None = None,
) -> ndarray:
    """``y = w ⋆ x + b`` (PyTorch's conv2d: stride 1, dilation 1, groups 1) by F(2×2, 3×3).

    ``x (N, C, H, W)``, ``w (O, C, 3, 3)``, ``b (O,)`` or ``None``, ``padding`` =
    ``((top, bottom), (left, right))``; returns ``(N, O, H_out, W_out)`` in ``x``'s dtype,
    C-contiguous.  ``u``, if given, is ``transform_weights(w)`` computed beforehand (a layer
    whose weights do not change can keep it).  ``share``: a thread's share of the memory
    budget in bytes (the caller's, :mod:`wally.backends.conv`), which caps each chunk's
    transformed tiles.  float16 is computed in float32.
    """
    batch, channels, height, width = x.shape
    out_channels = w.shape[0]
    if w.shape[1:] != (channels, 3, 3):
        raise ValueError(
            f"winograd_correlate: expected a (O, {channels}, 3, 3) weight, got {w.shape}"
        )
    (top, bottom), (left, right) = padding
    out_h, out_w = height + top + bottom - 2, width + left + right - 2
    if out_h < 1 or out_w < 1:
        raise ValueError(f"winograd_correlate: padding {padding} leaves no output for {x.shape}")
    dtype = _compute_dtype(x.dtype)
    if u is None:
        u = transform_weights(w, _buffer("u", 16 * channels * out_channels, dtype))
    bias = None if b is None else b.astype(dtype, copy=False)
    y = allocate(op, what, (batch, out_channels, out_h, out_w), x.dtype)
    tiles_h, tiles_w = -(-out_h // 2), -(-out_w // 2)
    chunks = _chunks(batch, tiles_h, tiles_w, max(channels, out_channels), xp.dtype(dtype).itemsize,
                     share)
    images = max(c[0].stop - c[0].start for c in chunks)
    rows = max(c[1].stop - c[1].start for c in chunks)

    compiled = _compiled(x, dtype)
    kernels = accel.kernels() if compiled else None
    no_bias = xp.zeros(0, dtype)

    def work(jobs: Iterator[Chunk]) -> None:
        tiles = _Tiles(x, dtype, top, left, tiles_w, images, rows, compiled)
        n_tiles = rows * tiles_w * images
        m_buf = _buffer("m", 16 * n_tiles * out_channels, dtype)
        s_buf = _buffer("s", 12 * n_tiles * out_channels, dtype)
        for image_slice, row_slice in jobs:
            n = image_slice.stop - image_slice.start
            r = row_slice.stop - row_slice.start
            shape = (r, tiles_w, n)
            # 1-2. V = Bᵀ d B (16, r, tiles_w, n, C).
            v = tiles.transform(image_slice, row_slice)
            # 3. Sixteen GEMMs: M[ξν] (tiles × O) = V[ξν] (tiles × C) @ U[ξν] (C × O).
            m = m_buf[: 16 * r * tiles_w * n * out_channels].reshape(16, *shape, out_channels)
            backend.matmul(v.reshape(16, -1, channels), u, out=m.reshape(16, -1, out_channels))
            if kernels is not None:  # steps 4 and 5 in one compiled call
                size = tiles_w * n * out_channels
                kernels.winograd_output(
                    m, no_bias if bias is None else bias, image_slice.start, row_slice.start,
                    y, s_buf[: 8 * size].reshape(8, tiles_w, n, out_channels),
                    s_buf[8 * size : 12 * size].reshape(4, tiles_w, n, out_channels))
                continue
            if bias is not None:
                m[5] += bias
            # 4. Y = Aᵀ M A: along the rows into s (2, 4, ...), then along the columns.
            s = s_buf[: 12 * r * tiles_w * n * out_channels].reshape(12, *shape, out_channels)
            for k in range(4):
                _a_transpose(m[k], m[4 + k], m[8 + k], m[12 + k], s[k], s[4 + k])
            for i in range(2):
                _a_transpose(s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3],
                             s[8 + 2 * i], s[9 + 2 * i])
            # 5. The 2×2 blocks into y (N, O, H_out, W_out), cropped at odd edges.
            _scatter(s[8:12], y[image_slice], 2 * row_slice.start, out_h, out_w)

    run_chunks(work, chunks)
    return y


class _Tiles:
    """One thread's buffers for steps 1 and 2 of a chunk, ``V = Bᵀ d B`` of its input tiles,
    by the compiled kernel (:func:`wally._numba_kernels.winograd_input`) or by NumPy."""

    def __init__(self, x: ndarray, dtype: Any, top: int, left: int, tiles_w: int, images: int,
                 rows: int, compiled: bool) -> None:
        self.x = xp.ascontiguousarray(x) if compiled else x
        self.top, self.left, self.tiles_w = top, left, tiles_w
        self.cols = 2 * tiles_w + 2  # padded columns
        channels = x.shape[1]
        self.kernels = accel.kernels() if compiled else None
        plane = images * channels * (2 * rows + 2) * self.cols  # one padded chunk
        self.padded = _buffer("padded", 0 if compiled else plane, dtype)
        self.last = _buffer("channels-last", plane, dtype)
        # the row transform's output: the chunk's (NumPy) or one tile row's (compiled)
        self.t = _buffer("rows", 4 * (1 if compiled else rows) * self.cols * images * channels,
                         dtype)
        self.v = _buffer("v", 16 * rows * tiles_w * images * channels, dtype)

    def transform(self, image_slice: slice, row_slice: slice) -> ndarray:
        """``V (16, r, tiles_w, n, C)`` of the chunk's tiles (position ``4ξ + ν`` first)."""
        x, cols, tiles_w = self.x, self.cols, self.tiles_w
        n, channels = image_slice.stop - image_slice.start, x.shape[1]
        r = row_slice.stop - row_slice.start
        v = self.v[: 16 * r * tiles_w * n * channels].reshape(16, r, tiles_w, n, channels)
        if self.kernels is not None:
            d = self.last[: (2 * r + 2) * cols * n * channels].reshape(2 * r + 2, cols, n,
                                                                          channels)
            t = self.t[: 4 * cols * n * channels].reshape(4, cols, n, channels)
            self.kernels.winograd_input(x, image_slice.start, image_slice.stop,
                                        row_slice.start, self.top, self.left, d, t, v)
            return v
        # 1. The zero-padded input rows of this chunk, channels last: (2r + 2, cols, n, C).
        chunk = _pad(x, image_slice, 2 * row_slice.start - self.top, 2 * r + 2, self.left, cols,
                     self.padded)
        d = self.last[: chunk.size].reshape(2 * r + 2, cols, n, channels)
        xp.copyto(d, chunk.transpose(2, 3, 0, 1))
        # 2. V = Bᵀ d B: first along the rows (every second row starts a tile) ...
        t = self.t[: 4 * r * cols * n * channels].reshape(4, r, cols, n, channels)
        _b_transpose(d[0 : 2 * r : 2], d[1 : 2 * r + 1 : 2], d[2 : 2 * r + 2 : 2],
                     d[3 : 2 * r + 3 : 2], t)
        # ... then along the columns, into V.
        for k in range(4):
            e = t[k]
            _b_transpose(e[:, 0 : 2 * tiles_w : 2], e[:, 1 : 2 * tiles_w + 1 : 2],
                         e[:, 2 : 2 * tiles_w + 2 : 2], e[:, 3 : 2 * tiles_w + 3 : 2],
                         v[4 * k : 4 * k + 4])
        return v


def _compiled(x: ndarray, dtype: Any) -> bool:
    """Whether the compiled transforms run (:mod:`wally.backends.accel`'s ``winograd``)."""
    return (accel.is_enabled("winograd") and x.dtype == dtype and x.dtype.isnative
            and x.dtype.name in ("float32", "float64"))


def _buffer(tag: str, size: int, dtype: Any) -> ndarray:
    if size * xp.dtype(dtype).itemsize <= tuning.WINOGRAD_KEEP_BYTES:
        return workspace("winograd-" + tag, size, dtype)
    return xp.empty(size, dtype=dtype)


def _b_transpose(d0: ndarray, d1: ndarray, d2: ndarray, d3: ndarray, out: ndarray) -> None:
    """``out[k] = Σ_j Bᵀ[k, j] d_j``: ``d0 − d2``, ``d1 + d2``, ``d2 − d1``, ``d1 − d3``."""
    xp.subtract(d0, d2, out=out[0])
    xp.add(d1, d2, out=out[1])
    xp.subtract(d2, d1, out=out[2])
    xp.subtract(d1, d3, out=out[3])


def _a_transpose(
    m0: ndarray, m1: ndarray, m2: ndarray, m3: ndarray, out0: ndarray, out1: ndarray
) -> None:
    """``Aᵀ m``: ``out0 = m0 + m1 + m2``, ``out1 = m1 − m2 − m3``."""
    xp.add(m0, m1, out=out0)
    out0 += m2
    xp.subtract(m1, m2, out=out1)
    out1 -= m3


def _pad(
    x: ndarray, images: slice, row0: int, n_rows: int, left: int, n_cols: int, buffer: ndarray
) -> ndarray:
    """``x[images]`` rows ``row0 .. row0 + n_rows`` and columns ``-left .. n_cols - left``,
    zero outside ``x``: an ``(n, C, n_rows, n_cols)`` view of ``buffer``."""
    n, channels, height, width = (images.stop - images.start, *x.shape[1:])
    out = buffer[: n * channels * n_rows * n_cols].reshape(n, channels, n_rows, n_cols)
    lo, hi = max(row0, 0), min(row0 + n_rows, height)  # rows of x inside the chunk
    c_hi = min(n_cols - left, width)  # columns of x inside (all of them: n_cols ≥ left + W)
    r0, r1 = lo - row0, max(lo, hi) - row0
    out[:, :, :r0] = 0
    out[:, :, r1:] = 0
    out[:, :, r0:r1, :left] = 0
    out[:, :, r0:r1, left + c_hi :] = 0
    if r1 > r0 and c_hi > 0:
        out[:, :, r0:r1, left : left + c_hi] = x[images, :, lo:hi, :c_hi]
    return out


def _scatter(blocks: ndarray, y: ndarray, row0: int, out_h: int, out_w: int) -> None:
    """Blocks ``(4, r, tiles_w, n, O)`` (output ``(i, j)`` of each 2×2 block at ``2i + j``)
    into ``y (n, O, H_out, W_out)`` from output row ``row0``."""
    for i in range(2):
        for j in range(2):
            target = y[:, :, row0 + i : out_h : 2, j:out_w:2][:, :, : blocks.shape[1]]
            h, w = target.shape[2:]
            target[...] = blocks[2 * i + j, :h, :w].transpose(2, 3, 0, 1)


def _chunks(batch: int, tiles_h: int, tiles_w: int, channels: int, itemsize: int,
            share: int | None = None) -> list[Chunk]:
    """Chunks of whole images, or of tile rows of one image, of about ``tuning.TILE_BYTES`` of
    transformed tiles (no more than ``share``, a thread's share of the memory budget, as
    im2col's columns)
    but at least ``tuning.MIN_TILES`` tiles; one image is split so that every thread gets work
    (under :func:`wally.use_deterministic_algorithms`, as for one thread: the chunks, and so
    the GEMMs' shapes and bits, do not depend on the thread count)."""
    most = tuning.TILE_BYTES if share is None else min(tuning.TILE_BYTES, share)
    per_chunk = max(most // (16 * channels * itemsize), tuning.MIN_TILES)  # tiles
    per_image = tiles_h * tiles_w
    threads = split_threads()
    if per_image <= per_chunk and batch >= threads:
        step = max(1, min(per_chunk // per_image, -(-batch // threads)))
        return [(slice(i, min(i + step, batch)), slice(0, tiles_h)) for i in range(0, batch, step)]
    rows = max(1, per_chunk // tiles_w)
    pieces = -(-threads // batch)  # split each image at least this many ways
    rows = max(1, min(rows, -(-tiles_h // pieces)))
    return [
        (slice(i, i + 1), slice(r, min(r + rows, tiles_h)))
        for i in range(batch)
        for r in range(0, tiles_h, rows)
    ]
