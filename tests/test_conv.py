"""conv1d/2d/3d, unfold and fold: gradient checks, the loop oracle, PyTorch, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally import reference
from wally.testing import gradcheck

CONVS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def t64(array):
    return wally.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


# ----- strategies ------------------------------------------------------------------------------
@st.composite
def conv_cases(draw, max_dims=3):
    """A convolution problem: arrays plus keyword arguments, every option in play."""
    nd = draw(st.integers(1, max_dims))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    in_channels = groups * draw(st.integers(1, 2))
    out_channels = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    kind = draw(st.sampled_from(["int", "tuple", "same", "valid"]))
    if kind == "same":
        stride: tuple[int, ...] = (1,) * nd
        padding: object = "same"
        pads = tuple(d * (k - 1) for k, d in zip(kernel, dilation, strict=True))
    else:
        stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
        if kind == "valid":
            padding, pads = "valid", (0,) * nd
        elif kind == "int":
            p = draw(st.integers(0, 2))
            padding, pads = p, (2 * p,) * nd
        else:
            per_axis = tuple(draw(st.integers(0, 2)) for _ in range(nd))
            padding, pads = per_axis, tuple(2 * p for p in per_axis)
    limit = 7 if nd < 3 else 5
    spatial = []
    for k, d, total in zip(kernel, dilation, pads, strict=True):
        smallest = max(1, d * (k - 1) + 1 - total)
        spatial.append(draw(st.integers(smallest, smallest + limit - 2)))
    batch = draw(st.sampled_from([None, 1, 2]))
    shape = ((in_channels,) if batch is None else (batch, in_channels)) + tuple(spatial)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(shape)
    w = rng.standard_normal((out_channels, in_channels // groups, *kernel))
    b = rng.standard_normal(out_channels) if draw(st.booleans()) else None
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    return nd, x, w, b, kwargs


def loop_padding(kwargs, kernel):
    """What the loop oracle needs for ``kwargs['padding']``: ints or (left, right) pairs."""
    padding = kwargs["padding"]
    if padding == "valid":
        return 0
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, kwargs["dilation"], strict=True)]
        return [(t // 2, t - t // 2) for t in totals]
    return padding


# ----- 1. float64 gradient checks --------------------------------------------------------------
GRADCHECK_CASES = [
    (2, (2, 4, 5, 5), (3, 4, 3, 3), True, {}),
    (2, (1, 2, 6, 5), (2, 2, 2, 3), True, {"stride": 2, "padding": 1}),
    (
        2,
        (2, 2, 7, 6),
        (2, 2, 3, 2),
        False,
        {"stride": (2, 1), "padding": (1, 2), "dilation": (2, 1)},
    ),
    (2, (1, 4, 5, 5), (4, 2, 3, 3), True, {"groups": 2, "padding": "same"}),
    (2, (1, 3, 5, 6), (3, 1, 2, 2), True, {"groups": 3, "padding": "same", "dilation": 2}),
    (2, (1, 2, 5, 5), (2, 2, 3, 3), True, {"padding": "valid"}),
    (2, (2, 5, 5), (3, 2, 3, 3), True, {"padding": 1}),  # unbatched
    (1, (2, 3, 9), (2, 3, 4), True, {"padding": "same", "dilation": 2}),
    (1, (2, 2, 9), (4, 1, 3), True, {"stride": 3, "padding": 2, "groups": 2}),
    (3, (1, 2, 4, 5, 4), (2, 2, 2, 3, 2), True, {"stride": (1, 2, 1), "padding": (1, 0, 1)}),
    (3, (1, 2, 4, 4, 4), (2, 1, 2, 2, 2), True, {"groups": 2, "padding": "same"}),
]


@pytest.mark.parametrize("nd, x_shape, w_shape, with_bias, kwargs", GRADCHECK_CASES)
def test_gradcheck(nd, x_shape, w_shape, with_bias, kwargs):
    rng = np.random.default_rng(0)
    x = t64(rng.standard_normal(x_shape))
    w = t64(rng.standard_normal(w_shape))
    b = t64(rng.standard_normal(w_shape[0])) if with_bias else None

    def conv(x, w, b):
        return CONVS[nd](x, w, b, **kwargs)

    assert gradcheck(conv, x, w, b)


def test_gradcheck_unfold_and_fold():
    rng = np.random.default_rng(1)
    x = t64(rng.standard_normal((2, 2, 5, 6)))
    assert gradcheck(lambda x: F.unfold(x, (2, 3), dilation=(2, 1), padding=1, stride=(1, 2)), x)
    cols = t64(rng.standard_normal((2, 2 * 6, 15)))  # 5·3 windows
    assert gradcheck(
        lambda c: F.fold(c, (5, 6), (2, 3), dilation=(2, 1), padding=1, stride=(1, 2)), cols
    )


# ----- 2. the loop oracle ----------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(case=conv_cases())
def test_matches_loops(case):
    nd, x, w, b, kwargs = case
    expected = reference.conv_nd_loops(
        x if x.ndim == nd + 2 else x[None],
        w,
        b,
        kwargs["stride"],
        loop_padding(kwargs, w.shape[2:]),
        kwargs["dilation"],
        kwargs["groups"],
    )
    if x.ndim == nd + 1:
        expected = expected[0]
    bias = None if b is None else wally.tensor(b)
    y = CONVS[nd](wally.tensor(x), wally.tensor(w), bias, **kwargs)
    np.testing.assert_allclose(y.array, expected, rtol=1e-10, atol=1e-10)


def test_corr2d_is_conv2d():
    """The note's loop corr2d and its edge detector (K = [1, -1]) against the fast path."""
    X = wally.ones((6, 8), dtype=wally.float64)  # noqa: N806
    X.array[:, 2:6] = 0
    K = wally.tensor([[1.0, -1.0]], dtype=wally.float64)  # noqa: N806
    Y = reference.corr2d(X, K)  # noqa: N806
    expected_edges = np.zeros((6, 7))
    expected_edges[:, 1], expected_edges[:, 5] = 1, -1
    np.testing.assert_array_equal(Y.array, expected_edges)
    fast = F.conv2d(X.reshape(1, 1, 6, 8), K.reshape(1, 1, 1, 2))
    np.testing.assert_array_equal(fast.array[0, 0], Y.array)


