"""Knobs of wally's kernels, in the spirit of ``torch.backends``.

* :mod:`wally.backends.conv`: the convolution's dispatch table (which kernel runs where, and
  why), forcing one (``with wally.backends.conv.algorithm("im2col"): ...``) and the memory
  budget;
* :mod:`wally.backends.memory`: freed memory kept for the next step (glibc's ``mallopt``,
  set when wally is imported; ``WALLY_MALLOC=system`` leaves it alone);
* :mod:`wally.backends.tuning`: every tuning constant, with its measurement;
* :mod:`wally.backends.accel`: the optional compiled kernels (numba, the ``accel`` extra), their
  list and their switches (``WALLY_ACCEL=0``, ``set_enabled``).

``conv`` is imported on first use (the kernels that it dispatches to import ``tuning``).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["accel", "conv", "memory", "tuning"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f"wally.backends.{name}")
    raise AttributeError(f"module 'wally.backends' has no attribute {name!r}")
