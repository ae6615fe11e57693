"""The issue-18 tensor ops against PyTorch: values *and* gradients over hypothesis grids of
shapes (0-d, size-0 dims, odd sizes, negative dims, non-contiguous inputs) and options.

Each test runs one lambda ``fn(lib, *tensors)`` on wally and on torch (tinygrad's style)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally

EXAMPLES = 20


def _to_numpy(value):
    return value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)


def compare(torch, fn, *arrays, rtol=1e-5, atol=1e-6, grad=True, index_outputs=()):
    """Run ``fn`` on wally and torch tensors made from ``arrays`` (float arrays require grad);
    compare every output's values and dtype, then the gradients of a random contraction."""
    ours = [wally.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    out, ref = fn(wally, *ours), fn(torch, *theirs)
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    refs = tuple(ref) if isinstance(ref, (tuple, list)) else (ref,)
    assert len(outs) == len(refs)
    for o, r in zip(outs, refs):
        np.testing.assert_allclose(_to_numpy(o), _to_numpy(r), rtol=rtol, atol=atol)
        assert o.dtype == np.dtype(str(r.dtype).replace("torch.", "")), (o.dtype, r.dtype)
        assert o.requires_grad == r.requires_grad
    if not grad:
        return
    rng = np.random.default_rng(1)
    pairs = [(o, r) for o, r in zip(outs, refs) if r.requires_grad]
    if not pairs:
        return
    loss_ours = sum((o * wally.tensor(rng.standard_normal(r.shape).astype(_to_numpy(o).dtype)))
                    .sum() for o, r in pairs if True)
    rng = np.random.default_rng(1)
    loss_ref = sum((r * torch.tensor(rng.standard_normal(r.shape).astype(_to_numpy(o).dtype)))
                   .sum() for o, r in pairs)
    loss_ours.backward()
    loss_ref.backward()
    for o, t in zip(ours, theirs):
        if t.grad is not None:
            if o.grad is None:  # wally leaves an input that can't affect the output unreached
                assert not t.grad.numpy().any(), "torch has a gradient where wally has none"
                continue
            np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol)


def arrays(shape, dtype=np.float64, seed=0, transposed=False, low=None):
    """A random array; ``transposed`` gives a non-contiguous view of the same shape."""
    rng = np.random.default_rng(seed)
    if transposed and len(shape) >= 2:
        a = rng.standard_normal(shape[::-1]).astype(dtype).T
    else:
        a = rng.standard_normal(shape).astype(dtype)
    return a if low is None else np.abs(a) + low


shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
nonempty = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
dtypes = st.sampled_from([np.float32, np.float64])


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-7, atol=1e-9)


# ----- pointwise ------------------------------------------------------------------------------
POINTWISE = {
    "sinh": lambda L, x: L.sinh(x),
    "cosh": lambda L, x: x.cosh(),
    "erf": lambda L, x: L.erf(x * 3),
    "square": lambda L, x: L.square(x),
    "floor": lambda L, x: L.floor(x * 3),
    "ceil": lambda L, x: x.mul(3).ceil(),
    "trunc": lambda L, x: L.trunc(x * 3),
    "round": lambda L, x: L.round(x * 3),
    "round2": lambda L, x: L.round(x * 30, decimals=1),
    "round-1": lambda L, x: x.mul(300).round(decimals=-1),
    "clamp_min": lambda L, x: L.clamp_min(x, 0.1),
    "clamp_max": lambda L, x: x.clamp_max(-0.2),
}


@pytest.mark.parametrize("name", sorted(POINTWISE))
@settings(max_examples=EXAMPLES)
@given(shape=shapes, dtype=dtypes, transposed=st.booleans())
def test_pointwise(torch, name, shape, dtype, transposed):
    compare(torch, POINTWISE[name], arrays(shape, dtype, transposed=transposed), **tol(dtype))


def test_pointwise_integer_dtypes_follow_torch(torch):
    ints = np.array([[-2, 0, 3]], dtype=np.int64)
    for fn in (lambda L, x: L.floor(x), lambda L, x: L.ceil(x), lambda L, x: L.trunc(x),
               lambda L, x: L.round(x), lambda L, x: L.square(x), lambda L, x: L.sinh(x),
               lambda L, x: L.erf(x), lambda L, x: L.cumsum(x, 1), lambda L, x: L.prod(x, 1),
               lambda L, x: L.logsumexp(x.float(), 1)):
        compare(torch, fn, ints, grad=False, rtol=1e-6)
    compare(torch, lambda L, x: L.cumsum(x, 0), np.array([True, True, False]), grad=False)


