"""The Winograd F(2×2, 3×3) path against PyTorch's conv2d and the naive loops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally import reference
from wally._winograd import transform_weights, winograd_correlate, worth_it

# A correct float32 result is within a few ulps of the sum's magnitude (≤ 81 products of
# standard normals here, so |y| ≲ 30); a misplaced tile is off by O(1).
TOLERANCES = {np.float32: (1e-4, 1e-4), np.float64: (1e-10, 1e-10)}


@st.composite
def problems(draw):
    batch = draw(st.integers(1, 3))
    channels = draw(st.integers(1, 9))
    out_channels = draw(st.integers(1, 9))
    top, bottom, left, right = (draw(st.integers(0, 2)) for _ in range(4))
    height = draw(st.integers(max(3 - top - bottom, 3), 13))
    width = draw(st.integers(max(3 - left - right, 3), 13))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((batch, channels, height, width))
    w = rng.standard_normal((out_channels, channels, 3, 3))
    b = rng.standard_normal(out_channels) if draw(st.booleans()) else None
    return x, w, b, ((top, bottom), (left, right))


def _torch_conv(torch, x, w, b, padding):
    (top, bottom), (left, right) = padding
    xt = torch.nn.functional.pad(torch.from_numpy(x), (left, right, top, bottom))
    bt = None if b is None else torch.from_numpy(b)
    return torch.nn.functional.conv2d(xt, torch.from_numpy(w), bt).numpy()


def _check(y, expected, dtype):
    rtol, atol = TOLERANCES[dtype]
    assert y.dtype == dtype
    assert y.flags.c_contiguous
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=40, deadline=None)
@given(case=problems())
def test_matches_torch(torch, dtype, case):
    x, w, b, padding = case
    cast = [None if a is None else a.astype(dtype) for a in (x, w, b)]
    expected = _torch_conv(torch, x, w, b, padding)  # float64: the float32 result's reference
    _check(winograd_correlate(*cast, padding), expected, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=25, deadline=None)
@given(case=problems())
def test_matches_reference_loops(dtype, case):
    x, w, b, padding = case
    expected = reference.conv_nd_loops(x, w, b, padding=padding)
    cast = [None if a is None else a.astype(dtype) for a in (x, w, b)]
    _check(winograd_correlate(*cast, padding), expected, dtype)


def test_non_contiguous_input():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((3, 8, 14, 22))
    x = base[::2, ::2, 1:, ::2].transpose(0, 1, 3, 2)  # (2, 4, 11, 13), every stride odd
    w = rng.standard_normal((5, 8, 3, 3))[:, ::2]
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    padding = ((1, 2), (0, 1))
    expected = reference.conv_nd_loops(np.ascontiguousarray(x), np.ascontiguousarray(w), None,
                                       padding=padding)
    _check(winograd_correlate(x, w, None, padding), expected, np.float64)


def test_precomputed_weights_and_threads(num_threads):
    """Chunks split over tile rows and images, several threads, ``u`` given beforehand."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 16, 41, 37)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    padding = ((1, 1), (2, 0))
    expected = reference.conv_nd_loops(x.astype(np.float64), w.astype(np.float64),
                                       b.astype(np.float64), padding=padding)
    for threads in (1, 2, 3):
        num_threads(threads)
        y = winograd_correlate(x, w, b, padding, u=transform_weights(w))
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_float16_is_computed_in_float32():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float16)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float16)
    y = winograd_correlate(x, w, None, ((1, 1), (1, 1)))
    expected = reference.conv_nd_loops(x.astype(np.float64), w.astype(np.float64), padding=1)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y, expected, rtol=1e-2, atol=2e-2)


def test_bad_arguments():
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="weight"):
        winograd_correlate(x, np.zeros((3, 2, 5, 5)), None, ((0, 0), (0, 0)))
    with pytest.raises(ValueError, match="no output"):
        winograd_correlate(np.zeros((1, 2, 1, 4)), np.zeros((3, 2, 3, 3)), None, ((0, 0), (0, 0)))


