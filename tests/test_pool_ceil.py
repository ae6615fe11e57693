"""Pooling with ``ceil_mode``: windows that hang over the end of the padded input, as PyTorch's.

PyTorch's rule: with ``ceil_mode`` an axis has ``ceil((n + 2p − d(k − 1) − 1)/s) + 1`` windows,
one fewer if the last would start at or after ``n + p``; a kernel may be larger than the
(padded) input; only an output size below 1 is an error.

The comparison with PyTorch runs in a subprocess, so that a memory error (a view reaching
outside its buffer) fails a test instead of killing pytest.  It never runs PyTorch's max-pool
backward on a window without a real cell (possible with dilation): PyTorch 2.13's CPU kernel
then scatters the gradient to a flat index past the end of the plane, an out-of-bounds write
that corrupts the heap ("free(): invalid next size"), in floor mode too.  Those windows are
checked against the reference loops instead.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
import wally.nn.functional as F
from wally import reference
from wally._parallel import get_num_threads, num_threads
from wally.backends import tuning
from wally.functional import pool as pool_module
from wally.testing import gradcheck

HERE = os.path.dirname(os.path.abspath(__file__))


# ----- the reported cases -------------------------------------------------------------------------
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind, dilation", [("max", 1), ("max", 2), ("avg", 1)])
def test_a_kernel_larger_than_the_input_gives_one_window(torch, nd, kind, dilation):
    """The issue: ``max_pool2d(ones(1, 1, 2, 2), 3, 2, ceil_mode=True)`` is (1, 1, 1, 1)."""
    # torch's avg_pool3d wants n ≥ k; with dilation 2 the window spans 5 cells
    size = 3 if kind == "avg" and nd == 3 else 2 * dilation
    x = np.random.default_rng(0).standard_normal((1, 2) + (size,) * nd)
    kwargs = dict(kernel_size=3, stride=2, ceil_mode=True)
    if kind == "max":
        kwargs["dilation"] = dilation
    ours = getattr(F, f"{kind}_pool{nd}d")(wally.tensor(x), **kwargs)
    theirs = getattr(torch.nn.functional, f"{kind}_pool{nd}d")(torch.tensor(x), **kwargs)
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.array, theirs.numpy(), rtol=1e-12)


def test_the_issue_example_and_googlenet_pool():
    y = F.max_pool2d(wally.ones(1, 1, 2, 2), 3, 2, ceil_mode=True)
    assert tuple(y.shape) == (1, 1, 1, 1) and float(y.array.ravel()[0]) == 1.0
    pool = wally.nn.MaxPool2d(3, stride=2, ceil_mode=True)
    assert tuple(pool(wally.ones(1, 4, 2, 2)).shape) == (1, 4, 1, 1)


def test_convolution_and_floor_mode_pooling_still_refuse_a_kernel_larger_than_the_input():
    with pytest.raises(ValueError, match=r"conv2d: kernel size \(3, 3\) can't be greater than"):
        F.conv2d(wally.ones(1, 1, 2, 2), wally.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"max_pool2d: kernel size \(3, 3\) can't be greater"):
        F.max_pool2d(wally.ones(1, 1, 2, 2), 3, 2)
    with pytest.raises(ValueError, match=r"unfold: kernel size \(3, 3\)"):
        F.unfold(wally.ones(1, 1, 2, 2), 3)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_an_output_size_below_one_is_refused_in_ceil_mode(torch, kind):
    """n = 1, k = 5, s = 1: ceil((1 − 4 − 1)/1) + 1 = −3 windows, an error in both."""
    with pytest.raises(RuntimeError, match="too small|Invalid computed output size: -3"):
        getattr(torch.nn.functional, f"{kind}_pool1d")(torch.ones(1, 1, 1), 5, 1,
                                                       ceil_mode=True)
    with pytest.raises(ValueError, match=rf"{kind}_pool1d: output size \(-3,\) is too small"):
        getattr(F, f"{kind}_pool1d")(wally.ones(1, 1, 1), 5, 1, ceil_mode=True)


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_avg_pool3d_refuses_an_input_smaller_than_its_kernel_as_torch_does(torch, ceil_mode):
    x = np.ones((1, 1, 4, 5, 5))
    with pytest.raises(RuntimeError, match="smaller than kernel size"):
        torch.nn.functional.avg_pool3d(torch.tensor(x), 5, 1, 1, ceil_mode=ceil_mode)
    with pytest.raises(ValueError, match=r"avg_pool3d: expected an input at least as large as "
                                         r"the kernel size \(5, 5, 5\) on every axis, got "
                                         r"spatial size \(4, 5, 5\)"):
        F.avg_pool3d(wally.tensor(x), 5, 1, 1, ceil_mode=ceil_mode)
    # max_pool3d has no such check, in either framework
    theirs = torch.nn.functional.max_pool3d(torch.tensor(x), 5, 1, 1, ceil_mode=ceil_mode)
    assert tuple(F.max_pool3d(wally.tensor(x), 5, 1, 1, ceil_mode=ceil_mode).shape) == tuple(
        theirs.shape)


# ----- geometry: every tap's slice lies inside the padded planes ----------------------------------
@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(1, 5), s=st.integers(1, 3), d=st.integers(1, 2),
       p_frac=st.floats(0, 1), ceil_mode=st.booleans())
def test_every_tap_slice_is_whole(n, k, s, d, p_frac, ceil_mode):
    """NumPy clips a slice that runs past its array; a clipped tap would give a wrong shape or
    a wrong window.  Every tap of every window must be inside the padded block, and the
    window count must be the definition's (the reference loops count windows one by one)."""
    p = int(p_frac * (k // 2))
    expected = reference._pool_out(n, k, s, p, d, ceil_mode)
    x = wally.ones(1, 1, n)
    if expected < 1:
        with pytest.raises(ValueError, match="max_pool1d"):
            F.max_pool1d(x, k, s, p, d, ceil_mode)
        return
    win = pool_module._windows("max_pool1d", 1, x, k, s, p, d, ceil_mode)
    assert win.out == (expected,)
    assert win.padded[0] >= n + p
    block = np.zeros((1, *win.padded))
    for view in win.views:
        assert block[view].shape == (1, expected)
        last = view[1].start + (expected - 1) * s
        assert last < win.padded[0]


# ----- values and gradients against PyTorch, in a subprocess --------------------------------------
@st.composite
def ceil_cases(draw):
    nd = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["max", "avg"]))
    sizes = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    kernel = tuple(draw(st.integers(1, 5 if nd < 3 else 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding,
                  ceil_mode=draw(st.booleans()))
    if kind == "max":
        kwargs["dilation"] = tuple(draw(st.integers(1, 2)) for _ in range(nd))
        kwargs["return_indices"] = draw(st.booleans())
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        if nd > 1 and draw(st.integers(0, 4)) == 0:
            kwargs["divisor_override"] = draw(st.integers(1, 7))
    batch = draw(st.sampled_from([(), (1,), (3,)]))  # () is an unbatched input
    channels = draw(st.integers(1, 3))
    return dict(nd=nd, kind=kind, shape=batch + (channels,) + sizes, kwargs=kwargs,
                dtype=draw(st.sampled_from(["float32", "float64"])),
                chunked=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


def _expected_max_gradient(x, kwargs, gy):
    """Each window's gradient goes to its maximum (the reference loops' index); a window
    without a real cell (its maximum −∞) passes none."""
    options = {k: v for k, v in kwargs.items() if k != "return_indices"}
    batched = x if x.ndim == len(kwargs["kernel_size"]) + 2 else x[None]
    g = gy if gy.ndim == batched.ndim else gy[None]
    values, indices = reference.max_pool_nd_loops(batched, **options)
    gx = np.zeros((*batched.shape[:2], int(np.prod(batched.shape[2:]))))
    for n in range(batched.shape[0]):
        for c in range(batched.shape[1]):
            real = np.isfinite(values[n, c]).ravel()
            np.add.at(gx[n, c], indices[n, c].ravel()[real], g[n, c].ravel()[real])
    return gx.reshape(batched.shape).reshape(x.shape)


def check_case(case, torch):
    nd, kind, kwargs = case["nd"], case["kind"], dict(case["kwargs"])
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(case["dtype"])
    torch_pool = getattr(torch.nn.functional, f"{kind}_pool{nd}d")
    tx = torch.tensor(x, requires_grad=True)
    try:
        expected = torch_pool(tx, **kwargs)
    except RuntimeError:
        with pytest.raises(ValueError, match=f"{kind}_pool{nd}d: "):
            getattr(F, f"{kind}_pool{nd}d")(wally.tensor(x), **kwargs)
        return "refused"
    ours = wally.tensor(x, requires_grad=True)
    result = getattr(F, f"{kind}_pool{nd}d")(ours, **kwargs)
    if kwargs.get("return_indices"):
        result, indices = result
        expected, their_indices = expected
        np.testing.assert_array_equal(indices.array, their_indices.numpy())
    assert tuple(result.shape) == tuple(expected.shape)
    assert result.dtype == x.dtype
    tol = dict(rtol=1e-5, atol=1e-6) if case["dtype"] == "float32" else dict(rtol=1e-12)
    np.testing.assert_allclose(result.array, expected.detach().numpy(), **tol)
    gy = rng.standard_normal(tuple(expected.shape)).astype(case["dtype"])
    result.backward(wally.tensor(gy))
    if kind == "max" and not np.isfinite(expected.detach().numpy()).all():
        # a window without a real cell: torch's backward would write out of bounds
        reference_grad = _expected_max_gradient(x.astype(np.float64), kwargs, gy)
        np.testing.assert_allclose(ours.grad.array, reference_grad, **tol)
        return "no real cell"
    expected.backward(torch.tensor(gy))
    np.testing.assert_allclose(ours.grad.array, tx.grad.numpy(), **tol)
    return "compared"


def compare_with_torch():
    """The hypothesis grid (run by the subprocess below); chunked cases force one plane per
    chunk over three threads, as tests/test_pool_chunks.py does."""
    import torch

    seen: dict[str, int] = {}

    @settings(max_examples=int(os.environ.get("POOLCEIL_EXAMPLES", "300")), deadline=None,
              database=None)
    @given(ceil_cases())
    def run(case):
        previous_bytes = tuning.POOL_CHUNK_BYTES
        if case["chunked"]:
            tuning.POOL_CHUNK_BYTES = 64
        try:
            with num_threads(3 if case["chunked"] else get_num_threads()):
                outcome = check_case(case, torch)
        finally:
            tuning.POOL_CHUNK_BYTES = previous_bytes
        seen[outcome] = seen.get(outcome, 0) + 1

    run()
    print("outcomes", sorted(seen.items()))
    assert seen.get("compared", 0) > 0


def _run_in_subprocess(function: str, timeout: float = 240) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(wally.__path__[0]), HERE, env.get("PYTHONPATH", "")])
    code = f"import test_pool_ceil as t; t.{function}()"
    done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=HERE)
    assert done.returncode == 0, (
        f"{function} exited with {done.returncode} (a negative code is a signal, e.g. -6 "
        f"SIGABRT from a corrupted heap)\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def test_ceil_mode_matches_torch_in_a_subprocess(torch):
    out = _run_in_subprocess("compare_with_torch")
    assert "outcomes" in out


def _crash() -> None:
    import ctypes

    ctypes.string_at(0)  # a segfault: the harness must report it as a failure


def test_the_subprocess_harness_reports_a_crash():
    with pytest.raises(AssertionError, match="exited with -11"):
        _run_in_subprocess("_crash", timeout=60)


# ----- gradcheck ----------------------------------------------------------------------------------
GRADCHECK = [
    (1, (1, 2, 2), dict(kernel_size=3, stride=2, ceil_mode=True)),  # kernel > input
    (1, (1, 2, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    (2, (1, 1, 2, 3), dict(kernel_size=3, stride=2, ceil_mode=True)),
    (2, (2, 1, 4, 4), dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 0), ceil_mode=True)),
    (3, (1, 1, 3, 3, 4), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
]
DILATED = [
    (1, (1, 2, 4), dict(kernel_size=3, stride=2, dilation=2, ceil_mode=True)),  # 5 > 4
    (2, (1, 1, 4, 5), dict(kernel_size=(3, 2), stride=(3, 2), padding=1, dilation=2,
                           ceil_mode=True)),
    (3, (1, 1, 4, 3, 4), dict(kernel_size=2, stride=3, dilation=(2, 1, 2), ceil_mode=True)),
]


def _distinct(shape):
    # distinct values, far apart, so that no maximum changes under the finite differences
    values = np.random.default_rng(0).permutation(int(np.prod(shape))).reshape(shape)
    return wally.tensor(values.astype(np.float64), requires_grad=True)


@pytest.mark.parametrize("nd, shape, kwargs", DILATED)
def test_gradcheck_dilated_max_pool_ceil_mode(nd, shape, kwargs):
    x = _distinct(shape)
    assert gradcheck(lambda t: getattr(F, f"max_pool{nd}d")(t, **kwargs), x)


@pytest.mark.parametrize("nd, shape, kwargs", GRADCHECK)
def test_gradcheck_ceil_mode(nd, shape, kwargs):
    x = _distinct(shape)
    assert gradcheck(lambda t: getattr(F, f"max_pool{nd}d")(t, **kwargs), x)
    for include in (True, False):
        assert gradcheck(
            lambda t, include=include: getattr(F, f"avg_pool{nd}d")(
                t, count_include_pad=include, **kwargs), x)


# ----- the reference loops agree with PyTorch in ceil mode ----------------------------------------
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=(4, 3), stride=(3, 2), padding=(2, 1), ceil_mode=True),
    dict(kernel_size=5, stride=3, padding=2, ceil_mode=True),
])
def test_reference_loops_take_overhanging_windows(torch, kwargs):
    x = np.random.default_rng(3).standard_normal((1, 2, 2, 3))
    tx = torch.tensor(x)
    values, indices = reference.max_pool_nd_loops(x, **kwargs)
    theirs, their_indices = torch.nn.functional.max_pool2d(tx, return_indices=True, **kwargs)
    np.testing.assert_array_equal(values, theirs.numpy())
    np.testing.assert_array_equal(indices, their_indices.numpy())
    for include in (True, False):
        np.testing.assert_allclose(
            reference.avg_pool_nd_loops(x, count_include_pad=include, **kwargs),
            torch.nn.functional.avg_pool2d(tx, count_include_pad=include, **kwargs).numpy(),
            rtol=1e-12)


# ----- GoogLeNet on torchvision's smallest input --------------------------------------------------
def test_googlenet_runs_on_15_pixels_like_torchvision(torch):
    from _torchvision import import_torchvision
    from wally.vision import models

    tv = import_torchvision()
    torch.manual_seed(0)
    theirs = tv.models.googlenet(num_classes=10, init_weights=True).eval()
    with torch.no_grad():  # weights that keep activations at unit scale
        for module in theirs.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
                torch.nn.init.kaiming_normal_(module.weight)
    ours = models.googlenet(num_classes=10, init_weights=True).eval()
    ours.load_state_dict({k: wally.from_numpy(v.detach().numpy().copy())
                          for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((1, 3, 15, 15)).astype(np.float32)
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    got = ours(wally.from_numpy(x)).detach().numpy()
    assert got.shape == (1, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())
    small = np.zeros((1, 3, 14, 14), dtype=np.float32)  # one pixel less: both refuse it
    with pytest.raises(RuntimeError, match="too small"):
        theirs(torch.from_numpy(small))
    with pytest.raises(ValueError, match="max_pool2d: output size"):
        ours(wally.from_numpy(small))
