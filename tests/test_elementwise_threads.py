"""ReLU, sigmoid and tanh split large arrays by rows among the threads
(``wally._parallel.elementwise``): the same bits as the one-thread expression, at any thread
count, and the work really is split."""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally.backends import tuning

# (16, 8, 96, 96) float32 is 4.7 MB: above tuning.ELEMENTWISE_BYTES, so it splits.
SHAPE = (16, 8, 96, 96)

# The expressions the ops computed before they were split, evaluated here in one piece.
PLAIN = {
    # ReLU passes the gradient where not y ≤ 0: a NaN y passes it, as PyTorch's does
    "relu": (lambda x: np.maximum(x, 0), lambda gy, y: gy * ~(y <= 0)),
    "sigmoid": (lambda x: 0.5 * (np.tanh(0.5 * x) + 1), lambda gy, y: gy * y * (1 - y)),
    "tanh": (np.tanh, lambda gy, y: gy * (1 - y * y)),
}


def _run(name: str, x: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = wally.tensor(x, requires_grad=True)
    y = getattr(wally, name)(t)
    y.backward(wally.tensor(gy))
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(PLAIN))
def test_same_bits_as_one_piece_at_one_and_two_threads(name, dtype, num_threads):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(SHAPE) * 3).astype(dtype)
    x[0, 0, 0, :4] = [0.0, -0.0, np.nan, np.inf]
    gy = rng.standard_normal(SHAPE).astype(dtype)
    forward, backward = PLAIN[name]
    want_y = forward(x)
    want_gx = backward(gy, want_y)
    for threads in (1, 2, 3):
        num_threads(threads)
        y, gx = _run(name, x, gy)
        assert y.dtype == want_y.dtype and gx.dtype == want_gx.dtype
        np.testing.assert_array_equal(y.view(np.uint8), want_y.view(np.uint8), err_msg=f"{threads}")
        np.testing.assert_array_equal(gx.view(np.uint8), want_gx.view(np.uint8),
                                      err_msg=f"{threads}")


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_large_arrays_are_split_among_the_threads_and_small_ones_are_not(
    name, num_threads, chunk_calls
):
    num_threads(2)
    rng = np.random.default_rng(2)
    big = rng.standard_normal(SHAPE).astype(np.float32)
    assert big.nbytes >= tuning.ELEMENTWISE_BYTES
    _run(name, big, big)
    assert chunk_calls == [4, 4], chunk_calls  # forward and backward, two blocks per thread
    chunk_calls.clear()
    small = big[:1, :1]
    assert small.nbytes < tuning.ELEMENTWISE_BYTES
    _run(name, small, small)
    assert chunk_calls == []
    chunk_calls.clear()
    num_threads(1)
    _run(name, big, big)
    assert chunk_calls == []


def test_integer_and_mixed_inputs_keep_the_plain_path():
    x = np.arange(-3, 3)
    np.testing.assert_array_equal(wally.relu(wally.tensor(x)).numpy(), np.maximum(x, 0))
    assert wally.relu(wally.tensor(x)).numpy().dtype == x.dtype


def _plain_batch_norm(x, w, b, gy, eps=1e-5):
    """Training batch norm, forward and input/weight/bias gradients, as one-piece NumPy
    expressions in the order wally's kernel evaluates them."""
    n, c = x.shape[:2]
    x3, g3 = x.reshape(n, c, -1), gy.reshape(n, c, -1)
    count = n * x3.shape[2]
    mean = x3.sum(axis=2).sum(axis=0) / count
    xhat = x3 - mean[:, None]
    var = (xhat * xhat).sum(axis=2).sum(axis=0) / count
    invstd = 1.0 / np.sqrt(var + eps)
    xhat *= invstd[:, None]
    y = xhat * w[:, None]
    y += b[:, None]
    gb = g3.sum(axis=2).sum(axis=0)
    gw = (g3 * xhat).sum(axis=2).sum(axis=0)
    gx = xhat * (-gw / count)[:, None]
    gx += g3
    gx -= (gb / count)[:, None]
    gx *= (w * invstd)[:, None]
    return y.reshape(x.shape), gx.reshape(x.shape), gw, gb


@pytest.mark.parametrize("layout", ["contiguous", "channels last"])
def test_batch_norm_same_bits_at_one_two_and_three_threads(layout, num_threads):
    """Contiguous: the bits of the one-piece expressions. Channels last (a permuted view, so
    the kernel reads a strided input): the same bits at every thread count, and the same
    values as the one-piece expressions to rounding."""
    import wally.nn.functional as F

    rng = np.random.default_rng(3)
    x = rng.standard_normal(SHAPE).astype(np.float32) * 2 + 1
    w = rng.standard_normal(SHAPE[1]).astype(np.float32)
    b = rng.standard_normal(SHAPE[1]).astype(np.float32)
    gy = rng.standard_normal(SHAPE).astype(np.float32)
    want = _plain_batch_norm(x, w, b, gy)
    seen = []
    for threads in (1, 2, 3):
        num_threads(threads)
        if layout == "contiguous":
            tx = wally.tensor(x, requires_grad=True)
            inp = tx
        else:
            tx = wally.tensor(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), requires_grad=True)
            inp = tx.permute(0, 3, 1, 2)
        tw, tb = wally.tensor(w, requires_grad=True), wally.tensor(b, requires_grad=True)
        y = F.batch_norm(inp, wally.zeros(SHAPE[1]), wally.ones(SHAPE[1]), tw, tb, training=True)
        y.backward(wally.tensor(gy))
        dx = tx.grad.numpy() if layout == "contiguous" else tx.grad.numpy().transpose(0, 3, 1, 2)
        got = [np.ascontiguousarray(a) for a in (y.detach().numpy(), dx, tw.grad.numpy(),
                                                  tb.grad.numpy())]
        seen.append(b"".join(a.tobytes() for a in got))
        for name, g, e in zip(("y", "dx", "dw", "db"), got, want, strict=True):
            if layout == "contiguous":
                np.testing.assert_array_equal(g.view(np.uint8), e.view(np.uint8),
                                              err_msg=f"{name} at {threads} threads")
            else:
                np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4, err_msg=name)
    assert seen[0] == seen[1] == seen[2]


def test_batch_norm_splits_large_batches(num_threads, chunk_calls):
    import wally.nn.functional as F

    num_threads(2)
    x = wally.tensor(np.ones(SHAPE, np.float32), requires_grad=True)
    F.batch_norm(x, None, None, training=True).sum().backward()
    # forward: two sums, centre, scale; backward: two sums, the input gradient
    assert len(chunk_calls) >= 6 and set(chunk_calls) == {4}, chunk_calls
