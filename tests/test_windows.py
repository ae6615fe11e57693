"""Window helpers: output sizes, argument normalisation, im2col and its adjoint col2im."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from wally._windows import (
    check_positive,
    col2im,
    conv_padding,
    im2col,
    ntuple,
    output_shape,
    output_size,
)
from wally.backends import tuning


def count_windows(n, k, s, p, d, ceil_mode):
    """Window starts enumerated one by one (the definition, not the formula)."""
    extent = d * (k - 1) + 1
    count = 0
    for start in range(0, n + 2 * p + s + extent):
        if start % s:
            continue
        end = start + extent  # exclusive, in padded coordinates
        if end <= n + 2 * p:
            count += 1
        elif ceil_mode and end - (n + 2 * p) < s + 0 and start < n + p:
            # ceil_mode keeps a window overhanging the padded input by less than a stride,
            # provided it starts inside the input or the left padding.
            count += 1
    return count


def naive_im2col(x, k, s, pairs, d):
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    out = [
        (size + lo + hi - dd * (kk - 1) - 1) // ss + 1
        for size, kk, ss, (lo, hi), dd in zip(spatial, k, s, pairs, d, strict=True)
    ]
    cols = np.zeros((c, *k, n, *out), dtype=x.dtype)
    for ci, tap, ni, pos in itertools.product(
        range(c),
        itertools.product(*(range(kk) for kk in k)),
        range(n),
        itertools.product(*(range(o) for o in out)),
    ):
        src = [
            o * ss - lo + t * dd
            for o, ss, (lo, _), t, dd in zip(pos, s, pairs, tap, d, strict=True)
        ]
        if all(0 <= i < size for i, size in zip(src, spatial, strict=True)):
            cols[(ci, *tap, ni, *pos)] = x[(ni, ci, *src)]
    return cols.reshape(c * int(np.prod(k)), -1)


@st.composite
def geometries(draw, max_dims=3):
    nd = draw(st.integers(1, max_dims))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    pairs = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    spatial = []
    for kk, dd, (lo, hi) in zip(k, d, pairs, strict=True):
        extent = dd * (kk - 1) + 1
        spatial.append(draw(st.integers(max(1, extent - lo - hi), extent + 4)))
    n = draw(st.integers(1, 2))
    c = draw(st.integers(1, 3))
    return (n, c, *spatial), k, s, pairs, d


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 12),
    k=st.integers(1, 4),
    s=st.integers(1, 4),
    p=st.integers(0, 2),
    d=st.integers(1, 3),
    ceil_mode=st.booleans(),
)
def test_output_size_counts_windows(n, k, s, p, d, ceil_mode):
    assume(not ceil_mode or 2 * p <= k)  # ceil_mode is a pooling option, where p <= k/2
    expected = count_windows(n, k, s, p, d, ceil_mode)
    if expected == 0:
        assert output_size(n, k, s, 2 * p, d, ceil_mode) <= 0
    else:
        assert output_size(n, k, s, 2 * p, d, ceil_mode) == expected


def test_output_size_examples():
    assert output_size(28, 5, 1, 4) == 28  # LeNet conv1
    assert output_size(14, 5) == 10  # LeNet conv2
    assert output_size(32, 3, 2, 2) == 16
    assert output_size(5, 2, 2, 0, ceil_mode=True) == 3
    assert output_size(4, 2, 2, 0, ceil_mode=True) == 2
    # ceil_mode drops a window that would start in the right padding
    assert output_size(5, 3, 2, 2, ceil_mode=True) == 3


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 10),
    k=st.integers(1, 4),
    s=st.integers(1, 4),
    p=st.integers(0, 2),
    d=st.integers(1, 2),
    ceil_mode=st.booleans(),
)
def test_output_size_matches_torch_pooling(torch, n, k, s, p, d, ceil_mode):
    if 2 * p > k or d * (k - 1) + 1 > n + 2 * p:
        return
    x = torch.zeros(1, 1, n)
    y = torch.nn.functional.max_pool1d(x, k, s, p, d, ceil_mode=ceil_mode)
    assert output_size(n, k, s, 2 * p, d, ceil_mode) == y.shape[-1]


@settings(max_examples=60, deadline=None)
@given(geometry=geometries(), seed=st.integers(0, 2**16))
def test_im2col_matches_loops(geometry, seed):
    shape, k, s, pairs, d = geometry
    x = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_array_equal(im2col(x, k, s, pairs, d), naive_im2col(x, k, s, pairs, d))


@settings(max_examples=60, deadline=None)
@given(geometry=geometries(), seed=st.integers(0, 2**16))
def test_col2im_is_the_adjoint_of_im2col(geometry, seed):
    shape, k, s, pairs, d = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    cols = im2col(x, k, s, pairs, d)
    g = rng.standard_normal(cols.shape)
    back = col2im(g, shape, k, s, pairs, d)
    assert back.shape == shape
    assert back.flags.c_contiguous
    np.testing.assert_allclose(np.vdot(cols, g), np.vdot(x, back), rtol=1e-10, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(geometry=geometries(max_dims=2), seed=st.integers(0, 2**16))
def test_col2im_matches_loops(geometry, seed):
    """col2im(e_j) summed through the naive gather: the transpose of the gather matrix."""
    shape, k, s, pairs, d = geometry
    rng = np.random.default_rng(seed)
    index = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    sources = naive_im2col(index + 1, k, s, pairs, d)  # 0 marks padding
    g = rng.standard_normal(sources.shape)
    expected = np.zeros(int(np.prod(shape)))
    for src, value in zip(sources.ravel(), g.ravel(), strict=True):
        if src:
            expected[int(src) - 1] += value
    np.testing.assert_allclose(col2im(g, shape, k, s, pairs, d).ravel(), expected, atol=1e-12)


def test_im2col_layout_rows_are_channel_then_tap():
    x = np.arange(2 * 3 * 3, dtype=np.float32).reshape(1, 2, 3, 3)
    cols = im2col(x, (2, 2))
    assert cols.shape == (2 * 2 * 2, 1 * 2 * 2)
    # row (c=1, tap=(0, 1)), column (n=0, o=(1, 0)) reads x[0, 1, 1, 1]
    assert cols[1 * 4 + 0 * 2 + 1, 0 * 4 + 1 * 2 + 0] == x[0, 1, 1, 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    x = np.ones((2, 3, 5, 5), dtype=dtype)
    cols = im2col(x, (3, 3), 1, 1)
    assert cols.dtype == dtype and cols.flags.c_contiguous
    assert col2im(cols, x.shape, (3, 3), 1, 1).dtype == dtype


def test_im2col_fills_a_given_buffer():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    buf = np.full((3 * 9, 2 * 36), np.nan, dtype=np.float32)
    cols = im2col(x, (3, 3), 1, 1, out=buf)
    assert np.shares_memory(cols, buf)
    np.testing.assert_array_equal(cols, im2col(x, (3, 3), 1, 1))


def test_ntuple():
    assert ntuple(3, 2, "stride", "conv2d") == (3, 3)
    assert ntuple((1, 2), 2, "stride", "conv2d") == (1, 2)
    assert ntuple([4], 3, "stride", "conv3d") == (4, 4, 4)
    assert ntuple(np.int64(2), 1, "stride", "conv1d") == (2,)
    with pytest.raises(
        ValueError, match=r"conv2d: expected stride .* tuple of 2 ints, got \(1, 2, 3\)"
    ):
        ntuple((1, 2, 3), 2, "stride", "conv2d")
    with pytest.raises(TypeError, match=r"pool: expected kernel_size .*got 2\.5"):
        ntuple(2.5, 2, "kernel_size", "pool")
    with pytest.raises(TypeError, match=r"got \(1, 'a'\)"):
        ntuple((1, "a"), 2, "kernel_size", "pool")
    with pytest.raises(TypeError, match="got True"):
        ntuple(True, 2, "stride", "conv2d")


def test_check_positive():
    check_positive((1, 2), "stride", "conv2d")
    with pytest.raises(ValueError, match="conv2d: stride must be positive, got 0"):
        check_positive((0, 0), "stride", "conv2d")
    with pytest.raises(ValueError, match=r"conv2d: padding must be non-negative, got \(1, -1\)"):
        check_positive((1, -1), "padding", "conv2d", minimum=0)


def test_conv_padding():
    assert conv_padding("conv2d", 1, (3, 3), (1, 1), (1, 1)) == ((1, 1), (1, 1))
    assert conv_padding("conv2d", (0, 2), (3, 3), (1, 1), (2, 2)) == ((0, 0), (2, 2))
    assert conv_padding("conv2d", "valid", (3, 3), (1, 1), (2, 2)) == ((0, 0), (0, 0))
    # even kernels pad one more on the right, as PyTorch does
    assert conv_padding("conv1d", "same", (4,), (1,), (1,)) == ((1, 2),)
    assert conv_padding("conv2d", "same", (3, 2), (2, 3), (1, 1)) == ((2, 2), (1, 2))
    with pytest.raises(ValueError, match=r"conv2d: padding='same' .*stride \(2, 1\)"):
        conv_padding("conv2d", "same", (3, 3), (1, 1), (2, 1))
    with pytest.raises(ValueError, match="conv2d: padding must be 'valid', 'same'.*got 'full'"):
        conv_padding("conv2d", "full", (3, 3), (1, 1), (1, 1))
    with pytest.raises(ValueError, match="conv1d: padding must be non-negative, got -1"):
        conv_padding("conv1d", -1, (3,), (1,), (1,))


def test_output_shape_errors_name_the_op():
    assert output_shape("conv2d", (5, 6), (3, 3), (1, 2), ((0, 0), (1, 1)), (1, 1)) == (3, 3)
    with pytest.raises(
        ValueError, match=r"conv2d: kernel size \(5, 5\).*padded input size \(4, 4\)"
    ):
        output_shape("conv2d", (4, 4), (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1))
    with pytest.raises(ValueError, match=r"dilated to \(5,\)"):
        output_shape("conv1d", (4,), (3,), (1,), ((0, 0),), (2,))


@settings(max_examples=25, deadline=None)
@given(geometry=geometries(), seed=st.integers(0, 2**16), chunk=st.sampled_from([1, 100, 400]))
def test_channel_chunks_change_nothing(geometry, seed, chunk):
    """im2col and col2im work through the channels a few at a time; any chunking is exact."""

    shape, k, s, pairs, d = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    g = rng.standard_normal(naive_im2col(x, k, s, pairs, d).shape)
    saved = tuning.SLAB_BYTES
    tuning.SLAB_BYTES = chunk  # bytes: 1 means one channel at a time
    try:
        cols = im2col(x, k, s, pairs, d)
        back = col2im(g, shape, k, s, pairs, d)
    finally:
        tuning.SLAB_BYTES = saved
    np.testing.assert_array_equal(cols, naive_im2col(x, k, s, pairs, d))
    np.testing.assert_allclose(back, col2im(g, shape, k, s, pairs, d), rtol=1e-12, atol=1e-12)