def test_worth_it():
    same = ((1, 1), (1, 1))
    assert worth_it((16, 64, 32, 32), (64, 64, 3, 3), same, np.float32)  # 2^26 exactly
    assert not worth_it((15, 64, 32, 32), (64, 64, 3, 3), same, np.float32)
    assert not worth_it((64, 32, 32, 32), (32, 32, 3, 3), same, np.float32)  # too few channels
    assert worth_it((64, 128, 16, 16), (128, 128, 3, 3), same, np.float32)
    assert not worth_it((1, 128, 16, 16), (128, 128, 3, 3), same, np.float32)
    assert worth_it((64, 512, 4, 4), (512, 512, 3, 3), same, np.float32)
    assert not worth_it((8, 512, 4, 4), (512, 512, 3, 3), same, np.float32)
    assert not worth_it((64, 64, 32, 32), (64, 64, 5, 5), same, np.float32)


@pytest.mark.parametrize("threads", [1, 2])
def test_conv2d_layers_take_winograd_forward_and_backward(num_threads, torch, monkeypatch, threads):
    """At one thread and at two ``F.conv2d`` sends a wide 3×3 layer on a large map to
    Winograd, in the forward pass and in the input gradient (a convolution with the flipped
    kernel).  Values and all three gradients match PyTorch's."""
    import wally.nn.functional as F
    from wally.backends import conv as dispatch
    from wally.functional import conv as conv_module

    calls = []
    original = conv_module.winograd_correlate

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(conv_module, "winograd_correlate", counting)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 96, 24, 23)).astype(np.float32)  # 2^26 multiply-adds
    w = (rng.standard_normal((96, 96, 3, 3)) / 30).astype(np.float32)
    b = rng.standard_normal(96).astype(np.float32)
    g = rng.standard_normal((16, 96, 24, 23)).astype(np.float32)
    num_threads(threads)
    xs, ws, bs = (wally.tensor(a, requires_grad=True) for a in (x, w, b))
    with dispatch.trace() as ran:
        y = F.conv2d(xs, ws, bs, padding=1)
        y.backward(wally.tensor(g))
    assert len(calls) == 2  # forward, and the input gradient
    assert ran == [("forward", "winograd"), ("weight-grad", "rows"), ("input-grad", "flipped"),
                   ("forward", "winograd")]
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
    ty.backward(torch.from_numpy(g))
    for ours, theirs in ((y, ty.detach()), (xs.grad, tx.grad), (ws.grad, tw.grad),
                         (bs.grad, tb.grad)):
        np.testing.assert_allclose(ours.array, theirs.numpy(), rtol=1e-4, atol=1e-3)


def test_small_budgets_and_layers_keep_im2col(num_threads, monkeypatch):
    """Narrow layers, small maps, strides and a memory budget under 1 MiB per thread take
    im2col (which honours the budget exactly), at one thread and at two."""
    from wally.backends import conv as dispatch
    from wally.functional import conv as conv_module

    def refuse(*args, **kwargs):
        raise AssertionError("Winograd was used")

    x = np.random.default_rng(0).standard_normal((8, 96, 32, 32)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((96, 96, 3, 3)).astype(np.float32)
    same = ((1, 1), (1, 1))
    num_threads(1)
    g = dispatch.Geometry(x.shape, w.shape, (1, 1), same, (1, 1), 1, x.dtype)
    assert dispatch.choose("forward", g, record=False) == "winograd"
    monkeypatch.setattr(conv_module, "winograd_correlate", refuse)
    with conv_module.im2col_budget(256 << 10):
        conv_module.correlate(x, w, None, (1, 1), same, (1, 1), 1)
    conv_module.correlate(x, w, None, (2, 2), same, (1, 1), 1)
    conv_module.correlate(x[:, :16], w[:16, :16], None, (1, 1), same, (1, 1), 1)
    conv_module.correlate(x[:1, :, :8, :8], w, None, (1, 1), same, (1, 1), 1)
    num_threads(2)
    with conv_module.im2col_budget(1 << 20):  # half a MiB per thread
        conv_module.correlate(x, w, None, (1, 1), same, (1, 1), 1)
