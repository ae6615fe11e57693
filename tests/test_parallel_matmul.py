"""``wally._parallel.matmul`` (the linear layers' GEMM) in its three regimes at 2 threads:
small ones left to BLAS, mid-sized ones on the calling thread with BLAS held to one thread,
large ones split by rows among the threads."""

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
    assert 0 < tuning.ONE_THREAD_MACS < tuning.SPLIT_MACS


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


def test_a_small_gemm_and_one_thread_are_left_to_blas(num_threads, observed):
    num_threads(2)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        _parallel.matmul(*_operands(tuning.ONE_THREAD_MACS // 2))
        num_threads(1)
        _parallel.matmul(*_operands((tuning.ONE_THREAD_MACS + tuning.SPLIT_MACS) // 2))
    assert observed["splits"] == [] and observed["blas"] == [2, 2]


def test_deterministic_mode_splits_every_mid_sized_gemm_into_fixed_blocks(num_threads, observed):
    import wally

    wally.use_deterministic_algorithms(True)
    try:
        for threads in (1, 2):
            num_threads(threads)
            _parallel.matmul(*_operands((tuning.ONE_THREAD_MACS + tuning.SPLIT_MACS) // 2))
    finally:
        wally.use_deterministic_algorithms(False)
    assert observed["splits"] == [tuning.DETERMINISTIC_BLOCKS] * 2
