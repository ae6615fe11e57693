"""Where oneDNN pays: each pass of each layer forced to oneDNN, against wally without it.

The table's ``onednn`` rules (``wally.backends.conv``) leave some layers to wally's own kernels
(``wally_is_faster`` and ``wally.backends.tuning``'s oneDNN section).  This script measures
those choices on the machine it runs on: for every pass of every layer it times, side by side
in one process and alternating,

- **oneDNN**: the pass forced to oneDNN's primitives (``algorithm("onednn", pass)``);
- **without**: the table's own choice with oneDNN switched off (NumPy, and numba where
  installed);
- **PyTorch**: the same pass (``conv{1,2}d`` under ``no_grad``, ``aten.convolution_backward``
  with only that gradient asked for).

It prints, per pass, oneDNN's implementation name (``brg:avx512_core``, ``jit:avx2``, ...), the
kernel the table chooses with oneDNN on, and the ratios oneDNN / without and oneDNN / PyTorch
(min / median / max over the repeats).  A ratio below 1 in the first column means oneDNN is
the faster of wally's two.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.onednn_passes
    ... --threads 2 --only ResNet --json found.json
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

try:
    from benchmarks._harness import paired, set_threads, write_json
    from benchmarks.cases import CONVOLUTIONS
except ImportError:  # run as a file: python benchmarks/onednn_passes.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks._harness import paired, set_threads, write_json
    from benchmarks.cases import CONVOLUTIONS

# the benchmark suite's layers, and the rest of ResNet-18's 3×3 layers at batch 64 and 1
LAYERS: dict[str, tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = {
    **{name: (x, w, kw) for name, (x, w, kw, _) in CONVOLUTIONS.items()},
    "ResNet (64,128,16,16)→128 k3 p1": ((64, 128, 16, 16), (128, 128, 3, 3), {"padding": 1}),
    "ResNet (64,256,8,8)→256 k3 p1": ((64, 256, 8, 8), (256, 256, 3, 3), {"padding": 1}),
    "ResNet (64,512,4,4)→512 k3 p1": ((64, 512, 4, 4), (512, 512, 3, 3), {"padding": 1}),
    "ResNet stem (64,3,32,32)→64 k3 p1": ((64, 3, 32, 32), (64, 3, 3, 3), {"padding": 1}),
    "batch 1 (1,64,32,32)→64 k3 p1": ((1, 64, 32, 32), (64, 64, 3, 3), {"padding": 1}),
}
PASSES = ("forward", "weight-grad", "input-grad")


def passes(name: str) -> dict[str, tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any],
                                         Any]]:
    """Per pass: (oneDNN forced, the table without oneDNN, PyTorch, the geometry)."""
    import torch

    from wally.backends import conv as dispatch
    from wally.backends import onednn
    from wally.functional import conv as wconv

    x_shape, w_shape, kw = LAYERS[name]
    nd = len(x_shape) - 2
    stride = (kw.get("stride", 1),) * nd
    dilation = (kw.get("dilation", 1),) * nd
    p, groups = kw.get("padding", 0), kw.get("groups", 1)
    padding = ((p, p),) * nd
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32)
    g = dispatch.Geometry(x_shape, w_shape, stride, padding, dilation, groups, x.dtype)
    gy = rng.standard_normal((x_shape[0], w_shape[0], *g.plan().out), dtype=np.float32)
    settings = (stride, padding, dilation, groups)
    calls: dict[str, Callable[[], Any]] = {
        "forward": lambda: wconv.correlate(x, w, None, *settings),
        "weight-grad": lambda: wconv.weight_grad(x, gy, w_shape, *settings),
        "input-grad": lambda: wconv.input_grad(gy, w, x_shape, *settings),
    }
    xt, wt, gyt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)
    conv = torch.nn.functional.conv1d if nd == 1 else torch.nn.functional.conv2d

    def torch_forward() -> Any:
        with torch.no_grad():
            return conv(xt, wt, stride=stride, padding=p, dilation=dilation, groups=groups)

    def torch_backward(mask: list[bool]) -> Callable[[], Any]:
        return lambda: torch.ops.aten.convolution_backward(
            gyt, xt, wt, None, list(stride), [p] * nd, list(dilation), False, [0] * nd,
            groups, mask)

    torch_calls = {"forward": torch_forward,
                   "weight-grad": torch_backward([False, True, False]),
                   "input-grad": torch_backward([True, False, False])}

    def forced(pass_: str) -> Callable[[], Any]:
        def run() -> Any:
            with dispatch.algorithm("onednn", pass_):
                return calls[pass_]()
        return run

    def without(pass_: str) -> Callable[[], Any]:
        def run() -> Any:
            with onednn.flags(enabled=False):
                return calls[pass_]()
        return run

    return {pass_: (forced(pass_), without(pass_), torch_calls[pass_], g) for pass_ in PASSES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", default="", help="the layers whose name contains this")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    info = set_threads(args.threads)

    from wally.backends import conv as dispatch
    from wally.backends import onednn

    if not onednn.is_available():
        print(f"oneDNN is not available: {onednn.unavailable_reason()}", file=sys.stderr)
        return 1
    print(f"{args.threads} thread(s); {info['blas']}; oneDNN {onednn.version()}; ratios min / "
          "median / max", flush=True)
    print(f"{'layer':<38} {'pass':<12} {'oneDNN kernel':<18} {'table':<10} "
          f"{'oneDNN':>9} {'without':>9} {'oneDNN/without':>16} {'oneDNN/PyTorch':>16}")
    found: dict[str, Any] = {"threads": args.threads, "blas": info["blas"],
                             "onednn": onednn.version(), "layers": {}}
    for name in [n for n in LAYERS if args.only in n]:
        found["layers"][name] = {}
        for pass_, (forced, without, torch_pass, g) in passes(name).items():
            step = dispatch.onednn_pass(pass_, g)
            if step is None:
                print(f"{name:<38} {pass_:<12} (oneDNN refuses it)")
                continue
            table = dispatch.choose(pass_, g, record=False)
            against = paired(forced, without, args.repeats).summary("other_ms")
            to_torch = paired(forced, torch_pass, args.repeats).summary("other_ms")
            found["layers"][name][pass_] = {"implementation": step.implementation,
                                            "table": table, "without": against,
                                            "torch": to_torch}

            def cell(s: dict[str, float]) -> str:
                return f"{s['min']:.2f}/{s['median']:.2f}/{s['max']:.2f}"

            print(f"{name:<38} {pass_:<12} {step.implementation:<18} {table:<10} "
                  f"{against['ms']:6.2f} ms {against['other_ms']:6.2f} ms "
                  f"{cell(against):>16} {cell(to_torch):>16}", flush=True)
    if args.json:
        write_json(args.json, found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
