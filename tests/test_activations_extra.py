"""The extra activations (``wally.functional.activation_extra``, ``wally.nn.activation_extra``):
float64 central differences, per-element ``math`` formulas, values and gradients against
PyTorch over hypothesis grids and exactly at the kinks, in-place versions, modules and bad
arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import wally
import wally.functional as F
from wally import nn
from wally.testing import gradcheck

EXAMPLES = 25
SA, SS = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def leaf(array):
    return wally.tensor(array, requires_grad=True)


def _sig(v):
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


def _softplus(v):
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


# name -> (wally call, torch call name and args, per-element math formula, kinks)
ELEMENTWISE = {
    "elu": ((0.7,), lambda v: v if v > 0 else 0.7 * math.expm1(v), [0.0]),
    "selu": ((), lambda v: SS * (v if v > 0 else SA * math.expm1(v)), [0.0]),
    "celu": ((1.5,), lambda v: max(0, v) + min(0, 1.5 * math.expm1(v / 1.5)), [0.0]),
    "silu": ((), lambda v: v * _sig(v), []),
    "mish": ((), lambda v: v * math.tanh(_softplus(v)), []),
    "hardswish": ((), lambda v: v * min(max(v + 3, 0), 6) / 6, [-3.0, 3.0]),
    "hardsigmoid": ((), lambda v: min(max(v / 6 + 0.5, 0), 1), [-3.0, 3.0]),
    "hardtanh": ((-0.5, 1.5), lambda v: min(max(v, -0.5), 1.5), [-0.5, 1.5]),
    "relu6": ((), lambda v: min(max(v, 0), 6), [0.0, 6.0]),
    "softsign": ((), lambda v: v / (1 + abs(v)), []),
    "logsigmoid": ((), lambda v: -_softplus(-v), []),
    "threshold": ((0.25, -2.0), lambda v: v if v > 0.25 else -2.0, [0.25]),
}
NAMES = sorted(ELEMENTWISE)


def away_from(x, points, margin=1e-3):
    x = x.copy()
    for p in points:
        x[np.abs(x - p) < margin] = p + 4 * margin
    return x


def compare(torch, ours_fn, theirs_fn, x, rtol=1e-5, atol=1e-6):
    ours, theirs = leaf(x), torch.tensor(x, requires_grad=True)
    out, ref = ours_fn(ours), theirs_fn(theirs)
    assert out.dtype == x.dtype and out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.array, ref.detach().numpy(), rtol=rtol, atol=atol)
    weights = np.random.default_rng(1).standard_normal(ref.shape).astype(x.dtype)
    out.backward(wally.tensor(weights))
    ref.backward(torch.tensor(weights))
    assert ours.grad.dtype == x.dtype
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=rtol, atol=atol)


# ----- 1. central differences -----------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name):
    args, _, kinks = ELEMENTWISE[name]
    x = np.random.default_rng(0).uniform(-5, 8, (3, 5))
    gradcheck(lambda a: getattr(F, name)(a, *args), leaf(away_from(x, kinks)))


def test_gradcheck_prelu_glu_softmin():
    rng = np.random.default_rng(0)
    x = away_from(rng.standard_normal((2, 3, 4)), [0.0])
    gradcheck(F.prelu, leaf(x), leaf(rng.uniform(0, 1, 3)))
    gradcheck(F.prelu, leaf(x), leaf(rng.uniform(0, 1, 1)))
    gradcheck(lambda a: F.glu(a, 1), leaf(rng.standard_normal((2, 4, 3))))
    gradcheck(lambda a: F.softmin(a, dim=-1), leaf(rng.standard_normal((2, 5))))


# ----- 2. the per-element formula -------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_matches_math_formula(name):
    args, formula, kinks = ELEMENTWISE[name]
    x = np.concatenate([np.linspace(-8, 8, 161), kinks, [-50.0, -30.0, 30.0, 50.0]])
    got = getattr(F, name)(wally.tensor(x), *args).array
    expected = np.array([formula(float(v)) for v in x])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)


def test_prelu_glu_softmin_loops():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 4)), rng.uniform(0, 1, 3)
    got = F.prelu(wally.tensor(x), wally.tensor(w)).array
    for n, c, i in np.ndindex(x.shape):
        v = x[n, c, i]
        assert got[n, c, i] == pytest.approx(v if v > 0 else w[c] * v, rel=1e-14)
    g = F.glu(wally.tensor(x[:, :2]), 1).array
    for n, i in np.ndindex(2, 4):
        assert g[n, 0, i] == pytest.approx(x[n, 0, i] * _sig(x[n, 1, i]), rel=1e-14)
    s = F.softmin(wally.tensor(x), dim=1).array
    for n, i in np.ndindex(2, 4):
        total = sum(math.exp(-x[n, k, i]) for k in range(3))
        for c in range(3):
            assert s[n, c, i] == pytest.approx(math.exp(-x[n, c, i]) / total, rel=1e-13)


# ----- 3. PyTorch ------------------------------------------------------------------------------
@settings(max_examples=EXAMPLES)
@given(name=st.sampled_from(NAMES), dtype=st.sampled_from([np.float32, np.float64]),
       x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
                    elements=st.floats(-12, 12)))
def test_matches_torch(torch, name, dtype, x):
    args, _, kinks = ELEMENTWISE[name]
    x = away_from(x, kinks).astype(dtype)
    compare(torch, lambda a: getattr(F, name)(a, *args),
            lambda t: getattr(torch.nn.functional, name)(t, *args), x)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kinks_and_tails_match_torch(torch, name, dtype):
    """Exactly at the kinks the gradient is PyTorch's one-sided choice; in the far tails the
    values and gradients stay finite and agree."""
    args, _, kinks = ELEMENTWISE[name]
    x = np.array(kinks + [-800.0, -88.0, -20.0, 0.0, 20.0, 88.0, 800.0], dtype=dtype)
    compare(torch, lambda a: getattr(F, name)(a, *args),
            lambda t: getattr(torch.nn.functional, name)(t, *args), x,
            rtol=2e-5 if dtype == np.float32 else 1e-7, atol=1e-30)


def test_stable_tails():
    x = wally.tensor(np.array([-1000.0, -100.0, 100.0, 1000.0], dtype=np.float32))
    assert F.logsigmoid(x).tolist() == pytest.approx([-1000.0, -100.0, 0.0, 0.0])
    np.testing.assert_allclose(F.silu(wally.tensor([-30.0]).double()).array,
                               [-30.0 * math.exp(-30) / (1 + math.exp(-30))], rtol=1e-14)
    assert np.isfinite(F.mish(x).array).all() and np.isfinite(F.silu(x).array).all()


@settings(max_examples=EXAMPLES)
@given(dtype=st.sampled_from([np.float32, np.float64]), shared=st.booleans(),
       shape=st.sampled_from([(), (4,), (2, 3), (2, 3, 5), (1, 3, 2, 2)]),
       seed=st.integers(0, 99))
def test_prelu_matches_torch(torch, dtype, shared, shape, seed):
    rng = np.random.default_rng(seed)
    x = away_from(rng.standard_normal(shape), [0.0]).astype(dtype)
    channels = shape[1] if len(shape) >= 2 else 1
    w = rng.uniform(-0.5, 1, 1 if shared else channels).astype(dtype)
    ours_x, ours_w = leaf(x), leaf(w)
    theirs_x, theirs_w = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    out, ref = F.prelu(ours_x, ours_w), torch.nn.functional.prelu(theirs_x, theirs_w)
    np.testing.assert_allclose(out.array, ref.detach().numpy(), rtol=1e-6)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(ours_x.grad.array, theirs_x.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours_w.grad.array, theirs_w.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert ours_w.grad.dtype == dtype


def test_prelu_gradient_at_zero_is_the_slope(torch):
    compare(torch, lambda a: F.prelu(a, wally.tensor(np.array([0.3]))),
            lambda t: torch.nn.functional.prelu(t, torch.tensor([0.3], dtype=torch.float64)),
            np.array([0.0, -1.0, 1.0]))


@settings(max_examples=EXAMPLES)
@given(dtype=st.sampled_from([np.float32, np.float64]), dim=st.integers(-3, 2),
       seed=st.integers(0, 99))
def test_glu_and_softmin_match_torch(torch, dtype, dim, seed):
    x = np.random.default_rng(seed).standard_normal((4, 2, 6)).astype(dtype) * 3
    compare(torch, lambda a: F.glu(a, dim), lambda t: torch.nn.functional.glu(t, dim), x)
    compare(torch, lambda a: F.softmin(a, dim), lambda t: torch.nn.functional.softmin(t, dim), x)


def test_softmin_dtype_and_implicit_dim(torch):
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    got = F.softmin(wally.tensor(x), dim=1, dtype=np.float64)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got.array, torch.nn.functional.softmin(
        torch.tensor(x), dim=1, dtype=torch.float64).numpy(), rtol=1e-12)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
        F.softmin(wally.tensor(x))


# ----- in place -------------------------------------------------------------------------------
INPLACE = ["elu", "selu", "celu", "silu", "mish", "hardswish", "hardsigmoid", "hardtanh",
           "relu6", "threshold"]


@pytest.mark.parametrize("name", INPLACE)
def test_inplace_changes_the_input_and_backward_matches_torch(torch, name):
    args, _, kinks = ELEMENTWISE[name]
    x = away_from(np.random.default_rng(3).uniform(-5, 8, 7), kinks)
    tf = getattr(torch.nn.functional, name)
    ours, theirs = leaf(x), torch.tensor(x, requires_grad=True)
    mid = ours * 1
    version = mid._version
    out = getattr(F, name)(mid, *args, inplace=True)
    assert out is mid and mid._version > version
    ref = tf(theirs * 1, *args, inplace=True)
    np.testing.assert_allclose(out.array, ref.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(ours.grad.array, theirs.grad.numpy(), rtol=1e-7)
    # Without autograd, the memory itself is written (views see it).
    plain = wally.tensor(x.copy())
    view = plain[:3]
    getattr(F, name)(plain, *args, inplace=True)
    np.testing.assert_allclose(view.array, ref.detach().numpy()[:3], rtol=1e-12)


def test_inplace_refuses_stale_saved_values():
    a = leaf(np.array([-1.0, 2.0]))
    b = a * 1
    c = b * b  # Mul keeps b
    F.elu_(b)
    with pytest.raises(RuntimeError):
        c.sum().backward()


def test_inplace_on_a_leaf_is_refused():
    with pytest.raises(RuntimeError, match="leaf"):
        F.hardtanh(leaf(np.array([1.0])), inplace=True)


def test_underscore_functions():
    x = wally.tensor([-1.0, 0.5, 9.0])
    assert F.hardtanh_(x) is x and x.tolist() == [-1.0, 0.5, 1.0]
    y = wally.tensor([-1.0, 0.5])
    assert F.threshold_(y, 0.0, 7.0) is y and y.tolist() == [7.0, 0.5]
    for fn in (F.elu_, F.selu_, F.celu_):
        z = wally.tensor([1.0])
        assert fn(z) is z


# ----- modules ----------------------------------------------------------------------------------
MODULES = [
    ("ELU", ()), ("ELU", (0.5, True)), ("SELU", ()), ("SELU", (True,)), ("CELU", (2.0,)),
    ("CELU", (1.0, True)), ("SiLU", ()), ("SiLU", (True,)), ("Mish", (True,)),
    ("Hardswish", (True,)), ("Hardsigmoid", (True,)), ("Hardtanh", ()),
    ("Hardtanh", (-2.0, 3.0, True)), ("ReLU6", ()), ("ReLU6", (True,)), ("Softsign", ()),
    ("LogSigmoid", ()), ("PReLU", ()), ("PReLU", (3, 0.1)), ("GLU", ()), ("GLU", (1,)),
    ("Softmin", ()), ("Softmin", (1,)), ("Threshold", (0.1, 20.0)), ("Threshold", (0, 1, True)),
]


@pytest.mark.filterwarnings("ignore:Implicit dimension choice for softmin")
@pytest.mark.parametrize(("name", "args"), MODULES)
def test_modules_print_and_run_like_torch(torch, name, args):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key].array, value.numpy())
    shape = (2, 3, 4) if name == "PReLU" else (2, 4, 6)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 4
    with wally.no_grad(), torch.no_grad():
        got = ours(wally.tensor(x.copy())).array
        expected = theirs(torch.tensor(x.copy())).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_prelu_module_learns_its_slopes():
    layer = nn.PReLU(2)
    assert layer.weight.shape == (2,) and layer.weight.tolist() == [0.25, 0.25]
    layer(wally.tensor([[-1.0, -2.0], [3.0, -4.0]])).sum().backward()
    assert layer.weight.grad.tolist() == [-1.0, -6.0]
    assert wally.tensor([-4.0]).prelu(wally.tensor([0.5])).tolist() == [-2.0]


# ----- bad arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize(("call", "error", "pattern"), [
    (lambda: F.elu(wally.tensor([1, 2])), TypeError,
     r"elu: expected a floating-point input, got dtype wally\.int64"),
    (lambda: F.celu(wally.tensor([1.0]), 0.0), ValueError, r"celu: alpha cannot be 0"),
    (lambda: F.hardtanh(wally.tensor([1.0]), 2.0, 1.0), ValueError,
     r"hardtanh: min_val cannot be greater than max_val, got min_val=2.0 and max_val=1.0"),
    (lambda: nn.Hardtanh(2.0, 1.0), ValueError, r"Hardtanh: min_val cannot be greater"),
    (lambda: F.elu(wally.tensor([1.0]), "a"), TypeError,
     r"elu: alpha must be a real number, got 'a'"),
    (lambda: F.glu(wally.zeros(2, 3)), ValueError,
     r"glu: halving dimension must be even, but dimension 1 is size 3"),
    (lambda: F.glu(wally.tensor(1.0)), ValueError, r"glu: expected an input with at least 1"),
    (lambda: F.glu(wally.zeros(2, 4), 2), IndexError, r"glu: dim 2 is out of range for a 2-D"),
    (lambda: F.prelu(wally.zeros(2, 3), wally.ones(2)), ValueError,
     r"prelu: expected 1 or 3 slopes .* got a weight with 2"),
    (lambda: F.prelu(wally.zeros(3), wally.ones(3)), ValueError, r"prelu: expected 1 or 1 slopes"),
    (lambda: F.prelu(wally.zeros(2, 3), wally.ones(1, 3)), ValueError,
     r"prelu: expected a 0-D or 1-D weight .* got shape \(1, 3\)"),
    (lambda: F.prelu(wally.zeros(2, 3), wally.ones(3).double()), TypeError,
     r"prelu: expected input and weight of the same dtype"),
    (lambda: nn.PReLU(0), ValueError, r"PReLU: num_parameters must be a positive integer, got 0"),
    (lambda: F.softmin(wally.tensor([1, 2]), 0), TypeError, r"softmin: expected a floating-point"),
    (lambda: F.threshold(wally.tensor([True]), 0, 1), TypeError, r"threshold: expected a numeric"),
    (lambda: F.relu6(wally.tensor([True])), TypeError, r"relu6: expected a numeric"),
])
def test_bad_arguments(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_top_level_functions_match_torch(torch):
    x = np.array([-1.5, 0.25, 2.0])
    for name, args in (("selu", ()), ("celu", (0.5,)), ("threshold", (0.3, -1.0))):
        np.testing.assert_allclose(getattr(wally, name)(wally.tensor(x), *args).array,
                                   getattr(torch, name)(torch.tensor(x), *args).numpy(),
                                   rtol=1e-12)
    w = np.array([0.2])
    np.testing.assert_allclose(wally.prelu(wally.tensor(x), wally.tensor(w)).array,
                               torch.prelu(torch.tensor(x), torch.tensor(w)).numpy())
    y = wally.tensor(x.copy())
    assert wally.selu_(y) is y and wally.celu_(y) is y and wally.threshold_(y, 0.0, 0.0) is y


def test_integer_inputs_where_torch_takes_them(torch):
    x = np.array([-7, -1, 0, 3, 9])
    for name, args in (("hardtanh", ()), ("hardtanh", (-2.0, 4.0)), ("relu6", ()),
                       ("threshold", (1, -5))):
        got = getattr(F, name)(wally.tensor(x), *args)
        expected = getattr(torch.nn.functional, name)(torch.tensor(x), *args).numpy()
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got.array, expected)
