"""The losses of issue 18 part 5 (smooth L1, Huber, KL, Poisson/Gaussian NLL, margin and
embedding losses): values and gradients of every input against PyTorch over hypothesis grids
that reach every option (float32 and float64, broadcasting, kinks and margins met exactly),
float64 central differences, per-element ``math`` formulas, the layers' signatures and
printed forms, and bad arguments."""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally import nn
from wally.testing import gradcheck

EXAMPLES = 25
REDUCTIONS = ["mean", "sum", "none"]
DTYPES = [np.float32, np.float64]


def tolerance(dtype):
    return dict(rtol=3e-5, atol=3e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def compare(torch, ours_fn, theirs_fn, arrays, grads, rtol=1e-10, atol=1e-12):
    """Values and gradients of ``ours_fn(*wally tensors)`` and ``theirs_fn(*torch tensors)``;
    ``grads[i]`` says whether ``arrays[i]`` requires grad."""
    ours = [wally.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]
    theirs = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, ref = ours_fn(*ours), theirs_fn(*theirs)
    assert out.shape == tuple(ref.shape)
    assert out.dtype == np.dtype(str(ref.dtype).replace("torch.", ""))
    np.testing.assert_allclose(out.array, ref.detach().numpy(), rtol=rtol, atol=atol)
    if not any(grads):
        return
    weights = np.random.default_rng(1).standard_normal(ref.shape).astype(out.dtype)
    out.backward(wally.tensor(weights))
    ref.backward(torch.tensor(weights))
    for o, t in zip(ours, theirs):
        if t.requires_grad:
            assert o.grad is not None and o.grad.dtype == o.dtype
            np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol)


def rand(shape, seed, dtype, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def signs(shape, seed, dtype, zero=False):
    choices = [-1.0, 1.0, 0.0] if zero else [-1.0, 1.0]
    return np.random.default_rng(seed).choice(choices, shape).astype(dtype)


shapes = st.sampled_from([(), (1,), (5,), (3, 4), (2, 3, 5)])


# ----- smooth L1 and Huber -------------------------------------------------------------------
@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=shapes, dtype=st.sampled_from(DTYPES), beta=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
       reduction=st.sampled_from(REDUCTIONS), broadcast=st.booleans(),
       target_grad=st.booleans(), huber=st.booleans(), seed=st.integers(0, 99))
def test_smooth_l1_and_huber_match_torch(torch, shape, dtype, beta, reduction, broadcast,
                                         target_grad, huber, seed):
    x = rand(shape, seed, dtype)
    t = rand(shape[-1:] if broadcast else shape, seed + 1, dtype)
    if x.size:  # kinks: |x - t| = beta exactly (dyadic numbers, exact in float32)
        x.flat[0], (t if not broadcast else x).flat[0] = 0.25 + (beta or 0.5), 0.25
        if broadcast:
            t.flat[0] = 0.25
        x.flat[-1] = t.flat[-1]  # d = 0, where sign(0) = 0 for beta = 0
    if huber:
        delta = beta or 1.0
        compare(torch, lambda a, b: F.huber_loss(a, b, reduction=reduction, delta=delta),
                lambda a, b: torch.nn.functional.huber_loss(a, b, reduction=reduction,
                                                            delta=delta),
                [x, t], [True, target_grad], **tolerance(dtype))
    else:
        compare(torch, lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta),
                lambda a, b: torch.nn.functional.smooth_l1_loss(a, b, reduction=reduction,
                                                                beta=beta),
                [x, t], [True, target_grad], **tolerance(dtype))


@settings(max_examples=15, deadline=None)
@given(shape=st.sampled_from([(4,), (2, 3)]), reduction=st.sampled_from(REDUCTIONS),
       seed=st.integers(0, 99))
def test_huber_weight_matches_torch(torch, shape, reduction, seed):
    x, t = rand(shape, seed, np.float64), rand(shape, seed + 1, np.float64)
    w = rand(shape, seed + 2, np.float64, 0.1, 2.0)
    compare(torch, lambda a, b, c: F.huber_loss(a, b, reduction, 0.7, c),
            lambda a, b, c: torch.nn.functional.huber_loss(a, b, reduction, 0.7, c),
            [x, t, w], [True, True, False])


