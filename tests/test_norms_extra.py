"""Layer, group, instance and local response normalisation (``wally.functional.normalization``,
``wally.nn.normalization``): central differences, loop references, PyTorch (values and the
gradients of input, weight and bias, running statistics), modules and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally import nn
from wally.reference import local_response_norm_loops
from wally.testing import gradcheck

EXAMPLES = 25


def leaf(array):
    return wally.tensor(array, requires_grad=True)


def rng(seed=0):
    return np.random.default_rng(seed)


# ----- 1. central differences -------------------------------------------------------------------
def test_gradcheck_layer_norm():
    r = rng()
    x = r.standard_normal((2, 3, 4))
    gradcheck(lambda a, w, b: F.layer_norm(a, (3, 4), w, b), leaf(x),
              leaf(r.standard_normal((3, 4))), leaf(r.standard_normal((3, 4))))
    gradcheck(lambda a: F.layer_norm(a, 4), leaf(x))
    gradcheck(lambda a, w: F.layer_norm(a, [4], w), leaf(x), leaf(r.standard_normal(4)))


def test_gradcheck_group_and_instance_norm():
    r = rng(1)
    x = r.standard_normal((2, 6, 3))
    w, b = r.standard_normal(6), r.standard_normal(6)
    gradcheck(lambda a, w, b: F.group_norm(a, 3, w, b), leaf(x), leaf(w), leaf(b))
    gradcheck(lambda a: F.group_norm(a, 2), leaf(r.standard_normal((2, 4, 2, 3))))
    gradcheck(lambda a, w, b: F.instance_norm(a, weight=w, bias=b), leaf(x), leaf(w), leaf(b))
    gradcheck(lambda a: F.instance_norm(a), leaf(r.standard_normal((2, 2, 3, 2))))


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_gradcheck_local_response_norm(size):
    x = rng(size).standard_normal((2, 5, 3))
    gradcheck(lambda a: F.local_response_norm(a, size, alpha=0.5, beta=0.75, k=1.5), leaf(x))


# ----- 2. loop references -----------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_local_response_norm_matches_loops(size):
    x = rng(size).standard_normal((2, 6, 2, 3)) * 3
    got = F.local_response_norm(wally.tensor(x), size, 0.3, 0.6, 2.0).array
    np.testing.assert_allclose(got, local_response_norm_loops(x, size, 0.3, 0.6, 2.0), rtol=1e-13)


def test_group_norm_matches_loops():
    x = rng(2).standard_normal((2, 6, 3, 2))
    w, b = rng(3).standard_normal(6), rng(4).standard_normal(6)
    got = F.group_norm(wally.tensor(x), 3, wally.tensor(w), wally.tensor(b)).array
    for n in range(2):
        for g in range(3):
            block = x[n, 2 * g:2 * g + 2]
            mean = sum(block.ravel()) / block.size
            var = sum((v - mean) ** 2 for v in block.ravel()) / block.size
            for c in range(2 * g, 2 * g + 2):
                for i, j in np.ndindex(3, 2):
                    expected = (x[n, c, i, j] - mean) / np.sqrt(var + 1e-5) * w[c] + b[c]
                    assert got[n, c, i, j] == pytest.approx(expected, rel=1e-12, abs=1e-12)


# ----- 3. PyTorch -------------------------------------------------------------------------------
def compare(torch, ours_fn, theirs_fn, arrays, rtol, atol, exact_fn=None):
    """wally against torch in the arrays' dtype. In float32, where a small group makes the
    gradient ill-conditioned (x̂ = ±1, 1/σ large), both are measured against torch in float64
    (``exact_fn``, default ``theirs_fn``; pass one that changes no state the test reads):
    wally must be within the tolerance of it, or no further from it than torch's float32 is."""
    ours = [None if a is None else leaf(a) for a in arrays]
    theirs = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = ours_fn(*ours), theirs_fn(*theirs)
    assert out.dtype == arrays[0].dtype and out.shape == tuple(ref.shape)
    weights = rng(9).standard_normal(ref.shape).astype(arrays[0].dtype)
    out.backward(wally.tensor(weights))
    ref.backward(torch.tensor(weights))
    exact = None
    if arrays[0].dtype == np.float32:
        exact = [None if a is None else torch.tensor(a.astype(np.float64), requires_grad=True)
                 for a in arrays]
        exact_out = (exact_fn or theirs_fn)(*exact)
        exact_out.backward(torch.tensor(weights.astype(np.float64)))
    pairs = [(out.array, ref.detach().numpy(), None if exact is None else exact_out.detach())]
    pairs += [(o.grad.array, t.grad.numpy(), None if exact is None else e.grad)
              for o, t, e in zip(ours, theirs, exact or [None] * len(ours)) if o is not None]
    assert all(o.grad.dtype == o.dtype for o in ours if o is not None)
    for mine, torchs, truth in pairs:
        scale = max(1.0, float(np.abs(torchs).max(initial=0.0)))
        if truth is None:
            np.testing.assert_allclose(mine, torchs, rtol=rtol, atol=atol * scale)
            continue
        truth = truth.numpy()
        bound = np.abs(truth) * rtol + atol * scale
        mine_err, torch_err = np.abs(mine - truth), np.abs(torchs - truth)
        assert np.all(mine_err <= np.maximum(bound, 2 * torch_err)), (
            f"wally is {mine_err.max():.3g} from float64, torch's float32 {torch_err.max():.3g}")


