"""``wally._parallel.matmul`` (the linear layers' GEMM) in its regimes at 2 threads: tiny
ones left to BLAS, small and mid-sized ones on the calling thread with BLAS held to one thread,
large ones split by rows among the threads; and the convolutions' GEMMs, which run on one BLAS
thread whenever wally uses several (OpenBLAS's idle threads spin on the cores otherwise)."""

from __future__ import annotations

import numpy as np
import pytest

from wally import _parallel, backend
from wally.backends import tuning

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> int:
    """The thread count of the BLAS that wally limits (NumPy's; torch or SciPy may load others)."""
    return max(p["num_threads"] for p in _parallel._blas().info())


@pytest.fixture
def observed(monkeypatch):
    """Each GEMM's BLAS thread count as it ran, and every split's number of blocks."""
    seen: dict[str, list[int]] = {"blas": [], "splits": []}
    matmul, run_chunks = backend.matmul, _parallel.run_chunks

    def recording_matmul(*args, **kwargs):
        seen["blas"].append(_blas_threads())
        return matmul(*args, **kwargs)

    def recording_chunks(work, chunks, **kwargs):
        seen["splits"].append(len(chunks))
        return run_chunks(work, chunks, **kwargs)

    monkeypatch.setattr(backend, "matmul", recording_matmul)
    monkeypatch.setattr(_parallel, "run_chunks", recording_chunks)
    return seen


def _operands(macs: int) -> tuple[np.ndarray, np.ndarray]:
    rows, depth = 256, 400
    rng = np.random.default_rng(0)
    return (rng.standard_normal((rows, depth), dtype=np.float32),
            rng.standard_normal((depth, max(1, macs // (rows * depth))), dtype=np.float32))


def test_the_regimes_are_ordered():
    assert 0 < tuning.BLAS_THREADED_MACS < tuning.ONE_THREAD_MACS < tuning.SPLIT_MACS


def test_a_mid_sized_gemm_runs_on_one_thread_with_one_blas_thread(num_threads, observed):
    num_threads(2)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        a, b = _operands((tuning.ONE_THREAD_MACS + tuning.SPLIT_MACS) // 2)
        out = _parallel.matmul(a, b)
        assert observed["splits"] == [] and observed["blas"] == [1]
        assert _blas_threads() == 2  # put back afterwards
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        np.testing.assert_array_equal(out, a @ b)  # the same GEMM on one BLAS thread


def test_a_large_gemm_is_split_by_rows(num_threads, observed):
    num_threads(2)
    a, b = _operands(2 * tuning.SPLIT_MACS)
    out = _parallel.matmul(a, b)
    assert observed["splits"] == [4] and set(observed["blas"]) == {1}
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-3)


def test_a_tiny_gemm_and_one_thread_are_left_to_blas(num_threads, observed):
    num_threads(2)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        _parallel.matmul(*_operands(tuning.BLAS_THREADED_MACS // 2))
        num_threads(1)
        _parallel.matmul(*_operands((tuning.ONE_THREAD_MACS + tuning.SPLIT_MACS) // 2))
    assert observed["splits"] == [] and observed["blas"] == [2, 2]


def test_a_small_gemm_that_openblas_would_thread_gets_one_blas_thread(num_threads, observed):
    num_threads(2)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        a, b = _operands((tuning.BLAS_THREADED_MACS + tuning.ONE_THREAD_MACS) // 2)
        out = _parallel.matmul(a, b)
        assert observed["splits"] == [] and observed["blas"] == [1]
        assert _blas_threads() == 2
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        np.testing.assert_array_equal(out, a @ b)


@pytest.mark.parametrize("case", ["shared", "one chunk", "winograd"])
def test_a_convolution_runs_every_gemm_on_one_blas_thread_at_two_threads(
        case, num_threads, observed, monkeypatch):
    """A 1×1 layer whose columns fit one chunk is shared among the threads (one BLAS thread
    each); a smaller one stays one chunk and leaves its GEMM to BLAS's own threads (batch-1
    inference); a Winograd layer's weight transform, a GEMM outside its chunks, gets one."""
    import wally
    import wally.functional.conv as kernels
    import wally.nn.functional as F
    from wally.backends import conv

    splits: list[int] = []
    run_chunks = kernels.run_chunks

    def counting(work, chunks, **kwargs):
        splits.append(len(chunks))
        return run_chunks(work, chunks, **kwargs)

    monkeypatch.setattr(kernels, "run_chunks", counting)
    num_threads(2)
    rng = np.random.default_rng(0)
    x_shape, w_shape, padding, name = {
        "shared": ((64, 128, 8, 8), (256, 128, 1, 1), 0, "im2col"),
        "one chunk": ((1, 128, 8, 8), (256, 128, 1, 1), 0, "im2col"),
        "winograd": ((2, 64, 16, 16), (64, 64, 3, 3), 1, "winograd"),
    }[case]
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32)
    with threadpoolctl.threadpool_limits(2, user_api="blas"), conv.algorithm(name):
        F.conv2d(wally.tensor(x), wally.tensor(w), padding=padding)
        assert _blas_threads() == 2
    assert observed["blas"]
    assert set(observed["blas"]) == ({2} if case == "one chunk" else {1})
    if case != "winograd":
        assert splits == [2 if case == "shared" else 1]
