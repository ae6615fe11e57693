"""Losses: float64 central differences for every option, values and gradients against PyTorch
over hypothesis grids (shapes, weights, ignore_index, label smoothing, reductions), numerical
stability at logits of ±1e4, and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally.testing import gradcheck

EXAMPLES = 50
REDUCTIONS = ["mean", "sum", "none"]


def leaf(array):
    return wally.tensor(array, requires_grad=True)


def f64(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def classes(shape, n_classes, seed=0, ignore=None, fraction=0.0):
    """Random class indices of ``shape``; a ``fraction`` of them set to ``ignore``."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, n_classes, shape)
    if ignore is not None:
        t[rng.random(shape) < fraction] = ignore
    return t


def probabilities(shape, seed=0):
    p = np.random.default_rng(seed).random(shape) + 0.1
    return p / p.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)


def check_against_torch(torch, ours_fn, theirs_fn, arrays, grads, rtol=1e-5, atol=1e-6):
    """Values and gradients of ``ours_fn(*wally tensors)`` and ``theirs_fn(*torch tensors)``;
    ``grads`` says which arrays require grad."""
    ours = [wally.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]
    theirs = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]
    out, ref = ours_fn(*ours), theirs_fn(*theirs)
    assert out.shape == tuple(ref.shape)
    assert out.dtype == np.dtype(str(ref.dtype).replace("torch.", ""))
    np.testing.assert_allclose(out.array, ref.detach().numpy(), rtol=rtol, atol=atol)
    weights = np.random.default_rng(1).standard_normal(ref.shape).astype(out.dtype)
    out.backward(wally.tensor(weights))
    ref.backward(torch.tensor(weights))
    for o, t in zip(ours, theirs):
        if t.requires_grad:
            assert o.grad is not None and o.grad.dtype == o.dtype
            np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol)


# ----- gradient checks in float64 -------------------------------------------------------------
CE_CASES = [
    # (input shape, kwargs)
    ((4, 5), {}),
    ((5,), {}),
    ((3, 4, 2, 3), {}),
    ((3, 4, 5), {"reduction": "sum"}),
    ((4, 5), {"reduction": "none"}),
    ((4, 5), {"weight": True}),
    ((6, 4), {"ignore": -100}),
    ((6, 4), {"ignore": 2, "weight": True, "reduction": "sum"}),
    ((4, 5), {"label_smoothing": 0.2}),
    ((3, 4, 2), {"label_smoothing": 0.3, "weight": True, "ignore": -100}),
    ((5,), {"label_smoothing": 0.1, "reduction": "none", "weight": True}),
    ((4, 5), {"label_smoothing": 1.0, "weight": True, "reduction": "none", "ignore": 1}),
]


def ce_call(shape, kw, probs=False):
    c = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    weight = wally.tensor(np.random.default_rng(5).random(c) + 0.2) if kw.get("weight") else None
    options = {k: v for k, v in kw.items() if k in ("reduction", "label_smoothing")}
    if probs:
        target = leaf(probabilities(shape, seed=3))
        return target, lambda x, t: F.cross_entropy(x, t, weight, **options)
    ignore = kw.get("ignore")
    t = classes(target_shape, c, seed=3, ignore=ignore, fraction=0.4 if ignore is not None else 0)
    if ignore is not None:
        options["ignore_index"] = ignore
    return wally.tensor(t), lambda x, t_: F.cross_entropy(x, t_, weight, **options)


@pytest.mark.parametrize("shape, kw", CE_CASES)
def test_gradcheck_cross_entropy_class_indices(shape, kw):
    target, fn = ce_call(shape, kw)
    assert gradcheck(lambda x: fn(x, target), leaf(f64(*shape, scale=2.0)))


@pytest.mark.parametrize("shape, kw", [c for c in CE_CASES if "ignore" not in c[1]])
def test_gradcheck_cross_entropy_probabilities(shape, kw):
    target, fn = ce_call(shape, kw, probs=True)
    assert gradcheck(fn, leaf(f64(*shape, scale=2.0)), target)


