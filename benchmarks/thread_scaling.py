"""Why a layer does not get faster on two threads: the same work on one thread, on two
threads of one process, and in two processes at once (issue 12, part 3).

Two processes share the memory system and the caches just as two threads do, but each has
its own interpreter lock. Where two processes each keep their one-thread speed and two
threads do not, the threads lose their time to each other's turn at the lock (NumPy releases
it inside each call, and a chunk of a convolution makes about ten calls), not to memory
bandwidth. The voluntary context switches per call count the thread's waits.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.thread_scaling
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# name: (input shape, weight shape, padding), LeNet's two layers at batch 256
LAYERS = {
    "LeNet conv1 forward (256,1,28,28)→6 k5 p2": ((256, 1, 28, 28), (6, 1, 5, 5), 2),
    "LeNet conv2 forward (256,6,14,14)→16 k5": ((256, 6, 14, 14), (16, 6, 5, 5), 0),
}


def measure(threads: int, seconds: float) -> dict[str, Any]:
    """Per layer: milliseconds per forward call and voluntary context switches per call."""
    import resource

    import numpy as np
    from threadpoolctl import threadpool_limits

    import wally
    import wally.nn.functional as F

    threadpool_limits(threads, user_api="blas")
    wally.set_num_threads(threads)
    rng = np.random.default_rng(0)
    found = {}
    for name, (x_shape, w_shape, padding) in LAYERS.items():
        x = wally.tensor(rng.random(x_shape, dtype=np.float32))
        w = wally.tensor(rng.random(w_shape, dtype=np.float32))
        F.conv2d(x, w, padding=padding)
        calls, before = 0, resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            F.conv2d(x, w, padding=padding)
            calls += 1
        elapsed = time.perf_counter() - start
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - before
        found[name] = {"ms": elapsed / calls * 1e3, "switches": switches / calls}
    return found


def _worker(threads: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.thread_scaling", "--worker", str(threads),
         "--seconds", str(seconds)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"thread_scaling: a worker failed with exit code {process.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per layer and setting")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(measure(args.worker, args.seconds)))
        return 0
    one = _result(_worker(1, args.seconds))
    two = _result(_worker(2, args.seconds))
    pair = [_worker(1, args.seconds), _worker(1, args.seconds)]
    apart = [_result(p) for p in pair]
    print("| layer | 1 thread | 2 threads, one process | 1 thread in each of 2 processes "
          "at once | waits per call, 1 → 2 threads |")
    print("|---|---|---|---|---|")
    for name in LAYERS:
        side = max(r[name]["ms"] for r in apart)
        print(f"| {name} | {one[name]['ms']:.2f} ms | {two[name]['ms']:.2f} ms "
              f"({one[name]['ms'] / two[name]['ms']:.2f}×) | {side:.2f} ms each "
              f"({2 * one[name]['ms'] / side:.2f}× the work) | "
              f"{one[name]['switches']:.1f} → {two[name]['switches']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
