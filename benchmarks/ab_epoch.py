"""One LeNet epoch on this checkout against the same epoch on another checkout of wally.

For changes that add work to every op (the autograd version check, say), side by side with
the code before the change: each repeat runs one epoch in a fresh process of each checkout,
in alternating order (A B, B A, ...), at one thread, and gives one ratio *this / other*.

    git worktree add /tmp/wally-main <commit>
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/ab_epoch.py --other /tmp/wally-main --repeats 9

The epoch is d2l's classic LeNet (sigmoid, average pooling) with SGD on 60,000 random 28×28
images in batches of 256, as in ``benchmarks.run``'s LeNet-epoch case, without data loading.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EPOCH = r"""
import sys, time
import numpy as np
from threadpoolctl import threadpool_limits
import wally
import wally.nn.functional as F
from wally import nn

threadpool_limits(1)
wally.set_num_threads(1)
wally.manual_seed(0)
net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
                    nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
                    nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(),
                    nn.Linear(84, 10))
opt = wally.optim.SGD(net.parameters(), lr=0.9)
rng = np.random.default_rng(0)
images = rng.standard_normal((60000, 1, 28, 28)).astype(np.float32)
labels = rng.integers(0, 10, 60000)
start = time.perf_counter()
for i in range(0, 60000, 256):
    x, y = wally.from_numpy(images[i:i + 256]), wally.from_numpy(labels[i:i + 256])
    opt.zero_grad()
    F.cross_entropy(net(x), y).backward()
    opt.step()
print(time.perf_counter() - start)
"""


def epoch(src: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", EPOCH], env=env, check=True,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, type=Path, help="the other checkout's root")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    this_src, other_src = ROOT / "src", args.other.resolve() / "src"
    ratios, ours, theirs = [], [], []
    for repeat in range(args.repeats):
        if repeat % 2:
            b, a = epoch(other_src), epoch(this_src)
        else:
            a, b = epoch(this_src), epoch(other_src)
        ours.append(a)
        theirs.append(b)
        ratios.append(a / b)
        print(f"repeat {repeat + 1}: this {a:.3f} s, other {b:.3f} s, ratio {a / b:.3f}",
              flush=True)
    print(f"this checkout:  median {statistics.median(ours):.3f} s")
    print(f"other checkout: median {statistics.median(theirs):.3f} s")
    print(f"ratio this/other: min {min(ratios):.3f} / median {statistics.median(ratios):.3f} "
          f"/ max {max(ratios):.3f} over {len(ratios)} pairs")


if __name__ == "__main__":
    main()