def test_corr2d_gradients_match_conv2d():
    rng = np.random.default_rng(2)
    x, k = rng.standard_normal((5, 6)), rng.standard_normal((2, 3))
    g = rng.standard_normal((4, 4))
    X, K = t64(x), t64(k)  # noqa: N806
    reference.corr2d(X, K).backward(wally.tensor(g))
    X2, K2 = t64(x), t64(k)  # noqa: N806
    F.conv2d(X2.reshape(1, 1, 5, 6), K2.reshape(1, 1, 2, 3)).backward(wally.tensor(g[None, None]))
    np.testing.assert_allclose(X.grad.array, X2.grad.array, rtol=1e-12)
    np.testing.assert_allclose(K.grad.array, K2.grad.array, rtol=1e-12)


def test_1x1_convolution_is_a_matrix_product_over_channels():
    """The note's corr2d_multi_in_out_1x1: [KX]ijl = [K]lk [X]kij."""
    rng = np.random.default_rng(3)
    x, k = rng.standard_normal((3, 3, 3)), rng.standard_normal((2, 3, 1, 1))
    expected = (k.reshape(2, 3) @ x.reshape(3, 9)).reshape(2, 3, 3)
    y = F.conv2d(wally.tensor(x), wally.tensor(k))
    np.testing.assert_allclose(y.array, expected, rtol=1e-12)


# ----- 3. PyTorch ------------------------------------------------------------------------------
def compare_with_torch(torch, wally_fn, torch_fn, arrays, rtol=1e-4, atol=1e-4):
    """Run both on float32 copies of ``arrays`` (None stays None); compare outputs and grads."""
    ours = [
        None if a is None else wally.tensor(a, dtype=wally.float32, requires_grad=True)
        for a in arrays
    ]
    theirs = [
        None if a is None else torch.tensor(a, dtype=torch.float32, requires_grad=True)
        for a in arrays
    ]
    y, y_torch = wally_fn(*ours), torch_fn(*theirs)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.array, y_torch.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(0).standard_normal(tuple(y_torch.shape)).astype(np.float32)
    y.backward(wally.tensor(g))
    y_torch.backward(torch.tensor(g))
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a is None:
            continue
        np.testing.assert_allclose(
            a.grad.array, b.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"gradient of input {index}"
        )


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@settings(max_examples=60, deadline=None)
@given(case=conv_cases())
def test_matches_torch(torch, case):
    nd, x, w, b, kwargs = case
    torch_conv = getattr(torch.nn.functional, f"conv{nd}d")
    compare_with_torch(
        torch,
        lambda x, w, b: CONVS[nd](x, w, b, **kwargs),
        lambda x, w, b: torch_conv(x, w, b, **kwargs),
        [x, w, b],
    )


@st.composite
def unfold_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    size = tuple(
        draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), d * (k - 1) + 6))
        for k, d, p in zip(kernel, dilation, padding, strict=True)
    )
    batch = draw(st.sampled_from([None, 1, 3]))
    channels = draw(st.integers(1, 3))
    shape = ((channels,) if batch is None else (batch, channels)) + size
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kwargs = {"kernel_size": kernel, "dilation": dilation, "padding": padding, "stride": stride}
    return rng.standard_normal(shape), kwargs