def test_smooth_l1_gradient_at_kinks_by_hand():
    """|d| = beta belongs to the quadratic piece's slope d / beta = ±1; d = 0 has slope 0."""
    x = wally.tensor([1.5, -0.5, 0.5, 0.5], requires_grad=True)
    F.smooth_l1_loss(x, wally.tensor([0.5, 0.5, 0.5, 0.0]), reduction="sum", beta=1.0).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, -1.0, 0.0, 0.5])
    x.grad = None
    F.smooth_l1_loss(x, wally.tensor([0.5, 0.5, 0.5, 0.0]), reduction="sum", beta=0.0).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, -1.0, 0.0, 1.0])


def test_smooth_l1_and_huber_per_element_formula():
    rng = np.random.default_rng(3)
    x, t = rng.uniform(-3, 3, 40), rng.uniform(-3, 3, 40)
    for beta in (0.3, 1.0, 2.5):
        ours = F.smooth_l1_loss(wally.tensor(x), wally.tensor(t), reduction="none", beta=beta)
        huber = F.huber_loss(wally.tensor(x), wally.tensor(t), reduction="none", delta=beta)
        for i in range(x.size):
            z = abs(x[i] - t[i])
            expected = 0.5 * z * z / beta if z < beta else z - 0.5 * beta
            assert math.isclose(float(ours.array[i]), expected, rel_tol=1e-12)
            expected = 0.5 * z * z if z < beta else beta * (z - 0.5 * beta)
            assert math.isclose(float(huber.array[i]), expected, rel_tol=1e-12)


# ----- Poisson and Gaussian NLL --------------------------------------------------------------
@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=shapes, dtype=st.sampled_from(DTYPES), log_input=st.booleans(), full=st.booleans(),
       eps=st.sampled_from([1e-8, 0.1]), reduction=st.sampled_from(REDUCTIONS),
       target_grad=st.booleans(), seed=st.integers(0, 99))
def test_poisson_nll_matches_torch(torch, shape, dtype, log_input, full, eps, reduction,
                                   target_grad, seed):
    x = rand(shape, seed, dtype, -2, 2) if log_input else rand(shape, seed, dtype, 0.05, 4)
    # counts on both sides of the Stirling cut-off y > 1 (y = 1 exactly included); without
    # target gradients also y = 0 (PyTorch's own target gradient is NaN there with full=True)
    t = np.random.default_rng(seed + 1).choice([0.5, 1.0, 2.0, 3.5, 7.0] if target_grad
                                                else [0.0, 1.0, 2.0, 5.0], shape).astype(dtype)
    compare(torch,
            lambda a, b: F.poisson_nll_loss(a, b, log_input, full, eps=eps, reduction=reduction),
            lambda a, b: torch.nn.functional.poisson_nll_loss(a, b, log_input, full, eps=eps,
                                                              reduction=reduction),
            [x, t], [True, target_grad], **tolerance(dtype))


VAR_CASES = [  # (input shape, var shape)
    ((4, 3), (4, 3)), ((4, 3), (4,)), ((4, 3), (4, 1)), ((2, 3, 5), (2, 1, 5)),
    ((2, 3, 5), (2, 3)), ((5,), (5,)), ((5,), (1,)), ((3, 4), (1, 4)),
]


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=st.sampled_from(VAR_CASES), dtype=st.sampled_from(DTYPES), full=st.booleans(),
       eps=st.sampled_from([1e-6, 0.3]), reduction=st.sampled_from(REDUCTIONS),
       grads=st.tuples(st.booleans(), st.booleans()), seed=st.integers(0, 99))
def test_gaussian_nll_matches_torch(torch, case, dtype, full, eps, reduction, grads, seed):
    shape, var_shape = case
    x, t = rand(shape, seed, dtype), rand(shape, seed + 1, dtype)
    var = rand(var_shape, seed + 2, dtype, 0.0, 1.5)  # some entries below eps: clamped
    compare(torch,
            lambda a, b, v: F.gaussian_nll_loss(a, b, v, full=full, eps=eps,
                                                reduction=reduction),
            lambda a, b, v: torch.nn.functional.gaussian_nll_loss(a, b, v, full=full, eps=eps,
                                                                  reduction=reduction),
            [x, t, var], [True, grads[0], grads[1]], **tolerance(dtype))


