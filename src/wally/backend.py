"""The one place that picks the array module.

Everything else in wally imports ``xp`` from here instead of importing NumPy directly, so that
a CuPy backend can later be chosen in this file alone (DeZero's ``cuda.py`` does the same).
"""

from __future__ import annotations

import numpy

xp = numpy
ndarray = numpy.ndarray

# The matrix products of the kernels (convolution, linear, Winograd): they call these two names
# as ``backend.matmul`` / ``backend.dot`` rather than ``a @ b``, so that one place can see every
# product they run (``wally.analysis.training_cost.count_products`` replaces the two names while
# it counts).  Off, they are NumPy's own functions: no wrapper, no cost.
matmul = numpy.matmul
dot = numpy.dot

__all__ = ["xp", "ndarray", "matmul", "dot"]
