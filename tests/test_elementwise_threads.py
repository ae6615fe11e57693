"""ReLU, sigmoid and tanh split large arrays by rows among the threads
(``wally._parallel.elementwise``): the same bits as the one-thread expression, at any thread
count, and the work really is split."""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally import _parallel
from wally.backends import tuning

# (16, 8, 96, 96) float32 is 4.7 MB: above tuning.ELEMENTWISE_BYTES, so it splits.
SHAPE = (16, 8, 96, 96)

# The expressions the ops computed before they were split, evaluated here in one piece.
PLAIN = {
    "relu": (lambda x: np.maximum(x, 0), lambda gy, y: gy * (y > 0)),
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
    name, num_threads, monkeypatch
):
    calls: list[int] = []
    run_chunks = _parallel.run_chunks

    def counting(work, chunks, **kwargs):
        calls.append(len(chunks))
        return run_chunks(work, chunks, **kwargs)

    monkeypatch.setattr(_parallel, "run_chunks", counting)
    num_threads(2)
    rng = np.random.default_rng(2)
    big = rng.standard_normal(SHAPE).astype(np.float32)
    assert big.nbytes >= tuning.ELEMENTWISE_BYTES
    _run(name, big, big)
    assert calls == [4, 4], calls  # forward and backward, two blocks per thread
    calls.clear()
    small = big[:1, :1]
    assert small.nbytes < tuning.ELEMENTWISE_BYTES
    _run(name, small, small)
    assert calls == []
    calls.clear()
    num_threads(1)
    _run(name, big, big)
    assert calls == []


def test_integer_and_mixed_inputs_keep_the_plain_path():
    x = np.arange(-3, 3)
    np.testing.assert_array_equal(wally.relu(wally.tensor(x)).numpy(), np.maximum(x, 0))
    assert wally.relu(wally.tensor(x)).numpy().dtype == x.dtype
