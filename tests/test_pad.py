"""F.pad in every mode: gradient checks, the loop oracle, PyTorch, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.functional as F
from wally import reference
from wally.testing import gradcheck

MODES = ["constant", "reflect", "replicate", "circular"]


def t64(array):
    return wally.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


@st.composite
def pad_cases(draw):
    """Shapes PyTorch accepts: non-constant modes pad the last 1-3 axes of a tensor with one or
    two more axes (unbatched or batched); constant mode pads any axes, and may crop."""
    mode = draw(st.sampled_from(MODES))
    padded_axes = draw(st.integers(1, 3))
    lead = draw(st.integers(1, 2)) if mode != "constant" else draw(st.integers(0, 2))
    sizes = [draw(st.integers(1, 4)) for _ in range(lead + padded_axes)]
    pad: list[int] = []
    for n in reversed(sizes[lead:]):
        if mode == "constant":
            low = -(n // 2)
            pad += [draw(st.integers(low, 3)), draw(st.integers(low, 3))]
        elif mode == "reflect":
            pad += [draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))]
        elif mode == "circular":
            pad += [draw(st.integers(0, n)), draw(st.integers(0, n))]
        else:
            pad += [draw(st.integers(0, 4)), draw(st.integers(0, 4))]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    value = draw(st.sampled_from([0.0, 1.5])) if mode == "constant" else None
    return rng.standard_normal(sizes), tuple(pad), mode, value


# ----- 1. float64 gradient checks --------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "shape, pad",
    [
        ((2, 5), (2, 3)),
        ((1, 2, 4, 5), (1, 2, 3, 0)),
        ((1, 3, 3, 4), (0, 3, 2, 2)),
        ((1, 2, 3, 4, 3), (1, 2, 2, 0, 1, 1)),
    ],
)
def test_gradcheck(mode, shape, pad):
    x = t64(np.random.default_rng(0).standard_normal(shape))
    assert gradcheck(lambda x: F.pad(x, pad, mode), x)


def test_gradcheck_cropping():
    x = t64(np.random.default_rng(1).standard_normal((2, 5, 6)))
    assert gradcheck(lambda x: F.pad(x, (-1, 2, 3, -2), value=0.5), x)


# ----- 2. the loop oracle ----------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(case=pad_cases())
def test_matches_loops(case):
    x, pad, mode, value = case
    y = F.pad(wally.tensor(x), pad, mode, value)
    expected = reference.pad_loops(x, pad, mode, 0.0 if value is None else value)
    np.testing.assert_array_equal(y.array, expected)


# ----- 3. PyTorch ------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(case=pad_cases())
def test_matches_torch(torch, case):
    x, pad, mode, value = case
    a = wally.tensor(x, dtype=wally.float32, requires_grad=True)
    b = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    y, y_torch = F.pad(a, pad, mode, value), torch.nn.functional.pad(b, pad, mode, value)
    np.testing.assert_array_equal(y.array, y_torch.detach().numpy())
    g = np.random.default_rng(0).standard_normal(tuple(y_torch.shape)).astype(np.float32)
    y.backward(wally.tensor(g))
    y_torch.backward(torch.tensor(g))
    np.testing.assert_allclose(a.grad.array, b.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_reflect_example():
    y = F.pad(wally.tensor([[1.0, 2.0, 3.0]]), (2, 2), mode="reflect")
    np.testing.assert_array_equal(y.array, [[3, 2, 1, 2, 3, 2, 1]])
    y = F.pad(wally.tensor([[1.0, 2.0, 3.0]]), (2, 1), mode="circular")
    np.testing.assert_array_equal(y.array, [[2, 3, 1, 2, 3, 1]])
    y = F.pad(wally.tensor([[1.0, 2.0, 3.0]]), (2, 1), mode="replicate")
    np.testing.assert_array_equal(y.array, [[1, 1, 1, 2, 3, 3]])


def test_replicate_gradient_collects_the_copies():
    x = wally.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    F.pad(x, (2, 1), mode="replicate").sum().backward()
    np.testing.assert_array_equal(x.grad.array, [[3, 1, 2]])


# ----- dtypes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [wally.float32, wally.float64])
@pytest.mark.parametrize("mode", MODES + ["zeros"])
def test_dtype_is_preserved(dtype, mode):
    x = wally.randn(2, 3, 4, 5, dtype=dtype, requires_grad=True)
    y = F.pad(x, (1, 2, 2, 1), mode)
    assert y.dtype == dtype and y.shape == (2, 3, 7, 8)
    y.sum().backward()
    assert x.grad.dtype == dtype and x.grad.shape == x.shape


def test_integer_constant_padding():
    y = F.pad(wally.tensor([[1, 2]]), (1, 1), value=7)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y.array, [[7, 1, 2, 7]])


# ----- 4. bad input ----------------------------------------------------------------------------
def test_unknown_mode_names_the_valid_ones():
    with pytest.raises(
        ValueError,
        match="pad: unknown mode 'mirror'; valid modes are 'constant', 'reflect', "
        "'replicate', 'circular'",
    ):
        F.pad(wally.randn(1, 2, 3), (1, 1), mode="mirror")


def test_reflect_padding_must_be_smaller_than_the_input():
    with pytest.raises(
        ValueError,
        match=r"pad: reflect padding must be smaller .*got \(3, 1\) for dimension 2 of size 3",
    ):
        F.pad(wally.randn(1, 2, 3), (3, 1), mode="reflect")


def test_circular_padding_at_most_the_input():
    with pytest.raises(
        ValueError, match=r"pad: circular padding .*got \(0, 4\) for dimension 2 of size 3"
    ):
        F.pad(wally.randn(1, 2, 3), (0, 4), mode="circular")


def test_pad_length():
    with pytest.raises(
        ValueError, match=r"pad: expected an even number of entries.*got \(1, 2, 3\)"
    ):
        F.pad(wally.randn(1, 2, 3), (1, 2, 3))
    with pytest.raises(
        ValueError, match=r"pad: got 8 entries, but a 3-D input .*at most 6 entries"
    ):
        F.pad(wally.randn(1, 2, 3), (1,) * 8)
    with pytest.raises(
        TypeError, match=r"pad: expected pad to be a tuple of ints, got \(1, 1\.5\)"
    ):
        F.pad(wally.randn(1, 2, 3), (1, 1.5))


def test_negative_padding():
    # every mode crops with negative entries, as PyTorch's does (tests/test_opinfo_fixes.py
    # compares the values and gradients with torch's)
    x = wally.arange(3.0).reshape(1, 1, 3)
    assert F.pad(x, (-1, 1), mode="replicate").tolist() == [[[1.0, 2.0, 2.0]]]
    with pytest.raises(
        ValueError,
        match=r"pad: padding \(-2, -2\) of dimension 2 \(size 3\) would give a negative size -1",
    ):
        F.pad(wally.randn(1, 2, 3), (-2, -2), mode="replicate")
    with pytest.raises(
        ValueError,
        match=r"pad: padding \(-2, -2\) of dimension 2 \(size 3\) would give a negative size -1",
    ):
        F.pad(wally.randn(1, 2, 3), (-2, -2))


def test_value_only_for_constant_mode():
    with pytest.raises(ValueError, match="pad: mode 'reflect' doesn't take a value, got value=1.0"):
        F.pad(wally.randn(1, 2, 3), (1, 1), mode="reflect", value=1.0)
