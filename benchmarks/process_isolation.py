"""Does sharing one process with PyTorch change wally's speed, as ``benchmarks.run`` times them?

``benchmarks.run`` times both frameworks in one process, where wally's oneDNN shares PyTorch's
``libgomp.so.1`` (one soname) at libgomp's default spin count. This script keeps three
persistent workers and tells each in turn to run one timed item, in alternating order, so the
machine's drift falls on all of them alike:

- ``wally``: wally alone in its process;
- ``torch``: PyTorch alone in its process;
- ``both``: both in one process, running PyTorch's item and then wally's, as ``benchmarks.run``
  alternates them.

Run (OpenBLAS's variables unset, as for every benchmark)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python -m benchmarks.process_isolation --case lenet --rounds 15
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python -m benchmarks.process_isolation --case resnet --rounds 10

It prints each worker's median, min and max, and wally / PyTorch both ways. The LeNet item is
``--batches`` batches of 256 (40; SGD), the ResNet-18 item one step at batch 64
(``benchmarks.cases``), at ``--threads`` threads (2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import sys, time
import numpy as np
kind, case, threads, batches = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if kind in ("torch", "both"):
    import torch
    torch.set_num_threads(threads)
if kind in ("wally", "both"):
    import wally
    wally.set_num_threads(threads)
from benchmarks import models
from benchmarks.cases import lenet_epoch, resnet_step

name = "lenet" if case == "lenet" else "resnet18"
if kind == "both":  # the same initial weights in both, as benchmarks.run builds them
    made = dict(zip(("wally", "torch"), models.pair(name)))
elif kind == "wally":  # never imports torch (nor its libgomp): wally as its users run it
    wally.manual_seed(0)
    made = {"wally": getattr(models, "wally_" + name)()}
else:  # never imports wally
    torch.manual_seed(0)
    made = {"torch": getattr(models, "torch_" + name)()}
if case == "lenet":
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batches * 256, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, batches * 256)
    items = {k: lenet_epoch(k, model, images, labels) for k, model in made.items()}
else:
    items = {k: resnet_step(k, model, 64) for k, model in made.items()}
for item in items.values():
    item()  # warm-up
loaded = sorted(m for m in ("torch", "wally") if m in sys.modules)
print("ready", ",".join(loaded), flush=True)
for line in sys.stdin:
    times = []
    for name in line.split():
        start = time.perf_counter()
        items[name]()
        times.append(f"{name}={time.perf_counter() - start}")
    print(" ".join(times), flush=True)
"""

# what each worker runs per turn: the mixed one runs PyTorch's item first, as benchmarks.run's
# alternation leaves wally's run right after PyTorch's
ORDERS = {"wally": "wally", "torch": "torch", "both": "torch wally"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=["lenet", "resnet"], default="lenet")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=40, help="LeNet batches an item")
    args = parser.parse_args(argv)

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    workers = {kind: subprocess.Popen(
        [sys.executable, "-c", WORKER, kind, args.case, str(args.threads),
         str(args.batches)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) for kind in ORDERS}
    times: dict[str, list[float]] = {}
    try:
        for kind, worker in workers.items():
            assert worker.stdout is not None
            ready = worker.stdout.readline().split()
            if ready[:1] != ["ready"]:
                raise SystemExit(f"process_isolation: the {kind} worker failed to start")
            print(f"the {kind} worker holds {ready[1] if len(ready) > 1 else 'neither'}")
        for r in range(args.rounds):
            for kind in list(ORDERS) if r % 2 == 0 else list(ORDERS)[::-1]:
                worker = workers[kind]
                assert worker.stdin is not None and worker.stdout is not None
                worker.stdin.write(ORDERS[kind] + "\n")
                worker.stdin.flush()
                for item in worker.stdout.readline().split():
                    name, value = item.split("=")
                    times.setdefault(f"{name} in the {kind} worker", []).append(float(value))
    finally:
        for worker in workers.values():
            if worker.stdin is not None:
                worker.stdin.close()
            worker.wait()

    medians = {key: statistics.median(v) for key, v in times.items()}
    for key, v in sorted(times.items()):
        print(f"{args.case} {key}: median {medians[key]:.3f} s  min {min(v):.3f}  "
              f"max {max(v):.3f}  ({len(v)} rounds)")
    separate = medians["wally in the wally worker"] / medians["torch in the torch worker"]
    shared = medians["wally in the both worker"] / medians["torch in the both worker"]
    print(f"{args.case} wally / PyTorch: separate processes {separate:.2f}, one process "
          f"{shared:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
