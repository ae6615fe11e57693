"""Max, average and adaptive pooling: gradient checks, the loop oracles, PyTorch, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally import reference
from wally.backends import tuning
from wally.testing import gradcheck

MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
ADAPTIVE_AVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
ADAPTIVE_MAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}


def t64(array):
    return wally.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def data(draw, shape):
    """Normal data, or small integers so that ties (and PyTorch's tie-breaking) are exercised."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        return rng.integers(-2, 3, size=shape).astype(np.float64)
    return rng.standard_normal(shape)


# ----- strategies ------------------------------------------------------------------------------
@st.composite
def pool_cases(draw, average=False):
    nd = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = draw(st.one_of(st.none(), st.tuples(*(st.integers(1, 3) for _ in range(nd)))))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = (1,) * nd if average else tuple(draw(st.integers(1, 2)) for _ in range(nd))
    ceil_mode = draw(st.booleans())
    # PyTorch's avg_pool3d refuses inputs smaller than the kernel, whatever the padding; and
    # n >= d keeps a real cell in every dilated window (PyTorch's indices for a window of
    # padding alone point past its plane, and its backward then writes out of bounds).
    strict = average and nd == 3
    spatial = tuple(
        draw(
            st.integers(
                k if strict else max(1, d, d * (k - 1) + 1 - 2 * p),
                d * (k - 1) + (6 if nd < 3 else 4),
            )
        )
        for k, d, p in zip(kernel, dilation, padding, strict=True)
    )
    batch = draw(st.sampled_from([None, 1, 2]))
    channels = draw(st.integers(1, 3))
    shape = ((channels,) if batch is None else (batch, channels)) + spatial
    kwargs = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
    if average:
        kwargs["count_include_pad"] = draw(st.booleans())
        if nd > 1:
            kwargs["divisor_override"] = draw(st.sampled_from([None, None, 1, 3]))
    else:
        kwargs["dilation"] = dilation
    return nd, data(draw, shape), kwargs


@st.composite
def adaptive_cases(draw):
    nd = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 9 if nd < 3 else 6)) for _ in range(nd))
    out = tuple(draw(st.integers(1, 7 if nd < 3 else 4)) for _ in range(nd))
    batch = draw(st.sampled_from([None, 1, 2]))
    channels = draw(st.integers(1, 3))
    shape = ((channels,) if batch is None else (batch, channels)) + spatial
    return nd, data(draw, shape), out


def batched(x, nd):
    return x if x.ndim == nd + 2 else x[None]