def test_erf_accuracy_against_math(torch):
    z = np.concatenate([np.linspace(-6, 6, 1001), [0.0, 1e-30, -1e-8, 0.46875, 0.47, 4.0]])
    expected = np.array([math.erf(v) for v in z])
    np.testing.assert_allclose(wally.erf(wally.tensor(z)).numpy(), expected, rtol=2e-15,
                               atol=1e-300)
    got32 = wally.erf(wally.tensor(z.astype(np.float32))).numpy()
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, expected, rtol=2e-6, atol=1e-7)


def test_classification_and_closeness(torch):
    x = np.array([0.0, -np.inf, np.inf, np.nan, 1.0, 1.0 + 1e-6], dtype=np.float32)
    y = np.array([0.0, -np.inf, -np.inf, np.nan, 1.1, 1.0], dtype=np.float32)
    for fn in (lambda L, a, b: L.isnan(a), lambda L, a, b: L.isinf(a),
               lambda L, a, b: L.isfinite(a), lambda L, a, b: a.isinf(),
               lambda L, a, b: L.isclose(a, b), lambda L, a, b: a.isclose(b, equal_nan=True),
               lambda L, a, b: L.isclose(a, b, rtol=0.2, atol=0.0)):
        compare(torch, fn, x, y, grad=False)
    a, b = wally.tensor(x[:3]), torch.tensor(x[:3])
    assert wally.allclose(a, a) == torch.allclose(b, b)
    assert a.allclose(a + 1e-7) == b.allclose(b + 1e-7)
    assert wally.equal(a, a.clone()) and not wally.equal(a, a[:2])
    assert a.equal(a.clone()) == b.equal(b.clone())


# ----- scans and reductions -------------------------------------------------------------------
def with_zeros(shape, dtype, zeros, seed):
    """Random values with about ``zeros`` zeros per row (0, 1 or several)."""
    a = arrays(shape, dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    if a.size and zeros:
        a[rng.random(shape) < zeros / max(shape[-1] if shape else 1, 1)] = 0
    return a


@settings(max_examples=EXAMPLES)
@given(shape=nonempty, dtype=dtypes, zeros=st.sampled_from([0, 1, 2]),
       seed=st.integers(0, 99), data=st.data())
def test_cumsum_cumprod(torch, shape, dtype, zeros, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = with_zeros(shape, dtype, zeros, seed)
    compare(torch, lambda L, t: L.cumsum(t, dim), x, **tol(dtype))
    compare(torch, lambda L, t: t.cumprod(dim), x, **tol(dtype))


def test_cumprod_gradient_with_zeros_exact(torch):
    for row in ([0.0, 2.0, 3.0], [2.0, 0.0, 3.0, 0.0], [2.0, 3.0, 0.0], [0.0, 0.0], [5.0]):
        compare(torch, lambda L, t: L.cumprod(t, 0), np.array(row))
    compare(torch, lambda L, t: L.cumsum(t, 0), np.zeros(0))
    compare(torch, lambda L, t: L.cumprod(t, -1), np.array(2.5))


@settings(max_examples=EXAMPLES)
@given(shape=shapes, dtype=dtypes, zeros=st.sampled_from([0, 1, 2]), keepdim=st.booleans(),
       seed=st.integers(0, 99), data=st.data())
def test_prod(torch, shape, dtype, zeros, keepdim, seed, data):
    x = with_zeros(shape, dtype, zeros, seed)
    compare(torch, lambda L, t: L.prod(t), x, **tol(dtype))
    if shape:
        dim = data.draw(st.integers(-len(shape), len(shape) - 1))
        compare(torch, lambda L, t: t.prod(dim, keepdim=keepdim), x, **tol(dtype))


def test_prod_gradient_rows_with_zero_one_two_zeros(torch):
    x = np.array([[1.5, 2.0, 3.0], [0.0, 2.0, 3.0], [0.0, 2.0, 0.0]])
    compare(torch, lambda L, t: L.prod(t, 1), x)
    compare(torch, lambda L, t: L.prod(t, 0, keepdim=True), x)
    compare(torch, lambda L, t: L.prod(t, dtype=L.float32), x)


@settings(max_examples=EXAMPLES)
@given(shape=nonempty, dtype=dtypes, keepdim=st.booleans(), data=st.data())
def test_logsumexp(torch, shape, dtype, keepdim, data):
    dims = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1,
                              max_size=len(shape), unique_by=lambda d: d % len(shape)))
    x = arrays(shape, dtype) * 30
    compare(torch, lambda L, t: L.logsumexp(t, dims, keepdim=keepdim), x, **tol(dtype))
    compare(torch, lambda L, t: t.logsumexp(dims[0]), x, **tol(dtype))


