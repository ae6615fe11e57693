"""``batch_norm``: float64 central differences in both modes, values, gradients and running
statistics against PyTorch over hypothesis grids, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally.testing import gradcheck

EXAMPLES = 50

SHAPES = [(4, 3), (3, 2, 5), (2, 3, 4, 3), (2, 2, 2, 3, 2)]


def leaf(array):
    return wally.tensor(array, requires_grad=True)


def f64(*shape, seed=0, scale=1.0, shift=0.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale + shift


# ----- gradient checks in float64 -------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck_training(shape, affine):
    c = shape[1]
    x = leaf(f64(*shape, scale=2.0, shift=1.0))
    params = [leaf(f64(c, seed=1)), leaf(f64(c, seed=2))] if affine else []
    assert gradcheck(lambda a, *wb: F.batch_norm(a, None, None, *wb, training=True), x, *params)


@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck_eval(shape):
    c = shape[1]
    mean, var = wally.tensor(f64(c, seed=3)), wally.tensor(np.abs(f64(c, seed=4)) + 0.5)
    x, w, b = leaf(f64(*shape)), leaf(f64(c, seed=1)), leaf(f64(c, seed=2))
    assert gradcheck(lambda a, w_, b_: F.batch_norm(a, mean, var, w_, b_, training=False),
                     x, w, b)


def test_gradcheck_weight_only_and_bias_only():
    x = leaf(f64(5, 3, 2))
    w = leaf(f64(3, seed=1))
    b = leaf(f64(3, seed=2))
    assert gradcheck(lambda a, w_: F.batch_norm(a, None, None, w_, training=True), x, w)
    assert gradcheck(lambda a, b_: F.batch_norm(a, None, None, None, b_, training=True), x, b)
    assert gradcheck(lambda w_: F.batch_norm(wally.tensor(f64(5, 3)), None, None, w_,
                                             training=True), w)


def test_gradcheck_while_updating_running_stats():
    # The running statistics change on every call but never feed the training-mode output.
    mean, var = wally.zeros(3, dtype=wally.float64), wally.ones(3, dtype=wally.float64)
    assert gradcheck(lambda a: F.batch_norm(a, mean, var, training=True), leaf(f64(4, 3, 2)))


# ----- against PyTorch ------------------------------------------------------------------------
@st.composite
def bn_case(draw):
    n = draw(st.integers(1, 4))
    c = draw(st.integers(1, 4))
    spatial = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=3)))
    if n * int(np.prod(spatial)) == 1:
        n = 2
    return dict(
        shape=(n, c, *spatial),
        training=draw(st.booleans()),
        affine=draw(st.sampled_from(["both", "weight", "bias", "none"])),
        track=draw(st.booleans()),
        momentum=draw(st.sampled_from([0.1, 0.0, 0.5, 1.0])),
        eps=draw(st.sampled_from([1e-5, 1e-3, 0.5])),
        seed=draw(st.integers(0, 2**16)),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
    )


def run_both(torch, case):
    """Run wally and torch on the same arrays; return (out, ref, ours, theirs, stats pairs)."""
    rng = np.random.default_rng(case["seed"])
    dtype = case["dtype"]
    shape = case["shape"]
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + rng.standard_normal(c).reshape(
        (1, c) + (1,) * (len(shape) - 2))).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if case["affine"] in ("both", "weight") else None
    b = rng.standard_normal(c).astype(dtype) if case["affine"] in ("both", "bias") else None
    ours = [wally.tensor(x, requires_grad=True)]
    theirs = [torch.tensor(x, requires_grad=True)]
    for p in (w, b):
        ours.append(None if p is None else wally.tensor(p, requires_grad=True))
        theirs.append(None if p is None else torch.tensor(p, requires_grad=True))
    track = case["track"] or not case["training"]
    mean = rng.standard_normal(c).astype(dtype)
    var = (rng.random(c) + 0.5).astype(dtype)
    stats_ours = [wally.tensor(mean.copy()), wally.tensor(var.copy())] if track else [None, None]
    stats_theirs = [torch.tensor(mean.copy()), torch.tensor(var.copy())] if track \
        else [None, None]
    kw = dict(training=case["training"], momentum=case["momentum"], eps=case["eps"])
    out = F.batch_norm(ours[0], *stats_ours, ours[1], ours[2], **kw)
    ref = torch.nn.functional.batch_norm(theirs[0], *stats_theirs, theirs[1], theirs[2], **kw)
    return out, ref, ours, theirs, list(zip(stats_ours, stats_theirs))


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=bn_case())
def test_batch_norm_matches_torch(torch, case):
    out, ref, ours, theirs, stats = run_both(torch, case)
    tol = dict(rtol=1e-4, atol=1e-4) if case["dtype"] == np.float32 else dict(rtol=1e-9,
                                                                                atol=1e-10)
    assert out.dtype == case["dtype"] and out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.array, ref.detach().numpy(), **tol)
    for s_ours, s_theirs in stats:
        if s_ours is not None:
            assert s_ours.dtype == case["dtype"]
            np.testing.assert_allclose(s_ours.numpy(), s_theirs.numpy(), **tol)
    weights = np.random.default_rng(1).standard_normal(ref.shape).astype(case["dtype"])
    out.backward(wally.tensor(weights))
    ref.backward(torch.tensor(weights))
    for o, t in zip(ours, theirs):
        if t is not None:
            assert o.grad.dtype == case["dtype"]
            np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), **tol)


def test_running_stats_match_torch_over_several_steps(torch):
    rng = np.random.default_rng(0)
    c = 3
    w = rng.standard_normal(c).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    mean_ours, var_ours = wally.zeros(c), wally.ones(c)
    mean_theirs, var_theirs = torch.zeros(c), torch.ones(c)
    for step in range(6):
        x = (rng.standard_normal((8, c, 5, 5)) * (step + 1) + step).astype(np.float32)
        out = F.batch_norm(wally.tensor(x), mean_ours, var_ours, wally.tensor(w),
                           wally.tensor(b), training=True, momentum=0.2)
        ref = torch.nn.functional.batch_norm(torch.tensor(x), mean_theirs, var_theirs,
                                             torch.tensor(w), torch.tensor(b), training=True,
                                             momentum=0.2)
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mean_ours.numpy(), mean_theirs.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var_ours.numpy(), var_theirs.numpy(), rtol=1e-5, atol=1e-6)
    assert mean_ours.dtype == np.float32 and var_ours.dtype == np.float32
    x = rng.standard_normal((4, c, 5, 5)).astype(np.float32)
    out = F.batch_norm(wally.tensor(x), mean_ours, var_ours, wally.tensor(w), wally.tensor(b))
    ref = torch.nn.functional.batch_norm(torch.tensor(x), mean_theirs, var_theirs,
                                         torch.tensor(w), torch.tensor(b))
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


def test_running_var_uses_the_unbiased_variance():
    x = np.array([[1.0], [2.0], [3.0], [6.0]])  # mean 3, biased var 3.5, unbiased 14/3
    mean, var = wally.zeros(1, dtype=wally.float64), wally.zeros(1, dtype=wally.float64)
    y = F.batch_norm(wally.tensor(x), mean, var, training=True, momentum=1.0, eps=0.0)
    np.testing.assert_allclose(mean.numpy(), [3.0])
    np.testing.assert_allclose(var.numpy(), [14 / 3])
    np.testing.assert_allclose(y.numpy(), (x - 3.0) / np.sqrt(3.5))


def test_running_stats_are_updated_in_place():
    mean, var = wally.zeros(2), wally.ones(2)
    arrays = mean.array, var.array
    F.batch_norm(wally.randn(4, 2, 3), mean, var, training=True)
    assert mean.array is arrays[0] and var.array is arrays[1]
    assert not np.allclose(mean.numpy(), 0.0)


def test_eval_leaves_running_stats_alone():
    mean, var = wally.tensor([0.5, -1.0]), wally.tensor([2.0, 0.5])
    F.batch_norm(wally.randn(4, 2), mean, var, training=False)
    np.testing.assert_array_equal(mean.numpy(), np.float32([0.5, -1.0]))
    np.testing.assert_array_equal(var.numpy(), np.float32([2.0, 0.5]))


def test_training_output_is_normalised_per_channel():
    x = wally.tensor(f64(16, 3, 4, 4, scale=5.0, shift=7.0).astype(np.float32))
    y = F.batch_norm(x, None, None, training=True).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0, rtol=1e-3)


# ----- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 3), (1, 2, 1), (1, 4, 1, 1)])
def test_one_value_per_channel_in_training(shape):
    expected = r"batch_norm: Expected more than 1 value per channel when training, got input " \
               r"size " + str(shape).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=expected):
        F.batch_norm(wally.zeros(*shape), None, None, training=True)
    mean, var = wally.zeros(shape[1]), wally.ones(shape[1])
    assert F.batch_norm(wally.zeros(*shape), mean, var, training=False).shape == shape


def test_rejects_wrong_parameter_shapes():
    x = wally.zeros(4, 3, 2)
    with pytest.raises(ValueError, match=r"batch_norm: expected running_mean of shape \(3,\) .* "
                                         r"got shape \(4,\)"):
        F.batch_norm(x, wally.zeros(4), wally.ones(4))
    with pytest.raises(ValueError, match=r"batch_norm: expected weight of shape \(3,\)"):
        F.batch_norm(x, None, None, wally.ones(2), training=True)
    with pytest.raises(ValueError, match=r"batch_norm: expected bias of shape \(3,\)"):
        F.batch_norm(x, None, None, None, wally.ones(3, 1), training=True)


def test_rejects_one_dimensional_input():
    with pytest.raises(ValueError, match=r"batch_norm: expected an input with at least 2 "
                                         r"dimensions \(N, C, \.\.\.\), got shape \(5,\)"):
        F.batch_norm(wally.zeros(5), None, None, training=True)


def test_eval_needs_running_stats():
    with pytest.raises(ValueError, match="batch_norm: running_mean and running_var are required"):
        F.batch_norm(wally.zeros(4, 3), None, None, training=False)
    with pytest.raises(ValueError, match="batch_norm: pass both running_mean and running_var"):
        F.batch_norm(wally.zeros(4, 3), wally.zeros(3), None, training=True)


def test_momentum_must_be_a_number():
    with pytest.raises(TypeError, match=r"batch_norm: momentum must be a float .* got None"):
        F.batch_norm(wally.zeros(4, 3), wally.zeros(3), wally.ones(3), training=True,
                     momentum=None)
