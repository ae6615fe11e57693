"""Pooling split into many chunks over several threads gives the same values and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import wally
import wally.nn.functional as F
from wally import reference
from wally._parallel import get_num_threads, set_num_threads
from wally.functional import pool as pool_module

CASES = [
    ("max", dict(kernel_size=2, stride=2)),
    ("max", dict(kernel_size=3, stride=2, padding=1)),
    ("max", dict(kernel_size=3, stride=1, padding=1, dilation=1)),
    ("avg", dict(kernel_size=2, stride=2)),
    ("avg", dict(kernel_size=3, stride=2, padding=1)),
]


@pytest.fixture
def many_chunks(monkeypatch):
    monkeypatch.setattr(pool_module, "_CHUNK_BYTES", 64)  # one plane per chunk
    previous = get_num_threads()
    set_num_threads(3)
    yield
    set_num_threads(previous)


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
