"""``sparse @ dense`` side by side: wally's NumPy kernel, its scipy.sparse kernel, and PyTorch.

Run (BLAS settings as the rest of the benchmarks)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.sparse_product

Each case is a random graph with N nodes and E edges (plus self loops), features (N, F);
the times are medians of ``--repeat`` runs of the forward product and of forward + backward
(gradients for the dense operand and the edge values), in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import wally
from wally.geometric.sparse import SparseMatrix, use_kernel

CASES = [  # (name, nodes, edges, features)
    ("karate", 34, 156, 16),
    ("Cora hidden", 2708, 10556, 16),
    ("Cora input", 2708, 10556, 1433),
    ("100k nodes", 100_000, 1_000_000, 64),
]


def _median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _graph(nodes: int, edges: int, features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    index = rng.integers(0, nodes, size=(2, edges))
    loops = np.arange(nodes)
    index = np.concatenate([index, np.stack([loops, loops])], axis=1)
    weight = rng.random(index.shape[1], dtype=np.float32)
    x = rng.standard_normal((nodes, features), dtype=np.float32)
    return index, weight, x


def _wally_case(index, weight, x, backward: bool):
    def run():
        values = wally.tensor(weight, requires_grad=backward)
        dense = wally.tensor(x, requires_grad=backward)
        matrix = SparseMatrix(index[1], index[0], values, (x.shape[0], x.shape[0]))
        out = matrix @ dense
        if backward:
            out.sum().backward()
    return run


def _torch_case(index, weight, x, backward: bool):
    import torch

    def run():
        values = torch.tensor(weight, requires_grad=backward)
        dense = torch.tensor(x, requires_grad=backward)
        matrix = torch.sparse_coo_tensor(torch.tensor(index[::-1].copy()), values,
                                         (x.shape[0], x.shape[0]), check_invariants=False)
        out = torch.sparse.mm(matrix, dense)
        if backward:
            out.sum().backward()
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--tiny", action="store_true", help="only the two smallest cases")
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    print("| case | N | E | F | pass | numpy ms | scipy ms | torch ms |")
    print("|---|---|---|---|---|---|---|---|")
    for name, nodes, edges, features in CASES[:2] if args.tiny else CASES:
        index, weight, x = _graph(nodes, edges, features)
        for backward in (False, True):
            row = []
            for kernel in ("numpy", "scipy"):
                with use_kernel(kernel):
                    row.append(_median_ms(_wally_case(index, weight, x, backward), args.repeat))
            ours = f"{row[0]:.2f} | {row[1]:.2f}"
            theirs = "—"
            if torch is not None:
                try:
                    case = _torch_case(index, weight, x, backward)
                    theirs = f"{_median_ms(case, args.repeat):.2f}"
                except RuntimeError:  # the values' gradient is made dense: N² floats
                    theirs = "out of memory"
            step = "fwd+bwd" if backward else "fwd"
            print(f"| {name} | {nodes} | {index.shape[1]} | {features} | {step} | {ours} | "
                  f"{theirs} |", flush=True)


if __name__ == "__main__":
    main()