@settings(max_examples=40, deadline=None)
@given(case=unfold_cases())
def test_unfold_and_fold_match_torch(torch, case):
    x, kwargs = case
    compare_with_torch(
        torch,
        lambda x: F.unfold(x, **kwargs),
        lambda x: torch.nn.functional.unfold(x, **kwargs),
        [x],
    )
    size = x.shape[-2:]
    cols = torch.nn.functional.unfold(torch.tensor(x), **kwargs).numpy()
    compare_with_torch(
        torch,
        lambda c: F.fold(c, size, **kwargs),
        lambda c: torch.nn.functional.fold(c, size, **kwargs),
        [cols],
    )


def test_conv_is_unfold_then_matmul():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2))
    cols = F.unfold(wally.tensor(x), (3, 2), padding=1).array  # (N, C·k, L)
    y = F.conv2d(wally.tensor(x), wally.tensor(w), padding=1).array
    expected = np.stack([w.reshape(4, -1) @ c for c in cols]).reshape(y.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-12)


# ----- what backward computes ------------------------------------------------------------------
def test_first_layer_skips_the_image_gradient():
    x = wally.randn(2, 3, 6, 6)  # images: no requires_grad
    w = wally.randn(4, 3, 3, 3, requires_grad=True)
    b = wally.zeros(4, requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    assert y.grad_fn.needs_input_grad == (False, True, True)
    assert y.grad_fn.w2 is None  # the weight is not kept for an image gradient nobody wants
    y.sum().backward()
    assert x.grad is None and w.grad is not None and b.grad is not None


def test_frozen_weight_keeps_no_input_and_no_columns():
    """With the weight frozen, the node keeps the weight (for the image gradient) and nothing
    else: neither the input nor an im2col matrix (9 times the input here)."""
    x = wally.randn(2, 3, 6, 6, requires_grad=True)
    w = wally.randn(4, 3, 3, 3)
    y = F.conv2d(x, w)
    assert y.grad_fn.x is None
    kept = [v for v in vars(y.grad_fn).values() if isinstance(v, np.ndarray)]
    assert sum(a.nbytes for a in kept) <= w.array.nbytes
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("dtype", [wally.float32, wally.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_dtype_is_preserved(dtype, nd):
    x = wally.randn(2, 3, *(5,) * nd, dtype=dtype, requires_grad=True)
    w = wally.randn(4, 3, *(3,) * nd, dtype=dtype, requires_grad=True)
    b = wally.randn(4, dtype=dtype, requires_grad=True)
    y = CONVS[nd](x, w, b, padding=1)
    assert y.dtype == dtype and y.array.flags.c_contiguous
    y.sum().backward()
    assert x.grad.dtype == dtype and w.grad.dtype == dtype and b.grad.dtype == dtype


def test_unfold_dtype_is_preserved():
    x = wally.randn(2, 3, 5, 5, requires_grad=True)
    cols = F.unfold(x, 2)
    assert cols.dtype == wally.float32
    assert F.fold(cols, (5, 5), 2).dtype == wally.float32


def test_lenet_shapes():
    x = wally.randn(4, 1, 28, 28)
    y = F.conv2d(x, wally.randn(6, 1, 5, 5), padding=2)
    assert y.shape == (4, 6, 28, 28)
    y = F.conv2d(wally.randn(4, 6, 14, 14), wally.randn(16, 6, 5, 5))
    assert y.shape == (4, 16, 10, 10)


# ----- 4. bad input ----------------------------------------------------------------------------
def test_wrong_rank():
    with pytest.raises(
        ValueError, match=r"conv2d: expected a 3-D or 4-D input .*got shape \(28, 28\)"
    ):
        F.conv2d(wally.randn(28, 28), wally.randn(6, 1, 5, 5))
    with pytest.raises(ValueError, match=r"conv1d: expected a 2-D or 3-D input .*\(1, 2, 3, 4\)"):
        F.conv1d(wally.randn(1, 2, 3, 4), wally.randn(6, 2, 3))
    with pytest.raises(ValueError, match=r"conv3d: expected a 5-D weight .*got shape \(6, 2, 3\)"):
        F.conv3d(wally.randn(1, 2, 3, 4, 5), wally.randn(6, 2, 3))


def test_channel_mismatch():
    with pytest.raises(
        ValueError, match=r"conv2d: expected input with 3 channels .*got 1 channels"
    ):
        F.conv2d(wally.randn(8, 1, 28, 28), wally.randn(16, 3, 3, 3))
    with pytest.raises(
        ValueError,
        match=r"conv2d: expected input with 4 channels \(weight shape \(2, 2, 1, 1\), "
        r"groups=2\), got 6",
    ):
        F.conv2d(wally.randn(1, 6, 5, 5), wally.randn(2, 2, 1, 1), groups=2)


def test_kernel_larger_than_padded_input():
    with pytest.raises(
        ValueError, match=r"conv2d: kernel size \(5, 5\).*padded input size \(4, 4\)"
    ):
        F.conv2d(wally.randn(1, 1, 4, 4), wally.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"conv1d: kernel size \(3,\) \(dilated to \(5,\)\)"):
        F.conv1d(wally.randn(1, 1, 4), wally.randn(1, 1, 3), dilation=2)


@pytest.mark.parametrize(
    "name, value", [("stride", 0), ("stride", -1), ("dilation", 0), ("dilation", -2)]
)
def test_non_positive_stride_or_dilation(name, value):
    with pytest.raises(ValueError, match=rf"conv2d: {name} must be positive, got {value}"):
        F.conv2d(wally.randn(1, 1, 5, 5), wally.randn(1, 1, 3, 3), **{name: value})


def test_negative_padding():
    with pytest.raises(ValueError, match=r"conv2d: padding must be non-negative, got \(1, -1\)"):
        F.conv2d(wally.randn(1, 1, 5, 5), wally.randn(1, 1, 3, 3), padding=(1, -1))


def test_groups():
    with pytest.raises(ValueError, match=r"conv2d: out_channels \(3,.*divisible by groups \(2\)"):
        F.conv2d(wally.randn(1, 4, 5, 5), wally.randn(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: in_channels \(3,.*divisible by groups \(2\)"):
        F.conv2d(wally.randn(1, 3, 5, 5), wally.randn(4, 1, 3, 3), groups=2)
    with pytest.raises(ValueError, match="conv1d: groups must be a positive integer, got 0"):
        F.conv1d(wally.randn(1, 2, 5), wally.randn(2, 2, 3), groups=0)


def test_padding_strings():
    with pytest.raises(ValueError, match=r"conv2d: padding must be 'valid', 'same'.*got 'full'"):
        F.conv2d(wally.randn(1, 1, 5, 5), wally.randn(1, 1, 3, 3), padding="full")
    with pytest.raises(
        ValueError, match=r"conv2d: padding='same' is not supported for strided.*\(2, 2\)"
    ):
        F.conv2d(wally.randn(1, 1, 5, 5), wally.randn(1, 1, 3, 3), padding="same", stride=2)


def test_integer_and_mixed_dtypes():
    with pytest.raises(TypeError, match=r"conv2d: expected a floating-point input, got dtype "
                                         r"(wally\.)?int64"):
        F.conv2d(wally.zeros(1, 1, 5, 5, dtype=wally.int64), wally.randn(1, 1, 3, 3))
    with pytest.raises(TypeError, match=r"conv2d: input dtype (wally\.)?float32 and weight dtype "
                                         r"(wally\.)?float64"):
        F.conv2d(wally.randn(1, 1, 5, 5), wally.randn(1, 1, 3, 3, dtype=wally.float64))


def test_bias_shape():
    with pytest.raises(
        ValueError, match=r"conv2d: expected a bias of shape \(2,\).*got shape \(3,\)"
    ):
        F.conv2d(wally.randn(1, 1, 5, 5), wally.randn(2, 1, 3, 3), wally.randn(3))


def test_stride_tuple_length():
    with pytest.raises(
        ValueError,
        match=r"conv2d: expected stride to be an int or a tuple of 2 ints, got \(1, 1, 1\)",
    ):
        F.conv2d(wally.randn(1, 1, 5, 5), wally.randn(1, 1, 3, 3), stride=(1, 1, 1))


def test_unfold_fold_errors():
    with pytest.raises(
        ValueError, match=r"unfold: expected a 3-D or 4-D input .*got shape \(5, 5\)"
    ):
        F.unfold(wally.randn(5, 5), 2)
    with pytest.raises(
        ValueError, match=r"fold: .*divisible by the number of kernel taps 2·2 = 4, got 6"
    ):
        F.fold(wally.randn(1, 6, 4), (3, 3), 2)
    with pytest.raises(ValueError, match=r"fold: .*2·2 = 4 windows, but the input has L=5"):
        F.fold(wally.randn(1, 4, 5), (3, 3), 2)
    with pytest.raises(ValueError, match=r"unfold: stride must be positive, got 0"):
        F.unfold(wally.randn(1, 1, 5, 5), 2, stride=0)
