"""How close NumPy's BLAS alone can bring a convolution pass to PyTorch's (issue 12, part 3).

Every convolution pass wally runs on the GEMM path does at least one matrix product of the
im2col formulation (the note's ``Y = W @ im2col(x)``, its weight gradient ``dW = dY @ colsᵀ``
and its input gradient ``dcols = Wᵀ @ dY``), plus the copies around it. This script times,
side by side in one process and alternating, for each pass of a few layers:

- **GEMM alone**: that one product on operands laid out beforehand, its result written into a
  buffer made beforehand, in whichever of its two orientations (``A @ B`` or ``(Bᵀ @ Aᵀ)``)
  OpenBLAS runs faster here: no im2col copy, no col2im, no Python around it;
- **wally's pass**: the same pass as ``wally.nn.functional``'s op runs it
  (:func:`wally.functional.conv.correlate`, ``weight_grad`` and ``input_grad`` on arrays,
  whichever kernel the dispatch table chooses);
- **PyTorch's pass**: ``conv2d`` under ``no_grad`` and ``aten.convolution_backward`` with
  only that gradient asked for.

The ratios to PyTorch are per repeat (min / median / max). Where the GEMM alone is already
slower than PyTorch's whole pass, no arrangement of copies around OpenBLAS reaches parity for
that pass: the pass needs a kernel that does not go through that product (PyTorch's oneDNN
runs direct convolutions, compiled for the CPU it finds).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.gemm_floor
    ... --threads 2        # both frameworks and OpenBLAS at 2 threads
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

try:
    from benchmarks._harness import paired, set_threads, write_json
except ImportError:  # run as a file: python benchmarks/gemm_floor.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks._harness import paired, set_threads, write_json

# name: (input shape, weight shape, padding), float32, stride 1, one group
LAYERS: dict[str, tuple[tuple[int, ...], tuple[int, ...], int]] = {
    "LeNet conv1 (256,1,28,28)→6 k5 p2": ((256, 1, 28, 28), (6, 1, 5, 5), 2),
    "LeNet conv2 (256,6,14,14)→16 k5": ((256, 6, 14, 14), (16, 6, 5, 5), 0),
    "ResNet (64,64,32,32)→64 k3 p1": ((64, 64, 32, 32), (64, 64, 3, 3), 1),
}
PASSES = ("forward", "weight-grad", "input-grad")


def best_orientation(a: np.ndarray, b: np.ndarray) -> Callable[[], Any]:
    """``a @ b`` or ``(bᵀ @ aᵀ)`` (the same numbers, transposed), whichever is faster here (the
    best of 7 calls each), on contiguous operands made beforehand, into an output made
    beforehand."""
    direct_out = np.empty((a.shape[0], b.shape[1]), a.dtype)
    at, bt = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
    flipped_out = np.empty((b.shape[1], a.shape[0]), a.dtype)

    def direct() -> Any:
        return np.matmul(a, b, out=direct_out)

    def flipped() -> Any:
        return np.matmul(bt, at, out=flipped_out)

    def best(fn: Callable[[], Any]) -> float:
        fn()
        times = []
        for _ in range(7):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    return direct if best(direct) <= best(flipped) else flipped


def cases(name: str) -> dict[str, tuple[Callable[[], Any], ...]]:
    """Per pass: (GEMM alone, wally's pass, PyTorch's pass) for layer ``name``."""
    import torch

    from wally.functional import conv as wconv

    x_shape, w_shape, p = LAYERS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32)
    n, o = x_shape[0], w_shape[0]
    k = w_shape[2]
    out_h, out_w = x_shape[2] + 2 * p - k + 1, x_shape[3] + 2 * p - k + 1
    gy = rng.standard_normal((n, o, out_h, out_w), dtype=np.float32)
    depth, m = w_shape[1] * k * k, n * out_h * out_w
    cols = rng.standard_normal((depth, m), dtype=np.float32)  # the im2col matrix's shape
    w2, gy2 = w.reshape(o, depth), np.ascontiguousarray(gy.transpose(1, 0, 2, 3)).reshape(o, m)
    settings = ((1, 1), ((p, p), (p, p)), (1, 1), 1)
    xt, wt, gyt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)

    def torch_forward() -> Any:
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, padding=p)

    def torch_backward(mask: list[bool]) -> Callable[[], Any]:
        return lambda: torch.ops.aten.convolution_backward(
            gyt, xt, wt, None, [1, 1], [p, p], [1, 1], False, [0, 0], 1, mask)

    return {
        "forward": (best_orientation(w2, cols),
                    lambda: wconv.correlate(x, w, None, *settings),
                    torch_forward),
        "weight-grad": (best_orientation(gy2, np.ascontiguousarray(cols.T)),
                        lambda: wconv.weight_grad(x, gy, w_shape, *settings),
                        torch_backward([False, True, False])),
        "input-grad": (best_orientation(np.ascontiguousarray(w2.T), gy2),
                       lambda: wconv.input_grad(gy, w, x_shape, *settings),
                       torch_backward([True, False, False])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--only", default="", help="the layers whose name contains this")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    info = set_threads(args.threads)
    print(f"{args.threads} thread(s); {info['blas']}; ratios to PyTorch's pass, min / median / "
          "max", flush=True)
    found: dict[str, Any] = {"threads": args.threads, "blas": info["blas"], "layers": {}}
    print(f"{'layer':<36} {'pass':<12} {'GEMM alone':>22} {'wally pass':>22} {'PyTorch':>9}")
    for name in [n for n in LAYERS if args.only in n]:
        found["layers"][name] = {}
        for pass_, (gemm, wally_pass, torch_pass) in cases(name).items():
            floor = paired(gemm, torch_pass, args.repeats).summary()
            whole = paired(wally_pass, torch_pass, args.repeats).summary()
            found["layers"][name][pass_] = {"gemm": floor, "wally": whole}

            def cell(s: dict[str, float]) -> str:
                return f"{s['ms']:6.2f} ms {s['min']:.2f}/{s['median']:.2f}/{s['max']:.2f}"

            print(f"{name:<36} {pass_:<12} {cell(floor):>22} {cell(whole):>22} "
                  f"{whole['torch_ms']:6.2f} ms", flush=True)
    if args.json:
        write_json(args.json, found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
