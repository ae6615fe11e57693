"""Pooling split into many chunks over several threads gives the same values and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import wally
import wally.nn.functional as F
from wally import reference
from wally.backends import tuning
from wally.functional import pool as pool_module

CASES = [
    ("max", dict(kernel_size=2, stride=2)),
    ("max", dict(kernel_size=3, stride=2, padding=1)),
    ("max", dict(kernel_size=3, stride=1, padding=1, dilation=1)),
    ("avg", dict(kernel_size=2, stride=2)),
    ("avg", dict(kernel_size=3, stride=2, padding=1)),
]


@pytest.fixture
def many_chunks(monkeypatch, num_threads):
    monkeypatch.setattr(tuning, "POOL_CHUNK_BYTES", 64)  # one plane per chunk
    num_threads(3)


@pytest.mark.parametrize("kind, kwargs", CASES)
def test_chunked_pooling_matches_the_loops_and_torch(torch, many_chunks, kind, kwargs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 9, 8))
    if kind == "max":
        expected = reference.max_pool_nd_loops(x, **kwargs)[0]  # (values, indices)
    else:
        expected = reference.avg_pool_nd_loops(x, **kwargs)
    ours = wally.tensor(x, requires_grad=True)
    y = getattr(F, f"{kind}_pool2d")(ours, **kwargs)
    np.testing.assert_allclose(y.array, expected, rtol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(wally.tensor(g))
    theirs = torch.tensor(x, requires_grad=True)
    getattr(torch.nn.functional, f"{kind}_pool2d")(theirs, **kwargs).backward(torch.tensor(g))
    np.testing.assert_allclose(ours.grad.array, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "shape, nd", [((3, 5, 4, 3), 2), ((5, 4, 3), 2), ((2, 3, 7), 1), ((2, 3, 2, 3, 4), 3)]
)
def test_chunked_global_average_pooling_matches_torch(torch, many_chunks, shape, nd):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    x_view = x.swapaxes(-1, -2) if nd > 1 else x  # a non-contiguous input too
    for array in (x, x_view):
        ours = wally.tensor(array, requires_grad=True)
        theirs = torch.tensor(array, requires_grad=True)
        y = getattr(F, f"adaptive_avg_pool{nd}d")(ours, 1)
        ty = getattr(torch.nn.functional, f"adaptive_avg_pool{nd}d")(theirs, 1)
        np.testing.assert_allclose(y.array, ty.detach().numpy(), rtol=1e-12)
        g = rng.standard_normal(y.shape)
        y.backward(wally.tensor(g))
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(ours.grad.array, theirs.grad.numpy(), rtol=1e-12)


SMALL_CASES = [
    (2, dict(kernel_size=2, stride=2)),  # LeNet's: windows that tile the input
    (2, dict(kernel_size=3, stride=2)),  # overlapping windows
    (2, dict(kernel_size=(2, 3), stride=(1, 2))),  # windows that miss the last column
    (2, dict(kernel_size=1)),  # no sums at all: the result must not be a view of the input
    (1, dict(kernel_size=3, stride=1)),
    (3, dict(kernel_size=2, stride=(1, 2, 2))),
]


@pytest.mark.parametrize("nd, kwargs", SMALL_CASES)
@pytest.mark.parametrize("batched", [True, False])
def test_small_average_pooling_matches_the_chunked_path_and_torch(
    torch, monkeypatch, nd, kwargs, batched
):
    """A small unpadded input is pooled on the calling thread, without chunks: the same bits
    as the chunked path, and PyTorch's values and gradients."""
    rng = np.random.default_rng(1)
    shape = (2, 3) + (7, 6, 5)[:nd] if batched else (3,) + (7, 6, 5)[:nd]
    x = rng.standard_normal(shape).astype(np.float32)
    pool = getattr(F, f"avg_pool{nd}d")
    windows = pool_module._windows(f"avg_pool{nd}d", nd, wally.tensor(x), **{
        "kernel_size": kwargs["kernel_size"], "stride": kwargs.get("stride"), "padding": 0,
        "dilation": 1, "ceil_mode": kwargs.get("ceil_mode", False)})
    assert windows.small(x.reshape(-1, *x.shape[-nd:]))

    ours = wally.tensor(x, requires_grad=True)
    small = pool(ours, **kwargs)
    assert not np.shares_memory(small.array, x)
    with monkeypatch.context() as patch:
        patch.setattr(tuning, "POOL_CHUNK_BYTES", 64)  # the chunked path, a plane at a time
        assert not windows.small(x.reshape(-1, *x.shape[-nd:]))
        chunked = pool(wally.tensor(x), **kwargs)
    np.testing.assert_array_equal(small.array, chunked.array)
    assert small.shape == chunked.shape

    theirs = torch.tensor(x, requires_grad=True)
    expected = getattr(torch.nn.functional, f"avg_pool{nd}d")(theirs, **kwargs)
    np.testing.assert_allclose(small.array, expected.detach().numpy(), rtol=1e-6, atol=1e-6)
    g = rng.standard_normal(small.shape).astype(np.float32)
    small.backward(wally.tensor(g))
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.grad.array, theirs.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "kernel, stride, padding", [(3, 2, 1), ((2, 3), (2, 1), (1, 0)), (4, 3, 2)]
)
def test_separable_window_sums_match_the_loops(kernel, stride, padding):
    """Average pooling sums one axis at a time; each window's sum is still every tap's."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 8))
    expected = reference.avg_pool_nd_loops(x, kernel_size=kernel, stride=stride, padding=padding)
    y = F.avg_pool2d(wally.tensor(x), kernel, stride, padding)
    np.testing.assert_allclose(y.array, expected, rtol=1e-12)