DTYPES = st.sampled_from([np.float32, np.float64])


def tol(dtype):
    return (2e-4, 2e-5) if dtype == np.float32 else (1e-10, 1e-11)


@settings(max_examples=EXAMPLES)
@given(dtype=DTYPES, lead=st.sampled_from([(), (1,), (3,), (2, 3)]),
       norm=st.sampled_from([(1, 2), (5,), (2, 3), (3, 1, 2)]), affine=st.sampled_from(
           ["none", "weight", "both"]), eps=st.sampled_from([1e-5, 0.1]), seed=st.integers(0, 99))
def test_layer_norm_matches_torch(torch, dtype, lead, norm, affine, eps, seed):
    r = rng(seed)
    x = (r.standard_normal(lead + norm) * 3 + 1).astype(dtype)
    w = r.standard_normal(norm).astype(dtype) if affine != "none" else None
    b = r.standard_normal(norm).astype(dtype) if affine == "both" else None
    compare(torch, lambda a, w, b: F.layer_norm(a, norm, w, b, eps),
            lambda a, w, b: torch.nn.functional.layer_norm(a, norm, w, b, eps), [x, w, b],
            *tol(dtype))


@settings(max_examples=EXAMPLES)
@given(dtype=DTYPES, groups_per=st.sampled_from([(1, 4), (2, 3), (4, 1), (3, 2)]),
       spatial=st.sampled_from([(), (1,), (5,), (2, 3), (2, 1, 2)]), affine=st.booleans(),
       batch=st.integers(1, 3), seed=st.integers(0, 99))
def test_group_norm_matches_torch(torch, dtype, groups_per, spatial, affine, batch, seed):
    groups, per = groups_per
    channels = groups * per
    if per * int(np.prod(spatial)) < 2:
        spatial = (2,)
    r = rng(seed)
    x = (r.standard_normal((batch, channels) + spatial) * 2 - 1).astype(dtype)
    w = r.standard_normal(channels).astype(dtype) if affine else None
    b = r.standard_normal(channels).astype(dtype) if affine else None
    compare(torch, lambda a, w, b: F.group_norm(a, groups, w, b),
            lambda a, w, b: torch.nn.functional.group_norm(a, groups, w, b), [x, w, b],
            *tol(dtype))


@settings(max_examples=EXAMPLES)
@given(dtype=DTYPES, spatial=st.sampled_from([(2,), (5,), (2, 3), (2, 1, 2)]),
       affine=st.booleans(), running=st.booleans(), use_input_stats=st.booleans(),
       momentum=st.sampled_from([0.1, 0.5]), seed=st.integers(0, 99))
def test_instance_norm_matches_torch(torch, dtype, spatial, affine, running, use_input_stats,
                                     momentum, seed):
    if not use_input_stats:
        running = True
    r = rng(seed)
    x = (r.standard_normal((3, 2) + spatial) * 2 + 0.5).astype(dtype)
    w = r.standard_normal(2).astype(dtype) if affine else None
    b = r.standard_normal(2).astype(dtype) if affine else None
    mean0, var0 = r.standard_normal(2).astype(dtype), r.uniform(0.5, 2, 2).astype(dtype)
    ours_stats, theirs_stats = [None, None], [None, None]
    if running:
        ours_stats = [wally.tensor(mean0.copy()), wally.tensor(var0.copy())]
        theirs_stats = [torch.tensor(mean0.copy()), torch.tensor(var0.copy())]
    compare(torch,
            lambda a, w, b: F.instance_norm(a, *ours_stats, w, b, use_input_stats, momentum),
            lambda a, w, b: torch.nn.functional.instance_norm(a, *theirs_stats, w, b,
                                                               use_input_stats, momentum),
            [x, w, b], *tol(dtype),
            exact_fn=lambda a, w, b: torch.nn.functional.instance_norm(
                a, *[None if s is None else torch.tensor(s.numpy(), dtype=torch.float64)
                     for s in theirs_stats], w, b, use_input_stats, momentum))
    if running:
        for o, t in zip(ours_stats, theirs_stats):
            np.testing.assert_allclose(o.array, t.numpy(), rtol=tol(dtype)[0])
            assert o.dtype == dtype