@pytest.mark.parametrize("shape, kw", [
    ((4, 5), {}), ((5,), {}), ((3, 4, 2, 2), {"reduction": "none"}),
    ((6, 4), {"weight": True, "ignore": 1}), ((6, 4, 3), {"weight": True, "reduction": "sum"}),
])
def test_gradcheck_nll_loss(shape, kw):
    c = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    ignore = kw.get("ignore", -100)
    t = wally.tensor(classes(target_shape, c, seed=2, ignore=ignore,
                             fraction=0.3 if target_shape else 0.0))
    weight = wally.tensor(np.random.default_rng(5).random(c) + 0.2) if kw.get("weight") else None
    reduction = kw.get("reduction", "mean")
    assert gradcheck(lambda x: F.nll_loss(x, t, weight, ignore_index=ignore, reduction=reduction),
                     leaf(f64(*shape)))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradcheck_regression(name, reduction, weighted):
    x, y = f64(3, 4), f64(3, 4, seed=1)
    y[np.abs(x - y) < 1e-3] += 0.1  # keep |x − y| away from its kink
    weight = wally.tensor(np.random.default_rng(2).random((3, 4))) if weighted else None
    fn = getattr(F, name)
    assert gradcheck(lambda a, b: fn(a, b, reduction=reduction, weight=weight), leaf(x), leaf(y))


def test_gradcheck_mse_broadcast_target():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert gradcheck(lambda a, b: F.mse_loss(a, b), leaf(f64(3, 4)), leaf(f64(4, seed=1)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight, pos_weight", [(False, False), (True, False), (False, True),
                                                (True, True)])
def test_gradcheck_bce_with_logits(reduction, weight, pos_weight):
    x, y = f64(4, 3, scale=3.0), np.random.default_rng(1).random((4, 3))
    w = wally.tensor(np.random.default_rng(2).random((4, 3))) if weight else None
    pw = wally.tensor(np.random.default_rng(3).random(3) * 3) if pos_weight else None
    assert gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(
        a, b, w, reduction=reduction, pos_weight=pw), leaf(x), leaf(y))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradcheck_bce(reduction, weighted):
    rng = np.random.default_rng(0)
    x, y = rng.random((4, 3)) * 0.9 + 0.05, rng.random((4, 3))
    w = wally.tensor(rng.random(3)) if weighted else None
    assert gradcheck(lambda a, b: F.binary_cross_entropy(a, b, w, reduction=reduction),
                     leaf(x), leaf(y))


# ----- against PyTorch ------------------------------------------------------------------------
@st.composite
def ce_case(draw, probs=False):
    n = draw(st.integers(1, 5))
    c = draw(st.integers(1, 6))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    unbatched = not spatial and draw(st.booleans())
    shape = (c,) if unbatched else (n, c, *spatial)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1.0, 5.0, 30.0]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    target_shape = () if unbatched else (n, *spatial)
    kw = dict(
        reduction=draw(st.sampled_from(REDUCTIONS)),
        label_smoothing=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
    )
    weight = (rng.random(c) + 0.1).astype(dtype) if draw(st.booleans()) else None
    if probs:
        t = probabilities(shape, seed).astype(dtype)
    else:
        ignore_index = draw(st.sampled_from([-100, 0, c - 1, 7]))
        kw["ignore_index"] = ignore_index
        t = classes(target_shape, c, seed, ignore_index, draw(st.sampled_from([0.0, 0.3, 1.0])))
    return x, t, weight, kw


def ce_pair(torch, weight, kw, name="cross_entropy"):
    ours_w = None if weight is None else wally.tensor(weight)
    theirs_w = None if weight is None else torch.tensor(weight)
    return (lambda x, t: getattr(F, name)(x, t, ours_w, **kw),
            lambda x, t: getattr(torch.nn.functional, name)(x, t, theirs_w, **kw))


def tolerance(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(case=ce_case())
def test_cross_entropy_class_indices_match_torch(torch, case):
    x, t, weight, kw = case
    ours, theirs = ce_pair(torch, weight, kw)
    check_against_torch(torch, ours, theirs, [x, t], [True, False], **tolerance(x.dtype))


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=ce_case(probs=True), target_grad=st.booleans())
def test_cross_entropy_probabilities_match_torch(torch, case, target_grad):
    x, t, weight, kw = case
    ours, theirs = ce_pair(torch, weight, kw)
    check_against_torch(torch, ours, theirs, [x, t], [True, target_grad], **tolerance(x.dtype))


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=ce_case())
def test_nll_loss_matches_torch(torch, case):
    x, t, weight, kw = case
    kw.pop("label_smoothing")
    ours, theirs = ce_pair(torch, weight, kw, name="nll_loss")
    check_against_torch(torch, ours, theirs, [x, t], [True, False], **tolerance(x.dtype))