def test_gaussian_nll_scalar_var_matches_torch(torch):
    x, t = rand((3, 2), 0, np.float64), rand((3, 2), 1, np.float64)
    compare(torch, lambda a, b: F.gaussian_nll_loss(a, b, 0.5),
            lambda a, b: torch.nn.functional.gaussian_nll_loss(a, b, 0.5), [x, t],
            [True, True])


def test_gaussian_nll_clamped_var_gradient_passes_through():
    var = wally.tensor([1e-9, 2.0], dtype=wally.float64, requires_grad=True)
    F.gaussian_nll_loss(wally.tensor([1.0, 1.0], dtype=wally.float64),
                        wally.tensor([0.0, 0.0], dtype=wally.float64), var, eps=1e-3,
                        reduction="sum").backward()
    v = np.array([1e-3, 2.0])
    np.testing.assert_allclose(var.grad.numpy(), 0.5 / v - 0.5 / v ** 2)


# ----- KL divergence -------------------------------------------------------------------------
@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=shapes, dtype=st.sampled_from(DTYPES), log_target=st.booleans(),
       reduction=st.sampled_from(["batchmean", "mean", "sum", "none"]),
       target_grad=st.booleans(), seed=st.integers(0, 99))
def test_kl_div_matches_torch(torch, shape, dtype, log_target, reduction, target_grad, seed):
    x = rand(shape, seed, dtype, -4, 0)
    t = rand(shape, seed + 1, dtype, -3, 0) if log_target else rand(shape, seed + 1, dtype, 0, 1)
    if not log_target and not target_grad and t.size:
        t.flat[0] = 0.0  # 0 log 0 = 0 (its target gradient is NaN in PyTorch too)
    compare(torch, lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
            lambda a, b: torch.nn.functional.kl_div(a, b, reduction=reduction,
                                                    log_target=log_target),
            [x, t], [True, target_grad], **tolerance(dtype))


def test_kl_div_mean_warns_like_torch_and_batchmean_does_not(torch):
    x, t = wally.tensor(rand((2, 3), 0, np.float32, -2, 0)), wally.tensor(np.full((2, 3), 0.3))
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(x, t)
    with pytest.warns(UserWarning, match="batchmean"):
        torch.nn.functional.kl_div(torch.tensor(x.array), torch.tensor(t.array))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.kl_div(x, t, reduction="batchmean")
        F.kl_div(x, t, reduction="sum")
    total = float(F.kl_div(x, t, reduction="sum").array)
    assert float(F.kl_div(x, t, reduction="batchmean").array) == pytest.approx(total / 2)


# ----- margin ranking, hinge and cosine embedding --------------------------------------------
@settings(max_examples=EXAMPLES, deadline=None)
@given(n=st.sampled_from([0, 1, 6]), dtype=st.sampled_from(DTYPES),
       margin=st.sampled_from([0.0, 0.5, 1.0]), reduction=st.sampled_from(REDUCTIONS),
       grads=st.tuples(st.booleans(), st.booleans()), seed=st.integers(0, 99))
def test_margin_ranking_matches_torch(torch, n, dtype, margin, reduction, grads, seed):
    shape = () if n == 0 else (n,)
    x1, x2, y = rand(shape, seed, dtype), rand(shape, seed + 1, dtype), signs(shape, seed, dtype)
    if n:  # a margin met exactly: -y (x1 - x2) + margin = 0
        x2.flat[0], x1.flat[0], y.flat[0] = 0.25, 0.25 + margin, 1.0
    compare(torch, lambda a, b, c: F.margin_ranking_loss(a, b, c, margin, reduction=reduction),
            lambda a, b, c: torch.nn.functional.margin_ranking_loss(a, b, c, margin,
                                                                    reduction=reduction),
            [x1, x2, y], [True, grads[0], grads[1]], **tolerance(dtype))


@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=shapes, dtype=st.sampled_from(DTYPES), margin=st.sampled_from([0.5, 1.0, 2.0]),
       reduction=st.sampled_from(REDUCTIONS), seed=st.integers(0, 99))