@settings(max_examples=EXAMPLES)
@given(dtype=DTYPES, size=st.integers(1, 7), channels=st.integers(1, 6),
       spatial=st.sampled_from([(1,), (4,), (2, 3), (1, 2, 2)]),
       params=st.sampled_from([(1e-4, 0.75, 1.0), (0.5, 0.3, 2.0), (2.0, 1.5, 0.5)]),
       seed=st.integers(0, 99))
def test_local_response_norm_matches_torch(torch, dtype, size, channels, spatial, params, seed):
    alpha, beta, k = params
    x = (rng(seed).standard_normal((2, channels) + spatial) * 2).astype(dtype)
    compare(torch, lambda a: F.local_response_norm(a, size, alpha, beta, k),
            lambda a: torch.nn.functional.local_response_norm(a, size, alpha, beta, k), [x],
            *tol(dtype))


def test_float16_is_computed_in_float32(torch):
    x = (rng().standard_normal((2, 4, 3)) * 300).astype(np.float16)
    tf = torch.nn.functional
    for ours, theirs in [
        (F.layer_norm(wally.tensor(x), (3,)), tf.layer_norm(torch.tensor(x), (3,))),
        (F.group_norm(wally.tensor(x), 2), tf.group_norm(torch.tensor(x), 2)),
        (F.instance_norm(wally.tensor(x)), tf.instance_norm(torch.tensor(x))),
    ]:
        assert ours.dtype == np.float16
        np.testing.assert_allclose(ours.array.astype(np.float32), theirs.float().numpy(),
                                   atol=2e-3)


# ----- modules ----------------------------------------------------------------------------------
MODULES = [
    ("LayerNorm", (8,), {}), ("LayerNorm", ((4, 8),), {"eps": 1e-3}),
    ("LayerNorm", (8,), {"elementwise_affine": False}), ("LayerNorm", ([8],), {"bias": False}),
    ("GroupNorm", (2, 4), {}), ("GroupNorm", (4, 4), {"affine": False}),
    ("GroupNorm", (1, 4), {"bias": False, "eps": 0.01}),
    ("InstanceNorm1d", (4,), {}), ("InstanceNorm1d", (4,), {"affine": True}),
    ("InstanceNorm2d", (4,), {"track_running_stats": True, "momentum": 0.3}),
    ("InstanceNorm3d", (4,), {"affine": True, "track_running_stats": True}),
    ("LocalResponseNorm", (3,), {}), ("LocalResponseNorm", (2,), {"alpha": 0.1, "k": 2.0}),
]
INPUT = {"LayerNorm": (2, 4, 8), "GroupNorm": (2, 4, 3, 3), "InstanceNorm1d": (2, 4, 5),
         "InstanceNorm2d": (2, 4, 3, 3), "InstanceNorm3d": (2, 4, 2, 2, 3),
         "LocalResponseNorm": (2, 4, 3)}


@pytest.mark.parametrize(("name", "args", "kwargs"), MODULES)
def test_modules_match_torch(torch, name, args, kwargs):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key].array, value.numpy())
        assert ours.state_dict()[key].dtype == value.numpy().dtype
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    x = rng().standard_normal(INPUT[name]).astype(np.float32)
    for mode in ("train", "eval", "train"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        got = ours(wally.tensor(x)).array
        with torch.no_grad():
            expected = theirs(torch.tensor(x)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key].array, value.numpy(), rtol=1e-5)


