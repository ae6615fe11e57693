"""Issue 18 part 5's gaps: ``nn.CosineSimilarity`` / ``nn.PairwiseDistance``,
``nn.LazyInstanceNorm1d/2d/3d``, and torch's top-level names for ops wally implements under
``wally.nn.functional`` (``wally.conv2d``, ``wally.dropout(input, p, train)``, ...).

Checked against central differences, per-element loops and PyTorch (values and gradients).
Run this file as a script to list the top-level names torch has that wally lacks at its top
level but implements elsewhere: ``python tests/test_gaps.py``.
"""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally import nn
from wally.testing import gradcheck

EXAMPLES = 25


def leaf(array):
    return wally.tensor(array, requires_grad=True)


def rng(seed=0):
    return np.random.default_rng(seed)


def close(got, want, dtype, scale=1.0):
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=tol * 10,
                               atol=tol * scale)


# ===== 1. CosineSimilarity and PairwiseDistance ============================================
@pytest.mark.parametrize("kwargs", [{}, {"dim": 0}, {"dim": -1, "eps": 1e-3}, {"eps": 0.5}])
def test_cosine_similarity_repr_and_attributes(torch, kwargs):
    ours, theirs = nn.CosineSimilarity(**kwargs), torch.nn.CosineSimilarity(**kwargs)
    assert repr(ours) == repr(theirs)
    assert (ours.dim, ours.eps) == (theirs.dim, theirs.eps)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []


@pytest.mark.parametrize("kwargs", [{}, {"p": 1.0}, {"p": 3, "eps": 0.0, "keepdim": True},
                                    {"keepdim": True}])
def test_pairwise_distance_repr_and_attributes(torch, kwargs):
    ours, theirs = nn.PairwiseDistance(**kwargs), torch.nn.PairwiseDistance(**kwargs)
    assert repr(ours) == repr(theirs)
    assert (ours.norm, ours.eps, ours.keepdim) == (theirs.norm, theirs.eps, theirs.keepdim)


def test_distance_modules_gradcheck():
    r = rng(1)
    a, b = r.standard_normal((3, 4)), r.standard_normal((3, 4))
    gradcheck(nn.CosineSimilarity(dim=1), leaf(a), leaf(b))
    gradcheck(nn.CosineSimilarity(dim=0), leaf(a), leaf(b[:1]))
    for p in (1.0, 2.0, 3.0, 0.5):
        gradcheck(nn.PairwiseDistance(p=p), leaf(a), leaf(b))
    gradcheck(nn.PairwiseDistance(keepdim=True), leaf(a), leaf(b[0]))


def test_distance_modules_match_loops():
    r = rng(2)
    a, b = r.standard_normal((3, 5)), r.standard_normal((3, 5))
    cos = nn.CosineSimilarity(dim=1, eps=1e-8)(wally.tensor(a), wally.tensor(b)).array
    for i in range(3):
        n1 = math.sqrt(sum(v * v for v in a[i]))
        n2 = math.sqrt(sum(v * v for v in b[i]))
        want = sum((a[i, j] / n1) * (b[i, j] / n2) for j in range(5))
        assert math.isclose(cos[i], want, rel_tol=1e-12)
    for p in (1.0, 2.0, 3.0):
        dist = nn.PairwiseDistance(p=p, eps=1e-6)(wally.tensor(a), wally.tensor(b)).array
        for i in range(3):
            want = sum(abs(a[i, j] - b[i, j] + 1e-6) ** p for j in range(5)) ** (1 / p)
            assert math.isclose(dist[i], want, rel_tol=1e-12)


@settings(max_examples=EXAMPLES, deadline=None)
@given(n=st.integers(1, 3), d=st.integers(1, 4), extra=st.integers(0, 2),
       dim=st.integers(-3, 2), broadcast=st.booleans(), eps=st.sampled_from([1e-8, 0.1, 3.0]),
       zero_row=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]))
