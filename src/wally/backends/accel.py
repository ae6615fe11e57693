"""The optional compiled accelerator: numba kernels for the places where NumPy calls from Python
cannot go faster (install with ``pip install wally-cnn[accel]``).

NumPy stays wally's only required dependency.  Where numba is installed, a few kernels run as
one compiled call per chunk of work instead of several NumPy calls, on wally's own threads
(``nogil``: the chunks of two threads really run at once).  Each one is listed in
:data:`KERNELS` with where it runs, why and the measurement that kept it; the convolution's
kernel (``direct``) is also a rule of :mod:`wally.backends.conv`'s table, where
``algorithm("direct")`` forces it; ``winograd`` compiles the data transforms of that table's
Winograd rule.  Every kernel is tested against the reference path
(``tests/test_accel.py``).

Switches, in the spirit of ``torch.backends.mkldnn``:

* the environment variable ``WALLY_ACCEL=0`` (read at import) turns the accelerator off;
* :func:`set_enabled` turns it, or one kernel, on or off (``relu`` is off until switched on:
  see its entry); :func:`flags` does so within a ``with`` block; :func:`is_enabled` says
  whether a kernel would run;
* :func:`is_available` says whether numba can be imported.

>>> import wally.backends.accel as accel
>>> with accel.flags(enabled=False):                                   # doctest: +SKIP
...     y = model(x)                # NumPy alone, whatever is installed

numba is imported, and each kernel compiled, on first use (``import wally`` never imports
it): about 1 s for the first kernel (numba itself), then 0.3-1 s per kernel and dtype, paid
once per process.  Kernels are compiled with ``cache=False`` (numba's on-disk cache index is a
pickle, and wally never unpickles) and ``fastmath=False`` (the sums run in the written order).

**Memory.** Loading numba (with llvmlite and scipy, which numba imports) adds about 130 MiB to
the process's resident memory at the first compiled call: ``benchmarks.run --only memory``
measured a LeNet epoch's peak at 220 MiB with the accelerator and 83 MiB without (PyTorch: 377
MiB), and ResNet-18's two training steps at 939 MiB with the ``relu`` kernel on and 813 MiB
without (PyTorch: 895 MiB), at two threads.  So ``relu`` is off by default, and numba is loaded
only by a layer that the ``direct`` convolution or (at one thread) Winograd runs.  At one
thread ResNet-18's two steps peaked at 979 MiB with the compiled Winograd and 977 MiB with
NumPy's (PyTorch: 884-916 MiB in the same runs): numba's share is offset by the compiled path's
smaller buffers, and both miss PyTorch's peak at one thread.  Where memory matters more than
speed, ``WALLY_ACCEL=0``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

__all__ = [
    "KERNELS", "Kernel", "is_available", "is_enabled", "set_enabled", "flags", "kernels", "call",
]


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One accelerated kernel: ``name``, the op it serves, ``where`` it runs, ``why`` it exists
    and what was ``measured`` (side by side with the NumPy path it replaces); ``default``:
    whether it is on until :func:`set_enabled` says otherwise."""

    name: str
    op: str
    where: str
    why: str
    measured: str
    default: bool = True


