"""The compiled kernels of :mod:`wally.backends.accel` (numba, imported on first use only).

Every kernel is ``@njit(nogil=True, cache=False, fastmath=False)``:

* ``nogil``: a chunk of work is one call that never takes the interpreter lock, so wally's own
  threads (:func:`wally._parallel.run_chunks`) really run at once;
* ``cache=False``: numba's on-disk cache index is a pickle, and wally never unpickles;
* ``fastmath=False``: every sum is added in the order written here (no reassociation, no
  fused multiply-add), so the bits depend on the kernel alone, never on the chunking.

Inner loops run over 1-D slices (``dst = acc[:n]``, then ``dst[p]``): numba then knows the
index is in range and LLVM vectorises the loop (indexing ``acc[off + p]`` directly ran 5x
slower, measured: 3.6 against 17.7 elements per ns).

Each kernel works on a range of images or planes ``[first, stop)`` of arrays it is handed;
the caller splits the batch into chunks and hands each thread its own scratch buffers.
"""

from __future__ import annotations

from typing import Any

from numba import njit

_JIT: dict[str, Any] = {"nogil": True, "cache": False, "fastmath": False}


# ----- convolution: direct, on the padded image's flat rows ("direct" in wally.backends.conv) --
@njit(**_JIT)
def _pad_image(x: Any, n: int, top: int, left: int, padded_width: int, plane: int,
               padded: Any) -> None:
    """``padded[c·plane + (h + top)·padded_width + w + left] = x[n, c, h, w]``, zero elsewhere."""
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    padded[:] = 0
    for c in range(channels):
        for h in range(height):
            dst = padded[c * plane + (h + top) * padded_width + left:]
            src = x[n, c, h]
            for w in range(width):
                dst[w] = src[w]


