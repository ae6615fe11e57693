"""``embedding``, ``one_hot`` and ``nn.Embedding``: central differences, loop references,
PyTorch over hypothesis grids (values, weight gradients, ``max_norm``'s in-place renorm),
the module's initialisation, ``from_pretrained`` and bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally import nn
from wally.reference import embedding_grad_loops, embedding_loops
from wally.testing import gradcheck

EXAMPLES = 30


def indices(shape, rows, seed=0):
    return np.random.default_rng(seed).integers(0, rows, shape)


def test_gradcheck():
    idx = wally.tensor(indices((2, 5), 4))
    weight = wally.tensor(np.random.default_rng(1).standard_normal((4, 3)), requires_grad=True)
    gradcheck(lambda w: F.embedding(idx, w), weight)
    # padding_idx and scale_grad_by_freq change the gradient on purpose (not the derivative):
    # the loop references below check them.


@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 4), (2, 2, 3)])
@pytest.mark.parametrize(("padding_idx", "by_freq"), [(None, False), (1, False), (None, True),
                                                      (0, True)])
def test_matches_loops(shape, padding_idx, by_freq):
    rng = np.random.default_rng(2)
    idx, w = indices(shape, 3, seed=3), rng.standard_normal((3, 2))
    weight = wally.tensor(w, requires_grad=True)
    out = F.embedding(wally.tensor(idx), weight, padding_idx, scale_grad_by_freq=by_freq)
    np.testing.assert_array_equal(out.array, embedding_loops(idx, w))
    grad = rng.standard_normal(out.shape)
    out.backward(wally.tensor(grad))
    np.testing.assert_allclose(weight.grad.array,
                               embedding_grad_loops(idx, grad, 3, padding_idx, by_freq),
                               rtol=1e-13, atol=1e-15)


@settings(max_examples=EXAMPLES)
@given(shape=st.sampled_from([(), (1,), (6,), (2, 3), (3, 1, 4)]), rows=st.integers(1, 6),
       dim=st.integers(1, 4), dtype=st.sampled_from([np.float32, np.float64]),
       index_dtype=st.sampled_from([np.int64, np.int32]),
       padding=st.sampled_from([None, 0, -1, 2]), by_freq=st.booleans(),
       renorm=st.sampled_from([None, (1.0, 2.0), (0.5, 1.0), (2.0, 3.0), (0.7, math.inf)]),
       seed=st.integers(0, 99))
def test_matches_torch(torch, shape, rows, dim, dtype, index_dtype, padding, by_freq, renorm,
                       seed):
    if padding is not None and not -rows <= padding < rows:
        padding = None
    rng = np.random.default_rng(seed)
    idx = indices(shape, rows, seed).astype(index_dtype)
    w = (rng.standard_normal((rows, dim)) * 1.5).astype(dtype)
    max_norm, norm_type = renorm if renorm is not None else (None, 2.0)
    ours, theirs = wally.tensor(w.copy(), requires_grad=True), torch.tensor(w.copy(),
                                                                          requires_grad=True)
    kwargs = dict(padding_idx=padding, max_norm=max_norm, norm_type=norm_type,
                  scale_grad_by_freq=by_freq)
    out = F.embedding(wally.tensor(idx), ours, **kwargs)
    ref = torch.nn.functional.embedding(torch.tensor(idx), theirs, **kwargs)
    assert out.dtype == dtype and out.shape == tuple(ref.shape)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.array, ref.detach().numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ours.array, theirs.detach().numpy(), rtol=rtol, atol=rtol)
    grad = rng.standard_normal(ref.shape).astype(dtype)
    out.backward(wally.tensor(grad))
    ref.backward(torch.tensor(grad))
    assert ours.grad.dtype == dtype
    np.testing.assert_allclose(ours.grad.array, theirs.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_max_norm_renormalises_in_place_and_bumps_the_version():
    weight = wally.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]])
    version = weight._version
    F.embedding(wally.tensor([0, 1]), weight, max_norm=1.0)
    np.testing.assert_allclose(weight.array, [[0.6, 0.8], [0.3, 0.4], [6.0, 8.0]], rtol=1e-6)
    assert weight._version > version  # row 2 was not read: left alone


def test_module_initialisation_and_padding(torch):
    wally.manual_seed(0)
    table = nn.Embedding(400, 50, padding_idx=3)
    assert repr(table) == repr(torch.nn.Embedding(400, 50, padding_idx=3))
    assert list(table.state_dict()) == ["weight"] and table.weight.shape == (400, 50)
    assert table.weight.dtype == np.float32
    rest = np.delete(table.weight.array, 3, axis=0)
    assert abs(rest.mean()) < 0.02 and abs(rest.std() - 1) < 0.02  # N(0, 1)
    assert not table.weight.array[3].any()
    out = table(wally.tensor([[3, 1, 3], [2, 3, 1]]))
    out.sum().backward()
    assert not table.weight.grad.array[3].any()
    np.testing.assert_array_equal(table.weight.grad.array[1], np.full(50, 2.0))
    assert not table.weight.grad.array[0].any()


@pytest.mark.parametrize("kwargs", [{}, {"padding_idx": 0}, {"max_norm": 2.0},
                                    {"norm_type": 1.0}, {"scale_grad_by_freq": True},
                                    {"padding_idx": -1, "max_norm": 1.5, "norm_type": 3.0}])
def test_module_repr_matches_torch(torch, kwargs):
    assert repr(nn.Embedding(7, 3, **kwargs)) == repr(torch.nn.Embedding(7, 3, **kwargs))


def test_from_pretrained():
    vectors = wally.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    frozen = nn.Embedding.from_pretrained(vectors, padding_idx=1)
    assert not frozen.weight.requires_grad and frozen.padding_idx == 1
    assert frozen(wally.tensor([1, 2])).tolist() == [[3.0, 4.0], [5.0, 6.0]]  # row 1 kept
    learning = nn.Embedding.from_pretrained(vectors, freeze=False)
    assert learning.weight.requires_grad
    with wally.no_grad():
        learning.weight.array[0, 0] = 9.0
    assert vectors.array[0, 0] == 9.0  # the memory is shared, as in PyTorch
    assert repr(learning) == "Embedding(3, 2)"


def test_one_hot_matches_torch(torch):
    x = indices((2, 3), 5)
    for n in (-1, 5, 7):
        got = F.one_hot(wally.tensor(x), n)
        expected = torch.nn.functional.one_hot(torch.tensor(x), n).numpy()
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got.array, expected)
    assert F.one_hot(wally.tensor(2)).tolist() == [0, 0, 1]
    assert F.one_hot(wally.tensor(np.zeros(0, dtype=np.int64)), 3).shape == (0, 3)


@pytest.mark.parametrize(("call", "error", "pattern"), [
    (lambda: F.embedding(wally.tensor([0, 5]), wally.zeros(5, 2)), IndexError,
     r"embedding: index 5 is out of range for an embedding of 5 rows \(expected 0 <= index < 5\)"),
    (lambda: F.embedding(wally.tensor([-1]), wally.zeros(5, 2)), IndexError,
     r"embedding: index -1 is out of range"),
    (lambda: nn.Embedding(4, 2)(wally.tensor([4])), IndexError,
     r"embedding: index 4 is out of range for an embedding of 4 rows"),
    (lambda: F.embedding(wally.tensor([0.0]), wally.zeros(5, 2)), TypeError,
     r"embedding: expected integer indices \(int64 or int32\), got dtype wally\.float32"),
    (lambda: F.embedding(wally.tensor([0]), wally.zeros(5)), ValueError,
     r"embedding: expected a 2-D weight .* got shape \(5,\)"),
    (lambda: F.embedding(wally.tensor([0]), wally.zeros(5, 2), sparse=True), ValueError,
     r"embedding: sparse=True .* is not supported"),
    (lambda: nn.Embedding(5, 2, sparse=True), ValueError, r"Embedding: sparse=True"),
    (lambda: nn.Embedding(5, 2, padding_idx=5), ValueError,
     r"Embedding: padding_idx must be within num_embeddings \(expected -5 <= padding_idx < 5\), "
     r"got 5"),
    (lambda: F.embedding(wally.tensor([0]), wally.zeros(5, 2), padding_idx=-6), ValueError,
     r"embedding: padding_idx must be within num_embeddings"),
    (lambda: nn.Embedding(-1, 2), ValueError, r"Embedding: num_embeddings must be a non-negative"),
    (lambda: nn.Embedding.from_pretrained(wally.zeros(3)), ValueError,
     r"Embedding.from_pretrained: expected a 2-D embeddings tensor"),
    (lambda: F.one_hot(wally.tensor([0, 3]), 3), ValueError,
     r"one_hot: class values must be smaller than num_classes=3, got 3"),
    (lambda: F.one_hot(wally.tensor([-1, 0])), ValueError,
     r"one_hot: class values must be non-negative, got -1"),
    (lambda: F.one_hot(wally.tensor([0.0])), TypeError, r"one_hot: expected a tensor of integer"),
    (lambda: F.one_hot(wally.tensor(np.zeros(0, dtype=np.int64))), ValueError,
     r"one_hot: cannot infer num_classes"),
])
def test_bad_arguments(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