def test_hinge_embedding_matches_torch(torch, shape, dtype, margin, reduction, seed):
    x, y = rand(shape, seed, dtype, 0, 3), signs(shape, seed, dtype, zero=True)
    if x.size:  # margin - x = 0 exactly for a dissimilar pair
        x.flat[0], y.flat[0] = margin, -1.0
    compare(torch, lambda a, b: F.hinge_embedding_loss(a, b, margin, reduction=reduction),
            lambda a, b: torch.nn.functional.hinge_embedding_loss(a, b, margin,
                                                                  reduction=reduction),
            [x, y], [True, False], **tolerance(dtype))


@settings(max_examples=EXAMPLES, deadline=None)
@given(n=st.sampled_from([0, 1, 5]), d=st.sampled_from([1, 4]), dtype=st.sampled_from(DTYPES),
       margin=st.sampled_from([-0.5, 0.0, 0.3]), reduction=st.sampled_from(REDUCTIONS),
       seed=st.integers(0, 99), second_grad=st.booleans())
def test_cosine_embedding_matches_torch(torch, n, d, dtype, margin, reduction, seed,
                                        second_grad):
    shape = (d,) if n == 0 else (n, d)
    x1, x2 = rand(shape, seed, dtype), rand(shape, seed + 1, dtype)
    y = signs(shape[:-1], seed, dtype, zero=True)
    compare(torch, lambda a, b, c: F.cosine_embedding_loss(a, b, c, margin, reduction=reduction),
            lambda a, b, c: torch.nn.functional.cosine_embedding_loss(a, b, c, margin,
                                                                      reduction=reduction),
            [x1, x2, y], [True, second_grad, False], **tolerance(dtype))


# ----- triplet margin ------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(n=st.sampled_from([0, 1, 4]), d=st.sampled_from([1, 3]), dtype=st.sampled_from(DTYPES),
       p=st.sampled_from([1.0, 2.0, 3.0, 1.5, math.inf]), eps=st.sampled_from([1e-6, 0.0]),
       swap=st.booleans(), margin=st.sampled_from([0.1, 1.0, 3.0]),
       reduction=st.sampled_from(REDUCTIONS), tie=st.booleans(), seed=st.integers(0, 99))
def test_triplet_margin_matches_torch(torch, n, d, dtype, p, eps, swap, margin, reduction, tie,
                                      seed):
    shape = (d,) if n == 0 else (n, d)
    a, pos, neg = (rand(shape, seed + i, dtype) for i in range(3))
    if tie:  # positive = anchor: the swap's min(d(a, n), d(p, n)) ties, gradient split
        pos = a.copy() + np.asarray(0.5, dtype)
        a = a + np.asarray(0.5, dtype)
    compare(torch,
            lambda x, y, z: F.triplet_margin_loss(x, y, z, margin, p, eps, swap,
                                                  reduction=reduction),
            lambda x, y, z: torch.nn.functional.triplet_margin_loss(x, y, z, margin, p, eps,
                                                                    swap, reduction=reduction),
            [a, pos, neg], [True, True, True],
            **(dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else tolerance(dtype)))


# ----- soft margin and multi-label soft margin -----------------------------------------------
@settings(max_examples=EXAMPLES, deadline=None)
@given(shape=shapes, dtype=st.sampled_from(DTYPES), reduction=st.sampled_from(REDUCTIONS),
       seed=st.integers(0, 99))
def test_soft_margin_matches_torch(torch, shape, dtype, reduction, seed):
    """(PyTorch has no target gradient for this loss; wally's is checked by gradcheck.)"""
    x, y = rand(shape, seed, dtype, -5, 5), signs(shape, seed, dtype)
    compare(torch, lambda a, b: F.soft_margin_loss(a, b, reduction=reduction),
            lambda a, b: torch.nn.functional.soft_margin_loss(a, b, reduction=reduction),
            [x, y], [True, False], **tolerance(dtype))


def test_soft_margin_finite_where_torch_overflows(torch):
    x, y = np.array([100.0, -100.0], np.float32), np.array([-1.0, 1.0], np.float32)
    ours = F.soft_margin_loss(wally.tensor(x), wally.tensor(y), reduction="none")
    np.testing.assert_allclose(ours.array, [100.0, 100.0])
    assert np.isinf(torch.nn.functional.soft_margin_loss(
        torch.tensor(x), torch.tensor(y), reduction="none").numpy()).all()


