"""Step time of data-parallel LeNet: one process against ranks under ``mpiexec``.

One step is what ``fit`` does per batch: forward, cross-entropy, backward, the gradient average
(one ``Allreduce`` of one flat float32 buffer) and an SGD update, on a *global* batch of 256
28×28 images (each of K ranks trains on 256 / K). Rank 0 times every step after a barrier;
since each step ends in the all-reduce, the ranks are in lock step and rank 0's time is the
job's. The table gives min / median / max over the timed steps, and examples per second at the
median.

Configurations (``--ranks 1 2`` by default):

- ``1 rank``: plain ``python``, no MPI, NumPy's BLAS free to use every core;
- ``K ranks``: ``mpiexec -n K`` with Open MPI's default binding (each rank to one core);
- ``K ranks, 1 BLAS thread``: the same with ``OMP_NUM_THREADS=1`` and
  ``OPENBLAS_NUM_THREADS=1``, so that K ranks do not start K × cores BLAS threads.

    python benchmarks/distributed_step.py                 # 1 against 2 ranks
    python benchmarks/distributed_step.py --steps 50 --ranks 1 2 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GLOBAL_BATCH = 256


def _worker(steps: int, warmup: int) -> None:
    """Run under mpiexec (or alone): time ``steps`` steps and print rank 0's times as JSON."""
    import numpy as np

    import wally
    import wally.distributed as dist
    from wally import nn
    from wally.models import lenet
    from wally.optim import SGD

    wally.manual_seed(0)
    model = lenet()
    dist.broadcast_parameters(model)
    optimizer = SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    batch = GLOBAL_BATCH // dist.world_size()
    rng = np.random.default_rng(dist.rank())
    inputs = wally.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    targets = wally.tensor(rng.integers(0, 10, batch))
    times = []
    for step in range(warmup + steps):
        dist.barrier()
        start = time.perf_counter()
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        dist.average_gradients(model)
        optimizer.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    if dist.rank() == 0:
        print("TIMES " + json.dumps(times), flush=True)


def _launch(ranks: int, steps: int, warmup: int, one_blas_thread: bool) -> list[float]:
    command = [sys.executable, __file__, "--worker", "--steps", str(steps),
               "--warmup", str(warmup)]
    env = dict(os.environ)
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    if one_blas_thread:
        env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = "1"
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), "--oversubscribe", *command]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    line = next(line for line in result.stdout.splitlines() if line.startswith("TIMES "))
    return [float(t) for t in json.loads(line[len("TIMES "):])]


def _row(label: str, times: list[float]) -> str:
    median = statistics.median(times)
    return (f"{label:<26}{1e3 * min(times):>9.1f}{1e3 * median:>9.1f}{1e3 * max(times):>9.1f}"
            f"{GLOBAL_BATCH / median:>13,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.steps, args.warmup)
        return

    import numpy

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {numpy.__version__}; LeNet, global batch {GLOBAL_BATCH}, "
          f"{args.steps} timed steps after {args.warmup}; load average {os.getloadavg()}")
    runs: list[tuple[str, int, bool]] = []
    for ranks in args.ranks:
        if ranks == 1:
            runs += [("1 rank (no MPI)", 1, False), ("1 rank, 1 BLAS thread", 1, True)]
        elif shutil.which("mpiexec") is None:
            print(f"{ranks} ranks: skipped (no mpiexec on PATH; see README, Data-parallel "
                  f"training)")
        else:
            runs += [(f"{ranks} ranks", ranks, False), (f"{ranks} ranks, 1 BLAS thread", ranks,
                                                        True)]
    results: list[tuple[str, Any]] = []
    for label, ranks, one_thread in runs:
        results.append((label, _launch(ranks, args.steps, args.warmup, one_thread)))
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    print(f"{'configuration':<26}{'min ms':>9}{'median':>9}{'max ms':>9}{'examples/s':>13}")
    for label, times in results:
        print(_row(label, times))


if __name__ == "__main__":
    main()
