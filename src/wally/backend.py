"""The one place that picks the array module.

Everything else in wally imports ``xp`` from here instead of importing NumPy directly, so that
a CuPy backend can later be chosen in this file alone (DeZero's ``cuda.py`` does the same).
"""

from __future__ import annotations

import numpy

xp = numpy
ndarray = numpy.ndarray

# The multiply-adds of the kernels: the matrix products (convolution, linear, Winograd) and the
# depthwise convolution's per-tap products call these names as ``backend.matmul``,
# ``backend.dot`` and ``backend.multiply`` rather than ``a @ b`` or ``xp.multiply``, so that one
# place can see every product they run (``wally.analysis.training_cost.count_products``
# replaces the names while it counts).  Off, they are NumPy's own functions: no wrapper, no
# cost.
matmul = numpy.matmul
dot = numpy.dot
multiply = numpy.multiply

__all__ = ["xp", "ndarray", "matmul", "dot", "multiply"]
