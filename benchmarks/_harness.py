"""Timing helpers shared by the benchmark cases: threads, the GEMM peak, paired timings.

Every case hands two callables, one for wally and one for PyTorch, to :func:`paired`, which
runs them alternately (W T, then T W, ...) after a warm-up, so that both see the same load on a
shared machine; each repeat gives one ratio ``wally time / PyTorch time``.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Timing:
    """Per-repeat times (seconds per call) of both frameworks, and their paired ratios."""

    wally: list[float] = field(default_factory=list)
    torch: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [w / t for w, t in zip(self.wally, self.torch)]

    def ratio_stats(self) -> tuple[float, float, float]:
        r = self.ratios
        return min(r), statistics.median(r), max(r)

    def median(self, which: str) -> float:
        return statistics.median(getattr(self, which))

    def summary(self, other: str = "torch_ms") -> dict[str, float]:
        """Both medians in ms (the second under ``other``) and the ratios' min/median/max."""
        low, median, high = self.ratio_stats()
        return {"ms": self.median("wally") * 1e3, other: self.median("torch") * 1e3,
                "min": low, "median": median, "max": high}


def write_json(path: Any, data: Any) -> None:
    """``data`` as indented JSON at ``path``, written atomically (``wally.io.atomic_write``)."""
    from wally.io import atomic_write

    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())


def set_threads(threads: int, torch: bool = True) -> dict[str, Any]:
    """Use ``threads`` threads in NumPy's BLAS, in wally and (unless ``torch`` is false, when
    PyTorch isn't even imported) in PyTorch; returns what is in force."""
    import wally

    info: dict[str, Any] = {"wally_threads": threads}
    if torch:
        import torch as pytorch

        pytorch.set_num_threads(threads)
        info["torch_threads"] = pytorch.get_num_threads()
    set_wally_threads = getattr(wally, "set_num_threads", None)
    if set_wally_threads is None:
        from wally._parallel import set_num_threads as set_wally_threads
    set_wally_threads(threads)
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:  # pragma: no cover - the benchmark then reports NumPy's default
        info["blas"] = "unknown (pip install threadpoolctl to control and report it)"
        return info
    threadpool_limits(threads, user_api="blas")
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    info["blas"] = ", ".join(
        f"{p['internal_api']} {p.get('version')} ({p.get('architecture')}), "
        f"{p['num_threads']} threads"
        for p in blas
    )
    return info


def gemm_peak(repeats: int = 10, size: int = 1024) -> float:
    """NumPy's float32 GEMM rate in GFLOP/s (best of ``repeats``) on ``size × size``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    c = np.empty_like(a)
    np.matmul(a, b, out=c)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def _time(fn: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def paired(
    wally_fn: Callable[[], Any],
    torch_fn: Callable[[], Any],
    repeats: int,
    warmup: int = 2,
    min_time: float = 0.05,
) -> Timing:
    """Time both callables ``repeats`` times, alternating, after ``warmup`` calls of each.

    Each repeat calls a function ``number`` times in a row (chosen so that one repeat lasts
    about ``min_time``) and records the mean; the order alternates between repeats.
    """
    for _ in range(warmup):
        wally_fn()
        torch_fn()
    probe = min(_time(wally_fn, 1), _time(torch_fn, 1))
    number = max(1, int(min_time / max(probe, 1e-7)))
    timing = Timing()
    gc.collect()
    for repeat in range(repeats):
        if repeat % 2 == 0:
            timing.wally.append(_time(wally_fn, number))
            timing.torch.append(_time(torch_fn, number))
        else:
            timing.torch.append(_time(torch_fn, number))
            timing.wally.append(_time(wally_fn, number))
    return timing