def test_logsumexp_infinities(torch):
    x = np.array([[-np.inf, -np.inf], [np.inf, 1.0], [-np.inf, 0.0]])
    compare(torch, lambda L, t: L.logsumexp(t, 1), x, grad=False)
    compare(torch, lambda L, t: L.logsumexp(t, 0), np.zeros((0, 2)), grad=False)
    compare(torch, lambda L, t: L.logsumexp(t, 0), np.array(1.5))


# ----- batched products and einsum ------------------------------------------------------------
@settings(max_examples=EXAMPLES)
@given(b=st.integers(0, 3), n=st.integers(0, 4), m=st.integers(0, 4), p=st.integers(0, 4),
       dtype=dtypes, transposed=st.booleans(), beta=st.sampled_from([0, 1, 0.5]),
       alpha=st.sampled_from([1, -2.0]), bias=st.sampled_from(["full", "row", "scalar"]))
def test_bmm_baddbmm(torch, b, n, m, p, dtype, transposed, beta, alpha, bias):
    x, y = arrays((b, n, m), dtype, 1, transposed), arrays((b, m, p), dtype, 2, transposed)
    compare(torch, lambda L, s, t: L.bmm(s, t), x, y, **tol(dtype))
    shape = {"full": (b, n, p), "row": (p,), "scalar": ()}[bias]
    c = arrays(shape, dtype, 3)
    if beta == 0 and c.size:
        c.reshape(-1)[0] = np.nan  # ignored with beta=0
    compare(torch, lambda L, s, u, v: L.baddbmm(s, u, v, beta=beta, alpha=alpha), c, x, y,
            **tol(dtype))
    compare(torch, lambda L, s, u, v: s.baddbmm(u, v, alpha=alpha), c, x, y, **tol(dtype))


EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 1)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->j", [(2, 2, 3)]),
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("i,i->", [(4,), (4,)]),
    ("i,j->ij", [(3,), (2,)]),
    ("ij,j->i", [(0, 3), (3,)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)]),
    ("...j,...j->...", [(1, 4), (3, 4)]),
    ("b...,b->...", [(2, 3, 2), (2,)]),
    ("abc,cd,da->b", [(2, 3, 4), (4, 5), (5, 2)]),
    ("i j , j k -> i k", [(2, 3), (3, 4)]),
    ("Ab,bC->AC", [(2, 3), (3, 2)]),
    ("ij,kl->", [(2, 2), (3, 1)]),
]


@pytest.mark.parametrize("equation, shapes_", EINSUM)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_einsum(torch, equation, shapes_, dtype):
    xs = [arrays(s, dtype, seed=i, transposed=True) for i, s in enumerate(shapes_)]
    compare(torch, lambda L, *ts: L.einsum(equation, *ts), *xs, **tol(dtype))
    compare(torch, lambda L, *ts: L.einsum(equation, list(ts)), *xs, **tol(dtype))


# ----- layout ---------------------------------------------------------------------------------
@settings(max_examples=EXAMPLES)
@given(sizes=st.lists(st.integers(0, 3), min_size=1, max_size=3),
       indexing=st.sampled_from(["ij", "xy"]), zero_d=st.booleans())
def test_meshgrid(torch, sizes, indexing, zero_d):
    xs = [arrays((n,), seed=i) for i, n in enumerate(sizes)]
    if zero_d:
        xs[0] = np.array(1.5)
    compare(torch, lambda L, *ts: L.meshgrid(*ts, indexing=indexing), *xs)
    compare(torch, lambda L, *ts: L.meshgrid(list(ts), indexing="ij"), *xs)