@pytest.mark.parametrize("name", ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"])
def test_instance_norm_unbatched_input(torch, name):
    shape = INPUT[name][1:]
    x = rng().standard_normal(shape).astype(np.float32)
    got = getattr(nn, name)(4, affine=True)(wally.tensor(x))
    expected = getattr(torch.nn, name)(4, affine=True)(torch.tensor(x))
    np.testing.assert_allclose(got.array, expected.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_instance_norm_warns_on_a_channel_mismatch_without_affine():
    with pytest.warns(UserWarning, match="InstanceNorm2d: input's size at dim=1 .3. does not"):
        nn.InstanceNorm2d(4)(wally.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(4.* match num_features \(4\)"):
        nn.InstanceNorm2d(4, affine=True)(wally.randn(2, 3, 4, 4))


def test_layer_norm_trains():
    layer = nn.LayerNorm(4)
    layer(wally.randn(3, 4)).pow(2).sum().backward()
    assert layer.weight.grad is not None and layer.bias.grad is not None
    assert layer.weight.grad.shape == (4,)


# ----- bad arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize(("call", "error", "pattern"), [
    (lambda: F.layer_norm(wally.zeros(2, 3), (4,)), ValueError,
     r"layer_norm: expected an input whose last dimensions are normalized_shape=\[4\], got shape "
     r"\(2, 3\)"),
    (lambda: F.layer_norm(wally.zeros(2, 3), (3,), wally.ones(4)), ValueError,
     r"layer_norm: expected weight of shape \(3,\), got shape \(4,\)"),
    (lambda: F.layer_norm(wally.zeros(2, 3), (3,), wally.ones(3).double()), TypeError,
     r"layer_norm: expected input and weight of the same dtype"),
    (lambda: F.layer_norm(wally.zeros(2, 3), 3.0), TypeError, r"layer_norm: normalized_shape"),
    (lambda: F.layer_norm(wally.tensor([[1, 2]]), 2), TypeError,
     r"layer_norm: expected a floating-point input, got dtype wally\.int64"),
    (lambda: F.group_norm(wally.zeros(2, 6, 3), 4), ValueError,
     r"group_norm: expected the number of channels \(6\) to be divisible by num_groups=4"),
    (lambda: F.group_norm(wally.zeros(6), 2), ValueError, r"group_norm: expected an input with"),
    (lambda: F.group_norm(wally.zeros(2, 4), 0), ValueError, r"group_norm: num_groups must be"),
    (lambda: F.group_norm(wally.zeros(2, 4, 3), 2, wally.ones(3)), ValueError,
     r"group_norm: expected weight of shape \(4,\), got shape \(3,\)"),
    (lambda: nn.GroupNorm(4, 6), ValueError, r"GroupNorm: num_channels \(6\) must be divisible"),
    (lambda: nn.GroupNorm(2, 4)(wally.zeros(2, 6, 3)), ValueError,
     r"GroupNorm\(2, 4.*expected 4 channels on axis 1, got shape \(2, 6, 3\)"),
    (lambda: F.instance_norm(wally.zeros(2, 3, 1)), ValueError,
     r"instance_norm: expected more than 1 spatial element when training, got input size "
     r"\(2, 3, 1\)"),
    (lambda: F.instance_norm(wally.zeros(2, 3, 4), use_input_stats=False), ValueError,
     r"instance_norm: running_mean and running_var are required"),
    (lambda: F.instance_norm(wally.zeros(2, 3, 4), wally.zeros(2), wally.ones(2)), ValueError,
     r"instance_norm: expected running_mean of shape \(3,\), got shape \(2,\)"),
    (lambda: F.instance_norm(wally.zeros(2, 3, 4), wally.zeros(3)), ValueError,
     r"instance_norm: pass both running_mean and running_var"),
    (lambda: nn.InstanceNorm2d(3)(wally.zeros(3, 4)), ValueError,
     r"InstanceNorm2d\(3.*expected a 3-D or 4-D input \(C, H, W\) or \(N, C, H, W\), got shape "
     r"\(3, 4\)"),
    (lambda: F.local_response_norm(wally.zeros(2, 3), 2), ValueError,
     r"local_response_norm: expected an input with 3 or more dimensions"),
    (lambda: F.local_response_norm(wally.zeros(2, 3, 4), 0), ValueError,
     r"local_response_norm: size must be a positive integer, got 0"),
])
def test_bad_arguments(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# ----- hostile inputs ----------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda a: F.layer_norm(a, (3,)), lambda a: F.group_norm(a, 2), lambda a: F.instance_norm(a),
    lambda a: F.local_response_norm(a, 3),
])
def test_empty_batches_give_empty_outputs_and_gradients(fn):
    x = wally.zeros(0, 4, 3, requires_grad=True)
    y = fn(x)
    assert y.shape == (0, 4, 3)
    y.sum().backward()
    assert x.grad.shape == (0, 4, 3)


def test_empty_batch_keeps_the_running_statistics():
    mean, var = wally.zeros(4), wally.ones(4)
    F.instance_norm(wally.zeros(0, 4, 3), mean, var)
    assert mean.tolist() == [0.0] * 4 and var.tolist() == [1.0] * 4


@pytest.mark.parametrize("kind", ["layer", "group", "instance"])
def test_float32_statistics_that_overflow_are_recomputed(kind):
    """Values near ±3e38 square past float32's range; each row is rescaled instead of giving
    x̂ = 0 (PyTorch gives NaN or 0 here)."""
    values = np.array([3e38, -3e38, 1e30, 0.0], dtype=np.float32)
    x = wally.tensor(np.stack([values, values / 1e19, np.arange(4.0, dtype=np.float32)]))
    call = {"layer": lambda a: F.layer_norm(a, (4,)),
            "group": lambda a: F.group_norm(a[:, :, None], 1)[:, :, 0],
            "instance": lambda a: F.instance_norm(a[:, None, :])[:, 0]}[kind]
    y = call(x).array
    expected = F.layer_norm(wally.tensor(x.array.astype(np.float64) / 1e30), (4,), eps=0).array
    np.testing.assert_allclose(y[:2], expected[:2], rtol=1e-5, atol=1e-6)
    assert y.dtype == np.float32 and np.isfinite(y).all()