def test_cosine_similarity_module_matches_torch(torch, n, d, extra, dim, broadcast, eps,
                                                zero_row, dtype):
    shape = (n, d) + (2,) * extra
    dim = dim % len(shape)
    r = rng(n * 100 + d * 10 + extra)
    a = r.standard_normal(shape).astype(dtype)
    b = r.standard_normal((1,) + shape[1:] if broadcast else shape).astype(dtype)
    if zero_row:
        a[0] = 0
    wa, wb = leaf(a), leaf(b)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out = nn.CosineSimilarity(dim, eps)(wa, wb)
    want = torch.nn.CosineSimilarity(dim, eps)(ta, tb)
    assert out.dtype == wally.float32 if dtype == np.float32 else out.dtype == wally.float64
    close(out.array, want.detach().numpy(), dtype)
    g = r.standard_normal(tuple(want.shape)).astype(dtype)
    out.backward(wally.tensor(g))
    want.backward(torch.tensor(g))
    close(wa.grad.array, ta.grad.numpy(), dtype, scale=10)
    close(wb.grad.array, tb.grad.numpy(), dtype, scale=10)


@settings(max_examples=EXAMPLES, deadline=None)
@given(n=st.integers(1, 3), d=st.integers(1, 5), p=st.sampled_from([0.5, 1.0, 2.0, 3.0, math.inf]),
       eps=st.sampled_from([0.0, 1e-6, 0.3]), keepdim=st.booleans(),
       form=st.sampled_from(["same", "row", "vector"]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_pairwise_distance_module_matches_torch(torch, n, d, p, eps, keepdim, form, dtype):
    r = rng(n * 10 + d)
    a = r.standard_normal((d,) if form == "vector" else (n, d)).astype(dtype)
    b = r.standard_normal((d,) if form in ("row", "vector") else (n, d)).astype(dtype)
    wa, wb = leaf(a), leaf(b)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out = nn.PairwiseDistance(p, eps, keepdim)(wa, wb)
    want = torch.nn.PairwiseDistance(p, eps, keepdim)(ta, tb)
    assert tuple(out.shape) == tuple(want.shape)
    close(out.array, want.detach().numpy(), dtype)
    g = r.standard_normal(tuple(want.shape)).astype(dtype)
    out.backward(wally.tensor(g))
    want.backward(torch.tensor(g))
    close(wa.grad.array, ta.grad.numpy(), dtype, scale=10)
    close(wb.grad.array, tb.grad.numpy(), dtype, scale=10)


def test_distance_modules_bad_arguments():
    with pytest.raises(ValueError,
                       match=r"PairwiseDistance\(\).*broadcastable.*\(2, 3\).*\(2, 4\)"):
        nn.PairwiseDistance()(wally.randn(2, 3), wally.randn(2, 4))
    with pytest.raises(ValueError, match=r"cosine_similarity.*\(2, 3\).*\(4, 3\)"):
        nn.CosineSimilarity()(wally.randn(2, 3), wally.randn(4, 3))
    with pytest.raises(IndexError, match=r"range.*got 3"):
        nn.CosineSimilarity(dim=3)(wally.randn(2, 3), wally.randn(2, 3))


def test_distance_modules_summary():
    n, d = 3, 5
    x1, x2 = wally.randn(n, d), wally.randn(n, d)
    (row,) = wally.summary(nn.PairwiseDistance(), input_data=[x1, x2]).layers
    # sub, + eps (1 per element each), and the vector norm's 2 per input element
    assert (row.macs, row.flops) == (0, 4 * n * d)
    assert "estimate" not in row.rule
    (row,) = wally.summary(nn.CosineSimilarity(), input_data=[x1, x2]).layers
    # two norms (2 per element), two divides, the product and the sum (1 per element), and
    # the clamp's correction added to each norm (1 per output)
    assert (row.macs, row.flops) == (0, 8 * n * d + 2 * n)
    assert "estimate" not in row.rule


# ===== 2. LazyInstanceNorm1d/2d/3d ==========================================================
LAZY = {1: "LazyInstanceNorm1d", 2: "LazyInstanceNorm2d", 3: "LazyInstanceNorm3d"}


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("kwargs", [{}, {"affine": False}, {"track_running_stats": False},
                                    {"bias": False, "eps": 1e-3, "momentum": None}])
def test_lazy_instance_norm_repr_before_and_after(torch, k, kwargs):
    ours, theirs = getattr(nn, LAZY[k])(**kwargs), getattr(torch.nn, LAZY[k])(**kwargs)
    assert repr(ours) == repr(theirs)
    assert ours.has_uninitialized_params() and theirs.has_uninitialized_params()
    x = rng(k).standard_normal((2, 3) + (4,) * k).astype(np.float32)
    ours(wally.tensor(x))
    theirs(torch.tensor(x))
    assert type(ours).__name__ == type(theirs).__name__ == f"InstanceNorm{k}d"
    assert repr(ours) == repr(theirs)
    assert ours.num_features == theirs.num_features == 3
    assert list(ours.state_dict()) == list(theirs.state_dict())


def _params(cls):
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]


def test_lazy_instance_norm_signature_matches_torch(torch):
    # BatchNorm's defaults (affine=True, track_running_stats=True), as PyTorch's lazy layers
    for name in LAZY.values():
        assert _params(getattr(nn, name)) == _params(getattr(torch.nn, name))


@settings(max_examples=EXAMPLES, deadline=None)
@given(k=st.integers(1, 3), n=st.integers(1, 3), c=st.integers(1, 4), size=st.integers(2, 4),
       affine=st.booleans(), track=st.booleans(), bias=st.booleans(),
       momentum=st.sampled_from([0.1, 0.5, None]), steps=st.integers(1, 2),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_lazy_instance_norm_matches_torch(torch, k, n, c, size, affine, track, bias, momentum,
                                          steps, dtype):
    kwargs = {"affine": affine, "track_running_stats": track, "bias": bias, "momentum": momentum}
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    ours = getattr(nn, LAZY[k])(dtype=wally.float32 if dtype == np.float32 else wally.float64,
                                **kwargs)
    theirs = getattr(torch.nn, LAZY[k])(dtype=tdtype, **kwargs)
    r = rng(k * 1000 + n * 100 + c * 10 + size)
    shape = (n, c) + (size,) * k
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # num_features=0 with affine=False: both warn
        for step in range(steps + 1):
            if step == steps:  # a last pass in evaluation mode
                ours.eval()
                theirs.eval()
            x = (r.standard_normal(shape) * 2 + 1).astype(dtype)
            wx, tx = leaf(x), torch.tensor(x, requires_grad=True)
            out, want = ours(wx), theirs(tx)
            close(out.array, want.detach().numpy(), dtype, scale=10)
            g = r.standard_normal(shape).astype(dtype)
            out.backward(wally.tensor(g))
            want.backward(torch.tensor(g))
            close(wx.grad.array, tx.grad.numpy(), dtype, scale=100)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key, value in theirs_state.items():
        close(ours_state[key].array, value.numpy(), dtype, scale=10)
    for name in ("weight", "bias"):
        if getattr(theirs, name) is not None:
            close(getattr(ours, name).grad.array, getattr(theirs, name).grad.numpy(), dtype,
                  scale=100)
        else:
            assert getattr(ours, name) is None


def test_lazy_instance_norm_gradcheck():
    norm = nn.LazyInstanceNorm2d(dtype=wally.float64)
    x = rng(3).standard_normal((2, 3, 3, 2))
    norm(wally.tensor(x))
    norm.weight.data = wally.tensor(rng(4).standard_normal(3))
    gradcheck(norm, leaf(x))


def test_lazy_instance_norm_unbatched_reads_the_channel_axis(torch):
    # PyTorch's lazy layer reads input.shape[1] even for an unbatched (C, L) input, and then
    # rejects it; wally reads the channel axis and matches the eager layer.
    x = rng(5).standard_normal((3, 6)).astype(np.float32)
    ours = nn.LazyInstanceNorm1d()
    out = ours(wally.tensor(x))
    assert ours.num_features == 3
    want = torch.nn.InstanceNorm1d(3, affine=True, track_running_stats=True)(torch.tensor(x))
    close(out.array, want.detach().numpy(), np.float32)
    close(ours.running_mean.array, x.mean(1) * 0.1, np.float32)


def test_lazy_instance_norm_loads_a_torch_state_dict(torch):
    theirs = torch.nn.InstanceNorm2d(4, affine=True, track_running_stats=True)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-1, 1)
        theirs(torch.randn(3, 4, 5, 5))
    theirs.eval()
    ours = nn.LazyInstanceNorm2d()
    ours.load_state_dict({k: wally.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    assert ours.num_features == 4
    ours.eval()
    x = rng(6).standard_normal((2, 4, 3, 3)).astype(np.float32)
    close(ours(wally.tensor(x)).array, theirs(torch.tensor(x)).detach().numpy(), np.float32)
    assert type(ours) is nn.InstanceNorm2d


@pytest.mark.parametrize("k,shape", [(1, (4,)), (2, (2, 3)), (3, (1, 2, 3, 4, 5, 6))])
def test_lazy_instance_norm_bad_rank(k, shape):
    layer = getattr(nn, LAZY[k])()
    ranks = f"{k + 1}-D or {k + 2}-D"
    with pytest.raises(ValueError, match=rf"{LAZY[k]}\(0.*expected a {ranks} input.*"
                                         rf"got shape {re_shape(shape)}"):
        layer(wally.randn(*shape))
    assert layer.has_uninitialized_params()


def re_shape(shape):
    return "\\(" + ", ".join(map(str, shape)) + (",\\)" if len(shape) == 1 else "\\)")


# ===== 3. torch's top-level names ============================================================
# torch.<name> that wally implements elsewhere but does not export at its top level: their
# top-level signature differs from F's (reduction is an int enum in ATen), and no PyTorch
# code calls these forms.
NOT_EXPORTED = {
    "binary_cross_entropy_with_logits": "ATen's (self, target, weight, pos_weight, int reduction)",
    "cosine_embedding_loss": "int reduction",
    "hinge_embedding_loss": "int reduction",
    "kl_div": "int reduction",
    "margin_ranking_loss": "int reduction",
    "poisson_nll_loss": "all six arguments required, int reduction",
    "triplet_margin_loss": "int reduction",
}


def torch_toplevel_gaps():
    """Public callables of ``torch`` that wally lacks at its top level but implements in
    ``wally.nn.functional`` or its op modules, with where."""
    import torch

    import wally.nn.functional as WF
    from wally import linalg, ops, ops_index, ops_math, ops_shape

    homes = {"wally.nn.functional": WF, "wally.linalg": linalg, "wally.ops": ops,
             "wally.ops_math": ops_math, "wally.ops_index": ops_index,
             "wally.ops_shape": ops_shape}
    gaps = {}
    for name in sorted(dir(torch)):
        if name.startswith("_") or hasattr(wally, name) or not callable(getattr(torch, name)):
            continue
        where = [home for home, mod in homes.items() if callable(getattr(mod, name, None))]
        if where:
            gaps[name] = where
    return gaps


def test_no_unexplained_toplevel_gaps(torch):
    gaps = torch_toplevel_gaps()
    unexplained = sorted(set(gaps) - set(NOT_EXPORTED))
    assert not unexplained, (
        f"torch has these at its top level and wally implements them elsewhere: {unexplained}; "
        "export them in wally/__init__.py's gaps block (torch's signature exactly) or add "
        "them to NOT_EXPORTED with the reason"
    )
    assert set(NOT_EXPORTED) <= set(gaps)


WRAPPERS = ["adaptive_max_pool1d", "alpha_dropout", "batch_norm", "dropout", "embedding",
            "feature_alpha_dropout", "feature_dropout", "group_norm", "instance_norm",
            "layer_norm", "max_pool1d", "max_pool2d", "max_pool3d"]


@pytest.mark.parametrize("name", WRAPPERS)
def test_wrapper_parameters_are_atens(torch, name):
    """Names, order and which have defaults, as in torch's schema (``self`` is ``input``)."""
    schemas = torch._C._jit_get_schemas_for_operator(f"aten::{name}")
    wanted = {tuple(("input" if a.name == "self" else a.name, a.has_default_value())
                    for a in s.arguments) for s in schemas}
    params = inspect.signature(getattr(wally, name)).parameters.values()
    ours = tuple((p.name, p.default is not inspect.Parameter.empty) for p in params)
    assert ours in wanted


def _case_data():
    r = rng(7)

    def a(*shape):
        return r.standard_normal(shape)

    idx = np.array([[0, 2, 1], [1, 1, 3]])
    return [
        ("conv1d", (a(2, 4, 9), a(6, 2, 3), a(6), 2, 1, 2, 2), {}),
        ("conv1d", (a(2, 4, 9), a(6, 4, 3)), {"padding": "same"}),
        ("conv2d", (a(1, 2, 7, 6), a(4, 2, 3, 2), a(4)), {"stride": (2, 1), "padding": 1}),
        ("conv3d", (a(1, 2, 4, 5, 4), a(2, 1, 2, 3, 2), None, 1, (1, 0, 1), 1, 2), {}),
        ("conv_transpose1d", (a(2, 4, 5), a(4, 3, 3), a(6), 2, 1, 1, 2, 1), {}),
        ("conv_transpose2d", (a(1, 2, 4, 3), a(2, 3, 3, 2), a(3)), {"stride": 2, "dilation": 2}),
        ("conv_transpose3d", (a(1, 2, 3, 2, 3), a(2, 2, 2, 2, 2), None, 2, 0, 1), {}),
        ("adaptive_avg_pool1d", (a(2, 3, 7), 3), {}),
        ("avg_pool1d", (a(2, 3, 8), 3, 2, 1, True, False), {}),
        ("avg_pool1d", (a(3, 7), 2), {}),
        ("max_pool1d", (a(2, 3, 9), 3, 2, 1, 2, True), {}),
        ("max_pool1d", (a(2, 3, 9), 2), {"stride": ()}),
        ("max_pool2d", (a(1, 2, 7, 6), 3), {"stride": 2, "padding": 1, "ceil_mode": True}),
        ("max_pool2d", (a(2, 5, 5), (2, 3)), {}),
        ("max_pool3d", (a(1, 2, 5, 4, 6), 2, 2, 0, 1, False), {}),
        ("adaptive_max_pool1d", (a(2, 3, 7), 3), {}),
        ("channel_shuffle", (a(2, 6, 2, 2), 3), {}),
        ("pixel_shuffle", (a(1, 8, 2, 3), 2), {}),
        ("pixel_unshuffle", (a(1, 2, 4, 6), 2), {}),
        ("batch_norm", (a(4, 3, 5), a(3), a(3), a(3), np.abs(a(3)) + 0.5, True, 0.3, 1e-5,
                        False), {}),
        ("batch_norm", (a(4, 3), None, None, a(3), np.abs(a(3)) + 0.5, False, 0.1, 1e-3,
                        True), {}),
        ("instance_norm", (a(2, 3, 5), a(3), a(3), a(3), np.abs(a(3)) + 0.5, True, 0.2, 1e-5,
                           False), {}),
        ("instance_norm", (a(2, 3, 2, 3), None, None, None, None, True, 0.1, 1e-5, False), {}),
        ("layer_norm", (a(2, 3, 4), [3, 4], a(3, 4), a(3, 4), 1e-3, True), {}),
        ("layer_norm", (a(2, 4), (4,)), {"cudnn_enable": False}),
        ("group_norm", (a(2, 6, 3), 3, a(6), a(6), 1e-5, True), {}),
        ("group_norm", (a(2, 4, 2, 2), 2), {"eps": 0.1, "cudnn_enabled": False}),
        ("embedding", (a(5, 3), idx), {}),
        ("embedding", (a(5, 3), idx, 1), {}),
        ("embedding", (a(5, 3), idx), {"padding_idx": 3, "scale_grad_by_freq": True}),
        ("dropout", (a(3, 4), 0.4, False), {}),
        ("dropout", (a(3, 4), 0.0), {"train": True}),
        ("alpha_dropout", (a(3, 4), 0.4, False), {}),
        ("feature_alpha_dropout", (a(2, 3, 4), 0.3, False), {}),
        ("feature_dropout", (a(2, 3, 4), 0.5, False), {}),
        ("all", (a(3, 4) > -1,), {}),
        ("all", (a(3, 4) > -1, 1), {}),
        ("any", (a(3, 4) > 1, 0, True), {}),
        ("any", (a(3, 4) > 1,), {"dim": 1}),
        ("fill", (a(2, 3), 2.5), {}),
        ("unflatten", (a(2, 6), 1, (2, 3)), {}),
    ]


CASES = _case_data()
# which arguments are differentiable (floating arrays that are not running statistics)
STATS = {"batch_norm": (3, 4), "instance_norm": (3, 4)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[0] for c in CASES])
def test_toplevel_name_matches_torch(torch, case, dtype):
    name, args, kwargs = CASES[case]
    assert getattr(wally, name) is not None

    def convert(lib, i, v):
        if isinstance(v, np.ndarray):
            if v.dtype.kind == "f":
                v = v.astype(dtype)
                grad = i not in STATS.get(name, ()) and name not in ("fill",)
                return (lib.tensor(v, requires_grad=grad) if lib is torch
                        else wally.tensor(v, requires_grad=grad))
            return lib.tensor(v)
        return v

    ours_args = [convert(wally, i, v) for i, v in enumerate(args)]
    theirs_args = [convert(torch, i, v) for i, v in enumerate(args)]
    out = getattr(wally, name)(*ours_args, **kwargs)
    want = getattr(torch, name)(*theirs_args, **kwargs)
    outs = out if isinstance(out, tuple) else (out,)
    wants = want if isinstance(want, tuple) else (want,)
    assert len(outs) == len(wants)
    for o, w in zip(outs, wants):
        assert tuple(o.shape) == tuple(w.shape)
        assert str(o.dtype).split(".")[-1] == str(w.dtype).split(".")[-1]
        close(o.array, w.detach().numpy(), dtype, scale=10)
    if not outs[0].requires_grad:
        assert not wants[0].requires_grad
        return
    g = rng(8).standard_normal(tuple(wants[0].shape)).astype(dtype)
    outs[0].backward(wally.tensor(g))
    wants[0].backward(torch.tensor(g))
    for o, w in zip(ours_args, theirs_args):
        if isinstance(w, torch.Tensor) and w.requires_grad:
            close(o.grad.array, w.grad.numpy(), dtype, scale=100)
    for i in STATS.get(name, ()):  # running statistics updated in place, as torch's
        if isinstance(theirs_args[i], torch.Tensor):
            close(ours_args[i].array, theirs_args[i].numpy(), dtype)


def test_toplevel_dropouts_in_training():
    x = wally.tensor(rng(9).standard_normal((8, 6, 5)) + 3.0)
    y = wally.dropout(x, 0.5, True).array
    assert np.all((y == 0) | np.isclose(y, 2 * x.array))
    assert 0 < np.count_nonzero(y == 0) < y.size
    y = wally.feature_dropout(x, 0.5, True).array
    per_channel = (y == 0).all(axis=2) | np.isclose(y, 2 * x.array).all(axis=2)
    assert per_channel.all() and 0 < np.count_nonzero((y == 0).all(axis=2)) < 48
    y = wally.feature_alpha_dropout(x, 0.5, True).array
    dropped = np.ptp(y, axis=2) < 1e-6  # a dropped channel is one constant
    assert 0 < np.count_nonzero(dropped) < 48
    assert np.all(wally.dropout(x, 1.0, True).array == 0)


def test_toplevel_bad_arguments():
    x = wally.randn(2, 3)
    with pytest.raises(ValueError, match=r"dropout.*1\.5"):
        wally.dropout(x, 1.5, True)
    with pytest.raises(ValueError, match=r"feature_dropout.*at least 2 dimensions.*\(3,\)"):
        wally.feature_dropout(wally.randn(3), 0.5, True)
    with pytest.raises(TypeError):
        wally.dropout(x, 0.5)  # train has no default in torch.dropout


if __name__ == "__main__":
    for gap_name, homes in torch_toplevel_gaps().items():
        print(f"{gap_name:36} {', '.join(homes):24} {NOT_EXPORTED.get(gap_name, 'NOT EXPORTED')}")
