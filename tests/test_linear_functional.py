"""``linear``, ``flatten``, ``dropout`` and ``identity``: float64 central differences, values and
gradients against PyTorch over hypothesis grids, dropout's statistics, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally.testing import gradcheck

EXAMPLES = 40


def leaf(array):
    return wally.tensor(array, requires_grad=True)


def f64(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ----- gradient checks in float64 -------------------------------------------------------------
@pytest.mark.parametrize(
    "x_shape, out_features, bias",
    [((4, 3), 2, True), ((3,), 4, True), ((2, 3, 5), 3, False), ((2, 1, 2, 3), 2, True),
     ((1, 1), 1, False)],
)
def test_gradcheck_linear(x_shape, out_features, bias):
    x = leaf(f64(*x_shape))
    w = leaf(f64(out_features, x_shape[-1], seed=1))
    b = leaf(f64(out_features, seed=2)) if bias else None
    assert gradcheck(lambda *t: F.linear(*t), x, w, *([b] if bias else []))


def test_gradcheck_linear_only_some_inputs_require_grad():
    x = wally.tensor(f64(4, 3))
    w = leaf(f64(2, 3, seed=1))
    b = wally.tensor(f64(2, seed=2))
    assert gradcheck(F.linear, x, w, b)
    assert x.grad is None and b.grad is None
    x2 = leaf(f64(4, 3))
    w2 = wally.tensor(f64(2, 3, seed=1))
    assert gradcheck(F.linear, x2, w2)
    assert w2.grad is None


def test_gradcheck_linear_non_contiguous_input():
    x = leaf(f64(3, 4))
    w = leaf(f64(2, 3, seed=1))
    assert gradcheck(lambda a, b: F.linear(a.transpose(0, 1), b), x, w)


@pytest.mark.parametrize(
    "shape, start, end",
    [((2, 3, 4), 0, -1), ((2, 3, 4), 1, -1), ((2, 3, 4, 5), 1, 2), ((3,), 0, 0)],
)
def test_gradcheck_flatten(shape, start, end):
    assert gradcheck(lambda a: F.flatten(a, start, end) * 2, leaf(f64(*shape)))


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_gradcheck_dropout(p):
    def fn(a):
        wally.manual_seed(7)  # the same mask on every call of the central differences
        return F.dropout(a, p=p)

    assert gradcheck(fn, leaf(f64(5, 6)))


# ----- against PyTorch ------------------------------------------------------------------------
@st.composite
def linear_case(draw):
    lead = draw(st.lists(st.integers(1, 4), min_size=0, max_size=3))
    in_features, out_features = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((*lead, in_features)).astype(np.float32)
    w = rng.standard_normal((out_features, in_features)).astype(np.float32)
    b = rng.standard_normal(out_features).astype(np.float32) if draw(st.booleans()) else None
    grads = draw(st.sampled_from([(True, True, True), (False, True, True), (True, False, False)]))
    return x, w, b, grads


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=linear_case())
def test_linear_matches_torch(torch, case):
    x, w, b, (gx, gw, gb) = case
    ours = [wally.tensor(x, requires_grad=gx), wally.tensor(w, requires_grad=gw)]
    theirs = [torch.tensor(x, requires_grad=gx), torch.tensor(w, requires_grad=gw)]
    if b is not None:
        ours.append(wally.tensor(b, requires_grad=gb))
        theirs.append(torch.tensor(b, requires_grad=gb))
    out, ref = F.linear(*ours), torch.nn.functional.linear(*theirs)
    assert out.dtype == np.float32 and out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.array, ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    weights = np.random.default_rng(1).standard_normal(ref.shape).astype(np.float32)
    out.backward(wally.tensor(weights))
    ref.backward(torch.tensor(weights))
    for o, t in zip(ours, theirs):
        if t.requires_grad:
            assert o.grad.dtype == np.float32
            np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-5)
        else:
            assert o.grad is None


@st.composite
def flatten_case(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=5)))
    size = max(len(shape), 1)
    start = draw(st.integers(-size, size - 1))
    end = draw(st.integers(-size, size - 1))
    return shape, start, end


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=flatten_case())
def test_flatten_matches_torch(torch, case):
    shape, start, end = case
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    ndim = max(len(shape), 1)
    if shape and start % ndim > end % ndim:
        with pytest.raises(ValueError, match="flatten: start_dim"):
            F.flatten(wally.tensor(x), start, end)
        with pytest.raises(RuntimeError):
            torch.flatten(torch.tensor(x), start, end)
        return
    out = F.flatten(wally.tensor(x), start, end)
    ref = torch.flatten(torch.tensor(x), start, end)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


def test_flatten_defaults_to_start_dim_zero():
    assert F.flatten(wally.zeros(2, 3, 4)).shape == (24,)
    assert F.flatten(wally.zeros(2, 3, 4), 1).shape == (2, 12)


# ----- dropout --------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    n = 200_000
    out = F.dropout(wally.ones(n), p=p).numpy()
    assert out.dtype == np.float32
    dropped = np.mean(out == 0)
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(dropped - p) < 5 * sigma, (dropped, p)
    np.testing.assert_allclose(out[out != 0], 1 / (1 - p), rtol=1e-6)
    assert abs(out.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)


def test_dropout_masks_are_independent_across_calls_and_elements():
    a = F.dropout(wally.ones(10_000), p=0.5).numpy() == 0
    b = F.dropout(wally.ones(10_000), p=0.5).numpy() == 0
    assert 0.45 < np.mean(a == b) < 0.55  # two fresh masks agree half the time


def test_dropout_gradient_is_the_scaled_mask():
    x = leaf(np.full((50, 40), 3.0, dtype=np.float32))
    y = F.dropout(x, p=0.25)
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), y.detach().numpy() / 3.0, rtol=1e-6)


def test_dropout_is_repeatable_with_manual_seed():
    x = wally.ones(100)
    wally.manual_seed(3)
    a = F.dropout(x, 0.5).numpy()
    wally.manual_seed(3)
    b = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)


def test_dropout_edge_probabilities_and_eval():
    x = leaf(f64(4, 5).astype(np.float32))
    assert F.dropout(x, p=0.5, training=False) is x
    assert F.dropout(x, p=0.0) is x
    y = F.dropout(x, p=1.0)
    np.testing.assert_array_equal(y.detach().numpy(), 0.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)
    assert F.dropout(wally.tensor(f64(3)), 0.5).dtype == np.float64


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", True])
def test_dropout_rejects_bad_probability(p):
    with pytest.raises(ValueError, match=r"dropout: probability p has to be between 0 and 1, "
                                         r"but got " + repr(p).replace(".", r"\.")):
        F.dropout(wally.ones(3), p=p)


def test_identity_returns_its_input():
    x = wally.ones(2)
    assert F.identity(x) is x


# ----- bad input ------------------------------------------------------------------------------
def test_linear_rejects_mismatched_in_features():
    with pytest.raises(ValueError, match=r"linear: .*in_features=4, got shape \(2, 3\)"):
        F.linear(wally.zeros(2, 3), wally.zeros(5, 4))


def test_linear_rejects_bad_weight_and_bias():
    with pytest.raises(ValueError, match=r"linear: expected a 2-D weight .* got shape \(4,\)"):
        F.linear(wally.zeros(2, 4), wally.zeros(4))
    with pytest.raises(ValueError, match=r"linear: expected a bias of shape \(5,\), got shape "
                                         r"\(4,\)"):
        F.linear(wally.zeros(2, 4), wally.zeros(5, 4), wally.zeros(4))
    with pytest.raises(ValueError, match=r"linear: .*got shape \(\)"):
        F.linear(wally.tensor(1.0), wally.zeros(5, 1))


def test_linear_rejects_mixed_dtypes():
    with pytest.raises(TypeError, match=r"linear: .*got input (wally\.)?float64 and weight "
                                        r"(wally\.)?float32"):
        F.linear(wally.zeros(2, 4, dtype=wally.float64), wally.zeros(5, 4))


def test_flatten_rejects_bad_dims():
    with pytest.raises(ValueError, match=r"flatten: start_dim \(2\) cannot come after end_dim "
                                         r"\(1\)"):
        F.flatten(wally.zeros(2, 3, 4), 2, 1)
    with pytest.raises(IndexError, match=r"flatten: start_dim=3 is out of range for a 3-D"):
        F.flatten(wally.zeros(2, 3, 4), 3)


def test_dropout_rejects_integer_input():
    with pytest.raises(TypeError, match=r"dropout: expected a floating-point input, got dtype "
                                        r"(wally\.)?int64"):
        F.dropout(wally.tensor([1, 2, 3]), 0.5)
