"""Instruction counts of pooling and convolution forward, for callgrind (issue 12, the shared
window geometry): the per-call cost of a layer, argument checks and dispatch included.

Run one case ``N`` times and ``0`` times under callgrind; the difference divided by ``N`` is
the instructions of one forward::

    OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m benchmarks.callgrind_windows maxpool 200

Cases: ``maxpool``, ``avgpool``, ``adaptive`` (LeNet-sized maps, batch 1, where the per-call
overhead shows), ``maxpool32`` (batch 32), ``conv`` (batch 1, 6→16, k5) and ``conv32``.
"""

from __future__ import annotations

import sys

import wally
from wally import nn


def _cases() -> dict[str, tuple[nn.Module, wally.Tensor]]:
    wally.manual_seed(0)
    small = wally.randn(1, 6, 28, 28)
    batch = wally.randn(32, 6, 28, 28)
    conv = nn.Conv2d(6, 16, 5)
    return {
        "maxpool": (nn.MaxPool2d(2), small),
        "avgpool": (nn.AvgPool2d(2), small),
        "adaptive": (nn.AdaptiveAvgPool2d((5, 5)), small),
        "maxpool32": (nn.MaxPool2d(2), batch),
        "conv": (conv, small[:, :, :14, :14]),
        "conv32": (conv, batch[:, :, :14, :14].contiguous()),
    }


def main() -> None:
    case, repeats = sys.argv[1], int(sys.argv[2])
    wally.set_num_threads(1)
    layer, x = _cases()[case]
    with wally.no_grad():
        layer(x)  # warm: caches and workspaces filled
        for _ in range(repeats):
            layer(x)


if __name__ == "__main__":
    main()