@st.composite
def pointwise_case(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=4)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    y = (rng.standard_normal(shape) * 3).astype(dtype)
    weight = rng.random(shape).astype(dtype) if draw(st.booleans()) else None
    return x, y, weight, draw(st.sampled_from(REDUCTIONS)), draw(st.booleans())


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=pointwise_case(), name=st.sampled_from(["mse_loss", "l1_loss"]))
def test_regression_losses_match_torch(torch, case, name):
    x, y, weight, reduction, target_grad = case
    ours_w = None if weight is None else wally.tensor(weight)
    theirs_w = None if weight is None else torch.tensor(weight)
    check_against_torch(
        torch,
        lambda a, b: getattr(F, name)(a, b, reduction=reduction, weight=ours_w),
        lambda a, b: getattr(torch.nn.functional, name)(a, b, reduction=reduction,
                                                        weight=theirs_w),
        [x, y], [True, target_grad], **tolerance(x.dtype),
    )


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=pointwise_case(), pos_weight=st.booleans(), scale=st.sampled_from([1.0, 10.0, 1e4]))
def test_bce_with_logits_matches_torch(torch, case, pos_weight, scale):
    x, y, weight, reduction, target_grad = case
    x = x * scale
    y = np.abs(np.tanh(y)).astype(x.dtype)
    pw = (np.abs(y.reshape(-1)[: x.shape[-1]]) * 3 + 0.5).astype(x.dtype) \
        if pos_weight and x.ndim else None
    args = [None if a is None else (wally.tensor(a), torch.tensor(a)) for a in (weight, pw)]
    check_against_torch(
        torch,
        lambda a, b: F.binary_cross_entropy_with_logits(
            a, b, args[0] and args[0][0], reduction=reduction, pos_weight=args[1] and args[1][0]),
        lambda a, b: torch.nn.functional.binary_cross_entropy_with_logits(
            a, b, args[0] and args[0][1], reduction=reduction, pos_weight=args[1] and args[1][1]),
        [x, y], [True, target_grad], **tolerance(x.dtype),
    )


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=pointwise_case(), edges=st.booleans())
def test_bce_matches_torch(torch, case, edges):
    x, y, weight, reduction, target_grad = case
    p = (1 / (1 + np.exp(-x))).astype(x.dtype)
    if edges and p.size:
        p.reshape(-1)[0] = 0.0
        p.reshape(-1)[-1] = 1.0
    y = np.abs(np.tanh(y)).astype(x.dtype)
    ours_w = None if weight is None else wally.tensor(weight)
    theirs_w = None if weight is None else torch.tensor(weight)
    # At p = 0 or 1 PyTorch's target gradient is ±inf (unclamped logs) while its loss uses logs
    # clamped at -100; wally differentiates the clamped loss it computed, so skip that pairing.
    check_against_torch(
        torch,
        lambda a, b: F.binary_cross_entropy(a, b, ours_w, reduction=reduction),
        lambda a, b: torch.nn.functional.binary_cross_entropy(a, b, theirs_w,
                                                              reduction=reduction),
        [p, y], [True, target_grad and not edges],
        rtol=1e-4 if x.dtype == np.float32 else 1e-8, atol=1e-5,
    )


def test_bce_target_gradient_uses_the_clamped_logs():
    x, y = leaf(np.array([0.0, 1.0, 0.5])), leaf(np.array([0.3, 0.3, 0.3]))
    F.binary_cross_entropy(x, y, reduction="sum").backward()
    np.testing.assert_allclose(y.grad.numpy(), [100.0, -100.0, 0.0])


# ----- numerical stability --------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.1}, {"reduction": "none"},
                                {"weight": np.float32([1.0, 2.0, 0.5])}])
def test_cross_entropy_huge_logits_stay_finite_and_match_torch(torch, kw):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, -1e4], [3e4, -3e4, 1.0]],
                 dtype=np.float32)
    t = np.array([1, 0, 2, 0])
    weight = kw.pop("weight", None)
    ours, theirs = ce_pair(torch, weight, kw)
    out = ours(leaf(x), wally.tensor(t))
    assert np.isfinite(out.array).all()
    check_against_torch(torch, ours, theirs, [x, t], [True, False], rtol=1e-6, atol=1e-3)