@settings(max_examples=EXAMPLES, deadline=None)
@given(n=st.sampled_from([0, 1, 4]), c=st.sampled_from([1, 5]), dtype=st.sampled_from(DTYPES),
       weighted=st.booleans(), reduction=st.sampled_from(REDUCTIONS),
       target_grad=st.booleans(), seed=st.integers(0, 99))
def test_multilabel_soft_margin_matches_torch(torch, n, c, dtype, weighted, reduction,
                                              target_grad, seed):
    shape = (c,) if n == 0 else (n, c)
    x = rand(shape, seed, dtype, -4, 4)
    y = np.random.default_rng(seed).integers(0, 2, shape).astype(dtype)
    w = rand((c,), seed + 5, dtype, 0.1, 2) if weighted else None
    compare(torch,
            lambda a, b: F.multilabel_soft_margin_loss(
                a, b, None if w is None else wally.tensor(w), reduction=reduction),
            lambda a, b: torch.nn.functional.multilabel_soft_margin_loss(
                a, b, None if w is None else torch.tensor(w), reduction=reduction),
            [x, y], [True, target_grad], **tolerance(dtype))


# ----- float64 central differences -----------------------------------------------------------
def f64(*shape, seed=0, low=-2.0, high=2.0):
    return wally.tensor(rand(shape, seed, np.float64, low, high), requires_grad=True)


def test_gradcheck_every_loss():
    x, t = f64(3, 4), f64(3, 4, seed=1)
    for reduction in REDUCTIONS:
        gradcheck(lambda a, b, r=reduction: F.smooth_l1_loss(a, b, reduction=r, beta=0.7), x, t)
        gradcheck(lambda a, b, r=reduction: F.huber_loss(a, b, reduction=r, delta=0.7), x, t)
        gradcheck(lambda a, b, r=reduction: F.soft_margin_loss(a, b, reduction=r), x, t)
    pos = f64(3, 4, seed=2, low=0.5, high=3.0)
    gradcheck(lambda a, b: F.poisson_nll_loss(a, b, full=True), x, pos)
    gradcheck(lambda a, b: F.poisson_nll_loss(a, b, log_input=False, full=True), pos,
              f64(3, 4, seed=9, low=0.5, high=3.0))
    var = f64(3, 1, seed=3, low=0.2, high=2.0)
    gradcheck(lambda a, b, v: F.gaussian_nll_loss(a, b, v, full=True, reduction="none"),
              x, t, var)
    probs = f64(3, 4, seed=4, low=0.1, high=1.0)
    for reduction in ("batchmean", "sum", "none"):
        gradcheck(lambda a, b, r=reduction: F.kl_div(a, b, reduction=r), x, probs)
        gradcheck(lambda a, b, r=reduction: F.kl_div(a, b, reduction=r, log_target=True), x, t)
    y = wally.tensor(np.array([1.0, -1.0, 1.0]))
    v1, v2 = f64(3, seed=5), f64(3, seed=6)
    gradcheck(lambda a, b: F.margin_ranking_loss(a, b, y, 0.3, reduction="none"), v1, v2)
    gradcheck(lambda a: F.hinge_embedding_loss(a, y, 1.5, reduction="none"), v1)
    gradcheck(lambda a, b: F.cosine_embedding_loss(a, b, y, 0.1, reduction="none"), x, t)
    n = f64(3, 4, seed=8)
    for p in (1.5, 2.0, 3.0):
        gradcheck(lambda a, b, c, p=p: F.triplet_margin_loss(a, b, c, 3.0, p, swap=True,
                                                        reduction="none"), x, t, n)
    labels = wally.tensor(np.array([[1.0, 0, 1, 0], [0, 0, 1, 1], [1, 1, 1, 0]]))
    gradcheck(lambda a: F.multilabel_soft_margin_loss(a, labels, reduction="none"), x)