def test_meshgrid_default_is_ij_without_warning(torch):
    import warnings

    a, b = wally.arange(3), wally.arange(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grids = wally.meshgrid(a, b)
    expected = torch.meshgrid(torch.arange(3), torch.arange(2), indexing="ij")
    for g, e in zip(grids, expected):
        np.testing.assert_array_equal(g.numpy(), e.numpy())


@settings(max_examples=EXAMPLES)
@given(shape=shapes, transposed=st.booleans(), data=st.data())
def test_flip_roll(torch, shape, transposed, data):
    x = arrays(shape, transposed=transposed)
    nd = max(len(shape), 1)
    dims = data.draw(st.lists(st.integers(-nd, nd - 1), max_size=nd, unique_by=lambda d: d % nd))
    shifts = data.draw(st.lists(st.integers(-5, 5), min_size=len(dims), max_size=len(dims)))
    if shape:
        compare(torch, lambda L, t: L.flip(t, dims), x)
        compare(torch, lambda L, t: t.flip(*dims) if dims else t.flip(dims), x)
        compare(torch, lambda L, t: t.flip(dims=dims), x)
        if dims:
            compare(torch, lambda L, t: L.roll(t, shifts, dims), x)
            compare(torch, lambda L, t: t.roll(shifts[0], dims[0]), x)
    compare(torch, lambda L, t: L.roll(t, 2), x)


@settings(max_examples=EXAMPLES)
@given(shape=st.lists(st.integers(0, 4), min_size=2, max_size=4).map(tuple),
       k=st.integers(-5, 5), transposed=st.booleans(), data=st.data())
def test_rot90(torch, shape, k, transposed, data):
    nd = len(shape)
    dims = data.draw(st.lists(st.integers(-nd, nd - 1), min_size=2, max_size=2,
                              unique_by=lambda d: d % nd))
    x = arrays(shape, transposed=transposed)
    compare(torch, lambda L, t: L.rot90(t, k, dims), x)
    compare(torch, lambda L, t: t.rot90(), x)


@settings(max_examples=EXAMPLES)
@given(shape=st.lists(st.integers(0, 4), min_size=2, max_size=4).map(tuple),
       diagonal=st.integers(-4, 4), transposed=st.booleans())
def test_tril_triu(torch, shape, diagonal, transposed):
    x = arrays(shape, transposed=transposed)
    compare(torch, lambda L, t: L.tril(t, diagonal), x)
    compare(torch, lambda L, t: t.triu(diagonal=diagonal), x)
    compare(torch, lambda L, t: L.triu(t), x)


@settings(max_examples=EXAMPLES)
@given(shape=st.sampled_from([(0,), (1,), (3,), (2, 3), (4, 2), (3, 3), (0, 2)]),
       diagonal=st.integers(-4, 4))
def test_diag(torch, shape, diagonal):
    compare(torch, lambda L, t: L.diag(t, diagonal), arrays(shape, transposed=True))
    compare(torch, lambda L, t: t.diag(), arrays(shape))


@settings(max_examples=EXAMPLES)
@given(shape=nonempty, data=st.data())
def test_chunk_split_unbind(torch, shape, data):
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    n = shape[dim]
    x = arrays(shape)
    chunks = data.draw(st.integers(1, 5))
    size = data.draw(st.integers(1, 5))
    cut = sorted(data.draw(st.lists(st.integers(0, n), min_size=0, max_size=3)))
    sizes = [b - a for a, b in zip([0, *cut], [*cut, n])]
    compare(torch, lambda L, t: L.chunk(t, chunks, dim), x)
    compare(torch, lambda L, t: t.chunk(chunks, dim=dim), x)
    compare(torch, lambda L, t: L.split(t, size, dim), x)
    compare(torch, lambda L, t: t.split(sizes, dim), x)
    compare(torch, lambda L, t: L.unbind(t, dim), x)
    compare(torch, lambda L, t: t.unbind(dim), x)


def test_chunk_split_empty_dims(torch):
    x = np.zeros((2, 0))
    compare(torch, lambda L, t: L.chunk(t, 3, 1), x)
    compare(torch, lambda L, t: L.split(t, 2, 1), x)
    compare(torch, lambda L, t: L.split(t, 0, 1), x)
    compare(torch, lambda L, t: L.split(t, [0, 0], 1), x)


@settings(max_examples=EXAMPLES)
@given(shape=shapes, reps=st.lists(st.integers(0, 3), max_size=4), transposed=st.booleans())
def test_repeat_tile(torch, shape, reps, transposed):
    x = arrays(shape, transposed=transposed)
    compare(torch, lambda L, t: L.tile(t, reps), x)
    compare(torch, lambda L, t: t.tile(*reps) if reps else t.tile(reps), x)
    if len(reps) >= len(shape) and reps:
        compare(torch, lambda L, t: t.repeat(*reps), x)


@settings(max_examples=EXAMPLES)
@given(shape=shapes, density=st.sampled_from([0.0, 0.5, 1.0]), seed=st.integers(0, 9))
def test_nonzero(torch, shape, density, seed):
    x = (np.random.default_rng(seed).random(shape) < density) * arrays(shape)
    compare(torch, lambda L, t: L.nonzero(t), x, grad=False)
    compare(torch, lambda L, t: t.nonzero(as_tuple=True), x, grad=False)
    compare(torch, lambda L, t: L.nonzero(t > 0, as_tuple=True), x, grad=False)


# ----- gather, scatter and friends ------------------------------------------------------------
@settings(max_examples=EXAMPLES)
@given(shape=nonempty, dtype=dtypes, seed=st.integers(0, 99), data=st.data())
def test_gather_scatter(torch, shape, dtype, seed, data):
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    rng = np.random.default_rng(seed)
    ishape = tuple(rng.integers(0, n + 1) if d != dim % nd else rng.integers(0, 5)
                   for d, n in enumerate(shape))
    index_nonneg = rng.integers(0, shape[dim], size=ishape)
    x = arrays(shape, dtype, seed)
    src = arrays(tuple(n + 1 for n in ishape), dtype, seed + 1)
    compare(torch, lambda L, t, i: L.gather(t, dim, i), x, index_nonneg, **tol(dtype))
    # torch's scatter_add backward rejects a src larger than index: grads with src = index's
    # shape, values with the larger src
    same = arrays(ishape, dtype, seed + 3)
    compare(torch, lambda L, t, i, s: L.scatter_add(t, dim, i, s), x, index_nonneg, same,
            **tol(dtype))
    compare(torch, lambda L, t, i, s: t.scatter_add(dim, i, s), x, index_nonneg, src,
            **tol(dtype), grad=False)
    compare(torch, lambda L, t, i, s: t.scatter(dim, i, s, reduce="add"), x, index_nonneg, src,
            **tol(dtype), grad=False)
    # Plain scatter: repeated indices leave the winner unspecified in PyTorch, so use unique
    # ones along dim (a permutation prefix per position).
    order = np.argsort(rng.random(shape), axis=dim % nd)
    k = ishape[dim % nd] if ishape[dim % nd] <= shape[dim] else shape[dim]
    unique = np.take(order, np.arange(k), axis=dim % nd)
    unique = unique[tuple(slice(0, n) for n in ishape)]
    src_u = arrays(unique.shape, dtype, seed + 2)
    compare(torch, lambda L, t, i, s: L.scatter(t, dim, i, s), x, unique, src_u, **tol(dtype))
    larger = arrays(tuple(n + 1 for n in unique.shape), dtype, seed + 4)
    compare(torch, lambda L, t, i, s: L.scatter(t, dim, i, s), x, unique, larger, **tol(dtype),
            grad=False)
    compare(torch, lambda L, t, i: t.scatter(dim, i, 2.5), x, unique, **tol(dtype))
    compare(torch, lambda L, t, i: L.scatter(t, dim, i, value=-1.0), x, unique, **tol(dtype))


@settings(max_examples=EXAMPLES)
@given(shape=nonempty, seed=st.integers(0, 99), n=st.integers(0, 6), data=st.data())
def test_index_select(torch, shape, seed, n, data):
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    index = np.random.default_rng(seed).integers(0, shape[dim], size=n)
    compare(torch, lambda L, t, i: L.index_select(t, dim, i), arrays(shape, transposed=True),
            index)
    compare(torch, lambda L, t, i: t.index_select(dim, i[:1].reshape(())) if n else t,
            arrays(shape), index)


@settings(max_examples=EXAMPLES)
@given(shape=shapes, seed=st.integers(0, 99), tensor_value=st.booleans(),
       broadcast=st.booleans())
def test_masked_fill(torch, shape, seed, tensor_value, broadcast):
    rng = np.random.default_rng(seed)
    mask_shape = shape[1:] if broadcast else shape
    mask = rng.random(mask_shape) < 0.5
    x = arrays(shape, seed=seed)
    if tensor_value:
        compare(torch, lambda L, t, m, v: L.masked_fill(t, m, v), x, mask, np.array(0.75))
    else:
        compare(torch, lambda L, t, m: t.masked_fill(m, -2.0), x, mask)


# ----- sorting --------------------------------------------------------------------------------
@settings(max_examples=EXAMPLES)
@given(shape=shapes, descending=st.booleans(), ties=st.booleans(), seed=st.integers(0, 99),
       dtype=st.sampled_from([np.float32, np.float64, np.int64]), data=st.data())
def test_sort_argsort(torch, shape, descending, ties, seed, dtype, data):
    nd = max(len(shape), 1)
    dim = data.draw(st.integers(-nd, nd - 1))
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 3, size=shape) if ties else rng.standard_normal(shape)).astype(dtype)
    if dtype != np.int64 and x.size and data.draw(st.booleans()):
        x.reshape(-1)[0] = np.nan
    compare(torch, lambda L, t: L.sort(t, dim=dim, descending=descending, stable=True), x)
    compare(torch, lambda L, t: t.sort(dim=dim, descending=descending, stable=True), x)
    compare(torch, lambda L, t: L.argsort(t, dim=dim, descending=descending, stable=True), x,
            grad=False)


