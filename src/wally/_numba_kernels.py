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


# ----- ReLU's gradient --------------------------------------------------------------------------
@njit(**_JIT)
def relu_backward(gy: Any, y: Any, out: Any) -> None:
    """``out = gy · [y > 0]`` on flat arrays in one pass (NumPy: the mask, then the product);
    ``0 · gy`` where ``y ≤ 0``, so a NaN or infinite ``gy`` gives NaN, as NumPy's does."""
    g, v, o = gy[:out.shape[0]], y[:out.shape[0]], out
    for i in range(o.shape[0]):
        o[i] = g[i] if v[i] > 0 else 0 * g[i]