# ----- 1. float64 gradient checks --------------------------------------------------------------
GRADCHECK_MAX = [
    (2, (2, 2, 6, 5), {"kernel_size": 2}),
    (2, (1, 2, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1}),
    (2, (1, 2, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    (2, (1, 1, 7, 8), {"kernel_size": (2, 3), "stride": 1, "dilation": (2, 1)}),
    (2, (2, 6, 5), {"kernel_size": 2, "stride": 1}),  # unbatched, overlapping
    (1, (2, 3, 9), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    (3, (1, 2, 4, 5, 4), {"kernel_size": 2, "stride": (1, 2, 2), "padding": (1, 0, 1)}),
]


@pytest.mark.parametrize("nd, shape, kwargs", GRADCHECK_MAX)
def test_gradcheck_max_pool(nd, shape, kwargs):
    x = t64(np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) / 7.0)
    assert gradcheck(lambda x: MAX[nd](x, **kwargs), x)


GRADCHECK_AVG = [
    (2, (2, 2, 6, 5), {"kernel_size": 2}),
    (2, (1, 2, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1}),
    (2, (1, 2, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    (2, (1, 2, 7, 6), {"kernel_size": 3, "padding": 1, "count_include_pad": False}),
    (2, (1, 2, 7, 6), {"kernel_size": 2, "stride": 1, "divisor_override": 3}),
    (1, (2, 3, 9), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    (3, (1, 2, 4, 5, 4), {"kernel_size": 2, "stride": (1, 2, 2), "padding": (1, 0, 1)}),
]


@pytest.mark.parametrize("nd, shape, kwargs", GRADCHECK_AVG)
def test_gradcheck_avg_pool(nd, shape, kwargs):
    x = t64(np.random.default_rng(1).standard_normal(shape))
    assert gradcheck(lambda x: AVG[nd](x, **kwargs), x)


@pytest.mark.parametrize(
    "nd, shape, out",
    [
        (1, (2, 3, 7), 3),
        (2, (1, 2, 7, 5), (3, 4)),
        (2, (1, 2, 3, 2), (5, 4)),
        (2, (2, 6, 6), 1),
        (2, (1, 2, 6, 4), (3, 2)),
        (3, (1, 1, 5, 4, 3), (2, 3, 2)),
    ],
)
def test_gradcheck_adaptive(nd, shape, out):
    rng = np.random.default_rng(2)
    x = t64(rng.standard_normal(shape))
    assert gradcheck(lambda x: ADAPTIVE_AVG[nd](x, out), x)
    x = t64(rng.permutation(np.prod(shape)).reshape(shape) / 7.0)
    assert gradcheck(lambda x: ADAPTIVE_MAX[nd](x, out), x)


# ----- 2. the loop oracles ---------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(case=pool_cases())
def test_max_pool_matches_loops(case):
    nd, x, kwargs = case
    values, indices = MAX[nd](wally.tensor(x), **kwargs, return_indices=True)
    expected, expected_indices = reference.max_pool_nd_loops(batched(x, nd), **kwargs)
    np.testing.assert_array_equal(batched(values.array, nd), expected)
    np.testing.assert_array_equal(batched(indices.array, nd), expected_indices)
    assert indices.dtype == np.int64


@settings(max_examples=40, deadline=None)
@given(case=pool_cases(average=True))
def test_avg_pool_matches_loops(case):
    nd, x, kwargs = case
    y = AVG[nd](wally.tensor(x), **kwargs)
    expected = reference.avg_pool_nd_loops(batched(x, nd), **kwargs)
    np.testing.assert_allclose(batched(y.array, nd), expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(case=adaptive_cases())
def test_adaptive_matches_loops(case):
    nd, x, out = case
    y = ADAPTIVE_AVG[nd](wally.tensor(x), out)
    expected = reference.adaptive_pool_loops(batched(x, nd), out, "avg")
    np.testing.assert_allclose(batched(y.array, nd), expected, rtol=1e-12, atol=1e-12)
    values, indices = ADAPTIVE_MAX[nd](wally.tensor(x), out, return_indices=True)
    expected, expected_indices = reference.adaptive_pool_loops(batched(x, nd), out, "max")
    np.testing.assert_array_equal(batched(values.array, nd), expected)
    np.testing.assert_array_equal(batched(indices.array, nd), expected_indices)


def test_note_pool2d_is_max_and_avg_pooling():
    x = np.random.default_rng(3).standard_normal((5, 6))
    for mode, pool in (("max", F.max_pool2d), ("avg", F.avg_pool2d)):
        loops = reference.pool2d(wally.tensor(x), (2, 3), mode)
        fast = pool(wally.tensor(x[None, None]), (2, 3), stride=1)
        np.testing.assert_allclose(fast.array[0, 0], loops.array, rtol=1e-12)


def test_note_pool2d_example():
    x = wally.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    np.testing.assert_array_equal(reference.pool2d(x, (2, 2)).array, [[4, 5], [7, 8]])
    np.testing.assert_array_equal(reference.pool2d(x, (2, 2), "avg").array, [[2, 3], [5, 6]])


# ----- 3. PyTorch ------------------------------------------------------------------------------
def compare_with_torch(torch, ours, theirs, x, rtol=1e-4, atol=1e-5):
    """Values, indices (when returned) and input gradients, all in float32."""
    a = wally.tensor(x, dtype=wally.float32, requires_grad=True)
    b = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    y, y_torch = ours(a), theirs(b)
    if isinstance(y_torch, tuple):
        np.testing.assert_array_equal(y[1].array, y_torch[1].numpy())
        assert y[1].dtype == np.int64
        y, y_torch = y[0], y_torch[0]
    assert y.shape == tuple(y_torch.shape) and y.dtype == np.float32
    np.testing.assert_allclose(y.array, y_torch.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(0).standard_normal(tuple(y_torch.shape)).astype(np.float32)
    y.backward(wally.tensor(g))
    y_torch.backward(torch.tensor(g))
    np.testing.assert_allclose(a.grad.array, b.grad.numpy(), rtol=rtol, atol=atol)


@settings(max_examples=60, deadline=None)
@given(case=pool_cases(), return_indices=st.booleans())
def test_max_pool_matches_torch(torch, case, return_indices):
    nd, x, kwargs = case
    theirs = getattr(torch.nn.functional, f"max_pool{nd}d")
    compare_with_torch(
        torch,
        lambda t: MAX[nd](t, **kwargs, return_indices=return_indices),
        lambda t: theirs(t, **kwargs, return_indices=return_indices),
        x,
    )


@settings(max_examples=60, deadline=None)
@given(case=pool_cases(average=True))
def test_avg_pool_matches_torch(torch, case):
    nd, x, kwargs = case
    theirs = getattr(torch.nn.functional, f"avg_pool{nd}d")
    compare_with_torch(torch, lambda t: AVG[nd](t, **kwargs), lambda t: theirs(t, **kwargs), x)


@settings(max_examples=60, deadline=None)
@given(case=adaptive_cases(), return_indices=st.booleans())
def test_adaptive_matches_torch(torch, case, return_indices):
    nd, x, out = case
    avg = getattr(torch.nn.functional, f"adaptive_avg_pool{nd}d")
    compare_with_torch(torch, lambda t: ADAPTIVE_AVG[nd](t, out), lambda t: avg(t, out), x)
    mx = getattr(torch.nn.functional, f"adaptive_max_pool{nd}d")
    compare_with_torch(
        torch,
        lambda t: ADAPTIVE_MAX[nd](t, out, return_indices=return_indices),
        lambda t: mx(t, out, return_indices=return_indices),
        x,
    )


def test_adaptive_output_size_none_keeps_the_input_size(torch):
    x = np.random.default_rng(4).standard_normal((2, 3, 7, 5))
    y = F.adaptive_avg_pool2d(wally.tensor(x), (None, 2))
    assert y.shape == (2, 3, 7, 2)
    expected = torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x), (None, 2)).numpy()
    np.testing.assert_allclose(y.array, expected, rtol=1e-12)


def test_nan_and_minus_infinity_follow_torch(torch):
    x = np.array([[[1.0, np.nan, 3.0, np.nan, 2.0, -np.inf, -np.inf, -np.inf]]])
    for kwargs in ({"kernel_size": 3, "stride": 1, "padding": 1}, {"kernel_size": 2}):
        values, indices = F.max_pool1d(wally.tensor(x), **kwargs, return_indices=True)
        expected = torch.nn.functional.max_pool1d(torch.tensor(x), **kwargs, return_indices=True)
        np.testing.assert_array_equal(values.array, expected[0].numpy())
        np.testing.assert_array_equal(indices.array, expected[1].numpy())
    values, indices = F.adaptive_max_pool1d(wally.tensor(x), 3, return_indices=True)
    expected = torch.nn.functional.adaptive_max_pool1d(torch.tensor(x), 3, return_indices=True)
    np.testing.assert_array_equal(values.array, expected[0].numpy())
    np.testing.assert_array_equal(indices.array, expected[1].numpy())


# ----- dtypes and shapes -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [wally.float32, wally.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_dtype_is_preserved(dtype, nd):
    calls = [
        lambda x: MAX[nd](x, 2),
        lambda x: MAX[nd](x, 3, 2, 1),
        lambda x: AVG[nd](x, 3, 2, 1),
        lambda x: ADAPTIVE_AVG[nd](x, 3),
        lambda x: ADAPTIVE_MAX[nd](x, 3),
        lambda x: ADAPTIVE_AVG[nd](x, 1),
    ]
    for call in calls:
        x = wally.randn(2, 3, *(6,) * nd, dtype=dtype, requires_grad=True)
        y = call(x)
        assert y.dtype == dtype
        y.sum().backward()
        assert x.grad.dtype == dtype and x.grad.shape == x.shape


def test_integer_max_pool():
    x = np.arange(16).reshape(1, 1, 4, 4)[:, :, ::-1].copy()
    values, indices = F.max_pool2d(wally.tensor(x), 2, padding=1, return_indices=True)
    expected, expected_indices = reference.max_pool_nd_loops(x, 2, padding=1)
    assert values.dtype == np.int64
    np.testing.assert_array_equal(values.array, expected)
    np.testing.assert_array_equal(indices.array, expected_indices)


def test_shapes_of_common_layers():
    x = wally.randn(4, 6, 28, 28)
    assert F.max_pool2d(x, 2).shape == (4, 6, 14, 14)  # LeNet
    assert F.max_pool2d(wally.randn(1, 96, 54, 54), 3, 2).shape == (1, 96, 26, 26)  # AlexNet
    assert F.max_pool2d(wally.randn(1, 64, 112, 112), 3, 2, 1).shape == (1, 64, 56, 56)  # ResNet
    assert F.adaptive_avg_pool2d(wally.randn(2, 512, 7, 7), (1, 1)).shape == (2, 512, 1, 1)


# ----- 4. bad input ----------------------------------------------------------------------------
def test_wrong_rank():
    with pytest.raises(
        ValueError, match=r"max_pool2d: expected a 3-D or 4-D input .*got shape \(28, 28\)"
    ):
        F.max_pool2d(wally.randn(28, 28), 2)
    with pytest.raises(ValueError, match=r"avg_pool1d: expected a 2-D or 3-D input .*\(5,\)"):
        F.avg_pool1d(wally.randn(5), 2)
    with pytest.raises(
        ValueError, match=r"adaptive_avg_pool3d: expected a 4-D or 5-D input .*\(2, 3, 4\)"
    ):
        F.adaptive_avg_pool3d(wally.randn(2, 3, 4), 1)


def test_padding_at_most_half_the_kernel():
    with pytest.raises(
        ValueError,
        match=r"max_pool2d: padding should be at most half of kernel size, got padding=\(2, 2\)",
    ):
        F.max_pool2d(wally.randn(1, 1, 9, 9), 3, padding=2)
    with pytest.raises(
        ValueError, match=r"avg_pool1d: padding should be .*padding=\(2,\) and kernel_size=\(3,\)"
    ):
        F.avg_pool1d(wally.randn(1, 1, 9), 3, padding=2)


@pytest.mark.parametrize(
    "name, value", [("stride", 0), ("stride", -1), ("dilation", 0), ("kernel_size", 0)]
)
def test_non_positive_arguments(name, value):
    kwargs = {"kernel_size": 2, name: value}
    with pytest.raises(ValueError, match=rf"max_pool2d: {name} must be positive, got {value}"):
        F.max_pool2d(wally.randn(1, 1, 6, 6), **kwargs)


def test_window_larger_than_input():
    with pytest.raises(
        ValueError, match=r"max_pool2d: kernel size \(20, 20\).*padded input size \(9, 9\)"
    ):
        F.max_pool2d(wally.randn(1, 1, 9, 9), 20)
    with pytest.raises(
        ValueError, match=r"avg_pool2d: kernel size \(4, 4\).*padded input size \(3, 3\)"
    ):
        F.avg_pool2d(wally.randn(1, 1, 3, 3), 4)


def test_divisor_override():
    with pytest.raises(ValueError, match="avg_pool2d: divisor_override must be non-zero, got 0"):
        F.avg_pool2d(wally.randn(1, 1, 4, 4), 2, divisor_override=0)
    with pytest.raises(TypeError, match=r"avg_pool2d: divisor_override must be an int, got 1\.5"):
        F.avg_pool2d(wally.randn(1, 1, 4, 4), 2, divisor_override=1.5)


def test_dtypes_rejected():
    with pytest.raises(
        TypeError, match=r"avg_pool2d: expected a floating-point input, got dtype (wally\.)?int64"
    ):
        F.avg_pool2d(wally.zeros(1, 1, 4, 4, dtype=wally.int64), 2)
    with pytest.raises(
        TypeError, match=r"adaptive_avg_pool2d: expected a floating-point input, got dtype "
        r"(wally\.)?int64"
    ):
        F.adaptive_avg_pool2d(wally.zeros(1, 1, 4, 4, dtype=wally.int64), 2)
    with pytest.raises(TypeError, match=r"max_pool2d: expected a real-valued input, got dtype "
                                         r"(wally\.)?bool"):
        F.max_pool2d(wally.zeros(1, 1, 4, 4, dtype=wally.bool), 2)


def test_adaptive_output_size():
    with pytest.raises(
        ValueError, match="adaptive_avg_pool2d: output_size must be positive, got 0"
    ):
        F.adaptive_avg_pool2d(wally.randn(1, 1, 4, 4), 0)
    with pytest.raises(
        ValueError,
        match=r"adaptive_max_pool2d: expected output_size .*tuple of 2 ints, got \(1, 2, 3\)",
    ):
        F.adaptive_max_pool2d(wally.randn(1, 1, 4, 4), (1, 2, 3))
    with pytest.raises(TypeError, match=r"adaptive_avg_pool1d: expected output_size .*got 2\.5"):
        F.adaptive_avg_pool1d(wally.randn(1, 1, 4), 2.5)


@settings(max_examples=25, deadline=None)
@given(
    case=st.one_of(
        pool_cases().map(lambda c: (*c, False)), pool_cases(True).map(lambda c: (*c, True))
    ),
    chunk=st.sampled_from([1, 300, 1000]),
)
def test_plane_chunks_change_nothing(case, chunk):
    """Pooling works through a few planes at a time (padding them in a reused scratch buffer);
    any chunk size gives the loops' values and the same gradients."""

    nd, x, kwargs, average = case
    fn = AVG[nd] if average else MAX[nd]
    whole = t64(x)
    y = fn(whole, **kwargs)
    g = wally.tensor(np.random.default_rng(1).standard_normal(y.shape))
    y.backward(g)
    saved = tuning.POOL_CHUNK_BYTES
    tuning.POOL_CHUNK_BYTES = chunk  # bytes: 1 means one plane at a time
    try:
        chunked = t64(x)
        y = fn(chunked, **kwargs)
        y.backward(g)
    finally:
        tuning.POOL_CHUNK_BYTES = saved
    if average:
        expected = reference.avg_pool_nd_loops(batched(x, nd), **kwargs)
    else:
        expected = reference.max_pool_nd_loops(batched(x, nd), **kwargs)[0]
    np.testing.assert_allclose(batched(y.array, nd), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(chunked.grad.array, whole.grad.array, rtol=1e-12, atol=1e-12)