def test_cross_entropy_probabilities_huge_logits(torch):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=np.float32)
    t = np.float32([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    ours, theirs = ce_pair(torch, None, {"label_smoothing": 0.2})
    check_against_torch(torch, ours, theirs, [x, t], [True, True], rtol=1e-6, atol=1e-3)


def test_bce_with_logits_huge_logits(torch):
    x = np.float32([-1e4, -100.0, 0.0, 100.0, 1e4])
    y = np.float32([1.0, 1.0, 0.5, 0.0, 0.0])
    for pos_weight in (None, np.float32([2.0])):
        ours_pw = None if pos_weight is None else wally.tensor(pos_weight)
        theirs_pw = None if pos_weight is None else torch.tensor(pos_weight)
        check_against_torch(
            torch,
            lambda a, b, pw=ours_pw: F.binary_cross_entropy_with_logits(
                a, b, reduction="none", pos_weight=pw),
            lambda a, b, pw=theirs_pw: torch.nn.functional.binary_cross_entropy_with_logits(
                a, b, reduction="none", pos_weight=pw),
            [x, y], [True, True], rtol=1e-6, atol=1e-6,
        )


def test_cross_entropy_equals_nll_of_log_softmax():
    x, t = leaf(f64(6, 4, 3)), wally.tensor(classes((6, 3), 4))
    a = F.cross_entropy(x, t)
    b = F.nll_loss(F.log_softmax(x, dim=1), t)
    np.testing.assert_allclose(a.array, b.array, rtol=1e-12)


def test_mean_over_nothing_is_nan_with_zero_gradient(torch):
    x = np.float32(f64(3, 4))
    t = np.full(3, -100)
    for kw in ({}, {"label_smoothing": 0.2}):
        ours, theirs = ce_pair(torch, None, kw)
        check_against_torch(torch, ours, theirs, [x, t], [True, False])
        assert np.isnan(ours(leaf(x), wally.tensor(t)).array)


def test_float32_stays_float32():
    x = leaf(np.float32(f64(4, 3)))
    t = wally.tensor(classes(4, 3))
    y = wally.tensor(np.float32(np.random.default_rng(1).random((4, 3))))
    for loss in (F.cross_entropy(x, t), F.cross_entropy(x, y), F.nll_loss(x, t),
                 F.mse_loss(x, y), F.l1_loss(x, y), F.binary_cross_entropy_with_logits(x, y),
                 F.cross_entropy(x, t, wally.tensor(np.ones(3)), label_smoothing=0.1)):
        assert loss.dtype == np.float32
        x.grad = None
        loss.backward()
        assert x.grad.dtype == np.float32


# ----- legacy arguments -----------------------------------------------------------------------
@pytest.mark.parametrize("size_average, reduce, reduction",
                         [(None, False, "none"), (False, None, "sum"), (True, True, "mean"),
                          (False, False, "none")])
def test_legacy_size_average_and_reduce(size_average, reduce, reduction):
    x, t = wally.tensor(f64(4, 3)), wally.tensor(classes(4, 3))
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        legacy = F.cross_entropy(x, t, None, size_average, -100, reduce)
    np.testing.assert_allclose(legacy.numpy(), F.cross_entropy(x, t, reduction=reduction).numpy())


def test_integer_targets_of_any_width():
    x = wally.tensor(f64(4, 3))
    t = classes(4, 3)
    expected = F.cross_entropy(x, wally.tensor(t)).numpy()
    for dtype in (np.int32, np.uint8, np.int16):
        np.testing.assert_allclose(F.cross_entropy(x, wally.tensor(t.astype(dtype))).numpy(),
                                   expected)


# ----- bad input ------------------------------------------------------------------------------
def test_cross_entropy_target_shape_mismatch():
    with pytest.raises(ValueError, match=r"cross_entropy: expected a target of shape \(N,\) = "
                                         r"\(4,\) for an input of shape \(4, 3\), got shape "
                                         r"\(5,\)"):
        F.cross_entropy(wally.zeros(4, 3), wally.tensor(np.zeros(5, dtype=np.int64)))
    with pytest.raises(ValueError, match=r"cross_entropy: expected a target of shape "
                                         r"\(N, d1, \.\.\.\) = \(2, 5\) .* got shape \(2, 4\)"):
        F.cross_entropy(wally.zeros(2, 3, 5), wally.tensor(np.zeros((2, 4), dtype=np.int64)))


def test_cross_entropy_class_index_out_of_range():
    with pytest.raises(ValueError, match=r"cross_entropy: target class index 3 is out of range "
                                         r"for 3 classes .*ignore_index=-100"):
        F.cross_entropy(wally.zeros(2, 3), wally.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"cross_entropy: target class index -1 is out of range"):
        F.cross_entropy(wally.zeros(2, 3), wally.tensor([-1, 0]))
    with pytest.raises(ValueError, match=r"nll_loss: target class index 5 is out of range"):
        F.nll_loss(wally.zeros(2, 3), wally.tensor([5, 0]), ignore_index=-1)
    # the ignore_index itself is never out of range
    F.cross_entropy(wally.zeros(2, 3), wally.tensor([-1, 0]), ignore_index=-1)


def test_cross_entropy_float_target_in_the_wrong_shape():
    with pytest.raises(ValueError, match=r"cross_entropy: a floating-point target holds class "
                                         r"probabilities and must have the input's shape "
                                         r"\(4, 3\).*float32 target of shape \(4, 2\)"):
        F.cross_entropy(wally.zeros(4, 3), wally.zeros(4, 2))


def test_cross_entropy_float_class_indices():
    with pytest.raises(TypeError, match=r"cross_entropy: expected class indices of an integer "
                                        r"dtype .* got dtype float32"):
        F.cross_entropy(wally.zeros(4, 3), wally.tensor([0.0, 1.0, 2.0, 1.0]))


def test_cross_entropy_integer_probabilities():
    with pytest.raises(TypeError, match=r"cross_entropy: a target of the input's shape \(4, 3\) "
                                        r"holds class probabilities and must be floating point, "
                                        r"got dtype int64"):
        F.cross_entropy(wally.zeros(4, 3), wally.tensor(np.zeros((4, 3), dtype=np.int64)))


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss", "mse_loss", "l1_loss",
                                  "binary_cross_entropy_with_logits", "binary_cross_entropy"])