@njit(**_JIT)
def conv2d_direct(x: Any, w: Any, b: Any, first: int, stop: int, top: int, bottom: int,
                  left: int, right: int, dil_h: int, dil_w: int, groups: int, y: Any,
                  padded: Any, acc: Any) -> None:
    """``y[n] = b + W ⋆ x[n]`` for images ``first … stop − 1``, stride 1.

    Each image is copied once into ``padded`` (``C`` planes of ``H_pad·W_pad`` plus a tail
    of ``d_w·(k_w − 1)`` zeros), and each output channel is summed in ``acc`` over the
    *wide* rows: output position ``p = oh·W_pad + ow`` for every ``ow < W_pad``, so that tap
    ``(c, i, j)`` reads the contiguous run ``padded[c·plane + i·d_h·W_pad + j·d_w + p]``.
    ``acc[p] = b[o] + Σ_c Σ_i Σ_j w[o, c, i, j] · padded[…]`` added one tap after another
    in that order (up to four taps per pass over ``acc``, the same sum: 2.3 → 1.9 ms for
    LeNet's conv1 at batch 256, bit for bit); the columns ``ow ≥ OW`` are junk and not
    copied out.  ``b`` is empty for no bias.
    """
    height, width = x.shape[2], x.shape[3]
    out_channels, per_group, kh, kw = w.shape
    padded_height, padded_width = height + top + bottom, width + left + right
    out_h = padded_height - dil_h * (kh - 1)
    out_w = padded_width - dil_w * (kw - 1)
    plane = padded_height * padded_width + dil_w * (kw - 1)
    length = out_h * padded_width
    out_per_group = out_channels // groups
    dst = acc[:length]
    for n in range(first, stop):
        _pad_image(x, n, top, left, padded_width, plane, padded)
        for o in range(out_channels):
            start = b[o] if b.shape[0] else 0
            for p in range(length):
                dst[p] = start
            first_channel = (o // out_per_group) * per_group
            for c in range(per_group):
                for i in range(kh):
                    row_at = (first_channel + c) * plane + i * dil_h * padded_width
                    j = 0
                    while j < kw:  # up to four taps a pass: fewer loads and stores of acc
                        at = row_at + j * dil_w
                        if j + 4 <= kw:
                            w0, w1 = w[o, c, i, j], w[o, c, i, j + 1]
                            w2, w3 = w[o, c, i, j + 2], w[o, c, i, j + 3]
                            s0 = padded[at:at + length]
                            s1 = padded[at + dil_w:at + dil_w + length]
                            s2 = padded[at + 2 * dil_w:at + 2 * dil_w + length]
                            s3 = padded[at + 3 * dil_w:at + 3 * dil_w + length]
                            for p in range(length):
                                dst[p] = (((dst[p] + w0 * s0[p]) + w1 * s1[p]) + w2 * s2[p]) \
                                    + w3 * s3[p]
                            j += 4
                        elif j + 2 <= kw:
                            w0, w1 = w[o, c, i, j], w[o, c, i, j + 1]
                            s0 = padded[at:at + length]
                            s1 = padded[at + dil_w:at + dil_w + length]
                            for p in range(length):
                                dst[p] = (dst[p] + w0 * s0[p]) + w1 * s1[p]
                            j += 2
                        else:
                            w0 = w[o, c, i, j]
                            s0 = padded[at:at + length]
                            for p in range(length):
                                dst[p] += w0 * s0[p]
                            j += 1
            out = y[n, o]
            for oh in range(out_h):
                row = out[oh]
                src = acc[oh * padded_width:]
                for ow in range(out_w):
                    row[ow] = src[ow]


# ----- depthwise weight gradient ("depthwise-direct" in wally.backends.conv) --------------------
@njit(**_JIT)
def depthwise_weight_grad(x: Any, gy: Any, first: int, stop: int, top: int, bottom: int,
                          left: int, right: int, dil_h: int, dil_w: int, part: Any,
                          padded: Any, acc: Any) -> None:
    """``part[c, i, j] = Σ_w Σ_n Σ_oh dY[n, c, oh, w] · x_pad[n, c, oh + i·d_h, w + j·d_w]``
    over images ``first … stop − 1``, stride 1, one filter per channel.

    Each image is padded once (:func:`_pad_image`); then, for each channel, tap and output row,
    the row's products are added into that tap's column sums ``acc[c, tap, :OW]`` (a loop that
    writes one array, which LLVM vectorises), images and rows in order; at the end each tap's
    column sums are added left to right.  A fixed order whatever the chunk's thread.
    """
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    out_h, out_w = gy.shape[2], gy.shape[3]
    kh, kw = part.shape[1], part.shape[2]
    padded_height, padded_width = height + top + bottom, width + left + right
    plane = padded_height * padded_width + dil_w * (kw - 1)
    if (out_h != padded_height - dil_h * (kh - 1) or out_w != padded_width - dil_w * (kw - 1)
            or gy.shape[1] != channels or part.shape[0] != channels
            or padded.shape[0] < channels * plane or acc.shape[0] != channels
            or acc.shape[1] != kh * kw or acc.shape[2] != out_w
            or not 0 <= first <= stop <= min(x.shape[0], gy.shape[0])):
        raise ValueError("depthwise_weight_grad: the buffers do not match the images")
    acc[:] = 0
    for n in range(first, stop):
        _pad_image(x, n, top, left, padded_width, plane, padded)
        for c in range(channels):
            for i in range(kh):
                for j in range(kw):
                    sums = acc[c, i * kw + j]
                    for oh in range(out_h):
                        g = gy[n, c, oh]
                        at = c * plane + (oh + i * dil_h) * padded_width + j * dil_w
                        src = padded[at:at + out_w]
                        for w in range(out_w):
                            sums[w] += g[w] * src[w]
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                sums = acc[c, i * kw + j]
                total = sums[0]
                for w in range(1, out_w):
                    total += sums[w]
                part[c, i, j] = total


# ----- ReLU's gradient --------------------------------------------------------------------------
@njit(**_JIT)
def relu_backward(gy: Any, y: Any, out: Any) -> None:
    """``out = gy · [not y ≤ 0]`` on flat arrays in one pass (NumPy: the mask, then the
    product); ``0 · gy`` where ``y ≤ 0``, so a NaN or infinite ``gy`` gives NaN, as NumPy's
    does, and a NaN ``y`` passes ``gy``."""
    g, v, o = gy[:out.shape[0]], y[:out.shape[0]], out
    for i in range(o.shape[0]):
        o[i] = 0 * g[i] if v[i] <= 0 else g[i]


# ----- Winograd F(2×2, 3×3): the data transforms ("winograd" in wally.backends.conv) ----------
@njit(**_JIT)
def winograd_input(x: Any, first: int, stop: int, row0: int, top: int, left: int, d: Any,
                   t: Any, v: Any) -> None:
    """``V = Bᵀ d B`` for tile rows ``row0 …`` of images ``first … stop − 1``, as
    :func:`wally._winograd.winograd_correlate`'s NumPy steps 1 and 2 compute it (the same sums
    in the same order, so the same bits), channels last: ``v (16, rows, tiles_w, n, C)``.

    The chunk's padded rows go into ``d (2·rows + 2, cols, n, C)`` (zero outside ``x``); then
    one tile row at a time, along its four rows into ``t (4, cols, n, C)`` (``d0 − d2``,
    ``d1 + d2``, ``d2 − d1``, ``d1 − d3``) and along the columns into ``v``.  Every sum runs
    over a contiguous run of channels (one output array per loop, so LLVM vectorises it).
    """
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    rows, tiles_w, images = v.shape[1], v.shape[2], v.shape[3]
    cols = d.shape[1]
    if (cols != 2 * tiles_w + 2 or left < 0 or left + width > cols or images != stop - first
            or not 0 <= first <= stop <= x.shape[0] or d.shape[0] != 2 * rows + 2
            or d.shape[2] != images or d.shape[3] != channels or v.shape[0] != 16
            or v.shape[4] != channels or t.shape[0] != 4 or t.shape[1] != cols
            or t.shape[2] != images or t.shape[3] != channels):
        raise ValueError("winograd_input: the buffers do not match the chunk")
    run = images * channels  # one padded pixel of every image of the chunk
    flat = d.reshape(-1)
    flat[:] = 0
    first_row = 2 * row0 - top
    for i in range(d.shape[0]):
        h = first_row + i
        if 0 <= h < height:
            for n in range(first, stop):
                for c in range(channels):
                    src = x[n, c, h]
                    at = (i * cols + left) * run + (n - first) * channels + c
                    dst = flat[at:at + width * run:run]
                    for j in range(width):
                        dst[j] = src[j]
    row = cols * run
    t_flat, v_flat = t.reshape(4, -1), v.reshape(16, -1)
    for a in range(rows):
        d0 = flat[2 * a * row:(2 * a + 1) * row]
        d1 = flat[(2 * a + 1) * row:(2 * a + 2) * row]
        d2 = flat[(2 * a + 2) * row:(2 * a + 3) * row]
        d3 = flat[(2 * a + 3) * row:(2 * a + 4) * row]
        _difference(d0, d2, t_flat[0])
        _total(d1, d2, t_flat[1])
        _difference(d2, d1, t_flat[2])
        _difference(d1, d3, t_flat[3])
        for k in range(4):
            e = t_flat[k]
            for b in range(tiles_w):
                col = 2 * b * run  # the tile's first column
                e0, e1 = e[col:col + run], e[col + run:col + 2 * run]
                e2, e3 = e[col + 2 * run:col + 3 * run], e[col + 3 * run:col + 4 * run]
                at = (a * tiles_w + b) * run
                _difference(e0, e2, v_flat[4 * k, at:at + run])
                _total(e1, e2, v_flat[4 * k + 1, at:at + run])
                _difference(e2, e1, v_flat[4 * k + 2, at:at + run])
                _difference(e1, e3, v_flat[4 * k + 3, at:at + run])


@njit(**_JIT)
def _difference(p: Any, q: Any, out: Any) -> None:
    for i in range(out.shape[0]):
        out[i] = p[i] - q[i]


@njit(**_JIT)
def _total(p: Any, q: Any, out: Any) -> None:
    for i in range(out.shape[0]):
        out[i] = p[i] + q[i]


@njit(**_JIT)
def winograd_output(m: Any, bias: Any, first: int, row0: int, y: Any, s: Any,
                    blocks: Any) -> None:
    """``Y = Aᵀ M A`` from ``m (16, rows, tiles_w, n, O)`` into ``y (N, O, H_out, W_out)``
    (images from ``first``, output rows from ``2·row0``, cropped at odd edges), as the NumPy
    steps 4 and 5 compute it (the same sums in the same order): ``bias`` (empty for none)
    added to ``M[1, 1]``, then along the rows into ``s (8, tiles_w, n, O)`` (``m0 + m1 + m2``,
    ``m1 − m2 − m3``), along the columns into ``blocks (4, tiles_w, n, O)``, one tile row at a
    time, and each 2×2 block into its place in ``y``.
    """
    rows, tiles_w, images, out_channels = m.shape[1], m.shape[2], m.shape[3], m.shape[4]
    out_h, out_w = y.shape[2], y.shape[3]
    if (m.shape[0] != 16 or y.shape[1] != out_channels or 2 * tiles_w < out_w
            or first < 0 or first + images > y.shape[0] or row0 < 0
            or (bias.shape[0] != 0 and bias.shape[0] != out_channels)
            or s.shape[0] != 8 or s.shape[1] != tiles_w or s.shape[2] != images
            or s.shape[3] != out_channels or blocks.shape[0] != 4 or blocks.shape[1] != tiles_w
            or blocks.shape[2] != images or blocks.shape[3] != out_channels):
        raise ValueError("winograd_output: the buffers do not match the chunk")
    if bias.shape[0]:
        m5 = m[5].reshape(-1, out_channels)
        for p in range(m5.shape[0]):
            dst = m5[p]
            for o in range(out_channels):
                dst[o] += bias[o]
    s_flat, b_flat = s.reshape(8, -1), blocks.reshape(4, -1)
    for a in range(rows):
        for k in range(4):
            q0, q1 = m[k, a].reshape(-1), m[4 + k, a].reshape(-1)
            q2, q3 = m[8 + k, a].reshape(-1), m[12 + k, a].reshape(-1)
            top_row, bottom_row = s_flat[k], s_flat[4 + k]
            for p in range(top_row.shape[0]):
                top_row[p] = (q0[p] + q1[p]) + q2[p]
            for p in range(bottom_row.shape[0]):
                bottom_row[p] = (q1[p] - q2[p]) - q3[p]
        for i in range(2):
            s0, s1, s2, s3 = s_flat[4 * i], s_flat[4 * i + 1], s_flat[4 * i + 2], s_flat[4 * i + 3]
            left_col, right_col = b_flat[2 * i], b_flat[2 * i + 1]
            for p in range(left_col.shape[0]):
                left_col[p] = (s0[p] + s1[p]) + s2[p]
            for p in range(right_col.shape[0]):
                right_col[p] = (s1[p] - s2[p]) - s3[p]
        for i in range(2):
            h = 2 * (row0 + a) + i
            if h >= out_h:
                break
            for j in range(2):
                block = blocks[2 * i + j]
                count = (out_w - j + 1) // 2  # columns j, j + 2, … inside the output
                for n in range(images):
                    for o in range(out_channels):
                        out = y[first + n, o, h]
                        for b in range(count):
                            out[2 * b + j] = block[b, n, o]