def test_per_element_formulas_of_the_other_losses():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-3, 3, 30), rng.choice([-1.0, 1.0], 30)
    soft = F.soft_margin_loss(wally.tensor(x), wally.tensor(y), reduction="none").array
    hinge = F.hinge_embedding_loss(wally.tensor(x), wally.tensor(y), 0.8, reduction="none").array
    counts = rng.integers(0, 9, 30).astype(float)
    poisson = F.poisson_nll_loss(wally.tensor(x), wally.tensor(counts), full=True,
                                 reduction="none").array
    for i in range(30):
        assert math.isclose(soft[i], math.log(1 + math.exp(-y[i] * x[i])), rel_tol=1e-12)
        expected = x[i] if y[i] == 1 else max(0.0, 0.8 - x[i])
        assert math.isclose(hinge[i], expected, rel_tol=1e-12, abs_tol=1e-15)
        k = counts[i]
        stirling = k * math.log(k) - k + 0.5 * math.log(2 * math.pi * k) if k > 1 else 0.0
        assert math.isclose(poisson[i], math.exp(x[i]) - k * x[i] + stirling, rel_tol=1e-12)


# ----- layers --------------------------------------------------------------------------------
LAYERS = ["SmoothL1Loss", "HuberLoss", "KLDivLoss", "PoissonNLLLoss", "GaussianNLLLoss",
          "MarginRankingLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss",
          "TripletMarginLoss", "SoftMarginLoss", "MultiLabelSoftMarginLoss"]
FUNCTIONS = ["smooth_l1_loss", "huber_loss", "kl_div", "poisson_nll_loss", "gaussian_nll_loss",
             "margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss",
             "triplet_margin_loss", "soft_margin_loss", "multilabel_soft_margin_loss"]


