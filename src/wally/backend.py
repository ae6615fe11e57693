"""The one place that picks the array module.

Everything else in wally imports ``xp`` from here instead of importing NumPy directly, so that
a CuPy backend can later be chosen in this file alone (DeZero's ``cuda.py`` does the same).
"""

from __future__ import annotations

import numpy

xp = numpy
ndarray = numpy.ndarray

__all__ = ["xp", "ndarray"]
