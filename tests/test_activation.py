"""Activations (``wally.functional.activation``): float64 central differences, an erf checked
against ``math.erfc``, and values *and* gradients against PyTorch over hypothesis grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import wally
import wally.functional as F
from wally._erf import _ERFC_BLOCK, _erfc, _erfc_block
from wally.testing import gradcheck

EXAMPLES = 40


def leaf(array):
    return wally.tensor(array, requires_grad=True)


def f64(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def away_from(x, points, margin=1e-3):
    """Move elements of ``x`` within ``margin`` of a kink in ``points`` off it."""
    x = x.copy()
    for p in points:
        x[np.abs(x - p) < margin] = p + 2 * margin
    return x


def compare(torch, ours_fn, theirs_fn, x, rtol=1e-5, atol=1e-6):
    """Values and input gradients of ``ours_fn`` (wally) and ``theirs_fn`` (torch) on ``x``."""
    ours, theirs = leaf(x), torch.tensor(x, requires_grad=True)
    out, ref = ours_fn(ours), theirs_fn(theirs)
    assert out.dtype == x.dtype
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.array, ref.detach().numpy(), rtol=rtol, atol=atol)
    weights = np.random.default_rng(1).standard_normal(ref.shape).astype(x.dtype)
    out.backward(wally.tensor(weights))
    ref.backward(torch.tensor(weights))
    assert ours.grad.dtype == x.dtype
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=rtol, atol=atol)


# ----- erf ------------------------------------------------------------------------------------
def test_erfc_matches_math_erfc_in_float64():
    x = np.concatenate([np.linspace(-9, 9, 36001), np.linspace(-27, 27, 2001),
                        [0.0, 0.46875, -0.46875, 4.0, -4.0, 1e-300, -1e-12]])
    expected = np.array([math.erfc(v) for v in x])
    got = _erfc(x)
    assert got.dtype == np.float64
    tiny = expected < 1e-290  # wally flushes erfc(|z| > 26) ≈ 1e-296 and below to 0
    np.testing.assert_allclose(got[~tiny], expected[~tiny], rtol=5e-15, atol=0)
    np.testing.assert_allclose(got[tiny], expected[tiny], rtol=0, atol=1e-290)
    np.testing.assert_allclose(1 - _erfc(x[np.abs(x) < 3]),
                               [math.erf(v) for v in x[np.abs(x) < 3]], rtol=0, atol=4e-16)


def test_erfc_large_arrays_go_block_by_block_with_the_same_result():
    x = f64(3, _ERFC_BLOCK // 2 + 7, scale=4.0)
    got = _erfc(x)
    assert got.shape == x.shape
    np.testing.assert_array_equal(got, _erfc_block(x.reshape(-1)).reshape(x.shape))
    sample = x.reshape(-1)[:: 997]
    np.testing.assert_allclose(got.reshape(-1)[:: 997], [math.erfc(v) for v in sample],
                               rtol=5e-15)


def test_erfc_float32_and_special_values():
    x = np.linspace(-10, 10, 20001).astype(np.float32)
    got = _erfc(x)
    assert got.dtype == np.float32
    expected = np.array([math.erfc(float(v)) for v in x])
    normal = x < 9  # erfc(z > 9) < 4.2e-37 is flushed to 0 in float32
    np.testing.assert_allclose(got[normal], expected[normal], rtol=2e-6, atol=0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-7)
    special = _erfc(np.array([np.inf, -np.inf, np.nan, 1e300, -1e300]))
    np.testing.assert_array_equal(special, [0.0, 2.0, np.nan, 0.0, 2.0])


# ----- gradient checks in float64 -------------------------------------------------------------
@pytest.mark.parametrize(
    "fn, x",
    [
        (F.relu, away_from(f64(3, 4), [0])),
        (lambda a: F.relu(a * 1, inplace=True), away_from(f64(5), [0])),  # not on a leaf
        (F.leaky_relu, away_from(f64(3, 4), [0])),
        (lambda a: F.leaky_relu(a, 0.3), away_from(f64(2, 3, 4), [0])),
        (lambda a: F.leaky_relu(a, -2.0), away_from(f64(7), [0])),
        (F.sigmoid, f64(3, 4, scale=3)),
        (F.tanh, f64(3, 4, scale=2)),
        (F.gelu, f64(4, 5, scale=3)),
        (lambda a: F.gelu(a, approximate="tanh"), f64(4, 5, scale=3)),
        (F.softplus, f64(4, 5, scale=5)),
        (lambda a: F.softplus(a, beta=2.0, threshold=3.0), away_from(f64(4, 5, scale=3), [1.5])),
        (lambda a: F.softplus(a, beta=-0.5), f64(4, 5, scale=3)),
        (lambda a: F.softmax(a, dim=1), f64(3, 4)),
        (lambda a: F.softmax(a, dim=0), f64(3, 4)),
        (lambda a: F.softmax(a, dim=-1), f64(2, 3, 4)),
        (lambda a: F.softmax(a, dim=0), f64(5)),
        (lambda a: F.softmax(a, dim=0), f64()),
        (lambda a: F.log_softmax(a, dim=1), f64(3, 4)),
        (lambda a: F.log_softmax(a, dim=-2), f64(2, 3, 4)),
        (lambda a: F.log_softmax(a, dim=2), f64(2, 3, 4, scale=10)),
        (lambda a: F.log_softmax(a, dim=0), f64()),
    ],
)
def test_gradcheck(fn, x):
    assert gradcheck(fn, leaf(x))


def test_gradcheck_gelu_far_tails():
    x = np.array([-12.0, -6.5, -4.2, -1.0, 0.3, 4.1, 7.0, 12.0])
    assert gradcheck(F.gelu, leaf(x))


def test_gradcheck_softmax_dtype_cast():
    assert gradcheck(lambda a: F.softmax(a, dim=1, dtype=wally.float64), leaf(f64(3, 4)))


# ----- against PyTorch ------------------------------------------------------------------------
float_arrays = hnp.arrays(
    np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
    elements=st.floats(-8, 8, width=32),
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(x=float_arrays, which=st.sampled_from(["relu", "sigmoid", "tanh"]))
def test_ops_activations_match_torch(torch, x, which):
    compare(torch, getattr(F, which), getattr(torch.nn.functional, which), x)


@settings(max_examples=EXAMPLES, deadline=None)
@given(x=float_arrays, slope=st.sampled_from([0.01, 0.2, 1.0, -0.5, 3.0]))
def test_leaky_relu_matches_torch(torch, x, slope):
    compare(torch, lambda a: F.leaky_relu(a, slope),
            lambda a: torch.nn.functional.leaky_relu(a, slope), x)


@settings(max_examples=EXAMPLES, deadline=None)
@given(x=float_arrays, approximate=st.sampled_from(["none", "tanh"]))
def test_gelu_matches_torch(torch, x, approximate):
    compare(torch, lambda a: F.gelu(a, approximate=approximate),
            lambda a: torch.nn.functional.gelu(a, approximate=approximate), x,
            rtol=1e-5, atol=2e-6)


@settings(max_examples=EXAMPLES, deadline=None)
@given(x=float_arrays, beta=st.sampled_from([1.0, 0.5, 2.0, 5.0]),
       threshold=st.sampled_from([20.0, 1.0, 5.0]))
def test_softplus_matches_torch(torch, x, beta, threshold):
    compare(torch, lambda a: F.softplus(a, beta, threshold),
            lambda a: torch.nn.functional.softplus(a, beta, threshold), x)


@st.composite
def array_and_dim(draw, max_dims=4, scale=10.0):
    x = draw(hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=max_dims, max_side=5),
                        elements=st.floats(-scale, scale, width=32)))
    size = max(x.ndim, 1)
    return x, draw(st.integers(-size, size - 1))


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=array_and_dim(), log=st.booleans())
def test_softmax_matches_torch(torch, case, log):
    x, dim = case
    name = "log_softmax" if log else "softmax"
    compare(torch, lambda a: getattr(F, name)(a, dim=dim),
            lambda a: getattr(torch.nn.functional, name)(a, dim=dim), x)


@settings(max_examples=30, deadline=None)
@given(case=array_and_dim(max_dims=3, scale=1e4), log=st.booleans())
def test_softmax_huge_logits_stay_finite_and_match_torch(torch, case, log):
    x, dim = case
    name = "log_softmax" if log else "softmax"
    out = getattr(F, name)(wally.tensor(x), dim=dim)
    assert np.isfinite(out.numpy()).all()
    compare(torch, lambda a: getattr(F, name)(a, dim=dim),
            lambda a: getattr(torch.nn.functional, name)(a, dim=dim), x, rtol=1e-5, atol=1e-3)


def test_softmax_extreme_logits(torch):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [3e38, 0.0, -3e38]], dtype=np.float32)
    for name in ("softmax", "log_softmax"):
        compare(torch, lambda a, name=name: getattr(F, name)(a, dim=1),
                lambda a, name=name: getattr(torch.nn.functional, name)(a, dim=1), x)
    np.testing.assert_allclose(F.softmax(wally.tensor(x), dim=1).numpy().sum(1), 1.0, rtol=1e-6)


def test_softmax_dtype_argument(torch):
    x = f64(3, 4).astype(np.float32)
    ours, theirs = leaf(x), torch.tensor(x, requires_grad=True)
    out = F.softmax(ours, dim=1, dtype=wally.float64)
    ref = torch.nn.functional.softmax(theirs, dim=1, dtype=torch.float64)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.array, ref.detach().numpy(), rtol=1e-12)
    weights = f64(3, 4, seed=2)
    out.backward(wally.tensor(weights))
    ref.backward(torch.tensor(weights))
    assert ours.grad.dtype == np.float32
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape, implicit", [((), 0), ((4,), 0), ((2, 3), 1), ((2, 3, 4), 0),
                                             ((2, 3, 4, 5), 1)])
def test_softmax_implicit_dim_warns_like_torch(torch, shape, implicit):
    x = f64(*shape)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        out = F.softmax(wally.tensor(x))
    np.testing.assert_allclose(out.numpy(), F.softmax(wally.tensor(x), dim=implicit).numpy())
    with pytest.warns(UserWarning):
        ref = torch.nn.functional.softmax(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-12)


def test_large_magnitude_activations_are_finite(torch):
    x = np.array([-1e4, -100.0, -30.0, 30.0, 100.0, 1e4], dtype=np.float32)
    compare(torch, F.gelu, torch.nn.functional.gelu, x)
    compare(torch, F.sigmoid, torch.sigmoid, x)
    # PyTorch 2.13's float32 tanh-approximate GELU overflows to inf at x = 100; the formula's
    # limits are x and 0, which is what wally gives.
    out = F.gelu(wally.tensor(x), approximate="tanh").numpy()
    np.testing.assert_allclose(out, np.where(x > 0, x, 0.0), atol=1e-30)
    out = F.softplus(wally.tensor(x), threshold=1e9).numpy()
    np.testing.assert_allclose(out, np.maximum(x, 0.0), rtol=1e-6, atol=1e-12)


def test_relu_gradient_at_zero_is_zero_and_leaky_is_slope(torch):
    x = leaf(np.zeros(3))
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)
    y = leaf(np.zeros(3))
    F.leaky_relu(y, 0.25).sum().backward()
    ref = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.leaky_relu(ref, 0.25).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), ref.grad.numpy())


def test_float32_stays_float32():
    x = wally.tensor(f64(2, 3).astype(np.float32))
    for fn in (F.relu, F.leaky_relu, F.sigmoid, F.tanh, F.gelu, F.softplus,
               lambda a: F.gelu(a, approximate="tanh"), lambda a: F.softmax(a, 1),
               lambda a: F.log_softmax(a, 0)):
        assert fn(x).dtype == np.float32


def test_no_graph_under_no_grad():
    x = leaf(f64(2, 3))
    with wally.no_grad():
        y = F.gelu(x)
    assert not y.requires_grad


# ----- bad input ------------------------------------------------------------------------------
def test_softmax_dim_out_of_range():
    with pytest.raises(IndexError, match=r"softmax: dim 2 .* 2-D input \(expected -2 <= dim <= 1"):
        F.softmax(wally.zeros(2, 3), dim=2)
    with pytest.raises(IndexError, match=r"log_softmax: dim -3"):
        F.log_softmax(wally.zeros(2, 3), dim=-3)


def test_softmax_dim_must_be_int():
    with pytest.raises(TypeError, match=r"softmax: dim must be an int, got float 1.0"):
        F.softmax(wally.zeros(2, 3), dim=1.0)


def test_gelu_bad_approximate():
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        F.gelu(wally.zeros(2), approximate="erf")


def test_softplus_zero_beta():
    with pytest.raises(ValueError, match="softplus: beta must be non-zero"):
        F.softplus(wally.zeros(2), beta=0)


@pytest.mark.parametrize("name", ["leaky_relu", "gelu", "softplus", "softmax", "log_softmax"])
def test_integer_input_rejected(name):
    args = (0,) if "softmax" in name else ()
    with pytest.raises(TypeError, match=rf"{name}: expected a floating-point input.* got dtype "
                                        r"(wally\.)?int64"):
        getattr(F, name)(wally.tensor([1, 2]), *args)


def test_softmax_of_integers_with_a_float_dtype():
    out = F.softmax(wally.tensor([0, 0]), 0, dtype=wally.float32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), [0.5, 0.5])