def _signature(fn):
    return [(p.name, p.default, p.kind) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", LAYERS)
def test_layer_signature_and_repr_match_torch(torch, name):
    ours, theirs = getattr(nn, name), getattr(torch.nn, name)
    assert _signature(ours.__init__) == _signature(theirs.__init__)
    assert repr(ours()) == repr(theirs())
    assert [p.name for p in inspect.signature(ours.forward).parameters.values()] == \
        [p.name for p in inspect.signature(theirs.forward).parameters.values()]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_functional_signature_matches_torch(torch, name):
    ours, theirs = getattr(F, name), getattr(torch.nn.functional, name)
    assert [(n, d) for n, d, _ in _signature(ours)] == [(n, d) for n, d, _ in _signature(theirs)]


def test_layers_call_their_functions(torch):
    x, t = rand((3, 4), 0, np.float64), rand((3, 4), 1, np.float64)
    y = signs((3,), 0, np.float64)
    cases = [
        (nn.SmoothL1Loss(reduction="sum", beta=0.5), torch.nn.SmoothL1Loss(reduction="sum",
                                                                           beta=0.5), [x, t]),
        (nn.HuberLoss("none", 0.5), torch.nn.HuberLoss("none", 0.5), [x, t]),
        (nn.KLDivLoss(reduction="batchmean", log_target=True),
         torch.nn.KLDivLoss(reduction="batchmean", log_target=True), [x, t]),
        (nn.PoissonNLLLoss(full=True), torch.nn.PoissonNLLLoss(full=True), [x, np.abs(t)]),
        (nn.GaussianNLLLoss(full=True), torch.nn.GaussianNLLLoss(full=True),
         [x, t, np.abs(t[:, :1])]),
        (nn.MarginRankingLoss(0.2), torch.nn.MarginRankingLoss(0.2), [x[:, 0], t[:, 0], y]),
        (nn.HingeEmbeddingLoss(0.4), torch.nn.HingeEmbeddingLoss(0.4), [x, np.sign(t)]),
        (nn.CosineEmbeddingLoss(0.1), torch.nn.CosineEmbeddingLoss(0.1), [x, t, y]),
        (nn.TripletMarginLoss(0.5, 1.0, swap=True), torch.nn.TripletMarginLoss(0.5, 1.0,
                                                                               swap=True),
         [x, t, x[::-1].copy()]),
        (nn.SoftMarginLoss(), torch.nn.SoftMarginLoss(), [x, np.sign(t)]),
        (nn.MultiLabelSoftMarginLoss(wally.tensor(np.arange(1.0, 5.0))),
         torch.nn.MultiLabelSoftMarginLoss(torch.tensor(np.arange(1.0, 5.0))), [x, t > 0]),
    ]
    for ours, theirs, arrays in cases:
        arrays = [a.astype(np.float64) for a in arrays]
        compare(torch, ours, theirs, arrays, [True] + [False] * (len(arrays) - 1))
    assert list(nn.MultiLabelSoftMarginLoss(wally.ones(3)).state_dict()) == ["weight"]


def test_legacy_size_average_and_reduce(torch):
    x, t = rand((3, 4), 0, np.float64), rand((3, 4), 1, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for size_average, reduce in ((False, None), (None, False), (True, True)):
            compare(torch, nn.SmoothL1Loss(size_average, reduce),
                    torch.nn.SmoothL1Loss(size_average, reduce), [x, t], [True, False])
            compare(torch, lambda a, b, s=size_average, r=reduce: F.kl_div(a, b, s, r),
                    lambda a, b, s=size_average, r=reduce: torch.nn.functional.kl_div(a, b, s, r),
                    [x, t], [True, False])
            assert nn.KLDivLoss(size_average, reduce).reduction == \
                torch.nn.KLDivLoss(size_average, reduce).reduction


# ----- bad arguments -------------------------------------------------------------------------
x3 = wally.randn(3)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: F.smooth_l1_loss(x3, x3, beta=-1.0), ValueError,
     r"smooth_l1_loss: beta must be >= 0, got -1"),
    (lambda: F.huber_loss(x3, x3, delta=0.0), ValueError, r"huber_loss: delta must be > 0, got 0"),
    (lambda: F.huber_loss(x3, x3, weight=wally.ones(2)), ValueError,
     r"huber_loss: expected a weight of the input's shape \(3,\), got shape \(2,\)"),
    (lambda: F.smooth_l1_loss(x3, wally.ones(4)), ValueError,
     r"smooth_l1_loss: the target shape \(4,\) does not broadcast with the input shape \(3,\)"),
    (lambda: F.smooth_l1_loss(x3, x3, reduction="avg"), ValueError,
     r"smooth_l1_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: F.kl_div(x3, x3, reduction="avg"), ValueError,
     r"kl_div: reduction must be 'batchmean', 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: F.poisson_nll_loss(wally.tensor([1, 2]), wally.ones(2)), TypeError,
     r"poisson_nll_loss: expected a floating-point input, got dtype wally\.int64"),
    (lambda: F.gaussian_nll_loss(x3, x3, -1.0), ValueError,
     r"gaussian_nll_loss: var must be non-negative, got -1"),
    (lambda: F.gaussian_nll_loss(x3, x3, wally.tensor([1.0, -2.0, 1.0])), ValueError,
     r"gaussian_nll_loss: var must be non-negative, got a negative entry -2"),
    (lambda: F.gaussian_nll_loss(wally.randn(4, 3), wally.randn(4, 3), wally.ones(4, 2)),
     ValueError, r"gaussian_nll_loss: var is of incorrect size: .* got shape \(4, 2\)"),
    (lambda: F.margin_ranking_loss(x3, x3, wally.ones(1, 3)), ValueError,
     r"margin_ranking_loss: expected input1, input2 and target of the same number of "
     r"dimensions, got shapes \(3,\), \(3,\) and \(1, 3\)"),
    (lambda: F.cosine_embedding_loss(x3, x3, wally.ones(3)), ValueError,
     r"cosine_embedding_loss: a 1-D target expects 2-D inputs \(\(N, D\)\), got shapes "
     r"\(3,\) and \(3,\)"),
    (lambda: F.cosine_embedding_loss(x3, x3, wally.ones(3, 1)), ValueError,
     r"cosine_embedding_loss: expected a 0-D or 1-D target .* got shape \(3, 1\)"),
    (lambda: F.triplet_margin_loss(x3, x3, wally.randn(2, 3)), ValueError,
     r"triplet_margin_loss: expected anchor, positive and negative of the same number of "
     r"dimensions, got 1-D, 1-D and 2-D inputs"),
    (lambda: F.triplet_margin_loss(x3, x3, x3, margin=0.0), ValueError,
     r"triplet_margin_loss: margin must be > 0, got 0"),
    (lambda: F.triplet_margin_loss(x3, x3, x3, p=0), ValueError,
     r"triplet_margin_loss: p must be > 0 \(a p-norm\), got 0"),
    (lambda: F.triplet_margin_loss(x3, x3, x3, margin="1"), TypeError,
     r"triplet_margin_loss: margin must be a real number, got '1'"),
    (lambda: F.multilabel_soft_margin_loss(wally.randn(2, 3), wally.ones(2, 4)), ValueError,
     r"multilabel_soft_margin_loss: expected a target of the same shape as the input "
     r"\(2, 3\), got shape \(2, 4\)"),
    (lambda: F.multilabel_soft_margin_loss(wally.randn(2, 3), wally.ones(2, 3),
                                           wally.ones(4)), ValueError,
     r"multilabel_soft_margin_loss: expected a weight broadcastable to the input shape "
     r"\(2, 3\), got shape \(4,\)"),
    (lambda: nn.KLDivLoss(reduction="avg"), ValueError,
     r"KLDivLoss: reduction must be 'none', 'batchmean', 'mean' or 'sum', got 'avg'"),
    (lambda: nn.TripletMarginLoss(margin=-1.0), ValueError,
     r"TripletMarginLoss: margin must be > 0, got -1"),
    (lambda: nn.SoftMarginLoss(reduction="avg"), ValueError,
     r"SoftMarginLoss: reduction must be 'none', 'mean' or 'sum', got 'avg'"),
])
def test_bad_arguments(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_loop_references_of_kl_gaussian_cosine_and_triplet():
    rng = np.random.default_rng(5)
    logp, q = rng.uniform(-3, 0, (4, 3)), rng.uniform(0, 1, (4, 3))
    q[0, 0] = 0.0
    kl = F.kl_div(wally.tensor(logp), wally.tensor(q), reduction="batchmean").item()
    expected = sum(q[i, j] * (math.log(q[i, j]) - logp[i, j]) if q[i, j] > 0 else 0.0
                   for i in range(4) for j in range(3)) / 4
    assert math.isclose(kl, expected, rel_tol=1e-12)

    x, y, var = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.uniform(0, 1, (4, 1))
    var[0, 0] = 1e-9  # clamped at eps
    nll = F.gaussian_nll_loss(wally.tensor(x), wally.tensor(y), wally.tensor(var), full=True,
                              eps=1e-3, reduction="none").array
    for i in range(4):
        v = max(var[i, 0], 1e-3)
        for j in range(3):
            expected = 0.5 * (math.log(v) + (x[i, j] - y[i, j]) ** 2 / v) \
                + 0.5 * math.log(2 * math.pi)
            assert math.isclose(nll[i, j], expected, rel_tol=1e-12)

    a, b, c = rng.normal(size=(5, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    labels = np.array([1.0, -1.0, 1.0, -1.0, 0.0])
    cos = F.cosine_embedding_loss(wally.tensor(a), wally.tensor(b), wally.tensor(labels), 0.1,
                                  reduction="none").array
    for p in (1.0, 2.0, 3.0, math.inf):
        triplet = F.triplet_margin_loss(wally.tensor(a), wally.tensor(b), wally.tensor(c),
                                        margin=0.7, p=p, swap=True, reduction="none").array
        for i in range(5):
            def dist(u, v, p=p):
                d = [u[k] - v[k] + 1e-6 for k in range(4)]
                return max(abs(t) for t in d) if math.isinf(p) else \
                    sum(abs(t) ** p for t in d) ** (1 / p)
            d_neg = min(dist(a[i], c[i]), dist(b[i], c[i]))
            expected = max(0.0, 0.7 + dist(a[i], b[i]) - d_neg)
            assert math.isclose(triplet[i], expected, rel_tol=1e-10, abs_tol=1e-12)
    for i in range(5):
        dot = sum(a[i, k] * b[i, k] for k in range(4))
        norm = math.sqrt((sum(t * t for t in a[i]) + 1e-12) * (sum(t * t for t in b[i]) + 1e-12))
        c_i = dot / norm
        expected = 1 - c_i if labels[i] == 1 else max(0.0, c_i - 0.1) if labels[i] == -1 else 0
        assert math.isclose(cos[i], expected, rel_tol=1e-12, abs_tol=1e-15)
