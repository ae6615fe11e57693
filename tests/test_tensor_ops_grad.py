"""The issue-18 tensor ops by float64 central differences, against the naive loops of
``wally.reference``, with their in-place variants, and with bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally import reference
from wally.testing import gradcheck


def leaf(*shape, seed=0, positive=False, zeros=0):
    a = np.random.default_rng(seed).standard_normal(shape)
    if positive:
        a = np.abs(a) + 0.5
    if zeros:
        a.reshape(-1)[:: max(a.size // zeros, 1)] = 0.0
    return wally.tensor(a, requires_grad=True)


def index(*values):
    return wally.tensor(np.array(values, dtype=np.int64))


# ----- gradients by central differences -------------------------------------------------------
GRADCHECKS = {
    "sinh": (lambda x: wally.sinh(x), [(3, 4)]),
    "cosh": (lambda x: x.cosh(), [(3, 4)]),
    "erf": (lambda x: wally.erf(x * 2), [(3, 4)]),
    "square": (lambda x: x.square(), [(2, 3)]),
    "clamp_min": (lambda x: wally.clamp_min(x, 0.1) + x.clamp_max(-0.1), [(4, 4)]),
    "cumsum": (lambda x: wally.cumsum(x, -1) + x.cumsum(0), [(3, 4)]),
    "cumprod": (lambda x: wally.cumprod(x, 1), [(3, 4)]),
    "prod": (lambda x: wally.prod(x, 0) + x.prod(), [(3, 2)]),
    "logsumexp": (lambda x: wally.logsumexp(x, (0, 2), keepdim=True), [(2, 3, 2)]),
    "bmm": (lambda a, b: wally.bmm(a, b), [(2, 3, 4), (2, 4, 2)]),
    "baddbmm": (lambda c, a, b: wally.baddbmm(c, a, b, beta=0.5, alpha=2.0),
                [(2, 3, 2), (2, 3, 4), (2, 4, 2)]),
    "einsum-matmul": (lambda a, b: wally.einsum("ij,jk->ik", a, b), [(2, 3), (3, 2)]),
    "einsum-diagonal": (lambda a: wally.einsum("iij->ji", a), [(3, 3, 2)]),
    "einsum-ellipsis": (lambda a, b: wally.einsum("...j,...j->...", a, b), [(1, 3), (2, 3)]),
    "einsum-three": (lambda a, b, c: wally.einsum("abc,cd,da->b", a, b, c),
                     [(2, 3, 2), (2, 2), (2, 2)]),
    "meshgrid": (lambda a, b: sum(g * (i + 1) for i, g in
                                  enumerate(wally.meshgrid(a, b, indexing="xy"))), [(3,), (2,)]),
    "gather": (lambda x: wally.gather(x, 1, index([0, 0, 2], [1, 1, 1])), [(2, 3)]),
    "scatter": (lambda x, s: wally.scatter(x, 0, index(1, 0), s), [(3,), (4,)]),
    "scatter_add": (lambda x, s: x.scatter_add(1, index([0, 0, 1]), s), [(2, 3), (1, 3)]),
    "index_select": (lambda x: wally.index_select(x, 0, index(2, 0, 2)), [(3, 2)]),
    "masked_fill": (lambda x, v: wally.masked_fill(x, wally.tensor([True, False]), v[0]),
                    [(3, 2), (1,)]),
    "sort": (lambda x: wally.sort(x, 1, descending=True).values, [(3, 4)]),
    "topk": (lambda x: x.topk(2, dim=0, largest=False).values, [(4, 3)]),
    "kthvalue": (lambda x: wally.kthvalue(x, 2, 0, keepdim=True).values, [(4, 3)]),
    "roll": (lambda x: wally.roll(x, (1, -2), (0, 1)) + x.roll(3), [(3, 4)]),
    "rot90": (lambda x: wally.rot90(x, 3, (1, 0)), [(2, 3)]),
    "tril-triu": (lambda x: wally.tril(x, -1) * 2 + x.triu(1), [(2, 3, 4)]),
    "diag": (lambda x: wally.diag(x, 1), [(3,)]),
    "diag-extract": (lambda x: wally.diag(x, -1), [(3, 4)]),
    "unbind": (lambda x: sum(t * (i + 1) for i, t in enumerate(x.unbind(1))), [(2, 3)]),
    "tile": (lambda x: wally.tile(x, (2, 1, 3)), [(2, 2)]),
    "vector_norm": (lambda x: wally.linalg.vector_norm(x, 3, 1), [(3, 4)]),
    "vector_norm-inf": (lambda x: wally.linalg.vector_norm(x, math.inf, 0), [(3, 4)]),
    "matrix_norm-nuc": (lambda x: wally.linalg.matrix_norm(x, "nuc"), [(3, 4)]),
    "matrix_norm-2": (lambda x: wally.linalg.matrix_norm(x, 2), [(2, 3, 3)]),
    "matrix_norm-1": (lambda x: wally.linalg.matrix_norm(x, -1), [(3, 4)]),
    "cdist": (lambda a, b: wally.cdist(a, b, p=1.5), [(3, 2), (2, 2)]),
    "cosine_similarity": (lambda a, b: wally.cosine_similarity(a, b, dim=0), [(3, 2), (3, 2)]),
    "pairwise_distance": (lambda a, b: wally.pairwise_distance(a, b), [(3, 2), (3, 2)]),
    "normalize": (lambda a: wally.nn.functional.normalize(a, p=3.0, dim=0), [(3, 2)]),
}


@pytest.mark.parametrize("name", sorted(GRADCHECKS))
def test_gradcheck(name):
    fn, shapes = GRADCHECKS[name]
    assert gradcheck(fn, *(leaf(*s, seed=i) for i, s in enumerate(shapes)))


@pytest.mark.parametrize("zeros", [1, 2, 5])
def test_gradcheck_cumprod_and_prod_with_zeros(zeros):
    x = leaf(3, 5, seed=3, zeros=zeros)
    assert gradcheck(lambda t: wally.cumprod(t, 1), x)
    assert gradcheck(lambda t: wally.cumprod(t, 0), x)
    assert gradcheck(lambda t: wally.prod(t, 1), x)
    assert gradcheck(lambda t: wally.prod(t, 0, keepdim=True), x)


def test_rounding_has_zero_gradient():
    x = leaf(3, 4)
    (wally.floor(x) + x.ceil() + wally.round(x, decimals=1) + x.trunc()).sum().backward()
    assert x.grad is not None and not x.grad.numpy().any()


# ----- naive loops ----------------------------------------------------------------------------
@settings(max_examples=30)
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple),
       seed=st.integers(0, 99), data=st.data())
def test_gather_scatter_against_loops(shape, seed, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    ishape = tuple(int(rng.integers(1, n + 1)) if d != dim else int(rng.integers(1, 4))
                   for d, n in enumerate(shape))
    idx = rng.integers(0, shape[dim], size=ishape)
    src = rng.standard_normal(ishape)
    t, i, s = wally.tensor(x), wally.tensor(idx), wally.tensor(src)
    np.testing.assert_array_equal(wally.gather(t, dim, i).numpy(),
                                  reference.gather_loops(x, dim, idx))
    np.testing.assert_allclose(wally.scatter_add(t, dim, i, s).numpy(),
                               reference.scatter_loops(x, dim, idx, src, "add"), rtol=1e-12)
    np.testing.assert_array_equal(wally.scatter(t, dim, i, s).numpy(),
                                  reference.scatter_loops(x, dim, idx, src))


@settings(max_examples=30)
@given(n=st.integers(1, 6), zeros=st.integers(0, 3), seed=st.integers(0, 99))
def test_cumprod_gradient_against_the_definition(n, zeros, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    x[rng.permutation(n)[:zeros]] = 0.0
    gy = rng.standard_normal(n)
    t = wally.tensor(x, requires_grad=True)
    wally.cumprod(t, 0).backward(wally.tensor(gy))
    np.testing.assert_allclose(t.grad.numpy(), reference.cumprod_grad_loops(x, gy),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("equation, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ii->i", [(3, 3)]), ("iij->", [(2, 2, 3)]),
    ("abc,cd,da->b", [(2, 3, 4), (4, 2), (2, 2)]), ("i,j->ji", [(3,), (2,)]),
])
def test_einsum_against_loops(equation, shapes):
    xs = [np.random.default_rng(i).standard_normal(s) for i, s in enumerate(shapes)]
    np.testing.assert_allclose(wally.einsum(equation, *map(wally.tensor, xs)).numpy(),
                               reference.einsum_loops(equation, *xs), rtol=1e-12)


def test_pointwise_against_math():
    x = np.linspace(-3, 3, 13)
    t = wally.tensor(x)
    for ours, scalar in ((wally.sinh, math.sinh), (wally.cosh, math.cosh), (wally.erf, math.erf),
                         (wally.floor, math.floor), (wally.ceil, math.ceil),
                         (wally.trunc, math.trunc), (wally.round, round)):
        np.testing.assert_allclose(ours(t).numpy(), [scalar(v) for v in x], rtol=1e-14)


# ----- results without gradients, in-place variants -------------------------------------------
def test_integer_results_never_require_grad():
    x = leaf(3, 4)
    for out in (wally.isnan(x), wally.isinf(x), x.isfinite(), wally.isclose(x, x),
                wally.argsort(x), wally.sort(x).indices, wally.topk(x, 2).indices,
                wally.kthvalue(x, 1).indices, wally.nonzero(x), *wally.nonzero(x, as_tuple=True)):
        assert not out.requires_grad and out.grad_fn is None
    assert wally.sort(x).values.requires_grad


@pytest.mark.parametrize("method, args", [
    ("masked_fill_", (wally.tensor([True, False, True, False]), 0.5)),
    ("scatter_", (0, wally.tensor([2, 0]), wally.tensor([1.0, 2.0]))),
    ("scatter_add_", (0, wally.tensor([1, 1]), wally.tensor([1.0, 2.0]))),
    ("clamp_min_", (0.0,)), ("clamp_max_", (0.0,)), ("floor_", ()), ("ceil_", ()),
    ("round_", ()), ("trunc_", ()), ("sinh_", ()), ("cosh_", ()), ("erf_", ()),
    ("square_", ()), ("cumsum_", (0,)), ("cumprod_", (0,)),
])
def test_in_place_variants(method, args):
    base = wally.tensor([-1.5, 0.25, 2.0, 3.5])
    expected = getattr(base, method.rstrip("_"))(*args).numpy()
    x = base.clone()
    version = x._version
    view = x[1:]
    assert getattr(x, method)(*args) is x
    np.testing.assert_allclose(x.numpy(), expected)
    np.testing.assert_allclose(view.numpy(), expected[1:])  # written into the same memory
    assert x._version > version
    # recorded: the gradient flows through the in-place op, and a kept tensor is guarded
    a = wally.tensor([-1.5, 0.25, 2.0, 3.5], requires_grad=True)
    y = a * 1.0
    getattr(y, method)(*args)
    y.sum().backward()
    assert a.grad is not None
    a = wally.tensor([-1.5, 0.25, 2.0, 3.5], requires_grad=True)
    y = a.exp()  # Exp keeps its output for the backward
    getattr(y, method)(*args)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_tril_triu_in_place():
    x = wally.ones(3, 3)
    x.tril_()
    np.testing.assert_array_equal(x.numpy(), np.tril(np.ones((3, 3))))
    x.triu_(1)
    assert not x.numpy().any()


def test_sort_results_print_and_unpack_like_torch(torch):
    x = [3.0, 1.0, 2.0]
    for name, args in (("sort", ()), ("topk", (2,)), ("kthvalue", (2,))):
        ours, theirs = getattr(wally, name)(wally.tensor(x), *args), \
            getattr(torch, name)(torch.tensor(x), *args)
        assert repr(ours) == repr(theirs).replace("torch.", "wally.")
        values, indices = ours
        assert values is ours.values and indices is ours[1]


def test_masked_fill_value_tensor_gets_gradient():
    x, v = leaf(2, 3), wally.tensor(0.5, dtype=wally.float64, requires_grad=True)
    mask = wally.tensor([[True, False, True], [False, False, True]])
    wally.masked_fill(x, mask, v).sum().backward()
    assert v.grad.item() == 3.0
    np.testing.assert_array_equal(x.grad.numpy(), ~mask.numpy())


# ----- bad arguments: the message names the op, what was expected and what arrived ------------
BAD = [
    (lambda: wally.bmm(wally.ones(2, 3), wally.ones(2, 3, 4)), ValueError,
     r"bmm: batch1 must be a 3-D tensor \(B, n, m\), got shape \(2, 3\)"),
    (lambda: wally.bmm(wally.ones(2, 3, 4), wally.ones(3, 4, 5)), ValueError,
     r"bmm: expected shapes \(B, n, m\) and \(B, m, p\), got \(2, 3, 4\) and \(3, 4, 5\)"),
    (lambda: wally.baddbmm(wally.ones(3, 3), wally.ones(2, 3, 4), wally.ones(2, 4, 5)),
     ValueError, r"baddbmm: input of shape \(3, 3\) cannot be broadcast .* \(2, 3, 5\)"),
    (lambda: wally.einsum("ij,jk->ik", wally.ones(2, 3)), ValueError,
     r"einsum: the equation 'ij,jk->ik' has 2 operand\(s\), got 1 tensor"),
    (lambda: wally.einsum("ij,jk->ik", wally.ones(2, 3), wally.ones(4, 2)), ValueError,
     r"einsum: subscript 'j' has sizes \[3, 4\]"),
    (lambda: wally.einsum("ijk", wally.ones(2, 3)), ValueError,
     r"einsum: the subscripts 'ijk' name 3 dims for an operand with 2"),
    (lambda: wally.einsum("i1", wally.ones(2, 3)), ValueError, r"einsum: subscripts must be"),
    (lambda: wally.einsum("ij->q", wally.ones(2, 3)), ValueError,
     r"einsum: output subscript 'q' appears in no operand"),
    (lambda: wally.meshgrid(wally.ones(2, 2)), ValueError,
     r"meshgrid: expected 0-D or 1-D tensors, got shape \(2, 2\)"),
    (lambda: wally.meshgrid(wally.ones(2), indexing="ji"), ValueError,
     r"meshgrid: indexing must be 'ij' or 'xy', got 'ji'"),
    (lambda: wally.round(wally.ones(2), decimals=1.5), TypeError,
     r"round: expected decimals to be an int, got 1.5"),
    (lambda: wally.cumsum(wally.ones(2, 3), 2), IndexError,
     r"cumsum: dim out of range \(expected to be in range of \[-2, 1\], but got 2\)"),
    (lambda: wally.cumprod(wally.ones(2), None), TypeError,
     r"cumprod: expected dim to be an int, got None"),
    (lambda: wally.prod(wally.ones(2), 1), IndexError, r"prod: dim out of range"),
    (lambda: wally.logsumexp([1.0, 2.0], 0), TypeError,
     r"logsumexp: expected input to be a Tensor, got list"),
    (lambda: wally.gather(wally.ones(2, 3), 1, wally.tensor([0, 1])), ValueError,
     r"gather: index must have as many dims as input \(2\), got index of shape \(2,\)"),
    (lambda: wally.gather(wally.ones(2, 3), 1, wally.tensor([[0, 3]])), IndexError,
     r"gather: index 3 is out of bounds for dim 1 with size 3"),
    (lambda: wally.scatter(wally.ones(3), 0, wally.tensor([-1]), value=1.0), IndexError,
     r"scatter: index -1 is out of bounds for dim 0 with size 3"),
    (lambda: wally.gather(wally.ones(2, 3), 1, wally.tensor([[0.0]])), TypeError,
     r"gather: expected an int64 index tensor, got float32"),
    (lambda: wally.gather(wally.ones(2, 3), 1, wally.zeros(3, 1, dtype=wally.int64)),
     ValueError, r"gather: index of shape \(3, 1\) is larger than input of shape \(2, 3\)"),
    (lambda: wally.scatter(wally.ones(3), 0, wally.tensor([0])), TypeError,
     r"scatter: expected src \(a tensor\) or value \(a number\), got neither"),
    (lambda: wally.scatter(wally.ones(3), 0, wally.tensor([0]), reduce="max", value=1.0),
     ValueError, r"scatter: reduce must be None, 'add' or 'multiply', got 'max'"),
    (lambda: wally.scatter(wally.ones(3), 0, wally.tensor([0, 1]), wally.ones(1)), ValueError,
     r"scatter: index of shape \(2,\) is larger than src of shape \(1,\)"),
    (lambda: wally.scatter_add(wally.ones(3), 0, wally.tensor([0]),
                               wally.ones(1, dtype=wally.float64)), TypeError,
     r"scatter_add: expected src of dtype wally\.float32, got wally\.float64"),
    (lambda: wally.index_select(wally.ones(3), 0, wally.tensor([[0]])), ValueError,
     r"index_select: index must be 0-D or 1-D, got shape \(1, 1\)"),
    (lambda: wally.index_select(wally.ones(3), 0, wally.tensor([5])), IndexError,
     r"index_select: index 5 is out of range for dim 0 of size 3"),
    (lambda: wally.masked_fill(wally.ones(3), wally.tensor([1, 0, 1]), 0.0), TypeError,
     r"masked_fill: expected a bool mask, got int64"),
    (lambda: wally.masked_fill(wally.ones(3), wally.tensor([True, False]), 0.0), ValueError,
     r"masked_fill: mask of shape \(2,\) cannot be broadcast with the input's shape \(3,\)"),
    (lambda: wally.masked_fill(wally.ones(3), wally.tensor([True] * 3), wally.ones(2)),
     ValueError, r"masked_fill: expected value to be a number or a 0-d tensor, got shape"),
    (lambda: wally.topk(wally.ones(3), 4), ValueError,
     r"topk: k must be in \[0, 3\] \(the size of dim -1\), got 4"),
    (lambda: wally.kthvalue(wally.ones(3), 0), ValueError,
     r"kthvalue: k must be in \[1, 3\] \(the size of dim -1\), got 0"),
    (lambda: wally.sort(wally.ones(3), 1), IndexError, r"sort: dim out of range"),
    (lambda: wally.roll(wally.ones(3, 2), (1, 2)), ValueError,
     r"roll: without dims, shifts must be one int, got \(1, 2\)"),
    (lambda: wally.roll(wally.ones(3, 2), (1, 2), 0), ValueError,
     r"roll: shifts and dims must have the same length"),
    (lambda: wally.rot90(wally.ones(3), 1), ValueError,
     r"rot90: expected a tensor with at least 2 dims, got shape \(3,\)"),
    (lambda: wally.rot90(wally.ones(3, 3), 1, (1, -1)), ValueError,
     r"rot90: the two dims must differ, got \(1, -1\)"),
    (lambda: wally.tril(wally.ones(3)), ValueError,
     r"tril: expected a tensor with at least 2 dims, got shape \(3,\)"),
    (lambda: wally.triu(wally.ones(3, 3), 0.5), TypeError,
     r"triu: expected diagonal to be an int, got 0.5"),
    (lambda: wally.diag(wally.ones(2, 2, 2)), ValueError,
     r"diag: expected a 1-D or 2-D tensor, got shape \(2, 2, 2\)"),
    (lambda: wally.unbind(wally.tensor(1.0)), ValueError, r"unbind: expected a tensor with"),
    (lambda: wally.tile(wally.ones(2), (-1,)), ValueError,
     r"tile: expected non-negative repeats, got \(-1,\)"),
    (lambda: wally.split(wally.ones(5), [2, 2]), ValueError,
     r"split: split sizes must be non-negative and add up to 5 .* got \[2, 2\]"),
    (lambda: wally.split(wally.ones(5), 0), ValueError,
     r"split: split_size must be positive \(0 only for an empty dim\), got 0"),
    (lambda: wally.chunk(wally.ones(5), 0), ValueError,
     r"chunk: expected chunks to be a positive int, got 0"),
    (lambda: wally.linalg.vector_norm(wally.ones(3), "fro"), TypeError,
     r"vector_norm: expected ord to be a number \(or inf\), got 'fro'"),
    (lambda: wally.linalg.vector_norm(wally.ones(3), 2, (0, 0)), ValueError,
     r"vector_norm: dim \(0, 0\) repeats a dimension"),
    (lambda: wally.linalg.matrix_norm(wally.ones(3)), ValueError,
     r"matrix_norm: expected a tensor with at least 2 dims, got shape \(3,\)"),
    (lambda: wally.linalg.matrix_norm(wally.ones(3, 3), 3), ValueError,
     r"matrix_norm: ord must be 'fro', 'nuc', inf, -inf, 1, -1, 2 or -2, got 3"),
    (lambda: wally.linalg.norm(wally.ones(2, 2, 2), 2), ValueError,
     r"linalg.norm: with ord=2 and dim=None the input must be 1-D or 2-D, got shape"),
    (lambda: wally.norm(wally.ones(3), "max"), ValueError,
     r"norm: p must be 'fro', 'nuc' or a number, got 'max'"),
    (lambda: wally.cdist(wally.ones(3), wally.ones(3, 3)), ValueError,
     r"cdist: expected tensors with at least 2 dims"),
    (lambda: wally.cdist(wally.ones(2, 3), wally.ones(2, 4)), ValueError,
     r"cdist: x1 and x2 must have the same number of columns, got 3 and 4"),
    (lambda: wally.cdist(wally.ones(2, 3), wally.ones(2, 3), p=-1), ValueError,
     r"cdist: p must be a non-negative number, got -1"),
    (lambda: wally.cosine_similarity(wally.ones(2, 3), wally.ones(2, 4)), ValueError,
     r"cosine_similarity: shapes \(2, 3\) and \(2, 4\) cannot be broadcast together"),
]


@pytest.mark.parametrize("call, error, message", BAD)
def test_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("module", ["ops_math", "ops_index", "ops_shape", "linalg",
                                    "functional.distance"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"wally.{module}")
    result = doctest.testmod(mod, extraglobs={"wally": wally, "F": wally.nn.functional},
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
