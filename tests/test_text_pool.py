"""Max-over-time pooling: central differences, a naive loop, and PyTorch's masked ``amax`` over
hypothesis grids; padding never wins; the gradient reaches the arg-max only; bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally import nn
from wally.testing import gradcheck


def loop_max_over_time(x, lengths):
    """The reference: a Python loop over rows, channels and valid steps."""
    n, c, _ = x.shape
    out = np.empty((n, c))
    for i in range(n):
        for j in range(c):
            best = -np.inf
            for t in range(lengths[i]):
                best = max(best, x[i, j, t])
            out[i, j] = best
    return out


@st.composite
def cases(draw):
    n, c, steps = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 7))
    lengths = draw(st.lists(st.integers(1, steps), min_size=n, max_size=n))
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).standard_normal((n, c, steps))
    return x, np.asarray(lengths)


@settings(max_examples=40, deadline=None)
@given(cases())
def test_matches_torch_masked_amax_and_loops(torch, case):
    x, lengths = case
    ours = wally.tensor(x, requires_grad=True)
    y = F.max_over_time(ours, lengths=wally.tensor(lengths))
    weights = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(wally.tensor(weights))

    theirs = torch.tensor(x, requires_grad=True)
    valid = torch.arange(x.shape[2])[None, :] < torch.tensor(lengths)[:, None]
    expected = theirs.masked_fill(~valid[:, None, :], float("-inf")).amax(dim=2)
    expected.backward(torch.tensor(weights))

    np.testing.assert_allclose(y.detach().numpy(), expected.detach().numpy())
    np.testing.assert_allclose(y.detach().numpy(), loop_max_over_time(x, lengths))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy())


def test_gradcheck_with_lengths_and_mask():
    x = wally.tensor(np.random.default_rng(1).standard_normal((3, 2, 5)), requires_grad=True)
    gradcheck(lambda t: F.max_over_time(t, lengths=[5, 2, 1]), x)
    mask = wally.tensor(np.array([[0, 1, 1, 0, 1], [1, 0, 0, 0, 0], [0, 0, 0, 0, 1]]))
    gradcheck(lambda t: F.max_over_time(t, mask=mask), x)
    gradcheck(F.max_over_time, x)


def test_padding_never_wins_and_gets_no_gradient():
    # the padded steps hold the largest values: they must neither win nor get a gradient
    x = wally.tensor([[[1.0, 3.0, 100.0, 200.0]], [[-5.0, 100.0, 100.0, 100.0]]],
                     requires_grad=True)
    y = F.max_over_time(x, lengths=[2, 1])
    assert y.tolist() == [[3.0], [-5.0]]
    y.sum().backward()
    assert x.grad.tolist() == [[[0.0, 1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0, 0.0]]]


def test_gradient_to_the_first_arg_max_only():
    x = wally.tensor([[[2.0, 7.0, 7.0, 1.0]]], requires_grad=True)
    F.max_over_time(x).sum().backward()
    assert x.grad.tolist() == [[[0.0, 1.0, 0.0, 0.0]]]  # torch.max(x, dim)'s index: the first


def test_without_lengths_is_amax(torch):
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    np.testing.assert_allclose(nn.MaxOverTime()(wally.tensor(x)).numpy(),
                               torch.tensor(x).amax(dim=2).numpy())


def test_module_repr_and_lengths():
    pool = nn.MaxOverTime()
    assert repr(pool) == "MaxOverTime()"
    assert pool(wally.tensor([[[1.0, 5.0, 9.0]]]), lengths=[2]).tolist() == [[5.0]]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lengths": [0, 1]}, r"lengths\[0\] is 0, expected 1 to 3"),
    ({"lengths": [1, 4]}, r"lengths\[1\] is 4, expected 1 to 3"),
    ({"lengths": [1]}, r"lengths must be 2 integers"),
    ({"lengths": [1.5, 2.0]}, r"lengths must be 2 integers"),
    ({"mask": np.ones((2, 2))}, r"mask must be \(N, L\) = \(2, 3\)"),
    ({"mask": np.array([[1, 0, 0], [0, 0, 0]])}, r"row 1 of the mask has no valid step"),
    ({"lengths": [1, 1], "mask": np.ones((2, 3))}, "not both"),
])
def test_bad_arguments(kwargs, message):
    x = wally.zeros(2, 1, 3)
    with pytest.raises(ValueError, match=message):
        F.max_over_time(x, **kwargs)


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r"expected a float input \(N, C, L\)"):
        F.max_over_time(wally.zeros(2, 3))
    with pytest.raises(ValueError, match="no time steps"):
        F.max_over_time(wally.zeros(2, 3, 0))