KERNELS: tuple[Kernel, ...] = (
    Kernel(
        name="direct",
        op="conv1d/conv2d forward (rule 'direct' of wally.backends.conv) and a depthwise "
        "layer's weight gradient (rule 'depthwise-direct')",
        where="2-D or 1-D, stride 1, C/groups·∏k ≤ 32, at most 8 output channels a group "
        "(LeNet's conv1: 1 → 6, 5×5; every depthwise layer with taps ≤ 32)",
        why="im2col copies each pixel ∏k times for a GEMM of 25-row columns, which OpenBLAS runs "
        "slowly; summing the taps straight from one padded copy reads each pixel once per tap "
        "from cache, in one nogil call per chunk",
        measured="LeNet conv1 forward at batch 256, 1 thread: 2.1-2.3 against 2.6-2.8 ms "
        "(conv2, 150 deep: 6.3 against 2.9 ms; ResNet's CIFAR stem, 3 → 64: 9.8 against "
        "5.2 ms; so the limits); depthwise 3×3 (64,128,32,32), 1 thread: forward 16.4 against "
        "67.2 ms, weight gradient 15.6 against 49.7, forward and backward 62 against 194 "
        "(PyTorch: 70)",
    ),
    Kernel(
        name="winograd",
        op="conv2d forward by Winograd F(2×2, 3×3) (rule 'winograd' of wally.backends.conv)",
        where="wherever the rule runs (one thread), float32 or float64",
        why="the NumPy path transforms each chunk's tiles in some forty calls over strided "
        "views of the whole chunk; compiled, one call pads and transforms the input one tile "
        "row at a time (in cache) and one transforms the products back into the output, the "
        "same sums in the same order (the same bits), around the same batched GEMM",
        measured="3×3 layers at batch 64, 1 thread, forward: 64 ch on 32×32 50.7 → 44.9 ms, "
        "128 on 16×16 37.7 → 30.4, 256 on 8×8 23.3 → 19.6, 512 on 4×4 22.0 → 17.4 (PyTorch: "
        "33 ms for the first); ResNet-18 step at 1 thread 1.48 → 1.35x PyTorch's; at 2 threads "
        "im2col stays faster (64 ch: 33.8 against 34.8 ms), so the rule stays one-thread; "
        "off by default: a network that no other compiled kernel serves (ResNet-18) would load "
        "numba for it, and ResNet-18's two steps at 1 thread then peaked at 977 MiB against "
        "835 MiB without numba (PyTorch: 899 MiB)",
        default=False,
    ),
    Kernel(
        name="relu",
        op="ReLU backward (dx = dy · [not y ≤ 0])",
        where="float arrays of one shape, C-contiguous",
        why="one pass instead of NumPy's two (the mask, then the product)",
        measured="256×6×28×28 float32, 1 thread: 0.48 against 0.72 ms; 256×16×10×10: 0.16 "
        "against 0.21 ms; off by default: in a network that no other compiled kernel serves "
        "(ResNet-18) it would load numba for ~15 ms an epoch, at ~130 MiB (its training peak "
        "939 MiB against PyTorch's 895)",
        default=False,
    ),
)
# Measured and not kept (the NumPy path was as fast or faster, so there is no kernel):
# average pooling 2×2 (256×6×28×28 forward 0.64 against 0.56 ms, backward 1.29 against
# 0.64 ms: strided loops lose to NumPy's per-tap views), ReLU forward (np.maximum is one pass),
# im2col by numba feeding the same GEMM (LeNet conv1 forward 3.6 against 3.0 ms) and a direct
# weight gradient of a dense layer (lane partials; conv1 12 against 2.9 ms; a depthwise one,
# summed by columns, is kept: 'depthwise-direct').

_NAMES = tuple(k.name for k in KERNELS)


def _from_environment() -> bool:
    text = os.environ.get("WALLY_ACCEL", "").strip().lower()
    if text in ("", "1", "on", "true", "yes"):
        return True
    if text in ("0", "off", "false", "no"):
        return False
    warnings.warn(
        f"WALLY_ACCEL={text!r} is not 0 or 1; leaving the accelerator on", RuntimeWarning,
        stacklevel=2,
    )
    return True


_DEFAULT_OFF = frozenset(k.name for k in KERNELS if not k.default)
_state: dict[str, object] = {"on": _from_environment(), "off": _DEFAULT_OFF, "module": None,
                             "available": None}


def is_available() -> bool:
    """Whether numba can be imported (checked once, without importing it)."""
    if _state["available"] is None:
        _state["available"] = importlib.util.find_spec("numba") is not None
    return bool(_state["available"])


def _check_name(where: str, name: str | None) -> None:
    if name is not None and name not in _NAMES:
        raise ValueError(
            f"wally.backends.accel.{where}: no kernel {name!r}; expected one of "
            f"{', '.join(_NAMES)}"
        )


def is_enabled(name: str | None = None) -> bool:
    """Whether the accelerator (or its kernel ``name``) would run: numba is installed, it is
    switched on, and ``name`` is not switched off."""
    _check_name("is_enabled", name)
    off = _state["off"]
    assert isinstance(off, frozenset)
    return bool(_state["on"]) and is_available() and (name is None or name not in off)


def set_enabled(mode: bool, name: str | None = None) -> None:
    """Switch the accelerator (``name=None``) or one of its kernels on or off."""
    if not isinstance(mode, bool):
        raise TypeError(f"wally.backends.accel.set_enabled: expected a bool, got {mode!r}")
    _check_name("set_enabled", name)
    if name is None:
        _state["on"] = mode
        return
    off = _state["off"]
    assert isinstance(off, frozenset)
    _state["off"] = off - {name} if mode else off | {name}


@contextlib.contextmanager
def flags(enabled: bool, name: str | None = None) -> Iterator[None]:
    """Within the ``with`` block, :func:`set_enabled` ``(enabled, name)``; restored on exit."""
    saved = (_state["on"], _state["off"])
    set_enabled(enabled, name)
    try:
        yield
    finally:
        _state["on"], _state["off"] = saved


def kernels() -> ModuleType:
    """The compiled kernels (:mod:`wally._numba_kernels`), importing numba on the first call."""
    module = _state["module"]
    if module is None:
        module = importlib.import_module("wally._numba_kernels")
        _state["module"] = module
    assert isinstance(module, ModuleType)
    return module


def call(kernel: Any, multiply_adds: int, *args: Any) -> Any:
    """``kernel(*args)``, a compiled call that does ``multiply_adds`` multiply-adds: the counting
    point of the compiled kernels, as ``wally.backend.matmul`` is of the matrix products
    (:func:`wally.analysis.training_cost.count_products` replaces it to count them)."""
    return kernel(*args)
