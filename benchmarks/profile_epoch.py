"""Where a LeNet epoch's time goes, at one thread and at several: per op, and how much of the
work the threads share (issue 12: "first find where the time goes and write it down").

Runs wally alone (PyTorch is not imported: its idle OpenMP threads would spin on the cores
wally's threads need) on ``benchmarks.run``'s LeNet epoch (d2l's LeNet with ReLU, SGD, batch
256), once per thread count, and times every autograd ``Function``'s ``forward`` and
``backward`` by class and input shape. Everything else in the step (the autograd loop itself,
the optimiser, the loss's bookkeeping) is the row *outside the ops*.

From the epoch times ``T₁`` and ``T_n`` it reports the speed-up ``S = T₁ / T_n`` and Amdahl's
serial fraction ``s = (1/S − 1/n) / (1 − 1/n)``, the share of the one-thread time that the
threads did not shorten, and from ``s`` the predicted speed-up ``1 / (s + (1 − s)/m)`` at 4, 8
and 16 cores. The prediction assumes the parallel part keeps scaling and memory bandwidth
does not run out; it is an upper bound, not a measurement.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.profile_epoch
    python -m benchmarks.profile_epoch --batches 20 --threads 1,2 --output /tmp/profile.md
    python -m benchmarks.profile_epoch --accel both    # with and without wally's numba kernels

``--accel both`` profiles each thread count twice, in alternating fresh processes, with the
compiled kernels (``wally.backends.accel``) and with ``WALLY_ACCEL=0``, and puts the two
epochs side by side before the two profiles.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def instrument(totals: dict[tuple[str, str], float]) -> None:
    """Wrap every Function subclass's forward/backward to add its time to ``totals``."""
    from wally.autograd import Function

    for cls in set(_subclasses(Function)):
        for name in ("forward", "backward"):
            method = cls.__dict__.get(name)
            if method is None:
                continue

            def timed(self: Any, *args: Any, _method: Any = method, _name: str = name,
                      _cls: str = cls.__name__, **kwargs: Any) -> Any:
                shape = getattr(args[0], "shape", ()) if args else ()
                start = time.perf_counter()
                result = _method(self, *args, **kwargs)
                totals[(f"{_cls}.{_name}", "×".join(map(str, shape)))] += (
                    time.perf_counter() - start
                )
                return result

            setattr(cls, name, timed)


def count_shares(shares: list[collections.Counter[int]]) -> None:
    """Record, per chunked call (each of ``run_chunks``'s shared iterators), how many chunks
    each thread took: ``shares`` gets one Counter of thread → chunks per call."""
    from wally import _parallel

    original = _parallel._Shared.__next__

    def counted(self: Any) -> Any:
        item = original(self)  # StopIteration at the end passes through
        if not hasattr(self, "_profile_share"):
            self._profile_share = collections.Counter()
            shares.append(self._profile_share)
        self._profile_share[threading.get_ident()] += 1
        return item

    _parallel._Shared.__next__ = counted


def balance(shares: list[collections.Counter[int]]) -> dict[str, float]:
    """The calling thread's share of all chunks, and the fraction of chunked calls with at
    least two chunks in which one thread took every chunk."""
    caller = threading.get_ident()
    split = [s for s in shares if sum(s.values()) >= 2]
    total = sum(sum(s.values()) for s in split)
    return {
        "calls": len(split),
        "caller_share": sum(s[caller] for s in split) / total if total else 1.0,
        "one_thread": sum(len(s) == 1 for s in split) / len(split) if split else 1.0,
    }