@settings(max_examples=EXAMPLES)
@given(shape=nonempty, largest=st.booleans(), seed=st.integers(0, 99), keepdim=st.booleans(),
       data=st.data())
def test_topk_kthvalue(torch, shape, largest, seed, keepdim, data):
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    k = data.draw(st.integers(0, shape[dim]))
    x = arrays(shape, seed=seed)  # distinct values: which tie wins is unspecified in PyTorch
    compare(torch, lambda L, t: L.topk(t, k, dim, largest=largest), x)
    compare(torch, lambda L, t: t.topk(k, dim=dim, largest=largest, sorted=True), x)
    if k >= 1:
        compare(torch, lambda L, t: L.kthvalue(t, k, dim, keepdim), x)
        compare(torch, lambda L, t: t.kthvalue(k, dim), x)


def test_sort_family_on_0d(torch):
    x = np.array(1.5)
    compare(torch, lambda L, t: L.sort(t), x)
    compare(torch, lambda L, t: L.topk(t, 1), x)
    compare(torch, lambda L, t: L.topk(t, 0), x)
    compare(torch, lambda L, t: L.kthvalue(t, 1), x)
    compare(torch, lambda L, t: L.argsort(t), x, grad=False)


# ----- norms and distances --------------------------------------------------------------------
VECTOR_ORDS = [2, 1, 3, 0.5, math.inf, -math.inf, 0, -1.5]