def test_unknown_reduction(name):
    x = wally.full((4, 3), 0.5)
    target = wally.tensor(classes(4, 3)) if name in ("cross_entropy", "nll_loss") \
        else wally.full((4, 3), 0.5)
    with pytest.raises(ValueError, match=rf"{name}: reduction must be 'mean', 'sum' or 'none', "
                                         r"got 'avg'"):
        getattr(F, name)(x, target, reduction="avg")


def test_class_weight_shape():
    with pytest.raises(ValueError, match=r"cross_entropy: expected a weight of shape \(3,\), one "
                                         r"per class, got shape \(4,\)"):
        F.cross_entropy(wally.zeros(2, 3), wally.tensor([0, 1]), wally.ones(4))


def test_label_smoothing_range():
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be between 0.0 "
                                         r"and 1.0, got 1.5"):
        F.cross_entropy(wally.zeros(2, 3), wally.tensor([0, 1]), label_smoothing=1.5)


def test_integer_input_rejected():
    with pytest.raises(TypeError, match=r"cross_entropy: expected a floating-point input, got "
                                        r"dtype (wally\.)?int64"):
        F.cross_entropy(wally.tensor([[1, 2]]), wally.tensor([0]))
    with pytest.raises(ValueError, match=r"cross_entropy: .* got a 0-d input"):
        F.cross_entropy(wally.tensor(1.0), wally.tensor(0))


def test_regression_shapes():
    with pytest.raises(ValueError, match=r"mse_loss: the target shape \(4,\) does not broadcast "
                                         r"with the input shape \(3,\)"):
        F.mse_loss(wally.zeros(3), wally.zeros(4))
    with pytest.warns(UserWarning, match=r"l1_loss: using a target size \(3, 1\) that is "
                                         r"different to the input size \(3,\)"):
        F.l1_loss(wally.zeros(3), wally.zeros(3, 1))
    with pytest.raises(ValueError, match=r"mse_loss: expected a weight of the input's shape "
                                         r"\(3,\), got shape \(2,\)"):
        F.mse_loss(wally.zeros(3), wally.zeros(3), weight=wally.ones(2))


def test_binary_losses_bad_input():
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: expected a target of "
                                         r"the same shape as the input \(3,\), got shape "
                                         r"\(3, 1\)"):
        F.binary_cross_entropy_with_logits(wally.zeros(3), wally.zeros(3, 1))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: expected every input element "
                                         r"between 0 and 1 .* got 1.5"):
        F.binary_cross_entropy(wally.tensor([0.5, 1.5]), wally.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: expected a "
                                         r"pos_weight broadcastable to the input shape \(4, 3\), "
                                         r"got shape \(4,\)"):
        F.binary_cross_entropy_with_logits(wally.zeros(4, 3), wally.zeros(4, 3),
                                           pos_weight=wally.ones(4))