def profile(threads: int, batches: int, repeats: int) -> dict[str, Any]:
    """One warm-up epoch and ``repeats`` timed ones at ``threads`` threads; the fastest
    epoch's per-op times."""
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    import wally
    from benchmarks.cases import lenet_epoch
    from benchmarks.models import wally_lenet

    threadpool_limits(threads, user_api="blas")
    wally.set_num_threads(threads)
    rng = np.random.default_rng(0)
    images = rng.random((batches * 256, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, batches * 256)
    totals: dict[tuple[str, str], float] = collections.defaultdict(float)
    instrument(totals)
    shares: list[collections.Counter[int]] = []
    count_shares(shares)
    epoch = lenet_epoch("wally", wally_lenet(), images, labels)
    epoch()
    best: dict[str, Any] = {"wall": float("inf")}
    for _ in range(repeats):
        totals.clear()
        shares.clear()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        epoch()
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
        if wall < best["wall"]:
            best = {"wall": wall, "cpu": cpu, "ops": dict(totals), **balance(shares)}
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    best["blas"] = ", ".join(f"{p['internal_api']} {p.get('version')} "
                             f"({p.get('architecture')}), {p['num_threads']} threads" for p in blas)
    return best


def amdahl(speedup: float, n: int) -> float:
    """The serial fraction ``s`` that gives ``speedup`` on ``n`` threads."""
    return (1 / speedup - 1 / n) / (1 - 1 / n)


def side_by_side(by_mode: dict[str, dict[int, dict[str, Any]]]) -> str:
    """The epochs with the compiled kernels and without, per thread count."""
    counts = sorted(by_mode["on"])
    lines = ["## With and without the compiled kernels (`--accel both`)", "",
             "| threads | epoch, WALLY_ACCEL=0 | epoch, accelerated | speed-up |",
             "|---|---|---|---|"]
    for n in counts:
        off, on = by_mode["off"][n]["wall"], by_mode["on"][n]["wall"]
        lines.append(f"| {n} | {off:.3f} s | {on:.3f} s | {off / on:.2f}× |")
    for mode in ("off", "on"):
        one = by_mode[mode][counts[0]]["wall"]
        last = by_mode[mode][counts[-1]]["wall"]
        lines.append(f"\n{'Without' if mode == 'off' else 'With'} them, {counts[0]} → "
                     f"{counts[-1]} threads: {one / last:.2f}×.")
    return "\n".join(lines) + "\n"


def report(results: dict[int, dict[str, Any]], batches: int, title: str = "") -> str:
    counts = sorted(results)
    one = results[counts[0]]
    lines = [
        f"# Where a LeNet epoch's time goes{title}",
        "",
        f"Written by `python -m benchmarks.profile_epoch` on {time.strftime('%Y-%m-%d %H:%M')}: "
        f"{batches} batches of 256 (d2l's LeNet with ReLU, SGD), wally alone in its process, "
        f"the fastest of the repeats at each thread count. Load average before: "
        f"{os.getloadavg()[0]:.1f}.",
        "",
        "| threads | epoch | CPU time | cores busy | speed-up | serial fraction (Amdahl) | BLAS |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in counts:
        r = results[n]
        speedup = one["wall"] / r["wall"]
        serial = f"{amdahl(speedup, n):.2f}" if n > 1 else "–"
        lines.append(f"| {n} | {r['wall']:.3f} s | {r['cpu']:.3f} s | {r['cpu'] / r['wall']:.2f} "
                     f"| {speedup:.2f}× | {serial} | {r['blas']} |")
    lines += ["", "## How the chunked kernels' threads shared their chunks", "",
              "| threads | chunked calls | chunks the calling thread took | calls where one "
              "thread took every chunk |", "|---|---|---|---|"]
    for n in counts:
        r = results[n]
        lines.append(f"| {n} | {r['calls']} | {r['caller_share']:.0%} | {r['one_thread']:.0%} |")
    lines += ["", "## Per op (ms per epoch)", ""]
    header = " | ".join(f"{n} thread{'s' if n > 1 else ''}" for n in counts)
    lines += [f"| op | input | {header} | speed-up at {counts[-1]} |",
              "|---|---|" + "---|" * len(counts) + "---|"]
    keys = sorted(one["ops"], key=lambda k: -one["ops"][k])
    for key in keys:
        times = [results[n]["ops"].get(key, 0.0) for n in counts]
        if times[0] < 0.005 * one["wall"]:
            continue
        cells = " | ".join(f"{t * 1e3:.1f}" for t in times)
        lines.append(f"| {key[0]} | {key[1]} | {cells} | {times[0] / max(times[-1], 1e-9):.2f}× |")
    outside = [r["wall"] - sum(r["ops"].values()) for r in (results[n] for n in counts)]
    cells = " | ".join(f"{t * 1e3:.1f}" for t in outside)
    lines.append(f"| outside the ops | | {cells} | {outside[0] / max(outside[-1], 1e-9):.2f}× |")
    if len(counts) > 1:
        last = counts[-1]
        serial = amdahl(one["wall"] / results[last]["wall"], last)
        lines += ["", f"## Predicted speed-up over one thread (from the serial fraction "
                  f"{serial:.2f} at {last} threads)", "",
                  "| cores | 4 | 8 | 16 |", "|---|---|---|---|",
                  "| predicted | " + " | ".join(f"{1 / (serial + (1 - serial) / m):.2f}×"
                                               for m in (4, 8, 16)) + " |"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default=f"1,{len(os.sched_getaffinity(0))}")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--accel", choices=("on", "off", "both"), default="on",
                        help="wally's compiled kernels as installed (on), WALLY_ACCEL=0 (off), "
                             "or each thread count both ways (both)")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:  # one thread count, in a fresh process
        import json

        data = profile(args.worker, args.batches, args.repeats)
        data["ops"] = {"|".join(key): seconds for key, seconds in data["ops"].items()}
        print(json.dumps(data))
        return 0
    import json
    import subprocess

    modes = ("off", "on") if args.accel == "both" else (args.accel,)
    by_mode: dict[str, dict[int, dict[str, Any]]] = {mode: {} for mode in modes}
    for n in sorted({int(t) for t in args.threads.split(",")}):
        for mode in modes:
            env = {**os.environ, "WALLY_ACCEL": "0" if mode == "off" else "1"}
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.profile_epoch", "--worker", str(n),
                 "--batches", str(args.batches), "--repeats", str(args.repeats)],
                cwd=ROOT, check=True, capture_output=True, text=True, env=env,
            ).stdout
            data = json.loads(out.strip().splitlines()[-1])
            data["ops"] = {tuple(k.split("|")): v for k, v in data["ops"].items()}
            by_mode[mode][n] = data
    if args.accel == "both":
        text = side_by_side(by_mode) + "\n" + "\n".join(
            report(by_mode[mode], args.batches, title)
            for mode, title in (("on", ", with the compiled kernels"),
                                ("off", ", WALLY_ACCEL=0 (NumPy alone)")))
    else:
        text = report(by_mode[args.accel], args.batches)
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