@pytest.mark.parametrize("ord", VECTOR_ORDS)
@settings(max_examples=EXAMPLES)
@given(shape=shapes, keepdim=st.booleans(), dtype=dtypes, transposed=st.booleans(),
       data=st.data())
def test_vector_norm(torch, ord, shape, keepdim, dtype, transposed, data):
    nd = max(len(shape), 1)
    dim = data.draw(st.one_of(st.none(), st.integers(-nd, nd - 1)))
    x = arrays(shape, dtype, transposed=transposed, low=0.1) * np.where(
        np.random.default_rng(2).random(shape) < 0.5, -1, 1)
    empty = x.size == 0 or (dim is not None and shape and shape[dim] == 0)
    if empty and ord < 0:
        return
    if empty and ord == math.inf:
        return
    compare(torch, lambda L, t: L.linalg.vector_norm(t, ord, dim, keepdim), x, **tol(dtype))
    if dim is not None or len(shape) == 1:
        compare(torch, lambda L, t: L.linalg.norm(t, ord, dim, keepdim), x, **tol(dtype))


def test_norm_gradient_at_zero_is_zero(torch):
    for ord in (2, 3, math.inf):
        compare(torch, lambda L, t, o=ord: L.linalg.vector_norm(t, o), np.zeros(3))
    compare(torch, lambda L, t: L.norm(t, dim=1), np.array([[0.0, 0.0], [3.0, 4.0]]))


def test_inf_norm_ties_share_the_gradient(torch):
    compare(torch, lambda L, t: L.linalg.vector_norm(t, math.inf), np.array([2.0, -2.0, 1.0]))


@pytest.mark.parametrize("ord", ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf])
@pytest.mark.parametrize("shape, dim", [((3, 4), (-2, -1)), ((2, 3, 2), (0, 2)),
                                        ((2, 4, 3), (-1, 1))])
@pytest.mark.parametrize("keepdim", [False, True])
def test_matrix_norm(torch, ord, shape, dim, keepdim):
    x = arrays(shape, transposed=True)
    compare(torch, lambda L, t: L.linalg.matrix_norm(t, ord, dim, keepdim), x, rtol=1e-6)
    compare(torch, lambda L, t: L.linalg.norm(t, ord, dim, keepdim), x, rtol=1e-6)


def test_torch_norm_forms(torch):
    x = arrays((3, 4))
    compare(torch, lambda L, t: L.norm(t), x)
    compare(torch, lambda L, t: t.norm(), x)
    compare(torch, lambda L, t: t.norm(dim=1, keepdim=True), x)
    compare(torch, lambda L, t: t.norm(p=1, dim=0), x)
    compare(torch, lambda L, t: L.norm(t, p="nuc"), x)
    compare(torch, lambda L, t: L.norm(t, p=math.inf), x)
    compare(torch, lambda L, t: L.linalg.norm(t), x)
    compare(torch, lambda L, t: L.linalg.norm(t, ord=2), x)
    compare(torch, lambda L, t: L.linalg.norm(t, dim=(0, 1)), x)


@settings(max_examples=EXAMPLES)
@given(batch=st.sampled_from([(), (2,), (2, 1)]), p_rows=st.integers(1, 4),
       r_rows=st.integers(1, 4), m=st.integers(1, 3), p=st.sampled_from([2.0, 1.0, 3.0, 0.5,
                                                                          math.inf, 0.0]),
       dtype=dtypes)
def test_cdist(torch, batch, p_rows, r_rows, m, p, dtype):
    x1 = arrays(batch + (p_rows, m), dtype, 1)
    x2 = arrays(batch[:1] + (r_rows, m), dtype, 2)
    compare(torch, lambda L, a, b: L.cdist(a, b, p=p), x1, x2, **tol(dtype))


def test_cdist_coincident_points_have_zero_gradient(torch):
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    compare(torch, lambda L, a, b: L.cdist(a, b), x, x.copy())


@settings(max_examples=EXAMPLES)
@given(shape=st.sampled_from([(3,), (2, 3), (4, 1), (2, 3, 2)]), broadcast=st.booleans(),
       p=st.sampled_from([2.0, 1.0, 3.0]), keepdim=st.booleans(), dtype=dtypes, data=st.data())
def test_distances_and_normalize(torch, shape, broadcast, p, keepdim, dtype, data):
    F = "nn.functional"  # noqa: N806
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    x1 = arrays(shape, dtype, 1)
    x2 = arrays(shape[1:] if broadcast and nd > 1 else shape, dtype, 2)

    def fn(path):
        def get(L):
            mod = L
            for part in path.split("."):
                mod = getattr(mod, part)
            return mod
        return get

    func = fn(F)
    compare(torch, lambda L, a, b: func(L).pairwise_distance(a, b, p=p, keepdim=keepdim), x1,
            x2, **tol(dtype))
    compare(torch, lambda L, a, b: func(L).cosine_similarity(a, b, dim=dim), x1, x2,
            **tol(dtype))
    compare(torch, lambda L, a, b: L.cosine_similarity(a, b, dim=dim), x1, x2, **tol(dtype))
    compare(torch, lambda L, a: func(L).normalize(a, p=p, dim=dim), x1, **tol(dtype))


def test_cosine_similarity_near_zero_vectors(torch):
    """Where eps wins over a norm, PyTorch still differentiates the norm itself."""
    a = np.array([[1e-9, 0.0, 0.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    b = np.array([[1e-9, 1e-9, 0.0], [1.0, 2.0, 3.0], [1.0, 0.0, 0.0]], dtype=np.float32)
    compare(torch, lambda L, x, y: L.cosine_similarity(x, y, dim=1), a, b, rtol=1e-5, atol=1e-3)


def test_normalize_zero_vector(torch):
    compare(torch, lambda L, a: L.nn.functional.normalize(a, dim=0), np.zeros(3))
